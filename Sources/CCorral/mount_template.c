// Mount templates: the read-only part of an isolated run's filesystem, built once in a
// mount namespace of its own that Corral keeps a descriptor of, and per run a private copy
// of that namespace (setns + unshare) with only the per-run mounts added. A run so never
// copies the host's mounts, never pivots and never detaches an old root: that detach (and
// its RCU grace period) was the largest cost of an isolated run's setup. Async-signal-safe
// on the child side: system calls and stack buffers only.
#define _GNU_SOURCE
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#define CORRAL_OPEN_TREE_CLONE 1
#define CORRAL_AT_RECURSIVE 0x8000
#define CORRAL_MOVE_MOUNT_F_EMPTY_PATH 0x04
#define CORRAL_MOUNT_ATTR_RDONLY 0x00000001
#define CORRAL_MOUNT_ATTR_NOSUID 0x00000002
#define CORRAL_MOUNT_ATTR_NODEV 0x00000004
/// The most binds one run makes from a template (the /box directory, --bind, the /proc masks).
#define CORRAL_MAX_TREES 256

typedef struct corral_template_context {
    const char *root;
    const corral_mount *mounts;
    int count;
    const corral_mount *run_mounts;
    int run_count;
    corral_child_failure failure;
    int namespace_fd;
} corral_template_context;

static int corral_template_fail(corral_template_context *context, int stage, int detail) {
    context->failure.stage = stage;
    context->failure.error = errno;
    context->failure.detail = detail;
    _exit(1);
}

static int corral_template_join(char *buffer, size_t size, const char *root, const char *path) {
    size_t root_length = strlen(root), path_length = strlen(path);
    if (root_length + path_length + 1 > size) { errno = ENAMETOOLONG; return -1; }
    memcpy(buffer, root, root_length);
    memcpy(buffer + root_length, path, path_length + 1);
    return 0;
}

/// openat2(dir, name) beneath `dir`, following no link (RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS).
static int corral_template_open_beneath(int dir, const char *name, int flags, unsigned int mode) {
    struct { uint64_t flags, mode, resolve; } how = {
        (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC), (flags & O_CREAT) ? (uint64_t)mode : 0, 0x08 | 0x04 | 0x02,
    };
    return (int)syscall(SYS_openat2, dir, name, &how, sizeof(how));
}

/// A mount point in the template for a per-run entry: a directory (or an empty file for a
/// file bind), with its parents. Entries below /proc get theirs from the run's /proc. Made
/// one component at a time beneath the root's descriptor, following no link: the root is
/// not pivoted yet, and a link of the template (an absolute `/lib -> /usr/lib`) on the way
/// to an operator's --bind target would take a mkdir by path out to the host.
static int corral_template_mount_point(int root_fd, const corral_mount *entry) {
    if (strncmp(entry->target, "/proc/", 6) == 0) return 0;
    char path[4096];
    size_t length = strlen(entry->target);
    if (length + 1 > sizeof(path)) { errno = ENAMETOOLONG; return -1; }
    memcpy(path, entry->target, length + 1);
    int dir = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    if (dir < 0) return -1;
    char *component = path;
    while (component != NULL) {
        while (*component == '/') component++;
        char *end = strchr(component, '/');
        if (end != NULL) *end = 0;
        int last = end == NULL || end[1] == 0;
        if (*component == 0) break;
        int next;
        if (last && entry->kind == CORRAL_MOUNT_BIND_FILE) {
            next = corral_template_open_beneath(dir, component, O_WRONLY | O_CREAT, 0644);
        } else {
            if (mkdirat(dir, component, last && entry->kind == CORRAL_MOUNT_PROC ? 0555 : 0755) != 0 && errno != EEXIST) {
                close(dir);
                return -1;
            }
            next = corral_template_open_beneath(dir, component, O_PATH | O_DIRECTORY, 0);
        }
        close(dir);
        if (next < 0) return -1;
        dir = next;
        component = end == NULL ? NULL : end + 1;
    }
    return close(dir);
}

/// The vfork-style child (sharing Corral's memory, and its descriptor table until it has opened
/// its namespace, in a new mount namespace): builds the template and leaves a descriptor of
/// its namespace behind.
static int corral_template_child(void *argument) {
    corral_template_context *context = argument;
    context->namespace_fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (context->namespace_fd < 0) corral_template_fail(context, CORRAL_STAGE_NAMESPACES, -7);
    // From here on a descriptor table of the child's own: the files it writes into the
    // tmpfs are open for writing for a moment, and a program another thread of Corral
    // spawns meanwhile would copy a shared table and hold them until its exec; the
    // read-only remount below then fails with EBUSY. (The namespace's descriptor, opened
    // before, stays in Corral's table.)
    if (unshare(CLONE_FILES) != 0) corral_template_fail(context, CORRAL_STAGE_NAMESPACES, -8);
    const char *root = context->root;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0
        || mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") != 0) {
        corral_template_fail(context, CORRAL_STAGE_FILESYSTEM, -1);
    }
    for (int index = 0; index < context->count; index++) {
        if (corral_make_entry(root, &context->mounts[index]) != 0) corral_template_fail(context, CORRAL_STAGE_FILESYSTEM, index);
    }
    int root_fd = open(root, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root_fd < 0) corral_template_fail(context, CORRAL_STAGE_FILESYSTEM, -6);
    for (int index = 0; index < context->run_count; index++) {
        if (corral_template_mount_point(root_fd, &context->run_mounts[index]) != 0) {
            int saved = errno;
            close(root_fd);
            errno = saved;
            corral_template_fail(context, CORRAL_STAGE_FILESYSTEM, -6);
        }
    }
    close(root_fd);
    // Every run shares the template's superblocks: read-only there, not only on the mount,
    // so nothing (not even a run's uid 0) can leave anything in them for the next run.
    for (int index = 0; index < context->count; index++) {
        const corral_mount *entry = &context->mounts[index];
        if (entry->kind != CORRAL_MOUNT_TMPFS) continue;
        char path[4096];
        if (corral_template_join(path, sizeof(path), root, entry->target) != 0
            || mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) {
            corral_template_fail(context, CORRAL_STAGE_FILESYSTEM, -3);
        }
    }
    // pivot_root(".", "."): the old root ends up on top of the new one and is detached.
    if (chdir(root) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) {
        corral_template_fail(context, CORRAL_STAGE_FILESYSTEM, -2);
    }
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) {
        corral_template_fail(context, CORRAL_STAGE_FILESYSTEM, -3);
    }
    _exit(0);
}

int corral_mount_template_create(const char *root, const corral_mount *mounts, int count, const corral_mount *run_mounts, int run_count,
                                 corral_child_failure *failure) {
    memset(failure, 0, sizeof(*failure));
    corral_template_context context = { root, mounts, count, run_mounts, run_count, { 0, 0, 0 }, -1 };
    void *stack_top = corral_child_stack_top();
    if (stack_top == NULL) {
        failure->stage = CORRAL_STAGE_NAMESPACES;
        failure->error = errno;
        failure->detail = -7;
        return -1;
    }
    // No handler of Corral's may run in the child; no exit signal (Corral's reaper never
    // sees it), reaped here with __WALL.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    long pid = clone(corral_template_child, stack_top, CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_NEWNS, &context);
    int clone_error = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (pid < 0) {
        failure->stage = CORRAL_STAGE_NAMESPACES;
        failure->error = clone_error;
        failure->detail = -7;
        return -1;
    }
    int status = 0;
    while (waitpid((pid_t)pid, &status, __WALL) < 0 && errno == EINTR) {}
    if (context.failure.stage != CORRAL_STAGE_NONE || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || context.namespace_fd < 0) {
        if (context.namespace_fd >= 0) close(context.namespace_fd);
        *failure = context.failure;
        if (failure->stage == CORRAL_STAGE_NONE) {
            failure->stage = CORRAL_STAGE_NAMESPACES;
            failure->error = EIO;
            failure->detail = -7;
        }
        return -1;
    }
    return context.namespace_fd;
}

struct corral_template_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

static void corral_close_all(int *fds, int count) {
    for (int index = 0; index < count; index++) {
        if (fds[index] >= 0) close(fds[index]);
    }
}

/// A per-run entry, inside the run's copy of the template; `tree`: a bind's detached copy.
static int corral_run_entry(const corral_mount *entry, int tree) {
    const char *target = entry->target;
    if (tree >= 0) {
        return (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, target, CORRAL_MOVE_MOUNT_F_EMPTY_PATH);
    }
    switch (entry->kind) {
    case CORRAL_MOUNT_TMPFS:
        return mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, entry->data);
    case CORRAL_MOUNT_PROC:
        return mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    case CORRAL_MOUNT_READ_ONLY:
        // An entry already in the run's root (e.g. /proc/sys) bound onto itself read-only.
        if (mount(entry->source, target, NULL, MS_BIND | MS_REC, NULL) != 0) return -1;
        return corral_lock_bind(target, 0, 0, 1);
    default:
        errno = EINVAL;
        return -1;
    }
}

void corral_enter_mount_template(const corral_isolation *isolation, int error_fd) {
    int trees[CORRAL_MAX_TREES];
    int tree_count = 0;
    // Every bind comes from Corral's mount namespace: cloned here, before leaving it, as a
    // detached tree: a descriptor Corral opened (the /box directory) as exactly that
    // directory (no path is resolved again), a --bind's source by its path (as a bind made
    // before pivot_root resolved it), the /proc masks' /dev/null. Private, nosuid, nodev
    // (but a device), read-only unless writable, on every mount of the tree.
    for (int index = 0; index < isolation->mount_count; index++) {
        const corral_mount *entry = &isolation->mounts[index];
        if (entry->kind != CORRAL_MOUNT_BIND_DIRECTORY && entry->kind != CORRAL_MOUNT_BIND_FILE) continue;
        if (tree_count >= CORRAL_MAX_TREES || (entry->source_fd < 0 && entry->source == NULL)) {
            corral_close_all(trees, tree_count);
            corral_child_fail(error_fd, CORRAL_STAGE_FILESYSTEM, tree_count >= CORRAL_MAX_TREES ? E2BIG : EINVAL, index);
        }
        unsigned int recursive = entry->kind == CORRAL_MOUNT_BIND_DIRECTORY ? CORRAL_AT_RECURSIVE : 0;
        int tree = entry->source_fd >= 0
            ? (int)syscall(SYS_open_tree, entry->source_fd, "", CORRAL_OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH | recursive)
            : (int)syscall(SYS_open_tree, AT_FDCWD, entry->source, CORRAL_OPEN_TREE_CLONE | O_CLOEXEC | recursive);
        int device = entry->data != NULL && entry->data[0] == 'd';
        struct corral_template_attr attributes = {
            CORRAL_MOUNT_ATTR_NOSUID | (device ? 0 : CORRAL_MOUNT_ATTR_NODEV) | (entry->writable ? 0 : CORRAL_MOUNT_ATTR_RDONLY), 0, MS_PRIVATE, 0,
        };
        if (tree < 0 || syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | recursive, &attributes, sizeof(attributes)) != 0) {
            int saved = errno;
            if (tree >= 0) close(tree);
            corral_close_all(trees, tree_count);
            errno = saved;
            corral_child_fail(error_fd, CORRAL_STAGE_FILESYSTEM, errno, index);
        }
        trees[tree_count++] = tree;
    }
    if (setns(isolation->mount_template_fd, CLONE_NEWNS) != 0) corral_child_fail(error_fd, CORRAL_STAGE_FILESYSTEM, errno, -4);
    close(isolation->mount_template_fd);
    if (unshare(CLONE_NEWNS) != 0) corral_child_fail(error_fd, CORRAL_STAGE_FILESYSTEM, errno, -5);
    int next_tree = 0;
    for (int index = 0; index < isolation->mount_count; index++) {
        const corral_mount *entry = &isolation->mounts[index];
        int tree = entry->kind == CORRAL_MOUNT_BIND_DIRECTORY || entry->kind == CORRAL_MOUNT_BIND_FILE ? trees[next_tree++] : -1;
        if (corral_run_entry(entry, tree) != 0) corral_child_fail(error_fd, CORRAL_STAGE_FILESYSTEM, errno, index);
        if (tree >= 0) close(tree);
    }
    if (chdir("/") != 0) corral_child_fail(error_fd, CORRAL_STAGE_FILESYSTEM, errno, -2);
}
