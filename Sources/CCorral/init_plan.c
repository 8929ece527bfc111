// The plan an isolated run's init executable (corral-init) is given: everything of the
// spawn request it needs, as one compact binary message in a sealed memfd at descriptor 3,
// never in its arguments or environment (which the program could read in /proc/1). Corral
// writes it before the clone (ordinary C: it allocates); corral-init reads it after its exec
// (its own process: it may allocate too) and points a corral_spawn_request into it.
#define _GNU_SOURCE
#include "corral_init.h"
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define CORRAL_PLAN_MAGIC 0x504c5243u /* "CRLP" */
#define CORRAL_PLAN_NULL 0xffffffffu
/// Far above any real plan; bounds what the init maps.
#define CORRAL_PLAN_MAX (64u << 20)

typedef struct corral_plan_writer {
    char *bytes;
    size_t used, size;
    int failed;
} corral_plan_writer;

static void corral_plan_put(corral_plan_writer *writer, const void *data, size_t length) {
    if (writer->failed) return;
    if (writer->used + length > writer->size) {
        size_t size = writer->size ? writer->size : 4096;
        while (size < writer->used + length) size *= 2;
        char *grown = realloc(writer->bytes, size);
        if (grown == NULL) { writer->failed = 1; return; }
        writer->bytes = grown;
        writer->size = size;
    }
    memcpy(writer->bytes + writer->used, data, length);
    writer->used += length;
}

static void corral_plan_u32(corral_plan_writer *writer, uint32_t value) { corral_plan_put(writer, &value, sizeof(value)); }
static void corral_plan_u64(corral_plan_writer *writer, uint64_t value) { corral_plan_put(writer, &value, sizeof(value)); }

/// Length, bytes, a NUL (so the reader can point at it as a C string); NULL as a marker.
static void corral_plan_bytes(corral_plan_writer *writer, const char *data, size_t length) {
    if (data == NULL) { corral_plan_u32(writer, CORRAL_PLAN_NULL); return; }
    corral_plan_u32(writer, (uint32_t)length);
    corral_plan_put(writer, data, length);
    corral_plan_put(writer, "", 1);
}

static void corral_plan_string(corral_plan_writer *writer, const char *text) {
    corral_plan_bytes(writer, text, text ? strlen(text) : 0);
}

static uint32_t corral_plan_count(char *const *strings) {
    uint32_t count = 0;
    while (strings != NULL && strings[count] != NULL) count++;
    return count;
}

int corral_init_plan_write(const corral_spawn_request *request) {
    const corral_isolation *isolation = request->isolation;
    corral_plan_writer writer = { NULL, 0, 0, 0 };
    uint32_t argc = corral_plan_count(request->argv), envc = corral_plan_count(request->envp);
    corral_plan_u32(&writer, CORRAL_PLAN_MAGIC);
    uint32_t header[] = { (uint32_t)isolation->new_network, isolation->uid, isolation->gid, (uint32_t)request->rlimit_count,
                          (uint32_t)request->fd_count, (uint32_t)isolation->mount_count, isolation->seccomp_length, argc, envc,
                          (uint32_t)(isolation->mount_template_fd >= 0) };
    corral_plan_put(&writer, header, sizeof(header));
    corral_plan_u64(&writer, request->ignored_signals);
    int cpu_words = request->cpu_mask != NULL && request->cpu_mask_words > 0 ? request->cpu_mask_words : 0;
    corral_plan_u32(&writer, (uint32_t)cpu_words);
    for (int index = 0; index < cpu_words; index++) corral_plan_u64(&writer, request->cpu_mask[index]);
    corral_plan_string(&writer, request->path);
    corral_plan_string(&writer, request->directory);
    corral_plan_string(&writer, isolation->hostname);
    corral_plan_string(&writer, isolation->root);
    for (int index = 0; index < request->rlimit_count; index++) {
        corral_plan_u32(&writer, (uint32_t)request->rlimits[index].resource);
        corral_plan_u64(&writer, request->rlimits[index].soft);
        corral_plan_u64(&writer, request->rlimits[index].hard);
    }
    for (int index = 0; index < request->fd_count; index++) corral_plan_u32(&writer, (uint32_t)request->fds[index].target);
    for (int index = 0; index < isolation->mount_count; index++) {
        const corral_mount *entry = &isolation->mounts[index];
        uint32_t fields[] = { (uint32_t)entry->kind, (uint32_t)entry->writable, entry->source_fd >= 0 };
        corral_plan_put(&writer, fields, sizeof(fields));
        if (entry->kind == CORRAL_MOUNT_FILE) corral_plan_bytes(&writer, entry->source, entry->length);
        else corral_plan_string(&writer, entry->source);
        corral_plan_string(&writer, entry->target);
        corral_plan_string(&writer, entry->data);
    }
    corral_plan_put(&writer, isolation->seccomp_filter, (size_t)isolation->seccomp_length * 8);
    for (uint32_t index = 0; index < argc; index++) corral_plan_string(&writer, request->argv[index]);
    for (uint32_t index = 0; index < envc; index++) corral_plan_string(&writer, request->envp[index]);
    if (writer.failed) { free(writer.bytes); errno = ENOMEM; return -1; }

    int fd = memfd_create("corral-init-plan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int error = fd < 0 ? errno : 0;
    for (size_t written = 0; error == 0 && written < writer.used;) {
        ssize_t count = write(fd, writer.bytes + written, writer.used - written);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) { error = count < 0 ? errno : EIO; break; }
        written += (size_t)count;
    }
    free(writer.bytes);
    // Sealed: nothing can change the plan between here and the init's reading it.
    if (error == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) error = errno;
    if (error != 0) {
        if (fd >= 0) close(fd);
        errno = error;
        return -1;
    }
    return fd;
}

typedef struct corral_plan_reader {
    const char *bytes;
    size_t used, size;
    int failed;
} corral_plan_reader;

static const void *corral_plan_take(corral_plan_reader *reader, size_t length) {
    if (reader->failed || length > reader->size - reader->used) { reader->failed = 1; return NULL; }
    const void *at = reader->bytes + reader->used;
    reader->used += length;
    return at;
}

static uint32_t corral_plan_read_u32(corral_plan_reader *reader) {
    uint32_t value = 0;
    const void *at = corral_plan_take(reader, sizeof(value));
    if (at) memcpy(&value, at, sizeof(value));
    return value;
}

static uint64_t corral_plan_read_u64(corral_plan_reader *reader) {
    uint64_t value = 0;
    const void *at = corral_plan_take(reader, sizeof(value));
    if (at) memcpy(&value, at, sizeof(value));
    return value;
}

static const char *corral_plan_read_bytes(corral_plan_reader *reader, unsigned long *length) {
    uint32_t count = corral_plan_read_u32(reader);
    if (length) *length = 0;
    if (reader->failed || count == CORRAL_PLAN_NULL) return NULL;
    const char *text = corral_plan_take(reader, (size_t)count + 1);
    if (text == NULL || text[count] != 0) { reader->failed = 1; return NULL; }
    if (length) *length = count;
    return text;
}

static void *corral_plan_alloc(size_t count, size_t size, int error_fd) {
    void *memory = calloc(count ? count : 1, size);
    if (memory == NULL) corral_child_fail(error_fd, CORRAL_STAGE_INIT_PLAN, ENOMEM, 3);
    return memory;
}

/// Fills *request from the plan at CORRAL_INIT_PLAN_FD (closed afterwards), with the
/// descriptors at the numbers corral_init_layout gave them.
static void corral_init_plan_read(corral_spawn_request *request, corral_isolation *isolation, int error_fd) {
    struct stat info;
    if (fstat(CORRAL_INIT_PLAN_FD, &info) != 0) corral_child_fail(error_fd, CORRAL_STAGE_INIT_PLAN, errno, 1);
    if (info.st_size <= 0 || (uint64_t)info.st_size > CORRAL_PLAN_MAX) corral_child_fail(error_fd, CORRAL_STAGE_INIT_PLAN, EINVAL, 2);
    const char *bytes = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_PRIVATE, CORRAL_INIT_PLAN_FD, 0);
    if (bytes == MAP_FAILED) corral_child_fail(error_fd, CORRAL_STAGE_INIT_PLAN, errno, 4);
    if (close(CORRAL_INIT_PLAN_FD) != 0) corral_child_fail(error_fd, CORRAL_STAGE_INIT_PLAN, errno, 5);
    corral_plan_reader reader = { bytes, 0, (size_t)info.st_size, 0 };
    if (corral_plan_read_u32(&reader) != CORRAL_PLAN_MAGIC) corral_child_fail(error_fd, CORRAL_STAGE_INIT_PLAN, EINVAL, 2);
    uint32_t header[10];
    for (int index = 0; index < 10; index++) header[index] = corral_plan_read_u32(&reader);
    uint32_t rlimit_count = header[3], fd_count = header[4], mount_count = header[5], argc = header[7], envc = header[8];
    if (reader.failed || fd_count > CORRAL_MAX_FDS || mount_count > 4096 || rlimit_count > 64 || argc == 0 || argc > (1u << 20) || envc > (1u << 20)) {
        corral_child_fail(error_fd, CORRAL_STAGE_INIT_PLAN, EINVAL, 2);
    }
    // SIGKILL and SIGSTOP cannot be ignored: a plan that says so was not written by Corral.
    uint64_t ignored_signals = corral_plan_read_u64(&reader);
    if (ignored_signals & ((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)))) corral_child_fail(error_fd, CORRAL_STAGE_INIT_PLAN, EINVAL, 2);
    uint32_t cpu_words = corral_plan_read_u32(&reader);
    if (reader.failed || cpu_words > CORRAL_MAX_CPU_MASK_WORDS) corral_child_fail(error_fd, CORRAL_STAGE_INIT_PLAN, EINVAL, 2);
    memset(isolation, 0, sizeof(*isolation));
    memset(request, 0, sizeof(*request));
    request->ignored_signals = ignored_signals;
    uint64_t *cpu_mask = cpu_words ? corral_plan_alloc(cpu_words, sizeof(uint64_t), error_fd) : NULL;
    for (uint32_t index = 0; index < cpu_words; index++) cpu_mask[index] = corral_plan_read_u64(&reader);
    request->cpu_mask = cpu_mask;
    request->cpu_mask_words = (int)cpu_words;
    isolation->new_network = (int)header[0];
    isolation->uid = header[1];
    isolation->gid = header[2];
    isolation->status_fd = CORRAL_INIT_STATUS_FD;
    isolation->init_fd = -1;
    request->path = corral_plan_read_bytes(&reader, NULL);
    request->directory = corral_plan_read_bytes(&reader, NULL);
    isolation->hostname = corral_plan_read_bytes(&reader, NULL);
    isolation->root = corral_plan_read_bytes(&reader, NULL);
    corral_rlimit *rlimits = corral_plan_alloc(rlimit_count, sizeof(*rlimits), error_fd);
    for (uint32_t index = 0; index < rlimit_count; index++) {
        rlimits[index].resource = (int)corral_plan_read_u32(&reader);
        rlimits[index].soft = corral_plan_read_u64(&reader);
        rlimits[index].hard = corral_plan_read_u64(&reader);
    }
    corral_fd_mapping *fds = corral_plan_alloc(fd_count, sizeof(*fds), error_fd);
    for (uint32_t index = 0; index < fd_count; index++) {
        fds[index].target = (int)corral_plan_read_u32(&reader);
        fds[index].source = CORRAL_INIT_FIRST_SOURCE_FD + (int)index;
    }
    corral_mount *mounts = corral_plan_alloc(mount_count, sizeof(*mounts), error_fd);
    int next_mount_fd = CORRAL_INIT_FIRST_SOURCE_FD + (int)fd_count;
    for (uint32_t index = 0; index < mount_count; index++) {
        corral_mount *entry = &mounts[index];
        entry->kind = (int)corral_plan_read_u32(&reader);
        entry->writable = (int)corral_plan_read_u32(&reader);
        entry->source_fd = corral_plan_read_u32(&reader) ? next_mount_fd++ : -1;
        entry->source = corral_plan_read_bytes(&reader, &entry->length);
        entry->target = corral_plan_read_bytes(&reader, NULL);
        entry->data = corral_plan_read_bytes(&reader, NULL);
        if (entry->kind != CORRAL_MOUNT_FILE) entry->length = 0;
        if (entry->target == NULL) reader.failed = 1;
    }
    // The mount template comes right after the mounts' sources (corral_init_layout).
    isolation->mount_template_fd = header[9] ? next_mount_fd : -1;
    isolation->seccomp_length = (unsigned short)header[6];
    isolation->seccomp_filter = header[6] ? corral_plan_take(&reader, (size_t)header[6] * 8) : NULL;
    char **argv = corral_plan_alloc(argc + 1, sizeof(char *), error_fd);
    for (uint32_t index = 0; index < argc; index++) argv[index] = (char *)corral_plan_read_bytes(&reader, NULL);
    char **envp = corral_plan_alloc(envc + 1, sizeof(char *), error_fd);
    for (uint32_t index = 0; index < envc; index++) envp[index] = (char *)corral_plan_read_bytes(&reader, NULL);
    if (reader.failed || reader.used != reader.size || request->path == NULL || isolation->hostname == NULL) {
        corral_child_fail(error_fd, CORRAL_STAGE_INIT_PLAN, EINVAL, 2);
    }
    isolation->mounts = mounts;
    isolation->mount_count = (int)mount_count;
    request->argv = argv;
    request->envp = envp;
    request->directory_fd = -1;
    request->fds = fds;
    request->fd_count = (int)fd_count;
    request->rlimits = rlimits;
    request->rlimit_count = (int)rlimit_count;
    request->isolation = isolation;
}

int corral_init_main(void) {
    // The parent-death signal set before the exec holds only while nothing cleared it: an
    // init that would outlive Corral unnoticed does not start.
    int death_signal = 0;
    if (prctl(PR_GET_PDEATHSIG, &death_signal, 0, 0, 0) != 0) corral_child_fail(CORRAL_INIT_ERROR_FD, CORRAL_STAGE_PDEATHSIG, errno, 0);
    if (death_signal != SIGKILL) corral_child_fail(CORRAL_INIT_ERROR_FD, CORRAL_STAGE_PDEATHSIG, EPERM, 1);
    static corral_spawn_request request;
    static corral_isolation isolation;
    corral_init_plan_read(&request, &isolation, CORRAL_INIT_ERROR_FD);
    corral_isolated_init_run(&request, CORRAL_INIT_ERROR_FD);
}
