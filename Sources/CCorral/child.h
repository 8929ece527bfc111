// Shared by the files of the child side (spawn.c, mounts.c): not part of the module's
// public header. Everything here is async-signal-safe.
#ifndef CORRAL_CHILD_H
#define CORRAL_CHILD_H

#include "corral_spawn.h"

/// Sends {stage, errno, detail} on the error pipe and exits 127. Does not return.
void corral_child_fail(int error_fd, int stage, int error, int detail) __attribute__((noreturn));

/// Builds an isolated run's root on a fresh tmpfs from its mount list, pivots into it,
/// detaches the old root and remounts the new one read-only. Fails through
/// corral_child_fail (stage FILESYSTEM, detail the entry's index).
void corral_build_root(const corral_isolation *isolation, int error_fd);

#endif
