// clone3(CLONE_INTO_CGROUP) for the plain spawn. On cgroup v2 the child is created inside
// the run's cgroup: no migration (no `cgroup.procs` write), so none of the cgroup
// migration lock's cost, which on a host that has been idle includes an RCU grace period
// (about 15 ms). The C library has no clone3 wrapper that runs a function on a new stack
// (CLONE_VM needs one), so the system call is made here, with a few instructions for the
// child's side.
#define _GNU_SOURCE
#include "clone_into_cgroup.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define CORRAL_CLONE_VM 0x00000100ULL
#define CORRAL_CLONE_VFORK 0x00004000ULL
#define CORRAL_CLONE_PIDFD 0x00001000ULL
#define CORRAL_CLONE_INTO_CGROUP 0x200000000ULL

/// The kernel's `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2, 88 bytes).
struct corral_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

#if defined(__x86_64__)
/// The system call; in the child (rax 0, rsp at the top of the new stack, every other
/// register as the parent's) calls child(argument) and exits with its result. Returns
/// the pid or -errno in the parent.
static long corral_clone3_call(struct corral_clone_args *args, int (*child)(void *), void *argument) {
    long result;
    register void *function __asm__("r12") = (void *)child;
    register void *data __asm__("r13") = argument;
    __asm__ __volatile__(
        "syscall\n\t"
        "testq %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "xorl %%ebp, %%ebp\n\t"
        "movq %%r13, %%rdi\n\t"
        "callq *%%r12\n\t"
        "movl %%eax, %%edi\n\t"
        "movl $60, %%eax\n\t" /* SYS_exit */
        "syscall\n\t"
        "ud2\n"
        "1:\n\t"
        : "=a"(result)
        : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)), "r"(function), "r"(data)
        : "rcx", "r11", "memory", "cc");
    return result;
}
#endif

pid_t corral_clone_vfork_into_cgroup(int (*child)(void *), void *argument, void *stack, size_t stack_size,
                                     int *pidfd, int cgroup_fd) {
#if defined(__x86_64__)
    struct corral_clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CORRAL_CLONE_VM | CORRAL_CLONE_VFORK | CORRAL_CLONE_PIDFD | CORRAL_CLONE_INTO_CGROUP;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    args.exit_signal = SIGCHLD;
    // The kernel starts the child at stack + stack_size, 16-byte aligned (the mapping is
    // page-aligned), as the call in the child needs.
    args.stack = (uint64_t)(uintptr_t)stack;
    args.stack_size = stack_size;
    args.cgroup = (uint64_t)cgroup_fd;
    long result = corral_clone3_call(&args, child, argument);
    if (result < 0) {
        errno = (int)-result;
        return -1;
    }
    return (pid_t)result;
#else
    (void)child; (void)argument; (void)stack; (void)stack_size; (void)pidfd; (void)cgroup_fd;
    errno = ENOSYS;
    return -1;
#endif
}
