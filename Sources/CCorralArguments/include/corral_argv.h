#ifndef CORRAL_ARGV_H
#define CORRAL_ARGV_H

/* The password of a `--queue URL` (or `--queue=URL`) argument of `serve` and `worker`,
 * overwritten with 'x' in the process's own argument strings before main runs (before any
 * thread), so /proc/PID/cmdline, which every process may read, no longer shows it; the URL as
 * given is kept here for the command. NULL when there was none. */
const char *corral_queue_argument_original(void);
/* The same argument as it now reads in argv (the password replaced). */
const char *corral_queue_argument_masked(void);

#endif
