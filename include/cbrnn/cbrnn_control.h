/* cbrnn_control.h: rules for control surfaces (OSC today; any host that
 * takes commands from outside the process). Shared by every host so that
 * each applies the same policy; pure checks on paths and files, no
 * printing, no exiting, never on an audio thread. */
#ifndef CBRNN_CONTROL_H
#define CBRNN_CONTROL_H

#include <stddef.h>
#include "cbrnn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* May a save requested by a control message write `path`? Allowed when
 * the folder holding `path` (symlinks resolved) is `dir` or inside it, and
 * `path` does not exist or is a regular file (not a symlink) that loads as
 * a cbrnn model. A relative `path` is taken relative to `dir`. On success
 * writes the path to save to into out (outlen bytes) and returns 0; else
 * returns CBRNN_ERR_ARG (outside the folder, no such folder, bad name) or
 * CBRNN_ERR_FORMAT (an existing file that is not a cbrnn model) and puts
 * the reason, naming the path, in msg. Control thread; may read the file
 * at `path` (a model load). The answer can go stale if the file system
 * changes afterwards: check again right before writing. */
CBRNN_API int cbrnn_control_check_save(char *out, size_t outlen, const char *dir,
                                       const char *path, char *msg, size_t msglen);

/* May the process overwrite `path` with a model (a path from the command
 * line, checked at start)? 0 when its folder exists and is writable and
 * `path` is absent or a cbrnn model; else a negative code and the reason
 * in msg. */
CBRNN_API int cbrnn_control_check_output(const char *path, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif
#endif
