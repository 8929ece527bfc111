// The child side of Corral's spawn. Everything between clone and execve is here and is
// async-signal-safe: system calls only, no allocation, no locks, no Swift. The child shares
// the parent's memory (CLONE_VM), so it writes nothing but its own stack and reports a
// failure as {stage, errno, detail} on a close-on-exec pipe.
#define _GNU_SOURCE
#include "corral_spawn.h"
#include "child.h"
#include "clone_into_cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/// The child's stack. Spawns may come from several threads, so each thread keeps its own.
#define CORRAL_CHILD_STACK_SIZE (64 * 1024)
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#define CORRAL_SECBIT_NOROOT (1 << 0)
#define CORRAL_SECBIT_NOROOT_LOCKED (1 << 1)
#define CORRAL_SECBIT_NO_SETUID_FIXUP_LOCKED (1 << 3)
#define CORRAL_SECBIT_KEEP_CAPS_LOCKED (1 << 5)
#define CORRAL_SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#define CORRAL_SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)

/// How long an isolated run's setup (namespaces, filesystem, privileges) may take.

/// The most descriptors one child can be given (stdio plus pipes).
#define CORRAL_MAX_FDS 64

typedef struct corral_child_context {
    const corral_spawn_request *request;
    int error_fd;
    /// Created inside the run's cgroup (clone3 CLONE_INTO_CGROUP): nothing to join.
    int in_cgroup;
} corral_child_context;

void corral_child_fail(int error_fd, int stage, int error, int detail) {
    corral_child_failure failure = { stage, error, detail };
    ssize_t ignored;
    do {
        ignored = write(error_fd, &failure, sizeof(failure));
    } while (ignored < 0 && errno == EINTR);
    (void)ignored;
    _exit(127);
}

/// Marks every descriptor from `first` up close-on-exec (so the error pipe stays usable
/// until execve). Falls back to a loop on kernels without close_range.
static int corral_cloexec_from(int first) {
    if (syscall(SYS_close_range, (unsigned int)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) {
        return 0;
    }
    if (errno != ENOSYS && errno != EINVAL) {
        return -1;
    }
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return -1;
    }
    int last = limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > 65536 ? 65536 : (int)limit.rlim_cur;
    for (int fd = first; fd < last; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC)) {
            (void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
    }
    return 0;
}

/// Every descriptor above 2 marked close-on-exec, then the mapping put in place. Moves the
/// error pipe above every target so no mapping overwrites it.
static void corral_child_descriptors(const corral_spawn_request *request, int *error_fd_in_out) {
    int error_fd = *error_fd_in_out;
    // Nothing but the mapped descriptors survives execve (the error pipe closes on a
    // successful exec). Marked before the mapping, which clears the flag on its targets.
    if (corral_cloexec_from(3) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_CLOSE_FDS, errno, 0);
    }

    // Descriptors: first move every source above all targets and sources (so no dup2
    // overwrites a source another mapping still needs), then dup2 each into place.
    if (request->fd_count > CORRAL_MAX_FDS) {
        corral_child_fail(error_fd, CORRAL_STAGE_STDIO, EMFILE, request->fd_count);
    }
    // The shuffle below needs numbers above every target: a target near a soft
    // RLIMIT_NOFILE of 1024 (fds 1023) would leave none. The soft limit goes up to the hard
    // one for it, and back down right after (the job's own open-files limit comes later).
    struct rlimit files;
    int raised = 0;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        struct rlimit wide = { files.rlim_max, files.rlim_max };
        raised = setrlimit(RLIMIT_NOFILE, &wide) == 0;
    }
    int above = 3;
    for (int index = 0; index < request->fd_count; index++) {
        if (request->fds[index].target >= above) above = request->fds[index].target + 1;
        if (request->fds[index].source >= above) above = request->fds[index].source + 1;
    }
    // The error pipe must not be a target either.
    int lifted_error_fd = fcntl(error_fd, F_DUPFD_CLOEXEC, above);
    if (lifted_error_fd < 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_STDIO, errno, -1);
    }
    error_fd = lifted_error_fd;
    above = error_fd + 1;
    int moved[CORRAL_MAX_FDS];
    for (int index = 0; index < request->fd_count; index++) {
        moved[index] = fcntl(request->fds[index].source, F_DUPFD_CLOEXEC, above);
        if (moved[index] < 0) {
            corral_child_fail(error_fd, CORRAL_STAGE_STDIO, errno, request->fds[index].target);
        }
    }
    for (int index = 0; index < request->fd_count; index++) {
        if (dup2(moved[index], request->fds[index].target) < 0) {
            corral_child_fail(error_fd, CORRAL_STAGE_STDIO, errno, request->fds[index].target);
        }
    }
    if (raised && setrlimit(RLIMIT_NOFILE, &files) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_RLIMIT, errno, RLIMIT_NOFILE);
    }

    *error_fd_in_out = error_fd;
}

/// The kernel's own `struct sigaction` is at most this big on Linux's architectures; all
/// zeros is SIG_DFL with no flags and an empty mask in every layout, and the handler comes
/// first in each.
#define CORRAL_KERNEL_SIGACTION_WORDS 8
/// The kernel's signal set: 64 signals (x86_64, aarch64), not the C library's 1024.
#define CORRAL_KERNEL_SIGSET_BYTES 8

/// The C library reserves a few real-time signals for itself (SIGCANCEL, SIGSETXID) and
/// refuses `sigaction` on them, but a disposition of SIG_IGN inherited from whoever started
/// Corral would pass through execve all the same: ask the kernel directly.
static void corral_child_reset_reserved_signal(int signal_number, int error_fd) {
    unsigned long current[CORRAL_KERNEL_SIGACTION_WORDS];
    memset(current, 0, sizeof(current));
    if (syscall(SYS_rt_sigaction, signal_number, NULL, current, CORRAL_KERNEL_SIGSET_BYTES) != 0) {
        return; // not a signal this kernel has
    }
    if (current[0] == 0) {
        return; // SIG_DFL already
    }
    unsigned long fallback[CORRAL_KERNEL_SIGACTION_WORDS];
    memset(fallback, 0, sizeof(fallback));
    if (syscall(SYS_rt_sigaction, signal_number, fallback, NULL, CORRAL_KERNEL_SIGSET_BYTES) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_SIGNALS, errno, signal_number);
    }
}

/// Handlers are the parent's code and must never run in the child: every caught or
/// ignored signal goes back to its default. The mask stays full until just before execve.
static void corral_child_reset_signals(int error_fd) {
    for (int signal_number = 1; signal_number < NSIG; signal_number++) {
        if (signal_number == SIGKILL || signal_number == SIGSTOP) {
            continue;
        }
        struct sigaction current;
        if (sigaction(signal_number, NULL, &current) != 0) {
            corral_child_reset_reserved_signal(signal_number, error_fd);
            continue;
        }
        if (current.sa_handler != SIG_DFL) {
            struct sigaction fallback;
            memset(&fallback, 0, sizeof(fallback));
            fallback.sa_handler = SIG_DFL;
            if (sigaction(signal_number, &fallback, NULL) != 0) {
                corral_child_fail(error_fd, CORRAL_STAGE_SIGNALS, errno, signal_number);
            }
        }
    }
}

/// Joins the run's cgroups before a single instruction of the program runs.
static void corral_child_join_cgroups(const corral_spawn_request *request, int error_fd) {
    for (int index = 0; index < request->cgroup_procs_count; index++) {
        ssize_t written;
        do {
            written = write(request->cgroup_procs_fds[index], "0", 1);
        } while (written < 0 && errno == EINTR);
        if (written != 1) {
            corral_child_fail(error_fd, CORRAL_STAGE_CGROUP, written < 0 ? errno : EIO, index);
        }
    }
}

static void corral_child_exec_filtered(const corral_spawn_request *request, int error_fd, const corral_isolation *isolation);

/// A plain run started by root becomes its user (nobody unless asked): no supplementary
/// groups, the ids (which clears every capability), no_new_privs, and the parent-death
/// signal again (a change of credentials clears it). Raw system calls: the C library's
/// wrappers would signal the parent's other threads (setxid), whose memory this child shares.
static void corral_child_become_user(const corral_spawn_request *request, int error_fd) {
    if (syscall(SYS_setgroups, 0, NULL) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 1);
    }
    if (syscall(SYS_setresgid, request->gid, request->gid, request->gid) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 2);
    }
    if (syscall(SYS_setresuid, request->uid, request->uid, request->uid) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 3);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PRIVILEGES, errno, 6);
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PDEATHSIG, errno, 0);
    }
    if (getppid() != request->parent_pid) {
        corral_child_fail(error_fd, CORRAL_STAGE_PDEATHSIG, ESRCH, 0);
    }
}

/// chdir, rlimits, an empty signal mask, execve. Does not return.
static void corral_child_exec(const corral_spawn_request *request, int error_fd) {
    corral_child_exec_filtered(request, error_fd, NULL);
}

/// The same, with the seccomp filter installed last, right before execve (so the steps
/// before it need no system call it might forbid).
static void corral_child_exec_filtered(const corral_spawn_request *request, int error_fd, const corral_isolation *isolation) {
    // A plain run has entered its directory already (corral_child_main); an isolated one
    // changes to /box.
    if (isolation == NULL && request->directory_fd >= 0) {
        // done
    } else if (request->directory != NULL && chdir(request->directory) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_CHDIR, errno, 0);
    }
    for (int index = 0; index < request->rlimit_count; index++) {
        const corral_rlimit *limit = &request->rlimits[index];
        struct rlimit value = { (rlim_t)limit->soft, (rlim_t)limit->hard };
        if (setrlimit(limit->resource, &value) != 0) {
            corral_child_fail(error_fd, CORRAL_STAGE_RLIMIT, errno, limit->resource);
        }
    }
    sigset_t empty;
    sigemptyset(&empty);
    if (sigprocmask(SIG_SETMASK, &empty, NULL) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_SIGNALS, errno, 0);
    }
    if (isolation != NULL && isolation->seccomp_filter != NULL) {
        struct sock_fprog program = { isolation->seccomp_length, (struct sock_filter *)isolation->seccomp_filter };
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) != 0) {
            corral_child_fail(error_fd, CORRAL_STAGE_SECCOMP, errno, 0);
        }
    }
    execve(request->path, request->argv, request->envp);
    corral_child_fail(error_fd, CORRAL_STAGE_EXEC, errno, 0);
}

static int corral_child_main(void *argument) {
    const corral_child_context *context = argument;
    const corral_spawn_request *request = context->request;
    int error_fd = context->error_fd;

    // A session and process group of its own: pgid = sid = pid, no controlling terminal.
    if (setsid() < 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_SETSID, errno, 0);
    }
    corral_child_reset_signals(error_fd);

    // Die with the thread that started us; if it is already gone, do not run at all.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PDEATHSIG, errno, 0);
    }
    if (getppid() != request->parent_pid) {
        corral_child_fail(error_fd, CORRAL_STAGE_PDEATHSIG, ESRCH, 0);
    }

    if (!context->in_cgroup) {
        corral_child_join_cgroups(request, error_fd);
    }
    // The working directory comes as a descriptor Corral opened beneath the job's directory
    // (never a path a program could have swapped); entered before the descriptor shuffle,
    // which may reuse its number for one of the program's.
    if (request->directory_fd >= 0 && fchdir(request->directory_fd) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_CHDIR, errno, 0);
    }
    corral_child_descriptors(request, &error_fd);
    if (request->switch_user) {
        corral_child_become_user(request, error_fd);
    }
    corral_child_exec(request, error_fd);
    return 127;
}

static __thread void *corral_thread_stack = NULL;

// MARK: Isolation

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

/// Brings the loopback of a new network namespace up.
static int corral_loopback_up(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    int result = ioctl(sock, SIOCGIFFLAGS, &request);
    if (result == 0) {
        request.ifr_flags |= IFF_UP | IFF_RUNNING;
        result = ioctl(sock, SIOCSIFFLAGS, &request);
    }
    int saved = errno;
    close(sock);
    errno = saved;
    return result;
}

/// PID 1 of the run's namespaces: sets them up, starts the program, reaps every orphan
/// so zombies never pile up, forwards the program's end to Corral, and exits, which makes
/// the kernel kill whatever is left. It dies with Corral (PR_SET_PDEATHSIG), and with it
/// every process of the namespace. Does not return.
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

static void corral_isolated_init(const corral_spawn_request *request, int error_fd) {
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
    // Mounts made here stay here; a fresh /proc shows this PID namespace only.
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_NAMESPACES, errno, 1);
    }
    if (isolation->root != NULL) {
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
    // This init is a copy of Corral and holds every descriptor Corral had: other runs' pipe
    // ends and captures, a server's sockets, cgroup files, the job directory's descriptors.
    // It keeps only what it and the program need, so a pipe's reader sees EOF when its
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

/// What the child wrote on the error pipe: a whole report, nothing (success), or a
/// torn one (reported as an I/O error at exec).
static void corral_record_failure(corral_spawn_result *result, const corral_child_failure *failure, size_t got) {
    if (got == sizeof(*failure)) {
        result->failure = *failure;
    } else if (got > 0) {
        result->failure.stage = CORRAL_STAGE_EXEC;
        result->failure.error = EIO;
    }
}

/// The isolated spawn: a fork-style clone (the init never execs, so the parent cannot wait
/// for it as with vfork) into new namespaces. It returns at once: the parent learns of a
/// setup failure from the error pipe (*setup_fd), which reaches EOF once the program has
/// exec'd (or failed), and watches it with its other descriptors.
static int corral_spawn_isolated(const corral_spawn_request *request, corral_spawn_result *result, int *setup_fd) {
    int error_pipe[2];
    if (pipe2(error_pipe, O_CLOEXEC) != 0) {
        return errno;
    }
    unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
    if (request->isolation->new_network) {
        flags |= CLONE_NEWNET;
    }
    if (request->isolation->new_user) {
        flags |= CLONE_NEWUSER;
    }
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int pidfd = -1;
    long pid = syscall(SYS_clone, flags, NULL, &pidfd, NULL, 0);
    if (pid == 0) {
        close(error_pipe[0]);
        corral_isolated_init(request, error_pipe[1]);
        _exit(127);
    }
    int clone_error = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(error_pipe[1]);
    if (pid < 0) {
        close(error_pipe[0]);
        return clone_error;
    }
    result->pid = (pid_t)pid;
    result->pidfd = pidfd;
    *setup_fd = error_pipe[0];
    return 0;
}

int corral_spawn_isolated_start(const corral_spawn_request *request, corral_spawn_result *result, int *setup_fd) {
    result->pid = -1;
    result->pidfd = -1;
    *setup_fd = -1;
    memset(&result->failure, 0, sizeof(result->failure));
    return corral_spawn_isolated(request, result, setup_fd);
}

int corral_isolated_setup_read(int setup_fd, corral_child_failure *failure, size_t *got) {
    while (*got < sizeof(*failure)) {
        ssize_t count = read(setup_fd, (char *)failure + *got, sizeof(*failure) - *got);
        if (count < 0 && errno == EINTR) continue;
        if (count < 0 && errno == EAGAIN) return 0;
        if (count <= 0) return 1; /* EOF: the program exec'd (or the init died) */
        *got += (size_t)count;
    }
    return 1;
}

void corral_isolated_setup_finish(corral_spawn_result *result, const corral_child_failure *failure, size_t got, int timed_out) {
    if (timed_out) {
        result->failure.stage = CORRAL_STAGE_NAMESPACES;
        result->failure.error = ETIMEDOUT;
        result->failure.detail = 8;
        return;
    }
    corral_record_failure(result, failure, got);
}

int corral_spawn(const corral_spawn_request *request, corral_spawn_result *result) {
    return corral_spawn_into_cgroup(request, -1, result);
}

int corral_spawn_into_cgroup(const corral_spawn_request *request, int cgroup_fd, corral_spawn_result *result) {
    result->pid = -1;
    result->pidfd = -1;
    memset(&result->failure, 0, sizeof(result->failure));
    if (request->isolation != NULL) {
        return EINVAL; /* isolated runs start with corral_spawn_isolated_start */
    }

    if (corral_thread_stack == NULL) {
        void *stack = mmap(NULL, CORRAL_CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) {
            return errno;
        }
        corral_thread_stack = stack;
    }

    int error_pipe[2];
    // Non-blocking: a fork elsewhere in the process may hold a copy of the write end, so
    // the parent never waits for EOF; the vfork semantics already tell it the child is done.
    if (pipe2(error_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        return errno;
    }

    // Block every signal so no handler of ours runs in the child before it resets them.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);

    corral_child_context context = { request, error_pipe[1], 0 };
    int pidfd = -1;
    pid_t pid = -1;
    int clone_error = ENOSYS;
    if (cgroup_fd >= 0) {
        context.in_cgroup = 1;
        pid = corral_clone_vfork_into_cgroup(corral_child_main, &context, corral_thread_stack,
                                             CORRAL_CHILD_STACK_SIZE, &pidfd, cgroup_fd);
        clone_error = errno;
    }
    // No clone3 here (ENOSYS; E2BIG or EINVAL from a kernel without CLONE_INTO_CGROUP):
    // the usual clone, and the child joins through `cgroup.procs`.
    if (pid < 0 && (clone_error == ENOSYS || clone_error == E2BIG || clone_error == EINVAL)) {
        context.in_cgroup = 0;
        void *stack_top = (char *)corral_thread_stack + CORRAL_CHILD_STACK_SIZE;
        pid = clone(corral_child_main, stack_top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &context, &pidfd);
        clone_error = errno;
    }

    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(error_pipe[1]);

    if (pid < 0) {
        close(error_pipe[0]);
        return clone_error;
    }
    result->pid = pid;
    result->pidfd = pidfd;

    // CLONE_VFORK: the child has exec'd or exited by now, so whatever it wrote is there.
    corral_child_failure failure;
    ssize_t got;
    do {
        got = read(error_pipe[0], &failure, sizeof(failure));
    } while (got < 0 && errno == EINTR);
    close(error_pipe[0]);
    corral_record_failure(result, &failure, got > 0 ? (size_t)got : 0);
    return 0;
}
