#ifndef CORRAL_STORE_H
#define CORRAL_STORE_H
#include <stddef.h>
#include <sys/types.h>

/* The file store's calls Swift's Glibc module does not export (_GNU_SOURCE ones). */

/* linkat(fd, "", dirfd, name, AT_EMPTY_PATH): a new name for exactly the open file (needs
   CAP_DAC_READ_SEARCH, as root). 0, or -1 with errno. */
int corral_link_open_file(int fd, int dirfd, const char *name);

/* Copies all of `in` (from its start) to `out` (at its offset) in the kernel:
   copy_file_range, then sendfile where the file systems refuse it. The bytes copied, or -1
   with errno. */
long long corral_copy_whole_file(int in, int out);
#endif
