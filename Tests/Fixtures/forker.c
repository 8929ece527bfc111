// Forks argv[2] children that sleep for a minute, writes their pids to argv[1] (one per
// line), and exits at once.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int count = atoi(argv[2]);
    FILE *pids = fopen(argv[1], "w");
    if (!pids) return 3;
    for (int i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid < 0) return 4;
        if (pid == 0) { sleep(60); _exit(0); }
        fprintf(pids, "%d\n", pid);
    }
    fclose(pids);
    return 0;
}
