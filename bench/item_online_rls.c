/* item_online_rls.c: `cbrnn bench --items online-rls`: the engine's whole
 * per-frame work (item_online.c) with the RLS online rule instead of SGD:
 * the cortex step, the cerebellum forward and the RLS step on its last
 * layer (engine/engine_rls.c: n^2 in double, n = H + 1). Compare with
 * `online` (SGD) in the same run; there is no PyTorch peer (the seed has
 * no RLS). */
#include "bench.h"

int bench_engine_item(const struct bench_args *a, const char *item, int learn);

int bench_item_online_rls(const struct bench_args *a)
{
    return bench_engine_item(a, "online-rls", 2);
}
