// Starting an isolated run: a clone into new namespaces whose child becomes the run's init.
// Two ways: a vfork-style clone that execs the corral-init executable (isolation->init_fd),
// so that nothing of Corral's address space is copied; or, without it (no corral-init found,
// or rootless, where an exec would drop the capabilities the init needs in its user
// namespace), a fork-style clone of Corral that stays the init. The code between the clone
// and the exec is async-signal-safe.
#define _GNU_SOURCE
#include "corral_init.h"
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_execveat
#define SYS_execveat 322
#endif

/// The plan, the error pipe, the status channel, the mapping's sources, the mounts' sources,
/// the mount template, the executable.
#define CORRAL_INIT_MAX_FDS (3 + CORRAL_MAX_FDS + CORRAL_MAX_FDS + 2)

typedef struct corral_init_context {
    const corral_spawn_request *request;
    int error_fd;
    int plan_fd;
    /// A prepared network namespace (namespace_pool.c) to enter instead of a new one, or -1.
    int network_fd;
} corral_init_context;

/// Puts what corral-init needs at the numbers it expects (corral_init.h), the executable
/// last (close-on-exec), and closes every other descriptor: the init gets nothing of
/// Corral's. Returns the executable's new number. Fails through corral_child_fail.
static int corral_init_layout(const corral_spawn_request *request, int plan_fd, int *error_fd) {
    const corral_isolation *isolation = request->isolation;
    int sources[CORRAL_INIT_MAX_FDS];
    int count = 0;
    sources[count++] = plan_fd;
    sources[count++] = *error_fd;
    sources[count++] = isolation->status_fd;
    if (request->fd_count > CORRAL_MAX_FDS) corral_child_fail(*error_fd, CORRAL_STAGE_STDIO, EMFILE, request->fd_count);
    for (int index = 0; index < request->fd_count; index++) sources[count++] = request->fds[index].source;
    for (int index = 0; index < isolation->mount_count; index++) {
        if (isolation->mounts[index].source_fd < 0) continue;
        if (count >= CORRAL_INIT_MAX_FDS - 2) corral_child_fail(*error_fd, CORRAL_STAGE_INIT_START, EMFILE, 1);
        sources[count++] = isolation->mounts[index].source_fd;
    }
    if (isolation->mount_template_fd >= 0) sources[count++] = isolation->mount_template_fd;
    sources[count++] = isolation->init_fd;
    int above = 3 + count;
    for (int index = 0; index < count; index++) {
        if (sources[index] >= above) above = sources[index] + 1;
    }
    // Room above every number in use (as in corral_child_descriptors): the soft
    // RLIMIT_NOFILE up to the hard one for the shuffle, and back.
    struct rlimit files;
    int raised = 0;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        struct rlimit wide = { files.rlim_max, files.rlim_max };
        raised = setrlimit(RLIMIT_NOFILE, &wide) == 0;
    }
    int moved[CORRAL_INIT_MAX_FDS];
    for (int index = 0; index < count; index++) {
        moved[index] = fcntl(sources[index], F_DUPFD_CLOEXEC, above);
        if (moved[index] < 0) corral_child_fail(*error_fd, CORRAL_STAGE_INIT_START, errno, 2);
    }
    *error_fd = moved[1];
    for (int index = 0; index < count; index++) {
        // dup2 clears close-on-exec: these reach the init. dup3 keeps it on the executable.
        int result = index == count - 1 ? dup3(moved[index], 3 + index, O_CLOEXEC) : dup2(moved[index], 3 + index);
        if (result < 0) corral_child_fail(*error_fd, CORRAL_STAGE_INIT_START, errno, 3);
    }
    *error_fd = CORRAL_INIT_ERROR_FD;
    if (raised && setrlimit(RLIMIT_NOFILE, &files) != 0) corral_child_fail(*error_fd, CORRAL_STAGE_RLIMIT, errno, RLIMIT_NOFILE);
    if (syscall(SYS_close_range, (unsigned int)(3 + count), ~0U, 0) != 0) {
        corral_child_fail(*error_fd, CORRAL_STAGE_INIT_START, errno, 4);
    }
    return 3 + count - 1;
}

/// The vfork-style child: the init's first steps, its descriptors, the exec of corral-init
/// (by descriptor: never a path that could have been swapped since Corral checked it).
static int corral_init_child(void *argument) {
    const corral_init_context *context = argument;
    int error_fd = context->error_fd;
    // Before anything else of the run's: the init and the program never see the host's
    // network namespace. The descriptor itself is not passed on (corral_init_layout closes it).
    if (context->network_fd >= 0 && setns(context->network_fd, CLONE_NEWNET) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_NAMESPACES, errno, 9);
    }
    corral_isolated_enter(context->request, error_fd);
    int executable = corral_init_layout(context->request, context->plan_fd, &error_fd);
    static char *const argv[] = { "corral-init", NULL };
    static char *const envp[] = { NULL };
    syscall(SYS_execveat, executable, "", argv, envp, AT_EMPTY_PATH);
    corral_child_fail(error_fd, CORRAL_STAGE_INIT_START, errno, 5);
}

/// `flags`: the namespaces. The calling thread waits until corral-init has started (or the
/// child failed before it).
static long corral_spawn_init_executable(const corral_spawn_request *request, unsigned long flags, int error_fd, int network_fd, int *pidfd) {
    void *stack_top = corral_child_stack_top();
    if (stack_top == NULL) return -1;
    int plan_fd = corral_init_plan_write(request);
    if (plan_fd < 0) return -1;
    corral_init_context context = { request, error_fd, plan_fd, network_fd };
    long pid = clone(corral_init_child, stack_top, flags | CLONE_VM | CLONE_VFORK, &context, pidfd);
    int saved = errno;
    close(plan_fd);
    errno = saved;
    return pid;
}

/// The isolated spawn. It returns at once: the parent learns of a setup failure from the
/// error pipe (*setup_fd), which reaches EOF once the program has exec'd (or failed), and
/// watches it with its other descriptors.
static int corral_spawn_isolated(const corral_spawn_request *request, int network_fd, corral_spawn_result *result, int *setup_fd) {
    int error_pipe[2];
    if (pipe2(error_pipe, O_CLOEXEC) != 0) {
        return errno;
    }
    unsigned long flags = CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
    int exec_init = request->isolation->init_fd >= 0 && !request->isolation->new_user;
    if (request->isolation->mount_template_fd >= 0) {
        // Only corral-init enters a template; it leaves Corral's mount namespace for a
        // copy of the template (no copy of the host's mounts is made, or torn down).
        if (!exec_init) {
            close(error_pipe[0]);
            close(error_pipe[1]);
            return EINVAL;
        }
    } else {
        flags |= CLONE_NEWNS;
    }
    // A prepared network namespace only for corral-init (the vfork-style child enters it);
    // otherwise, or without one, the clone makes a new one.
    int enter_network = exec_init && request->isolation->new_network && network_fd >= 0 ? network_fd : -1;
    if (request->isolation->new_network && enter_network < 0) {
        flags |= CLONE_NEWNET;
    }
    if (request->isolation->new_user) {
        flags |= CLONE_NEWUSER;
    }
    // Every signal blocked so no handler of Corral's runs in the child before it resets them.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int pidfd = -1;
    long pid;
    if (exec_init) {
        pid = corral_spawn_init_executable(request, flags, error_pipe[1], enter_network, &pidfd);
    } else {
        // A fork-style clone: the init never execs, so the parent cannot wait for it as
        // with vfork. A raw clone, so no atfork handler runs.
        pid = syscall(SYS_clone, flags, NULL, &pidfd, NULL, 0);
        if (pid == 0) {
            close(error_pipe[0]);
            corral_isolated_enter(request, error_pipe[1]);
            corral_isolated_init_run(request, error_pipe[1]);
        }
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
    return corral_spawn_isolated_start_prepared(request, -1, result, setup_fd);
}

int corral_spawn_isolated_start_prepared(const corral_spawn_request *request, int network_fd, corral_spawn_result *result, int *setup_fd) {
    result->pid = -1;
    result->pidfd = -1;
    *setup_fd = -1;
    memset(&result->failure, 0, sizeof(result->failure));
    return corral_spawn_isolated(request, network_fd, result, setup_fd);
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
