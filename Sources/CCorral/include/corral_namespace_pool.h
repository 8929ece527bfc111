// Fresh network namespaces made ahead of time for isolated runs (namespace_pool.c): one
// per run, entered by the run's init with setns instead of CLONE_NEWNET, then dropped.
#ifndef CORRAL_NAMESPACE_POOL_H
#define CORRAL_NAMESPACE_POOL_H

/// A descriptor (close-on-exec) of the calling thread's own network namespace, to come back
/// to after each ``corral_network_namespace_prepare``; -1 with errno.
int corral_network_namespace_own(void);

/// Makes a fresh network namespace whose only interface is a loopback that is up, and returns
/// a close-on-exec descriptor of it (-1 with errno). The calling thread, which must be a
/// thread of its own that does nothing else (never a task of Swift's cooperative pool, never
/// between fork and exec), leaves its namespace for the new one and comes back with setns to
/// `own`. If it could not come back, `*stranded` is set to 1 and the thread must make no
/// other system call that depends on its network namespace (it is to exit).
int corral_network_namespace_prepare(int own, int *stranded);

/// The inode number of the network namespace `fd` refers to (0 on error): tests compare it
/// with what a sandbox sees in /proc/self/ns/net.
unsigned long corral_namespace_inode(int fd);

/// Names the calling thread (what /proc/self/task/N/comm shows; at most 15 bytes).
int corral_name_thread(const char *name);

#endif
