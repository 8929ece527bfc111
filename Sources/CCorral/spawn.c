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
#include <linux/filter.h>
#include <linux/seccomp.h>

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
void corral_child_reset_signals(int error_fd) {
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
void corral_child_join_cgroups(const corral_spawn_request *request, int error_fd) {
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

void corral_child_pin_cpus(const corral_spawn_request *request, int error_fd) {
    if (request->cpu_mask == NULL || request->cpu_mask_words <= 0) {
        return;
    }
    if (request->cpu_mask_words > CORRAL_MAX_CPU_MASK_WORDS) {
        corral_child_fail(error_fd, CORRAL_STAGE_AFFINITY, EINVAL, request->cpu_mask_words);
    }
    // The raw call: the kernel takes the mask as it is (bits past its CPUs must be zero).
    if (syscall(SYS_sched_setaffinity, 0, (size_t)request->cpu_mask_words * sizeof(uint64_t), request->cpu_mask) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_AFFINITY, errno, 0);
    }
}

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
void corral_child_exec_filtered(const corral_spawn_request *request, int error_fd, const corral_isolation *isolation) {
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
    // Every disposition is SIG_DFL here (corral_child_reset_signals, in this process or in
    // the isolated init it was forked from); the ones asked for become SIG_IGN, which execve
    // keeps. Set while the mask is still full, so none can arrive half set.
    for (int signal_number = 1; signal_number <= 64; signal_number++) {
        if ((request->ignored_signals & (1ULL << (signal_number - 1))) == 0) {
            continue;
        }
        struct sigaction ignore;
        memset(&ignore, 0, sizeof(ignore));
        ignore.sa_handler = SIG_IGN;
        if (sigaction(signal_number, &ignore, NULL) != 0) {
            corral_child_fail(error_fd, CORRAL_STAGE_SIGNALS, errno, signal_number);
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
    corral_child_pin_cpus(request, error_fd);
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

void *corral_child_stack_top(void) {
    if (corral_thread_stack == NULL) {
        void *stack = mmap(NULL, CORRAL_CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) {
            return NULL;
        }
        corral_thread_stack = stack;
    }
    return (char *)corral_thread_stack + CORRAL_CHILD_STACK_SIZE;
}


/// What the child wrote on the error pipe: a whole report, nothing (success), or a
/// torn one (reported as an I/O error at exec).
void corral_record_failure(corral_spawn_result *result, const corral_child_failure *failure, size_t got) {
    if (got == sizeof(*failure)) {
        result->failure = *failure;
    } else if (got > 0) {
        result->failure.stage = CORRAL_STAGE_EXEC;
        result->failure.error = EIO;
    }
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

    void *stack_top = corral_child_stack_top();
    if (stack_top == NULL) {
        return errno;
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
        pid = corral_clone_vfork_into_cgroup(corral_child_main, &context, (char *)stack_top - CORRAL_CHILD_STACK_SIZE,
                                             CORRAL_CHILD_STACK_SIZE, &pidfd, cgroup_fd);
        clone_error = errno;
    }
    // No clone3 here (ENOSYS; E2BIG or EINVAL from a kernel without CLONE_INTO_CGROUP):
    // the usual clone, and the child joins through `cgroup.procs`.
    if (pid < 0 && (clone_error == ENOSYS || clone_error == E2BIG || clone_error == EINVAL)) {
        context.in_cgroup = 0;
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
