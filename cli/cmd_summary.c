/* cmd_summary.c: `cbrnn summary LOG.csv [--by phase|marker|trial|file]
 * [--bin SEC] [--curve OUT.csv]`: per-group numbers of a per-frame log
 * (a live `cbrnn-jack --log` or `cbrnn run`'s frames.csv): frames, frames
 * learned, frames gated, mean loss, persistence, skill and the halves of
 * the loss; and the learning curve (mean loss and surprise per bin). The
 * work is util_summary.c; this file parses options and prints. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util_msg.h"
#include "util_output.h"
#include "util_summary.h"

const char cmd_summary_summary[] = "per-phase/marker/trial/file numbers and learning curve of a log";

#define PROG "cbrnn summary"

static void usage(FILE *f)
{
    fprintf(f,
"usage: cbrnn summary [--by phase|marker|trial|file] [--bin SEC] [--curve OUT.csv] LOG.csv\n"
"\n"
"Numbers per group of frames of a per-frame log (cbrnn-jack --log FILE.csv,\n"
"or frames.csv of cbrnn run), as CSV on stdout: group, frames, learned\n"
"(frames the cerebellum was updated on, flag 1: what cbrnn run counts as\n"
"updates; frame 0 and frames with learning off have none), gated (below\n"
"the level gate),\n"
"mean_loss, mean_persistence, skill (1 - loss / persistence), loss of the\n"
"first and second half of the group's frames, start and end time (s).\n"
"Gated frames are in no mean.\n"
"\n"
"  --by G       phase: from each marker named phase:NAME (schedules) to the\n"
"               next; trial: from each trial:K marker; marker: from each\n"
"               marker; file: each input of cbrnn run (its files.csv).\n"
"               Marker names come from LOG.csv.markers (cbrnn-jack) or\n"
"               markers.csv beside the log (cbrnn run); a log with markers\n"
"               and no names file is refused. Default: one group.\n"
"  --bin SEC    learning-curve bin (default 1 s)\n"
"  --curve F    write the learning curve to F: time,mean_loss,mean_surprise,\n"
"               frames\n"
"\n"
"The picture (loss and surprise over time, phases shaded, markers):\n"
"/usr/bin/python3 scripts/plot_log.py LOG.csv OUT.png\n"
"\n"
"Every number of the log is checked: a malformed one (trailing text, nan,\n"
"inf, out of range) is refused with FILE:LINE and the column.\n"
"Exit status: 0 done; 1 failure while working; 2 bad options or input.\n");
}

static void num(double v)
{
    if (isnan(v))
        fputs(",", stdout);
    else
        printf(",%.6g", v);
}

/* --curve through the guard of every command (util_output.h): not the
 * log nor the markers and files lists read beside it, not a model or
 * audio file. 0 or -1 (said). */
static int check_curve(const char *log, const char *curve)
{
    char msg[4096], path[4096];
    const char *slash = strrchr(log, '/');
    int dir = slash ? (int)(slash - log) + 1 : 0;
    host_files f = {0};
    int rc = host_files_input(&f, log);
    snprintf(path, sizeof path, "%s.markers", log);
    rc = rc || host_files_input(&f, path);
    snprintf(path, sizeof path, "%.*smarkers.csv", dir, log);
    rc = rc || host_files_input(&f, path);
    snprintf(path, sizeof path, "%.*sfiles.csv", dir, log);
    rc = rc || host_files_input(&f, path);
    if (rc)
        snprintf(msg, sizeof msg, "out of memory");
    rc = rc || host_files_output(&f, "--curve", curve, HOST_OUT_DATA, msg, sizeof msg);
    if (rc)
        fprintf(stderr, PROG ": %s\n", msg);
    host_files_free(&f);
    return rc ? -1 : 0;
}

/* The learning curve to path, written through a temporary. The exit
 * status (said). */
static int write_curve(const summary *s, const char *path)
{
    char msg[4096];
    cli_outfile *o = cli_out_open(path, msg, sizeof msg);
    if (!o) {
        fprintf(stderr, PROG ": %s\n", msg);
        return 2;
    }
    fprintf(o->f, "time,mean_loss,mean_surprise,frames\n");
    for (int i = 0; i < s->n_bins; i++)
        fprintf(o->f, "%.3f,%.6g,%.6g,%ld\n", s->bins[i].t0, s->bins[i].loss,
                s->bins[i].surprise, s->bins[i].n);
    if (cli_out_commit(o, msg, sizeof msg)) {
        fprintf(stderr, PROG ": %s\n", msg);
        return 1;
    }
    return 0;
}

/* The groups as CSV on stdout. */
static void print_groups(const summary *s)
{
    printf("group,frames,learned,gated,mean_loss,mean_persistence,skill,first_half_loss,"
           "second_half_loss,t_start,t_end\n");
    for (int i = 0; i < s->n_groups; i++) {
        const summary_group *g = &s->g[i];
        double ml = g->scored ? g->loss / (double)g->scored : NAN;
        double mp = g->pers_n ? g->pers / (double)g->pers_n : NAN;
        cli_csv_field(stdout, g->name);
        printf(",%ld,%ld,%ld", g->frames, g->learned, g->gated);
        num(ml);
        num(mp);
        num(mp > 0 ? 1.0 - ml / mp : NAN);
        num(g->first_half);
        num(g->second_half);
        printf(",%.3f,%.3f\n", g->t0, g->t1);
    }
}

int cmd_summary(int argc, char **argv)
{
    static const struct option lo[] = {{"by", required_argument, NULL, 'b'},
                                       {"bin", required_argument, NULL, 'n'},
                                       {"curve", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    enum summary_by by = BY_ALL;
    double bin = 1.0;
    const char *curve = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!strcmp(optarg, "phase"))
                by = BY_PHASE;
            else if (!strcmp(optarg, "marker"))
                by = BY_MARKER;
            else if (!strcmp(optarg, "trial"))
                by = BY_TRIAL;
            else if (!strcmp(optarg, "file"))
                by = BY_FILE;
            else {
                fprintf(stderr, PROG ": --by '%s': expected phase, marker, trial or file\n",
                        optarg);
                return 2;
            }
            break;
        case 'n': {
            char *end;
            bin = strtod(optarg, &end);
            if (*end || !(bin >= 0.01 && bin <= 1e6)) {
                fprintf(stderr, PROG ": --bin '%s': expected seconds in [0.01, 1e6]\n", optarg);
                return 2;
            }
            break;
        }
        case 'c': curve = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, PROG ": expected one LOG.csv\n");
        usage(stderr);
        return 2;
    }
    summary s;
    char msg[CLI_MSG_LEN];
    if (curve && check_curve(argv[optind], curve))
        return 2;
    if (cli_check_path_length(argv[optind], msg, sizeof msg) ||
        summary_compute(&s, argv[optind], by, bin, msg, sizeof msg)) {
        cli_say(PROG, msg);
        return 2;
    }
    if (s.note[0])
        fprintf(stderr, PROG ": note: %s\n", s.note);
    print_groups(&s);
    int status = curve ? write_curve(&s, curve) : 0;
    summary_free(&s);
    return status;
}
