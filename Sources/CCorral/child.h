// Shared by the files of the child side (spawn.c, mounts.c): not part of the module's
// public header. Everything here is async-signal-safe.
#ifndef CORRAL_CHILD_H
#define CORRAL_CHILD_H

#include "corral_spawn.h"

/// Sends {stage, errno, detail} on the error pipe and exits 127. Does not return.
void corral_child_fail(int error_fd, int stage, int error, int detail) __attribute__((noreturn));

/// The most descriptors one child can be given (stdio plus pipes).
#define CORRAL_MAX_FDS 64

/// The most 64-bit words of a CPU mask (CPUs 0 to 8191).
#define CORRAL_MAX_CPU_MASK_WORDS 128

/// Marks every descriptor from `first` up close-on-exec. Returns 0, or -1 with errno.
int corral_cloexec_from(int first);

/// Every descriptor above 2 close-on-exec, then request->fds put in place; the error pipe
/// is moved above every target (*error_fd_in_out is its new number).
void corral_child_descriptors(const corral_spawn_request *request, int *error_fd_in_out);

/// Every caught or ignored signal back to its default.
void corral_child_reset_signals(int error_fd);

/// Writes "0" into each of request->cgroup_procs_fds.
void corral_child_join_cgroups(const corral_spawn_request *request, int error_fd);

/// Pins the calling process to request->cpu_mask, if any (after the cgroup joins: joining a
/// v1 cpuset resets the affinity to the cpuset's CPUs).
void corral_child_pin_cpus(const corral_spawn_request *request, int error_fd);

/// chdir, rlimits, the ignored signals, an empty signal mask, the seccomp filter (isolation),
/// execve. Does not return.
void corral_child_exec_filtered(const corral_spawn_request *request, int error_fd, const corral_isolation *isolation) __attribute__((noreturn));

/// The calling thread's stack for vfork-style children (made once per thread); NULL with
/// errno when it cannot be mapped.
void *corral_child_stack_top(void);

/// Fills result->failure from what the child wrote on its error pipe.
void corral_record_failure(corral_spawn_result *result, const corral_child_failure *failure, size_t got);

/// The isolated init's steps inside the new namespaces that come before anything else: a
/// session, the rootless identity maps, default signals, the parent-death signal, the
/// cgroup joins. Runs in the clone's child (vfork-style or fork-style).
void corral_isolated_enter(const corral_spawn_request *request, int error_fd);

/// The rest of the init, PID 1 of the run: the filesystem, hostname, loopback, every other
/// descriptor closed, the program started, orphans reaped, the program's end forwarded.
/// Runs in the fork-style clone of Corral, or in the corral-init executable. Does not return.
void corral_isolated_init_run(const corral_spawn_request *request, int error_fd) __attribute__((noreturn));

/// Builds an isolated run's root on a fresh tmpfs from its mount list, pivots into it,
/// detaches the old root and remounts the new one read-only. Fails through
/// corral_child_fail (stage FILESYSTEM, detail the entry's index).
void corral_build_root(const corral_isolation *isolation, int error_fd);

/// Makes one entry of the mount list below `root` (its parents, its mount point, the mount).
/// Returns 0, or -1 with errno.
int corral_make_entry(const char *root, const corral_mount *entry);

/// Read-only (unless `writable`), nosuid and nodev (unless `device`) on the mount at `path`,
/// with `recursive` on every mount below it too. Returns 0, or -1 with errno.
int corral_lock_bind(const char *path, int writable, int device, int recursive);

/// The init's filesystem from a mount template (isolation->mount_template_fd): each
/// descriptor-bound entry cloned from its descriptor while still in Corral's mount
/// namespace, then setns into the template, unshare (a private copy of the template: no
/// host mount in it, so no pivot_root and no detach of an old root), then the per-run
/// entries on the mount points the template holds. Fails through corral_child_fail (stage
/// FILESYSTEM, detail the entry's index; -4 setns, -5 unshare).
void corral_enter_mount_template(const corral_isolation *isolation, int error_fd);

#endif
