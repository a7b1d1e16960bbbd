/* cbrnn_lv2.c: the LV2 plugin: the real-time engine (cbrnn_engine.h) inside
 * a plugin host, as thin as the JACK client: port plumbing, the worker
 * that loads models, and the state that keeps the learned weights with the
 * host's session. Everything else is the shared host code (cbrnn_host.h).
 *
 * Threads (LV2 threading classes):
 *   - run() and work_response() are the audio thread: no allocation, lock,
 *     print, log or system call. run() is the engine's audio thread, its
 *     command producer (controls, markers, snapshot requests) and its
 *     record reader (notify).
 *   - work() is the worker: it loads a model and starts an engine for it
 *     (slot_open), or frees an engine the audio thread let go.
 *   - save() may run while run() does: it asks run() for a snapshot of the
 *     weights (the engine's snapshot handshake) and writes a normal cbrnn
 *     model file through state:makePath, or, when the host gives no
 *     makePath (it is optional), keeps the same bytes in the state itself
 *     (save_inline). If run() does not serve the request (the host is
 *     not running the plugin), it copies the weights itself while run()
 *     is kept off the engine by the `busy` flag: a compare-and-swap, never
 *     a wait (a run() that finds the engine busy outputs silence for that
 *     block and counts it).
 *   - instantiate/restore/cleanup: not concurrent with run().
 * Errors reach the user twice: a cbrnn:Error on notify (for a host's UI)
 * and the host's log:log (jalv prints it; lilv ignores restore()'s status,
 * so without the log a damaged state would go unnoticed), or stderr when
 * the host gives no log. Only instantiate, restore, save and work() log:
 * a host's log may lock or print, so run() and work_response() never do;
 * their refusals (no worker, a full queue) go to notify only.
 * Without urid:map (lv2apply passes no features) the atom ports are
 * unused; without the worker a patch:Set is refused on notify.
 * The .so exports only lv2_descriptor (lv2/exports.map) and links no BLAS. */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/log/logger.h>
#include <lv2/midi/midi.h>
#include <lv2/patch/patch.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include "cbrnn/cbrnn_host.h"

#define CBRNN_LV2_URI "urn:cbrnn:lv2"
#define CBRNN_NS CBRNN_LV2_URI "#"
#define N_OUT_PORTS 4     /* out_1 .. out_4 */
#define CHUNK 1024        /* samples per engine call (results do not depend on it) */
#define MAX_PATH_LEN 2048 /* longest model path a patch:Set may carry */
#define MSG_LEN 512
#define RETIRED_MAX 8 /* engines let go, waiting for a worker to free them */
#define STATE_FILE "cbrnn-model.safetensors"
#define LOG_PFX "cbrnn.lv2: " /* every log line names the plugin: hosts print them bare */
/* How long save() waits for run() to hand over a snapshot before it takes
 * the weights itself: several periods of any host (a 8192-sample period at
 * 44.1 kHz is 186 ms). */
#define SNAPSHOT_WAIT_MS 500

enum {
    P_IN, P_TEACHER, P_THRU, P_SURPRISE, P_OUT1, P_OUT2, P_OUT3, P_OUT4, P_CONTROL, P_NOTIFY,
    P_ENABLE, P_LEARN, P_LR, P_MOMENTUM, P_DECAY, P_RESET, P_LABEL_BASE, P_TEACHER_ON,
    P_LATENCY, P_SURPRISE_NOW, P_LOSS_MEAN, N_PORTS
};

/* One loaded model: its engine and what run() needs beside it. Made and
 * freed off the audio thread; swapped in by the audio thread. */
struct slot {
    cbrnn_engine *e;
    int latency, hop, win, n_y;
    float *delay; /* [latency]: the thru delay line */
    int delay_pos;
    float *y;     /* [n_y]: one record's outputs */
    int64_t pos;  /* samples processed by this engine */
    char path[MAX_PATH_LEN]; /* the model file; "" for a model a state kept inline */
};

struct uris {
    LV2_URID atom_Float, atom_Double, atom_Long, atom_Int, atom_Path, atom_String, atom_URID,
        atom_Vector, atom_Object, atom_Blank, atom_Sequence, atom_Chunk, midi_Event, patch_Set,
        patch_Get, patch_property, patch_value, model, adaptedModel, Frame, Error, Mark, message,
        frame, time,
        loss, persistence_loss, surprise, learning, lr, marker, n_markers, markers, label, flags,
        outputs;
};

/* Worker messages (audio thread -> worker -> audio thread). */
enum { W_LOAD, W_FREE, W_LOADED, W_FAILED };
struct wmsg {
    int kind;
    struct slot *slot;    /* W_LOADED (W_FREE frees every retired engine) */
    char text[MSG_LEN];   /* W_LOAD: the path (longer ones use wload); W_FAILED: the message */
};
struct wload {
    int kind;
    struct slot *unused;
    char path[MAX_PATH_LEN];
};

typedef struct {
    void *port[N_PORTS];
    LV2_URID_Map *map;
    LV2_Worker_Schedule *schedule;
    LV2_Log_Logger log; /* the host's log:log, or stderr; never used by run() */
    struct uris u;
    LV2_Atom_Forge forge;
    double rate;
    struct slot *_Atomic cur;
    /* Engines run() let go (work_response), until a worker job frees them.
     * Each such job frees every one parked here, and cleanup() frees what
     * is left: a host may refuse the job (a full queue) or drop it when it
     * closes the instance, and neither may leak an engine. */
    struct slot *_Atomic retired[RETIRED_MAX];
    /* save() vs the worker's frees and restore's swap; never taken by run() */
    pthread_mutex_t state_mu;
    atomic_int busy;      /* 1: run() inside the engine; 2: save() copying weights */
    atomic_int snap_req;  /* save(): request id wanted (0: none) */
    int snap_sent;        /* run(): the id last forwarded */
    atomic_llong skipped; /* blocks run() kept off a busy engine */
    /* run() only */
    float last[P_TEACHER_ON + 1];
    int resend;
    cbrnn_midi_labels midi;
    float in_buf[CHUNK], teacher_buf[CHUNK];
    float surprise_now;
    char error[MSG_LEN]; /* a refusal to report on notify (empty: none) */
    int report_model;    /* send a patch:Set of the model path on notify */
} Plugin;

/* ---------------- slots (never on the audio thread) ---------------- */

static void slot_free(struct slot *s)
{
    if (!s)
        return;
    cbrnn_engine_destroy(s->e);
    free(s->delay);
    free(s->y);
    free(s);
}

/* Frees every engine parked in p->retired (a worker job, or cleanup). */
static void free_retired(Plugin *p)
{
    for (int i = 0; i < RETIRED_MAX; i++)
        slot_free(atomic_exchange(&p->retired[i], NULL));
}

/* How messages call the model a slot runs. */
static const char *slot_name(const struct slot *s)
{
    return s->path[0] ? s->path : "a model a saved state kept inline";
}

/* A slot running model m (copied); path: the file m came from, or NULL
 * for a model a state kept inline; name: how messages call it. */
static struct slot *slot_start(const cbrnn_model *m, const char *path, const char *name,
                               double rate, char *msg, size_t msglen)
{
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, rate);
    c.record_outputs = 1;
    struct slot *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msglen, "%s: out of memory", name);
        return NULL;
    }
    s->e = cbrnn_host_start(m, name, &c, 0, NULL, msg, msglen);
    if (!s->e) {
        free(s);
        return NULL;
    }
    s->latency = cbrnn_engine_latency(s->e);
    s->hop = cbrnn_engine_hop(s->e);
    s->win = cbrnn_engine_win(s->e);
    s->n_y = cbrnn_engine_n_outputs(s->e) - 1;
    s->delay = calloc((size_t)s->latency + 1, sizeof(float));
    s->y = calloc((size_t)s->n_y + 1, sizeof(float));
    if (!s->delay || !s->y) {
        slot_free(s);
        snprintf(msg, msglen, "%s: out of memory", name);
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", path ? path : "");
    return s;
}

static struct slot *slot_open(const char *path, double rate, char *msg, size_t msglen)
{
    if (strlen(path) >= MAX_PATH_LEN) {
        snprintf(msg, msglen, "model path too long (at most %d bytes)", MAX_PATH_LEN - 1);
        return NULL;
    }
    cbrnn_model *m = cbrnn_model_load(path, NULL, msg, msglen);
    if (!m)
        return NULL;
    struct slot *s = slot_start(m, path, path, rate, msg, msglen);
    cbrnn_model_destroy(m);
    return s;
}

/* ---------------- instantiation ---------------- */

static void map_uris(Plugin *p)
{
    LV2_URID_Map *m = p->map;
    struct uris *u = &p->u;
#define MAP(field, uri) u->field = m->map(m->handle, uri)
    MAP(atom_Float, LV2_ATOM__Float);
    MAP(atom_Double, LV2_ATOM__Double);
    MAP(atom_Long, LV2_ATOM__Long);
    MAP(atom_Int, LV2_ATOM__Int);
    MAP(atom_Path, LV2_ATOM__Path);
    MAP(atom_String, LV2_ATOM__String);
    MAP(atom_URID, LV2_ATOM__URID);
    MAP(atom_Vector, LV2_ATOM__Vector);
    MAP(atom_Object, LV2_ATOM__Object);
    MAP(atom_Blank, LV2_ATOM__Blank);
    MAP(atom_Sequence, LV2_ATOM__Sequence);
    MAP(atom_Chunk, LV2_ATOM__Chunk);
    MAP(midi_Event, LV2_MIDI__MidiEvent);
    MAP(patch_Set, LV2_PATCH__Set);
    MAP(patch_Get, LV2_PATCH__Get);
    MAP(patch_property, LV2_PATCH__property);
    MAP(patch_value, LV2_PATCH__value);
    MAP(model, CBRNN_NS "model");
    MAP(adaptedModel, CBRNN_NS "adaptedModel");
    MAP(Frame, CBRNN_NS "Frame");
    MAP(Error, CBRNN_NS "Error");
    MAP(Mark, CBRNN_NS "Mark");
    MAP(message, CBRNN_NS "message");
    MAP(frame, CBRNN_NS "frame");
    MAP(time, CBRNN_NS "time");
    MAP(loss, CBRNN_NS "loss");
    MAP(persistence_loss, CBRNN_NS "persistence_loss");
    MAP(surprise, CBRNN_NS "surprise");
    MAP(learning, CBRNN_NS "learning");
    MAP(lr, CBRNN_NS "lr");
    MAP(marker, CBRNN_NS "marker");
    MAP(n_markers, CBRNN_NS "n_markers");
    MAP(markers, CBRNN_NS "markers");
    MAP(label, CBRNN_NS "label");
    MAP(flags, CBRNN_NS "flags");
    MAP(outputs, CBRNN_NS "outputs");
#undef MAP
    lv2_atom_forge_init(&p->forge, m);
}

/* A host's feature by URI, or NULL. Some hosts (lv2file) pass entries
 * with a NULL URI. */
static const void *feature(const LV2_Feature *const *features, const char *uri)
{
    for (int i = 0; features && features[i]; i++)
        if (features[i]->URI && !strcmp(features[i]->URI, uri))
            return features[i]->data;
    return NULL;
}

static LV2_Handle instantiate(const LV2_Descriptor *d, double rate, const char *bundle,
                              const LV2_Feature *const *features)
{
    LV2_URID_Map *map = (LV2_URID_Map *)feature(features, LV2_URID__map);
    LV2_Log_Logger log;
    /* The log's entry types are URIDs: a log without urid:map cannot be
     * used, so stderr it is. */
    lv2_log_logger_init(&log, map, map ? (LV2_Log_Log *)feature(features, LV2_LOG__log) : NULL);
    Plugin *p = calloc(1, sizeof *p);
    if (!p) {
        lv2_log_error(&log, LOG_PFX "not instantiated: out of memory\n");
        return NULL;
    }
    p->map = map;
    p->log = log;
    p->schedule = (LV2_Worker_Schedule *)feature(features, LV2_WORKER__schedule);
    if (p->map)
        map_uris(p);
    p->rate = rate;
    pthread_mutex_init(&p->state_mu, NULL);
    char path[MAX_PATH_LEN], msg[MSG_LEN];
    snprintf(path, sizeof path, "%s%sdefault.safetensors", bundle,
             bundle[0] && bundle[strlen(bundle) - 1] == '/' ? "" : "/");
    struct slot *s = slot_open(path, rate, msg, sizeof msg);
    if (!s) {
        lv2_log_error(&log, LOG_PFX "not instantiated: the bundle's default model: %s\n", msg);
        pthread_mutex_destroy(&p->state_mu);
        free(p);
        return NULL;
    }
    atomic_store(&p->cur, s);
    p->resend = 1;
    cbrnn_midi_labels_init(&p->midi, 60);
    return p;
}

static void connect_port(LV2_Handle h, uint32_t port, void *data)
{
    Plugin *p = h;
    if (port < N_PORTS)
        p->port[port] = data;
}

static void cleanup(LV2_Handle h)
{
    Plugin *p = h;
    free_retired(p);
    slot_free(atomic_load(&p->cur));
    pthread_mutex_destroy(&p->state_mu);
    free(p);
}

/* ---------------- run (audio thread) ---------------- */

static float ctl(const Plugin *p, int port, float dflt)
{
    const float *v = p->port[port];
    return v && isfinite(*v) ? *v : dflt;
}

static void send(cbrnn_engine *e, int kind, int i, float f)
{
    cbrnn_engine_cmd c = {kind, i, f};
    cbrnn_engine_send(e, &c); /* a full ring drops and counts */
}

/* Control ports -> engine commands, when they change (all of them after a
 * new engine came in). */
static void apply_controls(Plugin *p, cbrnn_engine *e)
{
    float learn = ctl(p, P_LEARN, 0) > 0.5f, lr = fmaxf(0.0f, ctl(p, P_LR, 1e-3f));
    float mom = fminf(fmaxf(ctl(p, P_MOMENTUM, 0.9f), 0.0f), 0.999f);
    float decay = fmaxf(0.0f, ctl(p, P_DECAY, 0.0f)), reset = ctl(p, P_RESET, 0) > 0.5f;
    if (p->resend || learn != p->last[P_LEARN])
        send(e, CBRNN_CMD_LEARN, (int)learn, 0);
    if (p->resend || lr != p->last[P_LR])
        send(e, CBRNN_CMD_LR, 0, lr);
    if (p->resend || mom != p->last[P_MOMENTUM])
        send(e, CBRNN_CMD_MOMENTUM, 0, mom);
    if (p->resend || decay != p->last[P_DECAY])
        send(e, CBRNN_CMD_DECAY, 0, decay);
    if (reset && !p->last[P_RESET])
        send(e, CBRNN_CMD_RESET, 0, 0);
    p->last[P_LEARN] = learn;
    p->last[P_LR] = lr;
    p->last[P_MOMENTUM] = mom;
    p->last[P_DECAY] = decay;
    p->last[P_RESET] = reset;
    p->midi.base = (int)lrintf(ctl(p, P_LABEL_BASE, 60));
    int want = atomic_load(&p->snap_req);
    if (want && want != p->snap_sent) {
        send(e, CBRNN_CMD_SNAPSHOT, want, 0);
        p->snap_sent = want;
    }
    p->resend = 0;
}

/* Samples [a, b) of this run() through the engine (or silence) and the
 * thru delay line, in chunks of at most CHUNK. */
static void process_span(Plugin *p, struct slot *s, uint32_t a, uint32_t b)
{
    const float *in = p->port[P_IN], *teacher = p->port[P_TEACHER];
    int use_teacher = teacher && ctl(p, P_TEACHER_ON, 0) > 0.5f;
    int enabled = ctl(p, P_ENABLE, 1) > 0.5f;
    float *thru = p->port[P_THRU];
    while (a < b) {
        uint32_t n = b - a < CHUNK ? b - a : CHUNK;
        /* Copies first: hosts may give an output the input's buffer. */
        if (in)
            memcpy(p->in_buf, in + a, n * sizeof(float));
        else
            memset(p->in_buf, 0, n * sizeof(float));
        if (use_teacher)
            memcpy(p->teacher_buf, teacher + a, n * sizeof(float));
        float *outs[1 + N_OUT_PORTS];
        int n_out = 1 + (s->n_y < N_OUT_PORTS ? s->n_y : N_OUT_PORTS);
        for (int k = 0; k < 1 + N_OUT_PORTS; k++) {
            float *o = p->port[P_SURPRISE + k];
            outs[k] = o ? o + a : NULL;
            if (o && (k >= n_out || !enabled))
                memset(outs[k], 0, n * sizeof(float));
        }
        int idle = 0;
        if (enabled && atomic_compare_exchange_strong(&p->busy, &idle, 1)) {
            cbrnn_engine_process(s->e, outs, n_out, p->in_buf, use_teacher ? p->teacher_buf : NULL,
                                 (int)n);
            atomic_store(&p->busy, 0);
            s->pos += n;
        } else if (enabled) {
            for (int k = 0; k < n_out; k++)
                if (outs[k])
                    memset(outs[k], 0, n * sizeof(float));
            atomic_fetch_add(&p->skipped, 1);
        }
        for (uint32_t i = 0; i < n; i++) {
            float x = p->in_buf[i];
            if (s->latency > 0) {
                float y = s->delay[s->delay_pos];
                s->delay[s->delay_pos] = x;
                s->delay_pos = (s->delay_pos + 1) % s->latency;
                x = y;
            }
            if (thru)
                thru[a + i] = x;
        }
        a += n;
    }
}

/* Room an event needs for one frame object with n_y outputs: the event
 * header, the object header, 11 scalar properties, the markers and outputs
 * vectors. */
static uint32_t frame_event_size(int n_y)
{
    return 16 + 16 + 11 * 32 + 2 * 32 + 4 * CBRNN_REC_MAX_MARKERS + 4 * (uint32_t)n_y + 64;
}

static int forge_room(const LV2_Atom_Forge *f, uint32_t need)
{
    return f->buf && f->size - f->offset >= need;
}

static void forge_frame(Plugin *p, const cbrnn_record *r, const struct slot *s, int64_t t)
{
    LV2_Atom_Forge *f = &p->forge;
    const struct uris *u = &p->u;
    LV2_Atom_Forge_Frame of;
    lv2_atom_forge_frame_time(f, t);
    lv2_atom_forge_object(f, &of, 0, u->Frame);
    lv2_atom_forge_key(f, u->frame);
    lv2_atom_forge_long(f, r->frame);
    lv2_atom_forge_key(f, u->time);
    lv2_atom_forge_double(f, r->time);
    lv2_atom_forge_key(f, u->loss);
    lv2_atom_forge_float(f, r->loss);
    lv2_atom_forge_key(f, u->persistence_loss);
    lv2_atom_forge_float(f, r->persistence_loss);
    lv2_atom_forge_key(f, u->surprise);
    lv2_atom_forge_float(f, r->surprise);
    lv2_atom_forge_key(f, u->learning);
    lv2_atom_forge_int(f, r->learning);
    lv2_atom_forge_key(f, u->lr);
    lv2_atom_forge_float(f, r->lr);
    lv2_atom_forge_key(f, u->marker);
    lv2_atom_forge_int(f, r->marker);
    lv2_atom_forge_key(f, u->n_markers);
    lv2_atom_forge_int(f, r->n_markers);
    int nm = r->n_markers < CBRNN_REC_MAX_MARKERS ? r->n_markers : CBRNN_REC_MAX_MARKERS;
    lv2_atom_forge_key(f, u->markers);
    lv2_atom_forge_vector(f, sizeof(int32_t), u->atom_Int, (uint32_t)(nm > 0 ? nm : 0), r->markers);
    lv2_atom_forge_key(f, u->label);
    lv2_atom_forge_int(f, r->label);
    lv2_atom_forge_key(f, u->flags);
    lv2_atom_forge_int(f, (int32_t)r->flags);
    lv2_atom_forge_key(f, u->outputs);
    lv2_atom_forge_vector(f, sizeof(float), u->atom_Float, (uint32_t)s->n_y, s->y);
    lv2_atom_forge_pop(f, &of);
}

/* An object with one string property on notify: errors, the model path. */
static void forge_text(Plugin *p, int is_error, const char *text)
{
    LV2_Atom_Forge *f = &p->forge;
    uint32_t len = (uint32_t)strlen(text);
    if (!forge_room(f, 96 + len))
        return;
    LV2_Atom_Forge_Frame of;
    lv2_atom_forge_frame_time(f, 0);
    if (is_error) {
        lv2_atom_forge_object(f, &of, 0, p->u.Error);
        lv2_atom_forge_key(f, p->u.message);
        lv2_atom_forge_string(f, text, len);
    } else {
        lv2_atom_forge_object(f, &of, 0, p->u.patch_Set);
        lv2_atom_forge_key(f, p->u.patch_property);
        lv2_atom_forge_urid(f, p->u.model);
        lv2_atom_forge_key(f, p->u.patch_value);
        lv2_atom_forge_path(f, text, len);
    }
    lv2_atom_forge_pop(f, &of);
}

/* Records -> notify (one Frame object each, at the sample that completed
 * the frame), and the control outputs. Records that do not fit wait for
 * the next run(); without a notify port they are only counted. */
static void drain_records(Plugin *p, struct slot *s, int64_t block_start, uint32_t n)
{
    cbrnn_record r;
    int forging = p->forge.buf != NULL;
    uint32_t need = frame_event_size(s->n_y);
    while ((!forging || forge_room(&p->forge, need)) &&
           cbrnn_engine_read_record(s->e, &r, s->y)) {
        if (isfinite(r.surprise))
            p->surprise_now = r.surprise;
        if (forging) {
            int64_t t = r.frame * s->hop + s->win - 1 - block_start;
            forge_frame(p, &r, s, t < 0 ? 0 : t >= (int64_t)n ? (int64_t)n - 1 : t);
        }
    }
}

/* A patch:Set of cbrnn:model: the path goes to the worker. */
static void on_patch_set(Plugin *p, const LV2_Atom_Object *obj)
{
    const LV2_Atom *prop = NULL, *val = NULL;
    lv2_atom_object_get(obj, p->u.patch_property, &prop, p->u.patch_value, &val, 0);
    if (!prop || prop->type != p->u.atom_URID || ((const LV2_Atom_URID *)prop)->body != p->u.model)
        return;
    if (!val || (val->type != p->u.atom_Path && val->type != p->u.atom_String) || val->size < 1) {
        snprintf(p->error, sizeof p->error, "patch:Set cbrnn:model: expected an atom:Path");
        return;
    }
    const char *path = LV2_ATOM_BODY_CONST(val);
    size_t len = strnlen(path, val->size);
    if (len >= MAX_PATH_LEN || len == 0) {
        snprintf(p->error, sizeof p->error, "patch:Set cbrnn:model: path %s",
                 len ? "too long" : "empty");
        return;
    }
    if (!p->schedule) {
        snprintf(p->error, sizeof p->error,
                 "%.*s: not loaded: this host gives the plugin no worker thread", 200, path);
        return;
    }
    struct wload w;
    w.kind = W_LOAD;
    w.unused = NULL;
    memcpy(w.path, path, len);
    w.path[len] = '\0';
    uint32_t size = (uint32_t)(offsetof(struct wload, path) + len + 1);
    if (p->schedule->schedule_work(p->schedule->handle, size, &w) != LV2_WORKER_SUCCESS)
        snprintf(p->error, sizeof p->error, "%.*s: not loaded: the worker queue is full", 200,
                 path);
}

static void on_event(Plugin *p, cbrnn_engine *e, const LV2_Atom_Event *ev)
{
    const struct uris *u = &p->u;
    if (ev->body.type == u->midi_Event) {
        int label;
        if (cbrnn_midi_labels_event(&p->midi, (const uint8_t *)(ev + 1), ev->body.size, &label))
            cbrnn_engine_set_label(e, label);
        return;
    }
    if (ev->body.type != u->atom_Object && ev->body.type != u->atom_Blank)
        return;
    const LV2_Atom_Object *obj = (const LV2_Atom_Object *)&ev->body;
    if (obj->body.otype == u->patch_Set) {
        on_patch_set(p, obj);
    } else if (obj->body.otype == u->patch_Get) {
        p->report_model = 1;
    } else if (obj->body.otype == u->Mark) {
        const LV2_Atom *m = NULL;
        lv2_atom_object_get(obj, u->marker, &m, 0);
        if (m && m->type == u->atom_Int && ((const LV2_Atom_Int *)m)->body >= 0)
            send(e, CBRNN_CMD_MARK, ((const LV2_Atom_Int *)m)->body, 0);
    }
}

static void run(LV2_Handle h, uint32_t n)
{
    Plugin *p = h;
    struct slot *s = atomic_load(&p->cur);
    const LV2_Atom_Sequence *control = p->map ? p->port[P_CONTROL] : NULL;
    LV2_Atom_Sequence *notify = p->map ? p->port[P_NOTIFY] : NULL;
    LV2_Atom_Forge_Frame seq;
    p->forge.buf = NULL;
    if (notify) {
        lv2_atom_forge_set_buffer(&p->forge, (uint8_t *)notify, notify->atom.size);
        lv2_atom_forge_sequence_head(&p->forge, &seq, 0);
    }
    apply_controls(p, s->e);
    int64_t block_start = s->pos;
    uint32_t at = 0;
    if (control) {
        LV2_ATOM_SEQUENCE_FOREACH (control, ev) {
            uint32_t t = ev->time.frames < 0 ? 0 : (uint32_t)ev->time.frames;
            if (t > n)
                t = n;
            if (t > at) {
                process_span(p, s, at, t);
                at = t;
            }
            on_event(p, s->e, ev);
        }
    }
    process_span(p, s, at, n);
    if (p->forge.buf) {
        if (p->error[0]) {
            forge_text(p, 1, p->error);
            p->error[0] = '\0';
        }
        /* A model a state kept inline has no file to name. */
        if (p->report_model) {
            if (s->path[0])
                forge_text(p, 0, s->path);
            p->report_model = 0;
        }
    }
    drain_records(p, s, block_start, n);
    if (notify)
        lv2_atom_forge_pop(&p->forge, &seq);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(s->e, &st);
    if (p->port[P_LATENCY])
        *(float *)p->port[P_LATENCY] = (float)s->latency;
    if (p->port[P_SURPRISE_NOW])
        *(float *)p->port[P_SURPRISE_NOW] = p->surprise_now;
    if (p->port[P_LOSS_MEAN])
        *(float *)p->port[P_LOSS_MEAN] = st.mean_loss;
}

/* ---------------- worker ---------------- */

static LV2_Worker_Status work(LV2_Handle h, LV2_Worker_Respond_Function respond,
                              LV2_Worker_Respond_Handle rh, uint32_t size, const void *data)
{
    Plugin *p = h;
    struct wmsg out;
    memset(&out, 0, sizeof out);
    int kind;
    if (size < sizeof(int))
        return LV2_WORKER_ERR_UNKNOWN;
    memcpy(&kind, data, sizeof kind);
    if (kind == W_FREE) {
        pthread_mutex_lock(&p->state_mu);
        free_retired(p);
        pthread_mutex_unlock(&p->state_mu);
        return LV2_WORKER_SUCCESS;
    }
    if (kind != W_LOAD || size <= offsetof(struct wload, path)) {
        lv2_log_warning(&p->log, LOG_PFX "worker: unknown request ignored (kind %d, %u bytes)\n",
                        kind, size);
        return LV2_WORKER_ERR_UNKNOWN;
    }
    const struct wload *w = data;
    char path[MAX_PATH_LEN];
    size_t len = size - offsetof(struct wload, path);
    if (len > sizeof path)
        len = sizeof path;
    memcpy(path, w->path, len);
    path[len - 1] = '\0';
    out.slot = slot_open(path, p->rate, out.text, sizeof out.text);
    out.kind = out.slot ? W_LOADED : W_FAILED;
    if (!out.slot)
        lv2_log_error(&p->log, LOG_PFX "model not loaded: %s; the current model stays\n",
                      out.text);
    LV2_Worker_Status st = respond(rh, sizeof out, &out);
    if (st != LV2_WORKER_SUCCESS && out.slot) {
        lv2_log_error(&p->log, LOG_PFX "%s: loaded but not used: the host's worker refused the "
                      "response (status %d); the current model stays\n", path, (int)st);
        slot_free(out.slot);
    }
    return st;
}

static LV2_Worker_Status work_response(LV2_Handle h, uint32_t size, const void *data)
{
    Plugin *p = h;
    struct wmsg m;
    if (size != sizeof m)
        return LV2_WORKER_ERR_UNKNOWN;
    memcpy(&m, data, sizeof m);
    if (m.kind == W_FAILED) {
        snprintf(p->error, sizeof p->error, "%s", m.text);
        return LV2_WORKER_SUCCESS;
    }
    struct slot *old = atomic_exchange(&p->cur, m.slot);
    p->resend = 1;
    p->report_model = 1;
    if (p->midi.held_note >= 0)
        cbrnn_engine_set_label(m.slot->e, p->midi.held_note - p->midi.base);
    /* The old engine is parked and freed by a second worker job (or the
     * next one, or cleanup(), if the host refuses or drops this one). With
     * every place taken (RETIRED_MAX loads whose free jobs all failed) it
     * is kept (leaked) rather than freed on the audio thread. */
    for (int i = 0; i < RETIRED_MAX && old; i++) {
        struct slot *none = NULL;
        if (atomic_compare_exchange_strong(&p->retired[i], &none, old))
            old = NULL;
    }
    struct wmsg f;
    memset(&f, 0, sizeof f);
    f.kind = W_FREE;
    p->schedule->schedule_work(p->schedule->handle, offsetof(struct wmsg, text), &f);
    return LV2_WORKER_SUCCESS;
}

/* ---------------- state ---------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* The weights of s into dst: through run() if it is running, else copied
 * directly while run() is kept off the engine. */
static void take_weights(Plugin *p, struct slot *s, cbrnn_model *dst, int64_t *frames)
{
    static atomic_int next_id = 1;
    int want = atomic_fetch_add(&next_id, 1), id;
    atomic_store(&p->snap_req, want);
    for (int i = 0; i < SNAPSHOT_WAIT_MS; i++) {
        while (cbrnn_engine_take_snapshot(s->e, dst, &id, frames) == 1)
            if (id == want) {
                atomic_store(&p->snap_req, 0);
                return;
            }
        sleep_ms(1);
    }
    atomic_store(&p->snap_req, 0);
    int idle = 0;
    while (!atomic_compare_exchange_strong(&p->busy, &idle, 2)) {
        idle = 0;
        sleep_ms(1);
    }
    cbrnn_engine_copy_params(s->e, dst);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(s->e, &st);
    *frames = st.frames;
    atomic_store(&p->busy, 0);
}

static void free_host_path(const LV2_State_Free_Path *freep, char *path)
{
    if (freep && path)
        freep->free_path(freep->handle, path);
    else
        free(path);
}

/* A copy of the weights s runs now (its loaded model with the learned
 * parameters, and the frames behind them), or NULL: logged. */
static cbrnn_model *weights_now(Plugin *p, struct slot *s, int64_t *frames)
{
    cbrnn_model *snap = cbrnn_model_clone(cbrnn_engine_model(s->e), NULL);
    if (!snap) {
        lv2_log_error(&p->log, LOG_PFX "state not saved: out of memory copying the weights; what "
                      "the plugin learned since loading %s is not in the state\n", slot_name(s));
        return NULL;
    }
    take_weights(p, s, snap, frames);
    return snap;
}

/* The learned weights of s as a normal model file in the session
 * (state:makePath); *file: the path the host made (the caller frees it). */
static LV2_State_Status save_model_file(Plugin *p, struct slot *s, const LV2_State_Make_Path *make,
                                        char **file)
{
    char msg[MSG_LEN];
    int64_t frames = 0;
    *file = make->path(make->handle, STATE_FILE);
    if (!*file) {
        lv2_log_error(&p->log, LOG_PFX "state not saved: the host's state:makePath gave no path "
                      "for %s\n", STATE_FILE);
        return LV2_STATE_ERR_UNKNOWN;
    }
    cbrnn_model *snap = weights_now(p, s, &frames);
    if (!snap)
        return LV2_STATE_ERR_UNKNOWN;
    /* A model a state kept inline keeps its own adapted_from. */
    int rc = cbrnn_host_save_adapted(snap, *file, "cbrnn.lv2", s->path[0] ? s->path : NULL,
                                     frames, msg, sizeof msg);
    cbrnn_model_destroy(snap);
    if (rc) {
        lv2_log_error(&p->log, LOG_PFX "state not saved: %s\n", msg);
        return LV2_STATE_ERR_UNKNOWN;
    }
    return LV2_STATE_SUCCESS;
}

/* cbrnn:model = path, an atom:Path (abstract when the host maps paths). */
static LV2_State_Status store_path(Plugin *p, LV2_State_Store_Function store, LV2_State_Handle sh,
                                   const LV2_State_Map_Path *mapp,
                                   const LV2_State_Free_Path *freep, const char *path)
{
    char *abstract = mapp ? mapp->abstract_path(mapp->handle, path) : NULL;
    const char *v = abstract ? abstract : path;
    LV2_State_Status rc = store(sh, p->u.model, v, strlen(v) + 1, p->u.atom_Path,
                                LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
    if (rc != LV2_STATE_SUCCESS)
        lv2_log_error(&p->log, LOG_PFX "state not saved: the host did not store cbrnn:model "
                      "= %s (status %d)\n", v, (int)rc);
    free_host_path(freep, abstract);
    return rc;
}

/* m as the bytes of a model file, with the provenance a file gets
 * (cbrnn_host_save_adapted's metadata); 0, or a code with msg. */
static int adapted_bytes(cbrnn_model *m, const struct slot *s, int64_t frames,
                         unsigned char **buf, size_t *len, char *msg, size_t msglen)
{
    char val[32];
    snprintf(val, sizeof val, "%lld", (long long)frames);
    int rc = cbrnn_model_set_meta(m, "adapted_by", "cbrnn.lv2");
    if (!rc && s->path[0])
        rc = cbrnn_model_set_meta(m, "adapted_from", s->path);
    if (!rc)
        rc = cbrnn_model_set_meta(m, "adapted_frames", val);
    if (rc) {
        snprintf(msg, msglen, "%s", cbrnn_strerror(rc));
        return rc;
    }
    return cbrnn_model_save_mem(m, buf, len, msg, msglen);
}

/* Without state:makePath there is no file to write: makePath is optional
 * in the LV2 state spec, and lilv itself gives none when a host keeps a
 * state in memory (lilv_state_new_from_instance without a save folder).
 * So the learned model goes into the state itself: cbrnn:adaptedModel, an
 * atom:Chunk holding the bytes of the model file a save with makePath
 * would write (written out, `cbrnn info` opens them). POD values are what
 * every host keeps, and the bytes are portable (safetensors is
 * little-endian by definition): lilv writes them into its Turtle as
 * xsd:base64Binary and reads them back as an atom:Chunk (test_lv2_host
 * lilv_state_in_memory). A key of its own, not cbrnn:model, because
 * cbrnn:model is a patch:writable parameter whose range is atom:Path
 * (cbrnn.ttl), which hosts may rely on; cbrnn:model still names the file
 * the weights were adapted from, which a plugin from before this restores.
 * The chunk is large (2.6 MB for the default model, 1 MB of it the RLS
 * state; 3.5 MB of lilv's Turtle), so a model that learned nothing since
 * it was loaded from a file is kept as that file's path alone, as every
 * state was before. A host that refuses the chunk gets
 * LV2_STATE_ERR_NO_FEATURE and an error in its log naming what is lost
 * (lilv drops save()'s status: the log is what a user sees); the path is
 * stored first, so that the session reopens on the model it ran. */
static LV2_State_Status save_inline(Plugin *p, struct slot *s, LV2_State_Store_Function store,
                                    LV2_State_Handle sh, const LV2_State_Map_Path *mapp,
                                    const LV2_State_Free_Path *freep)
{
    int64_t frames = 0;
    cbrnn_model *snap = weights_now(p, s, &frames);
    if (!snap)
        return LV2_STATE_ERR_UNKNOWN;
    const cbrnn_model *loaded = cbrnn_engine_model(s->e);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(s->e, &st); /* read after the weights: an update since only adds */
    int learned = !s->path[0] || st.updates > 0 ||
                  memcmp(snap->params, loaded->params, loaded->n_params * sizeof(float));
    LV2_State_Status r = LV2_STATE_SUCCESS;
    if (s->path[0])
        r = store_path(p, store, sh, mapp, freep, s->path);
    if (!learned || r != LV2_STATE_SUCCESS) {
        cbrnn_model_destroy(snap);
        return r;
    }
    char msg[MSG_LEN];
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = adapted_bytes(snap, s, frames, &buf, &len, msg, sizeof msg);
    cbrnn_model_destroy(snap);
    if (rc) {
        lv2_log_error(&p->log, LOG_PFX "state not saved: the learned weights: %s; what the "
                      "plugin learned since loading %s is not in the state\n", msg, slot_name(s));
        return LV2_STATE_ERR_UNKNOWN;
    }
    r = store(sh, p->u.adaptedModel, buf, len, p->u.atom_Chunk,
              LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
    free(buf);
    if (r == LV2_STATE_SUCCESS)
        return r;
    if (!s->path[0])
        lv2_log_error(&p->log, LOG_PFX "state not saved: the host refused cbrnn:adaptedModel, "
                      "the weights as an atom:Chunk of %zu bytes (status %d), and gives no "
                      "state:makePath to write them to a file: the weights restored from a "
                      "state, and what the plugin learned since, are lost\n", len, (int)r);
    else
        lv2_log_error(&p->log, LOG_PFX "state not saved whole: the host refused "
                      "cbrnn:adaptedModel, the learned weights as an atom:Chunk of %zu bytes "
                      "(status %d), and gives no state:makePath to write them to a file: what "
                      "the plugin learned since loading %s is lost; the state names that file "
                      "only\n", len, (int)r, s->path);
    return LV2_STATE_ERR_NO_FEATURE;
}

static LV2_State_Status save(LV2_Handle h, LV2_State_Store_Function store,
                             LV2_State_Handle sh, uint32_t flags,
                             const LV2_Feature *const *features)
{
    Plugin *p = h;
    const LV2_State_Make_Path *make = feature(features, LV2_STATE__makePath);
    const LV2_State_Map_Path *mapp = feature(features, LV2_STATE__mapPath);
    const LV2_State_Free_Path *freep = feature(features, LV2_STATE__freePath);
    if (!p->map) {
        lv2_log_error(&p->log, LOG_PFX "state not saved: the host gave the plugin no urid:map\n");
        return LV2_STATE_ERR_NO_FEATURE;
    }
    pthread_mutex_lock(&p->state_mu);
    struct slot *s = atomic_load(&p->cur);
    LV2_State_Status rc;
    if (make) {
        /* A file in the session (Ardour, jalv and every lilv host that
         * saves into a folder): `cbrnn info` and `cbrnn run --model` open
         * it where it is. */
        char *file = NULL;
        rc = save_model_file(p, s, make, &file);
        if (rc == LV2_STATE_SUCCESS)
            rc = store_path(p, store, sh, mapp, freep, file);
        free_host_path(freep, file);
    } else {
        rc = save_inline(p, s, store, sh, mapp, freep);
    }
    pthread_mutex_unlock(&p->state_mu);
    return rc;
}

/* A state that cannot be restored: logged and reported on notify; the
 * plugin keeps the model (and the weights learned on it) it had. */
static LV2_State_Status restore_failed(Plugin *p, LV2_State_Status rc, const char *why)
{
    const struct slot *s = atomic_load(&p->cur);
    lv2_log_error(&p->log, LOG_PFX "state not restored: %s; the plugin keeps the weights it had "
                  "(from %s)\n", why, slot_name(s));
    snprintf(p->error, sizeof p->error, "state not restored: %.480s", why);
    return rc;
}

/* A slot for the model a state kept inline (save_inline): the bytes of a
 * model file, checked by the same loader as a file (damage, an unknown
 * format version, shapes, non-finite values), whole or not at all. */
static struct slot *slot_inline(Plugin *p, const void *v, size_t size, char *msg, size_t msglen)
{
    char why[MSG_LEN - 96];
    cbrnn_model *m = cbrnn_model_load_mem(v, size, NULL, why, sizeof why);
    if (!m) {
        snprintf(msg, msglen, "cbrnn:adaptedModel, the model kept inline in the state (%zu "
                 "bytes): %s", size, why);
        return NULL;
    }
    struct slot *s = slot_start(m, NULL, "the model kept inline in the state", p->rate, msg,
                                msglen);
    cbrnn_model_destroy(m);
    return s;
}

static LV2_State_Status restore(LV2_Handle h, LV2_State_Retrieve_Function retrieve,
                                LV2_State_Handle sh, uint32_t flags,
                                const LV2_Feature *const *features)
{
    Plugin *p = h;
    if (!p->map) {
        lv2_log_error(&p->log, LOG_PFX "state not restored: the host gave the plugin no "
                      "urid:map\n");
        return LV2_STATE_ERR_NO_FEATURE;
    }
    const LV2_State_Map_Path *mapp = feature(features, LV2_STATE__mapPath);
    const LV2_State_Free_Path *freep = feature(features, LV2_STATE__freePath);
    size_t size;
    uint32_t type, vflags;
    char msg[MSG_LEN];
    struct slot *s;
    /* The learned model kept inline comes first: cbrnn:model then only
     * names the file it was adapted from. A damaged one is refused (and
     * logged), not passed over for that file, which lacks what was
     * learned. */
    const void *chunk = retrieve(sh, p->u.adaptedModel, &size, &type, &vflags);
    if (chunk) {
        if (type != p->u.atom_Chunk)
            return restore_failed(p, LV2_STATE_ERR_BAD_TYPE,
                                  "cbrnn:adaptedModel is not an atom:Chunk");
        s = slot_inline(p, chunk, size, msg, sizeof msg);
    } else {
        const char *v = retrieve(sh, p->u.model, &size, &type, &vflags);
        /* Nothing saved: the current model stays, quietly. The state spec
         * asks a plugin to fall back when a value cannot be retrieved, so
         * that a host may reset it with an empty state (or a preset of
         * port values). */
        if (!v)
            return LV2_STATE_SUCCESS;
        if (type != p->u.atom_Path || size == 0 || v[size - 1] != '\0')
            return restore_failed(p, LV2_STATE_ERR_BAD_TYPE, "cbrnn:model is not an atom:Path");
        char *abs = mapp ? mapp->absolute_path(mapp->handle, v) : NULL;
        s = slot_open(abs ? abs : v, p->rate, msg, sizeof msg);
        free_host_path(freep, abs);
    }
    if (!s)
        return restore_failed(p, LV2_STATE_ERR_UNKNOWN, msg);
    /* Not concurrent with run() (the Instantiation class). */
    pthread_mutex_lock(&p->state_mu);
    struct slot *old = atomic_exchange(&p->cur, s);
    slot_free(old);
    pthread_mutex_unlock(&p->state_mu);
    p->resend = 1;
    p->report_model = 1; /* tell the host's UI which file is in use */
    return LV2_STATE_SUCCESS;
}

/* ---------------- descriptor ---------------- */

static const void *extension_data(const char *uri)
{
    static const LV2_Worker_Interface worker = {work, work_response, NULL};
    static const LV2_State_Interface state = {save, restore};
    if (!strcmp(uri, LV2_WORKER__interface))
        return &worker;
    if (!strcmp(uri, LV2_STATE__interface))
        return &state;
    return NULL;
}

static const LV2_Descriptor descriptor = {CBRNN_LV2_URI, instantiate, connect_port, NULL, run,
                                          NULL, cleanup, extension_data};

LV2_SYMBOL_EXPORT const LV2_Descriptor *lv2_descriptor(uint32_t index)
{
    return index == 0 ? &descriptor : NULL;
}
