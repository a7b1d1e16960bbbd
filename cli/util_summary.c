/* util_summary.c: `cbrnn summary`'s statistics (util_summary.h). A frame
 * belongs to the group of the last group-opening marker at or before it
 * (phase: markers named "phase:NAME"; trial: "trial:K"; marker: any
 * marker), or to the file its row came from (files.csv of cbrnn run).
 * Gated frames (flag 16) count as frames and gated, never in a mean. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util_parse.h"
#include "util_summary.h"

#define MAX_COLS 32
#define REC_UPDATED 1u
#define REC_GATED 16u
#define MAX_TIME 1e8 /* s: three years of frames; a larger time is no log's */
#define MAX_UNNAMED 16

/* Reads the next line of f into line (len bytes). 1 read, 0 end of file,
 * -1 a line longer than len - 1 (msg names where). */
static int read_line(FILE *f, char *line, size_t len, const char *path, long lineno, char *msg,
                     size_t msglen)
{
    if (!fgets(line, (int)len, f))
        return 0;
    size_t l = strlen(line);
    if (l == len - 1 && line[l - 1] != '\n' && !feof(f)) {
        snprintf(msg, msglen, "%s:%ld: line longer than %zu characters", path, lineno, len - 2);
        return -1;
    }
    return 1;
}

/* Field `what` of path:lineno as a finite number in [lo, hi] (empty
 * allowed when *empty_ok: then NAN). 0 or -1 (msg names file, line,
 * field and value). */
static int field_num(const char *s, const char *what, double lo, double hi, int empty_ok,
                     double *out, const char *path, long lineno, char *msg, size_t msglen)
{
    if (!*s && empty_ok) {
        *out = NAN;
        return 0;
    }
    if (cli_parse_double(s, lo, hi, out)) {
        char range[64];
        if (hi < DBL_MAX)
            snprintf(range, sizeof range, "a number in %g..%g", lo, hi);
        else
            snprintf(range, sizeof range, "a finite number%s", lo == 0 ? " >= 0" : "");
        snprintf(msg, msglen, "%s:%ld: %s '%.40s%s': expected %s%s", path, lineno, what, s,
                 strlen(s) > 40 ? "..." : "", range, empty_ok ? " or empty" : "");
        return -1;
    }
    return 0;
}

/* Field `what` of path:lineno as an integer in [lo, hi]. 0 or -1 (msg). */
static int field_int(const char *s, const char *what, long lo, long hi, int *out,
                     const char *path, long lineno, char *msg, size_t msglen)
{
    if (cli_parse_int(s, lo, hi, out)) {
        snprintf(msg, msglen, "%s:%ld: %s '%.40s%s': expected an integer in %ld..%ld", path,
                 lineno, what, s, strlen(s) > 40 ? "..." : "", lo, hi);
        return -1;
    }
    return 0;
}

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

/* One row "id,name,..." of a names file into out[*n] (grown). 0 or -1
 * (msg). */
static int add_marker(struct marker **out, int *n, int *cap, char **fl, const char *path,
                      long lineno, char *msg, size_t msglen)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        struct marker *m = realloc(*out, (size_t)*cap * sizeof *m);
        if (!m) {
            snprintf(msg, msglen, "%s: out of memory", path);
            return -1;
        }
        *out = m;
    }
    if (field_int(fl[0], "marker", 0, INT_MAX, &(*out)[*n].id, path, lineno, msg, msglen))
        return -1;
    snprintf((*out)[*n].name, sizeof (*out)[*n].name, "%s", fl[1]);
    (*n)++;
    return 0;
}

/* The marker names beside log: LOG.markers (cbrnn-jack) or markers.csv in
 * the log's folder (cbrnn run), the one found into found (""
 * when none; tried: the paths looked at). None is not an error here. */
static int read_markers(const char *log, struct marker **out, int *n, char *found,
                        char *tried, size_t pathlen, char *msg, size_t msglen)
{
    char path[4096], line[1024];
    const char *slash = strrchr(log, '/');
    *out = NULL;
    *n = 0;
    *found = 0;
    snprintf(path, sizeof path, "%s.markers", log);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(path, sizeof path, "%.*s%smarkers.csv", slash ? (int)(slash - log) : 0, log,
                 slash ? "/" : "");
        f = fopen(path, "r");
    }
    snprintf(tried, pathlen, "%s.markers, %.*s%smarkers.csv", log, slash ? (int)(slash - log) : 0,
             log, slash ? "/" : "");
    if (!f)
        return 0;
    snprintf(found, pathlen, "%s", path);
    int cap = 0, rc = 0;
    long lineno = 0;
    while (!rc && (rc = read_line(f, line, sizeof line, path, lineno + 1, msg, msglen)) > 0) {
        char *fl[3];
        lineno++;
        rc = 0;
        if (split_csv(line, fl, 3) < 2) {
            snprintf(msg, msglen, "%s:%ld: expected marker,name,seconds", path, lineno);
            rc = -1;
        } else if (lineno > 1 || strcmp(fl[0], "marker"))
            rc = add_marker(out, n, &cap, fl, path, lineno, msg, msglen);
    }
    fclose(f);
    return rc < 0 ? -1 : 0;
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
    summary_group *n = &s->g[s->n_groups];
    memset(n, 0, sizeof *n);
    if (!(n->name = strdup(name)))
        return NULL;
    s->n_groups++;
    n->t0 = NAN;
    return n;
}

/* files.csv of cbrnn run: row ranges of each input. */
struct file_rows {
    char *name; /* malloc'ed, whole */
    long first;
};

static void free_files(struct file_rows *r, int n)
{
    for (int i = 0; i < n; i++)
        free(r[i].name);
    free(r);
}

/* The whole of file f, NUL-terminated, into *buf (malloc'ed). 0 or -1
 * (msg: a read error, out of memory, a NUL byte). */
static int slurp(FILE *f, const char *path, char **buf, char *msg, size_t msglen)
{
    size_t n = 0, cap = 4096;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - 1 - n, f);
        if (n < cap - 1)
            break;
        char *g = realloc(b, cap *= 2);
        if (!g)
            free(b);
        b = g;
    }
    if (!b) {
        snprintf(msg, msglen, "%s: out of memory", path);
        return -1;
    }
    b[n] = 0;
    if (ferror(f) || strlen(b) != n) {
        snprintf(msg, msglen, "%s: %s", path, ferror(f) ? "cannot read" : "a NUL byte: not CSV");
        free(b);
        return -1;
    }
    *buf = b;
    return 0;
}

/* A quoted CSV field at p (RFC 4180: "" is a quote; commas and line ends
 * inside are the field's): its closing quote, or NULL when it has none.
 * Nothing is changed (the record may be of the older form instead). */
static const char *closing_quote(const char *p)
{
    for (const char *q = p + 1; *q; q++)
        if (*q == '"' && *++q != '"')
            return q - 1;
    return NULL;
}

/* The text of the quoted field from p to its closing quote q, a quote
 * for each "" (malloc'ed; NULL when out of memory). */
static char *unquoted(const char *p, const char *q)
{
    char *out = malloc((size_t)(q - p)), *w = out;
    if (!out)
        return NULL;
    for (p++; p < q; p++) {
        *w++ = *p;
        p += *p == '"';
    }
    *w = 0;
    return out;
}

/* A record's first_row field at p up to its line end: into *first; the
 * next record's start, or NULL when p is not digits then a line end. */
static char *row_number(char *p, long *first)
{
    size_t d = strspn(p, "0123456789");
    char *e = p + d;
    if (d == 0 || d > 10 || (*e && *e != '\n' && !(*e == '\r' && e[1] == '\n')))
        return NULL;
    *first = strtol(p, NULL, 10);
    return e + (*e == '\r') + (*e != 0);
}

/* One record "name,first_row" of files.csv at *pp into r (name
 * malloc'ed), *pp moved past it. The name as RFC 4180 quotes it, or
 * unquoted, or (a name holding a quote, which older runs wrote between
 * quotes as it is) everything between the opening quote and the first
 * '",DIGITS' that ends a line. 0 or -1 (malformed; out of memory). */
static int file_record(char **pp, struct file_rows *r)
{
    char *p = *pp, *name = p, *end = NULL, *next = NULL;
    if (*p == '"') {
        const char *q = closing_quote(p);
        if (q && q[1] == ',' && (next = row_number((char *)q + 2, &r->first))) {
            *pp = next;
            r->name = unquoted(p, q);
            return r->name ? 0 : -1;
        }
        for (end = strstr(p + 1, "\","); end; end = strstr(end + 1, "\","))
            if ((next = row_number(end + 2, &r->first)))
                break;
        name = p + 1;
    } else if ((end = strchr(p, ',')) && !memchr(p, '"', (size_t)(end - p)) &&
               !memchr(p, '\n', (size_t)(end - p)))
        next = row_number(end + 1, &r->first);
    if (!end || !next)
        return -1;
    r->name = strndup(name, (size_t)(end - name));
    *pp = next;
    return r->name ? 0 : -1;
}

/* Reads files.csv beside log: where each input's rows start, the names
 * whole, however long, and with any bytes run wrote (commas, quotes, line
 * ends). 0 or -1 (msg names the file and the line of a bad record). */
static int read_files(const char *log, struct file_rows **out, int *n, char *msg, size_t msglen)
{
    char path[4096], *buf = NULL;
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
    int rc = slurp(f, path, &buf, msg, msglen);
    fclose(f);
    if (rc)
        return -1;
    char *p = buf;
    long lineno = 1;
    if (!strncmp(p, "file,first_row", 14) && strchr("\r\n", p[14])) {
        p += 14 + (p[14] == '\r') + (p[14] != 0);
        lineno++;
    }
    while (*p && !rc) {
        if (*p == '\n' || (p[0] == '\r' && p[1] == '\n')) { /* a blank line, as before */
            p += *p == '\r' ? 2 : 1;
            lineno++;
            continue;
        }
        struct file_rows *r = realloc(*out, (size_t)(*n + 1) * sizeof *r);
        if (r)
            *out = r;
        char *start = p;
        if (!r || file_record(&p, &r[*n])) {
            snprintf(msg, msglen, r ? "%s:%ld: expected \"NAME\",FIRST_ROW (NAME quoted as in "
                     "CSV, FIRST_ROW a row number)" : "%s:%ld: out of memory", path, lineno);
            rc = -1;
            break;
        }
        (*n)++;
        for (; start < p; start++)
            lineno += *start == '\n';
    }
    free(buf);
    if (rc) {
        free_files(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
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
    char names[4096];           /* the names file read ("" none) */
    char tried[4096];           /* where it was looked for */
    int unnamed[MAX_UNNAMED];   /* marker ids seen that have no name */
    int n_unnamed;
    struct file_rows *files;    /* --by file: where each input starts */
    int n_files, next_file;
    int nh;                     /* columns of the header */
    int col[6];                 /* time loss persistence_loss surprise learning marker */
    int c_flags;                /* flags, or -1 (older logs) */
    char *cur;                  /* the group the frames now go to (malloc'ed) */
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
    struct stat st;
    if (!fstat(fileno(rd->f), &st) && S_ISDIR(st.st_mode)) {
        snprintf(rd->msg, rd->msglen, "%s: is a directory (expected a per-frame log: frames.csv "
                 "or cbrnn-jack --log FILE.csv)", rd->log);
        return -1;
    }
    int got = read_line(rd->f, line, sizeof line, rd->log, 1, rd->msg, rd->msglen);
    if (got <= 0) {
        if (!got && ferror(rd->f))
            snprintf(rd->msg, rd->msglen, "%s: cannot read: %s", rd->log, strerror(errno));
        else if (!got)
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

/* Remembers marker id as one without a name (the first MAX_UNNAMED). */
static void note_unnamed(struct reader *rd, int id)
{
    for (int i = 0; i < rd->n_unnamed; i++)
        if (rd->unnamed[i] == id)
            return;
    if (rd->n_unnamed < MAX_UNNAMED)
        rd->unnamed[rd->n_unnamed++] = id;
}

/* The group the frames now go to becomes name. 0 or -1 (msg: out of
 * memory). */
static int set_cur(struct reader *rd, const char *name)
{
    char *c = strdup(name);
    if (!c) {
        snprintf(rd->msg, rd->msglen, "out of memory");
        return -1;
    }
    free(rd->cur);
    rd->cur = c;
    return 0;
}

/* The group of the row with fields fl: a marker on it may open one (by
 * phase, trial or marker), or a new input start (by file). NULL with msg
 * (a bad marker id, out of memory). */
static summary_group *row_group(summary *s, struct reader *rd, char **fl)
{
    char *mp = fl[rd->col[5]];
    while (*mp) {
        char buf[256];
        int id;
        size_t l = strcspn(mp, ";");
        char c = mp[l];
        mp[l] = 0;
        if (field_int(mp, "marker", 0, INT_MAX, &id, rd->log, rd->lineno, rd->msg, rd->msglen))
            return NULL;
        mp += l + (c != 0);
        const char *name = marker_name(rd->mk, rd->n_mk, id);
        if (!name)
            note_unnamed(rd, id);
        if (opens_group(rd->by, name, id, buf, sizeof buf) && set_cur(rd, buf))
            return NULL;
    }
    while (rd->by == BY_FILE && rd->next_file < rd->n_files &&
           rd->files[rd->next_file].first <= rd->rows)
        if (set_cur(rd, rd->files[rd->next_file++].name))
            return NULL;
    summary_group *g = group(s, rd->cur);
    if (!g)
        snprintf(rd->msg, rd->msglen, "out of memory");
    return g;
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

/* Adds a frame at time t with loss l and surprise sp (NAN: none) to its
 * bin of the learning curve. 0 or -1 (out of memory). */
static int add_to_bin(summary *s, double bin, double t, double l, double sp)
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
    if (!isnan(sp)) {
        s->bins[b].surprise += sp;
        s->bins[b].n_surprise++;
    }
    return 0;
}

/* The numbers of one row (fields fl), each checked: a bad one is refused
 * with the file, line, column and value. */
struct row {
    double t, loss, pers, surprise;
    int learning, flags;
};

static int parse_row(struct reader *rd, char **fl, struct row *w)
{
    const int *col = rd->col;
    const char *log = rd->log;
    long ln = rd->lineno;
    w->flags = 0;
    return field_num(fl[col[0]], "time", 0, MAX_TIME, 0, &w->t, log, ln, rd->msg, rd->msglen) ||
           field_num(fl[col[1]], "loss", 0, DBL_MAX, 1, &w->loss, log, ln, rd->msg,
                     rd->msglen) ||
           field_num(fl[col[2]], "persistence_loss", 0, DBL_MAX, 1, &w->pers, log, ln, rd->msg,
                     rd->msglen) ||
           field_num(fl[col[3]], "surprise", -DBL_MAX, DBL_MAX, 1, &w->surprise, log, ln,
                     rd->msg, rd->msglen) ||
           field_int(fl[col[4]], "learning", 0, 1, &w->learning, log, ln, rd->msg,
                     rd->msglen) ||
           (rd->c_flags >= 0 && field_int(fl[rd->c_flags], "flags", 0, 65535, &w->flags, log,
                                          ln, rd->msg, rd->msglen))
               ? -1
               : 0;
}

/* One row of the log (fields fl) into its group, the rows and its bin.
 * "learned" counts the frames the cerebellum was updated on (flag 1; in
 * older logs without flags, learning on), as the hosts count updates.
 * 0 or -1 (msg). */
static int add_row(summary *s, struct reader *rd, char **fl)
{
    struct row w;
    if (parse_row(rd, fl, &w))
        return -1;
    summary_group *g = row_group(s, rd, fl);
    if (!g)
        return -1;
    if (grow_rows(rd)) {
        snprintf(rd->msg, rd->msglen, "out of memory");
        return -1;
    }
    int gated = (w.flags & REC_GATED) != 0;
    g->frames++;
    g->learned += rd->c_flags >= 0 ? (w.flags & REC_UPDATED) != 0 : w.learning == 1;
    g->gated += gated;
    if (isnan(g->t0))
        g->t0 = w.t;
    g->t1 = w.t;
    double l = gated ? NAN : w.loss;
    if (!isnan(l)) {
        g->loss += l;
        g->scored++;
        if (!isnan(w.pers)) {
            g->pers += w.pers;
            g->pers_n++;
        }
    }
    rd->gi[rd->rows] = (int)(g - s->g);
    rd->losses[rd->rows++] = l;
    if (!gated && add_to_bin(s, rd->bin, w.t, l, w.surprise)) {
        snprintf(rd->msg, rd->msglen, "out of memory");
        return -1;
    }
    return 0;
}

/* Every row after the header. 0 or -1 (msg). */
static int read_rows(summary *s, struct reader *rd)
{
    char line[1024], *fl[MAX_COLS];
    int by_marks = rd->by == BY_PHASE || rd->by == BY_TRIAL || rd->by == BY_MARKER;
    if (set_cur(rd, by_marks ? "(before the first)" : "all"))
        return -1;
    int got;
    while ((got = read_line(rd->f, line, sizeof line, rd->log, rd->lineno + 1, rd->msg,
                            rd->msglen)) > 0) {
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
    if (!got && ferror(rd->f)) {
        snprintf(rd->msg, rd->msglen, "%s: cannot read: %s", rd->log, strerror(errno));
        return -1;
    }
    return got < 0 ? -1 : 0;
}

/* Markers seen that have no name: --by phase, trial or marker cannot
 * group by them. No names file at all is an error (the groups would all
 * be "(before the first)"); a names file without some ids, a note. 0 or
 * -1 (msg). */
static int check_names(summary *s, const struct reader *rd)
{
    char ids[256] = "";
    size_t l = 0;
    for (int i = 0; i < rd->n_unnamed && l < sizeof ids; i++)
        l += (size_t)snprintf(ids + l, sizeof ids - l, "%s%d", i ? ", " : "", rd->unnamed[i]);
    const char *more = rd->n_unnamed == MAX_UNNAMED ? ", ..." : "";
    if (rd->by == BY_ALL || rd->by == BY_FILE || !rd->n_unnamed)
        return 0;
    if (!rd->names[0]) {
        snprintf(rd->msg, rd->msglen, "%s has markers (ids %s%s) but no marker names file (looked "
                 "for %s): --by %s needs their names (cbrnn run writes markers.csv with "
                 "--schedule, and with --events when the events file has its markers file "
                 "beside it)", rd->log, ids, more, rd->tried,
                 rd->by == BY_PHASE ? "phase" : rd->by == BY_TRIAL ? "trial" : "marker");
        return -1;
    }
    snprintf(s->note, sizeof s->note, "markers %s%s of %s have no name in %s", ids, more, rd->log,
             rd->names);
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
    if (read_markers(log, &rd.mk, &rd.n_mk, rd.names, rd.tried, sizeof rd.names, msg, msglen) ||
        (by == BY_FILE && read_files(log, &rd.files, &rd.n_files, msg, msglen)) ||
        read_header(&rd) || read_rows(s, &rd) || check_names(s, &rd))
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
    free_files(rd.files, rd.n_files);
    free(rd.cur);
    free(rd.gi);
    free(rd.losses);
    if (rc)
        summary_free(s);
    return rc;
}

void summary_free(summary *s)
{
    for (int i = 0; i < s->n_groups; i++)
        free(s->g[i].name);
    free(s->g);
    free(s->bins);
    memset(s, 0, sizeof *s);
}
