/* digest.h: the content digest of a set of recordings, the one a model's
 * provenance carries (train_set_sha256, val_set_sha256; docs/FORMATS.md).
 * SHA-256 itself comes from the host module (host_sha256.h). In-tree
 * header of the train module. */
#ifndef CBRNN_TRAIN_DIGEST_H
#define CBRNN_TRAIN_DIGEST_H

#include "host_sha256.h"

/* The digest of a set of files by content, whatever their names or order:
 * the SHA-256 of the lines "HEX\n", one per file (HEX its SHA-256), sorted;
 * in a shell, `sha256sum FILES | cut -c1-64 | sort | sha256sum`. A file
 * given twice counts twice. 0, or -1 with msg naming the file. */
int sha256_file_set(const char *const *paths, int n, char hex[SHA256_HEX], char *msg,
                    size_t msglen);

#endif
