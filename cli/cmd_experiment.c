/* cmd_experiment.c: `cbrnn experiment`: reproduces the paper's comparison
 * (Voce, Giannakakis & Clopath 2026; protocol of issue 5) on its sequence
 * tasks: the options, then the experiments module (experiment/,
 * cbrnn_experiment.h) runs every (variant, seed) as a unit in a pool of
 * forked workers and writes per-run curves, a summary (JSON and Markdown)
 * and a figure. `--task speech` runs the comparison on audio
 * (util_experiment_speech.c). Driving (messages, progress, signals) is
 * util_experiment.c.
 *
 * Must never: write outside --out-dir. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "util_experiment.h"

const char cmd_experiment_summary[] =
    "reproduce the paper: CB-RNN vs RNN on N-DMS, N-parity, ... or speech";

#define PROG "cbrnn experiment"
#define MAX_SEEDS 1000

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cbrnn experiment --task dms|parity|multitask|switch --out-dir D\n"
        "                        [--variants cbrnn,rnn,frozen,interleaved] [--seeds S]\n"
        "                        [--epochs E] [--max-n CAP] [--jobs J] [--checkpoint-every K]\n"
        "       cbrnn experiment --task speech --out-dir D [speech options]\n"
        "\n"
        "Trains every (variant, seed) with the paper's protocol (Voce, Giannakakis &\n"
        "Clopath 2026): batch 64; an epoch is 100 SGD steps (Nesterov momentum 0.1,\n"
        "lr 0.01, gradient norm clipped at 7.5) then 50 test batches; the level N\n"
        "starts at 2 and rises by one after an epoch with test accuracy >= 98%%.\n"
        "Variants: cbrnn (64 units + cerebellum 256,64; 41,922 parameters),\n"
        "rnn (202 units; 41,816), frozen (core trained at N = 2 with the cerebellum\n"
        "frozen until 98%%, then the core frozen for good), interleaved (as frozen,\n"
        "the core trains again at N = 12, 22, ...).\n"
        "\n"
        "  --task T            dms, parity, multitask (both on one sequence, a head\n"
        "                      each; N rises when both heads reach 98%%), switch\n"
        "                      (DMS at N = 2..11, parity at 12..21, ...; parity\n"
        "                      trials carry a 3-step pulse on a second input), speech\n"
        "  --variants LIST     comma-separated (default cbrnn,rnn,frozen,interleaved)\n"
        "  --seeds S           seeds 0..S-1 per variant (default 4)\n"
        "  --epochs E          epochs per run (default 1000, as the authors)\n"
        "  --max-n CAP         highest level (default: none)\n"
        "  --jobs J            runs in parallel (default: online CPUs)\n"
        "  --checkpoint-every K  epochs between checkpoints (default 10)\n"
        "  --train-steps S     training steps per epoch (default 100, the protocol's)\n"
        "  --test-batches T    test batches per epoch (default 50, the protocol's);\n"
        "                      other values are for quick checks, not the paper\n"
        "  --no-figure         skip figure.png\n"
        "  --out-dir D         results: D/curves/<variant>-seed<k>.csv\n"
        "                      (epoch,N,train_loss,test_accuracy,phase), D/summary.json,\n"
        "                      D/summary.md, D/figure.png; D/checkpoints/ to resume\n"
        "\n"
        "Rerunning with the same D resumes: finished runs are skipped, unfinished\n"
        "ones continue from their last checkpoint with identical results.\n"
        "The phase column: 0 all trained (frozen/interleaved: warm-up, cerebellum\n"
        "frozen), 1 core frozen, 2 interleaved level (core and cerebellum train).\n"
        "Speech: cbrnn experiment --task speech --help.\n"
        "\n" EXPERIMENT_MODES_HELP);
}

/* ---- Options ---- */

static int parse_variants(cbrnn_exp_paper_config *o, const char *s)
{
    const char *names[CBRNN_NVARIANTS];
    for (int v = 0; v < CBRNN_NVARIANTS; v++)
        names[v] = cbrnn_variant_name(v);
    return experiment_parse_names(PROG, "--variants", s, names, CBRNN_NVARIANTS, o->variants,
                                  &o->n_variants);
}

/* One option of the paper tasks' own. 1 taken, 0 not one of them, -1 bad
 * (after a message). */
static int paper_option(cbrnn_exp_paper_config *o, int c, const char *arg)
{
    switch (c) {
    case 't':
        o->task = cbrnn_task_parse(arg);
        if (o->task < 0) {
            fprintf(stderr, PROG ": --task: unknown task '%s' "
                            "(dms, parity, multitask, switch, speech)\n", arg);
            return -1;
        }
        return 1;
    case 'v': return parse_variants(o, arg) ? -1 : 1;
    case 's': return experiment_parse_iopt(PROG, "--seeds", arg, 1, MAX_SEEDS, &o->seeds) ? -1 : 1;
    case 'e': return experiment_parse_iopt(PROG, "--epochs", arg, 1, 1000000, &o->epochs) ? -1 : 1;
    case 'n': return experiment_parse_iopt(PROG, "--max-n", arg, 2, 100000, &o->max_n) ? -1 : 1;
    case 'k':
        return experiment_parse_iopt(PROG, "--checkpoint-every", arg, 1, 1000000,
                                     &o->checkpoint_every) ? -1 : 1;
    case 'S':
        return experiment_parse_iopt(PROG, "--train-steps", arg, 1, 100000, &o->train_steps) ? -1 : 1;
    case 'T':
        return experiment_parse_iopt(PROG, "--test-batches", arg, 1, 100000, &o->test_batches)
                   ? -1 : 1;
    default: return 0;
    }
}

/* Options into o and how. 0, 2 (bad usage, after a message) or -1 (--help). */
static int parse_options(cbrnn_exp_paper_config *o, experiment_run *how, int argc, char **argv)
{
    static const struct option lo[] = {
        EXPERIMENT_COMMON_OPTIONS,
        {"epochs", required_argument, 0, 'e'},      {"max-n", required_argument, 0, 'n'},
        {"checkpoint-every", required_argument, 0, 'k'},
        {"train-steps", required_argument, 0, 'S'}, {"test-batches", required_argument, 0, 'T'},
        {0, 0, 0, 0}};
    optind = 1;
    for (;;) {
        int first = optind, c = getopt_long(argc, argv, "h", lo, NULL);
        if (c == -1)
            break;
        int m = experiment_common_option(how, c, optarg, first, &o->out_dir, usage);
        int rc = experiment_option_result(m ? m : paper_option(o, c, optarg), usage);
        if (rc)
            return rc;
    }
    if (experiment_no_operands(PROG, argc, argv))
        return 2;
    if (o->task < 0 || !o->out_dir) {
        fprintf(stderr, PROG ": --task and --out-dir are required (see --help)\n");
        return 2;
    }
    return experiment_modes_check(how) ? 2 : 0;
}

int cmd_experiment(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--task") && !strcmp(argv[i + 1], "speech"))
            return experiment_speech(argc, argv);
    cbrnn_exp_paper_config o;
    cbrnn_exp_paper_config_default(&o, -1);
    experiment_run how;
    if (experiment_run_init(&how, PROG, argc, argv))
        return 1;
    int rc = parse_options(&o, &how, argc, argv);
    if (rc) {
        experiment_run_free(&how);
        return rc < 0 ? 0 : rc;
    }
    char msg[1024];
    int err = 0;
    cbrnn_exp *e = cbrnn_exp_paper_create(&o, &err, msg, sizeof msg);
    if (!e) {
        fprintf(stderr, PROG ": %s\n", msg);
        rc = err == CBRNN_ERR_ARG ? 2 : 1;
    } else {
        rc = experiment_drive(e, &how);
    }
    experiment_run_free(&how);
    return rc;
}
