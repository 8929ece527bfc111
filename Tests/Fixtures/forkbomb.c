// Forks without end: every process keeps forking. Only a pids limit holds it.
#include <unistd.h>
int main(void) {
    for (;;) {
        if (fork() < 0) usleep(1000);
    }
}
