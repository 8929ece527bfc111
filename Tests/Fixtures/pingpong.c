// Interactive ping-pong over stdin/stdout. "ping N" writes a number, waits for the answer
// (the number + 1), N times, then exits 0 (1 on a wrong or missing answer). "pong" answers
// every number it reads with the number + 1 until EOF, then exits 0. Unbuffered on purpose:
// every round trip crosses the pipes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int read_line(char *buffer, int size) {
    int length = 0;
    while (length < size - 1) {
        ssize_t got = read(0, buffer + length, 1);
        if (got <= 0) return -1;
        if (buffer[length] == '\n') { buffer[length] = 0; return length; }
        length++;
    }
    return -1;
}
int main(int argc, char **argv) {
    char line[64];
    if (argc > 1 && strcmp(argv[1], "ping") == 0) {
        long rounds = argc > 2 ? atol(argv[2]) : 1000;
        for (long i = 0; i < rounds; i++) {
            int length = snprintf(line, sizeof(line), "%ld\n", i);
            if (write(1, line, length) != length) return 1;
            if (read_line(line, sizeof(line)) < 0 || atol(line) != i + 1) return 1;
        }
        return 0;
    }
    while (read_line(line, sizeof(line)) >= 0) {
        int length = snprintf(line, sizeof(line), "%ld\n", atol(line) + 1);
        if (write(1, line, length) != length) return 1;
    }
    return 0;
}
