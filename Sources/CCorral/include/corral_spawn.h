#ifndef CORRAL_SPAWN_H
#define CORRAL_SPAWN_H

#include <sys/types.h>
#include <stdint.h>

/// The step of the child's setup that failed. Sent by the child, with errno, on a
/// close-on-exec pipe; the parent turns it into a readable error.
typedef enum corral_spawn_stage {
    CORRAL_STAGE_NONE = 0,
    CORRAL_STAGE_SETSID = 1,
    CORRAL_STAGE_SIGNALS = 2,
    CORRAL_STAGE_PDEATHSIG = 3,
    CORRAL_STAGE_CGROUP = 4,
    CORRAL_STAGE_STDIO = 5, /* any descriptor of the mapping; detail is the target */
    CORRAL_STAGE_CHDIR = 6,
    CORRAL_STAGE_RLIMIT = 7,
    CORRAL_STAGE_CLOSE_FDS = 8,
    CORRAL_STAGE_EXEC = 9,
    CORRAL_STAGE_NAMESPACES = 10, /* mounts, hostname, loopback of the isolated init; detail says which */
    CORRAL_STAGE_SECCOMP = 14,
    CORRAL_STAGE_FILESYSTEM = 13, /* building the new root: detail is the index of the mount, -1 the root itself, -2 pivot_root */
    CORRAL_STAGE_INIT_FORK = 11,
    CORRAL_STAGE_INIT_START = 15, /* starting corral-init: detail 1 too many descriptors, 2 dup, 3 dup2, 4 close_range, 5 execveat */
    CORRAL_STAGE_INIT_PLAN = 16, /* corral-init reading its plan: detail 1 fstat, 2 malformed, 3 allocation, 4 mmap, 5 close */
    CORRAL_STAGE_PRIVILEGES = 12, /* detail: 1 setgroups, 2 setresgid, 3 setresuid, 4 capabilities, 5 securebits, 6 no_new_privs */
    CORRAL_STAGE_AFFINITY = 17, /* sched_setaffinity to the run's CPUs */
} corral_spawn_stage;

/// One entry of an isolated run's filesystem, made below the new root before pivot_root.
typedef enum corral_mount_kind {
    CORRAL_MOUNT_BIND_DIRECTORY = 0,
    CORRAL_MOUNT_BIND_FILE = 1,
    CORRAL_MOUNT_TMPFS = 2,       /* data: mount options, e.g. "mode=1777,size=64m" */
    CORRAL_MOUNT_SYMLINK = 3,     /* source: the link's text */
    CORRAL_MOUNT_FILE = 4,        /* source: the content, length bytes */
    CORRAL_MOUNT_PROC = 5,
    CORRAL_MOUNT_READ_ONLY = 6,   /* source: a path already in the new root, bound onto target read-only */
} corral_mount_kind;

typedef struct corral_mount {
    int kind;
    /// A host path (binds), the link text, or the content.
    const char *source;
    /// Binds: an O_PATH descriptor to bind instead of `source` (through /proc/self/fd), or -1.
    int source_fd;
    /// Absolute, inside the new root.
    const char *target;
    int writable;
    const char *data;
    unsigned long length;
} corral_mount;

/// The program's first message on the status channel (a wait status is never negative).
#define CORRAL_STATUS_HELLO (-1)

/// Isolation: new PID, mount, IPC, UTS (and network) namespaces with Corral's own init as
/// PID 1, which starts the program as an unprivileged user and forwards its end.
typedef struct corral_isolation {
    /// A new network namespace with only a loopback that is up; 0 keeps the host's.
    int new_network;
    /// Rootless: a new user namespace mapping `uid`/`gid` to themselves (the caller's).
    int new_user;
    unsigned int uid;
    unsigned int gid;
    /// Corral's channel from the run (``corral_status_channel``), two ints a message: first
    /// the program's {CORRAL_STATUS_HELLO, 0} right after it starts (its pid comes with it),
    /// then the init's when the program ends: the program's raw wait status and how many
    /// other processes of the namespace were still there.
    int status_fd;
    const char *hostname;
    /// An empty host directory to build the new root on (a tmpfs), or NULL to keep the
    /// host's filesystem (with a fresh /proc).
    const char *root;
    const corral_mount *mounts;
    int mount_count;
    /// A seccomp filter the program installs last, right before execve; NULL for none.
    unsigned short seccomp_length;
    const void *seccomp_filter;
    /// An open corral-init executable: the init is a vfork-style clone that execs it (by
    /// this descriptor) with a binary plan; -1 (or rootless) keeps a fork-style clone of
    /// Corral as the init.
    int init_fd;
    /// A mount namespace holding the read-only part of the run's filesystem
    /// (corral_mount_template_create), or -1. With it (corral-init only), `root` is unused and
    /// `mounts` lists only the per-run entries (/proc, the tmpfs mounts, /box, /proc masks):
    /// the init enters a private copy of the template instead of building a root and
    /// pivoting into it.
    int mount_template_fd;
} corral_isolation;

/// One resource limit for the child: `setrlimit(resource, {soft, hard})`.
typedef struct corral_rlimit {
    int resource;
    uint64_t soft;
    uint64_t hard;
} corral_rlimit;

/// One descriptor of the child: `source` (a descriptor of the parent) becomes `target`.
typedef struct corral_fd_mapping {
    int source;
    int target;
} corral_fd_mapping;

/// Everything the child needs, prepared by the parent before the clone: after it, the
/// child allocates nothing and takes no lock.
typedef struct corral_spawn_request {
    /// The resolved program (no PATH search happens in the child).
    const char *path;
    /// NULL-terminated.
    char *const *argv;
    /// NULL-terminated.
    char *const *envp;
    /// The working directory, or NULL to stay in Corral's.
    const char *directory;
    /// A plain run: an O_PATH descriptor of the working directory to fchdir into (instead
    /// of `directory`), or -1. Never used by an isolated run (its directory is /box).
    int directory_fd;
    /// A plain run started by root: become uid/gid (no groups, no_new_privs) before exec.
    int switch_user;
    unsigned int uid;
    unsigned int gid;
    /// The child's descriptors: stdio and any other number. 0, 1 and 2 not listed stay
    /// Corral's own; every other descriptor is closed at exec.
    const corral_fd_mapping *fds;
    int fd_count;
    const corral_rlimit *rlimits;
    int rlimit_count;
    /// Open `cgroup.procs` descriptors the child writes "0" into (joins) before exec.
    const int *cgroup_procs_fds;
    int cgroup_procs_count;
    /// The CPUs the child is pinned to (sched_setaffinity after the cgroup joins, before
    /// exec): `cpu_mask_words` 64-bit words, CPU n is bit n % 64 of word n / 64. NULL (0
    /// words) leaves the affinity as it is.
    const uint64_t *cpu_mask;
    int cpu_mask_words;
    /// The parent's pid: the child checks it is still its parent after PR_SET_PDEATHSIG.
    pid_t parent_pid;
    /// NULL: no isolation (the vfork-style spawn). Otherwise see corral_isolation.
    const corral_isolation *isolation;
    /// Signals the program starts with ignored (SIG_IGN): bit N-1 for signal N, as SigIgn in
    /// /proc/PID/status. Every other signal is at its default. Never SIGKILL or SIGSTOP.
    uint64_t ignored_signals;
} corral_spawn_request;

/// What the child reports when its setup fails: the stage, errno, and a detail (the
/// rlimit resource, the cgroup index, the stdio descriptor).
typedef struct corral_child_failure {
    int32_t stage;
    int32_t error;
    int32_t detail;
} corral_child_failure;

typedef struct corral_spawn_result {
    /// The child's pid (> 0 when a child was created).
    pid_t pid;
    /// A pidfd for the child (CLONE_PIDFD), or -1.
    int pidfd;
    /// stage == CORRAL_STAGE_NONE when the child reached execve and it succeeded.
    /// Otherwise the child has exited (status 127) and must still be reaped.
    corral_child_failure failure;
} corral_spawn_result;

/// Starts the child with clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD): the calling thread
/// is suspended until the child has exec'd or given up, so when this returns the outcome
/// of the setup is known. In the child: setsid, default signal dispositions, PDEATHSIG,
/// cgroup joins, every descriptor above 2 marked close-on-exec, the descriptor mapping,
/// chdir, rlimits, request->ignored_signals set to SIG_IGN, an empty signal mask, execve.
///
/// Returns 0 when a child was created (see result->failure), or an errno value when no
/// child could be created (pipe, stack or clone failed).
int corral_spawn(const corral_spawn_request *request, corral_spawn_result *result);

/// The same, with the child created inside the cgroup2 directory `cgroup_fd` (opened
/// O_RDONLY | O_DIRECTORY) by clone3(CLONE_INTO_CGROUP) instead of joining by writing
/// `request->cgroup_procs_fds`: no migration. Where clone3 or CLONE_INTO_CGROUP is missing,
/// the child joins through `cgroup_procs_fds` as with corral_spawn. cgroup_fd -1: corral_spawn.
int corral_spawn_into_cgroup(const corral_spawn_request *request, int cgroup_fd, corral_spawn_result *result);

/// Starts an isolated run (request->isolation set) without waiting for its setup: a
/// fork-style clone into new namespaces whose init builds the filesystem and starts the
/// program. On return (0) result->pid and result->pidfd are set and *setup_fd is the read
/// end of the setup pipe: EOF means the program exec'd; a corral_child_failure means the
/// setup failed (the init exits 127 and must be reaped). Returns an errno value when no
/// child could be created.
int corral_spawn_isolated_start(const corral_spawn_request *request, corral_spawn_result *result, int *setup_fd);

/// The same, entering `network_fd` (a fresh network namespace from the pool, see
/// corral_namespace_pool.h; -1 for none) instead of making a new one, when the init is
/// corral-init and the run has a network namespace of its own; otherwise it is not used. The
/// caller closes it after the call: the namespace is this run's alone.
int corral_spawn_isolated_start_prepared(const corral_spawn_request *request, int network_fd, corral_spawn_result *result, int *setup_fd);

/// Reads what the setup pipe holds (set it O_NONBLOCK). Returns 1 when the outcome is known
/// (EOF, or a whole report in *failure, *got bytes), 0 when more is to come.
int corral_isolated_setup_read(int setup_fd, corral_child_failure *failure, size_t *got);

/// Fills result->failure from what was read (or from a setup that timed out).
void corral_isolated_setup_finish(corral_spawn_result *result, const corral_child_failure *failure, size_t got, int timed_out);

/// Builds a mount template: in a new mount namespace, a tmpfs on `root` (an empty host
/// directory) holding `mounts` (made as corral_build_root makes them) and a mount point for
/// each of `run_mounts` that is mounted on a directory (tmpfs, proc, a directory bind, none
/// below /proc), every tmpfs of `mounts` and then the root remounted read-only at the
/// superblock, pivot_root into it, the old root detached. Returns a descriptor of that
/// namespace (close-on-exec; it lives as long as a descriptor of it does), or -1 with
/// *failure saying which step failed (stage FILESYSTEM: detail the index in `mounts`, -1 the
/// root, -2 pivot_root, -3 the read-only remounts, -6 a run mount point; detail -7 with
/// stage NAMESPACES: the clone or the namespace's descriptor).
int corral_mount_template_create(const char *root, const corral_mount *mounts, int count, const corral_mount *run_mounts, int run_count,
                                 corral_child_failure *failure);

#endif
