/* sha256.h — SHA-256 (FIPS 180-4) for the trace store: the hash of a run's
 * spec text and of its weight files, so a replay can tell a moved or changed
 * weight file from the one the run used.
 *
 * Guarantees: digests equal those of `sha256sum` (tested against the FIPS
 * 180-2 example vectors); hex output is 64 lower-case digits plus NUL.
 * Self-contained because Debian's libsqlite3 does not ship the sha3/sha256
 * SQL functions (they live in the shell's extensions), and hashing a few
 * files per run does not justify another dependency. */
#ifndef NESIM_TRACES_SHA256_H
#define NESIM_TRACES_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct nesim_sha256 {
    uint32_t h[8];
    uint64_t len;          /* bytes hashed so far */
    unsigned char buf[64]; /* pending partial block */
    size_t nbuf;
} nesim_sha256;

void nesim_sha256_init(nesim_sha256 *s);
void nesim_sha256_update(nesim_sha256 *s, const void *data, size_t n);
/* Finishes and writes the digest as 64 hex digits + NUL into hex[65]. */
void nesim_sha256_hex(nesim_sha256 *s, char hex[65]);

/* One-shot digest of a buffer. */
void nesim_sha256_buf(const void *data, size_t n, char hex[65]);

/* Digest of a file's bytes; NESIM_EINVAL naming the file if it cannot be read. */
int nesim_sha256_file(const char *path, char hex[65], nesim_error *err);

#endif
