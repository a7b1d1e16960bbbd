/* host_files.h: the guard every host puts its output files through (the
 * rule of docs/RELIABILITY.md: nothing already saved is lost). An output
 * may not be a file the same program reads (compared by device and inode,
 * so ./a, hard links and symbolic links are caught), nor the same file as
 * another of its outputs, nor anything but a regular file (a symbolic
 * link, FIFO, device or folder), nor an existing cbrnn model, other
 * safetensors file or audio file unless the output is of that kind. The
 * cbrnn commands (cli/util_output.h adds their corpora and temporaries)
 * and cbrnn-jack's --log, --record and --save use it. Never prints: the
 * caller words the message it returns. An in-tree header of the host
 * module (not installed; its names are not cbrnn_-prefixed API). */
#ifndef CBRNN_HOST_FILES_H
#define CBRNN_HOST_FILES_H

#include <stddef.h>
#include <sys/types.h>

/* What an output holds: which existing files it may replace. */
enum host_out_kind {
    HOST_OUT_DATA,  /* .npy, .csv, a log: replaces neither a model nor audio */
    HOST_OUT_MODEL, /* a cbrnn model: may replace a model, not audio */
    HOST_OUT_AUDIO, /* a WAV of results or a recording: may replace audio, not a model */
};

/* The files one program reads and writes (host_files_free gives it back). */
typedef struct host_files {
    struct host_file {
        dev_t dev;
        ino_t ino;
        int exists;
        char *path;  /* as given */
        char *canon; /* outputs: the real folder + the name */
    } *in, *out;
    int n_in, n_out;
} host_files;

/* Records a file the program reads (one that does not exist is left out:
 * the reader reports it). 0, or -1 out of memory. */
int host_files_input(host_files *f, const char *path);
/* May the program write path (named by option opt, e.g. "-o")? 0 and the
 * output recorded; or -1 with msg "OPT PATH: why" (bad input: exit 2). */
int host_files_output(host_files *f, const char *opt, const char *path, enum host_out_kind kind,
                      char *msg, size_t msglen);
void host_files_free(host_files *f);

struct stat;
/* Why an existing file (st: its lstat) may not be an output, or NULL: a
 * symbolic link, folder, FIFO or device would be replaced by the rename
 * that puts an output in place. */
const char *host_file_not_regular(const struct stat *st);

/* The first n bytes of s (fewer at its NUL) as text a terminal shows as
 * it is, for a message or listing that names something from outside (a
 * file name, a model's metadata): control bytes (an escape sequence in a
 * hostile name could retitle or clear the terminal, a line end could fake
 * a message) and the backslash as \xHH; everything else, UTF-8 too, as
 * is. Into out (len bytes, cut before an escape that does not fit);
 * returns out. 4 * n + 1 bytes always suffice. */
char *host_shown_text(char *out, size_t len, const char *s, size_t n);

#endif
