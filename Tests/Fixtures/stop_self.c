// Stops itself with SIGSTOP and would sleep afterwards.
#include <signal.h>
#include <unistd.h>
int main(void) { raise(SIGSTOP); sleep(60); return 0; }
