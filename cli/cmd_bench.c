/* cmd_bench.c: `cbrnn bench`: the benchmark items of bench/ (see bench.h). */
#include "bench.h"

const char cmd_bench_summary[] = "time cbrnn's work (features, training, online learning, paper epoch)";

int cmd_bench(int argc, char **argv)
{
    return bench_main(argc, argv);
}
