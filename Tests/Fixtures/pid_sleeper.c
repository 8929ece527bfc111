// Writes its pid to argv[1] and sleeps for argv[2] seconds (default 60).
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    FILE *file = fopen(argv[1], "w");
    if (!file) return 3;
    fprintf(file, "%d\n", getpid());
    fclose(file);
    sleep(argc > 2 ? (unsigned)atoi(argv[2]) : 60);
    return 0;
}
