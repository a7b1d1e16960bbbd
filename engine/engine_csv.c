/* engine_csv.c: the per-frame log's one CSV format, shared by `cbrnn run`
 * (frames.csv) and `cbrnn-jack --log`, so that a live log and its offline
 * replay compare column by column; and the events file (applied control
 * changes with their frame), written live and read back by `cbrnn run
 * --events`. Formats into caller buffers only: never prints, never
 * allocates (the plugin's log thread calls it). */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_perturb.h"

const char *cbrnn_record_csv_header(void)
{
    return "frame,time,loss,persistence_loss,surprise,learning,lr,marker,label,flags\n";
}

/* %.9g keeps every float bit (9 significant digits round-trip a float),
 * so live and offline logs can be compared to any tolerance. */
static int fmt_float(char *buf, int len, float v)
{
    if (isnan(v))
        return snprintf(buf, (size_t)len, ",");
    return snprintf(buf, (size_t)len, ",%.9g", (double)v);
}

int cbrnn_record_csv_row(char *buf, int len, const cbrnn_record *r)
{
    if (!buf || len <= 0 || !r)
        return 0;
    int n = snprintf(buf, (size_t)len, "%lld,%.6f", (long long)r->frame, r->time);
    float f[3] = {r->loss, r->persistence_loss, r->surprise};
    for (int i = 0; i < 3 && n < len; i++)
        n += fmt_float(buf + n, len - n, f[i]);
    if (n < len)
        n += snprintf(buf + n, (size_t)(len - n), ",%d,%.9g,", (int)r->learning, (double)r->lr);
    /* Several markers in one frame: their ids joined by ';' (a record
     * keeps CBRNN_REC_MAX_MARKERS; the events file has all of them). */
    int nm = r->n_markers < CBRNN_REC_MAX_MARKERS ? r->n_markers : CBRNN_REC_MAX_MARKERS;
    if (n < len && nm <= 0 && r->marker >= 0)
        n += snprintf(buf + n, (size_t)(len - n), "%d", (int)r->marker);
    for (int i = 0; i < nm && n < len; i++)
        n += snprintf(buf + n, (size_t)(len - n), "%s%d", i ? ";" : "", (int)r->markers[i]);
    if (n < len)
        n += snprintf(buf + n, (size_t)(len - n), ",");
    if (n < len && r->label >= 0)
        n += snprintf(buf + n, (size_t)(len - n), "%d", (int)r->label);
    if (n < len)
        n += snprintf(buf + n, (size_t)(len - n), ",%u\n", (unsigned)r->flags);
    return n < len ? n : len - 1;
}

static const char *const event_names[] = {"learn", "lr", "momentum", "decay", "reset",
                                          "snapshot", "mark", "label", "gate", "delay",
                                          "gain", "pitch", "listen"};
#define N_EVENT_NAMES ((int)(sizeof event_names / sizeof *event_names))

const char *cbrnn_event_csv_header(void)
{
    return "frame,event,value\n";
}

int cbrnn_event_csv_row(char *buf, int len, const cbrnn_event *ev)
{
    if (!buf || len <= 0)
        return 0;
    buf[0] = 0; /* a refused event leaves an empty string, never garbage */
    if (!ev || ev->cmd.kind < 0 || ev->cmd.kind >= N_EVENT_NAMES)
        return 0;
    const char *name = event_names[ev->cmd.kind];
    int n;
    switch (ev->cmd.kind) {
    case CBRNN_CMD_LR:
    case CBRNN_CMD_MOMENTUM:
    case CBRNN_CMD_DECAY:
    case CBRNN_CMD_GATE:
        n = snprintf(buf, (size_t)len, "%lld,%s,%.9g\n", (long long)ev->frame, name,
                     (double)ev->cmd.f);
        break;
    case CBRNN_CMD_DELAY:
    case CBRNN_CMD_GAIN:
    case CBRNN_CMD_PITCH: /* the value, and ":R" for a ramp of R ms */
        n = snprintf(buf, (size_t)len, ev->cmd.i ? "%lld,%s,%.9g:%d\n" : "%lld,%s,%.9g\n",
                     (long long)ev->frame, name, (double)ev->cmd.f, ev->cmd.i);
        break;
    case CBRNN_CMD_RESET:
        n = snprintf(buf, (size_t)len, "%lld,%s,\n", (long long)ev->frame, name);
        break;
    default:
        n = snprintf(buf, (size_t)len, "%lld,%s,%d\n", (long long)ev->frame, name, ev->cmd.i);
        break;
    }
    return n < len ? n : len - 1;
}

/* A value strtof just read (errno as it left it) is refused: nothing
 * read, not finite, or out of range; except underflow, whose result (a
 * subnormal, or zero) is exactly the float the hosts applied and wrote
 * (an lr of 1e-40 is recorded as 9.9999461e-41, which reads back to the
 * same bits with ERANGE set). */
static int bad_float(float v, int nothing_read)
{
    if (nothing_read || !isfinite(v))
        return 1;
    return errno && !(errno == ERANGE && fabsf(v) < FLT_MIN);
}

int cbrnn_event_csv_parse(cbrnn_event *ev, const char *line)
{
    if (!ev || !line)
        return CBRNN_ERR_ARG;
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p || *p == '\n' || *p == '\r' || *p == '#' || !strncmp(p, "frame,", 6))
        return 0;
    char *end;
    errno = 0;
    long long frame = strtoll(p, &end, 10);
    /* the fuzzer's 4.3e17 overflowed frame x hop in a host */
    if (errno || end == p || *end != ',' || frame < 0 || frame > CBRNN_MAX_EVENT_FRAME)
        return CBRNN_ERR_FORMAT;
    p = end + 1;
    int kind = -1;
    for (int k = 0; k < N_EVENT_NAMES; k++) {
        size_t l = strlen(event_names[k]);
        if (!strncmp(p, event_names[k], l) && p[l] == ',') {
            kind = k;
            p += l + 1;
            break;
        }
    }
    if (kind < 0)
        return CBRNN_ERR_FORMAT;
    cbrnn_engine_cmd c = {kind, 0, 0.0f};
    if (kind == CBRNN_CMD_LR || kind == CBRNN_CMD_MOMENTUM || kind == CBRNN_CMD_DECAY ||
        kind == CBRNN_CMD_GATE) {
        float v = strtof(p, &end);
        if (bad_float(v, end == p))
            return CBRNN_ERR_FORMAT;
        c.f = v;
    } else if (kind >= CBRNN_CMD_DELAY && kind <= CBRNN_CMD_PITCH) {
        float v = strtof(p, &end);
        if (bad_float(v, end == p))
            return CBRNN_ERR_FORMAT;
        c.f = v;
        if (*end == ':') {
            const char *r = end + 1;
            errno = 0;
            long ramp = strtol(r, &end, 10);
            if (errno || end == r || ramp < 0 || ramp > CBRNN_PERTURB_RAMP_MAX_MS)
                return CBRNN_ERR_FORMAT;
            c.i = (int)ramp;
        }
    } else if (kind != CBRNN_CMD_RESET) {
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < -1 || v > 0x7fffffffL)
            return CBRNN_ERR_FORMAT;
        c.i = (int)v;
    } else {
        end = (char *)p;
    }
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    if (*end)
        return CBRNN_ERR_FORMAT;
    ev->frame = frame;
    ev->cmd = c;
    return 1;
}
