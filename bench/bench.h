/* bench.h: shared pieces of the benchmark items run by `cbrnn bench`.
 * Items print one JSON object per line to stdout (with --json) or a
 * readable line otherwise. Timing is wall-clock (CLOCK_MONOTONIC); each
 * item repeats its work for at least args->seconds and reports the best
 * of args->repeats such rounds. Speed goals are ratios against the PyTorch
 * peer (bench/peer_torch.py) measured in the same run, never unit tests. */
#ifndef CBRNN_BENCH_H
#define CBRNN_BENCH_H

#include <stdio.h>

#define BENCH_MAX_SIZES 16

/* One model size: features F, cortex N, cerebellum hidden H, outputs O. */
struct bench_size {
    int F, N, H, O;
};

struct bench_args {
    int json;          /* 1: JSON lines */
    double seconds;    /* minimum time per measurement round */
    int repeats;       /* rounds; the best is reported */
    int n_sizes;
    struct bench_size sizes[BENCH_MAX_SIZES];
    int batch;         /* B for training items */
    int seq;           /* T for training items */
    double rate;       /* sample rate for front-end items (Hz) */
    FILE *out;
};

/* Seconds on a monotonic clock. */
double bench_now(void);
/* Parses "F,N,H,O;F,N,H,O..." into a; 0 on success, -1 on error. */
int bench_parse_sizes(struct bench_args *a, const char *s);
/* The `cbrnn bench` command line: parses options, runs the items. */
int bench_main(int argc, char **argv);

#define CBRNN_BENCH_ITEM(n) int bench_item_##n(const struct bench_args *a);
#include "bench_table.h"
#undef CBRNN_BENCH_ITEM

#endif
