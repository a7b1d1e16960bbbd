/* item_paper_cost.c: `cbrnn bench --items paper-cost`: what one epoch of
 * the paper's protocol (100 training steps of batch 64 and 50 test
 * batches; issue 5) costs at levels N = 2, 10, 20, 40, for every task and
 * for the three kinds of epoch the variants run: everything trained
 * (cbrnn; interleaved at N = 12, 22, ...), the core frozen (frozen and
 * interleaved after their warm-up) and the parameter-matched rnn. The cost
 * grows with N because sequence lengths are drawn from [N+2, 4N+2). These
 * are the numbers behind docs/CLUSTER.md's projection of the authors'
 * budget. Each cell reports the process's CPU seconds (what core-hours
 * count, and far less disturbed by other work on a shared machine than
 * wall-clock) and the wall-clock seconds of one epoch, the best of
 * --repeats; single-threaded BLAS, as experiment units. Never changes the
 * protocol. */
#include <cblas.h>
#include <stdio.h>
#include <time.h>

#include "bench.h"
#include "cbrnn/cbrnn_experiment.h"

static const int levels[] = {2, 10, 20, 40};
#define N_LEVELS ((int)(sizeof levels / sizeof levels[0]))

/* The kinds of epoch: a variant and the phase it is timed in. */
static const struct {
    const char *name;
    int variant, phase;
} kinds[] = {
    {"cbrnn", CBRNN_VARIANT_CBRNN, CBRNN_PHASE_ALL},
    {"core-frozen", CBRNN_VARIANT_FROZEN, CBRNN_PHASE_CORE_FROZEN},
    {"rnn", CBRNN_VARIANT_RNN, CBRNN_PHASE_ALL},
};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best CPU and wall seconds of `repeats` epochs at level N; -1 on error. */
static int time_epoch(cbrnn_paper_run *run, int N, int phase, int repeats, double *cpu,
                      double *wall)
{
    *cpu = *wall = 1e300;
    for (int r = 0; r < repeats; r++) {
        if (cbrnn_paper_run_set_level(run, N) || cbrnn_paper_run_set_phase(run, phase))
            return -1;
        double c0 = cpu_now(), t0 = bench_now();
        if (cbrnn_paper_run_epoch(run, NULL))
            return -1;
        double dc = cpu_now() - c0, dt = bench_now() - t0;
        *cpu = dc < *cpu ? dc : *cpu;
        *wall = dt < *wall ? dt : *wall;
    }
    return 0;
}

int bench_item_paper_cost(const struct bench_args *a)
{
    openblas_set_num_threads(1);
    for (int task = 0; task < CBRNN_NTASKS; task++)
        for (int k = 0; k < N_KINDS; k++) {
            cbrnn_paper_config c;
            cbrnn_paper_config_default(&c, task, kinds[k].variant);
            int err = 0;
            cbrnn_paper_run *run = cbrnn_paper_run_create(&c, &err);
            if (!run) {
                fprintf(stderr, "bench paper-cost: %s\n", cbrnn_strerror(err));
                return 1;
            }
            for (int l = 0; l < N_LEVELS; l++) {
                double cpu, wall;
                if (time_epoch(run, levels[l], kinds[k].phase, a->repeats, &cpu, &wall)) {
                    fprintf(stderr, "bench paper-cost: %s %s N=%d failed\n",
                            cbrnn_task_name(task), kinds[k].name, levels[l]);
                    cbrnn_paper_run_destroy(run);
                    return 1;
                }
                if (a->json)
                    fprintf(a->out,
                            "{\"item\":\"paper_cost\",\"impl\":\"cbrnn\",\"task\":\"%s\","
                            "\"kind\":\"%s\",\"N\":%d,\"cpu_s_per_epoch\":%.4f,"
                            "\"s_per_epoch\":%.4f}\n",
                            cbrnn_task_name(task), kinds[k].name, levels[l], cpu, wall);
                else
                    fprintf(a->out, "paper-cost  %-9s %-11s N=%-2d %8.4f CPU s/epoch (%.4f s)\n",
                            cbrnn_task_name(task), kinds[k].name, levels[l], cpu, wall);
                fflush(a->out);
            }
            cbrnn_paper_run_destroy(run);
        }
    return 0;
}
