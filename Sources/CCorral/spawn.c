// The child side of Corral's spawn. Everything between clone and execve is here and is
// async-signal-safe: system calls only, no allocation, no locks, no Swift. The child shares
// the parent's memory (CLONE_VM), so it writes nothing but its own stack and reports a
// failure as {stage, errno, detail} on a close-on-exec pipe.
#define _GNU_SOURCE
#include "corral_spawn.h"

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
/// The most descriptors one child can be given (stdio plus pipes).
#define CORRAL_MAX_FDS 64

typedef struct corral_child_context {
    const corral_spawn_request *request;
    int error_fd;
} corral_child_context;

static void corral_child_fail(int error_fd, int stage, int error, int detail) {
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

static int corral_child_main(void *argument) {
    const corral_child_context *context = argument;
    const corral_spawn_request *request = context->request;
    int error_fd = context->error_fd;

    // A session and process group of its own: pgid = sid = pid, no controlling terminal.
    if (setsid() < 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_SETSID, errno, 0);
    }

    // Handlers are the parent's code and must never run here: every caught or ignored
    // signal goes back to its default. The mask stays full until just before execve.
    for (int signal_number = 1; signal_number < NSIG; signal_number++) {
        if (signal_number == SIGKILL || signal_number == SIGSTOP) {
            continue;
        }
        struct sigaction current;
        if (sigaction(signal_number, NULL, &current) != 0) {
            continue; // reserved by the C library (SIGCANCEL, SIGSETXID): nothing to reset
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

    // Die with the thread that started us; if it is already gone, do not run at all.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_PDEATHSIG, errno, 0);
    }
    if (getppid() != request->parent_pid) {
        corral_child_fail(error_fd, CORRAL_STAGE_PDEATHSIG, ESRCH, 0);
    }

    // Join the run's cgroups before a single instruction of the program runs.
    for (int index = 0; index < request->cgroup_procs_count; index++) {
        ssize_t written;
        do {
            written = write(request->cgroup_procs_fds[index], "0", 1);
        } while (written < 0 && errno == EINTR);
        if (written != 1) {
            corral_child_fail(error_fd, CORRAL_STAGE_CGROUP, written < 0 ? errno : EIO, index);
        }
    }

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

    if (request->directory != NULL && chdir(request->directory) != 0) {
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

    execve(request->path, request->argv, request->envp);
    corral_child_fail(error_fd, CORRAL_STAGE_EXEC, errno, 0);
    return 127;
}

static __thread void *corral_thread_stack = NULL;

int corral_spawn(const corral_spawn_request *request, corral_spawn_result *result) {
    result->pid = -1;
    result->pidfd = -1;
    memset(&result->failure, 0, sizeof(result->failure));

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

    corral_child_context context = { request, error_pipe[1] };
    int pidfd = -1;
    void *stack_top = (char *)corral_thread_stack + CORRAL_CHILD_STACK_SIZE;
    pid_t pid = clone(corral_child_main, stack_top,
                      CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &context, &pidfd);
    int clone_error = errno;

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
    if (got == (ssize_t)sizeof(failure)) {
        result->failure = failure;
    } else if (got > 0) {
        result->failure.stage = CORRAL_STAGE_EXEC;
        result->failure.error = EIO;
    }
    return 0;
}
