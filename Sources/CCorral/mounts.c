// An isolated run's filesystem, built by its init (PID 1 of the new namespaces) before it
// starts the program. Async-signal-safe: system calls and stack buffers only.
#define _GNU_SOURCE
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#define CORRAL_AT_RECURSIVE 0x8000
#define CORRAL_MOUNT_ATTR_RDONLY 0x00000001
#define CORRAL_MOUNT_ATTR_NOSUID 0x00000002
#define CORRAL_MOUNT_ATTR_NODEV 0x00000004

struct corral_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

/// Joins `root` and `path` into `buffer` (no allocation). Returns 0, or -1 when too long.
static int corral_join(char *buffer, size_t size, const char *root, const char *path) {
    size_t used = 0;
    for (const char *part = root; *part; part++) {
        if (used + 1 >= size) return -1;
        buffer[used++] = *part;
    }
    for (const char *part = path; *part; part++) {
        if (used + 1 >= size) return -1;
        buffer[used++] = *part;
    }
    buffer[used] = 0;
    return 0;
}

/// "/proc/self/fd/N" for a descriptor, without printf: the source of a bind mount made
/// from a descriptor Corral opened beneath the job's directory, never from a path a program
/// could have changed.
static void corral_descriptor_path(char *buffer, int fd) {
    static const char prefix[] = "/proc/self/fd/";
    memcpy(buffer, prefix, sizeof(prefix) - 1);
    char digits[12];
    int count = 0;
    unsigned int value = (unsigned int)fd;
    do { digits[count++] = (char)('0' + value % 10); value /= 10; } while (value > 0);
    int used = (int)sizeof(prefix) - 1;
    while (count > 0) buffer[used++] = digits[--count];
    buffer[used] = 0;
}

/// mkdir -p of every parent of `path` (an absolute path), in place.
static int corral_make_parents(char *path) {
    for (char *cursor = path + 1; *cursor; cursor++) {
        if (*cursor != '/') continue;
        *cursor = 0;
        int result = mkdir(path, 0755);
        *cursor = '/';
        if (result != 0 && errno != EEXIST) return -1;
    }
    return 0;
}

/// Read-only (unless `writable`), nosuid and nodev (unless `device`) on the bind at `path`
/// and, with `recursive`, on every mount below it: mount_setattr(AT_RECURSIVE) only sets
/// flags, so flags the kernel locked on the source (a rootless bind of a noexec mount) stay.
/// Where the kernel has no mount_setattr, a remount of the top (submounts keep their flags).
int corral_lock_bind(const char *path, int writable, int device, int recursive) {
    struct corral_mount_attr attributes;
    memset(&attributes, 0, sizeof(attributes));
    attributes.attr_set = CORRAL_MOUNT_ATTR_NOSUID | (writable ? 0 : CORRAL_MOUNT_ATTR_RDONLY) | (device ? 0 : CORRAL_MOUNT_ATTR_NODEV);
    unsigned int flags = recursive ? CORRAL_AT_RECURSIVE : 0;
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, flags, &attributes, sizeof(attributes)) == 0) return 0;
    if (errno != ENOSYS) return -1;
    unsigned long remount = MS_REMOUNT | MS_BIND | MS_NOSUID | (writable ? 0 : MS_RDONLY) | (device ? 0 : MS_NODEV);
    return mount(NULL, path, NULL, remount, NULL);
}

static void corral_close_saving_errno(int fd) {
    if (fd < 0) return;
    int saved = errno;
    close(fd);
    errno = saved;
}

/// Opens `path` (absolute) in this mount namespace as an O_PATH descriptor, following no
/// symbolic link anywhere, and checks it is the object `original` is. Returns the
/// descriptor, or -1 with errno (ELOOP: a link on the way; ESTALE: another object now).
static int corral_reopen_here(const char *path, int original) {
    struct { uint64_t flags, mode, resolve; } how = {
        (uint64_t)(O_PATH | O_NOFOLLOW | O_CLOEXEC), 0, 0x04 /* RESOLVE_NO_SYMLINKS */ | 0x02 /* RESOLVE_NO_MAGICLINKS */,
    };
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
    if (fd < 0) return -1;
    struct stat now, then;
    if (fstat(fd, &now) != 0 || fstat(original, &then) != 0) { corral_close_saving_errno(fd); return -1; }
    if (now.st_dev != then.st_dev || now.st_ino != then.st_ino) {
        close(fd);
        errno = ESTALE;
        return -1;
    }
    return fd;
}

int corral_make_entry(const char *root, const corral_mount *entry) {
    char path[4096];
    if (corral_join(path, sizeof(path), root, entry->target) != 0) { errno = ENAMETOOLONG; return -1; }
    if (corral_make_parents(path) != 0) return -1;
    char from_descriptor[32];
    const char *source = entry->source;
    int reopened = -1;
    if (entry->source_fd >= 0) {
        // The descriptor Corral opened belongs to its mount namespace, which a bind in this
        // one cannot take; the same directory is opened here again, by its path, without
        // following any link, and must be the very one Corral opened (device and inode).
        reopened = corral_reopen_here(entry->source, entry->source_fd);
        if (reopened < 0) return -1;
        corral_descriptor_path(from_descriptor, reopened);
        source = from_descriptor;
    }
    switch (entry->kind) {
    case CORRAL_MOUNT_BIND_DIRECTORY: {
        if (mkdir(path, 0755) != 0 && errno != EEXIST) { corral_close_saving_errno(reopened); return -1; }
        int result = mount(source, path, NULL, MS_BIND | MS_REC, NULL);
        corral_close_saving_errno(reopened);
        if (result != 0) return -1;
        return corral_lock_bind(path, entry->writable, 0, 1);
    }
    case CORRAL_MOUNT_BIND_FILE: {
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) { corral_close_saving_errno(reopened); return -1; }
        close(fd);
        int result = mount(source, path, NULL, MS_BIND, NULL);
        corral_close_saving_errno(reopened);
        if (result != 0) return -1;
        // A device (data "dev": /dev/null and friends) keeps working; anything else is nodev.
        return corral_lock_bind(path, entry->writable, entry->data != NULL && entry->data[0] == 'd', 0);
    }
    case CORRAL_MOUNT_TMPFS:
        if (mkdir(path, 0755) != 0 && errno != EEXIST) return -1;
        return mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, entry->data);
    case CORRAL_MOUNT_SYMLINK:
        return symlink(entry->source, path);
    case CORRAL_MOUNT_FILE: {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return -1;
        unsigned long written = 0;
        while (written < entry->length) {
            ssize_t count = write(fd, entry->source + written, entry->length - written);
            if (count < 0 && errno == EINTR) continue;
            if (count <= 0) { int saved = errno; close(fd); errno = saved; return -1; }
            written += (unsigned long)count;
        }
        return close(fd);
    }
    case CORRAL_MOUNT_PROC:
        if (mkdir(path, 0555) != 0 && errno != EEXIST) return -1;
        return mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    case CORRAL_MOUNT_READ_ONLY: {
        // An entry already in the new root (e.g. /proc/sys) bound onto itself read-only.
        char inside[4096];
        if (corral_join(inside, sizeof(inside), root, entry->source) != 0) { errno = ENAMETOOLONG; return -1; }
        if (mount(inside, path, NULL, MS_BIND | MS_REC, NULL) != 0) return -1;
        return corral_lock_bind(path, 0, 0, 1);
    }
    default:
        errno = EINVAL;
        return -1;
    }
}

void corral_build_root(const corral_isolation *isolation, int error_fd) {
    const char *root = isolation->root;
    if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_FILESYSTEM, errno, -1);
    }
    for (int index = 0; index < isolation->mount_count; index++) {
        if (corral_make_entry(root, &isolation->mounts[index]) != 0) {
            corral_child_fail(error_fd, CORRAL_STAGE_FILESYSTEM, errno, index);
        }
    }
    if (chdir(root) != 0 || mkdir(".oldroot", 0700) != 0
        || syscall(SYS_pivot_root, ".", ".oldroot") != 0
        || umount2("/.oldroot", MNT_DETACH) != 0 || rmdir("/.oldroot") != 0 || chdir("/") != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_FILESYSTEM, errno, -2);
    }
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) {
        corral_child_fail(error_fd, CORRAL_STAGE_FILESYSTEM, errno, -3);
    }
}
