// A grandchild that leaves the run's session and process group, outliving both of its
// ancestors. Modes (argv[2]):
//   sleep: child forks grandchild; grandchild setsid()s and sleeps; child and main exit.
//   spin:  the same, but the grandchild burns CPU instead of sleeping.
//   daemon: the classic double fork: fork, setsid, fork again, close stdio, loop.
// The escaped process writes its pid to argv[1] and tells the main process over a pipe
// before anyone exits, so the test knows exactly which pid to look for. The main process
// then waits argv[3] milliseconds (default 0) before it exits; in spin mode, until the
// grandchild has used argv[3] milliseconds of CPU time (at most 10 s), so the CPU time the
// run must account for does not depend on how busy the machine is.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void write_pid(const char *path) {
    FILE *file = fopen(path, "w");
    if (!file) _exit(5);
    fprintf(file, "%d\n", getpid());
    fclose(file);
}
int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *mode = argv[2];
    int ready[2];
    if (pipe(ready) != 0) return 3;
    pid_t child = fork();
    if (child < 0) return 4;
    if (child == 0) {
        close(ready[0]);
        if (strcmp(mode, "daemon") == 0 && setsid() < 0) _exit(6);
        pid_t grandchild = fork();
        if (grandchild < 0) _exit(4);
        if (grandchild == 0) {
            if (strcmp(mode, "daemon") != 0 && setsid() < 0) _exit(6);
            write_pid(argv[1]);
            if (write(ready[1], "x", 1) != 1) _exit(7);
            close(ready[1]);
            if (strcmp(mode, "daemon") == 0) {
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0); dup2(null, 1); dup2(null, 2);
                for (;;) sleep(1);
            }
            if (strcmp(mode, "spin") == 0) for (volatile unsigned long i = 0;; i++) {}
            sleep(60);
            _exit(0);
        }
        _exit(0);
    }
    close(ready[1]);
    char byte;
    if (read(ready[0], &byte, 1) != 1) return 8;
    if (argc > 3 && strcmp(mode, "spin") == 0) {
        FILE *pid_file = fopen(argv[1], "r");
        int grandchild = 0;
        if (!pid_file || fscanf(pid_file, "%d", &grandchild) != 1) return 9;
        fclose(pid_file);
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", grandchild);
        long wanted = atol(argv[3]) * sysconf(_SC_CLK_TCK) / 1000;
        for (int waited = 0; waited < 10000; waited += 5) {
            FILE *stat = fopen(path, "r");
            unsigned long user = 0, system = 0;
            // Fields 14 and 15 (utime, stime), after the ")" that ends the command name.
            if (stat) {
                char line[1024];
                char *end = fgets(line, sizeof(line), stat) ? strrchr(line, ')') : NULL;
                fclose(stat);
                if (end && sscanf(end + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &user, &system) == 2
                    && (long)(user + system) >= wanted) break;
            }
            usleep(5000);
        }
    } else if (argc > 3) {
        usleep((useconds_t)atoi(argv[3]) * 1000);
    }
    return 0;
}
