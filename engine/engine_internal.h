/* engine_internal.h: the engine's state and its per-frame kernels, shared
 * by the files of engine/ and the engine's tests. Not installed. Nothing
 * reachable from cbrnn_engine_process may allocate, lock or wait. */
#ifndef CBRNN_ENGINE_INTERNAL_H
#define CBRNN_ENGINE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "cbrnn/cbrnn_dsp.h"
#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_model.h"
#include "cbrnn/cbrnn_perturb.h"
#include "spsc.h"

#define ENGINE_MAX_LAYERS (CBRNN_MAX_CB_HIDDEN + 1)
/* Frames of activations kept: horizon (predict) + BPTT window (loop). */
#define ENGINE_MAX_SLOTS 2048

/* What one frame's forward leaves for a later backward pass. */
struct slot {
    float *in;                    /* head input: h_t (readout) or [h_{t-1}, x_t] (loop) */
    float *a[ENGINE_MAX_LAYERS];  /* head layer outputs (after ReLU where there is one) */
    float *y;                     /* the model's output this frame [O] */
    float *x;                     /* the model's input features [F] (z) */
    float *base, *scale;          /* corpus-normalised frame, running s [F] */
    float *h_prev;                /* loop: h_{t-1} [N] */
    float *act;                   /* loop: f(pre_t) [N] */
    int bad;                      /* its input was flagged CBRNN_REC_BAD_INPUT */
};

struct cbrnn_engine {
    cbrnn_engine_config cfg;
    cbrnn_model *m;      /* working copy: the head's weights learn */
    cbrnn_model *loaded; /* as loaded: reset target, decay anchor */
    cbrnn_feat *feat, *tfeat;
    cbrnn_target target;
    int loop;
    int fused;           /* readout + predict: update fused with the forward */
    int F, N, O, hop, win, horizon;
    double rate;
    cbrnn_act act_fn;
    float alpha;

    /* The learned head: L linear layers (ReLU between), contiguous at
     * params[head_off .. head_off + head_n). */
    int L;
    int dim[ENGINE_MAX_LAYERS + 1];
    float *w[ENGINE_MAX_LAYERS], *b[ENGINE_MAX_LAYERS];
    size_t head_off, head_n;

    /* Per-stream state */
    int n_slots;
    struct slot slots[ENGINE_MAX_SLOTS];
    float *x, *xn, *tx, *tn;              /* raw and normalised features, input / teacher;
                                           * xn: the model's input (z) */
    float *xg, *sc;                       /* the corpus-normalised frame, running s */
    float *run_mean, *run_var;            /* the input's running normaliser (cbrnn_model_normalise) */
    float *h, *h_new, *act, *pre;         /* cortex */
    float *dh, *dh_prev, *dy;             /* backward scratch */
    float *scratch_a, *cbin;
    float *da[ENGINE_MAX_LAYERS];
    float *held;                          /* outputs held over the hop */
    float held_surprise;
    float *in_scr, *t_scr;                /* one hop of sanitised input / teacher */
    float *fb_scr;                        /* one hop of perturbed feedback */
    cbrnn_perturb *pert;                  /* cfg.perturb: the feedback's DSP, or NULL */
    int listen;                           /* the model hears the feedback */
    int64_t spos;                         /* samples since the stream started */
    int have_held;                        /* a sample-level command waits for */
    cbrnn_engine_cmd held_cmd;            /* the next frame boundary */
    int have_teacher;
    int64_t frame;
    float mean_loss;
    int have_mean;
    int frame_diverged; /* this frame's loss crossed diverge_ratio */

    /* Learning */
    cbrnn_rule rule;                      /* SGD or RLS (resolved from AUTO) */
    float rls_prior, rls_forget;
    int rls_saved;                        /* RLS: begins from the loaded model's rls_P */
    int rls_n;                            /* RLS: last-layer inputs + 1 (bias) */
    double *rls_P;                        /* RLS: [rls_n x rls_n] inverse information
                                           * (its upper triangle, j >= i) */
    double *rls_u;                        /* RLS: [rls_n] P phi */
    int *rls_nz;                          /* RLS: [rls_n] the nonzero inputs of phi */
    double *rls_pd;                       /* RLS: [rls_n] phi and the bias's 1, in double */
    float *rls_snap[CBRNN_ENGINE_SNAPSHOT_SLOTS]; /* RLS: P's upper triangle, packed
                                                   * by rows, in each snapshot slot */
    float *grad, *vel, *good;             /* [head_n] each */
    int since_good;
    int reset_done;                       /* the cerebellum is as a reset left it: no frame,
                                           * no new weights since (a second reset is a no-op) */
    int learn;
    int can_learn; /* 0: the model freezes the learned group (learn stays 0) */
    float lr, momentum, decay;
    int label;
    int n_markers;                        /* markers for the next record */
    int32_t markers[CBRNN_REC_MAX_MARKERS];
    uint32_t flags;                       /* CBRNN_REC_* for the next record */

    /* Queues and snapshots */
    spsc cmds, recs, snap_free, snap_full;
    spsc events;                          /* applied commands, audio -> reader */
    float gate_db;                        /* 0: off */
    double gate_sumsq;                    /* the current frame's new samples */
    long gate_n;
    const cbrnn_event *sched;             /* cbrnn_engine_set_schedule: the caller's */
    size_t n_sched, next_sched;
    size_t rec_elem;
    unsigned char *rec_buf;               /* reader side */
    unsigned char *rec_buf_rt;            /* audio side */
    float *snap[CBRNN_ENGINE_SNAPSHOT_SLOTS];

    atomic_int_least64_t st_frames, st_updates, st_restores, st_bad_input, st_dropped_records,
        st_dropped_commands, st_dropped_snapshots, st_dropped_events;
    _Atomic float st_mean_loss;

    float *block;                         /* every float buffer above */
};

/* Everything a frame does once its raw features are in e->x (and e->tx):
 * normalise, score, learn, step, forward, outputs, record. The per-frame
 * work the online benchmark times, without the front end. */
void engine_run_frame(cbrnn_engine *e);
/* Cortex step for the current normalised frame e->xn, the head forward,
 * and the model output into sl (which is overwritten). */
void engine_forward(cbrnn_engine *e, struct slot *sl);
/* Readout wiring, split: the cortex step alone (sl->x, sl->in set), and
 * the head forward from sl->in. */
void engine_cortex_step(cbrnn_engine *e, struct slot *sl);
/* The model's output from the head's, after a forward: a residual model's
 * y = base + scale * y (cbrnn_model_output). */
void engine_add_skip(const cbrnn_engine *e, struct slot *sl);
/* The head forward of sl through the weights as adapted; for a frame
 * below the level gate (readout wiring) through the head as loaded
 * (e->loaded), since the adapted head never learned from such frames. */
void engine_head_forward(cbrnn_engine *e, struct slot *sl);
/* Readout wiring, predict: the update for the prediction kept in `old`
 * (dL/dy in e->dy) fused with the head forward of `cur` (whose cortex step
 * is done) through the updated weights. Same numbers as
 * engine_backward_readout + engine_update + engine_head_forward. 1 if
 * every updated weight is finite. */
/* RLS on the head's last layer (engine_rls.c). alloc: at create (the
 * matrix, scratch and snapshot slots; then engine_rls_begin). begin: P =
 * the loaded model's saved state, else I / prior (at create, reset and
 * restore). update: one step for the prediction kept in sl against target
 * (its input phi = the last hidden layer of sl); 1 if every updated weight
 * is finite. pack (audio thread): P's upper triangle into a snapshot
 * slot. export: P into dst's RLS state from the engine (packed NULL) or
 * from a packed slot; CBRNN_ERR_NOMEM if dst's state cannot be had (then
 * dst has none). set: P from src's saved state, if it has one of this
 * width (1), else nothing (0). */
int engine_rls_alloc(cbrnn_engine *e);
void engine_rls_begin(cbrnn_engine *e);
void engine_rls_pack(const cbrnn_engine *e, float *packed);
int engine_rls_export(const cbrnn_engine *e, const float *packed, cbrnn_model *dst);
int engine_rls_set(cbrnn_engine *e, const cbrnn_model *src);
int engine_rls_update(cbrnn_engine *e, const struct slot *sl, const float *target,
                      float loss);
int engine_fused_update_forward(cbrnn_engine *e, const struct slot *old, struct slot *cur);
/* Head gradient (added into e->grad) of the loss whose dL/dy is e->dy,
 * for the prediction kept in sl: readout wiring, exact. 1 if finite. */
int engine_backward_readout(cbrnn_engine *e, const struct slot *sl);
/* The same through the loop wiring: truncated BPTT from the scored frame
 * (e->frame - horizon for predict, e->frame otherwise) back over at most
 * cfg.bptt_k frames. 1 if finite. */
int engine_backward_loop(cbrnn_engine *e);
/* SGD with momentum (torch semantics) plus decay toward the loaded
 * weights, on the head; zeroes e->grad for the next frame. 1 if every
 * updated weight is finite. */
int engine_update(cbrnn_engine *e);

#endif
