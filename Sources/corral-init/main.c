// corral-init: PID 1 of an isolated run, exec'd by Corral's vfork-style spawn (see
// Sources/CCorral/isolated_spawn.c). Its instructions come as a binary plan at descriptor 3,
// never in its arguments or environment; it is not meant to be run by hand.
#include <corral_init.h>

int main(void) {
    corral_init_main();
}
