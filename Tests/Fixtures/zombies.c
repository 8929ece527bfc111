// An orphaning parent: argv[1] times (default 10000), fork a child that forks a
// grandchild and exits at once; the grandchild exits too, an orphan whose zombie only its
// new parent (the namespace's init) can reap. A fork refused (EAGAIN, at the pids limit)
// is retried after a moment, up to a bound. Exits 0 when every round went through.
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 10000;
    long retries = 0;
    for (long i = 0; i < rounds; i++) {
        pid_t child = fork();
        if (child < 0) {
            if (errno == EAGAIN && retries++ < 100000) { usleep(200); i--; continue; }
            return 1;
        }
        if (child == 0) {
            if (fork() < 0) _exit(2);
            _exit(0);
        }
        int status;
        if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 2 && retries++ < 100000) { usleep(200); i--; continue; }
            return 3;
        }
    }
    return 0;
}
