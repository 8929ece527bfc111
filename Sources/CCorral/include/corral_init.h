// The isolated run's init as an executable of its own (corral-init): what Corral hands it
// and at which descriptors. See init_plan.c and isolated_spawn.c.
#ifndef CORRAL_INIT_H
#define CORRAL_INIT_H

#include "corral_spawn.h"

/// The descriptors corral-init starts with (every other one is closed before its exec).
#define CORRAL_INIT_PLAN_FD 3
#define CORRAL_INIT_ERROR_FD 4
#define CORRAL_INIT_STATUS_FD 5
/// Then the sources of the program's descriptor mapping in order, then each mount's source_fd,
/// then the mount template (when the plan says there is one).
#define CORRAL_INIT_FIRST_SOURCE_FD 6

/// Writes the request's plan into a sealed, close-on-exec memfd. Returns it, or -1 with errno.
int corral_init_plan_write(const corral_spawn_request *request);

/// corral-init's main: reads the plan and runs the init (PID 1 of the run). Does not return.
int corral_init_main(void) __attribute__((noreturn));

#endif
