/* util_npy.h: writing float32 .npy files (NumPy format 1.0, little-endian
 * '<f4', C order) that numpy.load reads, whole or streamed in bounded
 * memory (the header's shape is patched when the writer closes). */
#ifndef CBRNN_UTIL_NPY_H
#define CBRNN_UTIL_NPY_H

#include <stddef.h>

typedef struct npy_writer npy_writer;

/* Starts path with `cols` columns; rows grow with npy_append. NULL with msg
 * ("PATH: why") when the file cannot be created. */
npy_writer *npy_open(const char *path, int cols, char *msg, size_t msglen);
int npy_append(npy_writer *w, const float *rows, long n_rows); /* 0 or -1 */
/* Patches the shape, flushes and closes; 0 or -1 (msg). Frees w. */
int npy_close(npy_writer *w, char *msg, size_t msglen);
/* Gives up: closes and removes the partial file (nothing is left under
 * the target name, which is only created by a successful npy_close). */
void npy_abort(npy_writer *w);
/* The temporary name rows go to until npy_close renames it (for a host's
 * signal handler to unlink). */
const char *npy_tmp_path(const npy_writer *w);
/* Whole array at once: shape (rows, cols). 0 or -1 (msg). */
int npy_write(const char *path, const float *data, long rows, int cols, char *msg, size_t msglen);

#endif
