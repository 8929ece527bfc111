// The guard of a Corral process's runs: a small process, forked once, that outlives Corral.
// Corral tells it the cgroup directories of every run that goes on; when Corral dies (even
// by SIGKILL) its end of the channel closes, and the guard kills everything in those
// cgroups, removes them and exits. It runs only this C code (it is a copy of a
// multithreaded process and never execs): system calls and static buffers, no allocation.
#define _GNU_SOURCE
#include "corral_guard.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define CORRAL_GUARD_SLOTS 1024
#define CORRAL_GUARD_PATH 1024

static char corral_guard_paths[CORRAL_GUARD_SLOTS][CORRAL_GUARD_PATH];
// One past the last slot that holds a path (0: nothing watched). Every scan stops there: the
// table is 1 MiB of zero pages, and reading all of it (once at every exit) cost a one-shot
// `corral run` about 240 page faults in the guard.
static int corral_guard_used;
static char corral_guard_message[CORRAL_GUARD_PATH + 1];
static char corral_guard_file[CORRAL_GUARD_PATH + 32];
static char corral_guard_buffer[65536];

static const char *corral_guard_join(const char *directory, const char *name) {
    size_t used = 0;
    for (const char *part = directory; *part && used + 1 < sizeof(corral_guard_file); part++) corral_guard_file[used++] = *part;
    for (const char *part = name; *part && used + 1 < sizeof(corral_guard_file); part++) corral_guard_file[used++] = *part;
    corral_guard_file[used] = 0;
    return corral_guard_file;
}

static int corral_guard_write(const char *directory, const char *name, const char *text) {
    int fd = open(corral_guard_join(directory, name), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t written = write(fd, text, strlen(text));
    close(fd);
    return written < 0 ? -1 : 0;
}

/// SIGKILL to every pid in `directory`/cgroup.procs; returns how many there were.
static int corral_guard_kill_members(const char *directory) {
    int fd = open(corral_guard_join(directory, "/cgroup.procs"), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int count = 0;
    long pid = 0;
    int digits = 0;
    for (;;) {
        ssize_t got = read(fd, corral_guard_buffer, sizeof(corral_guard_buffer));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        for (ssize_t index = 0; index < got; index++) {
            char c = corral_guard_buffer[index];
            if (c >= '0' && c <= '9') {
                pid = pid * 10 + (c - '0');
                digits++;
            } else {
                if (digits > 0 && pid > 1) { kill((pid_t)pid, SIGKILL); count++; }
                pid = 0;
                digits = 0;
            }
        }
    }
    if (digits > 0 && pid > 1) { kill((pid_t)pid, SIGKILL); count++; }
    close(fd);
    return count;
}

static void corral_guard_pause_ms(long milliseconds) {
    struct timespec time = { 0, milliseconds * 1000000L };
    while (nanosleep(&time, &time) != 0 && errno == EINTR) {}
}

/// Everything in the watched cgroups killed (v2: cgroup.kill; v1: freeze, SIGKILL every
/// member while none can fork or exit, thaw), then the directories removed.
static void corral_guard_kill_all(void) {
    // Nothing watched (Corral ended normally and released every run): nothing to wait for.
    // Without this check a normal exit paid 20 ms of pauses here, and Corral waits for it.
    if (corral_guard_used == 0) return;
    for (int round = 0; round < 20; round++) {
        int found = 0;
        for (int slot = 0; slot < corral_guard_used; slot++) {
            const char *directory = corral_guard_paths[slot];
            if (directory[0] == 0) continue;
            if (corral_guard_write(directory, "/cgroup.kill", "1") == 0) continue;
            (void)corral_guard_write(directory, "/freezer.state", "FROZEN");
        }
        corral_guard_pause_ms(5);
        for (int slot = 0; slot < corral_guard_used; slot++) {
            if (corral_guard_paths[slot][0] != 0) found += corral_guard_kill_members(corral_guard_paths[slot]);
        }
        for (int slot = 0; slot < corral_guard_used; slot++) {
            if (corral_guard_paths[slot][0] != 0) (void)corral_guard_write(corral_guard_paths[slot], "/freezer.state", "THAWED");
        }
        if (found == 0 && round > 0) break;
        corral_guard_pause_ms(10);
    }
    for (int slot = 0; slot < corral_guard_used; slot++) {
        if (corral_guard_paths[slot][0] != 0) (void)rmdir(corral_guard_paths[slot]);
    }
}

static void corral_guard_main(int channel) {
    // Only the channel: nothing of Corral's (pipes, sockets, files) stays open in here.
    if (channel != 3) {
        if (dup2(channel, 3) < 0) _exit(1);
        channel = 3;
    }
    (void)syscall(SYS_close_range, 0U, 2U, 0);
    (void)syscall(SYS_close_range, 4U, ~0U, 0);
    // Signals meant for Corral's terminal or process group are not for it.
    struct sigaction ignore;
    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    for (int number = 1; number < NSIG; number++) {
        if (number != SIGKILL && number != SIGSTOP) (void)sigaction(number, &ignore, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    (void)prctl(PR_SET_NAME, "corral-guard", 0, 0, 0);
    for (;;) {
        ssize_t got = recv(channel, corral_guard_message, CORRAL_GUARD_PATH, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break; // Corral is gone
        corral_guard_message[got] = 0;
        const char *path = corral_guard_message + 1;
        if (corral_guard_message[0] == '+' && path[0] != 0) {
            for (int slot = 0; slot < CORRAL_GUARD_SLOTS; slot++) {
                if (corral_guard_paths[slot][0] != 0) continue;
                memcpy(corral_guard_paths[slot], path, (size_t)got);
                if (slot >= corral_guard_used) corral_guard_used = slot + 1;
                break;
            }
        } else if (corral_guard_message[0] == '-' && path[0] != 0) {
            for (int slot = 0; slot < corral_guard_used; slot++) {
                if (strcmp(corral_guard_paths[slot], path) != 0) continue;
                corral_guard_paths[slot][0] = 0;
                // Trailing free slots are no longer scanned.
                while (corral_guard_used > 0 && corral_guard_paths[corral_guard_used - 1][0] == 0) corral_guard_used--;
                break;
            }
        }
    }
    corral_guard_kill_all();
    _exit(0);
}

int corral_guard_start(pid_t *guard_pid) {
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) return -1;
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    // A raw clone, not fork(): no atfork handler of the parent runs in the copy.
    long pid = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0) {
        corral_guard_main(ends[1]);
        _exit(0);
    }
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(ends[1]);
    if (pid < 0) {
        close(ends[0]);
        errno = saved;
        return -1;
    }
    *guard_pid = (pid_t)pid;
    return ends[0];
}

int corral_guard_send_all(int channel, const char *const *messages, int count) {
    // One call for a run's directories (sendmmsg: each still a message of its own): a
    // run's start and its end each cost one system call, not one per directory.
    enum { batch = 16 };
    struct mmsghdr headers[batch];
    struct iovec vectors[batch];
    int done = 0;
    while (done < count) {
        int chunk = count - done < batch ? count - done : batch;
        for (int index = 0; index < chunk; index++) {
            size_t length = strlen(messages[done + index]);
            if (length >= CORRAL_GUARD_PATH) { errno = ENAMETOOLONG; return -1; }
            vectors[index].iov_base = (void *)messages[done + index];
            vectors[index].iov_len = length;
            memset(&headers[index], 0, sizeof(headers[index]));
            headers[index].msg_hdr.msg_iov = &vectors[index];
            headers[index].msg_hdr.msg_iovlen = 1;
        }
        int sent;
        do {
            // Never waits, as corral_guard_send.
            sent = sendmmsg(channel, headers, (unsigned int)chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (sent < 0 && errno == EINTR);
        if (sent < 0) return -1;
        done += sent;
        if (sent < chunk) return -1;
    }
    return 0;
}

int corral_guard_send(int channel, const char *message) {
    size_t length = strlen(message);
    if (length >= CORRAL_GUARD_PATH) { errno = ENAMETOOLONG; return -1; }
    ssize_t sent;
    do {
        // Never waits: a guard a program stopped must not stall Corral's runs.
        sent = send(channel, message, length, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (sent < 0 && errno == EINTR);
    return sent == (ssize_t)length ? 0 : -1;
}
