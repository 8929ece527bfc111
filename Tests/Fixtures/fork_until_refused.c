// Forks children that wait until fork is refused, then prints how many processes of its
// own existed at once (itself included) and the errno of the refused fork: "COUNT ERRNO".
// The children are single-threaded and wait on a pipe, so nothing else counts.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
int main(void) {
    int gate[2];
    if (pipe(gate) != 0) return 3;
    int count = 1, refused = 0;
    for (int i = 0; i < 10000; i++) {
        pid_t pid = fork();
        if (pid < 0) { refused = errno; break; }
        if (pid == 0) {
            char byte;
            close(gate[1]);
            while (read(gate[0], &byte, 1) < 0 && errno == EINTR) {}
            _exit(0);
        }
        count++;
    }
    close(gate[1]); // the children read EOF and exit
    while (wait(NULL) > 0 || errno == EINTR) {}
    printf("%d %d\n", count, refused);
    return 0;
}
