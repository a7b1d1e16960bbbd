/* item_infer.c: `cbrnn bench --items infer`: the engine's per-frame work
 * with learning off (score, cortex step, cerebellum forward, record); see
 * item_online.c, which holds the shared loop. Peer: bench/peer_infer.py. */
#include "bench.h"

int bench_engine_item(const struct bench_args *a, const char *item, int learn);

int bench_item_infer(const struct bench_args *a)
{
    return bench_engine_item(a, "infer", 0);
}
