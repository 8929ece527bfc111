#ifndef CORRAL_SYS_H
#define CORRAL_SYS_H

#include <sys/types.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdint.h>

// Thin wrappers over what Swift cannot call or does not import: variadic prctl and
// syscall, the W* status macros, and constants defined by macros.

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of our descendants are re-parented to us.
int corral_set_child_subreaper(void);

/// pidfd_open(2). Returns the descriptor, or -1 with errno.
int corral_pidfd_open(pid_t pid);

/// pidfd_send_signal(2). Returns 0, or -1 with errno.
int corral_pidfd_send_signal(int pidfd, int signal_number);

/// The outcome of one wait: which process changed state and how.
typedef struct corral_wait_result {
    pid_t pid;          // 0 with WNOHANG when nothing changed; -1 on error (errno set)
    int status;         // the raw wait status (wait4)
    struct rusage usage;
} corral_wait_result;

/// wait4(pid, &status, options, &usage), retried on EINTR.
corral_wait_result corral_wait4(pid_t pid, int options);

/// The raw waitid(2) system call, which also returns rusage, retried on EINTR. Works with
/// WNOWAIT to look at a zombie (and its rusage) without reaping it.
/// Returns 0 and fills the result (pid 0 with WNOHANG when nothing is waiting), or -1.
typedef struct corral_waitid_result {
    pid_t pid;
    int code;           // CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_STOPPED, CLD_CONTINUED...
    int status;         // exit code or signal number
    struct rusage usage;
} corral_waitid_result;
int corral_waitid(int idtype, int id, int options, corral_waitid_result *result);

// Wait status decoding.
int corral_wifexited(int status);
int corral_wexitstatus(int status);
int corral_wifsignaled(int status);
int corral_wtermsig(int status);
int corral_wcoredump(int status);
int corral_wifstopped(int status);
int corral_wstopsig(int status);
int corral_wifcontinued(int status);

// Constants Swift does not import.
int corral_wall(void);
int corral_wnowait(void);
int corral_p_pidfd(void);
int corral_nsig(void);
uint64_t corral_rlim_infinity(void);

/// pipe2(ends, O_CLOEXEC). Returns 0, or -1 with errno.
int corral_pipe(int ends[2]);

/// The channel from an isolated run's init and program to Corral: a SOCK_SEQPACKET pair
/// (close-on-exec, so message boundaries hold), with SO_PASSCRED on ends[0] (Corral's, made
/// non-blocking) so every message carries its sender's pid as Corral sees it. Returns 0, or
/// -1 with errno.
int corral_status_channel(int ends[2]);

/// One message from that channel into `message` (`size` bytes at most). Returns its length
/// (0 at EOF), or -1 with errno (EAGAIN when none is waiting); *sender is the sending
/// process's pid in Corral's PID namespace, or 0 when the kernel attached none.
long corral_status_receive(int fd, void *message, unsigned long size, pid_t *sender);

/// A netlink socket subscribed to the kernel's audit records (NETLINK_AUDIT, multicast group
/// AUDIT_NLGRP_READLOG; needs CAP_AUDIT_READ), close-on-exec and non-blocking. Every record
/// reaches it, with no rate limit and whether or not an audit daemon runs. Returns the
/// descriptor, or -1 with errno.
int corral_audit_listen(void);

/// memfd_create(name, MFD_CLOEXEC): an anonymous file, for inline stdin content.
int corral_memfd(const char *name);

/// openat2(dirfd, path, flags | O_NOFOLLOW | O_CLOEXEC, mode) with RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, retried on EINTR: the one way Corral opens
/// a path of a job spec (a file, a stream, a directory), beneath the directory's descriptor.
/// -1 with errno (EXDEV: it would leave the directory; ELOOP: a link; ENOSYS: no openat2).
int corral_openat_beneath(int dirfd, const char *path, int flags, unsigned int mode);

/// O_PATH and O_DIRECTORY (Glibc's module does not export them without _GNU_SOURCE).
int corral_o_path(void);
int corral_o_directory(void);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK): how other threads wake the reaper.
int corral_eventfd(void);

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (threads it starts later inherit
/// that) and returns a close-on-exec, non-blocking signalfd for them, or -1.
int corral_cancel_signalfd(void);

/// Whether two descriptors of this process are one open file (kcmp KCMP_FILE): 1 or 0,
/// or -1 with errno when the kernel cannot tell (no kcmp).
int corral_same_open_file(int first, int second);

/// The thread id of the caller (gettid).
pid_t corral_gettid(void);

/// The name of a signal ("SIGKILL"), or NULL when it has none.
const char *corral_signal_name(int signal_number);

/// sched_getaffinity(0) of the calling thread into `mask` (`words` 64-bit words, CPU n is
/// bit n % 64 of word n / 64). Returns 0, or -1 with errno.
int corral_allowed_cpus(uint64_t *mask, int words);

/// A descriptor of the mount namespace of the process `pidfd` refers to, or -1 with errno
/// (ESRCH once it has exited).
int corral_pidfd_mount_namespace(int pidfd);

#endif
