#ifndef CORRAL_MEMFD_H
#define CORRAL_MEMFD_H

#include <stddef.h>

/// A new memfd (close-on-exec; not executable where the kernel allows it) holding `count`
/// bytes, its offset at 0, then sealed against any change (write, grow, shrink, more seals):
/// a program given it, even one that reopens it through /proc/self/fd, can only read it.
/// Returns the descriptor, or -1 with errno.
int corral_sealed_memfd(const char *name, const void *bytes, size_t count);

/// The same, filled with `size` bytes of `source` from its start (sendfile, at an offset of
/// its own: the source's file offset is not moved).
int corral_sealed_memfd_copy(const char *name, int source, unsigned long long size);

/// 1 when `fd` carries every seal the two above add (write, grow, shrink, seal), else 0.
int corral_memfd_fully_sealed(int fd);

/// A new open file description of the file `fd` refers to (through /proc/self/fd), read-only
/// and close-on-exec, at offset 0: not a duplicate, so its offset is its own. -1 with errno.
int corral_reopen_read_only(int fd);

#endif
