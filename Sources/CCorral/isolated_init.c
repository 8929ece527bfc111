// The isolated run's init, PID 1 of its namespaces: its first steps (right after the
// clone) and the rest (filesystem, the program's start, reaping). Async-signal-safe: it runs
// in a vfork-style or fork-style clone of Corral (a copy of a multithreaded process), or in
// the corral-init executable; system calls and stack buffers only.
#define _GNU_SOURCE
#include "child.h"
#include "loopback.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#define CORRAL_SECBIT_NOROOT (1 << 0)
#define CORRAL_SECBIT_NOROOT_LOCKED (1 << 1)
#define CORRAL_SECBIT_NO_SETUID_FIXUP_LOCKED (1 << 3)
#define CORRAL_SECBIT_KEEP_CAPS_LOCKED (1 << 5)
#define CORRAL_SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#define CORRAL_SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)

/// The program, PID 2 of the namespace: its own session, its descriptors, then no
/// privileges at all, then exec. Does not return.
static void corral_isolated_program(const corral_spawn_request *request, int error_fd) {
    const corral_isolation *isolation = request->isolation;
    if (setsid() < 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_SETSID, errno, 0);
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PDEATHSIG, errno, 0);
    }
    // Tells Corral this process's pid as Corral sees it (the kernel attaches it to the
    // message: SO_PASSCRED on Corral's end), so that a seccomp kill the kernel logs under
    // that pid can be named in the report. Best effort on purpose: if it is lost, the run
    // is the same and the report only cannot name the call.
    int hello[2] = { CORRAL_STATUS_HELLO, 0 };
    ssize_t sent;
    do {
        sent = send(isolation->status_fd, hello, sizeof(hello), MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    corral_child_descriptors(request, &error_fd);
    // Inherited from the init already; set again from the plan, so the program's CPUs
    // never depend on how the init was started.
    corral_child_pin_cpus(request, error_fd);

    // No capability can come back: the bounding set emptied, ambient cleared, securebits
    // locked so that root gets no capabilities and a uid change always drops them.
    for (int capability = 0; capability < 64; capability++) {
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0) {
            if (errno == EINVAL) break; // past the last capability this kernel has
            corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 4);
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 4);
    }
    unsigned long securebits = CORRAL_SECBIT_NOROOT | CORRAL_SECBIT_NOROOT_LOCKED
        | CORRAL_SECBIT_NO_SETUID_FIXUP_LOCKED | CORRAL_SECBIT_KEEP_CAPS_LOCKED
        | CORRAL_SECBIT_NO_CAP_AMBIENT_RAISE | CORRAL_SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (prctl(PR_SET_SECUREBITS, securebits, 0, 0, 0) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 5);
    }
    // In a user namespace of our own, setgroups is denied (that is what lets an
    // unprivileged user map its gid), and the caller's groups are not mapped anyway.
    // Raw system calls, not the C library's wrappers: in this copy of a multithreaded
    // process those would try to signal and wait for the parent's other threads (setxid)
    // and can deadlock on a lock one of them held at the clone. Only this thread exists.
    if (!isolation->new_user && syscall(SYS_setgroups, 0, NULL) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 1);
    }
    if (syscall(SYS_setresgid, isolation->gid, isolation->gid, isolation->gid) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 2);
    }
    if (syscall(SYS_setresuid, isolation->uid, isolation->uid, isolation->uid) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 3);
    }
    // For uid 0 (asked for explicitly) no uid change cleared the sets: clear them.
    struct { uint32_t version; int pid; } header = { 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0 };
    struct { uint32_t effective, permitted, inheritable; } data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &header, data) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 4);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 6);
    }
    corral_child_exec_filtered(request, error_fd, isolation);
}

/// Closes every descriptor above 2 but those in `keep` (at most CORRAL_MAX_FDS + 2; sorted here on
/// the stack), with close_range over the gaps.
static int corral_close_all_but(const int *keep, int count) {
    int sorted[CORRAL_MAX_FDS + 2];
    int used = 0;
    for (int index = 0; index < count && used < CORRAL_MAX_FDS + 2; index++) {
        int fd = keep[index];
        if (fd < 0) continue;
        int position = used;
        while (position > 0 && sorted[position - 1] > fd) {
            sorted[position] = sorted[position - 1];
            position--;
        }
        sorted[position] = fd;
        used++;
    }
    unsigned int next = 3; // stdin, stdout and stderr stay: the program's unless mapped
    for (int index = 0; index < used; index++) {
        unsigned int fd = (unsigned int)sorted[index];
        if (fd < next) continue;
        if (fd > next && syscall(SYS_close_range, next, fd - 1, 0) != 0) return -1;
        next = fd + 1;
    }
    return (int)syscall(SYS_close_range, next, ~0U, 0);
}

/// Processes in this PID namespace, from its own /proc, with getdents64 (no allocation).
static int corral_count_processes(void) {
    int directory = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0) return 0;
    char buffer[4096];
    int count = 0;
    for (;;) {
        long got = syscall(SYS_getdents64, directory, buffer, sizeof(buffer));
        if (got <= 0) break;
        for (long offset = 0; offset < got;) {
            unsigned short length = *(unsigned short *)(buffer + offset + 16);
            const char *name = buffer + offset + 19;
            if (name[0] >= '1' && name[0] <= '9') count++;
            offset += length;
        }
    }
    close(directory);
    return count;
}

/// Writes `text` to a /proc file of this process. Returns 0, or -1 with errno.
static int corral_write_proc(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t length = strlen(text);
    ssize_t written = write(fd, text, length);
    int saved = errno;
    close(fd);
    errno = saved;
    return written == (ssize_t)length ? 0 : -1;
}

/// "N N 1\n" for a uid or gid map, without printf.
static void corral_identity_map(char *buffer, unsigned int id) {
    char digits[16];
    int count = 0;
    do { digits[count++] = (char)('0' + id % 10); id /= 10; } while (id > 0);
    int used = 0;
    for (int copy = 0; copy < 2; copy++) {
        for (int index = count - 1; index >= 0; index--) buffer[used++] = digits[index];
        buffer[used++] = ' ';
    }
    buffer[used++] = '1';
    buffer[used++] = '\n';
    buffer[used] = 0;
}

void corral_isolated_enter(const corral_spawn_request *request, int error_fd) {
    const corral_isolation *isolation = request->isolation;
    if (setsid() < 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_SETSID, errno, 0);
    }
    if (isolation->new_user) {
        // Rootless: the caller's uid and gid map to themselves; this init keeps every
        // capability inside its own user namespace, enough to build the namespaces.
        char map[64];
        if (corral_write_proc("/proc/self/setgroups", "deny") != 0) {
            corral_child_fail(error_fd, CORRAL_STAGE_NAMESPACES, errno, 5);
        }
        corral_identity_map(map, isolation->uid);
        if (corral_write_proc("/proc/self/uid_map", map) != 0) {
            corral_child_fail(error_fd, CORRAL_STAGE_NAMESPACES, errno, 6);
        }
        corral_identity_map(map, isolation->gid);
        if (corral_write_proc("/proc/self/gid_map", map) != 0) {
            corral_child_fail(error_fd, CORRAL_STAGE_NAMESPACES, errno, 7);
        }
    }
    corral_child_reset_signals(error_fd);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PDEATHSIG, errno, 0);
    }
    corral_child_join_cgroups(request, error_fd);
    // The init and, by inheritance, everything it starts: pinned before corral-init's exec.
    corral_child_pin_cpus(request, error_fd);
}

/// PID 1 of the run's namespaces: sets them up, starts the program, reaps every orphan
/// so zombies never pile up, forwards the program's end to Corral, and exits, which makes
/// the kernel kill whatever is left. It dies with Corral (PR_SET_PDEATHSIG), and with it
/// every process of the namespace. Does not return.
void corral_isolated_init_run(const corral_spawn_request *request, int error_fd) {
    const corral_isolation *isolation = request->isolation;
    // Mounts made here stay here; a fresh /proc shows this PID namespace only.
    if (isolation->mount_template_fd >= 0) {
        corral_enter_mount_template(isolation, error_fd);
    } else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_NAMESPACES, errno, 1);
    } else if (isolation->root != NULL) {
        corral_build_root(isolation, error_fd);
    } else if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_NAMESPACES, errno, 2);
    }
    if (sethostname(isolation->hostname, strlen(isolation->hostname)) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_NAMESPACES, errno, 3);
    }
    if (isolation->new_network && corral_loopback_up() != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_NAMESPACES, errno, 4);
    }
    // A fork-style init is a copy of Corral and holds every descriptor Corral had: other
    // runs' pipe ends and captures, a server's sockets, cgroup files, the job directory's
    // descriptors (the corral-init executable was handed only its own, and the /box
    // directory, used above). It keeps only what it and the program need, so a pipe's reader sees EOF when its
    // writer ends and nothing of Corral's is reachable from the sandbox.
    int keep[CORRAL_MAX_FDS + 2];
    int kept = 0;
    keep[kept++] = error_fd;
    keep[kept++] = isolation->status_fd;
    for (int index = 0; index < request->fd_count && index < CORRAL_MAX_FDS; index++) {
        keep[kept++] = request->fds[index].source;
    }
    if (corral_close_all_but(keep, kept) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_CLOSE_FDS, errno, 0);
    }
    // A raw clone, not fork(): no atfork handlers of the (copied) parent run here.
    long program = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, 0);
    if (program < 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_INIT_FORK, errno, 0);
    }
    if (program == 0) {
        corral_isolated_program(request, error_fd);
    }
    close(error_fd);
    // From here on the init needs only its status channel.
    (void)corral_close_all_but(&isolation->status_fd, 1);
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, __WALL);
        if (pid < 0) {
            if (errno == EINTR) continue;
            _exit(0);
        }
        if (pid == (pid_t)program) {
            // {the program's wait status, how many other processes are left}: they die
            // with this init, and Corral counts them as leftovers.
            int message[2] = { status, corral_count_processes() - 1 };
            ssize_t written;
            do {
                written = write(isolation->status_fd, message, sizeof(message));
            } while (written < 0 && errno == EINTR);
            _exit(0);
        }
    }
}
