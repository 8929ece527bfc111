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
