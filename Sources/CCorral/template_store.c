// Persisted mount templates (see corral_template_store.h). A `corral` process that makes
// one isolated run enters a copy of a template another process persisted, instead of
// building one (its own mount namespace, the binds, pivot_root and the detach of the old
// root: an RCU grace period). Only root: the directory is root's, 0700; every name in it
// is opened beneath it without following links, and must be a mount namespace.
#define _GNU_SOURCE
#include "corral_template_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#define CORRAL_NSFS_MAGIC 0x6e736673
#define CORRAL_NS_GET_NSTYPE _IO(0xb7, 0x3)
#define CORRAL_STATX_ATTR_MOUNT_ROOT 0x00002000

static int corral_store_openat2(int dirfd, const char *path, int flags, unsigned int mode) {
    struct { uint64_t flags, mode, resolve; } how = {
        (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC), (flags & O_CREAT) ? (uint64_t)mode : 0,
        0x08 /* RESOLVE_BENEATH */ | 0x04 /* RESOLVE_NO_SYMLINKS */ | 0x02 /* RESOLVE_NO_MAGICLINKS */,
    };
    long fd;
    do {
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    } while (fd < 0 && errno == EINTR);
    return (int)fd;
}

static void corral_store_close(int fd) {
    int saved = errno;
    close(fd);
    errno = saved;
}

/// The directory, opened following no link on the way (its parents are root's: /run), and
/// checked: a directory owned by root with nothing for group or others.
static int corral_store_directory_open(const char *path) {
    struct { uint64_t flags, mode, resolve; } how = {
        (uint64_t)(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), 0, 0x04 | 0x02,
    };
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
    if (fd < 0) return -1;
    struct stat info;
    if (fstat(fd, &info) != 0) { corral_store_close(fd); return -1; }
    if (!S_ISDIR(info.st_mode) || info.st_uid != 0 || (info.st_mode & 077) != 0) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

/// "/proc/self/fd/N" (a mount's source or target named by a descriptor).
static void corral_store_fd_path(char *buffer, size_t size, int fd) {
    snprintf(buffer, size, "/proc/self/fd/%d", fd);
}

/// Whether the open directory `fd` is the root of a mount.
static int corral_store_is_mount_root(int fd) {
    struct statx info;
    return statx(fd, "", AT_EMPTY_PATH, 0, &info) == 0 && (info.stx_attributes_mask & CORRAL_STATX_ATTR_MOUNT_ROOT)
        && (info.stx_attributes & CORRAL_STATX_ATTR_MOUNT_ROOT);
}

/// The directory, made where absent: 0700, and a private mount of its own, so that the
/// templates bound in it propagate to no other mount namespace (as `ip netns` does).
static int corral_store_directory_make(const char *path) {
    int made = mkdir(path, 0700) == 0;
    if (!made && errno != EEXIST) return -1;
    int fd = corral_store_directory_open(path);
    if (fd < 0) return -1;
    if (corral_store_is_mount_root(fd)) return fd;
    char self[32];
    corral_store_fd_path(self, sizeof(self), fd);
    if (mount(self, self, NULL, MS_BIND, NULL) != 0) { corral_store_close(fd); return -1; }
    close(fd);
    // The bind now covers the directory: opened again, it is the mount's.
    fd = corral_store_directory_open(path);
    if (fd < 0) return -1;
    corral_store_fd_path(self, sizeof(self), fd);
    if (mount(NULL, self, NULL, MS_PRIVATE, NULL) != 0) { corral_store_close(fd); return -1; }
    return fd;
}

/// Whether `fd` is a mount namespace's nsfs file.
static int corral_store_is_mount_namespace(int fd) {
    struct statfs filesystem;
    if (fstatfs(fd, &filesystem) != 0) return 0;
    if ((unsigned long)filesystem.f_type != CORRAL_NSFS_MAGIC) return 0;
    return ioctl(fd, CORRAL_NS_GET_NSTYPE) == CLONE_NEWNS;
}

int corral_template_store_open(const char *directory, const char *name) {
    int dir = corral_store_directory_open(directory);
    if (dir < 0) return -1;
    int fd = corral_store_openat2(dir, name, O_RDONLY, 0);
    close(dir);
    if (fd < 0) return -1;
    if (!corral_store_is_mount_namespace(fd)) {
        close(fd);
        errno = ESTALE;
        return -1;
    }
    return fd;
}

/// Unmounts (without following a link) and unlinks the entry `name` of the directory `dir`.
static int corral_store_remove(const char *directory, int dir, const char *name) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", directory, name) >= sizeof(path)) { errno = ENAMETOOLONG; return -1; }
    (void)umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
    return unlinkat(dir, name, 0);
}

/// Removes every entry of the open directory `dir`; returns how many, or -1 with errno.
static int corral_store_clear(const char *directory, int dir) {
    int listed = fcntl(dir, F_DUPFD_CLOEXEC, 3);
    if (listed < 0) return -1;
    DIR *stream = fdopendir(listed);
    if (stream == NULL) { corral_store_close(listed); return -1; }
    rewinddir(stream); // a duplicate shares the offset an earlier listing left at the end
    int removed = 0;
    struct dirent *entry;
    while ((entry = readdir(stream)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        if (corral_store_remove(directory, dir, entry->d_name) == 0) removed++;
    }
    closedir(stream);
    return removed;
}

static int corral_store_count(int dir) {
    int listed = fcntl(dir, F_DUPFD_CLOEXEC, 3);
    if (listed < 0) return 0;
    DIR *stream = fdopendir(listed);
    if (stream == NULL) { close(listed); return 0; }
    rewinddir(stream);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(stream)) != NULL) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) count++;
    }
    closedir(stream);
    return count;
}

int corral_template_store_save(const char *directory, const char *name, int namespace_fd, int limit) {
    if (!corral_store_is_mount_namespace(namespace_fd)) { errno = EINVAL; return -1; }
    int dir = corral_store_directory_make(directory);
    if (dir < 0) return -1;
    if (corral_store_count(dir) >= limit) (void)corral_store_clear(directory, dir);
    int file = corral_store_openat2(dir, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (file < 0 && errno == EEXIST) {
        // Another process's (then it is a namespace), or what a process that died between
        // the file and its mount left: an empty file, removed and made again.
        int existing = corral_store_openat2(dir, name, O_RDONLY, 0);
        int valid = existing >= 0 && corral_store_is_mount_namespace(existing);
        if (existing >= 0) close(existing);
        if (valid) { close(dir); errno = EEXIST; return -1; }
        (void)corral_store_remove(directory, dir, name);
        file = corral_store_openat2(dir, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
    }
    if (file < 0) { corral_store_close(dir); return -1; }
    char source[32], target[32];
    corral_store_fd_path(source, sizeof(source), namespace_fd);
    corral_store_fd_path(target, sizeof(target), file);
    int result = mount(source, target, NULL, MS_BIND, NULL);
    int saved = errno;
    close(file);
    if (result != 0) (void)unlinkat(dir, name, 0);
    close(dir);
    errno = saved;
    return result;
}

/// The directory, emptied, goes too: its own mount detached (through its descriptor, so only
/// a mount on exactly that directory; each of them where saves raced to make it one), then
/// the directory removed, so that nothing of Corral stays mounted. A run that saves a
/// template meanwhile either finds the directory gone and makes it again, or keeps its
/// template in the directory (then it is not empty, and stays), or saves into the detached
/// mount (then its template serves only that run). 0, or -1 with errno.
static int corral_store_directory_remove(const char *directory) {
    for (int mounts = 0; mounts < 8; mounts++) {
        int dir = corral_store_directory_open(directory);
        if (dir < 0) return errno == ENOENT ? 0 : -1;
        if (corral_store_count(dir) != 0) { close(dir); return 0; } // a concurrent run's template
        if (!corral_store_is_mount_root(dir)) {
            close(dir);
            if (unlinkat(AT_FDCWD, directory, AT_REMOVEDIR) == 0) return 0;
            // Another process made it a mount again, or saved into it, or removed it first.
            if (errno == EBUSY || errno == ENOTEMPTY || errno == EEXIST) continue;
            return errno == ENOENT ? 0 : -1;
        }
        char self[32];
        corral_store_fd_path(self, sizeof(self), dir);
        int result = umount2(self, MNT_DETACH);
        corral_store_close(dir);
        if (result != 0 && errno != EINVAL) return -1; // EINVAL: another cleanup detached it first
    }
    return 0; // still remade by runs going on: theirs
}

int corral_template_store_remove_all(const char *directory) {
    int dir = corral_store_directory_open(directory);
    if (dir < 0) return errno == ENOENT ? 0 : -1;
    int removed = corral_store_clear(directory, dir);
    int left = removed < 0 ? -1 : corral_store_count(dir);
    corral_store_close(dir);
    if (left == 0 && corral_store_directory_remove(directory) != 0) return -1;
    return removed;
}
