/* cbrnn_engine.h: the real-time streaming processor shared by the two hosts
 * (`cbrnn run` over files, `cbrnn-jack` live). Audio blocks of any size in;
 * per 10 ms hop: features, normalisation, a cortex step, the cerebellum
 * (CB) forward, the online update for the target that has just become
 * known; per-frame records and audio-rate control outputs out.
 *
 * Threads. One engine per stream. Three roles, each a single thread:
 *   - the audio thread calls cbrnn_engine_process() and
 *     cbrnn_engine_set_label(); these never allocate, lock, print or call
 *     the kernel;
 *   - one control thread calls cbrnn_engine_send() (commands in) and
 *     cbrnn_engine_take_snapshot() (weights out);
 *   - one reader thread calls cbrnn_engine_read_record() (records out).
 * The roles may share a thread (cbrnn run does everything on one). Every
 * queue is a lock-free single-producer/single-consumer ring; a full queue
 * drops and counts, never waits. create/destroy run on no audio thread.
 *
 * Online learning (readout wiring): the exact per-frame gradient of the
 * loss on the CB parameters with the cortex frozen, SGD with momentum
 * (torch.optim.SGD semantics), optional weight decay toward the loaded
 * (warm-up) weights. Loop wiring: truncated BPTT over the last K frames
 * through the frozen cortex, updating the CB only.
 * Targets: predict (features `horizon` frames ahead: at frame t the
 * prediction made at t - horizon is scored against the features now seen,
 * the CB learns from it, and only then the model steps), map (the teacher
 * signal's features at the same frame), classify (the label set with
 * cbrnn_engine_set_label or a CBRNN_CMD_LABEL command).
 *
 * Surprise: how this frame's loss compares with the recent past,
 *     surprise_t = min(surprise_max, (loss_t + f) / (mean_{t-1} + f)),
 * mean_t = mean_{t-1} + (loss_t - mean_{t-1}) / surprise_frames (mean_0 =
 * the first loss; a frame whose loss crosses diverge_ratio leaves the mean
 * as it was), f = surprise_floor. It is 1 when the loss is as usual,
 * > 1 when worse, < 1 when better; always finite and in (0, surprise_max].
 * f keeps it meaningful after a steady input: silence or DC is predicted
 * almost perfectly, the mean loss falls towards 0 and the next sound
 * would otherwise read 1e6..1e12; with f it stays about 1 during the
 * steady input and reads at most (loss + f) / f after it. The default f,
 * 0.01, is small against the losses of speech (MSE on normalised features:
 * the default model's median is 0.07, its smallest 0.007) so it barely
 * changes surprise there (largest over 30 s of voice B: 47.6 with it, 53
 * without); measured with it: at most 630 after 30 s of full-scale DC, 172
 * after two minutes of silence. No frame's loss, no surprise: NaN in the
 * record, the audio output holds 0 until the first. */
#ifndef CBRNN_ENGINE_H
#define CBRNN_ENGINE_H

#include <stdint.h>
#include "cbrnn.h"
#include "cbrnn_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cbrnn_engine_config {
    double sample_rate;    /* Hz of the audio given to process() (any rate the
                            * front end accepts; features are in physical units
                            * and, at a rate other than the model's
                            * feat.sample_rate, brought to the log-mel level of
                            * that rate: cbrnn_model_feat_config) */
    int learn;             /* 1: online learning on from the start */
    float lr;              /* SGD learning rate (default 1e-3) */
    float momentum;        /* SGD momentum (default 0.9) */
    float decay;           /* pull toward the loaded weights: the gradient gets
                            * decay * (w - w_loaded) (default 0: off) */
    int bptt_k;            /* loop wiring: truncated BPTT window, frames >= 1
                            * (default 4) */
    int record_capacity;   /* records the out ring holds (default 4096, 41 s
                            * at a 10 ms hop) */
    int record_outputs;    /* 1: each record carries the frame's outputs */
    int command_capacity;  /* commands the in ring holds (default 256) */
    int event_capacity;    /* applied control changes the event ring holds
                            * (default 1024; see cbrnn_engine_read_event) */
    int surprise_frames;   /* time constant of the running mean of the loss
                            * that surprise is divided by, frames (default
                            * 100: one second at a 10 ms hop) */
    float surprise_floor;  /* f in the surprise (below), loss units, > 0
                            * (default 0.01) */
    float surprise_max;    /* the largest surprise reported, >= 1 (default
                            * 1000) */
    float diverge_ratio;   /* a finite loss with (loss + f) > diverge_ratio x
                            * (mean + f) counts as divergence: the last good
                            * CB is restored, the frame not learned from and
                            * kept out of the mean (default 1e6, far above
                            * any surprise seen on real input; 0: off) */
    int checkpoint_frames; /* the last good CB is kept every this many
                            * finite frames (default 100) */
    float gate_db;         /* level gate: a frame whose new samples (the hop
                            * that completed it) have an RMS level below
                            * gate_db dBFS is flagged CBRNN_REC_GATED, not
                            * learned from (nor is the frame that its
                            * prediction scores) and kept out of the
                            * surprise's running mean, so silence neither
                            * teaches nor skews; it is predicted by the
                            * head as loaded (readout wiring), since the
                            * adapted head never learned from such frames;
                            * 0 (default): no gate, else in [-150, 0).
                            * CBRNN_CMD_GATE changes it. */
    cbrnn_rule rule;       /* the online learning rule (cbrnn_model.h):
                            * CBRNN_RULE_AUTO (default) takes the model's
                            * (model->online_rule; SGD for files that name
                            * none). RLS needs the readout wiring and a
                            * predict or map target; lr, momentum and decay
                            * do not apply to it. */
    float rls_prior;       /* RLS: precision of the prior around the loaded
                            * weights, > 0: start from it even when the model
                            * carries the rule's saved state (rls_P); 0
                            * (default): the saved state if there is one,
                            * else the model's prior */
    float rls_forget;      /* RLS: forgetting factor in [0.9, 1]; 0 (default):
                            * the model's */
    /* Perturbed feedback (cbrnn_perturb.h): the input with a delay, a gain
     * and a pitch shift applied, out of cbrnn_engine_process_fb's feedback
     * channel, and what the model hears when `listen` is on. */
    int perturb;           /* 0 (default): none; 1: delay and gain; 2: delay,
                            * gain and pitch (adds cbrnn_engine_perturb_latency
                            * samples, constant whatever the shift) */
    float perturb_max_delay_ms; /* the largest delay, ms (default 500) */
    float perturb_delay_ms, perturb_gain_db, perturb_pitch; /* at the start
                            * (default 0: the feedback is the input) */
    int listen;            /* 1: the model hears the feedback instead of the
                            * input (needs perturb); CBRNN_CMD_LISTEN */
} cbrnn_engine_config;

/* Defaults above for sample_rate. Any thread. */
CBRNN_API void cbrnn_engine_config_default(cbrnn_engine_config *c, double sample_rate);

/* The online rule an engine runs, AUTO resolved. Any thread. */
typedef struct cbrnn_engine_rule_info {
    cbrnn_rule rule; /* CBRNN_RULE_SGD or CBRNN_RULE_RLS */
    float rls_prior, rls_forget;
    int rls_saved;   /* RLS: 1 when it began from the model's saved state */
} cbrnn_engine_rule_info;

/* The marker ids one record keeps; more in one frame are counted in
 * n_markers (and all of them are in the event stream). */
#define CBRNN_REC_MAX_MARKERS 8

/* One frame's record. Fields that do not apply are NaN (floats) or -1. */
typedef struct cbrnn_record {
    int64_t frame;          /* index from 0 since the stream (re)started */
    double time;            /* seconds from the stream start to the frame's
                             * last sample: (frame * hop + win - 1) / rate */
    float loss;             /* loss of the prediction this frame resolves
                             * (before this frame's update); NaN if none */
    float persistence_loss; /* predict: the loss of "x_{t+k} = x_t";
                             * map: of "teacher = input" (when O == F) */
    float surprise;         /* (loss + f) / (running mean of the loss before
                             * it + f), at most surprise_max (see above) */
    float lr;               /* learning rate in force */
    int32_t learning;       /* 1: learning was on for this frame; 0 when off,
                             * or when this frame or the one whose prediction
                             * it scores was flagged CBRNN_REC_BAD_INPUT (such
                             * frames are scored, never learned from) */
    int32_t marker;         /* the first marker id sent since the previous
                             * frame, or -1 */
    int32_t label;          /* classify: label in force, or -1 */
    uint32_t flags;         /* CBRNN_REC_* below */
    int32_t n_markers;      /* markers sent since the previous frame */
    int32_t markers[CBRNN_REC_MAX_MARKERS]; /* the first of them, in order */
} cbrnn_record;

enum {
    CBRNN_REC_UPDATED = 1u << 0,   /* the CB was updated this frame */
    CBRNN_REC_BAD_INPUT = 1u << 1, /* non-finite samples or features were zeroed */
    CBRNN_REC_RESTORED = 1u << 2,  /* non-finite loss/weights, or a loss past
                                    * diverge_ratio: last good CB restored */
    CBRNN_REC_RESET = 1u << 3,     /* a reset command took effect before this frame */
    CBRNN_REC_GATED = 1u << 4      /* below the level gate (gate_db): not learned from, predicted by the loaded head */
};

/* The ranges every host accepts for the learning controls, from the
 * command line and from control messages alike: guards against slips such
 * as 1e9 for 1e-3, far above any rate that learns (the default is 1e-3). */
#define CBRNN_LR_MAX 10.0
#define CBRNN_DECAY_MAX 1000.0
#define CBRNN_MOMENTUM_MAX 0.999999
#define CBRNN_GATE_DB_MIN -150.0

/* Commands from the control thread; applied at the start of the next
 * process() call, in order, so between two frames: a command applied while
 * the engine's next frame is number k acts on frames k, k + 1, ... exactly
 * as if it had been applied right after frame k - 1. Each applied command
 * (and each label change) is reported as a cbrnn_event with that k, which
 * is how a host records a controlled run for exact replay.
 * Commands that act on samples (gate, delay, gain, pitch, listen) take
 * effect on the sample right after frame k - 1 completed: one that arrives
 * later within the hop waits for the next frame boundary (becoming an
 * event of frame k + 1), and the commands queued behind it wait with it,
 * so the order is kept. Scheduled commands (cbrnn_engine_set_schedule)
 * act at that sample too. */
typedef enum {
    CBRNN_CMD_LEARN = 0,    /* i: 0 off, 1 on */
    CBRNN_CMD_LR = 1,       /* f: learning rate >= 0 */
    CBRNN_CMD_MOMENTUM = 2, /* f: in [0, 1) */
    CBRNN_CMD_DECAY = 3,    /* f: >= 0 */
    CBRNN_CMD_RESET = 4,    /* CB back to the loaded weights, momentum zeroed */
    CBRNN_CMD_SNAPSHOT = 5, /* i: request id returned with the snapshot */
    CBRNN_CMD_MARK = 6,     /* i: marker id >= 0 put on the next frame's record */
    CBRNN_CMD_LABEL = 7,    /* i: classify label, -1 for none */
    CBRNN_CMD_GATE = 8,     /* f: gate_db, 0 (off) or in [-150, 0) */
    /* Perturbed feedback (needs cbrnn_engine_config.perturb): f the new
     * value, i the ramp to it in ms (0: at once; cbrnn_perturb_set) */
    CBRNN_CMD_DELAY = 9,    /* f: ms, [0, perturb_max_delay_ms] */
    CBRNN_CMD_GAIN = 10,    /* f: dB, [-60, 20] */
    CBRNN_CMD_PITCH = 11,   /* f: semitones, [-12, 12] (perturb 2) */
    CBRNN_CMD_LISTEN = 12   /* i: 1 the model hears the feedback, 0 the input */
} cbrnn_cmd_kind;

typedef struct cbrnn_engine_cmd {
    int kind; /* cbrnn_cmd_kind */
    int i;
    float f;
} cbrnn_engine_cmd;

/* Counters; readable from any thread while the engine runs. */
typedef struct cbrnn_engine_stats {
    int64_t frames;            /* frames processed since create */
    int64_t updates;           /* CB updates applied */
    int64_t restores;          /* non-finite loss/weights: last good CB restored */
    int64_t bad_input;         /* frames whose samples or features were non-finite */
    int64_t dropped_records;   /* records lost to a full ring */
    int64_t dropped_commands;  /* commands refused by cbrnn_engine_send */
    int64_t dropped_snapshots; /* snapshot requests with no free slot */
    int64_t dropped_events;    /* applied commands not reported: event ring full */
    float mean_loss;           /* running mean of the loss (surprise's divisor,
                                * before surprise_floor is added) */
} cbrnn_engine_stats;

typedef struct cbrnn_engine cbrnn_engine;

/* Creates an engine for model m (copied: the caller may destroy m
 * afterwards). Builds the feature front end cbrnn_model_feat_config(m,
 * c->sample_rate) gives (m->feat at that rate, levelled to m's trained rate),
 * allocates everything (FFTW plans, rings, snapshot slots) and touches it.
 * Not RT-safe; do not run concurrently with another create (FFTW's planner).
 * NULL on failure with *err (may be NULL): CBRNN_ERR_ARG (bad config),
 * CBRNN_ERR_RATE, CBRNN_ERR_SHAPE (model and feature dimensions disagree),
 * CBRNN_ERR_UNSUPPORTED (a target/wiring the engine cannot run, or
 * c->learn on a model whose learned group is frozen), CBRNN_ERR_NOMEM.
 * A model that freezes its learned group (cbrnn_engine_learned_group)
 * never learns: a learn command leaves learning off. */
CBRNN_API cbrnn_engine *cbrnn_engine_create(const cbrnn_model *m, const cbrnn_engine_config *c,
                                            int *err);
CBRNN_API void cbrnn_engine_destroy(cbrnn_engine *e);

/* The parameter group (cbrnn_group) online learning changes: the
 * cerebellum, or the linear readout of a model without one. The model's
 * `frozen` list (m->frozen) naming it means: never learn online. */
CBRNN_API int cbrnn_engine_learned_group(const cbrnn_model *m);

/* Processes n >= 0 samples. Audio thread.
 * out: n_out channel pointers (n_out <= cbrnn_engine_n_outputs()), each
 *   n floats or NULL to skip: out[0] the surprise, out[1 + j] output j of
 *   the model (the prediction in normalised feature units, or class
 *   posteriors). Each frame's values appear from the sample that completes
 *   the frame and hold until the next frame; 0 before the first frame.
 *   Outputs may alias in or teacher (in-place use is allowed).
 * in: n samples (full scale +-1); non-finite samples are zeroed and counted.
 * teacher: n samples of the map target signal, or NULL (map: no loss).
 * Commands queued by cbrnn_engine_send are applied first. Results depend
 * only on the sample sequence, never on how it is cut into blocks.
 * Returns 0, or CBRNN_ERR_ARG for a bad argument. */
CBRNN_API int cbrnn_engine_process(cbrnn_engine *e, float *const *out, int n_out,
                                   const float *in, const float *teacher, int n);

/* cbrnn_engine_process with the perturbed feedback of `in` written to
 * feedback (n floats, or NULL): the input through the perturbation
 * (cbrnn_engine_config.perturb), or the input itself when the engine has
 * none. It may alias in. Audio thread. */
CBRNN_API int cbrnn_engine_process_fb(cbrnn_engine *e, float *const *out, int n_out,
                                      float *feedback, const float *in, const float *teacher,
                                      int n);

/* Classify: the label from the next sample on (-1: none). Audio thread,
 * between process() calls, so a host can split a block at a MIDI event. */
CBRNN_API void cbrnn_engine_set_label(cbrnn_engine *e, int label);

/* Forgets the stream: audio buffers, cortex state, pending predictions,
 * the frame counter and the running loss; the CB weights are kept. Audio
 * thread (or when process() is not running). */
CBRNN_API void cbrnn_engine_reset_stream(cbrnn_engine *e);

/* 0 when c is a command with values the engine accepts (what send
 * checks), else CBRNN_ERR_ARG. Any thread. */
CBRNN_API int cbrnn_engine_check_command(const cbrnn_engine_cmd *c);

/* Queues a command. Control thread. 0, CBRNN_ERR_ARG (bad kind/value, or
 * a delay above perturb_max_delay_ms), CBRNN_ERR_UNSUPPORTED (a perturbed-
 * feedback command the engine was not made for) or CBRNN_ERR_FULL (ring
 * full; counted in dropped_commands). */
CBRNN_API int cbrnn_engine_send(cbrnn_engine *e, const cbrnn_engine_cmd *c);

/* Takes the next record. Reader thread. Returns 1 and fills *r (and y with
 * the frame's cbrnn_engine_n_outputs() - 1 outputs when record_outputs is
 * set and y is not NULL), or 0 when the ring is empty. */
CBRNN_API int cbrnn_engine_read_record(cbrnn_engine *e, cbrnn_record *r, float *y);

/* A control change as the engine applied it: cmd took effect before the
 * frame numbered `frame` (after frame - 1 had run). Label changes (from
 * cbrnn_engine_set_label or CBRNN_CMD_LABEL) come as CBRNN_CMD_LABEL. */
/* The largest frame an event or a schedule may name (1e15: 317 years of
 * 10 ms frames), so that a host's frame x hop stays far inside int64. */
#define CBRNN_MAX_EVENT_FRAME 1000000000000000LL
typedef struct cbrnn_event {
    int64_t frame;
    cbrnn_engine_cmd cmd;
} cbrnn_event;

/* Takes the next applied control change, in the order applied. Reader
 * thread (the one that reads records). 1 and fills *ev, or 0 when none is
 * waiting. Feeding the same events at the same frames to an engine made
 * from the same model and configuration, over the same samples, gives the
 * same records bit for bit (cbrnn_event_csv_* below; `cbrnn run --events`). */
CBRNN_API int cbrnn_engine_read_event(cbrnn_engine *e, cbrnn_event *ev);

/* A schedule: commands applied by the audio thread itself right before
 * the frame each names (ev sorted by frame; snapshots not allowed), so
 * that they act at the same frame live and offline whatever the block
 * sizes; each is reported as an event like any command. ev is the
 * caller's and must outlive the engine (or the next call). Frames count
 * from the stream start (cbrnn_engine_reset_stream does not rewind the
 * schedule). Only while process() cannot run. 0 or CBRNN_ERR_ARG. */
CBRNN_API int cbrnn_engine_set_schedule(cbrnn_engine *e, const cbrnn_event *ev, size_t n);

/* Snapshots the audio thread can hold at once: a CBRNN_CMD_SNAPSHOT that
 * finds them all taken is dropped (counted in dropped_snapshots), so a
 * host keeps at most this many requests in flight
 * (cbrnn_host_saves_request queues the rest). */
#define CBRNN_ENGINE_SNAPSHOT_SLOTS 2

/* Takes the next weight snapshot made for a CBRNN_CMD_SNAPSHOT command.
 * Control thread. dst: a model with the engine's configuration (e.g. from
 * cbrnn_model_clone(cbrnn_engine_model(e))); its trained parameters are
 * overwritten with the snapshot. *id, *frame (may be NULL) get the
 * request id and the number of frames processed when it was taken.
 * Returns 1 when a snapshot was taken, 0 when none is waiting, or
 * CBRNN_ERR_SHAPE when dst does not match. */
CBRNN_API int cbrnn_engine_take_snapshot(cbrnn_engine *e, cbrnn_model *dst, int *id,
                                         int64_t *frame);

/* Copies the current parameters into dst (same configuration) directly.
 * Only while process() cannot run (same thread, or after the audio thread
 * stopped). 0 or CBRNN_ERR_SHAPE. */
CBRNN_API int cbrnn_engine_copy_params(const cbrnn_engine *e, cbrnn_model *dst);

/* Replaces the current parameters with src's (same configuration), e.g.
 * to carry adapted weights into an engine made for a new sample rate; the
 * loaded weights (reset target, decay anchor) stay. Momentum is zeroed.
 * Only while process() cannot run. 0 or CBRNN_ERR_SHAPE. */
CBRNN_API int cbrnn_engine_set_params(cbrnn_engine *e, const cbrnn_model *src);

/* The model as loaded (weights before any learning; never changes). */
CBRNN_API const cbrnn_model *cbrnn_engine_model(const cbrnn_engine *e);

/* Counters (relaxed atomic reads). Any thread. */
CBRNN_API void cbrnn_engine_get_stats(const cbrnn_engine *e, cbrnn_engine_stats *s);
CBRNN_API void cbrnn_engine_get_rule(const cbrnn_engine *e, cbrnn_engine_rule_info *r);

/* Sizes. Any thread. */
CBRNN_API int cbrnn_engine_hop(const cbrnn_engine *e);       /* samples per frame */
CBRNN_API int cbrnn_engine_win(const cbrnn_engine *e);       /* samples per window */
/* Samples from the centre of a frame's analysis window to the first output
 * sample carrying its value: the delay a host reports (win - 1 - win / 2). */
CBRNN_API int cbrnn_engine_latency(const cbrnn_engine *e);
/* Samples the perturbed feedback lags the input at delay 0 (the pitch
 * shifter's; 0 without pitch or perturbation). With listen on, the model
 * (and so every output) hears the input this much (plus the delay) later. */
CBRNN_API int cbrnn_engine_perturb_latency(const cbrnn_engine *e);
/* Feedback samples the pitch shifter produced too late (played as 0). */
CBRNN_API long long cbrnn_engine_perturb_underruns(const cbrnn_engine *e);
CBRNN_API int cbrnn_engine_feat_dim(const cbrnn_engine *e);  /* F */
CBRNN_API int cbrnn_engine_n_outputs(const cbrnn_engine *e); /* 1 + O */
CBRNN_API double cbrnn_engine_rate(const cbrnn_engine *e);

/* The per-frame log as CSV, one format for both hosts. The header line
 * (with '\n'): frame,time,loss,persistence_loss,surprise,learning,lr,marker,
 * label,flags. A row formats r; NaN fields are left empty. Both return the
 * length written (truncated to len - 1 like snprintf). Any thread. */
CBRNN_API const char *cbrnn_record_csv_header(void);
CBRNN_API int cbrnn_record_csv_row(char *buf, int len, const cbrnn_record *r);

/* The events file (docs/FORMATS.md): CSV with the header line
 * "frame,event,value"; event one of learn, lr, momentum, decay, reset,
 * snapshot, mark, label, gate, delay, gain, pitch, listen; value the
 * command's number (empty for reset; delay, gain and pitch: "X" or, with a
 * ramp, "X:R", R the ramp in ms).
 * Floats are written with 9 significant digits, so they read back to the
 * same bits. The row formatter works like cbrnn_record_csv_row. The parser
 * takes one line (with or without its newline): 1 and *ev filled for an
 * event, 0 for the header, a blank line or a '#' comment, CBRNN_ERR_FORMAT
 * for anything else. Any thread. */
CBRNN_API const char *cbrnn_event_csv_header(void);
CBRNN_API int cbrnn_event_csv_row(char *buf, int len, const cbrnn_event *ev);
CBRNN_API int cbrnn_event_csv_parse(cbrnn_event *ev, const char *line);

#ifdef __cplusplus
}
#endif
#endif
