/* util_summary.c: `cbrnn summary`'s statistics (util_summary.h). A frame
 * belongs to the group of the last group-opening marker at or before it
 * (phase: markers named "phase:NAME"; trial: "trial:K"; marker: any
 * marker), or to the file its row came from (files.csv of cbrnn run).
 * Gated frames (flag 16) count as frames and gated, never in a mean. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util_summary.h"

#define MAX_COLS 32
#define REC_GATED 16u

/* Splits a CSV line in place (quoted fields: "" is a quote). */
static int split_csv(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        if (*p == '"') {
            char *w = p;
            f[n - 1] = w;
            p++;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"')
                    p++;
                *w++ = *p++;
            }
            if (*p == '"')
                p++;
            *w = 0;
            if (*p == ',') {
                p++;
                continue;
            }
            break;
        }
        char *c = p + strcspn(p, ",\r\n");
        int end = *c != ',';
        *c = 0;
        if (end)
            break;
        p = c + 1;
    }
    return n;
}

struct marker {
    int id;
    char name[200];
};

/* The marker names beside log: LOG.markers (cbrnn-jack) or markers.csv in
 * the log's folder (cbrnn run). None is not an error. */
static int read_markers(const char *log, struct marker **out, int *n, char *msg, size_t msglen)
{
    char path[4096], line[1024];
    *out = NULL;
    *n = 0;
    snprintf(path, sizeof path, "%s.markers", log);
    FILE *f = fopen(path, "r");
    if (!f) {
        const char *slash = strrchr(log, '/');
        snprintf(path, sizeof path, "%.*s%smarkers.csv", slash ? (int)(slash - log) : 0, log,
                 slash ? "/" : "");
        f = fopen(path, "r");
    }
    if (!f)
        return 0;
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        char *fl[3];
        if (split_csv(line, fl, 3) < 2 || !strcmp(fl[0], "marker"))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            struct marker *m = realloc(*out, (size_t)cap * sizeof *m);
            if (!m) {
                fclose(f);
                snprintf(msg, msglen, "%s: out of memory", path);
                return -1;
            }
            *out = m;
        }
        (*out)[*n].id = atoi(fl[0]);
        snprintf((*out)[*n].name, sizeof (*out)[*n].name, "%s", fl[1]);
        (*n)++;
    }
    fclose(f);
    return 0;
}

static const char *marker_name(const struct marker *m, int n, int id)
{
    for (int i = 0; i < n; i++)
        if (m[i].id == id)
            return m[i].name;
    return NULL;
}

/* Does this marker open a group for `by`? Then its group name into buf. */
static int opens_group(enum summary_by by, const char *name, int id, char *buf, size_t len)
{
    if (by == BY_MARKER) {
        snprintf(buf, len, "%d:%s", id, name ? name : "");
        return 1;
    }
    const char *pre = by == BY_PHASE ? "phase:" : "trial:";
    if (by != BY_PHASE && by != BY_TRIAL)
        return 0;
    if (!name || strncmp(name, pre, strlen(pre)))
        return 0;
    snprintf(buf, len, "%s", name + strlen(pre));
    return 1;
}

/* The group called name (made when new). */
static summary_group *group(summary *s, const char *name)
{
    for (int i = 0; i < s->n_groups; i++)
        if (!strcmp(s->g[i].name, name))
            return &s->g[i];
    summary_group *g = realloc(s->g, (size_t)(s->n_groups + 1) * sizeof *g);
    if (!g)
        return NULL;
    s->g = g;
    summary_group *n = &s->g[s->n_groups++];
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    n->t0 = NAN;
    return n;
}

/* files.csv of cbrnn run: row ranges of each input. */
struct file_rows {
    char name[256];
    long first;
};

static int read_files(const char *log, struct file_rows **out, int *n, char *msg, size_t msglen)
{
    char path[4096], line[4096];
    const char *slash = strrchr(log, '/');
    snprintf(path, sizeof path, "%.*s%sfiles.csv", slash ? (int)(slash - log) : 0, log,
             slash ? "/" : "");
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, msglen, "%s: cannot open (--by file needs the files.csv `cbrnn run` "
                              "writes beside frames.csv): %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        char *fl[3];
        if (split_csv(line, fl, 3) < 2 || !strcmp(fl[0], "file"))
            continue;
        struct file_rows *r = realloc(*out, (size_t)(*n + 1) * sizeof *r);
        if (!r) {
            fclose(f);
            return -1;
        }
        *out = r;
        snprintf(r[*n].name, sizeof r[*n].name, "%s", fl[0]);
        r[*n].first = atol(fl[1]);
        (*n)++;
    }
    fclose(f);
    return 0;
}

/* Second pass: the halves of each group's scored frames. */
static void halves(summary *s, const int *gi, const double *loss, long rows)
{
    for (int k = 0; k < s->n_groups; k++) {
        summary_group *g = &s->g[k];
        long half = g->scored / 2, seen = 0, n1 = 0, n2 = 0;
        double a = 0, b = 0;
        for (long r = 0; r < rows; r++) {
            if (gi[r] != k || isnan(loss[r]))
                continue;
            if (seen++ < half) {
                a += loss[r];
                n1++;
            } else {
                b += loss[r];
                n2++;
            }
        }
        g->first_half = n1 ? a / (double)n1 : NAN;
        g->second_half = n2 ? b / (double)n2 : NAN;
    }
}

/* One pass over a per-frame log: what summary_compute reads and keeps. */
struct reader {
    const char *log;
    FILE *f;
    enum summary_by by;
    double bin;
    char *msg;
    size_t msglen;
    struct marker *mk;          /* its marker names */
    int n_mk;
    struct file_rows *files;    /* --by file: where each input starts */
    int n_files, next_file;
    int nh;                     /* columns of the header */
    int col[6];                 /* time loss persistence_loss surprise learning marker */
    int c_flags;                /* flags, or -1 (older logs) */
    char cur[256];              /* the group the frames now go to */
    int *gi;                    /* [rows] each row's group */
    double *losses;             /* [rows] each row's loss (NAN: not scored) */
    long rows, cap, lineno;
};

/* The header line: where the columns summary_compute reads are. 0 or -1
 * (msg). */
static int read_header(struct reader *rd)
{
    static const char *const want[6] = {"time", "loss", "persistence_loss", "surprise",
                                        "learning", "marker"};
    char line[1024], *fl[MAX_COLS];
    for (int k = 0; k < 6; k++)
        rd->col[k] = -1;
    rd->c_flags = -1;
    if (!fgets(line, sizeof line, rd->f)) {
        snprintf(rd->msg, rd->msglen, "%s: empty", rd->log);
        return -1;
    }
    rd->lineno = 1;
    rd->nh = split_csv(line, fl, MAX_COLS);
    for (int i = 0; i < rd->nh; i++) {
        for (int k = 0; k < 6; k++)
            if (!strcmp(fl[i], want[k]))
                rd->col[k] = i;
        if (!strcmp(fl[i], "flags"))
            rd->c_flags = i;
    }
    for (int k = 0; k < 6; k++)
        if (rd->col[k] < 0) {
            snprintf(rd->msg, rd->msglen, "%s: no '%s' column: not a per-frame log (frames.csv or "
                     "cbrnn-jack --log)", rd->log, want[k]);
            return -1;
        }
    return 0;
}

/* The group of the row with fields fl: a marker on it may open one (by
 * phase, trial or marker), or a new input start (by file). NULL when out
 * of memory. */
static summary_group *row_group(summary *s, struct reader *rd, char **fl)
{
    char *mp = fl[rd->col[5]];
    while (*mp) {
        char buf[256];
        int id = atoi(mp);
        if (opens_group(rd->by, marker_name(rd->mk, rd->n_mk, id), id, buf, sizeof buf))
            snprintf(rd->cur, sizeof rd->cur, "%s", buf);
        mp += strcspn(mp, ";");
        if (*mp)
            mp++;
    }
    while (rd->by == BY_FILE && rd->next_file < rd->n_files &&
           rd->files[rd->next_file].first <= rd->rows)
        snprintf(rd->cur, sizeof rd->cur, "%s", rd->files[rd->next_file++].name);
    return group(s, rd->cur);
}

/* Room for one more row in gi and losses. 0 or -1. */
static int grow_rows(struct reader *rd)
{
    if (rd->rows < rd->cap)
        return 0;
    rd->cap = rd->cap ? 2 * rd->cap : 4096;
    int *ng = realloc(rd->gi, (size_t)rd->cap * sizeof *ng);
    double *nl = ng ? realloc(rd->losses, (size_t)rd->cap * sizeof *nl) : NULL;
    if (ng)
        rd->gi = ng;
    if (nl)
        rd->losses = nl;
    return ng && nl ? 0 : -1;
}

/* Adds a frame at time t with loss l (NAN: none) and surprise field sp to
 * its bin of the learning curve. 0 or -1 (out of memory). */
static int add_to_bin(summary *s, double bin, double t, double l, const char *sp)
{
    int b = bin > 0 ? (int)(t / bin) : 0;
    if (b < 0 || b >= 10000000)
        return 0;
    if (b >= s->n_bins) {
        summary_bin *nb = realloc(s->bins, (size_t)(b + 1) * sizeof *nb);
        if (!nb)
            return -1;
        for (int i = s->n_bins; i <= b; i++)
            nb[i] = (summary_bin){i * bin, 0, 0, 0, 0};
        s->bins = nb;
        s->n_bins = b + 1;
    }
    if (!isnan(l)) {
        s->bins[b].loss += l;
        s->bins[b].n++;
    }
    if (*sp) {
        s->bins[b].surprise += atof(sp);
        s->bins[b].n_surprise++;
    }
    return 0;
}

/* One row of the log (fields fl) into its group, the rows and its bin.
 * 0 or -1 (msg). */
static int add_row(summary *s, struct reader *rd, char **fl)
{
    const int *col = rd->col;
    summary_group *g = row_group(s, rd, fl);
    if (!g || grow_rows(rd)) {
        snprintf(rd->msg, rd->msglen, "out of memory");
        return -1;
    }
    double t = atof(fl[col[0]]);
    unsigned flags = rd->c_flags >= 0 ? (unsigned)strtoul(fl[rd->c_flags], NULL, 10) : 0;
    int gated = (flags & REC_GATED) != 0;
    g->frames++;
    g->learned += atoi(fl[col[4]]) == 1;
    g->gated += gated;
    if (isnan(g->t0))
        g->t0 = t;
    g->t1 = t;
    double l = NAN;
    if (*fl[col[1]] && !gated) {
        l = strtod(fl[col[1]], NULL);
        g->loss += l;
        g->scored++;
        if (*fl[col[2]]) {
            g->pers += atof(fl[col[2]]);
            g->pers_n++;
        }
    }
    rd->gi[rd->rows] = (int)(g - s->g);
    rd->losses[rd->rows++] = l;
    if (!gated && add_to_bin(s, rd->bin, t, l, fl[col[3]])) {
        snprintf(rd->msg, rd->msglen, "out of memory");
        return -1;
    }
    return 0;
}

/* Every row after the header. 0 or -1 (msg). */
static int read_rows(summary *s, struct reader *rd)
{
    char line[1024], *fl[MAX_COLS];
    snprintf(rd->cur, sizeof rd->cur, "all");
    if (rd->by == BY_PHASE || rd->by == BY_TRIAL || rd->by == BY_MARKER)
        snprintf(rd->cur, sizeof rd->cur, "(before the first)");
    while (fgets(line, sizeof line, rd->f)) {
        rd->lineno++;
        int n = split_csv(line, fl, MAX_COLS);
        if (n < rd->nh) {
            snprintf(rd->msg, rd->msglen, "%s:%ld: %d columns, the header has %d", rd->log,
                     rd->lineno, n, rd->nh);
            return -1;
        }
        if (add_row(s, rd, fl))
            return -1;
    }
    return 0;
}

int summary_compute(summary *s, const char *log, enum summary_by by, double bin, char *msg,
                    size_t msglen)
{
    memset(s, 0, sizeof *s);
    struct reader rd = {.log = log, .by = by, .bin = bin, .msg = msg, .msglen = msglen};
    int rc = -1;
    rd.f = fopen(log, "r");
    if (!rd.f) {
        snprintf(msg, msglen, "%s: cannot open: %s", log, strerror(errno));
        return -1;
    }
    if (read_markers(log, &rd.mk, &rd.n_mk, msg, msglen) ||
        (by == BY_FILE && read_files(log, &rd.files, &rd.n_files, msg, msglen)) ||
        read_header(&rd) || read_rows(s, &rd))
        goto out;
    halves(s, rd.gi, rd.losses, rd.rows);
    for (int i = 0; i < s->n_bins; i++) {
        s->bins[i].loss = s->bins[i].n ? s->bins[i].loss / (double)s->bins[i].n : NAN;
        s->bins[i].surprise =
            s->bins[i].n_surprise ? s->bins[i].surprise / (double)s->bins[i].n_surprise : NAN;
    }
    rc = 0;
out:
    fclose(rd.f);
    free(rd.mk);
    free(rd.files);
    free(rd.gi);
    free(rd.losses);
    if (rc)
        summary_free(s);
    return rc;
}

void summary_free(summary *s)
{
    free(s->g);
    free(s->bins);
    memset(s, 0, sizeof *s);
}
