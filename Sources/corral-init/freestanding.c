// corral-init runs without the C library: its entry point and the few C library functions
// its code (CCorral's child side) calls, each a raw system call. Why: the C library's
// start-up (static or dynamic) asks the CPU what it is, cpuid after cpuid, to pick its
// string functions and size its caches; under a hypervisor each cpuid is a trap, and on the
// development host that start-up cost ~0.47 ms of every isolated run (a static glibc
// program that only returns: 631 µs from spawn to reap; the same without the C library:
// 157 µs). The init needs none of it: it is single-threaded, allocates little and never
// frees, and calls only system calls (the code is async-signal-safe by design).
//
// Only the signatures glibc's headers declare are implemented, with glibc's semantics
// (-1 and errno on failure). x86-64 Linux only (the Package links corral-init so only there).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int corral_init_main(void) __attribute__((noreturn));

// errno: one thread, so one int (a process the init clones gets its own copy).
static int corral_errno_value;
int *__errno_location(void) { return &corral_errno_value; }

// The system call itself: number in rax, arguments in rdi, rsi, rdx, r10, r8, r9.
static long corral_raw(long number, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}

/// A raw result as the C library returns it: -4095..-1 are -errno.
static long corral_result(long result) {
    if ((unsigned long)result > (unsigned long)-4096L) {
        corral_errno_value = (int)-result;
        return -1;
    }
    return result;
}

#define SYS0(n) corral_result(corral_raw((n), 0, 0, 0, 0, 0, 0))
#define SYS1(n, a) corral_result(corral_raw((n), (long)(a), 0, 0, 0, 0, 0))
#define SYS2(n, a, b) corral_result(corral_raw((n), (long)(a), (long)(b), 0, 0, 0, 0))
#define SYS3(n, a, b, c) corral_result(corral_raw((n), (long)(a), (long)(b), (long)(c), 0, 0, 0))
#define SYS4(n, a, b, c, d) corral_result(corral_raw((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0))
#define SYS5(n, a, b, c, d, e) corral_result(corral_raw((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0))
#define SYS6(n, a, b, c, d, e, f) corral_result(corral_raw((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))

// The entry: the kernel leaves argc, argv and the environment on the stack; the init reads
// none of them (its plan is at descriptor 3). The stack is 16-byte aligned for the call.
__asm__(".text\n"
        ".global _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "    xor %ebp, %ebp\n"
        "    and $-16, %rsp\n"
        "    call corral_init_main\n"
        "    hlt\n");

long syscall(long number, ...) {
    va_list arguments;
    va_start(arguments, number);
    long a = va_arg(arguments, long), b = va_arg(arguments, long), c = va_arg(arguments, long);
    long d = va_arg(arguments, long), e = va_arg(arguments, long), f = va_arg(arguments, long);
    va_end(arguments);
    return SYS6(number, a, b, c, d, e, f);
}

void _exit(int status) {
    for (;;) corral_raw(SYS_exit_group, status, 0, 0, 0, 0, 0);
}

ssize_t read(int fd, void *buffer, size_t count) { return SYS3(SYS_read, fd, buffer, count); }
ssize_t write(int fd, const void *buffer, size_t count) { return SYS3(SYS_write, fd, buffer, count); }
int close(int fd) { return (int)SYS1(SYS_close, fd); }
int dup2(int from, int to) { return (int)SYS2(SYS_dup2, from, to); }
int dup3(int from, int to, int flags) { return (int)SYS3(SYS_dup3, from, to, flags); }

int open(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list arguments;
        va_start(arguments, flags);
        mode = va_arg(arguments, mode_t);
        va_end(arguments);
    }
    return (int)SYS4(SYS_openat, AT_FDCWD, path, flags, mode);
}

int openat(int directory, const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list arguments;
        va_start(arguments, flags);
        mode = va_arg(arguments, mode_t);
        va_end(arguments);
    }
    return (int)SYS4(SYS_openat, directory, path, flags, mode);
}

int fcntl(int fd, int command, ...) {
    va_list arguments;
    va_start(arguments, command);
    long argument = va_arg(arguments, long);
    va_end(arguments);
    return (int)SYS3(SYS_fcntl, fd, command, argument);
}

int ioctl(int fd, unsigned long request, ...) {
    va_list arguments;
    va_start(arguments, request);
    long argument = va_arg(arguments, long);
    va_end(arguments);
    return (int)SYS3(SYS_ioctl, fd, request, argument);
}

int prctl(int option, ...) {
    va_list arguments;
    va_start(arguments, option);
    unsigned long a = va_arg(arguments, unsigned long), b = va_arg(arguments, unsigned long);
    unsigned long c = va_arg(arguments, unsigned long), d = va_arg(arguments, unsigned long);
    va_end(arguments);
    return (int)SYS5(SYS_prctl, option, a, b, c, d);
}

int fstat(int fd, struct stat *info) { return (int)SYS2(SYS_fstat, fd, info); }

void *mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset) {
    long result = corral_raw(SYS_mmap, (long)address, (long)length, protection, flags, fd, offset);
    if ((unsigned long)result > (unsigned long)-4096L) {
        corral_errno_value = (int)-result;
        return MAP_FAILED;
    }
    return (void *)result;
}

int munmap(void *address, size_t length) { return (int)SYS2(SYS_munmap, address, length); }

int mount(const char *source, const char *target, const char *type, unsigned long flags, const void *data) {
    return (int)SYS5(SYS_mount, source, target, type, flags, data);
}
int umount2(const char *target, int flags) { return (int)SYS2(SYS_umount2, target, flags); }
int mkdir(const char *path, mode_t mode) { return (int)SYS3(SYS_mkdirat, AT_FDCWD, path, mode); }
int mkdirat(int directory, const char *path, mode_t mode) { return (int)SYS3(SYS_mkdirat, directory, path, mode); }
int rmdir(const char *path) { return (int)SYS3(SYS_unlinkat, AT_FDCWD, path, AT_REMOVEDIR); }
int symlink(const char *target, const char *path) { return (int)SYS3(SYS_symlinkat, target, AT_FDCWD, path); }
int chdir(const char *path) { return (int)SYS1(SYS_chdir, path); }
int fchdir(int fd) { return (int)SYS1(SYS_fchdir, fd); }
int unshare(int flags) { return (int)SYS1(SYS_unshare, flags); }
int setns(int fd, int type) { return (int)SYS2(SYS_setns, fd, type); }
int sethostname(const char *name, size_t length) { return (int)SYS2(SYS_sethostname, name, length); }
pid_t setsid(void) { return (pid_t)SYS0(SYS_setsid); }
pid_t getpid(void) { return (pid_t)SYS0(SYS_getpid); }
pid_t getppid(void) { return (pid_t)SYS0(SYS_getppid); }
int socket(int domain, int type, int protocol) { return (int)SYS3(SYS_socket, domain, type, protocol); }
ssize_t send(int fd, const void *buffer, size_t length, int flags) {
    return SYS6(SYS_sendto, fd, buffer, length, flags, 0, 0);
}
int execve(const char *path, char *const argv[], char *const envp[]) { return (int)SYS3(SYS_execve, path, argv, envp); }
pid_t waitpid(pid_t pid, int *status, int options) { return (pid_t)SYS4(SYS_wait4, pid, status, options, 0); }

int getrlimit(__rlimit_resource_t resource, struct rlimit *limit) {
    return (int)SYS4(SYS_prlimit64, 0, resource, 0, limit);
}
int setrlimit(__rlimit_resource_t resource, const struct rlimit *limit) {
    return (int)SYS4(SYS_prlimit64, 0, resource, limit, 0);
}

// Signals: the C library's sigset_t is 1024 bits, the kernel's (x86-64) 64; its struct
// sigaction is laid out differently too.
struct corral_kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

int sigemptyset(sigset_t *set) {
    memset(set, 0, sizeof(*set));
    return 0;
}

int sigfillset(sigset_t *set) {
    memset(set, 0xff, sizeof(*set));
    return 0;
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
    uint64_t wanted = 0, previous = 0;
    if (set) memcpy(&wanted, set, sizeof(wanted));
    long result = SYS4(SYS_rt_sigprocmask, how, set ? &wanted : NULL, old ? &previous : NULL, sizeof(uint64_t));
    if (result == 0 && old) {
        memset(old, 0, sizeof(*old));
        memcpy(old, &previous, sizeof(previous));
    }
    return (int)result;
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
    return sigprocmask(how, set, old) == 0 ? 0 : corral_errno_value;
}

/// Reads and sets dispositions. Only SIG_DFL and SIG_IGN can be set: the init installs no
/// handler (one would need a restorer, which this library does not have).
int sigaction(int signal_number, const struct sigaction *action, struct sigaction *old) {
    struct corral_kernel_sigaction wanted, previous;
    if (action) {
        if (action->sa_handler != SIG_DFL && action->sa_handler != SIG_IGN) {
            corral_errno_value = EINVAL;
            return -1;
        }
        memset(&wanted, 0, sizeof(wanted));
        wanted.handler = action->sa_handler;
        wanted.flags = (unsigned long)(unsigned int)action->sa_flags;
        memcpy(&wanted.mask, &action->sa_mask, sizeof(wanted.mask));
    }
    long result = SYS4(SYS_rt_sigaction, signal_number, action ? &wanted : NULL, old ? &previous : NULL, sizeof(uint64_t));
    if (result == 0 && old) {
        memset(old, 0, sizeof(*old));
        old->sa_handler = previous.handler;
        old->sa_flags = (int)previous.flags;
        old->sa_restorer = previous.restorer;
        memcpy(&old->sa_mask, &previous.mask, sizeof(previous.mask));
    }
    return (int)result;
}

/// Zeroed memory straight from the kernel, never freed: the init allocates once, for its
/// plan, and exits.
void *calloc(size_t count, size_t size) {
    if (size != 0 && count > (size_t)-1 / size) {
        corral_errno_value = ENOMEM;
        return NULL;
    }
    size_t bytes = count * size;
    if (bytes == 0) bytes = 1;
    void *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return memory == MAP_FAILED ? NULL : memory;
}

// What the compiler may call for copies and zeroing; written so that it cannot turn them
// into calls to themselves.
__attribute__((no_builtin)) void *memset(void *destination, int value, size_t count) {
    unsigned char *bytes = destination;
    for (size_t index = 0; index < count; index++) ((volatile unsigned char *)bytes)[index] = (unsigned char)value;
    return destination;
}

__attribute__((no_builtin)) void *memcpy(void *destination, const void *source, size_t count) {
    unsigned char *to = destination;
    const unsigned char *from = source;
    for (size_t index = 0; index < count; index++) ((volatile unsigned char *)to)[index] = from[index];
    return destination;
}

__attribute__((no_builtin)) void *memmove(void *destination, const void *source, size_t count) {
    unsigned char *to = destination;
    const unsigned char *from = source;
    if (to < from) {
        for (size_t index = 0; index < count; index++) ((volatile unsigned char *)to)[index] = from[index];
    } else {
        for (size_t index = count; index > 0; index--) ((volatile unsigned char *)to)[index - 1] = from[index - 1];
    }
    return destination;
}

__attribute__((no_builtin)) int memcmp(const void *left, const void *right, size_t count) {
    const unsigned char *a = left, *b = right;
    for (size_t index = 0; index < count; index++) {
        if (a[index] != b[index]) return a[index] < b[index] ? -1 : 1;
    }
    return 0;
}

__attribute__((no_builtin)) size_t strlen(const char *text) {
    size_t length = 0;
    while (((const volatile char *)text)[length]) length++;
    return length;
}

int strcmp(const char *left, const char *right) {
    while (*left && *left == *right) { left++; right++; }
    return (unsigned char)*left - (unsigned char)*right;
}

int strncmp(const char *left, const char *right, size_t count) {
    for (; count > 0; count--, left++, right++) {
        if (*left != *right || *left == 0) return (unsigned char)*left - (unsigned char)*right;
    }
    return 0;
}

char *strncpy(char *destination, const char *source, size_t count) {
    size_t index = 0;
    for (; index < count && source[index]; index++) destination[index] = source[index];
    for (; index < count; index++) destination[index] = 0;
    return destination;
}

char *strchr(const char *text, int wanted) {
    for (;; text++) {
        if (*text == (char)wanted) return (char *)text;
        if (*text == 0) return NULL;
    }
}

// The Swift driver links every executable with the object that registers its Swift
// metadata with the runtime (swiftrt.o). corral-init has no Swift code and no C library
// start-up to run that object's constructor; these two satisfy its references, so that the
// Swift runtime (and the C++ and C libraries it needs) is not linked in for them.
void swift_addNewDSOImage(const void *image) { (void)image; }
int _swift_backtrace_isThunkFunction(const char *name) { (void)name; return 0; }
