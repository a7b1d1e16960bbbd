/* item_paper_epoch.c: `cbrnn bench --items paper-epoch`: one N-parity epoch
 * at N = 10 of the paper's protocol (issue 5: 100 training steps of batch
 * 64 with sequence lengths drawn from [12, 42), then 50 test batches), for
 * the CB-RNN (41,922 parameters) and the parameter-matched RNN (41,816),
 * exactly as `cbrnn experiment` runs it (experiment/tasks.c). Each round is one
 * epoch; the best of --repeats rounds is reported (--seconds does not
 * apply: an epoch is the unit the protocol times). The PyTorch peer is
 * bench/peer_paper_epoch.py. Single-threaded BLAS, as experiment workers.
 * Never changes the protocol to look faster. */
#include <cblas.h>
#include <stdio.h>

#include "bench.h"
#include "cbrnn/cbrnn_experiment.h"

#define PAPER_EPOCH_N 10 /* issue 5: the benchmark level */

int bench_item_paper_epoch(const struct bench_args *a)
{
    static const int variants[2] = {CBRNN_VARIANT_CBRNN, CBRNN_VARIANT_RNN};
    openblas_set_num_threads(1);
    for (int vi = 0; vi < 2; vi++) {
        cbrnn_paper_config c;
        cbrnn_paper_config_default(&c, CBRNN_TASK_PARITY, variants[vi]);
        int err = 0;
        cbrnn_paper_run *run = cbrnn_paper_run_create(&c, &err);
        if (!run) {
            fprintf(stderr, "bench paper-epoch: %s\n", cbrnn_strerror(err));
            return 1;
        }
        double best = 1e300;
        for (int r = 0; r < a->repeats; r++) {
            /* Every round at N = 10, whatever the curriculum decided. */
            err = cbrnn_paper_run_set_level(run, PAPER_EPOCH_N);
            double t0 = bench_now();
            if (!err)
                err = cbrnn_paper_run_epoch(run, NULL);
            double dt = bench_now() - t0;
            if (err) {
                fprintf(stderr, "bench paper-epoch: %s\n", cbrnn_strerror(err));
                cbrnn_paper_run_destroy(run);
                return 1;
            }
            if (dt < best)
                best = dt;
        }
        const char *model = cbrnn_variant_name(variants[vi]);
        if (a->json)
            fprintf(a->out,
                    "{\"item\":\"paper_epoch\",\"impl\":\"cbrnn\",\"model\":\"%s\",\"N\":%d,"
                    "\"params\":%zu,\"s_per_epoch\":%.4f}\n",
                    model, PAPER_EPOCH_N, cbrnn_paper_run_model(run)->n_params, best);
        else
            fprintf(a->out, "paper-epoch  %-6s N=%d  %8.4f s/epoch  (%zu params; best of %d)\n",
                    model, PAPER_EPOCH_N, best, cbrnn_paper_run_model(run)->n_params, a->repeats);
        fflush(a->out);
        cbrnn_paper_run_destroy(run);
    }
    return 0;
}
