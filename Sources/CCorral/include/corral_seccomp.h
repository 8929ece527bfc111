#ifndef CORRAL_SECCOMP_H
#define CORRAL_SECCOMP_H

#include <stdint.h>

/// A seccomp filter program, built in the parent with libseccomp and installed by the
/// child right before execve (a plain system call, no allocation).
typedef struct corral_seccomp_program {
    unsigned short length;   /* instructions */
    void *filter;            /* struct sock_filter[length], malloc'd */
} corral_seccomp_program;

/// What a rule does. The same values libseccomp uses.
#define CORRAL_SECCOMP_ALLOW 0x7fff0000U
#define CORRAL_SECCOMP_KILL_PROCESS 0x80000000U
#define CORRAL_SECCOMP_ERRNO(n) (0x00050000U | ((n) & 0xffffU))

/// One rule: `action` for syscall `name`; with `argument` >= 0, only when
/// (argN & mask) == value.
typedef struct corral_seccomp_rule {
    const char *name;
    uint32_t action;
    int argument;
    uint64_t mask;
    uint64_t value;
} corral_seccomp_rule;

/// Loads libseccomp.so.2 (once). Returns NULL when it is there, else dlerror's text.
const char *corral_seccomp_load(void);

/// The syscall number for a name on this architecture, or a negative number when unknown.
int corral_seccomp_resolve(const char *name);

/// The name of system call `number` of the ABI `arch` (an AUDIT_ARCH_* value, as in the
/// kernel's seccomp audit record; libseccomp's architecture tokens are the same numbers),
/// malloc'd; NULL when libseccomp is not there or does not know it.
char *corral_seccomp_syscall_name(uint32_t arch, int number);

/// Builds a filter: `default_action` for everything not listed. Returns 0, or an errno
/// value (`*failed_rule` says which rule, -1 for the filter itself).
int corral_seccomp_build(uint32_t default_action, const corral_seccomp_rule *rules, int count,
                         corral_seccomp_program *program, int *failed_rule);

void corral_seccomp_free(corral_seccomp_program *program);

#endif
