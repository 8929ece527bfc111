#ifndef CORRAL_TEMPLATE_STORE_H
#define CORRAL_TEMPLATE_STORE_H

/// Persisted mount templates (root only): a template's mount namespace kept across Corral
/// processes by a bind mount of its nsfs file in `directory` (root's, mode 0700, a private
/// mount of its own), named `name` (a digest of the template's content), as `ip netns` keeps
/// network namespaces. Not for the child side: called by Corral on a blocking thread.

/// A descriptor of the persisted template `name` (a mount namespace), or -1 with errno:
/// ENOENT none; EPERM the directory is not root's own 0700 directory; ESTALE `name` is
/// there but is not a mount namespace (a plain file, another namespace type).
int corral_template_store_open(const char *directory, const char *name);

/// Persists the mount namespace `namespace_fd` as `name`: the directory made (0700) and
/// made a private mount where absent, an empty file made beneath it (never through a link),
/// the namespace bound onto it. When `directory` holds `limit` entries or more, they are
/// removed first (runs that hold one keep it). Returns 0, or -1 with errno (EEXIST: another
/// process persisted it first).
int corral_template_store_save(const char *directory, const char *name, int namespace_fd, int limit);

/// Unmounts and removes every entry of `directory` (and the directory itself when it is
/// empty then). Returns how many were removed, or -1 with errno (0 when there is none).
int corral_template_store_remove_all(const char *directory);

#endif
