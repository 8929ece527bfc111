// Touches argv[1] MiB of memory, in each of argv[2] processes (default 1: itself; more:
// that many children, each touching its own), holds it for argv[3] milliseconds (default
// 200), and exits 0. Exits 1 when an allocation fails.
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static int hog(size_t mebibytes, long hold_ms) {
    size_t size = mebibytes << 20;
    char *memory = malloc(size);
    if (memory == NULL) return 1;
    for (size_t offset = 0; offset < size; offset += 4096) memory[offset] = 1;
    struct timespec hold = { hold_ms / 1000, (hold_ms % 1000) * 1000000L };
    nanosleep(&hold, NULL);
    return memory[size / 2] == 1 ? 0 : 2;
}
int main(int argc, char **argv) {
    size_t mebibytes = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
    int processes = argc > 2 ? atoi(argv[2]) : 1;
    long hold_ms = argc > 3 ? atol(argv[3]) : 200;
    if (processes <= 1) return hog(mebibytes, hold_ms);
    for (int i = 0; i < processes; i++) {
        pid_t pid = fork();
        if (pid < 0) return 3;
        if (pid == 0) _exit(hog(mebibytes, hold_ms));
    }
    int failed = 0, status;
    while (wait(&status) > 0) failed |= !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return failed;
}
