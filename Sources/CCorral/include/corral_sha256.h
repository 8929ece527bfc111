#ifndef CORRAL_SHA256_H
#define CORRAL_SHA256_H
#include <stddef.h>
#include <stdint.h>

/* SHA-256 (FIPS 180-4), streaming: the file store's content ids. Small and dependency-free
   so that the library links no crypto package for one hash. */
typedef struct {
    uint32_t state[8];
    uint64_t length; /* bytes hashed so far */
    uint8_t block[64];
    size_t used;     /* bytes in block */
} corral_sha256;

void corral_sha256_init(corral_sha256 *context);
void corral_sha256_update(corral_sha256 *context, const void *data, size_t count);
/* Writes the 32-byte digest. */
void corral_sha256_final(corral_sha256 *context, uint8_t digest[32]);
#endif
