// The plain spawn's clone into a cgroup2 directory (clone3 with CLONE_INTO_CGROUP): not
// part of the module's public header. Async-signal-safe.
#ifndef CORRAL_CLONE_INTO_CGROUP_H
#define CORRAL_CLONE_INTO_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

/// clone3(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_INTO_CGROUP, exit signal SIGCHLD):
/// the child starts in the cgroup2 directory `cgroup_fd` (opened O_RDONLY | O_DIRECTORY)
/// and runs `child(argument)` on the stack [stack, stack + stack_size), exiting with what
/// it returns; the caller is suspended until the child has exec'd or exited (vfork).
/// Returns the child's pid, or -1 with errno: ENOSYS when the kernel has no clone3 or this
/// architecture no trampoline (then the caller clones the usual way and the child joins
/// by writing `cgroup.procs`).
pid_t corral_clone_vfork_into_cgroup(int (*child)(void *), void *argument, void *stack, size_t stack_size,
                                     int *pidfd, int cgroup_fd);

#endif
