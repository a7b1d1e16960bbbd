/* fuzz_control.c: libFuzzer target for the control files a run replays
 * or follows (host/host_events.c, host/host_schedule.c): events files
 * (`cbrnn run --events`, what a live run logged) and trial schedules
 * (`--schedule`). The first byte picks the parser (even: events, odd:
 * schedule); the rest is the file. A bad file must be refused with a
 * message naming the file; a good one must give events sorted by frame,
 * each a command an engine takes, and an engine made for them (as
 * `cbrnn run` makes it: the perturbation they need turned on, the
 * settings of an events file's header lines applied) must run
 * their first frames on a tone with only finite outputs. Only the scratch
 * folder is touched. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_model.h"

#define RATE 16000.0
/* Frames of the replay: the events due in them are applied. */
#define REPLAY_FRAMES 60

/* A small model, made once: what the engine does with each command is
 * the same at any size. */
static cbrnn_model *small_model(void)
{
    static cbrnn_model *m;
    if (m)
        return m;
    cbrnn_model_config c;
    cbrnn_model_config_default(&c);
    c.n_hidden = 8;
    c.n_cb_hidden = 1;
    c.cb_hidden[0] = 8;
    int err = 0;
    m = cbrnn_model_create(&c, &err);
    CHECK(m && cbrnn_model_init(m, 1) == 0, "cannot make the small model (%d)", err);
    return m;
}

static void check_sorted(const cbrnn_event *ev, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(ev[i].frame >= 0, "%s: event %zu at frame %lld", what, i, (long long)ev[i].frame);
        CHECK(i == 0 || ev[i - 1].frame <= ev[i].frame, "%s: event %zu out of order", what, i);
        CHECK(ev[i].cmd.kind >= CBRNN_CMD_LEARN && ev[i].cmd.kind <= CBRNN_CMD_LISTEN,
              "%s: event %zu has kind %d", what, i, ev[i].cmd.kind);
    }
}

/* The engine `cbrnn run` would make for these events over a tone. With
 * schedule 1 they go in as a schedule, else fed as a replay. */
static void replay(cbrnn_event_list *l, int schedule)
{
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, RATE);
    cbrnn_host_perturb_for_events(&c, l->ev, l->n);
    cbrnn_events_apply(&c, &l->info, 0); /* the header's settings (events files only) */
    int err = 0;
    cbrnn_engine *e = cbrnn_engine_create(small_model(), &c, &err);
    if (!e) { /* e.g. a delay too long for memory: refused, with a code */
        CHECK(err < 0, "engine refused without an error code");
        return;
    }
    if (schedule)
        CHECK(cbrnn_engine_set_schedule(e, l->ev, l->n) == 0, "a loaded schedule was refused");
    int hop = cbrnn_engine_hop(e);
    float in[512], out[512];
    float *outs[1] = {out};
    int64_t pos = 0, end = (int64_t)REPLAY_FRAMES * hop;
    cbrnn_record rec;
    while (pos < end) {
        int n = end - pos < 512 ? (int)(end - pos) : 512;
        if (!schedule) {
            cbrnn_engine_stats st;
            cbrnn_engine_get_stats(e, &st);
            long room = cbrnn_event_list_feed(l, e, st.frames, pos);
            if (room == CBRNN_ERR_FULL) /* said by cbrnn run: too many in one frame */
                break;
            if (room >= 0 && room < n)
                n = (int)room;
            CHECK(n > 0, "events due, yet no room to feed a sample");
        }
        for (int i = 0; i < n; i++)
            in[i] = 0.3f * sinf(2.0f * 3.14159265f * 220.0f * (float)(pos + i) / (float)RATE);
        int rc = cbrnn_engine_process(e, outs, 1, in, NULL, n);
        CHECK(rc == 0, "process: %s", cbrnn_strerror(rc));
        for (int i = 0; i < n; i++)
            CHECK(isfinite(out[i]), "surprise at sample %lld is %g", (long long)(pos + i),
                  (double)out[i]);
        while (cbrnn_engine_read_record(e, &rec, NULL))
            ;
        pos += n;
    }
    cbrnn_engine_destroy(e);
}

static void fuzz_events(const char *path)
{
    char msg[1024] = "";
    cbrnn_event_list l;
    memset(&l, 0, sizeof l);
    if (cbrnn_event_list_load(&l, path, msg, sizeof msg) != 0) {
        CHECK(strncmp(msg, path, strlen(path)) == 0, "message does not name the file: %s", msg);
        return;
    }
    check_sorted(l.ev, l.n, "events");
    replay(&l, 0);
    cbrnn_event_list_free(&l);
}

static void fuzz_schedule(const char *path)
{
    char msg[1024] = "";
    cbrnn_schedule s;
    memset(&s, 0, sizeof s);
    if (cbrnn_schedule_load(&s, path, RATE, 160, 0, msg, sizeof msg) != 0) {
        CHECK(strncmp(msg, path, strlen(path)) == 0, "message does not name the file: %s", msg);
        return;
    }
    check_sorted(s.events.ev, s.events.n, "schedule");
    CHECK(s.trials >= 1, "%d trials", s.trials);
    for (int i = 0; i < s.n_marks; i++)
        CHECK(s.mark_names[i] && isfinite(s.mark_seconds[i]), "mark %d", i);
    for (size_t i = 0; i < s.events.n; i++) {
        const cbrnn_engine_cmd *c = &s.events.ev[i].cmd;
        CHECK(c->kind != CBRNN_CMD_SNAPSHOT, "a schedule holds a snapshot");
        if (c->kind == CBRNN_CMD_MARK)
            CHECK(c->i >= 0 && c->i < s.n_marks, "marker id %d of %d", c->i, s.n_marks);
    }
    replay(&s.events, 1);
    cbrnn_schedule_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_schedule(fz_write("schedule.txt", data + 1, size - 1));
    else
        fuzz_events(fz_write("events.csv", data + 1, size - 1));
    return 0;
}
