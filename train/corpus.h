/* corpus.h: finding the inputs of `cbrnn train` / `cbrnn eval`:
 * files, folders (searched recursively for audio), @list.txt files; the
 * teacher of each input (map target); Audacity label files (classify).
 * Errors come back as a message naming the file (and line) and the problem;
 * the caller prints it. */
#ifndef CBRNN_TRAIN_CORPUS_H
#define CBRNN_TRAIN_CORPUS_H

#include <stddef.h>

/* Told of an entry left out (left_out 1) or of a folder named that
 * brought nothing (0); line: "PATH: why", PATH shown as host_shown_text
 * shows it. */
typedef void (*corpus_warn_fn)(void *user, const char *line, int left_out);

typedef struct corpus {
    int n;
    char **paths; /* malloc'ed strings */
    /* Set by the caller before corpus_add (all zero: no warnings, and an
     * entry that cannot be read is an error, as nobody would hear of it): */
    corpus_warn_fn warn; /* told of each entry left out (and counts it) */
    void *warn_user;
    int strict;          /* an entry that cannot be read is an error (--strict) */
    int n_left_out;      /* entries left out so far (counted here) */
} corpus;

/* Adds one input spec to c:
 *   FILE          taken as given (libsndfile decides later whether it reads it);
 *   FOLDER        every audio file below it (by extension, see
 *                 corpus_is_audio_name), hidden entries and symbolic links to
 *                 folders skipped, each folder's entries in byte order. An
 *                 entry that cannot be read (a folder below that cannot be
 *                 opened or searched, an entry whose lstat fails, an
 *                 audio-named symbolic link to nothing, an audio-named entry
 *                 that is no regular file) is left out with a warning
 *                 (c->warn), or is an error with c->strict or without
 *                 c->warn; a FOLDER that brings no audio file is warned of;
 *   @LIST         one FILE or FOLDER per line, relative to the list's folder;
 *                 blank lines and comments (first non-blank '#') skipped,
 *                 the blanks around a name, the line end and a UTF-8 byte
 *                 order mark on line 1 not part of it.
 * 0, or -1 with msg ("PATH: why"). */
int corpus_add(corpus *c, const char *spec, char *msg, size_t msglen);
/* The inputs the user gave (n specs: files, folders, @lists) for a
 * message about them all ("a", "a, b and c", "a, b, c and 4 more"), shown
 * as host_shown_text shows them, into out. */
void corpus_name_specs(char *out, size_t len, const char *const *specs, int n);
/* Appends path as it is (copied). 0 or -1 (out of memory). */
int corpus_push(corpus *c, const char *path);
void corpus_free(corpus *c);
/* 1 if the file name ends in an audio extension libsndfile reads. */
int corpus_is_audio_name(const char *name);
/* 1 if the stem of path (name without folder and extension) ends in suffix. */
int corpus_stem_has_suffix(const char *path, const char *suffix);

/* The length of the longest folder prefix ("dir/sub/", through its last
 * '/') that all n paths share, so that path + len names each one relative
 * to it; 0 when they share none. */
size_t corpus_common_dir_len(const char *const *paths, int n);

/* The teacher of "dir/a.wav" with suffix "_clean": "dir/a_clean.wav".
 * malloc'ed; NULL when out of memory. */
char *corpus_teacher_path(const char *input, const char *suffix);
/* Reads a pairs list: "input<TAB>teacher" per line, paths relative to the
 * list's folder; blank lines and comments skipped as in @LIST. Appends to inputs and
 * teachers (same count). 0 or -1 with msg ("LIST:LINE: why"). */
int corpus_read_pairs(const char *list, corpus *inputs, corpus *teachers, char *msg,
                      size_t msglen);

/* One Audacity label: an interval in seconds and its text. */
typedef struct label_seg {
    double start, end;
    char *name;
    int line;
} label_seg;

typedef struct label_file {
    char *path;
    int n;
    label_seg *seg;
} label_file;

/* The label file of an audio file: DIR/STEM.txt. malloc'ed or NULL. */
char *labels_path_for(const char *labels_dir, const char *audio_path);
/* Fails (-1 with msg naming both inputs and the label file) when two of
 * paths that are not one file would share a label file under labels_dir
 * (the same stem in two folders, x.wav beside x.flac). 0 when none do. */
int labels_check_distinct(const char *labels_dir, const char *const *paths, int n, char *msg,
                          size_t msglen);
/* Reads an Audacity label file: "start<TAB>end<TAB>label" per line
 * (seconds, '.' decimal point); lines starting with '\' (Audacity's
 * frequency-range lines) and blank lines are skipped. A bad line fails with
 * "PATH:LINE: why". 0 or -1 with msg. */
int labels_read(const char *path, label_file *lf, char *msg, size_t msglen);
void labels_free(label_file *lf);
/* Frame classes: frame t (samples [t*hop, t*hop + win) at rate) takes the
 * class of the last label whose interval [start, end) holds the frame's
 * centre, or -1. names: the class list (index = class). A label that is not
 * in names fails with "PATH:LINE: label 'x' is not one of the classes".
 * out: [n_frames]. 0 or -1 with msg. */
int labels_to_frames(int *out, const label_file *lf, const char *const *names, int n_names,
                     double rate, int hop, int win, int n_frames, char *msg, size_t msglen);
/* Adds lf's label texts not yet in *names (malloc'ed copies) to *names /
 * *n_names, at most max. 0 or -1 with msg (too many classes). */
int labels_collect(char ***names, int *n_names, int max, const label_file *lf, char *msg,
                   size_t msglen);

/* Label changes of one input in samples, for a host that feeds a stream
 * in blocks (`cbrnn run`: a label is in force from its start sample to its
 * end sample, as a held MIDI note live): at sample at[i] the label becomes
 * cls[i], the class of the last segment whose [start, end) holds
 * at[i] / rate (as labels_to_frames does for frame centres), or -1. */
typedef struct label_events {
    long n;
    long *at;
    int *cls;
} label_events;

/* Reads the label file path and makes its events; names: the model's
 * classes (NULL entries never match). 0, or -1 with msg ("PATH:LINE: why";
 * ev is left empty). */
int labels_to_events(label_events *ev, const char *path, const char *const *names, int n_names,
                     double rate, char *msg, size_t msglen);
/* Frees ev's arrays and empties it. */
void label_events_free(label_events *ev);

#endif
