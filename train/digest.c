/* digest.c: the content digest of a set of recordings (digest.h), which
 * lets a model file name exactly the recordings that trained it and those
 * held out, whatever their paths: anyone holding a corpus can check a
 * model's claim with sha256sum (docs/FORMATS.md, train_set_sha256). The
 * SHA-256 itself is host/host_sha256.c, shared with the events file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"

static int by_string(const void *a, const void *b)
{
    return strcmp(a, b);
}

int sha256_file_set(const char *const *paths, int n, char hex[SHA256_HEX], char *msg,
                    size_t msglen)
{
    char(*lines)[SHA256_HEX] = malloc((size_t)(n > 0 ? n : 1) * sizeof *lines);
    if (!lines) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (sha256_file(paths[i], lines[i], msg, msglen)) {
            free(lines);
            return -1;
        }
    qsort(lines, (size_t)n, sizeof *lines, by_string);
    sha256_ctx c;
    sha256_init(&c);
    for (int i = 0; i < n; i++) {
        sha256_update(&c, lines[i], SHA256_HEX - 1);
        sha256_update(&c, "\n", 1);
    }
    free(lines);
    sha256_final_hex(&c, hex);
    return 0;
}
