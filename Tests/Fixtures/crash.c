// Dies of a signal: "segv" dereferences NULL, "abort" calls abort().
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "abort") == 0) abort();
    volatile int *pointer = NULL;
    *pointer = 1;
    return 0;
}
