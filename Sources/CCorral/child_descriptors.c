// The child's descriptors (see child.h): every one above 2 marked close-on-exec, then the
// run's mapping put in place. Async-signal-safe: system calls only.
#define _GNU_SOURCE
#include "corral_spawn.h"
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/// Marks every descriptor from `first` up close-on-exec (so the error pipe stays usable
/// until execve). Falls back to a loop on kernels without close_range.
int corral_cloexec_from(int first) {
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
void corral_child_descriptors(const corral_spawn_request *request, int *error_fd_in_out) {
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
