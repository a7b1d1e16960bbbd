/* engine.c: the real-time streaming processor (see cbrnn_engine.h): audio
 * in, per hop features -> normalisation -> cortex step -> head forward ->
 * online update -> records and held control outputs.
 *
 * Everything is allocated and touched in cbrnn_engine_create. The audio
 * path (cbrnn_engine_process and what it calls) must never allocate, lock,
 * print, wait or make a system call; tests/engine/test_engine_rt.c
 * interposes the allocator and the pthread waits to hold it to that.
 * It therefore never calls CBLAS (OpenBLAS 0.3.21 takes a pthread mutex in
 * its buffer allocator even with one thread): the per-frame math is in
 * engine_kernels.c on the vector kernels of engine_simd*.c and the
 * activation primitives of model/layers.h.
 *
 * Frame order for predict (horizon k): when frame t arrives, the
 * prediction made at t - k is scored against x_t and the head learns from
 * it (exact per-frame gradient for k = 1: nothing changed the weights
 * since that prediction), then the cortex steps and the head predicts
 * x_{t+k}. For map and classify the target is known in the same frame:
 * step, forward, score, learn. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "cbrnn/cbrnn_engine.h"
#include "engine_internal.h"
#include "engine_simd.h"
#include "layers.h"
#include "spsc.h"

void cbrnn_engine_config_default(cbrnn_engine_config *c, double sample_rate)
{
    if (!c)
        return;
    memset(c, 0, sizeof *c);
    c->sample_rate = sample_rate;
    c->learn = 0;
    /* lr 1e-3 with momentum 0.9 (effective step 1e-2 per unit gradient):
     * measured on the default model and voice B (docs/ADAPTATION.md) to
     * lower the loss within seconds without diverging. */
    c->lr = 1e-3f;
    c->momentum = 0.9f;
    c->decay = 0.0f;
    c->bptt_k = 4;
    c->record_capacity = 4096;
    c->record_outputs = 0;
    c->command_capacity = 256;
    /* Applied control changes: a host drains them with the records (at
     * least every 0.2 s), and nothing sends 1024 commands in that time. */
    c->event_capacity = 1024;
    c->surprise_frames = 100;
    /* Surprise's floor, in loss units: below the smallest per-frame loss of
     * the default model on speech (0.007; median 0.07), so it barely
     * changes surprise there; it bounds what a steady input (silence, DC)
     * does to it (cbrnn_engine.h). The maximum sits above anything speech
     * gave (47.6 over 30 s of voice B, 630 after 30 s of full-scale DC). */
    c->surprise_floor = 0.01f;
    c->surprise_max = 1000.0f;
    c->diverge_ratio = 1e6f;
    c->checkpoint_frames = 100;
    /* Half a second: beyond the delays of delayed-auditory-feedback studies
     * (typically 50..200 ms), and 96 KB of delay line at 48 kHz. */
    c->perturb_max_delay_ms = 500.0f;
}

/* Snapshot slot traffic: which slot, for which request, at which frame. */
struct snap_msg {
    int slot;
    int id;
    int64_t frame;
};

static float *falloc(size_t n)
{
    /* 64-byte aligned and zeroed (touched) so the audio thread never
     * faults a page in; +1 keeps n == 0 valid. */
    size_t bytes = ((n + 1) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p)
        rt_touch_zero(p, bytes);
    return p;
}

static int config_ok(const cbrnn_engine_config *c)
{
    return c && isfinite(c->lr) && c->lr >= 0 && isfinite(c->momentum) && c->momentum >= 0 &&
           c->momentum < 1 && isfinite(c->decay) && c->decay >= 0 && c->bptt_k >= 1 &&
           c->bptt_k <= 1024 && c->record_capacity >= 1 && c->command_capacity >= 1 &&
           c->event_capacity >= 1 && isfinite(c->gate_db) &&
           (c->gate_db == 0 || (c->gate_db >= CBRNN_GATE_DB_MIN && c->gate_db < 0)) &&
           c->surprise_frames >= 1 && c->checkpoint_frames >= 1 && isfinite(c->surprise_floor) &&
           c->surprise_floor > 0 && isfinite(c->surprise_max) && c->surprise_max >= 1 &&
           isfinite(c->diverge_ratio) && (c->diverge_ratio == 0 || c->diverge_ratio >= 1) &&
           (unsigned)c->rule <= CBRNN_RULE_RLS && isfinite(c->rls_prior) && c->rls_prior >= 0 &&
           c->rls_prior <= 1e9f && (c->rls_forget == 0 || (c->rls_forget >= 0.9f && c->rls_forget <= 1)) &&
           c->perturb >= 0 && c->perturb <= 2 && (c->perturb || !c->listen) &&
           (!c->perturb ||
            (isfinite(c->perturb_max_delay_ms) && c->perturb_max_delay_ms > 0 &&
             c->perturb_max_delay_ms <= CBRNN_PERTURB_DELAY_MAX_MS &&
             !cbrnn_perturb_check(CBRNN_PERTURB_DELAY, c->perturb_delay_ms, 0) &&
             c->perturb_delay_ms <= c->perturb_max_delay_ms &&
             !cbrnn_perturb_check(CBRNN_PERTURB_GAIN, c->perturb_gain_db, 0) &&
             !cbrnn_perturb_check(CBRNN_PERTURB_PITCH, c->perturb_pitch, 0) &&
             (c->perturb == 2 || c->perturb_pitch == 0)));
}

void cbrnn_engine_destroy(cbrnn_engine *e)
{
    if (!e)
        return;
    cbrnn_feat_destroy(e->feat);
    cbrnn_feat_destroy(e->tfeat);
    cbrnn_perturb_destroy(e->pert);
    cbrnn_model_destroy(e->m);
    cbrnn_model_destroy(e->loaded);
    spsc_free(&e->cmds);
    spsc_free(&e->recs);
    spsc_free(&e->snap_free);
    spsc_free(&e->snap_full);
    spsc_free(&e->events);
    free(e->block);
    free(e->rls_P);
    free(e->rls_u);
    free(e->rls_nz);
    free(e->rls_pd);
    free(e->rls_snap[0]);
    free(e->rls_snap[1]);
    free(e->rec_buf);
    free(e->rec_buf_rt);
    free(e);
}

/* Carves every per-stream and learning buffer out of one block. */
static int alloc_buffers(cbrnn_engine *e)
{
    const int N = e->N, F = e->F, O = e->O;
    size_t need = 0;
    int widest = N > F ? N : F;
    for (int l = 0; l < e->L; l++)
        if (e->dim[l + 1] > widest)
            widest = e->dim[l + 1];
    widest += N + F; /* the loop wiring's CB input [h_{t-1}, x_t] */
    /* sizes in floats, each rounded to 16 (64 bytes) */
#define R16(n) (((size_t)(n) + 15) & ~(size_t)15)
    size_t per_slot = R16(e->dim[0]) + 2 * R16(N) + 3 * R16(F) + R16(O);
    for (int l = 0; l < e->L; l++)
        per_slot += R16(e->dim[l + 1]);
    need += (size_t)e->n_slots * per_slot;
    need += R16(F) * 8 + R16(N) * 6 + R16(O) * 2 + R16(widest) * 2;
    for (int l = 0; l < e->L; l++)
        need += R16(e->dim[l + 1]);      /* da[l] */
    need += R16(e->head_n) * 5;          /* grad, vel, good, two snapshot slots */
    need += R16(e->hop);                     /* input scratch */
    need += R16(e->hop);                     /* teacher scratch */
    need += R16(e->hop);                     /* feedback scratch */
    e->block = falloc(need);
    if (!e->block)
        return -1;
    float *p = e->block;
#define TAKE(ptr, n)      \
    do {                  \
        (ptr) = p;        \
        p += R16(n);      \
    } while (0)
    for (int s = 0; s < e->n_slots; s++) {
        struct slot *sl = &e->slots[s];
        TAKE(sl->in, e->dim[0]);
        TAKE(sl->h_prev, N);
        TAKE(sl->x, F);
        TAKE(sl->base, F);
        TAKE(sl->scale, F);
        TAKE(sl->y, O);
        for (int l = 0; l < e->L; l++)
            TAKE(sl->a[l], e->dim[l + 1]);
        TAKE(sl->act, N);
    }
    TAKE(e->x, F);
    TAKE(e->xn, F);
    TAKE(e->tx, F);
    TAKE(e->tn, F);
    TAKE(e->xg, F);
    TAKE(e->sc, F);
    TAKE(e->run_mean, F);
    TAKE(e->run_var, F);
    TAKE(e->h, N);
    TAKE(e->h_new, N);
    TAKE(e->act, N);
    TAKE(e->pre, N);
    TAKE(e->dh, N);
    TAKE(e->dh_prev, N);
    TAKE(e->dy, O);
    TAKE(e->held, O);
    TAKE(e->scratch_a, widest);
    TAKE(e->cbin, widest);
    for (int l = 0; l < e->L; l++)
        TAKE(e->da[l], e->dim[l + 1]);
    TAKE(e->grad, e->head_n);
    TAKE(e->vel, e->head_n);
    TAKE(e->good, e->head_n);
    _Static_assert(CBRNN_ENGINE_SNAPSHOT_SLOTS == 2, "the block above sizes two slots");
    TAKE(e->snap[0], e->head_n);
    TAKE(e->snap[1], e->head_n);
    TAKE(e->in_scr, e->hop);
    TAKE(e->t_scr, e->hop);
    TAKE(e->fb_scr, e->hop);
#undef TAKE
#undef R16
    return 0;
}

/* Whether m can run as an audio stream at c's rate: its features there
 * (into *fc) and its input and output sizes for its target. CBRNN_OK or
 * the error code. */
static int check_model(const cbrnn_model *m, const cbrnn_engine_config *c, cbrnn_feat_config *fc)
{
    const cbrnn_model_config *mc = &m->cfg;
    if (m->target == CBRNN_TARGET_TASK)
        return CBRNN_ERR_UNSUPPORTED; /* the paper's tasks are not audio streams */
    /* At a rate other than the model's, the features are brought to the
     * level the model was trained on (cbrnn_model_feat_config). */
    cbrnn_model_feat_config(m, c->sample_rate, fc);
    int rc = cbrnn_feat_config_check(fc);
    if (rc)
        return rc;
    const int F = cbrnn_feat_config_dim(fc);
    const int O = mc->n_out;
    /* predict: the frame (with deltas, maybe its own features only: the
     * first F / 2); map: the teacher's frame */
    if (F != mc->n_in || (m->target == CBRNN_TARGET_MAP && O != F) ||
        (m->target == CBRNN_TARGET_PREDICT && O != F && !(fc->deltas && 2 * O == F)) ||
        (m->target == CBRNN_TARGET_CLASSIFY && (O != m->n_classes || O < 2)) ||
        (m->target == CBRNN_TARGET_PREDICT && (m->horizon < 1 || m->horizon > CBRNN_MAX_HORIZON)))
        return CBRNN_ERR_SHAPE;
    if (mc->wiring == CBRNN_WIRING_LOOP && m->n_cb_layers == 0)
        return CBRNN_ERR_UNSUPPORTED;
    return CBRNN_OK;
}

/* The engine's copy of the model and the sizes and settings taken from it
 * and from c (F: features per frame). CBRNN_OK or CBRNN_ERR_NOMEM. */
static int take_model(cbrnn_engine *e, const cbrnn_model *m, const cbrnn_engine_config *c, int F)
{
    const cbrnn_model_config *mc = &m->cfg;
    int rc;
    e->cfg = *c;
    e->m = cbrnn_model_clone(m, &rc);
    e->loaded = cbrnn_model_clone(m, &rc);
    if (!e->m || !e->loaded)
        return CBRNN_ERR_NOMEM;
    cbrnn_model_drop_rls_state(e->m); /* the loaded copy keeps it for begin and reset */
    e->target = m->target;
    e->loop = mc->wiring == CBRNN_WIRING_LOOP;
    e->rule = c->rule != CBRNN_RULE_AUTO ? c->rule : m->online_rule;
    e->rls_prior = c->rls_prior > 0 ? c->rls_prior : m->rls_prior;
    e->rls_saved = !(c->rls_prior > 0) && m->rls_P; /* a prior asked for: a fresh start */
    e->rls_forget = c->rls_forget > 0 ? c->rls_forget : m->rls_forget;
    e->F = F;
    e->N = mc->n_hidden;
    e->O = mc->n_out;
    e->horizon = m->target == CBRNN_TARGET_PREDICT ? m->horizon : 1;
    e->rate = c->sample_rate;
    e->act_fn = mc->act;
    e->alpha = mc->alpha;
    return CBRNN_OK;
}

/* The learned head: the cerebellum (readout wiring: y = CB(h); loop
 * wiring: c = CB([h_{t-1}, x])), or the linear readout of a model without
 * one; its tensors are contiguous in the parameter block. Then how many
 * frame slots the wiring needs, and the RLS state. CBRNN_OK or the error
 * code. */
static int take_head(cbrnn_engine *e)
{
    cbrnn_model *wm = e->m;
    const int F = e->F, O = e->O;
    if (wm->n_cb_layers > 0) {
        e->L = wm->n_cb_layers;
        for (int l = 0; l <= e->L; l++)
            e->dim[l] = wm->cb_dim[l];
        for (int l = 0; l < e->L; l++) {
            e->w[l] = wm->cb_w[l];
            e->b[l] = wm->cb_b[l];
        }
    } else {
        e->L = 1;
        e->dim[0] = e->N;
        e->dim[1] = O;
        e->w[0] = wm->out_w;
        e->b[0] = wm->out_b;
    }
    if (e->L > ENGINE_MAX_LAYERS || !e->w[0])
        return CBRNN_ERR_SHAPE;
    e->head_off = (size_t)(e->w[0] - wm->params);
    e->head_n = (size_t)(e->b[e->L - 1] + e->dim[e->L] - e->w[0]);
    for (int l = 0; l < e->L; l++) /* contiguity, as the header promises */
        if (e->w[l] < e->w[0] || e->b[l] + e->dim[l + 1] > e->w[0] + e->head_n)
            return CBRNN_ERR_SHAPE;
    if (e->loop) {
        if (e->dim[0] != e->N + F || e->dim[e->L] != e->N || !wm->out_w)
            return CBRNN_ERR_SHAPE;
        /* the window of truncated BPTT, plus the frames a prediction waits */
        e->n_slots = e->cfg.bptt_k + e->horizon;
    } else {
        if (e->dim[0] != e->N || e->dim[e->L] != O)
            return CBRNN_ERR_SHAPE;
        /* predict: the update for the prediction made horizon frames ago is
         * fused with this frame's forward, which must not overwrite it
         * (SGD; RLS updates before the forward). */
        e->fused = e->target == CBRNN_TARGET_PREDICT && e->rule == CBRNN_RULE_SGD;
        e->n_slots = e->horizon + e->fused;
    }
    if (e->n_slots > ENGINE_MAX_SLOTS)
        return CBRNN_ERR_SHAPE;
    if (e->rule == CBRNN_RULE_RLS) {
        /* a squared error on a readout: RLS; too wide a last layer would
         * not keep up with the audio (n^2 work per frame) */
        if (!cbrnn_rule_rls_fits(e->m->cfg.wiring, e->target))
            return CBRNN_ERR_UNSUPPORTED;
        if (e->dim[e->L - 1] + 1 > CBRNN_RLS_MAX_DIM)
            return CBRNN_ERR_SHAPE;
        if (engine_rls_alloc(e))
            return CBRNN_ERR_NOMEM;
    }
    return CBRNN_OK;
}

/* The streaming front ends (the input's, and a map model's teacher's) and
 * the hop and window they give. CBRNN_OK or the error code. */
static int open_front_ends(cbrnn_engine *e, const cbrnn_feat_config *fc)
{
    int rc;
    e->feat = cbrnn_feat_create(fc, &rc);
    if (!e->feat)
        return rc;
    if (e->target == CBRNN_TARGET_MAP) {
        e->tfeat = cbrnn_feat_create(fc, &rc);
        if (!e->tfeat)
            return rc;
    }
    e->hop = cbrnn_feat_hop(e->feat);
    e->win = cbrnn_feat_win(e->feat);
    return CBRNN_OK;
}

/* The rings between the audio thread and the others: records, commands,
 * the two snapshot slots (both free), events. CBRNN_OK or
 * CBRNN_ERR_NOMEM. */
static int open_rings(cbrnn_engine *e, const cbrnn_engine_config *c)
{
    e->rec_elem = sizeof(cbrnn_record) + (c->record_outputs ? (size_t)e->O * sizeof(float) : 0);
    e->rec_buf = calloc(1, e->rec_elem);
    e->rec_buf_rt = calloc(1, e->rec_elem);
    if (e->rec_buf_rt) /* the audio thread's (calloc may map lazily) */
        rt_touch_zero(e->rec_buf_rt, e->rec_elem);
    if (!e->rec_buf || !e->rec_buf_rt || spsc_init(&e->recs, (size_t)c->record_capacity, e->rec_elem) ||
        spsc_init(&e->cmds, (size_t)c->command_capacity, sizeof(cbrnn_engine_cmd)) ||
        spsc_init(&e->snap_free, CBRNN_ENGINE_SNAPSHOT_SLOTS, sizeof(int)) ||
        spsc_init(&e->snap_full, CBRNN_ENGINE_SNAPSHOT_SLOTS, sizeof(struct snap_msg)) ||
        spsc_init(&e->events, (size_t)c->event_capacity, sizeof(cbrnn_event)))
        return CBRNN_ERR_NOMEM;
    for (int s = 0; s < CBRNN_ENGINE_SNAPSHOT_SLOTS; s++)
        spsc_push(&e->snap_free, &s);
    return CBRNN_OK;
}

/* c->perturb: the perturbed feedback's DSP at its starting values.
 * CBRNN_OK or the code of cbrnn_perturb_create. */
static int open_perturb(cbrnn_engine *e, const cbrnn_engine_config *c)
{
    if (!c->perturb)
        return CBRNN_OK;
    int err;
    e->pert = cbrnn_perturb_create(e->rate, c->perturb_max_delay_ms, c->perturb == 2, &err);
    if (!e->pert)
        return err;
    cbrnn_perturb_set(e->pert, CBRNN_PERTURB_DELAY, c->perturb_delay_ms, 0);
    cbrnn_perturb_set(e->pert, CBRNN_PERTURB_GAIN, c->perturb_gain_db, 0);
    if (c->perturb == 2)
        cbrnn_perturb_set(e->pert, CBRNN_PERTURB_PITCH, c->perturb_pitch, 0);
    return CBRNN_OK;
}

int cbrnn_engine_learned_group(const cbrnn_model *m)
{
    return m && m->n_cb_layers > 0 ? CBRNN_GROUP_CEREBELLUM : CBRNN_GROUP_READOUT;
}

/* 0 when the model's `frozen` list names what online learning changes. */
static int can_learn(const cbrnn_model *m)
{
    return !m->frozen[cbrnn_engine_learned_group(m)];
}

/* The learning settings of c, the last good head (the loaded one), the
 * counters at zero and the stream at its start. */
static void start_learning(cbrnn_engine *e, const cbrnn_engine_config *c)
{
    memcpy(e->good, e->m->params + e->head_off, e->head_n * sizeof(float));
    e->can_learn = can_learn(e->m);
    e->learn = c->learn != 0 && e->can_learn;
    e->lr = c->lr;
    e->momentum = c->momentum;
    e->decay = c->decay;
    e->gate_db = c->gate_db;
    e->listen = c->listen != 0;
    e->label = -1;
    e->n_markers = 0;
    atomic_init(&e->st_frames, 0);
    atomic_init(&e->st_updates, 0);
    atomic_init(&e->st_restores, 0);
    atomic_init(&e->st_bad_input, 0);
    atomic_init(&e->st_dropped_records, 0);
    atomic_init(&e->st_dropped_commands, 0);
    atomic_init(&e->st_dropped_snapshots, 0);
    atomic_init(&e->st_dropped_events, 0);
    atomic_init(&e->st_mean_loss, 0.0f);
    cbrnn_engine_reset_stream(e);
}


cbrnn_engine *cbrnn_engine_create(const cbrnn_model *m, const cbrnn_engine_config *c, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = CBRNN_ERR_ARG;
    if (!m || !config_ok(c))
        return NULL;
    cbrnn_feat_config fc;
    if ((*err = check_model(m, c, &fc)))
        return NULL;
    if (c->learn && !can_learn(m)) {
        *err = CBRNN_ERR_UNSUPPORTED;
        return NULL;
    }
    engine_simd_init();
    cbrnn_engine *e = calloc(1, sizeof *e);
    if (!e) {
        *err = CBRNN_ERR_NOMEM;
        return NULL;
    }
    /* Everything is allocated here, once: the audio thread never does. */
    int rc = take_model(e, m, c, cbrnn_feat_config_dim(&fc));
    if (!rc)
        rc = take_head(e);
    if (!rc)
        rc = open_front_ends(e, &fc);
    if (!rc)
        rc = alloc_buffers(e) ? CBRNN_ERR_NOMEM : open_rings(e, c);
    if (!rc)
        rc = open_perturb(e, c);
    if (rc) {
        *err = rc;
        cbrnn_engine_destroy(e);
        return NULL;
    }
    start_learning(e, c);
    *err = CBRNN_OK;
    return e;
}

void cbrnn_engine_reset_stream(cbrnn_engine *e)
{
    if (!e)
        return;
    cbrnn_feat_reset(e->feat);
    if (e->tfeat)
        cbrnn_feat_reset(e->tfeat);
    memset(e->h, 0, (size_t)e->N * sizeof(float));
    cbrnn_model_norm_begin(e->m, e->run_mean, e->run_var);
    memset(e->held, 0, (size_t)e->O * sizeof(float));
    e->held_surprise = 0.0f;
    e->frame = 0;
    e->mean_loss = 0.0f;
    e->have_mean = 0;
    e->gate_sumsq = 0;
    e->gate_n = 0;
    e->spos = 0;
    cbrnn_perturb_reset(e->pert);
}

/* Reports an applied command to the reader (audio thread: lock-free). */
static void report_event(cbrnn_engine *e, int kind, int i, float f)
{
    cbrnn_event ev = {e->frame, {kind, i, f}};
    if (spsc_push(&e->events, &ev))
        atomic_fetch_add_explicit(&e->st_dropped_events, 1, memory_order_relaxed);
}

void cbrnn_engine_set_label(cbrnn_engine *e, int label)
{
    if (!e)
        return;
    label = (label >= 0 && label < e->O) ? label : -1;
    if (label != e->label)
        report_event(e, CBRNN_CMD_LABEL, label, 0.0f);
    e->label = label;
}

int cbrnn_engine_read_event(cbrnn_engine *e, cbrnn_event *ev)
{
    return e && ev && spsc_pop(&e->events, ev);
}

int cbrnn_engine_check_command(const cbrnn_engine_cmd *c)
{
    if (!c)
        return CBRNN_ERR_ARG;
    switch (c->kind) {
    case CBRNN_CMD_LEARN:
    case CBRNN_CMD_LISTEN:
        if (c->i != 0 && c->i != 1) /* a switch: an events file's "learn,5" is a mistake */
            return CBRNN_ERR_ARG;
        break;
    case CBRNN_CMD_RESET:
    case CBRNN_CMD_SNAPSHOT:
    case CBRNN_CMD_LABEL:
        break;
    case CBRNN_CMD_LR:
    case CBRNN_CMD_DECAY:
        if (!isfinite(c->f) || c->f < 0)
            return CBRNN_ERR_ARG;
        break;
    case CBRNN_CMD_MOMENTUM:
        if (!isfinite(c->f) || c->f < 0 || c->f >= 1)
            return CBRNN_ERR_ARG;
        break;
    case CBRNN_CMD_MARK:
        if (c->i < 0)
            return CBRNN_ERR_ARG;
        break;
    case CBRNN_CMD_GATE:
        if (!isfinite(c->f) || (c->f != 0 && (c->f < CBRNN_GATE_DB_MIN || c->f >= 0)))
            return CBRNN_ERR_ARG;
        break;
    case CBRNN_CMD_DELAY:
    case CBRNN_CMD_GAIN:
    case CBRNN_CMD_PITCH:
        return cbrnn_perturb_check(c->kind - CBRNN_CMD_DELAY + CBRNN_PERTURB_DELAY, c->f, c->i);
    default:
        return CBRNN_ERR_ARG;
    }
    return 0;
}

/* 0 when this engine can apply c (checked, and a perturbation command
 * only with a perturber that has what it asks for). */
static int engine_accepts(const cbrnn_engine *e, const cbrnn_engine_cmd *c)
{
    if (cbrnn_engine_check_command(c))
        return CBRNN_ERR_ARG;
    if (c->kind >= CBRNN_CMD_DELAY && c->kind <= CBRNN_CMD_LISTEN) {
        if (!e->pert || (c->kind == CBRNN_CMD_PITCH && e->cfg.perturb != 2))
            return CBRNN_ERR_UNSUPPORTED;
        if (c->kind == CBRNN_CMD_DELAY && c->f > e->cfg.perturb_max_delay_ms)
            return CBRNN_ERR_ARG;
    }
    return 0;
}

int cbrnn_engine_send(cbrnn_engine *e, const cbrnn_engine_cmd *c)
{
    if (!e || !c)
        return CBRNN_ERR_ARG;
    int rc = engine_accepts(e, c);
    if (rc)
        return rc;
    if (spsc_push(&e->cmds, c)) {
        atomic_fetch_add_explicit(&e->st_dropped_commands, 1, memory_order_relaxed);
        return CBRNN_ERR_FULL;
    }
    return 0;
}

int cbrnn_engine_read_record(cbrnn_engine *e, cbrnn_record *r, float *y)
{
    if (!e || !r)
        return 0;
    if (!spsc_pop(&e->recs, e->rec_buf))
        return 0;
    memcpy(r, e->rec_buf, sizeof *r);
    if (y && e->cfg.record_outputs)
        memcpy(y, (unsigned char *)e->rec_buf + sizeof *r, (size_t)e->O * sizeof(float));
    return 1;
}

/* The RLS state that goes with weights handed out (packed: a snapshot
 * slot's, NULL: the engine's own): under SGD none (the weights moved away
 * from any saved state); if there is no memory for it, none either: the
 * weights are still whole, and learning on from them starts from the
 * prior. */
static void rls_state_out(const cbrnn_engine *e, const float *packed, cbrnn_model *dst)
{
    if (e->rule != CBRNN_RULE_RLS || engine_rls_export(e, packed, dst))
        cbrnn_model_drop_rls_state(dst);
}

static int same_layout(const cbrnn_engine *e, const cbrnn_model *dst)
{
    return dst && dst->n_params == e->m->n_params && dst->n_tensors == e->m->n_tensors &&
           !memcmp(&dst->cfg, &e->m->cfg, sizeof dst->cfg);
}

int cbrnn_engine_take_snapshot(cbrnn_engine *e, cbrnn_model *dst, int *id, int64_t *frame)
{
    if (!e || !same_layout(e, dst))
        return CBRNN_ERR_SHAPE;
    struct snap_msg msg;
    if (!spsc_pop(&e->snap_full, &msg))
        return 0;
    memcpy(dst->params, e->m->params, e->head_off * sizeof(float)); /* frozen part */
    memcpy(dst->params + e->head_off, e->snap[msg.slot], e->head_n * sizeof(float));
    size_t tail = e->head_off + e->head_n;
    memcpy(dst->params + tail, e->m->params + tail, (e->m->n_params - tail) * sizeof(float));
    rls_state_out(e, e->rls_snap[msg.slot], dst);
    if (id)
        *id = msg.id;
    if (frame)
        *frame = msg.frame;
    spsc_push(&e->snap_free, &msg.slot);
    return 1;
}

int cbrnn_engine_copy_params(const cbrnn_engine *e, cbrnn_model *dst)
{
    if (!e || !same_layout(e, dst))
        return CBRNN_ERR_SHAPE;
    memcpy(dst->params, e->m->params, e->m->n_params * sizeof(float));
    rls_state_out(e, NULL, dst);
    return 0;
}

int cbrnn_engine_set_params(cbrnn_engine *e, const cbrnn_model *src)
{
    if (!e || !same_layout(e, src))
        return CBRNN_ERR_SHAPE;
    memcpy(e->m->params, src->params, e->m->n_params * sizeof(float));
    if (e->rule == CBRNN_RULE_RLS)
        engine_rls_set(e, src);
    memcpy(e->good, e->m->params + e->head_off, e->head_n * sizeof(float));
    memset(e->vel, 0, e->head_n * sizeof(float));
    memset(e->grad, 0, e->head_n * sizeof(float));
    e->since_good = 0;
    e->reset_done = 0;
    return 0;
}

const cbrnn_model *cbrnn_engine_model(const cbrnn_engine *e)
{
    return e ? e->loaded : NULL;
}

void cbrnn_engine_get_stats(const cbrnn_engine *e, cbrnn_engine_stats *s)
{
    if (!e || !s)
        return;
    cbrnn_engine *w = (cbrnn_engine *)e; /* atomic loads take non-const in C11 */
    s->frames = atomic_load_explicit(&w->st_frames, memory_order_relaxed);
    s->updates = atomic_load_explicit(&w->st_updates, memory_order_relaxed);
    s->restores = atomic_load_explicit(&w->st_restores, memory_order_relaxed);
    s->bad_input = atomic_load_explicit(&w->st_bad_input, memory_order_relaxed);
    s->dropped_records = atomic_load_explicit(&w->st_dropped_records, memory_order_relaxed);
    s->dropped_commands = atomic_load_explicit(&w->st_dropped_commands, memory_order_relaxed);
    s->dropped_snapshots = atomic_load_explicit(&w->st_dropped_snapshots, memory_order_relaxed);
    s->dropped_events = atomic_load_explicit(&w->st_dropped_events, memory_order_relaxed);
    s->mean_loss = atomic_load_explicit(&w->st_mean_loss, memory_order_relaxed);
}

void cbrnn_engine_get_rule(const cbrnn_engine *e, cbrnn_engine_rule_info *r)
{
    if (!e || !r)
        return;
    r->rule = e->rule;
    r->rls_prior = e->rls_prior;
    r->rls_forget = e->rls_forget;
    r->rls_saved = e->rule == CBRNN_RULE_RLS && e->rls_saved;
}

int cbrnn_engine_hop(const cbrnn_engine *e) { return e ? e->hop : 0; }
int cbrnn_engine_win(const cbrnn_engine *e) { return e ? e->win : 0; }
int cbrnn_engine_latency(const cbrnn_engine *e) { return e ? e->win - 1 - e->win / 2 : 0; }
int cbrnn_engine_perturb_latency(const cbrnn_engine *e) { return e ? cbrnn_perturb_latency(e->pert) : 0; }
long long cbrnn_engine_perturb_underruns(const cbrnn_engine *e)
{
    return e ? cbrnn_perturb_underruns(e->pert) : 0;
}
int cbrnn_engine_feat_dim(const cbrnn_engine *e) { return e ? e->F : 0; }
int cbrnn_engine_n_outputs(const cbrnn_engine *e) { return e ? 1 + e->O : 0; }
double cbrnn_engine_rate(const cbrnn_engine *e) { return e ? e->rate : 0.0; }

/* ---------------- the audio path ---------------- */

static void add_stat(atomic_int_least64_t *c)
{
    /* Single writer (the audio thread): a relaxed load and store is enough
     * and avoids a locked read-modify-write instruction. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* CB (or readout) back to the last good weights after a non-finite loss,
 * gradient or weight; momentum forgotten since it carried the blow-up. */
static void restore_good(cbrnn_engine *e)
{
    memcpy(e->m->params + e->head_off, e->good, e->head_n * sizeof(float));
    memset(e->vel, 0, e->head_n * sizeof(float));
    memset(e->grad, 0, e->head_n * sizeof(float));
    e->since_good = 0;
    if (e->rule == CBRNN_RULE_RLS) /* its confidence belonged to the lost weights */
        engine_rls_begin(e);
    e->flags |= CBRNN_REC_RESTORED;
    add_stat(&e->st_restores);
}

static void apply_command(cbrnn_engine *e, const cbrnn_engine_cmd *c)
{
    if (c->kind != CBRNN_CMD_LABEL) /* set_label reports label changes */
        report_event(e, c->kind, c->i, c->f);
    switch (c->kind) {
    case CBRNN_CMD_LEARN: e->learn = c->i != 0 && e->can_learn; break;
    case CBRNN_CMD_LR: e->lr = c->f; break;
    case CBRNN_CMD_MOMENTUM: e->momentum = c->f; break;
    case CBRNN_CMD_DECAY: e->decay = c->f; break;
    case CBRNN_CMD_RESET:
        /* Only the first of a run of resets between two frames does the
         * work (under RLS a megabyte of copying): a burst of them cannot
         * hold the audio thread past its period. */
        e->flags |= CBRNN_REC_RESET;
        if (e->reset_done)
            break;
        e->reset_done = 1;
        memcpy(e->m->params + e->head_off, e->loaded->params + e->head_off,
               e->head_n * sizeof(float));
        memcpy(e->good, e->loaded->params + e->head_off, e->head_n * sizeof(float));
        memset(e->vel, 0, e->head_n * sizeof(float));
        e->since_good = 0;
        if (e->rule == CBRNN_RULE_RLS)
            engine_rls_begin(e);
        break;
    case CBRNN_CMD_SNAPSHOT: {
        int slot;
        if (!spsc_pop(&e->snap_free, &slot)) {
            add_stat(&e->st_dropped_snapshots);
            break;
        }
        memcpy(e->snap[slot], e->m->params + e->head_off, e->head_n * sizeof(float));
        if (e->rule == CBRNN_RULE_RLS)
            engine_rls_pack(e, e->rls_snap[slot]);
        struct snap_msg msg = {slot, c->i, atomic_load_explicit(&e->st_frames, memory_order_relaxed)};
        spsc_push(&e->snap_full, &msg); /* cannot fail: two slots, two places */
        break;
    }
    case CBRNN_CMD_MARK:
        if (e->n_markers < CBRNN_REC_MAX_MARKERS)
            e->markers[e->n_markers] = c->i;
        e->n_markers++;
        break;
    case CBRNN_CMD_LABEL: cbrnn_engine_set_label(e, c->i); break;
    case CBRNN_CMD_GATE: e->gate_db = c->f; break;
    case CBRNN_CMD_DELAY:
    case CBRNN_CMD_GAIN:
    case CBRNN_CMD_PITCH:
        cbrnn_perturb_set(e->pert, c->kind - CBRNN_CMD_DELAY + CBRNN_PERTURB_DELAY, c->f, c->i);
        break;
    case CBRNN_CMD_LISTEN: e->listen = c->i != 0 && e->pert; break;
    default: break;
    }
}

/* Scheduled commands due before the frame about to run: applied at the
 * exact frame, in the audio thread, so a schedule acts identically live
 * and offline. */
static void apply_scheduled(cbrnn_engine *e)
{
    while (e->next_sched < e->n_sched && e->sched[e->next_sched].frame <= e->frame)
        apply_command(e, &e->sched[e->next_sched++].cmd);
}

int cbrnn_engine_set_schedule(cbrnn_engine *e, const cbrnn_event *ev, size_t n)
{
    if (!e || (n && !ev))
        return CBRNN_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        cbrnn_engine_cmd c = ev[i].cmd;
        if ((i && ev[i].frame < ev[i - 1].frame) || ev[i].frame < 0 ||
            c.kind == CBRNN_CMD_SNAPSHOT || engine_accepts(e, &c))
            return CBRNN_ERR_ARG;
    }
    e->sched = ev;
    e->n_sched = n;
    e->next_sched = 0;
    return 0;
}

/* The input frame's raw features e->x become the corpus-normalised frame
 * e->xg (targets, persistence), the model's input e->xn and the running s
 * in e->sc, as training made them (cbrnn_model_normalise); non-finite
 * features are zeroed and flagged, so a NaN in the audio cannot poison the
 * cortex state or the running statistics for good. */
static void normalise_input(cbrnn_engine *e)
{
    memcpy(e->xg, e->x, (size_t)e->F * sizeof(float));
    if (cbrnn_model_normalise(e->m, e->run_mean, e->run_var, e->xg, e->xn, e->sc))
        e->flags |= CBRNN_REC_BAD_INPUT;
}

/* A map model's teacher frame (e->tx, overwritten) into e->tn: the stored
 * normaliser only (the loader allows the running one for predict only). */
static void normalise_teacher(cbrnn_engine *e)
{
    if (cbrnn_model_normalise(e->m, NULL, NULL, e->tx, e->tn, NULL))
        e->flags |= CBRNN_REC_BAD_INPUT;
}

/* Mean squared difference over n (the persistence baseline's loss). */
static float mse_only(const float *a, const float *b, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return (float)(s / n);
}

/* Scores the head output y (of slot sl) against the known target and, when
 * learning, updates the head. target: normalised features (predict, map)
 * or NULL with e->label (classify). Returns the loss (NaN if none). */
/* Scores the output y of slot sl against the known target: the loss, and
 * dL/dy in e->dy. target: normalised features (predict, map) or NULL with
 * e->label (classify). NaN if there is nothing to score; a non-finite loss
 * restores the last good head. */
static float score(cbrnn_engine *e, const struct slot *sl, const float *target)
{
    float loss;
    if (e->target == CBRNN_TARGET_CLASSIFY) {
        if (e->label < 0)
            return NAN;
        loss = cbrnn_loss_xent(e->dy, NULL, sl->y, &e->label, 1, e->O);
    } else {
        loss = cbrnn_loss_mse(e->dy, sl->y, target, 1, e->O);
        /* dL/d(head output) of a residual model */
        cbrnn_model_output_backward(e->m, e->dy, sl->scale, e->F, 1);
    }
    if (!isfinite(loss)) {
        restore_good(e);
    } else if (e->cfg.diverge_ratio > 0 && e->have_mean) {
        /* Finite but far beyond anything the running mean has seen: the
         * weights are running away (a learning rate far too large). Catch
         * it before it overflows and before a checkpoint keeps it. */
        const double f = e->cfg.surprise_floor;
        if ((double)loss + f > (double)e->cfg.diverge_ratio * ((double)e->mean_loss + f)) {
            e->frame_diverged = 1;
            restore_good(e);
        }
    }
    return loss;
}

/* Bookkeeping after an update: ok (all weights finite) or restore. */
static void after_update(cbrnn_engine *e, int ok)
{
    if (!ok) {
        restore_good(e);
        return;
    }
    e->flags |= CBRNN_REC_UPDATED;
    add_stat(&e->st_updates);
    if (++e->since_good >= e->cfg.checkpoint_frames) {
        memcpy(e->good, e->m->params + e->head_off, e->head_n * sizeof(float));
        e->since_good = 0;
    }
}

/* Scores sl's prediction against target and, when may_learn, updates the
 * head right away (the paths not fused with the next forward). A frame
 * whose input was flagged bad (non-finite samples zeroed) is scored but
 * never learned from: neither as the prediction's input nor as its
 * target; the caller passes may_learn 0 for it. */
static float score_and_learn(cbrnn_engine *e, const struct slot *sl, const float *target,
                             int may_learn)
{
    float loss = score(e, sl, target);
    if (!isfinite(loss) || !may_learn || e->frame_diverged)
        return loss;
    if (e->rule == CBRNN_RULE_RLS) {
        after_update(e, engine_rls_update(e, sl, target, loss));
        return loss;
    }
    int ok = e->loop ? engine_backward_loop(e) : engine_backward_readout(e, sl);
    after_update(e, ok && engine_update(e));
    return loss;
}

/* What one frame scored: its loss and the persistence baseline's (NaN
 * when nothing was scored), and whether learning is on but this frame may
 * not teach (bad input or gated). */
struct frame_score {
    float loss, pers;
    int skipped;
};

/* The level gate: flags the frame gated when the RMS of the samples that
 * completed it is below gate_db; starts the next frame's sum. */
static void gate_frame(cbrnn_engine *e)
{
    if (e->gate_db != 0 && e->gate_n > 0 &&
        10.0 * log10(e->gate_sumsq / (double)e->gate_n + 1e-30) < e->gate_db)
        e->flags |= CBRNN_REC_GATED;
    e->gate_sumsq = 0;
    e->gate_n = 0;
}

/* Readout + predict: scores the prediction made horizon frames ago, steps
 * the cortex (the head does not feed it), then updates the head and runs
 * it on the new state in one pass over its weights. */
static void step_fused(cbrnn_engine *e, struct slot *cur, int bad, struct frame_score *fs)
{
    const struct slot *old = NULL;
    if (e->frame >= e->horizon) {
        old = &e->slots[(e->frame - e->horizon) % e->n_slots];
        fs->pers = mse_only(old->base, e->xg, e->O);
        fs->loss = score(e, old, e->xg);
        fs->skipped = e->learn && (bad || old->bad);
        if (!isfinite(fs->loss) || !e->learn || fs->skipped || e->frame_diverged)
            old = NULL;
    }
    cur->bad = bad;
    engine_cortex_step(e, cur);
    if (old) {
        int ok = engine_fused_update_forward(e, old, cur);
        after_update(e, ok);
        if (!ok) /* the forward ran through bad weights: again, restored */
            engine_head_forward(e, cur);
    } else {
        engine_head_forward(e, cur);
    }
}

/* The other wirings and targets: a prediction made horizon frames ago is
 * scored (and learned from) before the forward; a map or classify output
 * after it, against this frame's teacher or label. The slot scored may be
 * cur itself (RLS keeps horizon slots): its `bad` still says whether the
 * frame that made the prediction was bad until the forward reuses it. */
static void step_scored(cbrnn_engine *e, struct slot *cur, int bad, struct frame_score *fs)
{
    if (e->target == CBRNN_TARGET_PREDICT && e->frame >= e->horizon) {
        const struct slot *sl = &e->slots[(e->frame - e->horizon) % e->n_slots];
        fs->pers = mse_only(sl->base, e->xg, e->O);
        fs->skipped = e->learn && (bad || sl->bad);
        fs->loss = score_and_learn(e, sl, e->xg, e->learn && !fs->skipped);
    }
    cur->bad = bad;
    engine_forward(e, cur);
    if (e->target == CBRNN_TARGET_MAP && e->have_teacher) {
        normalise_teacher(e);
        fs->pers = mse_only(e->xg, e->tn, e->F);
        fs->skipped = e->learn && bad;
        fs->loss = score_and_learn(e, cur, e->tn, e->learn && !fs->skipped);
    } else if (e->target == CBRNN_TARGET_CLASSIFY) {
        fs->skipped = e->learn && bad;
        fs->loss = score_and_learn(e, cur, NULL, e->learn && !fs->skipped);
    }
}

/* The outputs this frame holds until the next: what it predicts
 * (posteriors for classify); zeros if the forward went non-finite. */
static void hold_outputs(cbrnn_engine *e, const struct slot *cur)
{
    if (e->target == CBRNN_TARGET_CLASSIFY) {
        float mx = cur->y[0];
        for (int i = 1; i < e->O; i++)
            mx = cur->y[i] > mx ? cur->y[i] : mx;
        float s = 0.0f;
        for (int i = 0; i < e->O; i++) {
            e->held[i] = expf(cur->y[i] - mx);
            s += e->held[i];
        }
        for (int i = 0; i < e->O; i++)
            e->held[i] /= s;
    } else {
        memcpy(e->held, cur->y, (size_t)e->O * sizeof(float));
    }
    int held_ok = 1;
    for (int i = 0; i < e->O; i++)
        held_ok &= isfinite(e->held[i]) != 0;
    if (!held_ok) /* weights went bad in this very forward: never emit NaN */
        memset(e->held, 0, (size_t)e->O * sizeof(float));
}

/* The surprise of loss against the running mean loss (cbrnn_engine.h
 * defines it), which it then updates; NaN when there is none. */
static float surprise_of(cbrnn_engine *e, float loss, int gated)
{
    float surprise = NAN;
    if (isfinite(loss) && (e->have_mean || !gated)) {
        if (!e->have_mean) {
            e->mean_loss = loss;
            e->have_mean = 1;
        }
        /* In double: loss may be near FLT_MAX; the comparison is false for
         * NaN, which the clamp then replaces. */
        const double f = e->cfg.surprise_floor;
        double s = ((double)loss + f) / ((double)e->mean_loss + f);
        surprise = s <= e->cfg.surprise_max ? (float)s : e->cfg.surprise_max;
        if (!e->frame_diverged && !gated) /* a runaway loss or silence would drag it */
            e->mean_loss += (loss - e->mean_loss) / (float)e->cfg.surprise_frames;
        atomic_store_explicit(&e->st_mean_loss, e->mean_loss, memory_order_relaxed);
    }
    return surprise;
}

/* The frame's record (and outputs) into the records ring; a full ring
 * counts a dropped record. */
static void push_record(cbrnn_engine *e, const struct frame_score *fs, float surprise)
{
    cbrnn_record *r = (cbrnn_record *)e->rec_buf_rt;
    r->frame = e->frame;
    r->time = ((double)e->frame * e->hop + e->win - 1) / e->rate;
    r->loss = fs->loss;
    r->persistence_loss = fs->pers;
    r->surprise = surprise;
    r->lr = e->lr;
    r->learning = e->learn && !fs->skipped;
    r->marker = e->n_markers ? e->markers[0] : -1;
    r->n_markers = e->n_markers;
    for (int i = 0; i < CBRNN_REC_MAX_MARKERS; i++)
        r->markers[i] = i < e->n_markers ? e->markers[i] : -1;
    r->label = e->target == CBRNN_TARGET_CLASSIFY ? e->label : -1;
    r->flags = e->flags;
    if (e->cfg.record_outputs)
        memcpy(e->rec_buf_rt + sizeof *r, e->held, (size_t)e->O * sizeof(float));
    if (spsc_push(&e->recs, e->rec_buf_rt))
        add_stat(&e->st_dropped_records);
}

/* One complete frame: x (and tx for map) hold its raw features. Audio
 * thread: no allocation, lock or wait. */
void engine_run_frame(cbrnn_engine *e)
{
    struct slot *cur = &e->slots[(int)(e->frame % e->n_slots)];
    struct frame_score fs = {NAN, NAN, 0};
    normalise_input(e);
    gate_frame(e);
    const int gated = (e->flags & CBRNN_REC_GATED) != 0;
    /* bad input and gated frames neither teach nor are taught from */
    const int bad = (e->flags & (CBRNN_REC_BAD_INPUT | CBRNN_REC_GATED)) != 0;
    e->frame_diverged = 0;
    if (e->fused)
        step_fused(e, cur, bad, &fs);
    else
        step_scored(e, cur, bad, &fs);
    hold_outputs(e, cur);
    float surprise = surprise_of(e, fs.loss, gated);
    e->held_surprise = isfinite(surprise) ? surprise : 0.0f;
    push_record(e, &fs, surprise);
    if (e->flags & CBRNN_REC_BAD_INPUT)
        add_stat(&e->st_bad_input);
    e->n_markers = 0;
    e->flags = 0;
    e->reset_done = 0;
    e->frame++;
    add_stat(&e->st_frames);
}

/* Copies n samples, zeroing non-finite ones; 1 if any was zeroed. */
static int sanitise(float *dst, const float *src, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        float v = src[i];
        if (!isfinite(v)) {
            v = 0.0f;
            bad = 1;
        }
        dst[i] = v;
    }
    return bad;
}

static void write_held(cbrnn_engine *e, float *const *out, int n_out, int at, int count)
{
    if (count <= 0)
        return;
    for (int c = 0; c < n_out; c++) {
        float *o = out[c];
        if (!o)
            continue;
        float v = c == 0 ? e->held_surprise : e->held[c - 1];
        for (int i = 0; i < count; i++)
            o[at + i] = v;
    }
}

/* 1 when the stream stands right after a frame completed (or at its
 * start): where commands that act on samples may take effect. */
static int at_boundary(const cbrnn_engine *e)
{
    int64_t start = e->frame == 0 ? 0 : (e->frame - 1) * e->hop + e->win;
    return e->spos == start;
}

static int acts_on_samples(int kind)
{
    return kind == CBRNN_CMD_GATE || (kind >= CBRNN_CMD_DELAY && kind <= CBRNN_CMD_LISTEN);
}

/* The queued commands, in order; one that acts on samples arriving off a
 * frame boundary is held, with everything behind it, until the next one
 * (cbrnn_engine.h). */
static void take_commands(cbrnn_engine *e)
{
    if (e->have_held) {
        if (!at_boundary(e))
            return;
        apply_command(e, &e->held_cmd);
        e->have_held = 0;
    }
    cbrnn_engine_cmd c;
    while (spsc_pop(&e->cmds, &c)) {
        if (acts_on_samples(c.kind) && !at_boundary(e)) {
            e->held_cmd = c;
            e->have_held = 1;
            return;
        }
        apply_command(e, &c);
    }
}

/* seg samples of the sanitised input (e->in_scr) through the feature
 * front end, running each frame that completes; src is what the model
 * hears (the input, or the feedback with listen on). */
static void feed_frames(cbrnn_engine *e, float *const *out, int n_out, const float *src, int at,
                        int seg)
{
    int off = 0;
    while (off < seg) {
        int used = 0, tused = 0;
        int r = cbrnn_feat_push(e->feat, e->x, src + off, seg - off, &used);
        if (e->gate_db != 0) {
            double ss = 0;
            for (int i = 0; i < used; i++)
                ss += (double)src[off + i] * src[off + i];
            e->gate_sumsq += ss;
            e->gate_n += used;
        }
        if (e->tfeat) /* same framing: completes on the same sample */
            cbrnn_feat_push(e->tfeat, e->tx, e->t_scr + off, used, &tused);
        if (r == 1) {
            write_held(e, out, n_out, at + off, used - 1);
            engine_run_frame(e);
            write_held(e, out, n_out, at + off + used - 1, 1);
        } else {
            write_held(e, out, n_out, at + off, used);
        }
        off += used;
    }
}

int cbrnn_engine_process_fb(cbrnn_engine *e, float *const *out, int n_out, float *feedback,
                            const float *in, const float *teacher, int n)
{
    if (!e || n < 0 || (n > 0 && !in) || n_out < 0 || n_out > 1 + e->O || (n_out > 0 && !out))
        return CBRNN_ERR_ARG;
#if defined(__SSE__)
    /* Flush denormals to zero (FTZ) and treat denormal inputs as zero
     * (DAZ): decaying activations and momentum would otherwise hit the
     * slow denormal path. The caller's mode is restored on return. */
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);
#endif
    take_commands(e);
    int pos = 0;
    while (pos < n) {
        if (at_boundary(e)) {
            apply_scheduled(e);
            take_commands(e);
        }
        /* Segments of at most one hop, ending where a frame completes,
         * through the scratch buffers (outputs may alias the inputs; bad
         * samples are zeroed). */
        int64_t to_frame = e->frame * e->hop + e->win - e->spos;
        int seg = n - pos < e->hop ? n - pos : e->hop;
        if (to_frame > 0 && to_frame < seg)
            seg = (int)to_frame;
        if (sanitise(e->in_scr, in + pos, seg))
            e->flags |= CBRNN_REC_BAD_INPUT;
        e->have_teacher = teacher != NULL;
        if (e->tfeat) {
            if (teacher)
                sanitise(e->t_scr, teacher + pos, seg);
            else
                memset(e->t_scr, 0, (size_t)seg * sizeof(float));
        }
        const float *src = e->in_scr;
        if (e->pert) {
            cbrnn_perturb_process(e->pert, e->fb_scr, e->in_scr, seg);
            if (e->listen)
                src = e->fb_scr;
        }
        if (feedback)
            memcpy(feedback + pos, e->pert ? e->fb_scr : e->in_scr, (size_t)seg * sizeof(float));
        feed_frames(e, out, n_out, src, pos, seg);
        e->spos += seg;
        pos += seg;
    }
#if defined(__SSE__)
    _mm_setcsr(csr);
#endif
    return 0;
}

int cbrnn_engine_process(cbrnn_engine *e, float *const *out, int n_out, const float *in,
                         const float *teacher, int n)
{
    return cbrnn_engine_process_fb(e, out, n_out, NULL, in, teacher, n);
}
