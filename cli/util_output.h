/* util_output.h: the one guard every cbrnn command puts its output files
 * through, and the atomic way they are written. The rule (docs/
 * RELIABILITY.md): nothing already saved is lost. So an output may not be
 * a file the same command reads (compared by device and inode, so ./a,
 * hard links and symbolic links are caught), nor the same file as another
 * output of the command, nor anything but a regular file (a symbolic
 * link, FIFO, device or folder would be replaced by the final rename), nor
 * an existing cbrnn model or audio file unless the output is of that
 * kind. Outputs are written under PATH.tmp.PID, flushed to disk (fsync)
 * and renamed over PATH only when complete; a failure or Ctrl-C removes
 * the temporary and leaves the earlier PATH as it was. */
#ifndef CBRNN_UTIL_OUTPUT_H
#define CBRNN_UTIL_OUTPUT_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "corpus.h"

/* What an output holds: which existing files it may replace. */
enum cli_out_kind {
    CLI_OUT_DATA,  /* .npy, .csv: replaces neither a model nor audio */
    CLI_OUT_MODEL, /* a cbrnn model: may replace a model, not audio */
    CLI_OUT_AUDIO, /* a WAV of results: may replace audio, not a model */
};

/* The files one command reads and writes (cli_files_free gives it back). */
typedef struct cli_files {
    struct cli_file {
        dev_t dev;
        ino_t ino;
        int exists;
        char *path;  /* as given */
        char *canon; /* outputs: the real folder + the name */
    } *in, *out;
    int n_in, n_out;
} cli_files;

/* Records a file the command reads (one that does not exist is left out:
 * the reader reports it). 0, or -1 out of memory. */
int cli_files_input(cli_files *f, const char *path);
/* Every file of c (an expanded corpus). 0 or -1 (out of memory). */
int cli_files_inputs(cli_files *f, const corpus *c);
/* Every file a training or evaluation corpus reads: the files of the n
 * specs (files, folders, @lists), of the --pairs list (and the list),
 * each input's teacher (suffix) and label file (labels_dir); NULL or 0 for
 * what is not given. A spec that cannot be expanded is left out (the
 * command reports it when it reads it). 0 or -1 (out of memory). */
int cli_files_corpus(cli_files *f, const char *const *specs, int n, const char *pairs,
                     const char *suffix, const char *labels_dir);
/* May the command write path (named by option opt, e.g. "-o")? 0 and the
 * output recorded; or -1 with msg "OPT PATH: why" (bad input: exit 2). */
int cli_files_output(cli_files *f, const char *opt, const char *path, enum cli_out_kind kind,
                     char *msg, size_t msglen);
void cli_files_free(cli_files *f);

/* ---- Temporaries: PATH.tmp.PID, removed on failure and on a signal ---- */

/* tmp = path + ".tmp." + pid; 0, or -1 if it does not fit. Removes the
 * temporaries of path that processes now gone (killed) left. */
int cli_tmp_name(char *tmp, size_t n, const char *path);
/* Remembers tmp so that SIGINT/SIGTERM (once cli_catch_signals ran)
 * removes it; at most 16 at a time. 0 or -1 (table full). */
int cli_tmp_add(const char *tmp);
/* Removes tmp from the disk and from the table. */
void cli_tmp_drop(const char *tmp);
/* Forgets tmp (it has been renamed into place). */
void cli_tmp_forget(const char *tmp);
/* Installs the SIGINT/SIGTERM handler. stop == NULL: the temporaries are
 * removed and the process dies of the signal. Otherwise the first signal
 * only sets *stop (the command stops cleanly and removes them itself);
 * a second one removes them and kills. */
void cli_catch_signals(volatile sig_atomic_t *stop);

/* Flushes path's data to disk (fsync). 0 or -1 with msg. */
int cli_sync_file(const char *path, char *msg, size_t msglen);
/* Renames tmp over path when path is absent or a regular file (checked
 * again right before), then syncs the folder. 0 or -1 with msg. */
int cli_replace(const char *tmp, const char *path, char *msg, size_t msglen);

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

#endif
