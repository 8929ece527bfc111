// Lowers its own RLIMIT_CPU soft limit to 1 s (any process may lower it), catches the SIGXCPU
// that brings, and carries on spinning, as if the limit did not apply.
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
static void ignore(int signal_number) { (void)signal_number; }
int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = ignore;
    if (sigaction(SIGXCPU, &action, NULL) != 0) return 2;
    struct rlimit limit;
    if (getrlimit(RLIMIT_CPU, &limit) != 0) return 3;
    limit.rlim_cur = 1;
    if (setrlimit(RLIMIT_CPU, &limit) != 0) return 4;
    for (volatile unsigned long i = 0;; i++) {}
    return 0;
}
