/* host_schedule.c: trial schedules (cbrnn_control.h; the format is in
 * docs/FORMATS.md): a text file of timed control actions, with repeats,
 * compiled into events at frames for one engine. Both hosts load it the
 * same way and hand it to cbrnn_engine_set_schedule, so a schedule acts
 * on the same frames live and offline. Never prints; not real-time. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_control.h"
#include "host_events.h"

#define MAX_TRIALS 100000
#define MAX_NAME 200

/* One action of the file, before repeats: at `sec` seconds (or `frame`
 * frames when frame >= 0) into the trial. */
struct action {
    double sec;
    long long frame;
    cbrnn_engine_cmd cmd;
    char name[MAX_NAME]; /* mark/phase: the marker's name */
};

struct parsed {
    struct action *a;
    size_t n, cap;
    long trials;
    double every_sec;
    long long every_frame; /* >= 0 when "every" was given in frames */
};

/* "12.5", "12.5s" (seconds) or "300f" (frames) into *sec or *frame. */
static int parse_time(const char *tok, double *sec, long long *frame)
{
    char *end;
    errno = 0;
    double v = strtod(tok, &end);
    if (errno || end == tok || !isfinite(v) || v < 0)
        return -1;
    if (*end == 'f' && end[1] == 0) {
        if (v != floor(v) || v > (double)CBRNN_MAX_EVENT_FRAME)
            return -1;
        *frame = (long long)v;
        *sec = 0;
        return 0;
    }
    if (*end == 's')
        end++;
    if (*end || v > 1e9)
        return -1;
    *sec = v;
    *frame = -1;
    return 0;
}

static int add_action(struct parsed *p, const struct action *a)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? 2 * p->cap : 32;
        struct action *na = realloc(p->a, nc * sizeof *na);
        if (!na)
            return -1;
        p->a = na;
        p->cap = nc;
    }
    p->a[p->n++] = *a;
    return 0;
}

/* Cuts line into at most three blank-separated words (tok) and, after a
 * third, the rest of the line trimmed (*rest; NULL when empty): a name may
 * hold spaces. The number of words. */
static int split_words(char *line, char *tok[3], char **rest)
{
    char *save = NULL, *t;
    int nt = 0;
    *rest = NULL;
    while (nt < 3 && (t = strtok_r(nt ? NULL : line, " \t\r\n", &save)))
        tok[nt++] = t;
    if (nt == 3) {
        char *r = strtok_r(NULL, "\r\n", &save);
        while (r && isspace((unsigned char)*r))
            r++;
        size_t l = r ? strlen(r) : 0;
        while (l && isspace((unsigned char)r[l - 1]))
            r[--l] = 0;
        *rest = r && *r ? r : NULL;
    }
    return nt;
}

/* "repeat N every DURATION" (before any action; "repeat 1" alone too). 0,
 * or -1 with the reason in why. */
static int parse_repeat(struct parsed *p, char *const tok[3], const char *rest, const char **why)
{
    char *end;
    long n = tok[1] ? strtol(tok[1], &end, 10) : 0;
    if (!tok[1] || *end || n < 1 || n > MAX_TRIALS || p->n) {
        *why = p->n ? "'repeat' must come before the first action"
                    : "expected 'repeat N every DURATION' with N in 1..100000";
        return -1;
    }
    p->trials = n;
    if (!tok[2] && n == 1)
        return 0;
    const char *every = rest;
    while (every && isspace((unsigned char)*every))
        every++;
    if (!tok[2] || strcmp(tok[2], "every") || !every ||
        parse_time(every, &p->every_sec, &p->every_frame) ||
        (p->every_frame < 0 ? p->every_sec <= 0 : p->every_frame <= 0)) {
        *why = "expected 'repeat N every DURATION' (DURATION > 0, e.g. 12s or 1200f)";
        return -1;
    }
    return 0;
}

/* The actions a line may name, and what value each takes: 'i' 0 or 1,
 * 'f' a number, 's' a marker name, 'p' a phase name, 'r' a perturbation
 * value with an optional ramp, 0 none. */
static const struct {
    const char *name;
    int kind, value;
} acts[] = {{"learn", CBRNN_CMD_LEARN, 'i'},    {"lr", CBRNN_CMD_LR, 'f'},
            {"momentum", CBRNN_CMD_MOMENTUM, 'f'}, {"decay", CBRNN_CMD_DECAY, 'f'},
            {"reset", CBRNN_CMD_RESET, 0},      {"mark", CBRNN_CMD_MARK, 's'},
            {"phase", CBRNN_CMD_MARK, 'p'},     {"listen", CBRNN_CMD_LISTEN, 'i'},
            {"delay", CBRNN_CMD_DELAY, 'r'},    {"gain", CBRNN_CMD_GAIN, 'r'},
            {"pitch", CBRNN_CMD_PITCH, 'r'}};

/* The number val of a learn, lr, momentum or decay action (value kind
 * 'i' or 'f') into a's command, in its range; no words after it. 0, or
 * -1 with the reason in why. */
static int action_number(struct action *a, int value, const char *val, const char *rest,
                         const char **why)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    int bad = errno || *end || rest || !isfinite(v) || v < 0;
    /* converted only once in range: a double past int's or float's range
     * does not convert (undefined behaviour; the fuzzer's 2.2e42) */
    if (value == 'i') {
        bad |= v != 0 && v != 1;
        if (!bad)
            a->cmd.i = (int)v;
    } else {
        double hi = a->cmd.kind == CBRNN_CMD_LR ? CBRNN_LR_MAX
                    : a->cmd.kind == CBRNN_CMD_MOMENTUM ? CBRNN_MOMENTUM_MAX
                                                       : CBRNN_DECAY_MAX;
        bad |= v > hi;
        if (!bad)
            a->cmd.f = (float)v;
    }
    if (bad) {
        *why = value == 'i' ? "learn and listen take 0 or 1"
               : a->cmd.kind == CBRNN_CMD_LR ? "lr takes a number in [0, 10]"
               : a->cmd.kind == CBRNN_CMD_MOMENTUM ? "momentum takes a number in [0, 1)"
                                                   : "decay takes a number in [0, 1000]";
        return -1;
    }
    return 0;
}

/* The value of "delay MS", "gain DB" or "pitch SEMITONES" into a's
 * command, with an optional "ramp DURATION" after it (seconds: 0.2 or
 * 0.2s; or 200ms). 0, or -1 with the reason in why. */
static int perturb_value(struct action *a, const char *val, const char *rest, const char **why)
{
    char *end, buf[64] = "";
    errno = 0;
    double v = strtod(val, &end);
    double ramp = 0;
    int bad = errno || *end || !isfinite(v);
    if (!bad && rest) {
        char kw[16], d[32], extra[2];
        int n = sscanf(rest, "%15s %31s %1s", kw, d, extra);
        bad = n != 2 || strcmp(kw, "ramp");
        if (!bad) {
            snprintf(buf, sizeof buf, "%s", d);
            ramp = strtod(buf, &end);
            if (!strcmp(end, "ms"))
                ramp /= 1000.0;
            else if (*end == 's' && !end[1])
                end++;
            bad = end == buf || (*end && strcmp(end, "ms")) || !isfinite(ramp) || ramp < 0 ||
                  ramp > 1e6;
        }
    }
    bad |= fabs(v) > 1e30; /* past float's range it would not convert */
    a->cmd.f = bad ? 0.0f : (float)v;
    a->cmd.i = bad ? 0 : (int)lround(ramp * 1000.0);
    if (bad || cbrnn_engine_check_command(&a->cmd)) {
        *why = a->cmd.kind == CBRNN_CMD_DELAY  ? "delay takes ms in [0, 2000] [ramp DURATION]"
               : a->cmd.kind == CBRNN_CMD_GAIN ? "gain takes dB in [-60, 20] [ramp DURATION]"
                                               : "pitch takes semitones in [-12, 12] "
                                                 "[ramp DURATION]";
        return -1;
    }
    return 0;
}

/* "AT ACTION [VALUE]": one action at its time. 0, or -1 with the reason in
 * why. */
static int parse_action(struct parsed *p, char *const tok[3], const char *rest, const char **why)
{
    struct action a;
    memset(&a, 0, sizeof a);
    if (!tok[1] || parse_time(tok[0], &a.sec, &a.frame)) {
        *why = "expected 'TIME ACTION [VALUE]' with TIME like 1.5, 1.5s or 150f";
        return -1;
    }
    int k = -1;
    for (int i = 0; i < (int)(sizeof acts / sizeof *acts); i++)
        if (!strcmp(tok[1], acts[i].name))
            k = i;
    if (k < 0) {
        *why = "unknown action (expected learn, lr, momentum, decay, reset, mark, phase, "
               "delay, gain, pitch or listen)";
        return -1;
    }
    a.cmd.kind = acts[k].kind;
    const char *val = tok[2];
    if (!acts[k].value) {
        if (val) {
            *why = "reset takes no value";
            return -1;
        }
    } else if (!val) {
        *why = "this action needs a value";
        return -1;
    } else if (acts[k].value == 's' || acts[k].value == 'p') {
        char name[MAX_NAME];
        snprintf(name, sizeof name, "%s%s%s%s", acts[k].value == 'p' ? "phase:" : "", val,
                 rest ? " " : "", rest ? rest : "");
        snprintf(a.name, sizeof a.name, "%s", name);
    } else if (acts[k].value == 'r') {
        if (perturb_value(&a, val, rest, why))
            return -1;
    } else if (action_number(&a, acts[k].value, val, rest, why)) {
        return -1;
    }
    return add_action(p, &a) ? (*why = "out of memory", -1) : 0;
}

/* One line "AT ACTION [VALUE]" or "repeat N every DURATION"; 0, or -1 with
 * the reason in why. */
static int parse_line(struct parsed *p, char *line, const char **why)
{
    char *tok[3] = {NULL, NULL, NULL}, *rest;
    int nt = split_words(line, tok, &rest);
    if (!nt)
        return 0;
    if (!strcmp(tok[0], "repeat"))
        return parse_repeat(p, tok, rest, why);
    return parse_action(p, tok, rest, why);
}

/* The parsed actions, repeated, as events at frames, and the markers. */
static int compile(cbrnn_schedule *s, const struct parsed *p, double rate, int hop)
{
    const double fps = rate / (double)hop;
    long long every = p->every_frame >= 0 ? p->every_frame : llround(p->every_sec * fps);
    size_t n_marks_per = 0;
    for (size_t i = 0; i < p->n; i++)
        n_marks_per += p->a[i].cmd.kind == CBRNN_CMD_MARK;
    size_t trial_marks = p->trials > 1 ? 1 : 0;
    size_t n_ev = (size_t)p->trials * (p->n + trial_marks);
    size_t n_marks = (size_t)p->trials * (n_marks_per + trial_marks);
    if (n_ev > 10000000 || n_marks > 0x7fffffff - (size_t)s->first_mark)
        return CBRNN_ERR_ARG;
    /* the last trial's start, in frames, stays within a time's own limit
     * (1e15 frames): (trials - 1) x every could pass LLONG_MAX */
    if (p->trials > 1 && every > CBRNN_MAX_EVENT_FRAME / (p->trials - 1))
        return CBRNN_ERR_FORMAT;
    s->events.ev = calloc(n_ev ? n_ev : 1, sizeof *s->events.ev);
    s->mark_names = calloc(n_marks ? n_marks : 1, sizeof *s->mark_names);
    s->mark_seconds = calloc(n_marks ? n_marks : 1, sizeof *s->mark_seconds);
    if (!s->events.ev || !s->mark_names || !s->mark_seconds)
        return CBRNN_ERR_NOMEM;
    size_t e = 0;
    int m = 0;
    for (long t = 0; t < p->trials; t++) {
        long long base = (long long)t * every;
        for (size_t i = 0; i < p->n + trial_marks; i++) {
            const struct action *a = i < trial_marks ? NULL : &p->a[i - trial_marks];
            cbrnn_event *ev = &s->events.ev[e++];
            ev->frame = base + (!a ? 0 : a->frame >= 0 ? a->frame : llround(a->sec * fps));
            ev->cmd = a ? a->cmd : (cbrnn_engine_cmd){CBRNN_CMD_MARK, 0, 0.0f};
            if (ev->cmd.kind != CBRNN_CMD_MARK)
                continue;
            char name[MAX_NAME + 16];
            if (a)
                snprintf(name, sizeof name, "%s", a->name);
            else
                snprintf(name, sizeof name, "trial:%ld", t + 1);
            ev->cmd.i = s->first_mark + m;
            s->mark_seconds[m] = (double)ev->frame / fps;
            if (!(s->mark_names[m] = strdup(name)))
                return CBRNN_ERR_NOMEM;
            s->n_marks = ++m;
        }
    }
    s->events.n = e;
    /* by frame; same-frame actions keep the file's order */
    return cbrnn_events_sort(s->events.ev, e);
}

int cbrnn_schedule_load(cbrnn_schedule *s, const char *path, double rate, int hop,
                        int first_mark, char *msg, size_t msglen)
{
    memset(s, 0, sizeof *s);
    s->first_mark = first_mark;
    if (!(rate > 0) || hop < 1 || first_mark < 0) {
        snprintf(msg, msglen, "%s: bad rate or hop", path);
        return CBRNN_ERR_ARG;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, msglen, "%s: cannot open: %s", path, strerror(errno));
        return CBRNN_ERR_IO;
    }
    struct parsed p = {NULL, 0, 0, 1, 0, -1};
    char line[512];
    long lineno = 0;
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        const char *why = NULL;
        if (!strchr(line, '\n') && !feof(f) && !hash)
            why = "line too long";
        else if (parse_line(&p, line, &why))
            why = why ? why : "not understood";
        if (why) {
            snprintf(msg, msglen, "%s:%ld: %s", path, lineno, why);
            rc = CBRNN_ERR_FORMAT;
        }
    }
    fclose(f);
    if (!rc && !p.n) {
        snprintf(msg, msglen, "%s: no actions", path);
        rc = CBRNN_ERR_FORMAT;
    }
    if (!rc && (rc = compile(s, &p, rate, hop)))
        snprintf(msg, msglen, "%s: %s", path,
                 rc == CBRNN_ERR_NOMEM   ? "out of memory"
                 : rc == CBRNN_ERR_FORMAT ? "the last trial starts past frame 1e15 (repeat N "
                                           "every D: N x D too long)"
                                         : "too many events");
    s->trials = (int)p.trials;
    free(p.a);
    if (rc)
        cbrnn_schedule_free(s);
    return rc;
}

void cbrnn_schedule_free(cbrnn_schedule *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_marks; i++)
        free(s->mark_names[i]);
    free(s->mark_names);
    free(s->mark_seconds);
    cbrnn_event_list_free(&s->events);
    memset(s, 0, sizeof *s);
}
