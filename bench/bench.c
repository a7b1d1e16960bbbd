/* bench.c: option parsing and dispatch for `cbrnn bench`. The items live
 * in item_<name>.c; see bench.h. */
#include "bench.h"
#include "util_parse.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct item {
    const char *name;
    int (*fn)(const struct bench_args *);
};

static const struct item items[] = {
#define CBRNN_BENCH_ITEM(n) {#n, bench_item_##n},
#include "bench_table.h"
#undef CBRNN_BENCH_ITEM
    {NULL, NULL}};

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bench_parse_sizes(struct bench_args *a, const char *s)
{
    a->n_sizes = 0;
    while (*s) {
        struct bench_size z;
        int used = 0;
        if (a->n_sizes >= BENCH_MAX_SIZES ||
            sscanf(s, "%d,%d,%d,%d%n", &z.F, &z.N, &z.H, &z.O, &used) != 4 || z.F <= 0 ||
            z.N <= 0 || z.H <= 0 || z.O <= 0)
            return -1;
        a->sizes[a->n_sizes++] = z;
        s += used;
        if (*s == ';')
            s++;
        else if (*s)
            return -1;
    }
    return a->n_sizes > 0 ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cbrnn bench [--items A,B,...] [--sizes \"F,N,H,O;...\"] [--batch B]\n"
            "                   [--seq T] [--rate HZ] [--seconds S] [--repeats R] [--json]\n"
            "\n"
            "Times cbrnn's own work; compare with bench/peer_torch.py (PyTorch doing\n"
            "the same work) run on the same machine. Items:");
    for (const struct item *it = items; it->name; it++) {
        fputc(' ', f);
        for (const char *c = it->name; *c; c++)
            fputc(*c == '_' ? '-' : *c, f);
    }
    fprintf(f, "\n"
               "  --items LIST   comma-separated items (default: all)\n"
               "  --sizes LIST   model sizes F,N,H,O (features, cortex, cerebellum, outputs),\n"
               "                 ';' between sizes (default \"40,256,512,40\")\n"
               "  --batch B      training batch (default 32)\n"
               "  --seq T        training sequence length in frames (default 100)\n"
               "  --rate HZ      sample rate for front-end items (default 48000)\n"
               "  --seconds S    minimum seconds per timing round (default 1; 0.001..3600)\n"
               "  --repeats R    timing rounds, best reported (default 3; 1..1000)\n"
               "  --json         one JSON object per line\n");
}

/* --batch, --seq, --rate, --seconds, --repeats (c: their short codes)
 * with the strict parsers every cbrnn command uses (cli/util_parse.h):
 * whole numbers in range, nothing after them, no NaN or infinity. The
 * bounds: 1 hour per round at most (a round longer is a mistake, and
 * `inf` never ended), the sample rates the front end takes. 0 or -1
 * (said). */
static int number_option(struct bench_args *a, int c, const char *arg)
{
    static const struct { int c; const char *name; double lo, hi; } opt[] = {
        {'b', "--batch", 1, 1 << 20},      {'t', "--seq", 1, 1 << 20},
        {'r', "--rate", 8000, 192000},     {'S', "--seconds", 0.001, 3600},
        {'R', "--repeats", 1, 1000}};
    size_t k = 0;
    while (opt[k].c != c)
        k++;
    double v = 0;
    int n = 0, whole = c == 'b' || c == 't' || c == 'R';
    if (whole ? cli_parse_int(arg, (long)opt[k].lo, (long)opt[k].hi, &n)
              : cli_parse_double(arg, opt[k].lo, opt[k].hi, &v)) {
        fprintf(stderr, "cbrnn bench: %s '%s': expected %s in %.10g..%.10g\n", opt[k].name, arg,
                whole ? "an integer" : "a number", opt[k].lo, opt[k].hi);
        return -1;
    }
    switch (c) {
    case 'b': a->batch = n; break;
    case 't': a->seq = n; break;
    case 'R': a->repeats = n; break;
    case 'r': a->rate = v; break;
    default: a->seconds = v; break;
    }
    return 0;
}

int bench_main(int argc, char **argv)
{
    struct bench_args a = {.json = 0, .seconds = 1.0, .repeats = 3, .batch = 32, .seq = 100,
                           .rate = 48000.0, .out = stdout};
    const char *item_list = NULL;
    bench_parse_sizes(&a, "40,256,512,40");
    static const struct option opts[] = {
        {"items", required_argument, 0, 'i'}, {"sizes", required_argument, 0, 's'},
        {"batch", required_argument, 0, 'b'}, {"seq", required_argument, 0, 't'},
        {"rate", required_argument, 0, 'r'},  {"seconds", required_argument, 0, 'S'},
        {"repeats", required_argument, 0, 'R'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': item_list = optarg; break;
        case 's':
            if (bench_parse_sizes(&a, optarg)) {
                fprintf(stderr, "cbrnn bench: --sizes '%s': expected F,N,H,O;... with positive integers\n", optarg);
                return 2;
            }
            break;
        case 'b': case 't': case 'r': case 'S': case 'R':
            if (number_option(&a, c, optarg))
                return 2;
            break;
        case 'j': a.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cbrnn bench: unexpected argument '%s' (see cbrnn bench --help)\n",
                argv[optind]);
        return 2;
    }
    if (!item_list) {
        for (const struct item *it = items; it->name; it++)
            if (it->fn(&a))
                return 1;
        return 0;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s", item_list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        for (char *p = tok; *p; p++)
            if (*p == '-')
                *p = '_';
        const struct item *it = items;
        while (it->name && strcmp(it->name, tok))
            it++;
        if (!it->name) {
            fprintf(stderr, "cbrnn bench: unknown item '%s' (see cbrnn bench --help)\n", tok);
            return 2;
        }
        if (it->fn(&a))
            return 1;
    }
    return 0;
}
