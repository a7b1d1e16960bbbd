/* host_events.c: control changes replayed at their frames (see
 * cbrnn_control.h): a recorded live run's events file read back and fed to
 * an engine so that every command takes effect before the same frame as it
 * did live. Never prints; never on an audio thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_control.h"

static int by_frame(const void *a, const void *b)
{
    const cbrnn_event *x = a, *y = b;
    return x->frame < y->frame ? -1 : x->frame > y->frame;
}

int cbrnn_event_list_load(cbrnn_event_list *l, const char *path, char *msg, size_t msglen)
{
    memset(l, 0, sizeof *l);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, msglen, "%s: cannot open: %s", path, strerror(errno));
        return CBRNN_ERR_IO;
    }
    char line[256];
    size_t cap = 0;
    long lineno = 0;
    int sorted = 1, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
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
        if (l->n && ev.frame < l->ev[l->n - 1].frame)
            sorted = 0;
        l->ev[l->n++] = ev;
    }
    if (!rc && ferror(f)) {
        snprintf(msg, msglen, "%s: read error", path);
        rc = CBRNN_ERR_IO;
    }
    fclose(f);
    if (rc) {
        cbrnn_event_list_free(l);
        return rc;
    }
    if (!sorted) {
        /* qsort is not stable: files written by the hosts are in frame
         * order already; a hand-made one out of order gets an insertion
         * sort, which is (and keeps same-frame events in file order). */
        for (size_t i = 1; i < l->n; i++) {
            cbrnn_event v = l->ev[i];
            size_t j = i;
            while (j > 0 && by_frame(&l->ev[j - 1], &v) > 0) {
                l->ev[j] = l->ev[j - 1];
                j--;
            }
            l->ev[j] = v;
        }
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
