// The main process forks a child that forks a spinning grandchild and exits; the main
// process never reaps the child and sleeps. The grandchild (still in the run's process
// group, re-parented away from its dead parent) burns the run's CPU.
#include <unistd.h>
int main(void) {
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        if (fork() == 0) for (volatile unsigned long i = 0;; i++) {}
        _exit(0);
    }
    for (;;) sleep(60);
}
