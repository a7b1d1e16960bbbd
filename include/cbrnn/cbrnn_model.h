/* cbrnn_model.h: the cortico-cerebellar network, its learning, and its file.
 *
 * Cortex (leaky Elman; alpha = 1 with tanh is exactly torch.nn.RNN):
 *   h_t = (1 - a) h_{t-1} + a f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh [+ c_t])
 * Cerebellum (CB): an MLP, ReLU after every hidden layer, none after the last.
 * Wirings:
 *   readout: y_t = CB(h_t)                       (the seed's CBRNN)
 *   loop:    c_t = CB([h_{t-1}, x_t]) inside f; y_t = W_out h_t + b_out
 *            (the paper's model)
 * Without a cerebellum (arch rnn, or reservoir with a linear readout):
 *   y_t = W_out h_t + b_out.
 *
 * Parameters live in one contiguous float block; tensors are views into it
 * named as in the PyTorch state_dict (cortex.rnn.weight_ih_l0 [N,F],
 * cortex.rnn.weight_hh_l0 [N,N], cortex.rnn.bias_ih_l0 [N],
 * cortex.rnn.bias_hh_l0 [N], cerebellum.fc1.weight [out,in],
 * cerebellum.fc1.bias, ..., readout.weight [O,N], readout.bias [O]), in
 * that order, so groups (cortex, cerebellum, readout) are contiguous ranges.
 * Gradients and optimiser moments use the same layout: an optimiser step
 * is one flat loop over the trainable ranges.
 *
 * Training activations over B x T steps live in a workspace (cbrnn_ws),
 * separate from the model. Library code never prints; errors are codes, and
 * the loader also fills a message buffer. */
#ifndef CBRNN_MODEL_H
#define CBRNN_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "cbrnn.h"
#include "cbrnn_dsp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CBRNN_ACT_TANH = 0, CBRNN_ACT_RELU = 1, CBRNN_ACT_LEAKY_RELU = 2 } cbrnn_act;
typedef enum { CBRNN_WIRING_READOUT = 0, CBRNN_WIRING_LOOP = 1 } cbrnn_wiring;
/* cbrnn: cortex + cerebellum; rnn: cortex + linear readout (no CB);
 * reservoir: random cortex scaled to spectral_radius, frozen from the start,
 * with a CB (n_cb_hidden > 0) or a linear readout (n_cb_hidden == 0). */
typedef enum { CBRNN_ARCH_CBRNN = 0, CBRNN_ARCH_RNN = 1, CBRNN_ARCH_RESERVOIR = 2 } cbrnn_arch;
typedef enum { CBRNN_GROUP_CORTEX = 0, CBRNN_GROUP_CEREBELLUM = 1, CBRNN_GROUP_READOUT = 2,
               CBRNN_NGROUPS = 3 } cbrnn_group;
/* What the output learns. predict: features `horizon` frames ahead (MSE);
 * map: a teacher signal's features (MSE); classify: frame labels
 * (cross-entropy); task: one of the paper's sequence tasks. */
typedef enum { CBRNN_TARGET_PREDICT = 0, CBRNN_TARGET_MAP = 1, CBRNN_TARGET_CLASSIFY = 2,
               CBRNN_TARGET_TASK = 3 } cbrnn_target;

#define CBRNN_MAX_CB_HIDDEN 6
#define CBRNN_MAX_TENSORS (4 + 2 * (CBRNN_MAX_CB_HIDDEN + 1) + 2)
#define CBRNN_MAX_CLASSES 128
/* Free-form metadata (provenance). cbrnn's own tools write a fixed set of
 * CBRNN_META_TOOL_KEYS keys (cbrnn_meta_is_tool_key: cbrnn train's, the
 * hosts' adapted_*, the experiments'); besides those a model holds at most
 * CBRNN_MAX_META_OWN keys of its own (the loader refuses more, and so does
 * cbrnn_model_set_meta), so a tool always has room for its keys. */
#define CBRNN_MAX_META_OWN 32
#define CBRNN_META_TOOL_KEYS 37
#define CBRNN_MAX_META (CBRNN_MAX_META_OWN + CBRNN_META_TOOL_KEYS)
/* Predict: frames ahead, at most (the engine keeps one slot per frame). */
#define CBRNN_MAX_HORIZON 1000
/* Model file format versions (docs/FORMATS.md): cbrnn-1, and cbrnn-2 for
 * the semantics added since (residual output, running normaliser, online
 * rule rls, a saved RLS state); a save writes the lowest that holds the
 * model, so older builds read what they compute correctly. */
#define CBRNN_FORMAT_NEWEST 2

typedef struct cbrnn_model_config {
    cbrnn_arch arch;
    cbrnn_wiring wiring;
    cbrnn_act act;
    float alpha;          /* 1/tau, in (0, 1] */
    int n_in;             /* F: input features (loop tasks: input channels) */
    int n_hidden;         /* N: cortex units */
    int n_out;            /* O: outputs */
    int n_cb_hidden;      /* CB hidden layers (0: no cerebellum) */
    int cb_hidden[CBRNN_MAX_CB_HIDDEN]; /* their widths, input side first */
    float spectral_radius;/* reservoir: |largest eigenvalue| of W_hh */
    int residual;         /* 1: y_t = x_t[0:O] + head_t, the head learns the
                           * change (n_out <= n_in); PyTorch: add x[..., :O]
                           * to the module's output. 0: y_t = head_t */
} cbrnn_model_config;

typedef struct cbrnn_tensor {
    char name[48];        /* PyTorch state_dict name */
    int group;            /* cbrnn_group */
    int ndim;             /* 1 or 2 */
    int shape[2];         /* rows, cols (ndim 1: shape[0] only) */
    size_t offset;        /* floats from the start of the parameter block */
    size_t size;          /* floats */
} cbrnn_tensor;

/* Online learning rules of the cerebellum's last layer (engine/):
 *   SGD: the exact per-frame gradient, with momentum and decay;
 *   RLS: recursive least squares on the last layer (the head's output
 *        weights and bias; earlier layers stay as loaded): the weights that
 *        minimise the weighted squared error of every frame heard so far,
 *        each older frame discounted by the forgetting factor, plus a prior
 *        pulling toward the loaded weights with precision rls_prior.
 * AUTO (engine configurations only): the rule the model file names. */
typedef enum { CBRNN_RULE_AUTO = 0, CBRNN_RULE_SGD = 1, CBRNN_RULE_RLS = 2 } cbrnn_rule;
#define CBRNN_RLS_PRIOR 30.0f    /* chosen on the validation voices (docs/SPEECH.md) */
#define CBRNN_RLS_FORGET 0.9999f /* a memory of about 10^4 frames (100 s at 10 ms) */
#define CBRNN_RLS_MAX_DIM 1024   /* last-layer inputs RLS accepts: its n x n matrix
                                  * and n^2 work per frame */
/* 1 where RLS applies: the readout wiring and a squared error on the
 * output (target predict or map); the one rule the loader, the trainer,
 * the hosts and the engine all check. */
CBRNN_API int cbrnn_rule_rls_fits(cbrnn_wiring wiring, cbrnn_target target);

/* The model. Fields are read-only for users outside model/ except params
 * (which optimisers and loaders write) and frozen[]. */
typedef struct cbrnn_model {
    cbrnn_model_config cfg;
    size_t n_params;
    float *params;                   /* one aligned block of n_params */
    int n_tensors;
    cbrnn_tensor tensors[CBRNN_MAX_TENSORS];
    /* Views into params; NULL where the architecture has no such tensor. */
    float *w_ih, *w_hh, *b_ih, *b_hh;          /* [N,F] [N,N] [N] [N] */
    int n_cb_layers;                           /* n_cb_hidden + 1, or 0 */
    int cb_dim[CBRNN_MAX_CB_HIDDEN + 2];       /* cb_dim[0] input .. cb_dim[L] output */
    float *cb_w[CBRNN_MAX_CB_HIDDEN + 1];      /* fc(i+1).weight [cb_dim[i+1], cb_dim[i]] */
    float *cb_b[CBRNN_MAX_CB_HIDDEN + 1];      /* fc(i+1).bias   [cb_dim[i+1]] */
    float *out_w, *out_b;                      /* [O,N] [O] */
    int frozen[CBRNN_NGROUPS];                 /* 1: optimisers skip the group */
    /* Not trained: how inputs are made and what outputs mean. */
    cbrnn_feat_config feat;                    /* front end the inputs come from;
                                                * sample_rate: the rate it was
                                                * trained at (feat.ref_rate is
                                                * not stored in model files) */
    float *norm_mean, *norm_std;               /* [n_in] each, or NULL */
    float stream_norm_s;                       /* > 0: after norm_mean/std, a
                                                * causal running normaliser
                                                * with this time constant (s)
                                                * follows the stream's own
                                                * channel and speaker; 0: off */
    float stream_norm_floor;                   /* its standard-deviation floor */
    /* How the cerebellum learns online unless the host says otherwise
     * (cbrnn_engine_config.rule): CBRNN_RULE_SGD (files without the key)
     * or CBRNN_RULE_RLS with its prior precision and forgetting factor. */
    cbrnn_rule online_rule;
    float rls_prior, rls_forget;
    /* The RLS rule's state as a host left it (an adapted model; NULL in a
     * trained one): P, the symmetric [rls_n x rls_n] inverse information
     * matrix of the last layer's inputs (cbrnn_model_rls_dim). A host that
     * learns by RLS from this model goes on from it instead of the prior.
     * File tensor "rls.P". */
    float *rls_P;
    int rls_n;
    cbrnn_target target;
    int horizon;                               /* predict: frames ahead */
    int n_classes;                             /* classify */
    char *class_names[CBRNN_MAX_CLASSES];
    int n_meta;                                /* free-form provenance */
    char *meta_key[CBRNN_MAX_META], *meta_val[CBRNN_MAX_META];
    int file_format;                           /* the format version of the file it
                                                * was loaded from (1, 2); 0: not
                                                * loaded from a file */
} cbrnn_model;

/* Defaults: arch cbrnn, readout wiring, tanh, alpha 1, F = O = 40,
 * N = 256, one CB hidden layer of 512, spectral radius 0.9. */
CBRNN_API void cbrnn_model_config_default(cbrnn_model_config *c);
/* 0 if usable; else CBRNN_ERR_ARG and a reason in msg. */
CBRNN_API int cbrnn_model_config_check(const cbrnn_model_config *c, char *msg, size_t msglen);
/* Parameter count a configuration gives, without creating it. */
CBRNN_API size_t cbrnn_model_config_params(const cbrnn_model_config *c);
/* Hidden size of an rnn baseline (no CB, linear readout, same F, O) whose
 * parameter count is closest to target_params. */
CBRNN_API int cbrnn_rnn_hidden_for_params(int n_in, int n_out, size_t target_params);

/* Creates a model with all parameters zero (frontend: feature defaults at
 * 16 kHz, target predict, horizon 1). Arch rnn ignores n_cb_hidden and
 * cb_hidden (the model's cfg has them zeroed); arch reservoir starts with
 * frozen[CBRNN_GROUP_CORTEX] = 1. NULL on failure, *err set. */
CBRNN_API cbrnn_model *cbrnn_model_create(const cbrnn_model_config *c, int *err);
CBRNN_API void cbrnn_model_destroy(cbrnn_model *m);
/* The front end that feeds m from audio at rate Hz: m->feat (physical
 * units) at that rate, with ref_rate = m->feat.sample_rate, so that at a
 * rate other than the trained one the log-mel comes out at the level the
 * model was trained on (see cbrnn_dsp.h; at the trained rate it changes
 * nothing). The engine, cbrnn eval and cbrnn run all compute a model's
 * features through it. Any thread. */
CBRNN_API void cbrnn_model_feat_config(const cbrnn_model *m, double rate, cbrnn_feat_config *out);
/* ---- Input normalisation and the output it implies ----
 * Every frame first goes through the stored normaliser:
 *   x <- (x - norm_mean) / norm_std
 * giving the corpus-normalised frame x: targets, the persistence baseline,
 * losses and skills are all in this space, whatever the model.
 * With stream_norm_s > 0 (residual models only), the model's input is not
 * x but z, from the per-stream running normaliser (a = hop / tau):
 *   d = x - mu;  mu += a d;  var = (1 - a)(var + a d^2);
 *   s = min(sqrt(var + floor^2), CBRNN_STREAM_NORM_CAP);  z = (x - mu) / s
 * from mu = 0, var = 1 (the corpus statistics), and its output is brought
 * back to x's space with s (cbrnn_model_output). Causal: frame t uses
 * frames <= t only. Training, evaluation and the engine all go through
 * these functions, so a model sees the same inputs offline and live.
 * run_mean, run_var: the stream's state, n_in floats each (caller's
 * memory; unused without a running normaliser). */
CBRNN_API void cbrnn_model_norm_begin(const cbrnn_model *m, float *run_mean, float *run_var);
/* One frame. x: in raw front-end features, out the corpus-normalised frame.
 * z: out the model's input; scale: out s (1 without a running normaliser;
 * may be NULL); n_in floats each, not overlapping x. A non-finite feature
 * is set to 0 before it reaches the running state (which stays finite);
 * returns 1 if any was. No allocation: RT-safe. */
CBRNN_API int cbrnn_model_normalise(const cbrnn_model *m, float *run_mean, float *run_var,
                                    float *x, float *z, float *scale);
/* The running normaliser over T corpus-normalised frames x [T, n_in] from
 * the begin state: z and scale [T, n_in] (outputs; without a running
 * normaliser z = x and scale = 1). Finite input expected. 0 or
 * CBRNN_ERR_NOMEM. */
CBRNN_API int cbrnn_model_stream_seq(const cbrnn_model *m, const float *x, float *z, float *scale,
                                     long T);
/* The stored normaliser over T raw frames in place (finite input). */
CBRNN_API void cbrnn_model_normalise_seq(const cbrnn_model *m, float *x, long T);
/* The model's output from its head's: a residual model gives
 *   y <- base[0:O] + scale[0:O] * y
 * row by row (base: the corpus-normalised input frames; scale: s, or NULL
 * for 1; both with rows ld floats apart); a plain model leaves y as it is.
 * PyTorch: y = x[..., :O] + s[..., :O] * module(z). rows of O floats. */
CBRNN_API void cbrnn_model_output(const cbrnn_model *m, float *y, const float *base,
                                  const float *scale, int ld, long rows);
/* Its backward: dy (dL/dy, [rows, O]) becomes dL/d(head output), in place:
 * dy *= scale for a residual model with a scale; otherwise unchanged. */
CBRNN_API void cbrnn_model_output_backward(const cbrnn_model *m, float *dy, const float *scale,
                                           int ld, long rows);
/* Default standard-deviation floor of the running normaliser: a tenth of
 * the corpus spread, so a band that goes quiet (silence) cannot blow up. */
#define CBRNN_STREAM_NORM_FLOOR 0.1f
/* Its ceiling: five corpus standard deviations, twice the largest a voice
 * reached (2.46 over every 45th training file of the corpus, 204 files),
 * so hostile input (far above full scale) cannot scale the output and the
 * online gradient without bound (tests/hardening over_full_scale). */
#define CBRNN_STREAM_NORM_CAP 5.0f
/* Its shortest time constant, in hops (a = hop / tau <= 0.1): a shorter one
 * follows the frame itself, and near a = 1 the model's input is all but
 * zero. Model files and cbrnn train refuse shorter ones (0: off). */
#define CBRNN_STREAM_NORM_MIN_HOPS 10

/* Deep copy (parameters, normaliser, names, metadata). */
CBRNN_API cbrnn_model *cbrnn_model_clone(const cbrnn_model *m, int *err);
/* Random initialisation, deterministic for seed:
 *   readout wiring: cortex as torch.nn.RNN (U(-1/sqrt N, 1/sqrt N)), CB and
 *   readout as torch.nn.Linear (U(-1/sqrt fan_in, 1/sqrt fan_in));
 *   loop wiring (the paper): cortex and readout as nn.Linear, CB near zero
 *   (biases 0, first layer N(0, 0.01^2), others N(0, 0.1^2));
 *   reservoir: W_hh rescaled to the spectral radius, cortex frozen;
 *   residual output: the output layer (the CB's last, or the readout)
 *   starts at zero, so the model starts as persistence (y = x). */
CBRNN_API int cbrnn_model_init(cbrnn_model *m, uint64_t seed);
/* Largest |eigenvalue| of the row-major n x n matrix w (exact, LAPACK
 * dgeev); 0 for n == 0; < 0 if memory ran out or w is NULL or n < 0.
 * The reservoir's scaling uses it. */
CBRNN_API double cbrnn_spectral_radius(const float *w, int n);
/* Parameters in a group (0 if absent). */
CBRNN_API size_t cbrnn_model_group_params(const cbrnn_model *m, int group);
/* First tensor with that name, or NULL. */
CBRNN_API const cbrnn_tensor *cbrnn_model_tensor(const cbrnn_model *m, const char *name);
/* Stores normalisation statistics (copies n_in floats each). */
CBRNN_API int cbrnn_model_set_norm(cbrnn_model *m, const float *mean, const float *std);
/* The width of the RLS state: the last hidden layer of the head (the
 * cerebellum's, or the cortex for a model without one) plus 1 (bias). */
CBRNN_API int cbrnn_model_rls_dim(const cbrnn_model *m);
/* The RLS state's [rls_dim x rls_dim] storage, allocated on first use
 * (contents then undefined until the caller fills them, symmetric); NULL
 * if memory ran out. Not for an audio thread. */
CBRNN_API float *cbrnn_model_rls_state(cbrnn_model *m);
/* Removes the RLS state (the weights then no longer match it, e.g. after
 * training on). */
CBRNN_API void cbrnn_model_drop_rls_state(cbrnn_model *m);
/* Sets / replaces a metadata string (copied); the key must not be empty.
 * CBRNN_ERR_FULL for a new key that is not a tool key when the model
 * already has CBRNN_MAX_META_OWN of those (a tool key always fits). */
CBRNN_API int cbrnn_model_set_meta(cbrnn_model *m, const char *key, const char *val);
CBRNN_API const char *cbrnn_model_get_meta(const cbrnn_model *m, const char *key);
/* Removes a metadata key (nothing if absent). */
CBRNN_API void cbrnn_model_del_meta(cbrnn_model *m, const char *key);
/* 1 if cbrnn's own tools write key (docs/FORMATS.md lists them). */
CBRNN_API int cbrnn_meta_is_tool_key(const char *key);
/* Removes every tool key: the provenance of how this model was made, which
 * a model trained on from it (cbrnn train --init) no longer has. */
CBRNN_API void cbrnn_model_drop_tool_meta(cbrnn_model *m);
/* The format version a save writes for m: 1 unless it uses what cbrnn-2
 * added (residual output, the running normaliser, online rule rls, a
 * saved RLS state), then 2. */
CBRNN_API int cbrnn_model_format_version(const cbrnn_model *m);
/* Sets class names (copied), n <= CBRNN_MAX_CLASSES. */
CBRNN_API int cbrnn_model_set_classes(cbrnn_model *m, int n, const char *const *names);

/* ---- Model file (safetensors) ----
 * Saving is atomic: a temporary file in the same folder, fsync, rename.
 * Loading validates the header, offsets, shapes against the configuration
 * in __metadata__, dtype F32, finite values; it never trusts a size from
 * the file before checking it. On failure msg says what is wrong. */
CBRNN_API int cbrnn_model_save(const cbrnn_model *m, const char *path, char *msg, size_t msglen);
/* The same into the file name (no '/') in the open folder dirfd: every
 * step is relative to dirfd and follows no symbolic link, so the file
 * lands in that folder whatever is renamed around it meanwhile. shown: the
 * path for messages (NULL: name). */
CBRNN_API int cbrnn_model_save_at(const cbrnn_model *m, int dirfd, const char *name,
                                  const char *shown, char *msg, size_t msglen);
/* The bytes cbrnn_model_save would write, in memory: *buf (malloc'ed; the
 * caller frees it) of *len bytes, checked by the loader first as a save
 * is. For hosts that keep a model inside their own state (the LV2 plugin
 * when the host gives no state:makePath). 0, or a negative code with msg
 * and *buf NULL. Any thread but an audio thread (allocates). */
CBRNN_API int cbrnn_model_save_mem(const cbrnn_model *m, unsigned char **buf, size_t *len,
                                   char *msg, size_t msglen);
CBRNN_API cbrnn_model *cbrnn_model_load(const char *path, int *err, char *msg, size_t msglen);
/* The same, and hands over the file's bytes the model was made from
 * (*bytes malloc'ed, the caller frees it; *nbytes long; NULL and 0 when
 * the load fails): a caller that names the model by a digest of its file
 * hashes these, not the file read again, which may have been replaced
 * meanwhile. bytes and nbytes may be NULL (cbrnn_model_load). */
CBRNN_API cbrnn_model *cbrnn_model_load_bytes(const char *path, unsigned char **bytes,
                                              size_t *nbytes, int *err, char *msg,
                                              size_t msglen);
/* The same from memory (the loader's core; used by fuzzing). */
CBRNN_API cbrnn_model *cbrnn_model_load_mem(const unsigned char *buf, size_t len, int *err,
                                            char *msg, size_t msglen);

/* ---- Deterministic random numbers (xoshiro256**, seeded by splitmix64) ---- */
typedef struct cbrnn_rng { uint64_t s[4]; } cbrnn_rng;
CBRNN_API void cbrnn_rng_seed(cbrnn_rng *r, uint64_t seed);
CBRNN_API uint64_t cbrnn_rng_u64(cbrnn_rng *r);
CBRNN_API double cbrnn_rng_uniform(cbrnn_rng *r);  /* [0, 1) */
CBRNN_API double cbrnn_rng_normal(cbrnn_rng *r);   /* N(0, 1) */

/* ---- Training workspace: activations for B sequences of T steps ----
 * A workspace is used by one thread at a time; forward only reads the
 * model, so several workspaces may run the same model concurrently (but not
 * while an optimiser writes it). */
typedef struct cbrnn_ws cbrnn_ws;
/* For up to max_b sequences of up to max_t steps (max_b * max_t <=
 * INT_MAX), for models of m's configuration. Not RT-safe. */
CBRNN_API cbrnn_ws *cbrnn_ws_create(const cbrnn_model *m, int max_b, int max_t, int *err);
CBRNN_API void cbrnn_ws_destroy(cbrnn_ws *ws);

/* Forward over B sequences of T steps, batch-major (as batch_first=True).
 * y: out [B,T,O] the head's output (a residual model adds its base with
 * cbrnn_model_output). h_last: out [B,N] state after step T (may be NULL).
 * x: in [B,T,F]. h0: in [B,N] initial state (NULL: zeros); h_last may
 * be h0 (h0 is read first).
 * Keeps in ws what cbrnn_backward needs. Neither this nor cbrnn_backward
 * allocates, so with a workspace made beforehand and single-threaded BLAS
 * both may run on an audio thread (truncated BPTT over K frames online). */
CBRNN_API int cbrnn_forward(cbrnn_ws *ws, float *y, float *h_last, const cbrnn_model *m,
                            const float *x, const float *h0, int B, int T);
/* Backward through the last forward (BPTT over its T steps).
 * grad: in/out, n_params floats; gradients are ADDED (zero it yourself).
 * Frozen groups get no gradient; readout wiring with a frozen cortex skips
 * BPTT entirely. dy: in [B,T,O], dL/dy (zero rows where there is no loss). */
CBRNN_API int cbrnn_backward(cbrnn_ws *ws, float *grad, const cbrnn_model *m,
                             const float *dy, int B, int T);

/* ---- Losses: return the mean loss and write dL/dy into dy ----
 * MSE: mean over rows*dim of (y - t)^2 (torch MSELoss, reduction mean).
 * Cross-entropy: softmax over classes per row; rows whose label < 0 are
 * ignored; mean over counted rows (torch CrossEntropyLoss). *n_correct
 * (may be NULL) gets the rows whose argmax equals the label. A label >=
 * classes makes the loss NaN (a caller's bug, never silently ignored); no
 * counted row gives loss 0 and dy 0.
 * y and dy may be the same array. No allocation: RT-safe. */
CBRNN_API float cbrnn_loss_mse(float *dy, const float *y, const float *target, int rows, int dim);
CBRNN_API float cbrnn_loss_xent(float *dy, int *n_correct, const float *logits, const int *labels,
                                int rows, int classes);

/* ---- Optimisers (torch.optim semantics) ---- */
typedef enum { CBRNN_OPT_SGD = 0, CBRNN_OPT_ADAM = 1 } cbrnn_opt_kind;
typedef struct cbrnn_optim_config {
    cbrnn_opt_kind kind;
    float lr;
    float momentum;      /* SGD */
    int nesterov;        /* SGD */
    float beta1, beta2, eps; /* Adam */
    float weight_decay;  /* L2 added to the gradient, as torch */
    float clip_norm;     /* >0: global-norm clipping over trainable groups */
} cbrnn_optim_config;
/* SGD lr 0.01 no momentum; Adam 1e-3, (0.9, 0.999), 1e-8; no clipping. */
CBRNN_API void cbrnn_optim_config_default(cbrnn_optim_config *c, cbrnn_opt_kind kind);

typedef struct cbrnn_optim {
    cbrnn_optim_config cfg;
    size_t n;            /* = model n_params */
    float *m, *v;        /* moments, same layout as params */
    long step;
} cbrnn_optim;
CBRNN_API cbrnn_optim *cbrnn_optim_create(const cbrnn_model *m, const cbrnn_optim_config *c, int *err);
CBRNN_API void cbrnn_optim_destroy(cbrnn_optim *o);
CBRNN_API void cbrnn_optim_reset(cbrnn_optim *o); /* zero moments and step */
/* Clips grad in place (if clip_norm > 0) then updates the trainable groups
 * of m. *grad_norm (may be NULL) gets the norm over trainable groups before
 * clipping. A non-finite norm leaves m and the moments untouched and
 * returns CBRNN_ERR_NONFINITE (where torch would write NaN everywhere).
 * No allocation: RT-safe. */
CBRNN_API int cbrnn_optim_step(cbrnn_optim *o, cbrnn_model *m, float *grad, float *grad_norm);

/* ---- Weight averaging (Polyak-Ruppert / SWA) ----
 * The running mean of the whole parameter block over the states it is
 * shown (add after each optimiser step of the window); apply writes the
 * mean into the model (CBRNN_ERR_ARG if nothing was added or the model's
 * size differs). Frozen groups do not move, so their mean is their value. */
typedef struct cbrnn_param_avg cbrnn_param_avg;
CBRNN_API cbrnn_param_avg *cbrnn_param_avg_create(const cbrnn_model *m, int *err);
CBRNN_API void cbrnn_param_avg_destroy(cbrnn_param_avg *a);
CBRNN_API void cbrnn_param_avg_add(cbrnn_param_avg *a, const cbrnn_model *m);
CBRNN_API long cbrnn_param_avg_count(const cbrnn_param_avg *a);
CBRNN_API int cbrnn_param_avg_apply(const cbrnn_param_avg *a, cbrnn_model *m);

/* ---- Training over a corpus of sequences (truncated BPTT) ---- */
/* One training sequence (a file): the model's inputs and their targets,
 * all with T rows. MSE when y is set, cross-entropy when labels is set.
 * For predict the caller passes y = the corpus-normalised frames shifted
 * by the horizon (and T reduced), with y_stride F when O < F. */
typedef struct cbrnn_seq {
    const float *x;      /* [T, F] the model's inputs (z with a running normaliser) */
    const float *y;      /* [T, O] or NULL; rows y_stride floats apart */
    const int *labels;   /* [T] class per frame, -1 for none; or NULL */
    int T;
    int y_stride;        /* 0: O */
    const float *base;   /* [T, F] corpus-normalised frames (residual base and the
                          * persistence guess, first O of a row); NULL: x */
    const float *scale;  /* [T, F] the running normaliser's s; NULL: 1 */
} cbrnn_seq;

/* How random windows are drawn (cbrnn_train_config.windows). */
enum {
    CBRNN_WINDOWS_POSITIONS = 0, /* every window position equally likely */
    CBRNN_WINDOWS_FRAMES = 1     /* every sequence as often as its frames */
};

typedef struct cbrnn_train_config {
    int batch;           /* sequences per step */
    int seq_len;         /* BPTT window, frames */
    int carry_state;     /* 1: each batch row walks through the corpus in
                          * order, carrying h across windows (truncated
                          * BPTT); 0: random windows starting from h = 0 */
    int windows;         /* random windows: CBRNN_WINDOWS_POSITIONS or
                          * CBRNN_WINDOWS_FRAMES (see cbrnn_trainer_step) */
    uint64_t seed;       /* same seed, same result */
    cbrnn_optim_config opt;
} cbrnn_train_config;

typedef struct cbrnn_trainer cbrnn_trainer;
/* Trains m in place (only groups with m->frozen[g] == 0). Not RT-safe. */
CBRNN_API cbrnn_trainer *cbrnn_trainer_create(cbrnn_model *m, const cbrnn_train_config *c, int *err);
CBRNN_API void cbrnn_trainer_destroy(cbrnn_trainer *t);
/* One optimiser step on a minibatch drawn from seqs; *loss gets its mean
 * loss (before the step). All sequences must have the same kind of target
 * (y for all, or labels for all). Windows are min(seq_len, longest T)
 * frames; a window cut short by the end of a sequence is padded and the
 * padding carries no loss. Random windows, CBRNN_WINDOWS_POSITIONS: every
 * window position in the corpus equally likely, so a sequence of T >= L
 * frames is drawn T - L + 1 times as often as one shorter than L (short
 * files, a corpus of words, are rarely seen); CBRNN_WINDOWS_FRAMES: a
 * sequence is drawn as often as it has frames (T), its window start
 * uniform over 0..T-L (0 when T <= L), so every voice is heard in
 * proportion to its share of the corpus. carry_state: batch row b starts b/B of the way
 * through the concatenated corpus and walks on by one window per step;
 * h is carried, and reset to 0 when the row enters the next sequence (the
 * corpus wraps around). Pass the same seqs every call. Returns
 * CBRNN_ERR_NONFINITE (model unchanged) if the loss or gradient is not
 * finite. */
CBRNN_API int cbrnn_trainer_step(cbrnn_trainer *t, const cbrnn_seq *seqs, int n_seqs, float *loss);
/* The trainer's optimiser: change cfg.lr between steps, or reset its
 * moments (cbrnn_optim_reset) when a training phase changes. */
CBRNN_API cbrnn_optim *cbrnn_trainer_optim(cbrnn_trainer *t);

/* Sums over evaluated frames. loss: sum of per-element squared errors
 * (MSE) or per-row cross-entropy; count: elements (MSE) or labelled rows
 * (CE); persist: squared error of the persistence baseline (x as the
 * prediction of y: its first O features, when F >= O); correct: rows whose argmax is right. */
typedef struct cbrnn_eval_sums {
    double loss, persist;
    long count, correct;
} cbrnn_eval_sums;
/* Runs m over a whole sequence from h = 0, carrying state throughout;
 * adds to *acc; outputs: out [T, O] or NULL. Not RT-safe (allocates). */
CBRNN_API int cbrnn_eval_seq(const cbrnn_model *m, const cbrnn_seq *s, float *outputs,
                             cbrnn_eval_sums *acc);

/* ---- The linear-predictor baseline (speech comparisons) ----
 * Least squares of the change y_t - x_t[0:O] on the last k frames
 * [x_t, ..., x_{t-k+1}, 1] (zeros before a sequence's start), with a ridge
 * of ridge x the mean diagonal of the normal equations. Fit: create, add
 * every training sequence (with y), solve. Eval adds squared errors (and
 * the persistence baseline's) to *acc as cbrnn_eval_seq does; outputs:
 * [T, O] or NULL. Not RT-safe. */
typedef struct cbrnn_linpred cbrnn_linpred;
CBRNN_API cbrnn_linpred *cbrnn_linpred_create(int n_in, int n_out, int k, int *err);
CBRNN_API void cbrnn_linpred_destroy(cbrnn_linpred *p);
CBRNN_API int cbrnn_linpred_add(cbrnn_linpred *p, const cbrnn_seq *s);
CBRNN_API int cbrnn_linpred_solve(cbrnn_linpred *p, double ridge);
CBRNN_API int cbrnn_linpred_eval(const cbrnn_linpred *p, const cbrnn_seq *s, float *outputs,
                                 cbrnn_eval_sums *acc);

#ifdef __cplusplus
}
#endif
#endif
