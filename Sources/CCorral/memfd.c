// Sealed anonymous files: a test's stdin given to a program as a memfd nobody can change.
#define _GNU_SOURCE
#include "corral_memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif

static int sealable(const char *name) {
    // Not executable either where the kernel can say so (6.3+); older kernels refuse the flag.
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
    if (fd < 0 && errno == EINVAL) fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    return fd;
}

static int rewind_and_seal(int fd) {
    if (lseek(fd, 0, SEEK_SET) != 0) return -1;
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
}

static int fail(int fd) {
    int error = errno;
    close(fd);
    errno = error;
    return -1;
}

int corral_sealed_memfd(const char *name, const void *bytes, size_t count) {
    int fd = sealable(name);
    if (fd < 0) return -1;
    size_t written = 0;
    while (written < count) {
        ssize_t n = write(fd, (const char *)bytes + written, count - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return fail(fd);
        }
        written += (size_t)n;
    }
    if (rewind_and_seal(fd) != 0) return fail(fd);
    return fd;
}

int corral_sealed_memfd_copy(const char *name, int source, unsigned long long size) {
    int fd = sealable(name);
    if (fd < 0) return -1;
    off_t offset = 0;
    while ((unsigned long long)offset < size) {
        size_t chunk = size - (unsigned long long)offset > (1U << 30) ? (1U << 30) : (size_t)(size - (unsigned long long)offset);
        ssize_t n = sendfile(fd, source, &offset, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(fd);
        if (n == 0) break; // the source is shorter than it said: what there was
    }
    if (rewind_and_seal(fd) != 0) return fail(fd);
    return fd;
}

int corral_memfd_fully_sealed(int fd) {
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0) return 0;
    int all = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
    return (seals & all) == all ? 1 : 0;
}

int corral_reopen_read_only(int fd) {
    char path[48];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int opened;
    do {
        opened = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (opened < 0 && errno == EINTR);
    return opened;
}
