/* test_lv2_host.c: a small lilv host that runs the cbrnn LV2 plugin the way
 * a real host does (urid:map, a worker thread behind lock-free queues,
 * state:makePath/mapPath/freePath, atom control and notify ports) and
 * checks it against `cbrnn run` (lv2_host.sh prepares the references):
 *   - blocks_notify_rt_save: input A in random block sizes (1..4096) with
 *     learning on; notify decoded into CSV equals `cbrnn run`'s frames.csv
 *     byte for byte; the latency port reads the engine's latency; no
 *     allocation, lock or wait inside run() (tests/common/rt_interpose.c)
 *     while another thread saves the state again and again; the state
 *     saved at the end holds the same weights as `cbrnn run --save-model`;
 *   - restore_continues: a new instance restored from that state runs
 *     input B exactly as `cbrnn run --model <saved>` does (frames.csv);
 *   - patch_set: patch:Set of a missing file and of a file that is not a
 *     model are refused with a cbrnn:Error on notify naming the file,
 *     while frames keep coming from the old model; a good path loads in
 *     the worker (frames restart at 0) and is echoed as a patch:Set; run()
 *     stays allocation- and lock-free throughout.
 *   - controls: enable off silences the outputs but not thru; the reset
 *     trigger and a cbrnn:Mark reach the next frame's record.
 * In sanitizer builds the allocation/lock check is compiled out (ASan owns
 * the allocator); the rest runs under ASan and UBSan.
 *   - classify_midi: a classify model takes its labels from MIDI notes on
 *     the control port at their sample: frames.csv of `cbrnn run --labels`.
 *   - map_teacher: a map model learns from the side-chain teacher (with
 *     teacher_on): frames.csv of `cbrnn run --teacher`;
 *   - concurrent_instances: four threads instantiate and run instances at
 *     once (FFTW planning is serialised by the plugin).
 *   - damaged_state: a state saved by lilv (lilv_state_save, the plugin's
 *     file made through lilv's makePath) whose model file is then
 *     truncated, replaced by text or deleted is refused on restore: the
 *     host's log:log gets an error naming the file and the reason, restore
 *     returns LV2_STATE_ERR_UNKNOWN, notify carries a cbrnn:Error and the
 *     model that was running runs on; a bad type is LV2_STATE_ERR_BAD_TYPE,
 *     an empty state changes nothing and logs nothing; a save that cannot
 *     write its file logs why;
 *   - learned_state_without_makepath: a host without state:makePath
 *     (optional in LV2) saves after learning: the state holds the learned
 *     model inline (cbrnn:adaptedModel, an atom:Chunk, the bytes of the
 *     file a save with makePath writes); a fresh instance restored from it
 *     has the learned weights bit for bit and gives the frames (learning
 *     on) of an instance restored from that file; before learning the
 *     state only names the model file;
 *   - lilv_state_in_memory: the same through lilv alone: a state made
 *     without a save folder (lilv then gives no makePath), written as
 *     Turtle, read back and restored into a fresh instance;
 *   - host_refuses_inline_state: a host that keeps no value that large and
 *     gives no makePath: save() returns LV2_STATE_ERR_NO_FEATURE and logs
 *     what is lost, and the state names the model file;
 *   - damaged_inline_state: inline models truncated, empty, text or of a
 *     later format are refused as damaged files are (log, notify, status),
 *     not passed over for the file cbrnn:model names, and the running
 *     engine keeps its learned weights bit for bit;
 *   - bundle_without_model: a copy of the bundle without (or with a text
 *     file for) default.safetensors does not instantiate, and says why
 *     naming the file: in the host's log, or on stderr when the host has
 *     no log:log (lv2_host.sh makes the copies).
 * Every host here has a log:log feature that keeps what the plugin logs;
 * patch_set also checks that the refusals reach it (from the worker).
 * usage: test_lv2_host LV2_DIR A.wav B.wav REF_A REF_B WORKDIR CLS REF_C
 *        MAP T.wav REF_M */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <lilv/lilv.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/log/log.h>
#include <lv2/midi/midi.h>
#include <lv2/patch/patch.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>
#include <sndfile.h>

#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_model.h"
#ifdef CBRNN_NO_RT_CHECK
/* Sanitizer builds: ASan replaces the allocator, so the interposer is left
 * out; everything else (notify, state, worker, patch:Set) still runs. */
static _Thread_local int rt_armed;
static atomic_long rt_calls;
static const char *_Atomic rt_first_call;
#else
#include "rt_interpose.h"
#endif

#define URI "urn:cbrnn:lv2"
#define NS URI "#"
#define MAX_BLOCK 4096
#define NOTIFY_CAP 65536
enum { P_IN, P_TEACHER, P_THRU, P_SURPRISE, P_OUT1, P_CONTROL = 8, P_NOTIFY, P_ENABLE, P_LEARN,
       P_LR, P_MOMENTUM, P_DECAY, P_RESET, P_LABEL_BASE, P_TEACHER_ON, P_LATENCY,
       P_SURPRISE_NOW, P_LOSS_MEAN, N_PORTS };

static const char *lv2_dir, *wav_a, *wav_b, *ref_a, *ref_b, *work, *cls_model, *ref_c, *map_model,
    *wav_t, *ref_m;

/* ---------------- urid:map (never called from run()) ---------------- */
static char *uri_tab[256];
static int n_uris;
static pthread_mutex_t map_mu = PTHREAD_MUTEX_INITIALIZER;

static LV2_URID map_uri(LV2_URID_Map_Handle h, const char *uri)
{
    pthread_mutex_lock(&map_mu);
    int i;
    for (i = 0; i < n_uris && strcmp(uri_tab[i], uri); i++)
        ;
    if (i == n_uris && n_uris < 256)
        uri_tab[n_uris++] = strdup(uri);
    pthread_mutex_unlock(&map_mu);
    return (LV2_URID)i + 1;
}
static LV2_URID_Map map = {NULL, map_uri};
#define U(s) map_uri(NULL, s)

static const char *unmap_uri(LV2_URID_Unmap_Handle h, LV2_URID id)
{
    pthread_mutex_lock(&map_mu);
    const char *u = id >= 1 && (int)id <= n_uris ? uri_tab[id - 1] : NULL;
    pthread_mutex_unlock(&map_mu);
    return u;
}
static LV2_URID_Unmap unmap = {NULL, unmap_uri};

/* ---------------- log:log: what the plugin logs, kept ----------------
 * Lines as "error: ...", "warning: ..."; the plugin never logs from run()
 * (the RT check would see this lock). */
static char log_text[16384];
static size_t log_len;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static int log_vprintf(LV2_Log_Handle h, LV2_URID type, const char *fmt, va_list ap)
{
    const char *kind = type == U(LV2_LOG__Error)     ? "error: "
                       : type == U(LV2_LOG__Warning) ? "warning: "
                                                     : "other: ";
    pthread_mutex_lock(&log_mu);
    int n = 0;
    if (log_len < sizeof log_text)
        n = snprintf(log_text + log_len, sizeof log_text - log_len, "%s", kind);
    if (n > 0 && log_len + (size_t)n < sizeof log_text) {
        log_len += (size_t)n;
        n = vsnprintf(log_text + log_len, sizeof log_text - log_len, fmt, ap);
        log_len = n > 0 && log_len + (size_t)n < sizeof log_text ? log_len + (size_t)n
                                                                  : sizeof log_text - 1;
    }
    pthread_mutex_unlock(&log_mu);
    return n;
}
static int log_printf(LV2_Log_Handle h, LV2_URID type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = log_vprintf(h, type, fmt, ap);
    va_end(ap);
    return n;
}
static LV2_Log_Log host_log = {NULL, log_printf, log_vprintf};

static void log_clear(void)
{
    pthread_mutex_lock(&log_mu);
    log_len = 0;
    log_text[0] = '\0';
    pthread_mutex_unlock(&log_mu);
}

/* The log must hold an error line with every one of the strings given
 * (NULL-terminated). */
static void expect_logged(const char *what, ...)
{
    pthread_mutex_lock(&log_mu);
    char text[sizeof log_text];
    memcpy(text, log_text, sizeof text);
    pthread_mutex_unlock(&log_mu);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "error: cbrnn.lv2: ", 18))
            continue;
        va_list ap;
        va_start(ap, what);
        const char *s;
        while ((s = va_arg(ap, const char *)) && strstr(line, s))
            ;
        va_end(ap);
        if (!s) {
            print_message("logged: %s\n", line + 7);
            return;
        }
    }
    fail_msg("%s: no error logged naming all of it; the log holds:\n%s", what, log_text);
}

/* ---------------- the worker: two lock-free SPSC queues ---------------- */
#define QN 64
struct queue {
    atomic_uint head, tail;
    uint32_t size[QN];
    _Alignas(16) unsigned char data[QN][4096];
};

static int q_push(struct queue *q, uint32_t size, const void *d)
{
    unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (size > 4096 || t - atomic_load_explicit(&q->head, memory_order_acquire) == QN)
        return -1;
    q->size[t % QN] = size;
    memcpy(q->data[t % QN], d, size);
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return 0;
}

/* Pops into buf; returns the size, or -1 when empty. */
static long q_pop(struct queue *q, void *buf)
{
    unsigned h = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&q->tail, memory_order_acquire))
        return -1;
    uint32_t n = q->size[h % QN];
    memcpy(buf, q->data[h % QN], n);
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return n;
}

struct host {
    LilvWorld *world;
    const LilvPlugin *plugin;
    LilvInstance *inst;
    const LV2_Worker_Interface *wi;
    const LV2_State_Interface *si;
    struct queue req, resp;
    pthread_t worker;
    atomic_int stop;
    /* refuse the first schedule_work after a load's response (as a full
     * queue would): the job that frees the engine the load replaced */
    atomic_int drop_free, refuse_next;
    float ctl[N_PORTS];
    float *audio[8];
    const float *teacher; /* run_file: the teacher signal, as long as the input (or NULL) */
    _Alignas(16) unsigned char control[8192];
    _Alignas(16) unsigned char notify[NOTIFY_CAP];
    LV2_Atom_Forge forge;
    /* decoded notify */
    char *csv;
    size_t csv_len, csv_cap;
    char last_error[1024], last_model[1024];
    int64_t frames_seen, last_frame, restarts;
    double first_time;
};

static LV2_Worker_Status schedule_work(LV2_Worker_Schedule_Handle h, uint32_t size, const void *d)
{
    struct host *H = h;
    if (atomic_exchange(&H->refuse_next, 0))
        return LV2_WORKER_ERR_NO_SPACE;
    return q_push(&H->req, size, d) ? LV2_WORKER_ERR_NO_SPACE : LV2_WORKER_SUCCESS;
}

static LV2_Worker_Status respond(LV2_Worker_Respond_Handle h, uint32_t size, const void *d)
{
    struct host *H = h;
    if (q_push(&H->resp, size, d))
        return LV2_WORKER_ERR_NO_SPACE;
    if (atomic_exchange(&H->drop_free, 0))
        atomic_store(&H->refuse_next, 1);
    return LV2_WORKER_SUCCESS;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void *worker_main(void *arg)
{
    struct host *H = arg;
    static _Alignas(16) unsigned char buf[4096];
    while (!atomic_load(&H->stop)) {
        long n = q_pop(&H->req, buf);
        if (n < 0) {
            sleep_ms(1);
            continue;
        }
        H->wi->work(lilv_instance_get_handle(H->inst), respond, H, (uint32_t)n, buf);
    }
    return NULL;
}

/* ---------------- state:makePath / mapPath / freePath ---------------- */
static char *make_path(LV2_State_Make_Path_Handle h, const char *name)
{
    const char *dir = h;
    mkdir(dir, 0777);
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}
static char *same_path(LV2_State_Map_Path_Handle h, const char *p) { return strdup(p); }
static void free_path(LV2_State_Free_Path_Handle h, char *p) { free(p); }

/* The state the plugin stores: one (key, path) pair is all it writes. */
struct saved {
    uint32_t key, type;
    char value[4096];
};

static LV2_State_Status store(LV2_State_Handle h, uint32_t key, const void *v, size_t size,
                              uint32_t type, uint32_t flags)
{
    struct saved *s = h;
    if (size > sizeof s->value)
        return LV2_STATE_ERR_UNKNOWN;
    s->key = key;
    s->type = type;
    memcpy(s->value, v, size);
    return LV2_STATE_SUCCESS;
}

static const void *retrieve(LV2_State_Handle h, uint32_t key, size_t *size, uint32_t *type,
                            uint32_t *flags)
{
    struct saved *s = h;
    if (key != s->key)
        return NULL;
    *size = strlen(s->value) + 1;
    *type = s->type;
    *flags = LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE;
    return s->value;
}

static LV2_State_Status save_state(struct host *H, const char *dir, struct saved *out)
{
    LV2_State_Make_Path mk = {(void *)dir, make_path};
    LV2_State_Map_Path mp = {NULL, same_path, same_path};
    LV2_State_Free_Path fp = {NULL, free_path};
    LV2_Feature fmk = {LV2_STATE__makePath, &mk}, fmp = {LV2_STATE__mapPath, &mp},
                ffp = {LV2_STATE__freePath, &fp};
    const LV2_Feature *f[] = {&fmk, &fmp, &ffp, NULL};
    memset(out, 0, sizeof *out);
    return H->si->save(lilv_instance_get_handle(H->inst), store, out,
                       LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE, f);
}

/* ---------------- instance ---------------- */
static void host_open(struct host *H, double rate)
{
    memset(H, 0, sizeof *H);
    H->world = lilv_world_new();
    LilvNode *bundle = lilv_new_file_uri(H->world, NULL, lv2_dir);
    char b[4096];
    snprintf(b, sizeof b, "%s/cbrnn.lv2/", lv2_dir);
    lilv_node_free(bundle);
    bundle = lilv_new_file_uri(H->world, NULL, b);
    lilv_world_load_bundle(H->world, bundle);
    lilv_node_free(bundle);
    LilvNode *uri = lilv_new_uri(H->world, URI);
    H->plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(H->world), uri);
    lilv_node_free(uri);
    assert_non_null(H->plugin);
    static LV2_Feature fmap = {LV2_URID__map, &map}, flog = {LV2_LOG__log, &host_log};
    static LV2_Worker_Schedule sched;
    sched.handle = H;
    sched.schedule_work = schedule_work;
    LV2_Feature fsched = {LV2_WORKER__schedule, &sched};
    const LV2_Feature *feats[] = {&fmap, &fsched, &flog, NULL};
    H->inst = lilv_plugin_instantiate(H->plugin, rate, feats);
    assert_non_null(H->inst);
    H->wi = lilv_instance_get_extension_data(H->inst, LV2_WORKER__interface);
    H->si = lilv_instance_get_extension_data(H->inst, LV2_STATE__interface);
    assert_non_null(H->wi);
    assert_non_null(H->si);
    float defaults[N_PORTS];
    lilv_plugin_get_port_ranges_float(H->plugin, NULL, NULL, defaults);
    for (int i = 0; i < N_PORTS; i++) {
        H->ctl[i] = isnan(defaults[i]) ? 0 : defaults[i];
        if (i >= P_ENABLE)
            lilv_instance_connect_port(H->inst, (uint32_t)i, &H->ctl[i]);
    }
    for (int i = 0; i < 8; i++) {
        H->audio[i] = calloc(MAX_BLOCK, sizeof(float));
        lilv_instance_connect_port(H->inst, (uint32_t)i, H->audio[i]);
    }
    lilv_instance_connect_port(H->inst, P_CONTROL, H->control);
    lilv_instance_connect_port(H->inst, P_NOTIFY, H->notify);
    lv2_atom_forge_init(&H->forge, &map);
    H->last_frame = -1;
    pthread_create(&H->worker, NULL, worker_main, H);
    lilv_instance_activate(H->inst);
}

static void host_close(struct host *H)
{
    lilv_instance_deactivate(H->inst);
    atomic_store(&H->stop, 1);
    pthread_join(H->worker, NULL);
    lilv_instance_free(H->inst);
    lilv_world_free(H->world);
    for (int i = 0; i < 8; i++)
        free(H->audio[i]);
    free(H->csv);
}

static void csv_add(struct host *H, const char *s, size_t n)
{
    if (H->csv_len + n + 1 > H->csv_cap) {
        H->csv_cap = 2 * (H->csv_len + n + 1) + 65536;
        H->csv = realloc(H->csv, H->csv_cap);
    }
    memcpy(H->csv + H->csv_len, s, n);
    H->csv_len += n;
    H->csv[H->csv_len] = '\0';
}

static float get_f(const LV2_Atom *a) { return a ? ((const LV2_Atom_Float *)a)->body : NAN; }
static int32_t get_i(const LV2_Atom *a) { return a ? ((const LV2_Atom_Int *)a)->body : -7; }

/* Notify -> CSV rows (the frames.csv format), errors and model echoes. */
static void decode_notify(struct host *H)
{
    const LV2_Atom_Sequence *seq = (const LV2_Atom_Sequence *)H->notify;
    LV2_ATOM_SEQUENCE_FOREACH (seq, ev) {
        if (ev->body.type != U(LV2_ATOM__Object))
            continue;
        const LV2_Atom_Object *o = (const LV2_Atom_Object *)&ev->body;
        if (o->body.otype == U(NS "Frame")) {
            const LV2_Atom *fr = NULL, *tm = NULL, *lo = NULL, *pl = NULL, *su = NULL, *le = NULL,
                           *lr = NULL, *mk = NULL, *nm = NULL, *mks = NULL, *lb = NULL, *fl = NULL,
                           *out = NULL;
            lv2_atom_object_get(o, U(NS "frame"), &fr, U(NS "time"), &tm, U(NS "loss"), &lo,
                                U(NS "persistence_loss"), &pl, U(NS "surprise"), &su,
                                U(NS "learning"), &le, U(NS "lr"), &lr, U(NS "marker"), &mk,
                                U(NS "n_markers"), &nm, U(NS "markers"), &mks, U(NS "label"), &lb,
                                U(NS "flags"), &fl, U(NS "outputs"), &out, 0);
            assert_non_null(fr);
            assert_non_null(tm);
            assert_non_null(out);
            assert_non_null(mks);
            cbrnn_record r;
            memset(&r, 0, sizeof r);
            r.frame = ((const LV2_Atom_Long *)fr)->body;
            r.time = ((const LV2_Atom_Double *)tm)->body;
            r.loss = get_f(lo);
            r.persistence_loss = get_f(pl);
            r.surprise = get_f(su);
            r.lr = get_f(lr);
            r.learning = get_i(le);
            r.marker = get_i(mk);
            r.n_markers = get_i(nm);
            r.label = get_i(lb);
            r.flags = (uint32_t)get_i(fl);
            const LV2_Atom_Vector *v = (const LV2_Atom_Vector *)mks;
            uint32_t nv = (v->atom.size - sizeof v->body) / sizeof(int32_t);
            for (uint32_t i = 0; i < CBRNN_REC_MAX_MARKERS; i++)
                r.markers[i] = i < nv ? ((const int32_t *)(v + 1))[i] : -1;
            if (r.frame <= H->last_frame)
                H->restarts++;
            if (H->frames_seen == 0)
                H->first_time = r.time;
            H->last_frame = r.frame;
            H->frames_seen++;
            char line[512];
            int n = cbrnn_record_csv_row(line, sizeof line, &r);
            csv_add(H, line, (size_t)n);
        } else if (o->body.otype == U(NS "Error")) {
            const LV2_Atom *m = NULL;
            lv2_atom_object_get(o, U(NS "message"), &m, 0);
            assert_non_null(m);
            snprintf(H->last_error, sizeof H->last_error, "%s", (const char *)LV2_ATOM_BODY_CONST(m));
        } else if (o->body.otype == U(LV2_PATCH__Set)) {
            const LV2_Atom *v = NULL;
            lv2_atom_object_get(o, U(LV2_PATCH__value), &v, 0);
            assert_non_null(v);
            snprintf(H->last_model, sizeof H->last_model, "%s", (const char *)LV2_ATOM_BODY_CONST(v));
        }
    }
}

static void control_mark(struct host *H, int id);

/* An empty control sequence, or one holding a patch:Set of the model. */
static void control_seq(struct host *H, const char *set_path)
{
    LV2_Atom_Forge *f = &H->forge;
    LV2_Atom_Forge_Frame seq, obj;
    lv2_atom_forge_set_buffer(f, H->control, sizeof H->control);
    lv2_atom_forge_sequence_head(f, &seq, 0);
    if (set_path) {
        lv2_atom_forge_frame_time(f, 0);
        lv2_atom_forge_object(f, &obj, 0, U(LV2_PATCH__Set));
        lv2_atom_forge_key(f, U(LV2_PATCH__property));
        lv2_atom_forge_urid(f, U(NS "model"));
        lv2_atom_forge_key(f, U(LV2_PATCH__value));
        lv2_atom_forge_path(f, set_path, (uint32_t)strlen(set_path));
        lv2_atom_forge_pop(f, &obj);
    }
    lv2_atom_forge_pop(f, &seq);
}

/* A control sequence holding one cbrnn:Mark with marker id. */
static void control_mark(struct host *H, int id)
{
    LV2_Atom_Forge *f = &H->forge;
    LV2_Atom_Forge_Frame seq, obj;
    lv2_atom_forge_set_buffer(f, H->control, sizeof H->control);
    lv2_atom_forge_sequence_head(f, &seq, 0);
    lv2_atom_forge_frame_time(f, 0);
    lv2_atom_forge_object(f, &obj, 0, U(NS "Mark"));
    lv2_atom_forge_key(f, U(NS "marker"));
    lv2_atom_forge_int(f, id);
    lv2_atom_forge_pop(f, &obj);
    lv2_atom_forge_pop(f, &seq);
}

/* One block: run() and the worker's responses, armed. */
static void run_block(struct host *H, const float *x, int n)
{
    memcpy(H->audio[P_IN], x, (size_t)n * sizeof(float));
    LV2_Atom *nt = (LV2_Atom *)H->notify;
    nt->size = NOTIFY_CAP - sizeof(LV2_Atom);
    nt->type = U(LV2_ATOM__Chunk);
    static _Alignas(16) unsigned char buf[4096];
    LV2_Handle h = lilv_instance_get_handle(H->inst);
    rt_armed = 1;
    lilv_instance_run(H->inst, (uint32_t)n);
    long sz;
    while ((sz = q_pop(&H->resp, buf)) >= 0)
        H->wi->work_response(h, (uint32_t)sz, buf);
    rt_armed = 0;
    decode_notify(H);
    control_seq(H, NULL);
}

/* MIDI messages at absolute sample positions of a file. */
struct midi_ev {
    long at;
    uint8_t msg[3];
};

/* A control sequence with the MIDI events that fall in [pos, pos + n). */
static void control_midi(struct host *H, const struct midi_ev *ev, int n_ev, long pos, int n)
{
    LV2_Atom_Forge *f = &H->forge;
    LV2_Atom_Forge_Frame seq;
    lv2_atom_forge_set_buffer(f, H->control, sizeof H->control);
    lv2_atom_forge_sequence_head(f, &seq, 0);
    for (int i = 0; i < n_ev; i++)
        if (ev[i].at >= pos && ev[i].at < pos + n) {
            lv2_atom_forge_frame_time(f, ev[i].at - pos);
            lv2_atom_forge_atom(f, 3, U(LV2_MIDI__MidiEvent));
            lv2_atom_forge_write(f, ev[i].msg, 3);
        }
    lv2_atom_forge_pop(f, &seq);
}

static unsigned lcg = 12345;
static int next_block(void)
{
    lcg = lcg * 1664525u + 1013904223u;
    /* Mostly power-of-two periods as hosts use, sometimes any size. */
    return (lcg >> 29) < 5 ? 1 << ((lcg >> 8) % 13) : 1 + (int)((lcg >> 8) % MAX_BLOCK);
}

static float *read_wav(const char *path, long *n, double *rate)
{
    SF_INFO si = {0};
    SNDFILE *sf = sf_open(path, SFM_READ, &si);
    if (!sf)
        fail_msg("%s: %s", path, sf_strerror(NULL));
    assert_int_equal(si.channels, 1);
    float *x = malloc((size_t)si.frames * sizeof(float));
    *n = sf_readf_float(sf, x, si.frames);
    *rate = si.samplerate;
    sf_close(sf);
    return x;
}

/* sync: NULL, or a counter of saves started by another thread; then every
 * 40 blocks the run waits (unarmed) for a new save to start, so saves
 * certainly overlap run() whatever the machine's speed. */
static void run_file(struct host *H, const char *path, atomic_int *sync,
                     const struct midi_ev *ev, int n_ev)
{
    long n;
    double rate;
    float *x = read_wav(path, &n, &rate);
    for (long pos = 0, k = 0; pos < n; k++) {
        if (sync && k % 40 == 0) {
            int want = atomic_load(sync) + 1;
            while (atomic_load(sync) < want)
                sleep_ms(1);
        }
        int b = next_block();
        if (b > n - pos)
            b = (int)(n - pos);
        if (n_ev)
            control_midi(H, ev, n_ev, pos, b);
        if (H->teacher)
            memcpy(H->audio[P_TEACHER], H->teacher + pos, (size_t)b * sizeof(float));
        run_block(H, x + pos, b);
        pos += b;
    }
    free(x);
}

static double file_rate(const char *path)
{
    SF_INFO si = {0};
    SNDFILE *sf = sf_open(path, SFM_READ, &si);
    assert_non_null(sf);
    sf_close(sf);
    return si.samplerate;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* The notify CSV must equal the reference frames.csv byte for byte. */
static void expect_same_csv(struct host *H, const char *ref_dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/frames.csv", ref_dir);
    size_t n;
    char *ref = slurp(p, &n);
    const char *hdr = cbrnn_record_csv_header();
    size_t hl = strlen(hdr);
    assert_true(n >= hl && !memcmp(ref, hdr, hl));
    const char *a = ref + hl, *b = H->csv ? H->csv : "";
    if (n - hl != H->csv_len || memcmp(a, b, H->csv_len)) {
        int line = 2;
        while (*a && *a == *b) {
            if (*a == '\n')
                line++;
            a++, b++;
        }
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        fail_msg("%s line %d: expected '%.*s', notify gave '%.*s'", p, line,
                 (int)(ea ? ea - a : 40), a, (int)(eb ? eb - b : 40), b);
    }
    free(ref);
}

static void expect_same_weights(const char *a, const char *b)
{
    char msg[1024];
    cbrnn_model *x = cbrnn_model_load(a, NULL, msg, sizeof msg);
    if (!x)
        fail_msg("%s", msg);
    cbrnn_model *y = cbrnn_model_load(b, NULL, msg, sizeof msg);
    if (!y)
        fail_msg("%s", msg);
    assert_int_equal(x->n_params, y->n_params);
    for (size_t i = 0; i < x->n_params; i++)
        if (memcmp(&x->params[i], &y->params[i], sizeof(float)))
            fail_msg("%s vs %s: parameter %zu: %.9g vs %.9g", a, b, i, (double)x->params[i],
                     (double)y->params[i]);
    cbrnn_model_destroy(x);
    cbrnn_model_destroy(y);
}

/* What the model loader says of a file it refuses ("PATH: reason"): what
 * the plugin must pass on. */
static const char *load_error(const char *path, char *msg, size_t len)
{
    cbrnn_model *m = cbrnn_model_load(path, NULL, msg, len);
    if (m)
        fail_msg("%s loads: it should not", path);
    return msg;
}

static void expect_rt_clean(const char *what)
{
    long calls = atomic_load(&rt_calls);
    if (calls)
        fail_msg("%s: run() made %ld allocator/lock/wait calls (first: %s)", what, calls,
                 atomic_load(&rt_first_call));
}

/* ---------------- the tests ---------------- */

struct saver {
    struct host *H;
    atomic_int stop, started;
    int saves, failures;
};

static void *saver_main(void *arg)
{
    struct saver *s = arg;
    char dir[4096];
    struct saved st;
    while (!atomic_load(&s->stop)) {
        snprintf(dir, sizeof dir, "%s/concurrent%d", work, s->saves % 3);
        atomic_fetch_add(&s->started, 1);
        if (save_state(s->H, dir, &st) != LV2_STATE_SUCCESS)
            s->failures++;
        s->saves++;
        sleep_ms(2);
    }
    return NULL;
}

static struct saved final_state;

static void blocks_notify_rt_save(void **state)
{
    struct host *H = calloc(1, sizeof *H);
    host_open(H, file_rate(wav_a));
    H->ctl[P_LEARN] = 1;
    control_seq(H, NULL);
    /* The interposer must see the plugin's own calls, or a zero means
     * nothing: save() without makePath takes the plugin's state lock (and,
     * nothing learned yet, stores the model's path). */
    struct saved st;
    const LV2_Feature *none[] = {NULL};
    atomic_store(&rt_calls, 0);
    rt_armed = 1;
    H->si->save(lilv_instance_get_handle(H->inst), store, &st, 0, none);
    rt_armed = 0;
#ifndef CBRNN_NO_RT_CHECK
    if (atomic_load(&rt_calls) < 1)
        fail_msg("interposition: the plugin's pthread_mutex_lock in save() was not seen");
#endif
    atomic_store(&rt_calls, 0);
    atomic_store(&rt_first_call, NULL);
    struct saver sv = {H, 0, 0, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, saver_main, &sv);
    run_file(H, wav_a, &sv.started, NULL, 0);
    atomic_store(&sv.stop, 1);
    pthread_join(th, NULL);
    expect_rt_clean("learning over random blocks while the state is saved");
    print_message("%lld frames; %d saves ran concurrently with run()\n",
                  (long long)H->frames_seen, sv.saves);
    assert_int_equal(sv.failures, 0);
    assert_true(sv.saves >= 2);
    expect_same_csv(H, ref_a);
    /* latency = win - 1 - win / 2, with win from the first frame's time */
    int win = (int)lround(H->first_time * file_rate(wav_a)) + 1;
    assert_int_equal((int)H->ctl[P_LATENCY], win - 1 - win / 2);
    char dir[4096], ref[4096];
    snprintf(dir, sizeof dir, "%s/final", work);
    assert_int_equal(save_state(H, dir, &final_state), LV2_STATE_SUCCESS);
    assert_int_equal(final_state.type, U(LV2_ATOM__Path));
    snprintf(ref, sizeof ref, "%s/adapted.safetensors", work);
    expect_same_weights(final_state.value, ref);
    /* a concurrent save is a loadable model too */
    snprintf(dir, sizeof dir, "%s/concurrent0/cbrnn-model.safetensors", work);
    char msg[1024];
    cbrnn_model *m = cbrnn_model_load(dir, NULL, msg, sizeof msg);
    if (!m)
        fail_msg("%s", msg);
    cbrnn_model_destroy(m);
    host_close(H);
    free(H);
}

static void restore_state(struct host *H, struct saved *st)
{
    LV2_State_Map_Path mp = {NULL, same_path, same_path};
    LV2_State_Free_Path fp = {NULL, free_path};
    LV2_Feature fmp = {LV2_STATE__mapPath, &mp}, ffp = {LV2_STATE__freePath, &fp};
    const LV2_Feature *f[] = {&fmp, &ffp, NULL};
    assert_int_equal(H->si->restore(lilv_instance_get_handle(H->inst), retrieve, st, 0, f),
                     LV2_STATE_SUCCESS);
}

static void restore_continues(void **state)
{
    assert_true(final_state.value[0]);
    struct host *H = calloc(1, sizeof *H);
    host_open(H, file_rate(wav_b));
    restore_state(H, &final_state);
    H->ctl[P_LEARN] = 1;
    control_seq(H, NULL);
    atomic_store(&rt_calls, 0);
    run_file(H, wav_b, NULL, NULL, 0);
    expect_rt_clean("after restore");
    expect_same_csv(H, ref_b);
    host_close(H);
    free(H);
}

/* Runs blocks of 512 until cond holds (at most 2000 blocks). */
#define RUN_UNTIL(H, x, cond)                                                   \
    do {                                                                        \
        int k_;                                                                 \
        for (k_ = 0; k_ < 2000 && !(cond); k_++) {                              \
            run_block(H, x + (k_ * 512) % (len - 512), 512);                    \
            if (!(cond))                                                        \
                sleep_ms(1);                                                    \
        }                                                                       \
        if (!(cond))                                                            \
            fail_msg("never: %s", #cond);                                       \
    } while (0)

/* A host at voice A's rate, with A's samples in *x (*len of them). */
static struct host *host_on_a(float **x, long *len)
{
    double rate;
    *x = read_wav(wav_a, len, &rate);
    struct host *H = calloc(1, sizeof *H);
    host_open(H, rate);
    control_seq(H, NULL);
    return H;
}

static void host_done(struct host *H, float *x)
{
    host_close(H);
    free(H);
    free(x);
}

static void patch_set(void **state)
{
    long len;
    float *x;
    struct host *H = host_on_a(&x, &len);
    atomic_store(&rt_calls, 0);
    run_block(H, x, 512);
    char missing[4096], text[4096], good[4096];
    snprintf(missing, sizeof missing, "%s/no-such-model.safetensors", work);
    snprintf(text, sizeof text, "%s/notes.txt", work);
    FILE *f = fopen(text, "w");
    assert_non_null(f);
    fputs("not a model\n", f);
    fclose(f);
    snprintf(good, sizeof good, "%s/final/cbrnn-model.safetensors", work);
    const char *bad[] = {missing, text};
    for (int i = 0; i < 2; i++) {
        char why[1024];
        H->last_error[0] = '\0';
        log_clear();
        control_seq(H, bad[i]);
        int64_t before = H->frames_seen;
        RUN_UNTIL(H, x, H->last_error[0]);
        print_message("refused: %s\n", H->last_error);
        if (!strstr(H->last_error, bad[i]))
            fail_msg("the error '%s' does not name %s", H->last_error, bad[i]);
        expect_logged("patch:Set of a bad file", "model not loaded: ",
                      load_error(bad[i], why, sizeof why), "; the current model stays", NULL);
        RUN_UNTIL(H, x, H->frames_seen > before + 10); /* the old model runs on */
    }
    assert_int_equal(H->restarts, 0);
    control_seq(H, good);
    RUN_UNTIL(H, x, H->last_model[0]);
    assert_string_equal(H->last_model, good);
    RUN_UNTIL(H, x, H->restarts == 1); /* a new engine: frames from 0 */
    /* The job that frees the replaced engine refused (a full queue), then
     * the instance closed at once (hosts drop pending jobs at close): the
     * plugin still frees every engine it let go (LeakSanitizer and
     * valgrind watch this test). */
    H->last_model[0] = '\0';
    atomic_store(&H->drop_free, 1);
    control_seq(H, good);
    RUN_UNTIL(H, x, H->last_model[0]);
    RUN_UNTIL(H, x, H->restarts == 2);
    assert_int_equal(atomic_load(&H->refuse_next), 0); /* the free job was refused */
    expect_rt_clean("patch:Set loads");
    host_done(H, x);
}

/* The row of the CSV decoded so far that belongs to frame `frame`, or NULL. */
static const char *csv_row(const struct host *H, int64_t frame)
{
    char key[32];
    int n = snprintf(key, sizeof key, "%lld,", (long long)frame);
    for (const char *p = H->csv; p && *p;) {
        if (!strncmp(p, key, (size_t)n))
            return p;
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return NULL;
}

/* enable off: surprise and outputs silent, thru still the delayed input;
 * reset (a trigger): the next frame carries flag 8; a cbrnn:Mark: the next
 * frame carries its id in the marker column. */
static void controls(void **state)
{
    long len;
    float *x;
    struct host *H = host_on_a(&x, &len);
    atomic_store(&rt_calls, 0);
    for (int k = 0; k < 40; k++)
        run_block(H, x + k * 256, 256);
    int lat = (int)H->ctl[P_LATENCY];
    assert_true(lat > 0);
    H->ctl[P_ENABLE] = 0;
    run_block(H, x + 40 * 256, 256);
    for (int i = 0; i < 256; i++) {
        assert_true(H->audio[P_SURPRISE][i] == 0.0f);
        assert_true(H->audio[P_OUT1][i] == 0.0f);
        assert_true(H->audio[P_THRU][i] == x[40 * 256 + i - lat]);
    }
    H->ctl[P_ENABLE] = 1;
    H->ctl[P_RESET] = 1;
    int64_t before = H->last_frame;
    RUN_UNTIL(H, x, H->last_frame > before + 2);
    const char *row = csv_row(H, before + 1);
    assert_non_null(row);
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(strchr(row, '\n') - row), row);
    if (!(atoi(strrchr(line, ',') + 1) & CBRNN_REC_RESET))
        fail_msg("frame %lld after the reset trigger: flags in '%s' lack 8", (long long)before + 1,
                 line);
    H->ctl[P_RESET] = 0;
    control_mark(H, 42);
    before = H->last_frame;
    RUN_UNTIL(H, x, H->last_frame > before + 2);
    row = csv_row(H, before + 1);
    assert_non_null(row);
    snprintf(line, sizeof line, "%.*s", (int)(strchr(row, '\n') - row), row);
    if (!strstr(line, ",42,"))
        fail_msg("frame %lld after cbrnn:Mark 42: '%s' has no marker 42", (long long)before + 1,
                 line);
    expect_rt_clean("controls");
    host_done(H, x);
}

/* A classify model (put in by a restored state) takes its labels from MIDI
 * notes on the control port, split at their sample: note 60 held over
 * 1.0-2.5 s (class 0), note 61 over 3.0-4.5 s (class 1), in random blocks,
 * gives the frames.csv of `cbrnn run --labels` with those segments. */
static void classify_midi(void **state)
{
    double rate = file_rate(wav_a);
    struct midi_ev ev[] = {{lround(1.0 * rate), {0x90, 60, 100}},
                           {lround(2.5 * rate), {0x80, 60, 0}},
                           {lround(3.0 * rate), {0x90, 61, 100}},
                           {lround(4.5 * rate), {0x90, 61, 0}}};
    struct host *H = calloc(1, sizeof *H);
    host_open(H, rate);
    struct saved st;
    memset(&st, 0, sizeof st);
    st.key = U(NS "model");
    st.type = U(LV2_ATOM__Path);
    snprintf(st.value, sizeof st.value, "%s", cls_model);
    restore_state(H, &st);
    H->ctl[P_LEARN] = 1;
    atomic_store(&rt_calls, 0);
    run_file(H, wav_a, NULL, ev, 4);
    expect_rt_clean("classify with MIDI labels");
    expect_same_csv(H, ref_c);
    host_close(H);
    free(H);
}

/* A map model learns from the side-chain teacher while teacher_on is on:
 * `cbrnn run --teacher` on the same two signals gives the same frames. */
static void map_teacher(void **state)
{
    long n, nt;
    double rate, rate_t;
    float *t = read_wav(wav_t, &nt, &rate_t);
    float *x = read_wav(wav_a, &n, &rate);
    assert_true(rate == rate_t);
    float *tt = calloc((size_t)n, sizeof(float)); /* the teacher, zero past its end */
    memcpy(tt, t, (size_t)(nt < n ? nt : n) * sizeof(float));
    struct host *H = calloc(1, sizeof *H);
    host_open(H, rate);
    struct saved st;
    memset(&st, 0, sizeof st);
    st.key = U(NS "model");
    st.type = U(LV2_ATOM__Path);
    snprintf(st.value, sizeof st.value, "%s", map_model);
    restore_state(H, &st);
    H->ctl[P_LEARN] = 1;
    H->ctl[P_TEACHER_ON] = 1;
    H->teacher = tt;
    atomic_store(&rt_calls, 0);
    run_file(H, wav_a, NULL, NULL, 0);
    expect_rt_clean("map with a teacher");
    expect_same_csv(H, ref_m);
    host_close(H);
    free(H);
    free(tt);
    free(t);
    free(x);
}

/* Hosts instantiate plugins from several threads at once (a session
 * loading): every instance plans FFTW, whose planner is not thread-safe;
 * the plugin serialises planning process-wide (dsp/feat.c). Four threads
 * instantiate, run and free instances at two rates at the same time. */
struct inst_job {
    const LilvPlugin *plugin;
    double rate;
    int ok;
};

static void *inst_main(void *arg)
{
    struct inst_job *j = arg;
    static LV2_Feature fmap = {LV2_URID__map, &map};
    const LV2_Feature *feats[] = {&fmap, NULL};
    float buf[8][256] = {{0}}, ctl[N_PORTS] = {0};
    for (int k = 0; k < 8; k++) {
        LilvInstance *in = lilv_plugin_instantiate(j->plugin, j->rate, feats);
        if (!in)
            return NULL;
        for (int i = 0; i < 8; i++)
            lilv_instance_connect_port(in, (uint32_t)i, buf[i]);
        for (int i = P_ENABLE; i < N_PORTS; i++)
            lilv_instance_connect_port(in, (uint32_t)i, &ctl[i]);
        ctl[P_ENABLE] = 1;
        lilv_instance_activate(in);
        lilv_instance_run(in, 256);
        lilv_instance_deactivate(in);
        lilv_instance_free(in);
    }
    j->ok = 1;
    return NULL;
}

static void concurrent_instances(void **state)
{
    struct host *H = calloc(1, sizeof *H);
    host_open(H, 48000);
    struct inst_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct inst_job){H->plugin, i % 2 ? 44100.0 : 48000.0, 0};
        pthread_create(&th[i], NULL, inst_main, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        if (!jobs[i].ok)
            fail_msg("thread %d: an instance failed to instantiate", i);
    }
    host_close(H);
    free(H);
}

/* ---------------- damaged states, a bundle without its model ---------------- */

static void write_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

/* Restores the state lilv saved in dir into H the way jalv -l does: lilv
 * reads state.ttl, maps the model's path into dir and calls the plugin's
 * restore, whose status it drops (the log is all a user can see). */
static void lilv_restore_dir(struct host *H, const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/state.ttl", dir);
    LilvState *st = lilv_state_new_from_file(H->world, &map, NULL, p);
    assert_non_null(st);
    lilv_state_restore(st, H->inst, NULL, NULL, 0, NULL);
    lilv_state_free(st);
}

/* A state saved by lilv from H's instance into dir (makePath: lilv's). */
static void lilv_save_dir(struct host *H, const char *dir)
{
    static LV2_Feature fmap = {LV2_URID__map, &map};
    const LV2_Feature *feats[] = {&fmap, NULL};
    LilvState *st = lilv_state_new_from_instance(H->plugin, H->inst, &map, NULL, dir, dir, dir,
                                                 NULL, NULL,
                                                 LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE, feats);
    assert_non_null(st);
    assert_int_equal(lilv_state_save(H->world, &map, &unmap, st, NULL, dir, "state.ttl"), 0);
    lilv_state_free(st);
}

/* The good state restores on a fresh instance and logs nothing. */
static void expect_state_restores(const char *dir, const char *model)
{
    long len;
    float *x;
    struct host *H = host_on_a(&x, &len);
    log_clear();
    lilv_restore_dir(H, dir);
    RUN_UNTIL(H, x, H->last_model[0]);
    assert_string_equal(H->last_model, model);
    if (log_len)
        fail_msg("a good state logged: %s", log_text);
    host_done(H, x);
}

static void damaged_state(void **state)
{
    long len;
    float *x;
    struct host *H = host_on_a(&x, &len);
    H->ctl[P_LEARN] = 1;
    for (int k = 0; k < 40; k++)
        run_block(H, x + k * 512, 512);
    char dir[2048], model[4096], def[4096];
    snprintf(dir, sizeof dir, "%s/lilv_state", work);
    snprintf(model, sizeof model, "%s/cbrnn-model.safetensors", dir);
    snprintf(def, sizeof def, "%s/cbrnn.lv2/default.safetensors", lv2_dir);
    lilv_save_dir(H, dir);
    expect_state_restores(dir, model);
    size_t n;
    char *good = slurp(model, &n);
    const char *text = "not a model, just some text\n";
    const char *what[] = {"truncated", "replaced by text", "deleted"};
    const LV2_Feature *none[] = {NULL};
    for (int i = 0; i < 3; i++) {
        if (i == 0)
            write_file(model, good, n / 2);
        else if (i == 1)
            write_file(model, text, strlen(text));
        else
            assert_int_equal(unlink(model), 0);
        char why[1024];
        load_error(model, why, sizeof why);
        log_clear();
        H->last_error[0] = '\0';
        int64_t before = H->frames_seen, restarts = H->restarts;
        lilv_restore_dir(H, dir);
        expect_logged(what[i], "state not restored: ", why,
                      "; the plugin keeps the weights it had (from ", def, NULL);
        RUN_UNTIL(H, x, H->last_error[0]);
        if (!strstr(H->last_error, why))
            fail_msg("%s: notify's error '%s' is not '%s'", what[i], H->last_error, why);
        RUN_UNTIL(H, x, H->frames_seen > before + 10);
        assert_int_equal(H->restarts, restarts); /* the same engine runs on */
        /* the plugin's status, which lilv drops */
        struct saved sv = {U(NS "model"), U(LV2_ATOM__Path), ""};
        snprintf(sv.value, sizeof sv.value, "%s", model);
        assert_int_equal(H->si->restore(lilv_instance_get_handle(H->inst), retrieve, &sv, 0, none),
                         LV2_STATE_ERR_UNKNOWN);
    }
    struct saved bad = {U(NS "model"), U(LV2_ATOM__String), "x"};
    log_clear();
    assert_int_equal(H->si->restore(lilv_instance_get_handle(H->inst), retrieve, &bad, 0, none),
                     LV2_STATE_ERR_BAD_TYPE);
    expect_logged("a cbrnn:model of type atom:String", "cbrnn:model is not an atom:Path", NULL);
    /* An empty state: the spec's reset; nothing changes, nothing is logged. */
    struct saved empty = {U(NS "no-such-key"), U(LV2_ATOM__Path), ""};
    log_clear();
    assert_int_equal(H->si->restore(lilv_instance_get_handle(H->inst), retrieve, &empty, 0, none),
                     LV2_STATE_SUCCESS);
    if (log_len)
        fail_msg("an empty state logged: %s", log_text);
    expect_rt_clean("restores refused");
    /* A save that cannot write its file says so too. */
    struct saved st;
    log_clear();
    assert_int_equal(save_state(H, "/proc/cbrnn-no-such-dir", &st), LV2_STATE_ERR_UNKNOWN);
    expect_logged("a save into /proc", "state not saved: ",
                  "/proc/cbrnn-no-such-dir/cbrnn-model.safetensors", NULL);
    free(good);
    host_done(H, x);
}

/* ---------------- states without state:makePath ----------------
 * makePath is optional in the LV2 state spec: a host may call save()
 * without it (and lilv does when it keeps a state in memory, with no save
 * folder). The learned weights must still reach the state. */

/* A host's store keeping values of any size (the inline model is 2.6 MB)
 * under a few keys; cap > 0: values above cap bytes are refused, as by a
 * host that keeps only small values. */
struct value {
    uint32_t key, type, flags;
    unsigned char *data;
    size_t size;
};
struct blob {
    struct value v[4];
    int n;
    size_t cap;
};

static LV2_State_Status store_blob(LV2_State_Handle h, uint32_t key, const void *v, size_t size,
                                   uint32_t type, uint32_t flags)
{
    struct blob *b = h;
    if (b->cap && size > b->cap)
        return LV2_STATE_ERR_UNKNOWN;
    int i;
    for (i = 0; i < b->n && b->v[i].key != key; i++)
        ;
    assert_true(i < 4);
    unsigned char *c = malloc(size ? size : 1);
    assert_non_null(c);
    memcpy(c, v, size);
    if (i < b->n)
        free(b->v[i].data);
    else
        b->n++;
    b->v[i] = (struct value){key, type, flags, c, size};
    return LV2_STATE_SUCCESS;
}

static const struct value *blob_get(const struct blob *b, const char *key)
{
    for (int i = 0; i < b->n; i++)
        if (b->v[i].key == U(key))
            return &b->v[i];
    return NULL;
}

static const void *retrieve_blob(LV2_State_Handle h, uint32_t key, size_t *size, uint32_t *type,
                                 uint32_t *flags)
{
    const struct blob *b = h;
    for (int i = 0; i < b->n; i++)
        if (b->v[i].key == key) {
            *size = b->v[i].size;
            *type = b->v[i].type;
            *flags = b->v[i].flags;
            return b->v[i].data;
        }
    return NULL;
}

static void blob_free(struct blob *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->v[i].data);
    b->n = 0;
}

/* b must name the model file path under cbrnn:model (an atom:Path). */
static void expect_path(const struct blob *b, const char *path)
{
    const struct value *m = blob_get(b, NS "model");
    if (!m)
        fail_msg("the state has no cbrnn:model");
    assert_int_equal(m->type, U(LV2_ATOM__Path));
    assert_string_equal((const char *)m->data, path);
}

/* save() and restore() as a host without makePath calls them: no features. */
static LV2_State_Status save_bare(struct host *H, struct blob *b)
{
    const LV2_Feature *none[] = {NULL};
    return H->si->save(lilv_instance_get_handle(H->inst), store_blob, b,
                       LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE, none);
}

static LV2_State_Status restore_bare(struct host *H, struct blob *b)
{
    const LV2_Feature *none[] = {NULL};
    return H->si->restore(lilv_instance_get_handle(H->inst), retrieve_blob, b, 0, none);
}

/* The weights H runs now, as the model file a save with makePath writes in
 * WORKDIR/name; its path in out. */
static void weights_file(struct host *H, const char *name, char *out, size_t n)
{
    char dir[4096];
    struct saved st;
    snprintf(dir, sizeof dir, "%s/%s", work, name);
    assert_int_equal(save_state(H, dir, &st), LV2_STATE_SUCCESS);
    snprintf(out, n, "%s", st.value);
}

/* Parameters that differ between the model files a and b. */
static size_t count_changed(const char *a, const char *b)
{
    char msg[1024];
    cbrnn_model *x = cbrnn_model_load(a, NULL, msg, sizeof msg);
    if (!x)
        fail_msg("%s", msg);
    cbrnn_model *y = cbrnn_model_load(b, NULL, msg, sizeof msg);
    if (!y)
        fail_msg("%s", msg);
    assert_int_equal(x->n_params, y->n_params);
    size_t n = 0;
    for (size_t i = 0; i < x->n_params; i++)
        n += memcmp(&x->params[i], &y->params[i], sizeof(float)) != 0;
    cbrnn_model_destroy(x);
    cbrnn_model_destroy(y);
    return n;
}

/* All of voice A (5 s) with learning on, then a block with it off (the
 * weights stay as they are from then on). */
static void learn_a(struct host *H, const float *x, long len)
{
    H->ctl[P_LEARN] = 1;
    for (long k = 0; k + 512 <= len; k += 512)
        run_block(H, x + k, 512);
    H->ctl[P_LEARN] = 0;
    run_block(H, x, 512);
}

static void expect_no_log(const char *what)
{
    if (log_len)
        fail_msg("%s logged: %s", what, log_text);
}

/* A save without makePath: before any learning the state names the model
 * file (as it did); after learning it also holds the learned model itself
 * (cbrnn:adaptedModel, an atom:Chunk with the bytes of the model file a
 * save with makePath writes at that moment); restored into a fresh
 * instance it gives those weights bit for bit (and saved again without
 * makePath, having no file behind them, they stay inline), and the same
 * frames (bit for bit, learning on) as an instance restored from that
 * file. */
static void learned_state_without_makepath(void **state)
{
    long len;
    float *x, *x2, *x3;
    struct host *H = host_on_a(&x, &len);
    char def[4096], learned[4096], again[4096], chunk[4096];
    snprintf(def, sizeof def, "%s/cbrnn.lv2/default.safetensors", lv2_dir);
    struct blob b = {0};
    log_clear();
    assert_int_equal(save_bare(H, &b), LV2_STATE_SUCCESS);
    assert_int_equal(b.n, 1);
    expect_path(&b, def);
    expect_no_log("a save before learning");
    blob_free(&b);
    atomic_store(&rt_calls, 0);
    learn_a(H, x, len);
    log_clear();
    LV2_State_Status rc = save_bare(H, &b);
    const struct value *am = blob_get(&b, NS "adaptedModel");
    if (!am)
        fail_msg("after learning, save() without makePath returned %d and stored %d value(s) "
                 "but no cbrnn:adaptedModel: the learned weights are not in the state", (int)rc,
                 b.n);
    assert_int_equal(rc, LV2_STATE_SUCCESS);
    assert_int_equal(am->type, U(LV2_ATOM__Chunk));
    assert_int_equal(am->flags, LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
    expect_path(&b, def); /* what it was adapted from */
    expect_no_log("a save of the learned weights");
    weights_file(H, "inline_ref", learned, sizeof learned);
    size_t changed = count_changed(learned, def);
    print_message("inline state: %zu bytes; learning changed %zu parameters\n", am->size,
                  changed);
    if (!changed)
        fail_msg("learning changed nothing: the test shows nothing");
    snprintf(chunk, sizeof chunk, "%s/inline_chunk.safetensors", work);
    write_file(chunk, am->data, am->size);
    expect_same_weights(chunk, learned);
    /* a fresh instance restored from the chunk */
    struct host *G = host_on_a(&x2, &len);
    log_clear();
    assert_int_equal(restore_bare(G, &b), LV2_STATE_SUCCESS);
    expect_no_log("restoring the inline state");
    weights_file(G, "inline_restored", again, sizeof again);
    expect_same_weights(learned, again);
    /* saved again without makePath, with no file behind it: inline only */
    struct blob b2 = {0};
    assert_int_equal(save_bare(G, &b2), LV2_STATE_SUCCESS);
    assert_int_equal(b2.n, 1);
    am = blob_get(&b2, NS "adaptedModel");
    assert_non_null(am);
    write_file(chunk, am->data, am->size);
    expect_same_weights(chunk, learned);
    blob_free(&b2);
    expect_no_log("saving the restored inline state again");
    /* its frames, learning on, against an instance restored from the file */
    struct host *F = host_on_a(&x3, &len);
    struct saved st = {U(NS "model"), U(LV2_ATOM__Path), ""};
    snprintf(st.value, sizeof st.value, "%s", learned);
    restore_state(F, &st);
    G->ctl[P_LEARN] = F->ctl[P_LEARN] = 1;
    for (long k = 0; k + 1024 <= len; k += 1024) {
        run_block(G, x + k, 1024);
        run_block(F, x + k, 1024);
    }
    assert_true(G->frames_seen > 400);
    assert_int_equal(G->csv_len, F->csv_len);
    if (memcmp(G->csv, F->csv, G->csv_len))
        fail_msg("restored inline and restored from the file: the frames differ");
    expect_rt_clean("learning, then running restored states");
    blob_free(&b);
    host_done(F, x3);
    host_done(G, x2);
    host_done(H, x);
}

/* lilv keeps a state in memory when a host gives it no save folder
 * (lilv_state_new_from_instance with save_dir NULL: no makePath), and
 * writes it as Turtle (lilv_state_to_string) in the host's own session
 * file; read back (lilv_state_new_from_string) and restored into a fresh
 * instance, it gives the learned weights bit for bit. */
static void lilv_state_in_memory(void **state)
{
    long len;
    float *x, *x2;
    struct host *H = host_on_a(&x, &len);
    learn_a(H, x, len);
    static LV2_Feature fmap = {LV2_URID__map, &map};
    const LV2_Feature *feats[] = {&fmap, NULL};
    log_clear();
    LilvState *st = lilv_state_new_from_instance(H->plugin, H->inst, &map, NULL, NULL, NULL, NULL,
                                                 NULL, NULL,
                                                 LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE, feats);
    assert_non_null(st);
    char *ttl = lilv_state_to_string(H->world, &map, &unmap, st, "urn:cbrnn:test#state", NULL);
    assert_non_null(ttl);
    lilv_state_free(st);
    expect_no_log("lilv's save in memory");
    char learned[4096], again[4096];
    weights_file(H, "lilv_memory_ref", learned, sizeof learned);
    print_message("lilv's Turtle: %zu bytes\n", strlen(ttl));
    struct host *G = host_on_a(&x2, &len);
    LilvState *back = lilv_state_new_from_string(G->world, &map, ttl);
    assert_non_null(back);
    lilv_state_restore(back, G->inst, NULL, NULL, 0, NULL);
    lilv_state_free(back);
    lilv_free(ttl);
    expect_no_log("lilv's restore from Turtle");
    weights_file(G, "lilv_memory_restored", again, sizeof again);
    expect_same_weights(learned, again);
    host_done(G, x2);
    host_done(H, x);
}

/* A host that takes no large value and gives no makePath: the learned
 * weights cannot be kept. save() says so (LV2_STATE_ERR_NO_FEATURE and an
 * error in the log naming what is lost); the state names the model file,
 * so that the session at least reopens on the model it ran. */
static void host_refuses_inline_state(void **state)
{
    long len;
    float *x;
    struct host *H = host_on_a(&x, &len);
    char def[4096];
    snprintf(def, sizeof def, "%s/cbrnn.lv2/default.safetensors", lv2_dir);
    learn_a(H, x, len);
    struct blob b = {.cap = 4096};
    log_clear();
    LV2_State_Status rc = save_bare(H, &b);
    if (rc == LV2_STATE_SUCCESS)
        fail_msg("save() claimed success; it stored %d value(s), the first %s", b.n,
                 b.n && b.v[0].type == U(LV2_ATOM__Path) ? (const char *)b.v[0].data : "-");
    assert_int_equal(rc, LV2_STATE_ERR_NO_FEATURE);
    expect_logged("learned weights the host would not keep", "state not saved whole: ",
                  "state:makePath", "what the plugin learned since loading ", def, "is lost", NULL);
    assert_int_equal(b.n, 1);
    expect_path(&b, def);
    blob_free(&b);
    host_done(H, x);
}

/* Inline models that are damaged (truncated, empty, text) or of a format
 * this plugin does not know (a later cbrnn-N) are refused like a damaged
 * model file, not passed over for the file cbrnn:model names beside them:
 * LV2_STATE_ERR_UNKNOWN, an error in the log naming the reason, a
 * cbrnn:Error on notify, and the running engine (with the weights it
 * learned) runs on, unchanged. A value of another type is
 * LV2_STATE_ERR_BAD_TYPE. The intact bytes then restore. */
static void damaged_inline_state(void **state)
{
    long len;
    float *x;
    struct host *H = host_on_a(&x, &len);
    char def[4096], before[4096], after[4096];
    snprintf(def, sizeof def, "%s/cbrnn.lv2/default.safetensors", lv2_dir);
    atomic_store(&rt_calls, 0);
    learn_a(H, x, len);
    weights_file(H, "damaged_inline_before", before, sizeof before);
    size_t n;
    unsigned char *good = (unsigned char *)slurp(before, &n);
    unsigned char *bad = malloc(n);
    assert_non_null(bad);
    const char *text = "not a model, just some text\n";
    const char *what[] = {"truncated", "a later format", "text", "empty"};
    for (int i = 0; i < 4; i++) {
        size_t size = n;
        memcpy(bad, good, n);
        if (i == 0) {
            size = n / 2;
        } else if (i == 1) {
            unsigned char *f = memmem(bad, 4096, "\"format\":\"cbrnn-", 16);
            assert_non_null(f);
            f[16] = '9';
        } else if (i == 2) {
            size = strlen(text);
            memcpy(bad, text, size);
        } else {
            size = 0;
        }
        char why[1024];
        cbrnn_model *m = cbrnn_model_load_mem(bad, size, NULL, why, sizeof why);
        if (m)
            fail_msg("%s: the model loads: it should not", what[i]);
        struct blob b = {{{U(NS "adaptedModel"), U(LV2_ATOM__Chunk),
                           LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE, bad, size},
                          {U(NS "model"), U(LV2_ATOM__Path), LV2_STATE_IS_POD, (unsigned char *)def,
                           strlen(def) + 1}},
                         2, 0};
        log_clear();
        H->last_error[0] = '\0';
        int64_t frames = H->frames_seen, restarts = H->restarts;
        assert_int_equal(restore_bare(H, &b), LV2_STATE_ERR_UNKNOWN);
        expect_logged(what[i], "state not restored: ", "kept inline in the state", why,
                      "; the plugin keeps the weights it had (from ", def, NULL);
        RUN_UNTIL(H, x, H->last_error[0]);
        if (!strstr(H->last_error, why))
            fail_msg("%s: notify's error '%s' is not '%s'", what[i], H->last_error, why);
        RUN_UNTIL(H, x, H->frames_seen > frames + 10);
        assert_int_equal(H->restarts, restarts); /* the same engine runs on */
    }
    weights_file(H, "damaged_inline_after", after, sizeof after);
    expect_same_weights(before, after);
    /* a cbrnn:adaptedModel of another type */
    struct blob b = {{{U(NS "adaptedModel"), U(LV2_ATOM__Path), LV2_STATE_IS_POD,
                       (unsigned char *)def, strlen(def) + 1}},
                     1, 0};
    log_clear();
    assert_int_equal(restore_bare(H, &b), LV2_STATE_ERR_BAD_TYPE);
    expect_logged("an atom:Path as cbrnn:adaptedModel", "cbrnn:adaptedModel is not an atom:Chunk",
                  NULL);
    /* the intact bytes restore: a new engine, frames from 0 */
    b.v[0] = (struct value){U(NS "adaptedModel"), U(LV2_ATOM__Chunk),
                            LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE, good, n};
    int64_t restarts = H->restarts;
    log_clear();
    assert_int_equal(restore_bare(H, &b), LV2_STATE_SUCCESS);
    expect_no_log("the intact inline state");
    RUN_UNTIL(H, x, H->restarts == restarts + 1);
    expect_rt_clean("inline states refused and restored");
    free(bad);
    free(good);
    host_done(H, x);
}

/* Instantiates the plugin of the bundle at dir with these features into
 * *inst, with stderr in the file err. */
static void instantiate_to(const char *dir, const LV2_Feature *const *feats, const char *err,
                           LilvInstance **inst)
{
    LilvWorld *w = lilv_world_new();
    LilvNode *bn = lilv_new_file_uri(w, NULL, dir);
    lilv_world_load_bundle(w, bn);
    lilv_node_free(bn);
    LilvNode *uri = lilv_new_uri(w, URI);
    const LilvPlugin *pl = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(w), uri);
    lilv_node_free(uri);
    assert_non_null(pl);
    fflush(stderr);
    int saved = dup(2), fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    *inst = lilv_plugin_instantiate(pl, 48000, feats);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (*inst)
        lilv_instance_free(*inst);
    lilv_world_free(w);
}

static void bundle_without_model(void **state)
{
    const char *copy[] = {"nodefault", "textdefault"};
    static LV2_Feature fmap = {LV2_URID__map, &map}, flog = {LV2_LOG__log, &host_log};
    const LV2_Feature *with_log[] = {&fmap, &flog, NULL}, *with_map[] = {&fmap, NULL};
    for (int i = 0; i < 2; i++) {
        char b[2048], model[4096], err[4096], why[1024];
        snprintf(b, sizeof b, "%s/%s/cbrnn.lv2/", work, copy[i]);
        snprintf(model, sizeof model, "%sdefault.safetensors", b);
        snprintf(err, sizeof err, "%s/%s.stderr", work, copy[i]);
        load_error(model, why, sizeof why);
        LilvInstance *in;
        log_clear();
        instantiate_to(b, with_log, err, &in);
        assert_null(in);
        expect_logged(copy[i], "not instantiated: the bundle's default model: ", why, NULL);
        /* Hosts without log:log (lv2apply gives no features at all): stderr. */
        for (int k = 0; k < 2; k++) {
            instantiate_to(b, k ? with_map : NULL, err, &in);
            assert_null(in);
            size_t n;
            char *t = slurp(err, &n);
            if (!strstr(t, "cbrnn.lv2: not instantiated: ") || !strstr(t, why))
                fail_msg("%s, no log:log: stderr says '%s'", copy[i], t);
            free(t);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 12) {
        fprintf(stderr, "usage: test_lv2_host LV2_DIR A.wav B.wav REF_A REF_B WORKDIR "
                        "CLS_MODEL REF_C MAP_MODEL T.wav REF_M\n");
        return 2;
    }
    cls_model = argv[7], ref_c = argv[8], map_model = argv[9], wav_t = argv[10], ref_m = argv[11];
    lv2_dir = argv[1], wav_a = argv[2], wav_b = argv[3], ref_a = argv[4], ref_b = argv[5];
    work = argv[6];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blocks_notify_rt_save),
        cmocka_unit_test(restore_continues),
        cmocka_unit_test(patch_set),
        cmocka_unit_test(controls),
        cmocka_unit_test(classify_midi),
        cmocka_unit_test(map_teacher),
        cmocka_unit_test(concurrent_instances),
        cmocka_unit_test(damaged_state),
        cmocka_unit_test(learned_state_without_makepath),
        cmocka_unit_test(lilv_state_in_memory),
        cmocka_unit_test(host_refuses_inline_state),
        cmocka_unit_test(damaged_inline_state),
        cmocka_unit_test(bundle_without_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
