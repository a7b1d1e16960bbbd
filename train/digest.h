/* digest.h: SHA-256 and the content digest of a set of recordings, the
 * one a model's provenance carries (train_set_sha256, val_set_sha256;
 * docs/FORMATS.md). In-tree header of the train module. */
#ifndef CBRNN_TRAIN_DIGEST_H
#define CBRNN_TRAIN_DIGEST_H

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

/* The SHA-256 of a file's bytes, as hex. 0, or -1 with msg ("PATH: why"). */
int sha256_file(const char *path, char hex[SHA256_HEX], char *msg, size_t msglen);

/* The digest of a set of files by content, whatever their names or order:
 * the SHA-256 of the lines "HEX\n", one per file (HEX its SHA-256), sorted;
 * in a shell, `sha256sum FILES | cut -c1-64 | sort | sha256sum`. A file
 * given twice counts twice. 0, or -1 with msg naming the file. */
int sha256_file_set(const char *const *paths, int n, char hex[SHA256_HEX], char *msg,
                    size_t msglen);

#endif
