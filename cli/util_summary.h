/* util_summary.h: per-group statistics of a per-frame log (frames.csv of
 * `cbrnn run`, `cbrnn-jack --log`), for `cbrnn summary`. Reads the log,
 * its marker names and (cbrnn run) its files table; never prints. */
#ifndef CBRNN_UTIL_SUMMARY_H
#define CBRNN_UTIL_SUMMARY_H

#include <stddef.h>

enum summary_by { BY_ALL, BY_PHASE, BY_MARKER, BY_TRIAL, BY_FILE };

/* One group of frames: a phase, a marker's stretch, a trial, a file. */
typedef struct summary_group {
    char *name;                          /* malloc'ed, whole */
    long frames, learned, gated, scored; /* scored: frames with a loss, not gated */
    double loss, pers;                   /* sums over scored frames */
    long pers_n;
    double first_half, second_half;      /* mean loss of the scored frames' halves */
    double t0, t1;                       /* time of its first and last frame, s */
} summary_group;

/* The learning curve: mean loss and surprise per bin of `bin` seconds. */
typedef struct summary_bin {
    double t0, loss, surprise;
    long n, n_surprise;
} summary_bin;

typedef struct summary {
    summary_group *g;
    int n_groups;
    summary_bin *bins;
    int n_bins;
    char note[1024];   /* "" or something the reader should be told */
} summary;

/* Reads log (and log.markers or markers.csv beside it, files.csv beside
 * it for BY_FILE) and fills s. Every number is checked (finite, in
 * range, nothing after it). 0, or -1 with msg naming the file, the line,
 * the field and the problem. BY_PHASE, BY_TRIAL and BY_MARKER refuse a
 * log with markers but no names file. */
int summary_compute(summary *s, const char *log, enum summary_by by, double bin, char *msg,
                    size_t msglen);
void summary_free(summary *s);

#endif
