// libseccomp, loaded at run time (libseccomp.so.2 is on nearly every Linux; its headers
// often are not), so no header package is needed to build. Only the few stable entry
// points are declared. Runs in the parent only.
#define _GNU_SOURCE
#include "corral_seccomp.h"
#include "corral_sys.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void *scmp_filter_ctx;
struct corral_scmp_arg_cmp {
    unsigned int arg;
    int op;          /* enum scmp_compare */
    uint64_t datum_a;
    uint64_t datum_b;
};
#define CORRAL_SCMP_CMP_MASKED_EQ 7
#define CORRAL_SCMP_FLTATR_ACT_BADARCH 2

static scmp_filter_ctx (*p_seccomp_init)(uint32_t);
static int (*p_seccomp_rule_add)(scmp_filter_ctx, uint32_t, int, unsigned int, ...);
static int (*p_seccomp_syscall_resolve_name)(const char *);
static char *(*p_seccomp_syscall_resolve_num_arch)(uint32_t, int);
static int (*p_seccomp_export_bpf)(const scmp_filter_ctx, int);
static void (*p_seccomp_release)(scmp_filter_ctx);
static int (*p_seccomp_attr_set)(scmp_filter_ctx, int, uint32_t);

static pthread_once_t corral_seccomp_once = PTHREAD_ONCE_INIT;
static const char *corral_seccomp_error = NULL;

static void corral_seccomp_do_load(void) {
    void *handle = dlopen("libseccomp.so.2", RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *reason = dlerror();
        corral_seccomp_error = reason ? strdup(reason) : "libseccomp.so.2 not found";
        return;
    }
    p_seccomp_init = dlsym(handle, "seccomp_init");
    p_seccomp_rule_add = dlsym(handle, "seccomp_rule_add");
    p_seccomp_syscall_resolve_name = dlsym(handle, "seccomp_syscall_resolve_name");
    p_seccomp_syscall_resolve_num_arch = dlsym(handle, "seccomp_syscall_resolve_num_arch"); /* optional */
    p_seccomp_export_bpf = dlsym(handle, "seccomp_export_bpf");
    p_seccomp_release = dlsym(handle, "seccomp_release");
    p_seccomp_attr_set = dlsym(handle, "seccomp_attr_set");
    if (!p_seccomp_init || !p_seccomp_rule_add || !p_seccomp_syscall_resolve_name || !p_seccomp_export_bpf
        || !p_seccomp_release || !p_seccomp_attr_set) {
        corral_seccomp_error = "libseccomp.so.2 lacks an expected function";
    }
}

const char *corral_seccomp_load(void) {
    pthread_once(&corral_seccomp_once, corral_seccomp_do_load);
    return corral_seccomp_error;
}

int corral_seccomp_resolve(const char *name) {
    if (corral_seccomp_load() != NULL) return -1;
    return p_seccomp_syscall_resolve_name(name);
}

char *corral_seccomp_syscall_name(uint32_t arch, int number) {
    if (corral_seccomp_load() != NULL || p_seccomp_syscall_resolve_num_arch == NULL) return NULL;
    return p_seccomp_syscall_resolve_num_arch(arch, number);
}

int corral_seccomp_build(uint32_t default_action, const corral_seccomp_rule *rules, int count,
                         corral_seccomp_program *program, int *failed_rule) {
    program->length = 0;
    program->filter = NULL;
    *failed_rule = -1;
    if (corral_seccomp_load() != NULL) return ENOSYS;
    scmp_filter_ctx context = p_seccomp_init(default_action);
    if (context == NULL) return ENOMEM;
    int result = -p_seccomp_attr_set(context, CORRAL_SCMP_FLTATR_ACT_BADARCH, CORRAL_SECCOMP_KILL_PROCESS);
    for (int index = 0; result == 0 && index < count; index++) {
        const corral_seccomp_rule *rule = &rules[index];
        int number = p_seccomp_syscall_resolve_name(rule->name);
        if (number < 0) {
            *failed_rule = index;
            result = EINVAL;
            break;
        }
        int added;
        if (rule->argument >= 0) {
            struct corral_scmp_arg_cmp compare = { (unsigned int)rule->argument, CORRAL_SCMP_CMP_MASKED_EQ, rule->mask, rule->value };
            added = p_seccomp_rule_add(context, rule->action, number, 1, compare);
        } else {
            added = p_seccomp_rule_add(context, rule->action, number, 0);
        }
        // EEXIST: the rule is the default action already; that is fine.
        if (added != 0 && added != -EEXIST) {
            *failed_rule = index;
            result = -added;
        }
    }
    int memory = result == 0 ? corral_memfd("corral-seccomp") : -1;
    if (result == 0 && memory < 0) result = errno;
    if (result == 0) result = -p_seccomp_export_bpf(context, memory);
    p_seccomp_release(context);
    if (result != 0) {
        if (memory >= 0) close(memory);
        return result;
    }
    off_t size = lseek(memory, 0, SEEK_END);
    if (size <= 0 || size % 8 != 0 || size / 8 > 65535 || lseek(memory, 0, SEEK_SET) != 0) {
        close(memory);
        return EIO;
    }
    void *filter = malloc((size_t)size);
    if (filter == NULL) {
        close(memory);
        return ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t count_read = read(memory, (char *)filter + got, (size_t)size - got);
        if (count_read < 0 && errno == EINTR) continue;
        if (count_read <= 0) {
            free(filter);
            close(memory);
            return EIO;
        }
        got += (size_t)count_read;
    }
    close(memory);
    program->length = (unsigned short)(size / 8);
    program->filter = filter;
    return 0;
}

void corral_seccomp_free(corral_seccomp_program *program) {
    free(program->filter);
    program->filter = NULL;
    program->length = 0;
}
