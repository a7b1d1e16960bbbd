/* corpus.h: finding the inputs of `cbrnn train` / `cbrnn eval`:
 * files, folders (searched recursively for audio), @list.txt files; the
 * teacher of each input (map target); Audacity label files (classify).
 * Errors come back as a message naming the file (and line) and the problem;
 * the caller prints it. */
#ifndef CBRNN_TRAIN_CORPUS_H
#define CBRNN_TRAIN_CORPUS_H

#include <stddef.h>

typedef struct corpus {
    int n;
    char **paths; /* malloc'ed strings */
} corpus;

/* Adds one input spec to c:
 *   FILE          taken as given (libsndfile decides later whether it reads it);
 *   FOLDER        every audio file below it (by extension, see
 *                 corpus_is_audio_name), hidden entries and symbolic links to
 *                 folders skipped, each folder's entries in byte order;
 *   @LIST         one FILE or FOLDER per line, relative to the list's folder;
 *                 blank lines and comments (first non-blank '#') skipped,
 *                 the blanks around a name, the line end and a UTF-8 byte
 *                 order mark on line 1 not part of it.
 * 0, or -1 with msg ("PATH: why"). */
int corpus_add(corpus *c, const char *spec, char *msg, size_t msglen);
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
