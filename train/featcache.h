/* featcache.h: a corpus's feature frames kept on disk instead of in
 * memory (cbrnn train). Frames are appended file by file to a temporary
 * file in a chosen folder, then mapped: training reads its windows through
 * the mapping and the kernel pages them in and out, so a corpus larger than
 * memory trains in bounded resident memory. The file is unlinked the moment
 * it is created, so nothing is left behind whatever way the process ends.
 * Errors come back as a message naming the folder and the reason. */
#ifndef CBRNN_TRAIN_FEATCACHE_H
#define CBRNN_TRAIN_FEATCACHE_H
#include <stddef.h>

typedef struct feat_cache feat_cache;

/* Creates the (already unlinked) cache file in dir. NULL on failure (msg;
 * errno tells why: ENOENT, ENOTDIR, EACCES... or ENOMEM). */
feat_cache *feat_cache_open(const char *dir, char *msg, size_t msglen);
/* Appends n floats. 0, or -1 with msg (e.g. the disk is full). Not after
 * feat_cache_map. */
int feat_cache_append(feat_cache *c, const float *x, size_t n, char *msg, size_t msglen);
/* Floats appended so far: the offset the next append starts at. */
size_t feat_cache_size(const feat_cache *c);
/* Maps everything appended, readable and writable (changes go to the
 * file). The base stays valid until feat_cache_close. NULL on failure. */
float *feat_cache_map(feat_cache *c, char *msg, size_t msglen);
/* Gives back the resident pages of the mapping (whole pages inside
 * [off, off + n) floats; n = 0: all of it). The data stays in the file
 * and comes back on the next read. Memory use is bounded by how much is
 * touched between two calls. */
void feat_cache_release(feat_cache *c, size_t off, size_t n);
/* Unmaps and closes (the file disappears with it). NULL is fine. */
void feat_cache_close(feat_cache *c);

#endif
