/* host_sha256.h: SHA-256 (FIPS 180-4), incrementally over bytes and over
 * a whole file. An in-tree header of the host module (not installed),
 * shared with train/ (digest.h: the digest of a set of recordings). */
#ifndef CBRNN_HOST_SHA256_H
#define CBRNN_HOST_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_BYTES 32
#define SHA256_HEX 65 /* 64 lowercase hex digits and the terminating NUL */

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t len;          /* bytes so far */
    unsigned char buf[64]; /* a partial block */
    size_t n;              /* bytes in buf */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, unsigned char out[SHA256_BYTES]);
void sha256_hex(const unsigned char d[SHA256_BYTES], char hex[SHA256_HEX]);
/* sha256_final, as hex. */
void sha256_final_hex(sha256_ctx *c, char hex[SHA256_HEX]);

/* The SHA-256 of a file's bytes, as hex. 0, or -1 with msg ("PATH: why"). */
int sha256_file(const char *path, char hex[SHA256_HEX], char *msg, size_t msglen);

#endif
