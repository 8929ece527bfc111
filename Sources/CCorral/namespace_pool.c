// Network namespaces made ahead of time. Creating one (and bringing its loopback up) is the
// largest single cost of an isolated run's clone (about 0.4-0.5 ms on the development host);
// a thread of the pool pays it between runs, and the run's init enters the prepared one with
// setns (a few microseconds). Each one is fresh (only the loopback, made here, exists in
// it), handed to exactly one run and closed by Corral right after that run's clone. Runs on
// the pool's own thread, not between fork and exec.
#define _GNU_SOURCE
#include "corral_namespace_pool.h"
#include "loopback.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

// The network namespace of the calling thread, from a socket made in it (SIOCGSKNS), not
// from /proc/thread-self: a lookup below a thread's own /proc/PID/task/TID leaves dentries
// that, once the process exits, make its parent's wait4 spin for milliseconds on a busy host
// (seen here: the reap of a process whose second thread read its own task directory took
// 5-16 ms at the 90th percentile, against microseconds without).
static int current_network_namespace(void) {
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    int namespace = ioctl(sock, SIOCGSKNS);
    int saved = errno;
    close(sock);
    if (namespace < 0) {
        errno = saved;
        return -1;
    }
    // Close-on-exec (the kernel makes it so; set again for one that did not).
    if (fcntl(namespace, F_SETFD, FD_CLOEXEC) != 0) {
        saved = errno;
        close(namespace);
        errno = saved;
        return -1;
    }
    return namespace;
}

int corral_network_namespace_own(void) {
    return current_network_namespace();
}

int corral_network_namespace_prepare(int own, int *stranded) {
    *stranded = 0;
    if (unshare(CLONE_NEWNET) != 0) return -1;
    int prepared = -1;
    int error = 0;
    if (corral_loopback_up() != 0) {
        error = errno;
    } else {
        prepared = current_network_namespace();
        if (prepared < 0) error = errno;
    }
    // Back to where the thread was, so that nothing but the descriptor holds the new one.
    if (setns(own, CLONE_NEWNET) != 0) {
        error = errno;
        *stranded = 1;
    }
    if (error != 0) {
        if (prepared >= 0) close(prepared);
        errno = error;
        return -1;
    }
    return prepared;
}

unsigned long corral_namespace_inode(int fd) {
    struct stat status;
    if (fstat(fd, &status) != 0) return 0;
    return (unsigned long)status.st_ino;
}

int corral_name_thread(const char *name) {
    return prctl(PR_SET_NAME, name, 0, 0, 0);
}
