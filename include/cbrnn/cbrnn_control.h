/* cbrnn_control.h: rules for control surfaces (OSC today; any host that
 * takes commands from outside the process). Shared by every host so that
 * each applies the same policy; pure checks on paths and files, no
 * printing, no exiting, never on an audio thread. */
#ifndef CBRNN_CONTROL_H
#define CBRNN_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include "cbrnn.h"
#include "cbrnn_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* May a save requested by a control message write `path`? Allowed when
 * the folder holding `path` (symlinks resolved) is `dir` or inside it, and
 * `path` does not exist or is a regular file (not a symlink) that loads as
 * a cbrnn model. A relative `path` is taken relative to `dir`. On success
 * writes the path to save to into out (outlen bytes) and returns 0; else
 * returns CBRNN_ERR_ARG (outside the folder, no such folder, bad name) or
 * CBRNN_ERR_FORMAT (an existing file that is not a cbrnn model) and puts
 * the reason, naming the path, in msg. Control thread; may read the file
 * at `path` (a model load). The answer can go stale if the file system
 * changes afterwards: check again right before writing. */
CBRNN_API int cbrnn_control_check_save(char *out, size_t outlen, const char *dir,
                                       const char *path, char *msg, size_t msglen);

/* Saves m to `path` confined to `dir`: cbrnn_control_check_save, then the
 * write itself through descriptors opened beneath dir that follow no
 * symbolic link (cbrnn_model_save_at), so a folder swapped for a link
 * between the check and the write cannot carry the file outside dir. 0 or
 * a negative code with the reason in msg. Control thread. */
CBRNN_API int cbrnn_control_save_in(const cbrnn_model *m, const char *dir, const char *path,
                                    char *msg, size_t msglen);

/* 0 when name is 1..max bytes with no control character (below 0x20, or
 * 0x7f): what a marker name or a save path from a control message may be
 * (a newline in either would break a log line or a CSV row). */
#define CBRNN_MARKER_NAME_MAX 200
CBRNN_API int cbrnn_control_check_name(const char *name, size_t max);

/* May the process overwrite `path` with a model (a path from the command
 * line, checked at start)? 0 when its folder exists and is writable and
 * `path` is absent or a cbrnn model; else a negative code and the reason
 * in msg. */
CBRNN_API int cbrnn_control_check_output(const char *path, char *msg, size_t msglen);

/* ---- Replaying control changes at their frames ----
 * A list of events (cbrnn_event: a command and the frame before which it
 * takes effect), sorted by frame (stable: same-frame events keep their
 * order), fed to an engine so that each is applied exactly when the
 * engine's next frame is its frame: the replay of a recorded live run
 * (`cbrnn run --events`) and, later, schedules. */
/* ---- The run an events file was recorded from ----
 * An events file starts with "# key=value" lines (docs/FORMATS.md
 * "Events file") naming what its replay needs besides the events: the
 * model (its path and the SHA-256 of its bytes), the sample rate and the
 * engine options that change numbers and are no event (the online rule
 * as resolved, its prior and forgetting factor, the BPTT window, the
 * surprise and divergence settings). Files written before these lines
 * existed have none (have == 0). */
enum {
    CBRNN_EVH_MODEL = 1u << 0,             /* model= */
    CBRNN_EVH_MODEL_SHA256 = 1u << 1,      /* model_sha256= */
    CBRNN_EVH_RATE = 1u << 2,              /* sample_rate= */
    CBRNN_EVH_RULE = 1u << 3,              /* rule= */
    CBRNN_EVH_RLS_PRIOR = 1u << 4,         /* rls_prior= */
    CBRNN_EVH_RLS_FORGET = 1u << 5,        /* rls_forget= */
    CBRNN_EVH_BPTT = 1u << 6,              /* bptt= */
    CBRNN_EVH_SURPRISE_FRAMES = 1u << 7,   /* surprise_frames= */
    CBRNN_EVH_SURPRISE_FLOOR = 1u << 8,    /* surprise_floor= */
    CBRNN_EVH_SURPRISE_MAX = 1u << 9,      /* surprise_max= */
    CBRNN_EVH_DIVERGE_RATIO = 1u << 10,    /* diverge_ratio= */
    CBRNN_EVH_CHECKPOINT_FRAMES = 1u << 11, /* checkpoint_frames= */
    /* Written last, by a live host whose run the file cannot replay
     * exactly (docs/FORMATS.md, Events file): */
    CBRNN_EVH_CHANGES_LOST = 1u << 12,   /* changes_lost=N: applied, not in the file */
    CBRNN_EVH_SAMPLES_DROPPED = 1u << 13 /* samples_dropped=N: gaps in the recording */
};

typedef struct cbrnn_events_info {
    unsigned have;             /* CBRNN_EVH_* of the keys the file gave */
    char model[4096];          /* the model's path as the run was given it
                                * (cut to fit; informative only) */
    char model_sha256[65];     /* 64 lowercase hex digits */
    /* The settings, in the fields an engine config has them: sample_rate,
     * rule (SGD or RLS: resolved), rls_prior (0: the model's saved RLS
     * state, as the run began from it), rls_forget, bptt_k,
     * surprise_frames, surprise_floor, surprise_max, diverge_ratio,
     * checkpoint_frames; the rest unused. */
    cbrnn_engine_config ec;
    long long changes_lost;    /* changes_lost= (0 when not given) */
    long long samples_dropped; /* samples_dropped= (0 when not given) */
} cbrnn_events_info;

/* A buffer this long always holds cbrnn_events_header's lines. */
#define CBRNN_EVENTS_HEADER_MAX 8192

/* The "# key=value" lines an events file starts with (each ending in
 * '\n'; the "frame,event,value" line comes after them) for a run of the
 * engine e, made with config c from the model file at model_path whose
 * bytes have the SHA-256 model_sha256 (hex, from cbrnn_host_load_model:
 * the bytes the model was loaded from). model_sha256 NULL: the file is
 * read and hashed here, which names whatever the file holds now, not
 * necessarily the model e runs. Control characters of the path are
 * written as '?'. Returns the length written to buf, or a negative code
 * with the reason in msg: CBRNN_ERR_IO (the model file cannot be read),
 * CBRNN_ERR_ARG (a NULL argument, or len too small: give
 * CBRNN_EVENTS_HEADER_MAX). Not the audio thread (may read a file). */
CBRNN_API int cbrnn_events_header(char *buf, size_t len, const char *model_path,
                                  const char *model_sha256, const cbrnn_engine *e,
                                  const cbrnn_engine_config *c, char *msg, size_t msglen);

/* Sets the settings of c that the file gives (h->have) to the file's,
 * except those whose CBRNN_EVH_* bit is in keep (options the user gave:
 * CBRNN_EVH_RULE, _RLS_PRIOR, _RLS_FORGET, _BPTT). The sample rate is
 * left alone (it is the recording's). Any thread. */
CBRNN_API void cbrnn_events_apply(cbrnn_engine_config *c, const cbrnn_events_info *h,
                                  unsigned keep);

/* Compares the run the file records with the engine e (made with c for
 * its replay): the sample rate, the rule as resolved with its prior,
 * saved state and forgetting factor (RLS only), the BPTT window (loop
 * wiring only) and the surprise and divergence settings, each only where
 * the file gives it. Returns how many differ and lists them in msg
 * ("rule sgd here, rls recorded; ..."; "" when none). Any thread. */
CBRNN_API int cbrnn_events_compare(char *msg, size_t msglen, const cbrnn_events_info *h,
                                   const cbrnn_engine *e, const cbrnn_engine_config *c);

/* Is the model file at model_path the one the events file at events_path
 * (read into h) was recorded with? model_sha256: the SHA-256 (hex) of the
 * bytes the model in hand was loaded from (cbrnn_host_load_model); NULL:
 * the file is read and hashed here. 0 same bytes (SHA-256); 1 different
 * bytes, with msg naming both files and both digests; 2 the file names no
 * model (recorded before events files did), with msg saying that the
 * model and options cannot be checked; CBRNN_ERR_IO the model cannot be
 * read (msg). Not the audio thread (may read the model file). */
CBRNN_API int cbrnn_events_check_model(const cbrnn_events_info *h, const char *events_path,
                                       const char *model_path, const char *model_sha256,
                                       char *msg, size_t msglen);

typedef struct cbrnn_event_list {
    cbrnn_event *ev;
    size_t n, next; /* events, and the first not yet sent */
    cbrnn_events_info info; /* an events file's header lines (have 0: none) */
} cbrnn_event_list;

/* Reads an events file (cbrnn_event_csv_parse; docs/FORMATS.md) with its
 * header lines (cbrnn_events_info: a known key with a bad value is an
 * error; unknown keys and other '#' lines are skipped). 0, or a
 * negative code with msg naming the file, the line and what is wrong.
 * Snapshot events are kept (they change no numbers; feed skips them). */
CBRNN_API int cbrnn_event_list_load(cbrnn_event_list *l, const char *path, char *msg,
                                    size_t msglen);
CBRNN_API void cbrnn_event_list_free(cbrnn_event_list *l);

/* The caller has fed `samples` samples to e since its stream started, and
 * e has run `frames` frames. Sends every event due (frame <= frames, so
 * it applies at the next process()) and returns how many more samples may
 * be fed before the next event is due: feeding more would let the frame
 * it must precede complete first. -1 when no event is left. Control
 * thread (the file host: the one thread that also calls process()).
 * CBRNN_ERR_FULL: the command ring is full (give it a larger
 * command_capacity or feed smaller blocks). */
/* The settings of c as events at frame 0 (learn, lr, momentum, decay,
 * gate; with c->perturb also delay, gain, listen and, for 2, pitch), so an
 * events file starts with the whole state its replay needs. Writes at
 * most max events to out; returns how many there are (5, 8 or 9). */
CBRNN_API int cbrnn_events_from_config(cbrnn_event *out, int max, const cbrnn_engine_config *c);
/* The reverse: the setting an applied event changes, changed in c (learn,
 * lr, momentum, decay, gate and the perturbation's delay, gain, pitch and
 * listen; other events change no setting). A host that must build a new
 * engine mid-run (a server's rate change) starts it with the settings in
 * force, not those it started with. */
CBRNN_API void cbrnn_config_apply_event(cbrnn_engine_config *c, const cbrnn_event *ev);

/* What an engine needs to apply the n events ev: *perturb 0 (no
 * perturbation event), 1 (delay, gain or listen) or 2 (pitch), and
 * *max_delay_ms the largest delay asked for (0 if none). Either pointer
 * may be NULL. Any thread. */
CBRNN_API void cbrnn_events_perturb_needs(const cbrnn_event *ev, size_t n, int *perturb,
                                          float *max_delay_ms);

CBRNN_API long cbrnn_event_list_feed(cbrnn_event_list *l, cbrnn_engine *e, int64_t frames,
                                     int64_t samples);

/* ---- Perturbed feedback options (cbrnn-jack and cbrnn run alike) ----
 * opt (without "--") one of perturb-delay MS, perturb-gain DB,
 * perturb-pitch SEMITONES (initial values), perturb-max-delay MS, or
 * feedback-to-model (arg NULL: the model hears the feedback). Sets c,
 * raising c->perturb to what the option needs (pitch: 2) and the largest
 * delay to the initial one. 0, or CBRNN_ERR_ARG with the reason in msg. */
CBRNN_API int cbrnn_host_perturb_option(cbrnn_engine_config *c, const char *opt, const char *arg,
                                        char *msg, size_t msglen);
/* Raises c->perturb and c->perturb_max_delay_ms to what the n events ev
 * (an events file, a schedule) need (cbrnn_events_perturb_needs). */
CBRNN_API void cbrnn_host_perturb_for_events(cbrnn_engine_config *c, const cbrnn_event *ev,
                                             size_t n);
/* Raises c->event_capacity (the ring of applied control changes a host
 * drains into its events file) so that n events (an events file, a
 * schedule) can all apply between two drains, up to 65536 (1.5 MiB): a
 * schedule's 1200 marks at frame 0 lost 176 rows to the default 1024.
 * Past that a loss is still counted (cbrnn_engine_stats.dropped_events).
 * c->command_capacity likewise (12 bytes a slot), so that all n events can
 * be sent in one frame: `cbrnn run --events` feeds a frame's events at
 * once (cbrnn_event_list_feed). */
CBRNN_API void cbrnn_host_size_event_ring(cbrnn_engine_config *c, size_t n);

/* A row of a markers file (header "marker,name,seconds\n"): the id, the
 * name as a quoted CSV field ('"' doubled) and the seconds, with '\n'.
 * Returns the length written: always a whole row (a name too long for
 * buf is cut), or 0 when not even an empty name fits. Any thread. */
CBRNN_API const char *cbrnn_marker_csv_header(void);
CBRNN_API int cbrnn_marker_csv_row(char *buf, int len, int id, const char *name, double seconds);

/* ---- Trial schedules (docs/FORMATS.md "Schedule file") ----
 * A text file of timed actions (learn, lr, momentum, decay, reset, mark,
 * phase) with optional repeats, compiled for one engine into events at
 * frames (cbrnn_engine_set_schedule applies them in the audio thread, so
 * `cbrnn-jack --schedule` and `cbrnn run --schedule` act on the same
 * frames). Marks and phases become markers with ids first_mark,
 * first_mark + 1, ... and names: "NAME" for mark, "phase:NAME" for phase,
 * "trial:K" (K from 1) at the start of each repeat when there are several. */
typedef struct cbrnn_schedule {
    cbrnn_event_list events; /* sorted by frame */
    char **mark_names;       /* [n_marks]: the name of marker first_mark + i */
    double *mark_seconds;    /* [n_marks]: its scheduled time */
    int n_marks, first_mark;
    int trials;              /* repeats */
} cbrnn_schedule;

/* Reads path for an engine with this hop (samples) at this rate (Hz): a
 * time t becomes the frame llround(t * rate / hop). 0, or a negative code
 * with msg naming the file, the line and what is wrong. */
CBRNN_API int cbrnn_schedule_load(cbrnn_schedule *s, const char *path, double rate, int hop,
                                  int first_mark, char *msg, size_t msglen);
CBRNN_API void cbrnn_schedule_free(cbrnn_schedule *s);

#ifdef __cplusplus
}
#endif
#endif
