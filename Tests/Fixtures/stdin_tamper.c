// Attacks its own stdin (a file Corral says nobody can change), then copies it to stdout from
// where its offset is, then moves that offset to the end. On stderr: "mode NNN", "inode D:I",
// "link TARGET", then one line per attack that WORKED (none should). With "slow", it reads
// its stdin 16 KiB at a time with a pause between (a run that overlaps another's).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void worked(const char *what) { fprintf(stderr, "WORKED %s\n", what); }

int main(int argc, char **argv) {
    int slow = argc > 1 && strcmp(argv[1], "slow") == 0;
    struct stat info;
    if (fstat(0, &info) == 0) {
        fprintf(stderr, "mode %o\ninode %lu:%lu\n", (unsigned)(info.st_mode & 07777), (unsigned long)info.st_dev, (unsigned long)info.st_ino);
    }
    char target[256] = {0};
    if (readlink("/proc/self/fd/0", target, sizeof target - 1) > 0) fprintf(stderr, "link %s\n", target);
    if (!slow) {
        int rw = open("/proc/self/fd/0", O_RDWR);
        if (rw >= 0) {
            fprintf(stderr, "reopened read-write\n"); // allowed for root (DAC), refused by the seals below
            if (pwrite(rw, "pwned", 5, 0) > 0) worked("pwrite through a read-write reopen");
            if (write(rw, "pwned", 5) > 0) worked("write through a read-write reopen");
            if (ftruncate(rw, 0) == 0) worked("ftruncate to 0");
            if (ftruncate(rw, (off_t)info.st_size + 4096) == 0) worked("ftruncate larger");
            if (fallocate(rw, 0, 0, (off_t)info.st_size + 4096) == 0) worked("fallocate");
            void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
            if (map != MAP_FAILED) { worked("mmap shared writable"); memcpy(map, "pwned", 5); }
            close(rw);
        }
        int appending = open("/proc/self/fd/0", O_WRONLY | O_APPEND);
        if (appending >= 0 && write(appending, "pwned", 5) > 0) worked("append");
        if (write(0, "pwned", 5) > 0) worked("write to fd 0");
        if (ftruncate(0, 0) == 0) worked("ftruncate fd 0");
        void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 0);
        if (map != MAP_FAILED) worked("mmap fd 0 shared writable");
        if (fchmod(0, 0666) == 0) fprintf(stderr, "chmodded\n"); // root (or Corral's own user) may: the next run must not care
        if (linkat(0, "", AT_FDCWD, "/tmp/corral-stdin-tamper-link", AT_EMPTY_PATH) == 0) { worked("linkat"); unlink("/tmp/corral-stdin-tamper-link"); }
    }
    char buffer[16384];
    for (;;) {
        ssize_t count = read(0, buffer, sizeof buffer);
        if (count <= 0) break;
        if (write(1, buffer, (size_t)count) != count) return 3;
        if (slow) usleep(50000);
    }
    // Were the offset shared with the next run, it would read nothing.
    lseek(0, 0, SEEK_END);
    return 0;
}
