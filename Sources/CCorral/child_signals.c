// The child's signal dispositions (see child.h): every caught or ignored signal back to
// its default before execve. Async-signal-safe: system calls only.
#define _GNU_SOURCE
#include "corral_spawn.h"
#include "child.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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
