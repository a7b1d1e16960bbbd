/* util_output.h: the one guard every cbrnn command puts its output files
 * through (host_files.h, here with the commands' corpora), and the atomic
 * way they are written. The rule (docs/
 * RELIABILITY.md): nothing already saved is lost. So an output may not be
 * a file the same command reads (compared by device and inode, so ./a,
 * hard links and symbolic links are caught), nor the same file as another
 * output of the command, nor anything but a regular file (a symbolic
 * link, FIFO, device or folder would be replaced by the final rename), nor
 * an existing cbrnn model or audio file unless the output is of that
 * kind. Outputs are written under PATH.tmp.HOST.PID, flushed to disk (fsync)
 * and renamed over PATH only when complete; a failure or a signal removes
 * the temporary and leaves the earlier PATH as it was. */
#ifndef CBRNN_UTIL_OUTPUT_H
#define CBRNN_UTIL_OUTPUT_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "corpus.h"
#include "host_files.h"

/* The guard itself (host_files.h, shared with cbrnn-jack) and the corpora
 * of cbrnn train and eval. */

/* Every file of c (an expanded corpus). 0 or -1 (out of memory). */
int cli_files_inputs(host_files *f, const corpus *c);
/* Every file a training or evaluation corpus reads: the files of the n
 * specs (files, folders, @lists), of the --pairs list (and the list),
 * each input's teacher (suffix) and label file (labels_dir); NULL or 0 for
 * what is not given. A spec that cannot be expanded is left out (the
 * command reports it when it reads it). 0 or -1 (out of memory). */
int cli_files_corpus(host_files *f, const char *const *specs, int n, const char *pairs,
                     const char *suffix, const char *labels_dir);

/* ---- Temporaries: PATH.tmp.HOST.PID, removed on failure and on a signal ---- */

/* tmp = path + ".tmp." + host + "." + pid, the host as model temporaries
 * carry it (cbrnn_file_tmp_host), so that processes on two machines writing
 * the same output in a shared folder never share a temporary. 0, or -1 if
 * it does not fit. Removes the temporaries of path that processes of this
 * host now gone (killed) left; other hosts' are never touched. */
int cli_tmp_name(char *tmp, size_t n, const char *path);
/* Remembers tmp so that SIGINT/SIGTERM/SIGHUP (once cli_catch_signals ran)
 * removes it; at most 16 at a time. 0 or -1 (table full). */
int cli_tmp_add(const char *tmp);
/* Removes tmp from the disk and from the table. */
void cli_tmp_drop(const char *tmp);
/* Forgets tmp (it has been renamed into place). */
void cli_tmp_forget(const char *tmp);
/* Installs the handler of SIGINT, SIGTERM and SIGHUP (a closed terminal
 * or ssh session). stop == NULL: the temporaries are
 * removed and the process dies of the signal. Otherwise the first signal
 * only sets *stop (the command stops cleanly and removes them itself);
 * a second one removes them and kills. */
void cli_catch_signals(volatile sig_atomic_t *stop);

/* Flushes path's data to disk (fsync). 0 or -1 with msg. */
int cli_sync_file(const char *path, char *msg, size_t msglen);
/* Renames tmp over path when path is absent or a regular file (checked
 * again right before), then syncs the folder. 0 or -1 with msg. */
int cli_replace(const char *tmp, const char *path, char *msg, size_t msglen);

/* Moves from to to, a new name (an existing to is never replaced), on
 * another file system too (copied, synced, from removed), so a file can
 * follow a rescue copy. fd: a descriptor open on from for reading, or -1;
 * the copy reads it (from its start), so a file whose folder was removed
 * is still saved. 0 or -1 with msg (from left as it was). */
int cli_move_new(const char *from, int fd, const char *to, char *msg, size_t msglen);

/* A text or binary output written through a temporary. */
typedef struct cli_outfile {
    FILE *f;
    char *path, tmp[4096];
} cli_outfile;

/* Creates path's temporary (refusing an existing path that is not a
 * regular file). NULL with msg "PATH: why". */
cli_outfile *cli_out_open(const char *path, char *msg, size_t msglen);
/* Flushes, checks every write, syncs and closes; the temporary stays
 * (cli_out_commit renames it). 0 or -1 with msg (the temporary removed). */
int cli_out_finish(cli_outfile *o, char *msg, size_t msglen);
/* cli_out_finish, then the rename over path; frees o. 0 or -1 with msg. */
int cli_out_commit(cli_outfile *o, char *msg, size_t msglen);
/* Gives up: the temporary removed, path untouched; frees o. */
void cli_out_abort(cli_outfile *o);

/* The end of every command (main): stdout flushed; a failed write to it
 * is reported ("cbrnn CMD: writing output: why") and turns status 0 into
 * 1. The exit status. */
int cli_finish_stdout(const char *cmd, int status);

/* s as one quoted CSV field (RFC 4180: quotes doubled; commas and line
 * ends kept inside the quotes). */
void cli_csv_field(FILE *f, const char *s);

#endif
