// Catches SIGXCPU and carries on spinning, as if the limit did not apply.
#include <signal.h>
#include <string.h>
static void ignore(int signal_number) { (void)signal_number; }
int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = ignore;
    sigaction(SIGXCPU, &action, NULL);
    for (volatile unsigned long i = 0;; i++) {}
    return 0;
}
