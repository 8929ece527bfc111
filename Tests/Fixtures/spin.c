// Burns CPU forever in argv[1] threads (default 1).
#include <pthread.h>
#include <stdlib.h>
static void *spin(void *unused) { (void)unused; for (volatile unsigned long i = 0;; i++) {} return NULL; }
int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    for (int i = 1; i < threads; i++) { pthread_t t; pthread_create(&t, NULL, spin, NULL); }
    spin(NULL);
    return 0;
}
