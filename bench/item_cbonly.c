/* item_cbonly.c: `cbrnn bench --items cbonly`: frames per second of
 * training only the cerebellum of the readout-wired model (the cortex
 * frozen, as after warm-up): forward, MSE, backward (no BPTT: nothing flows
 * into a frozen cortex), Adam. The loop and its rules are item_bptt.c's;
 * the PyTorch peer is bench/peer_cbonly.py. */
#include "bench.h"

/* Defined in item_bptt.c. */
int bench_training_item(const struct bench_args *a, const char *item, int freeze_cortex);

int bench_item_cbonly(const struct bench_args *a)
{
    return bench_training_item(a, "cbonly", 1);
}
