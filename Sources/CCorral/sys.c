// Thin wrappers for the parent side; nothing here runs in the child.
#define _GNU_SOURCE
#include "corral_sys.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <signal.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int corral_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int corral_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int corral_pidfd_send_signal(int pidfd, int signal_number) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal_number, NULL, 0);
}

corral_wait_result corral_wait4(pid_t pid, int options) {
    corral_wait_result result;
    memset(&result, 0, sizeof(result));
    do {
        result.pid = wait4(pid, &result.status, options, &result.usage);
    } while (result.pid < 0 && errno == EINTR);
    return result;
}

int corral_waitid(int idtype, int id, int options, corral_waitid_result *result) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    memset(result, 0, sizeof(*result));
    long rc;
    do {
        rc = syscall(SYS_waitid, idtype, id, &info, options, &result->usage);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        return -1;
    }
    result->pid = info.si_pid;
    result->code = info.si_code;
    result->status = info.si_status;
    return 0;
}

int corral_wifexited(int status) { return WIFEXITED(status); }
int corral_wexitstatus(int status) { return WEXITSTATUS(status); }
int corral_wifsignaled(int status) { return WIFSIGNALED(status); }
int corral_wtermsig(int status) { return WTERMSIG(status); }
int corral_wcoredump(int status) { return WCOREDUMP(status); }
int corral_wifstopped(int status) { return WIFSTOPPED(status); }
int corral_wstopsig(int status) { return WSTOPSIG(status); }
int corral_wifcontinued(int status) { return WIFCONTINUED(status); }

int corral_wall(void) { return __WALL; }
int corral_wnowait(void) { return WNOWAIT; }
int corral_p_pidfd(void) { return P_PIDFD; }
int corral_nsig(void) { return NSIG; }
uint64_t corral_rlim_infinity(void) { return (uint64_t)RLIM_INFINITY; }

int corral_pipe(int ends[2]) {
    return pipe2(ends, O_CLOEXEC);
}

int corral_status_channel(int ends[2]) {
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) return -1;
    int on = 1;
    if (setsockopt(ends[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0
        || fcntl(ends[0], F_SETFL, O_NONBLOCK) != 0) {
        int error = errno;
        close(ends[0]);
        close(ends[1]);
        errno = error;
        return -1;
    }
    return 0;
}

long corral_status_receive(int fd, void *message, unsigned long size, pid_t *sender) {
    *sender = 0;
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct iovec vector = { message, size };
    struct msghdr header;
    memset(&header, 0, sizeof(header));
    header.msg_iov = &vector;
    header.msg_iovlen = 1;
    header.msg_control = control.space;
    header.msg_controllen = sizeof(control.space);
    ssize_t got;
    do {
        got = recvmsg(fd, &header, MSG_CMSG_CLOEXEC);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return -1;
    for (struct cmsghdr *item = CMSG_FIRSTHDR(&header); item != NULL; item = CMSG_NXTHDR(&header, item)) {
        if (item->cmsg_level == SOL_SOCKET && item->cmsg_type == SCM_CREDENTIALS
            && item->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred credentials;
            memcpy(&credentials, CMSG_DATA(item), sizeof(credentials));
            *sender = credentials.pid;
        }
    }
    return (long)got;
}

int corral_audit_listen(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_AUDIT);
    if (fd < 0) return -1;
    struct sockaddr_nl address;
    memset(&address, 0, sizeof(address));
    address.nl_family = AF_NETLINK;
    address.nl_groups = 1U << (AUDIT_NLGRP_READLOG - 1);
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
        int error = errno;
        close(fd);
        errno = error;
        return -1;
    }
    return fd;
}

int corral_memfd(const char *name) {
    return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
}

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
struct corral_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
#define CORRAL_RESOLVE_NO_MAGICLINKS 0x02
#define CORRAL_RESOLVE_NO_SYMLINKS 0x04
#define CORRAL_RESOLVE_BENEATH 0x08

int corral_openat_beneath(int dirfd, const char *path, int flags, unsigned int mode) {
    struct corral_open_how how = {
        (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC), (flags & (O_CREAT | __O_TMPFILE)) ? (uint64_t)mode : 0,
        CORRAL_RESOLVE_BENEATH | CORRAL_RESOLVE_NO_SYMLINKS | CORRAL_RESOLVE_NO_MAGICLINKS,
    };
    long fd;
    do {
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    } while (fd < 0 && errno == EINTR);
    return (int)fd;
}

int corral_o_path(void) { return O_PATH; }
int corral_o_directory(void) { return O_DIRECTORY; }

int corral_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int corral_cancel_signalfd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int corral_same_open_file(int first, int second) {
    pid_t self = getpid();
    long result = syscall(SYS_kcmp, self, self, 0 /* KCMP_FILE */, first, second);
    return result < 0 ? -1 : result == 0;
}

pid_t corral_gettid(void) { return (pid_t)syscall(SYS_gettid); }

const char *corral_signal_name(int signal_number) {
    static const char *const names[] = {
        [SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT", [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
        [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT", [SIGBUS] = "SIGBUS", [SIGFPE] = "SIGFPE",
        [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
        [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM", [SIGSTKFLT] = "SIGSTKFLT",
        [SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
        [SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG", [SIGXCPU] = "SIGXCPU",
        [SIGXFSZ] = "SIGXFSZ", [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
        [SIGIO] = "SIGIO", [SIGPWR] = "SIGPWR", [SIGSYS] = "SIGSYS",
    };
    if (signal_number > 0 && signal_number < (int)(sizeof(names) / sizeof(names[0]))) {
        return names[signal_number];
    }
    return NULL;
}

int corral_allowed_cpus(uint64_t *mask, int words) {
    memset(mask, 0, (size_t)words * sizeof(uint64_t));
    long got = syscall(SYS_sched_getaffinity, 0, (size_t)words * sizeof(uint64_t), mask);
    return got < 0 ? -1 : 0;
}

int corral_pidfd_mount_namespace(int pidfd) {
    // PIDFD_GET_MNT_NAMESPACE (_IO(PIDFS_IOCTL_MAGIC 0xFF, 3)), Linux 6.11; older headers lack it.
    return ioctl(pidfd, _IO(0xFF, 3), 0);
}
