// The loopback of a new network namespace (internal to CCorral).
#ifndef CORRAL_LOOPBACK_H
#define CORRAL_LOOPBACK_H

/// Brings up the loopback of the calling thread's network namespace: system calls only, safe
/// in an isolated init and on the namespace pool's thread. 0, or -1 with errno.
int corral_loopback_up(void);

#endif
