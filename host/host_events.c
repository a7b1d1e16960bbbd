/* host_events.c: control changes replayed at their frames (see
 * cbrnn_control.h): a recorded live run's events file read back and fed to
 * an engine so that every command takes effect before the same frame as it
 * did live; and the file's header lines, which name the model (by the
 * SHA-256 of its bytes) and the engine options the numbers depend on that
 * no event carries, so a replay that cannot give the recorded numbers is
 * told so. Never prints; never on an audio thread. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_host.h"
#include "host_events.h"
#include "host_sha256.h"

/* The longest event row read: far beyond any the hosts write (a frame
 * number, a name and a 9-digit float); header lines may be longer (the
 * model's path). */
#define EVENT_LINE_MAX 255

/* Merges the sorted runs a[0..na) and b[0..nb) into out; on equal frames
 * a's event goes first, which keeps the sort stable. */
static void merge_runs(cbrnn_event *out, const cbrnn_event *a, size_t na, const cbrnn_event *b,
                       size_t nb)
{
    size_t i = 0, j = 0;
    while (i < na && j < nb)
        *out++ = b[j].frame < a[i].frame ? b[j++] : a[i++];
    while (i < na)
        *out++ = a[i++];
    while (j < nb)
        *out++ = b[j++];
}

int cbrnn_events_sort(cbrnn_event *ev, size_t n)
{
    size_t i = 1;
    while (i < n && ev[i - 1].frame <= ev[i].frame)
        i++;
    if (i >= n) /* in order already, as the hosts write them */
        return 0;
    cbrnn_event *tmp = malloc(n * sizeof *tmp);
    if (!tmp)
        return CBRNN_ERR_NOMEM;
    /* bottom-up: runs of width w merged pairwise from src into dst */
    cbrnn_event *src = ev, *dst = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            merge_runs(dst + lo, src + lo, mid - lo, src + mid, hi - mid);
        }
        cbrnn_event *t = src;
        src = dst;
        dst = t;
    }
    if (src != ev)
        memcpy(ev, src, n * sizeof *ev);
    free(tmp);
    return 0;
}

/* ---- The header lines ---- */

/* A rule as a run resolved it (an engine learns by sgd or rls). */
static const char *resolved_rule(cbrnn_rule r)
{
    return cbrnn_rule_name(r == CBRNN_RULE_RLS ? CBRNN_RULE_RLS : CBRNN_RULE_SGD);
}

/* The keys with the CBRNN_EVH_* bit each sets, in the order written.
 * Plain ones (kind 'i' an int, 'f' a float of the config at off, in
 * [lo, hi], or 0 where zero_ok: the ranges cbrnn_engine_create takes) are
 * read, written, applied and compared as they are; the others (kind 0)
 * have code of their own. */
#define CFG(field) offsetof(cbrnn_engine_config, field)
static const struct {
    const char *key;
    unsigned bit;
    char kind;
    size_t off;
    double lo, hi;
    int zero_ok;
} header_keys[] = {
    {"model", CBRNN_EVH_MODEL, 0, 0, 0, 0, 0},
    {"model_sha256", CBRNN_EVH_MODEL_SHA256, 0, 0, 0, 0, 0},
    {"sample_rate", CBRNN_EVH_RATE, 0, 0, 0, 0, 0},
    {"rule", CBRNN_EVH_RULE, 0, 0, 0, 0, 0},
    {"rls_prior", CBRNN_EVH_RLS_PRIOR, 0, 0, 0, 0, 0},
    {"rls_forget", CBRNN_EVH_RLS_FORGET, 0, 0, 0, 0, 0},
    {"bptt", CBRNN_EVH_BPTT, 'i', CFG(bptt_k), 1, 1024, 0},
    {"surprise_frames", CBRNN_EVH_SURPRISE_FRAMES, 'i', CFG(surprise_frames), 1, INT_MAX, 0},
    {"surprise_floor", CBRNN_EVH_SURPRISE_FLOOR, 'f', CFG(surprise_floor), FLT_MIN, FLT_MAX, 0},
    {"surprise_max", CBRNN_EVH_SURPRISE_MAX, 'f', CFG(surprise_max), 1, FLT_MAX, 0},
    {"diverge_ratio", CBRNN_EVH_DIVERGE_RATIO, 'f', CFG(diverge_ratio), 1, FLT_MAX, 1},
    {"checkpoint_frames", CBRNN_EVH_CHECKPOINT_FRAMES, 'i', CFG(checkpoint_frames), 1, INT_MAX,
     0},
    {"changes_lost", CBRNN_EVH_CHANGES_LOST, 0, 0, 0, 0, 0},
    {"samples_dropped", CBRNN_EVH_SAMPLES_DROPPED, 0, 0, 0, 0, 0},
};
#define N_HEADER_KEYS ((int)(sizeof header_keys / sizeof *header_keys))

/* Plain key i's value in c, as a double (exact for an int or a float). */
static double plain_value(const cbrnn_engine_config *c, int i)
{
    const char *p = (const char *)c + header_keys[i].off;
    int v;
    float f;
    if (header_keys[i].kind == 'i')
        return memcpy(&v, p, sizeof v), (double)v;
    return memcpy(&f, p, sizeof f), (double)f;
}

/* v as a finite number; trailing blanks allowed. */
static int header_num(const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || end[strspn(end, " \t")] || !isfinite(x))
        return -1;
    *out = x;
    return 0;
}

/* The value of plain key i (v: the text after '=') into c. 0, or -1 with
 * what is expected in why. */
static int plain_parse(cbrnn_engine_config *c, int i, const char *v, char *why, size_t len)
{
    double x;
    const int is_int = header_keys[i].kind == 'i';
    const double lo = header_keys[i].lo, hi = header_keys[i].hi;
    if (header_num(v, &x) || (is_int && x != floor(x)) ||
        !((x >= lo && x <= hi) || (header_keys[i].zero_ok && x == 0))) {
        snprintf(why, len, "'%.40s' is not %s in [%.9g, %.9g]%s", v,
                 is_int ? "a whole number" : "a number", lo, hi,
                 header_keys[i].zero_ok ? " or 0" : "");
        return -1;
    }
    char *at = (char *)c + header_keys[i].off;
    if (is_int) { /* converted only for an int key: a float's range is wider */
        int n = (int)x;
        memcpy(at, &n, sizeof n);
    } else {
        float f = (float)x;
        memcpy(at, &f, sizeof f);
    }
    return 0;
}

/* The value of key i (v: the text after '=', without its newline) into
 * h; the ranges are those an engine config takes (cbrnn_engine.h). 0, or
 * -1 with what is expected in why. */
static int header_value(cbrnn_events_info *h, int i, const char *v, char *why, size_t len)
{
    cbrnn_engine_config *c = &h->ec;
    double x = 0;
    const char *want = NULL;
    if (header_keys[i].kind)
        return plain_parse(c, i, v, why, len);
    switch (header_keys[i].bit) {
    case CBRNN_EVH_MODEL:
        snprintf(h->model, sizeof h->model, "%s", v);
        return 0;
    case CBRNN_EVH_MODEL_SHA256:
        if (strlen(v) != 64 || strspn(v, "0123456789abcdef") != 64)
            want = "64 lowercase hex digits";
        else
            memcpy(h->model_sha256, v, 65);
        break;
    case CBRNN_EVH_RATE:
        if (header_num(v, &x) || x <= 0)
            want = "a sample rate in Hz";
        c->sample_rate = x;
        break;
    case CBRNN_EVH_RULE:
        if (!strcmp(v, cbrnn_rule_name(CBRNN_RULE_SGD)))
            c->rule = CBRNN_RULE_SGD;
        else if (!strcmp(v, cbrnn_rule_name(CBRNN_RULE_RLS)))
            c->rule = CBRNN_RULE_RLS;
        else
            want = "sgd or rls";
        break;
    case CBRNN_EVH_CHANGES_LOST:
    case CBRNN_EVH_SAMPLES_DROPPED:
        if (header_num(v, &x) || x < 0 || x > 1e18 || x != floor(x))
            want = "a count";
        else
            *(header_keys[i].bit == CBRNN_EVH_CHANGES_LOST ? &h->changes_lost
                                                           : &h->samples_dropped) = (long long)x;
        break;
    case CBRNN_EVH_RLS_PRIOR: /* 0: the model's saved state */
        if (strcmp(v, "saved") && (header_num(v, &x) || !(x > 0 && x <= 1e9)))
            want = "saved or a number in (0, 1e9]";
        c->rls_prior = (float)x;
        break;
    default: /* CBRNN_EVH_RLS_FORGET */
        if (header_num(v, &x) || x < 0.9 || x > 1)
            want = "a number in [0.9, 1]";
        c->rls_forget = (float)x;
        break;
    }
    if (want)
        snprintf(why, len, "'%.40s' is not %s", v, want);
    return want ? -1 : 0;
}

/* A '#' line (p: after the '#'): " key=value" with a known key goes into
 * h; anything else is a comment. 0, or -1 with the reason in why (a bad
 * value, a key given twice). */
static int header_line(cbrnn_events_info *h, const char *p, char *why, size_t len)
{
    p += strspn(p, " \t");
    size_t k = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
    if (!k || p[k] != '=')
        return 0;
    for (int i = 0; i < N_HEADER_KEYS; i++) {
        const char *key = header_keys[i].key;
        if (strlen(key) != k || strncmp(p, key, k))
            continue;
        if (h->have & header_keys[i].bit) {
            snprintf(why, len, "%s given twice", key);
            return -1;
        }
        char v[sizeof h->model];
        snprintf(v, sizeof v, "%.*s", (int)strcspn(p + k + 1, "\r\n"), p + k + 1);
        if (header_value(h, i, v, why, len)) {
            char what[160];
            snprintf(what, sizeof what, "%s: %s", key, why);
            snprintf(why, len, "%s", what);
            return -1;
        }
        h->have |= header_keys[i].bit;
        return 0;
    }
    return 0; /* a key of a later version, or a comment */
}

/* The model's SHA-256 as hex: given (the bytes it was loaded from), or
 * the file at path read now. 0 or -1 (msg). */
static int model_hash(const char *path, const char *given, char hex[SHA256_HEX], char *msg,
                      size_t msglen)
{
    if (!given)
        return sha256_file(path, hex, msg, msglen);
    snprintf(hex, SHA256_HEX, "%s", given);
    return 0;
}

/* Appends to buf (len bytes, *n used) like snprintf; *n past len marks
 * an overflow. */
static void put(char *buf, size_t len, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(*n < len ? buf + *n : NULL, *n < len ? len - *n : 0, fmt, ap);
    va_end(ap);
    *n += k > 0 ? (size_t)k : 0;
}

int cbrnn_events_header(char *buf, size_t len, const char *model_path, const char *model_sha256,
                        const cbrnn_engine *e, const cbrnn_engine_config *c, char *msg,
                        size_t msglen)
{
    if (!buf || !model_path || !e || !c) {
        if (msg && msglen)
            snprintf(msg, msglen, "events header: missing argument");
        return CBRNN_ERR_ARG;
    }
    char hex[SHA256_HEX], m[sizeof ((cbrnn_events_info *)0)->model];
    if (model_hash(model_path, model_sha256, hex, msg, msglen))
        return CBRNN_ERR_IO;
    /* the path on one line: control characters (a newline) as '?' */
    snprintf(m, sizeof m, "%s", model_path);
    for (char *q = m; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = '?';
    cbrnn_engine_rule_info ri;
    cbrnn_engine_get_rule(e, &ri);
    size_t n = 0;
    put(buf, len, &n, "# the run these events were recorded from (docs/FORMATS.md, Events file)\n"
                      "# model=%s\n# model_sha256=%s\n# sample_rate=%.17g\n# rule=%s\n",
        m, hex, cbrnn_engine_rate(e), resolved_rule(ri.rule));
    if (ri.rule == CBRNN_RULE_RLS) {
        if (ri.rls_saved)
            put(buf, len, &n, "# rls_prior=saved\n");
        else
            put(buf, len, &n, "# rls_prior=%.9g\n", (double)ri.rls_prior);
        put(buf, len, &n, "# rls_forget=%.9g\n", (double)ri.rls_forget);
    }
    for (int i = 0; i < N_HEADER_KEYS; i++)
        if (header_keys[i].kind) /* %.9g: an int whole, a float to the same bits */
            put(buf, len, &n, "# %s=%.9g\n", header_keys[i].key, plain_value(c, i));
    if (n >= len) {
        if (len)
            buf[0] = 0;
        if (msg && msglen)
            snprintf(msg, msglen, "events header: %zu bytes do not hold it (%zu needed)", len,
                     n + 1);
        return CBRNN_ERR_ARG;
    }
    return (int)n;
}

void cbrnn_events_apply(cbrnn_engine_config *c, const cbrnn_events_info *h, unsigned keep)
{
    if (!c || !h)
        return;
    const unsigned use = h->have & ~keep;
    const cbrnn_engine_config *f = &h->ec;
    if (use & CBRNN_EVH_RULE)
        c->rule = f->rule;
    if (use & CBRNN_EVH_RLS_PRIOR)
        c->rls_prior = f->rls_prior;
    if (use & CBRNN_EVH_RLS_FORGET)
        c->rls_forget = f->rls_forget;
    for (int i = 0; i < N_HEADER_KEYS; i++) /* ints and floats: 4 bytes either way */
        if (header_keys[i].kind && (use & header_keys[i].bit))
            memcpy((char *)c + header_keys[i].off, (const char *)f + header_keys[i].off,
                   header_keys[i].kind == 'i' ? sizeof(int) : sizeof(float));
}

/* One difference into msg: "NAME HERE here, RECORDED recorded". */
static void differs(char *msg, size_t len, size_t *n, int *count, const char *name,
                    const char *here, const char *rec)
{
    put(msg, len, n, "%s%s %s here, %s recorded", *count ? "; " : "", name, here, rec);
    ++*count;
}

static void differs_num(char *msg, size_t len, size_t *n, int *count, const char *name,
                        double here, double rec)
{
    char a[32], b[32];
    snprintf(a, sizeof a, "%.9g", here);
    snprintf(b, sizeof b, "%.9g", rec);
    differs(msg, len, n, count, name, a, b);
}

int cbrnn_events_compare(char *msg, size_t msglen, const cbrnn_events_info *h,
                         const cbrnn_engine *e, const cbrnn_engine_config *c)
{
    char scratch[1];
    if (!msg || !msglen) {
        msg = scratch;
        msglen = 1;
    }
    msg[0] = 0;
    if (!h || !e || !c)
        return 0;
    const cbrnn_engine_config *f = &h->ec;
    const unsigned have = h->have;
    size_t n = 0;
    int count = 0;
    if ((have & CBRNN_EVH_RATE) && cbrnn_engine_rate(e) != f->sample_rate)
        differs_num(msg, msglen, &n, &count, "sample rate", cbrnn_engine_rate(e), f->sample_rate);
    cbrnn_engine_rule_info ri;
    cbrnn_engine_get_rule(e, &ri);
    const int rls = ri.rule == CBRNN_RULE_RLS;
    if ((have & CBRNN_EVH_RULE) && ri.rule != f->rule)
        differs(msg, msglen, &n, &count, "rule", resolved_rule(ri.rule),
                resolved_rule(f->rule));
    else if (rls && (have & CBRNN_EVH_RULE)) {
        if ((have & CBRNN_EVH_RLS_PRIOR) &&
            (ri.rls_saved != !(f->rls_prior > 0) || (!ri.rls_saved && ri.rls_prior != f->rls_prior))) {
            char a[32], b[32];
            snprintf(a, sizeof a, ri.rls_saved ? "saved" : "%.9g", (double)ri.rls_prior);
            snprintf(b, sizeof b, f->rls_prior > 0 ? "%.9g" : "saved", (double)f->rls_prior);
            differs(msg, msglen, &n, &count, "rls prior", a, b);
        }
        if ((have & CBRNN_EVH_RLS_FORGET) && ri.rls_forget != f->rls_forget)
            differs_num(msg, msglen, &n, &count, "rls forget", ri.rls_forget, f->rls_forget);
    }
    /* the BPTT window matters to the loop wiring only */
    const int loop = cbrnn_engine_model(e)->cfg.wiring == CBRNN_WIRING_LOOP;
    for (int i = 0; i < N_HEADER_KEYS; i++) {
        unsigned bit = header_keys[i].bit;
        if (header_keys[i].kind && (have & bit) && (loop || bit != CBRNN_EVH_BPTT) &&
            plain_value(c, i) != plain_value(f, i))
            differs_num(msg, msglen, &n, &count, header_keys[i].key, plain_value(c, i),
                        plain_value(f, i));
    }
    return count;
}

int cbrnn_events_check_model(const cbrnn_events_info *h, const char *events_path,
                             const char *model_path, const char *model_sha256, char *msg,
                             size_t msglen)
{
    if (!h || !events_path || !model_path) {
        snprintf(msg, msglen, "events check: missing argument");
        return CBRNN_ERR_ARG;
    }
    if (!(h->have & CBRNN_EVH_MODEL_SHA256)) {
        snprintf(msg, msglen, "%s names no model (written before events files did): the model "
                 "and the engine options it was recorded with cannot be checked", events_path);
        return 2;
    }
    char hex[SHA256_HEX];
    if (model_hash(model_path, model_sha256, hex, msg, msglen))
        return CBRNN_ERR_IO;
    if (!strcmp(hex, h->model_sha256))
        return 0;
    /* 16 hex digits tell two files apart; the whole digests are in the
     * events file and in `sha256sum` */
    snprintf(msg, msglen, "%s is not the model %s was recorded with: its SHA-256 is %.16s..., "
             "the recorded model's (%s) %.16s...", model_path, events_path, hex,
             h->have & CBRNN_EVH_MODEL ? h->model : "path not recorded", h->model_sha256);
    return 1;
}

/* 1 (msg) when the file says the live run lost control changes or
 * recording samples (its changes_lost= / samples_dropped= lines): a
 * replay would silently differ from the live run, so it is refused. */
static int incomplete(const cbrnn_events_info *h, const char *path, char *msg, size_t msglen)
{
    if (!h->changes_lost && !h->samples_dropped)
        return 0;
    char what[160];
    if (h->changes_lost && h->samples_dropped)
        snprintf(what, sizeof what, "%lld control changes and %lld recorded samples were lost",
                 h->changes_lost, h->samples_dropped);
    else if (h->changes_lost)
        snprintf(what, sizeof what, "%lld control change%s applied live %s not in it",
                 h->changes_lost, h->changes_lost == 1 ? "" : "s",
                 h->changes_lost == 1 ? "is" : "are");
    else
        snprintf(what, sizeof what, "the recording of that run lacks %lld sample%s (dropped)",
                 h->samples_dropped, h->samples_dropped == 1 ? "" : "s");
    snprintf(msg, msglen, "%s: incomplete: %s, so a replay cannot give the live run's "
             "numbers; refused (delete its changes_lost=/samples_dropped= lines to replay it "
             "anyway: it differs from the first loss on)", path, what);
    return 1;
}

int cbrnn_event_list_load(cbrnn_event_list *l, const char *path, char *msg, size_t msglen)
{
    memset(l, 0, sizeof *l);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, msglen, "%s: cannot open: %s", path, strerror(errno));
        return CBRNN_ERR_IO;
    }
    char *line = NULL;
    size_t line_cap = 0, cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;
    while ((got = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        const char *p = line + strspn(line, " \t");
        if (*p == '#') {
            char why[160];
            if (header_line(&l->info, p + 1, why, sizeof why)) {
                snprintf(msg, msglen, "%s:%ld: %s", path, lineno, why);
                rc = CBRNN_ERR_FORMAT;
                break;
            }
            continue;
        }
        if (got > EVENT_LINE_MAX) {
            snprintf(msg, msglen, "%s:%ld: line too long", path, lineno);
            rc = CBRNN_ERR_FORMAT;
            break;
        }
        cbrnn_event ev;
        int r = cbrnn_event_csv_parse(&ev, line);
        if (r == 0)
            continue;
        if (r < 0) {
            line[strcspn(line, "\r\n")] = 0;
            snprintf(msg, msglen, "%s:%ld: '%.60s' is not an event (expected frame,event,value "
                     "with event learn, lr, momentum, decay, reset, snapshot, mark, label, gate, "
                     "delay, gain, pitch or listen)",
                     path, lineno, line);
            rc = CBRNN_ERR_FORMAT;
            break;
        }
        float v = ev.cmd.f;
        int k = ev.cmd.kind;
        if (((k == CBRNN_CMD_LR && v > CBRNN_LR_MAX) || (k == CBRNN_CMD_DECAY && v > CBRNN_DECAY_MAX) ||
             ((k == CBRNN_CMD_LR || k == CBRNN_CMD_DECAY || k == CBRNN_CMD_MOMENTUM) && v < 0) ||
             (k == CBRNN_CMD_MOMENTUM && v > CBRNN_MOMENTUM_MAX) ||
             (k == CBRNN_CMD_GATE && v != 0 && (v < CBRNN_GATE_DB_MIN || v >= 0)) ||
             ((k == CBRNN_CMD_MARK || k == CBRNN_CMD_SNAPSHOT) && ev.cmd.i < 0) ||
             ((k == CBRNN_CMD_DELAY || k == CBRNN_CMD_GAIN || k == CBRNN_CMD_PITCH ||
               k == CBRNN_CMD_LEARN || k == CBRNN_CMD_LISTEN) &&
              cbrnn_engine_check_command(&ev.cmd)))) {
            snprintf(msg, msglen, "%s:%ld: value out of range", path, lineno);
            rc = CBRNN_ERR_FORMAT;
            break;
        }
        if (l->n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            cbrnn_event *ne = realloc(l->ev, nc * sizeof *ne);
            if (!ne) {
                snprintf(msg, msglen, "%s: out of memory", path);
                rc = CBRNN_ERR_NOMEM;
                break;
            }
            l->ev = ne;
            cap = nc;
        }
        l->ev[l->n++] = ev;
    }
    if (!rc && (ferror(f) || !feof(f))) { /* getline: a read error or no memory */
        snprintf(msg, msglen, "%s: read error", path);
        rc = CBRNN_ERR_IO;
    }
    free(line);
    fclose(f);
    if (rc) {
        cbrnn_event_list_free(l);
        return rc;
    }
    if (incomplete(&l->info, path, msg, msglen)) {
        cbrnn_event_list_free(l);
        return CBRNN_ERR_FORMAT;
    }
    if (cbrnn_events_sort(l->ev, l->n)) { /* hand-made files may be out of order */
        snprintf(msg, msglen, "%s: out of memory", path);
        cbrnn_event_list_free(l);
        return CBRNN_ERR_NOMEM;
    }
    return 0;
}

void cbrnn_event_list_free(cbrnn_event_list *l)
{
    if (!l)
        return;
    free(l->ev);
    memset(l, 0, sizeof *l);
}

long cbrnn_event_list_feed(cbrnn_event_list *l, cbrnn_engine *e, int64_t frames, int64_t samples)
{
    if (!l || !e)
        return CBRNN_ERR_ARG;
    while (l->next < l->n && l->ev[l->next].frame <= frames) {
        const cbrnn_event *ev = &l->ev[l->next];
        if (ev->cmd.kind != CBRNN_CMD_SNAPSHOT) {
            int rc = cbrnn_engine_send(e, &ev->cmd);
            if (rc == CBRNN_ERR_FULL)
                return rc;
        }
        l->next++;
    }
    if (l->next == l->n)
        return -1;
    /* Frame k - 1 completes with sample (k - 1) * hop + win - 1 (0-based)
     * of the stream: everything up to it may be fed, so that an event of
     * frame k applies on the next sample, where a live engine applies
     * commands that act on samples (cbrnn_engine.h). */
    int64_t k = l->ev[l->next].frame;
    int64_t due = k == 0 ? 0 : (k - 1) * cbrnn_engine_hop(e) + cbrnn_engine_win(e);
    /* (due <= samples only if the stream was restarted under the list:
     * then feed sample by sample until the frame count catches up) */
    return due > samples ? (long)(due - samples) : 1;
}

int cbrnn_events_from_config(cbrnn_event *out, int max, const cbrnn_engine_config *c)
{
    const cbrnn_event init[] = {{0, {CBRNN_CMD_LEARN, c->learn != 0, 0}},
                                {0, {CBRNN_CMD_LR, 0, c->lr}},
                                {0, {CBRNN_CMD_MOMENTUM, 0, c->momentum}},
                                {0, {CBRNN_CMD_DECAY, 0, c->decay}},
                                {0, {CBRNN_CMD_GATE, 0, c->gate_db}},
                                {0, {CBRNN_CMD_DELAY, 0, c->perturb_delay_ms}},
                                {0, {CBRNN_CMD_GAIN, 0, c->perturb_gain_db}},
                                {0, {CBRNN_CMD_LISTEN, c->listen != 0, 0}},
                                {0, {CBRNN_CMD_PITCH, 0, c->perturb_pitch}}};
    /* the perturbation's settings only for an engine that has one */
    const int n = c->perturb == 2 ? 9 : c->perturb ? 8 : 5;
    for (int i = 0; i < n && i < max; i++)
        out[i] = init[i];
    return n;
}

void cbrnn_host_size_event_ring(cbrnn_engine_config *c, size_t n)
{
    const size_t most = 65536;
    size_t want = n > most - 64 ? most : n + 64; /* the frame-0 settings and slack */
    if (c && (size_t)c->event_capacity < want)
        c->event_capacity = (int)want;
    /* the command ring too: a replay (cbrnn_event_list_feed) sends every
     * event of a frame before the frame runs, and more than the default
     * 256 in one frame were refused ("too many events in one frame") */
    if (c && (size_t)c->command_capacity < want)
        c->command_capacity = (int)want;
}

void cbrnn_config_apply_event(cbrnn_engine_config *c, const cbrnn_event *ev)
{
    if (!c || !ev)
        return;
    const cbrnn_engine_cmd *k = &ev->cmd;
    switch (k->kind) {
    case CBRNN_CMD_LEARN: c->learn = k->i != 0; break;
    case CBRNN_CMD_LR: c->lr = k->f; break;
    case CBRNN_CMD_MOMENTUM: c->momentum = k->f; break;
    case CBRNN_CMD_DECAY: c->decay = k->f; break;
    case CBRNN_CMD_GATE: c->gate_db = k->f; break;
    case CBRNN_CMD_DELAY: c->perturb_delay_ms = k->f; break;
    case CBRNN_CMD_GAIN: c->perturb_gain_db = k->f; break;
    case CBRNN_CMD_PITCH: c->perturb_pitch = k->f; break;
    case CBRNN_CMD_LISTEN: c->listen = k->i != 0; break;
    default: break; /* reset, marks, labels, snapshots: no setting */
    }
}

const char *cbrnn_marker_csv_header(void)
{
    return "marker,name,seconds\n";
}

int cbrnn_marker_csv_row(char *buf, int len, int id, const char *name, double seconds)
{
    if (!buf || len <= 0)
        return 0;
    /* The row stays well formed whatever the name's length: the closing
     * quote, the seconds and the newline are kept room for, and a name
     * too long for buf is cut (never in the middle of a doubled quote). */
    char tail[64];
    int tn = snprintf(tail, sizeof tail, "\",%.3f\n", seconds);
    int n = snprintf(buf, (size_t)len, "%d,\"", id);
    if (n + tn >= len) {
        buf[0] = 0;
        return 0;
    }
    for (const char *c = name ? name : ""; *c; c++) {
        int need = *c == '"' ? 2 : 1;
        if (n + need + tn >= len)
            break;
        if (*c == '"')
            buf[n++] = '"';
        buf[n++] = *c;
    }
    memcpy(buf + n, tail, (size_t)tn + 1);
    return n + tn;
}

void cbrnn_events_perturb_needs(const cbrnn_event *ev, size_t n, int *perturb, float *max_delay_ms)
{
    int need = 0;
    float md = 0;
    for (size_t i = 0; i < n; i++) {
        int k = ev[i].cmd.kind;
        if (k == CBRNN_CMD_PITCH)
            need = 2;
        else if ((k == CBRNN_CMD_DELAY || k == CBRNN_CMD_GAIN || k == CBRNN_CMD_LISTEN) && !need)
            need = 1;
        if (k == CBRNN_CMD_DELAY && ev[i].cmd.f > md)
            md = ev[i].cmd.f;
    }
    if (perturb)
        *perturb = need;
    if (max_delay_ms)
        *max_delay_ms = md;
}
