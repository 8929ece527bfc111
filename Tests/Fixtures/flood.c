// Writes to stdout without end. With argv[1] == "ignore-xfsz" it ignores SIGXFSZ and
// stops (exit 0) at the first failed write, as a program that checks errors would.
#include <signal.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "ignore-xfsz") == 0) signal(SIGXFSZ, SIG_IGN);
    char buffer[4096];
    memset(buffer, 'y', sizeof(buffer));
    for (;;) {
        if (write(1, buffer, sizeof(buffer)) < 0) return 0;
    }
}
