/* Hides the password of `corral serve|worker --queue postgres://USER:PASSWORD@HOST/DB` from
 * /proc/PID/cmdline, as the mysql and psql clients do: the kernel shows the process's own
 * argument memory there, so the password's bytes are overwritten in place. It runs from
 * .init_array (glibc passes argc, argv, envp), before main and before any thread starts; the
 * linker keeps it because the accessors below are used. What a reader sees in the instant
 * between exec and this function cannot be hidden: --queue-file avoids even that. */
#include "corral_argv.h"
#include <stdlib.h>
#include <string.h>

static char *original;
static char *masked;

/* The password inside `scheme://user:password@host…` (before the first '/', '?' or '#' of
 * the authority, up to its last '@'); NULL when there is none. */
static char *password_of(char *value, size_t *length) {
    char *scheme = strstr(value, "://");
    if (scheme == NULL) return NULL;
    char *authority = scheme + 3;
    size_t authority_length = strcspn(authority, "/?#");
    char *at = NULL;
    for (size_t i = 0; i < authority_length; i++) {
        if (authority[i] == '@') at = authority + i;
    }
    if (at == NULL) return NULL;
    char *colon = memchr(authority, ':', (size_t)(at - authority));
    if (colon == NULL) return NULL;
    *length = (size_t)(at - colon - 1);
    return colon + 1;
}

static void hide_queue_password(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc < 2 || argv == NULL || argv[1] == NULL) return;
    if (strcmp(argv[1], "serve") != 0 && strcmp(argv[1], "worker") != 0) return;
    for (int i = 2; i < argc && argv[i] != NULL; i++) {
        if (strcmp(argv[i], "--") == 0) return;
        char *value;
        if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc && argv[i + 1] != NULL) {
            value = argv[++i];
        } else if (strncmp(argv[i], "--queue=", 8) == 0) {
            value = argv[i] + 8;
        } else {
            continue;
        }
        size_t length = 0;
        char *password = password_of(value, &length);
        if (password == NULL || length == 0) continue;
        char *copy = strdup(value);
        if (copy == NULL) {
            /* No copy: the command gets the masked URL and its login fails; the password is
             * hidden all the same. */
            memset(password, 'x', length);
            continue;
        }
        memset(password, 'x', length);
        free(original);
        free(masked);
        original = copy;
        masked = strdup(value);
    }
}

__attribute__((section(".init_array"), used))
static void (*const corral_hide_queue_password)(int, char **, char **) = hide_queue_password;

const char *corral_queue_argument_original(void) { return original; }
const char *corral_queue_argument_masked(void) { return masked; }
