#ifndef CORRAL_GUARD_H
#define CORRAL_GUARD_H

#include <sys/types.h>

/// Starts the guard of this process's runs: a copy of the process (a raw clone) that keeps
/// only its end of a SOCK_SEQPACKET channel, learns the cgroup directories of the runs going
/// on ("+DIR" and "-DIR" messages), and when the channel closes (this process died) kills
/// everything in them and removes them. Returns this process's end (close-on-exec), or -1
/// with errno; *guard_pid is the guard's pid.
int corral_guard_start(pid_t *guard_pid);

/// One message to the guard, without SIGPIPE. Returns 0, or -1 with errno.
int corral_guard_send(int channel, const char *message);
/// The same for `count` messages in one call (sendmmsg); 0 when every one was sent.
int corral_guard_send_all(int channel, const char *const *messages, int count);

#endif
