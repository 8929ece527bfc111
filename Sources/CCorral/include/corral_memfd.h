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

#endif
