// argv[1] threads (default 2) each burn argv[2] seconds (default 0.4) of their own CPU time
// (CLOCK_THREAD_CPUTIME_ID), however the machine schedules them, then the process exits 0.
// The run's CPU is threads × seconds whatever the load.
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
static double seconds = 0.4;
static double thread_cpu(void) {
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return now.tv_sec + now.tv_nsec / 1e9;
}
static void *burn(void *unused) {
    (void)unused;
    while (thread_cpu() < seconds) { for (volatile int i = 0; i < 10000; i++) {} }
    return NULL;
}
int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (argc > 2) seconds = atof(argv[2]);
    pthread_t ids[64];
    for (int i = 1; i < threads && i < 64; i++) pthread_create(&ids[i], NULL, burn, NULL);
    burn(NULL);
    for (int i = 1; i < threads && i < 64; i++) pthread_join(ids[i], NULL);
    return 0;
}
