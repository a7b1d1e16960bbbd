/* cbrnn_host.h: what every host of the engine shares (`cbrnn run` over
 * files, the JACK client `cbrnn-jack`, the LV2 plugin), so that each host
 * is only its own plumbing: opening a model and starting an engine for it,
 * MIDI notes as classify labels, the snapshot/save handshake that writes
 * an adapted model while the audio thread runs, and adapted-model files.
 * The per-frame CSV row is cbrnn_record_csv_row (cbrnn_engine.h).
 *
 * Library code: nothing here prints or exits; failures come back as a
 * code and a message naming the file and the problem. Which thread may
 * call each function is said beside it. */
#ifndef CBRNN_HOST_H
#define CBRNN_HOST_H

#include <stddef.h>
#include <stdint.h>
#include "cbrnn.h"
#include "cbrnn_engine.h"
#include "cbrnn_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Opening a model and starting its engine (never the audio thread) ----
 * cbrnn_host_open loads the model file at path and starts an engine for it
 * at c->sample_rate; cbrnn_host_start does the same for a model already in
 * memory (name: how messages call it, e.g. its path). Refused: models that
 * are not audio models (target task), rates outside CBRNN_RATE_MIN..MAX,
 * configurations the engine cannot run. max_block > 0: the host drains
 * records after every block of at most max_block samples, so the record
 * ring is sized to hold one block's frames plus slack (c->record_capacity
 * otherwise). Returns the engine, or NULL with *err (may be NULL) set and
 * a one-line message in msg (the file and what is wrong). */
CBRNN_API cbrnn_engine *cbrnn_host_open(const char *path, const cbrnn_engine_config *c,
                                        int max_block, int *err, char *msg, size_t msglen);
CBRNN_API cbrnn_engine *cbrnn_host_start(const cbrnn_model *m, const char *name,
                                         const cbrnn_engine_config *c, int max_block, int *err,
                                         char *msg, size_t msglen);
/* Loads the model file at path, as cbrnn_model_load does, and gives the
 * SHA-256 of exactly the bytes it was made from in sha256 (64 lowercase
 * hex digits and a NUL): what an events file names the model by
 * (cbrnn_events_header, cbrnn_events_check_model), true of the model in
 * hand even when the file is replaced after the load. NULL on failure
 * with *err (may be NULL) and msg. Never the audio thread. */
CBRNN_API cbrnn_model *cbrnn_host_load_model(const char *path, char sha256[65], int *err,
                                             char *msg, size_t msglen);

/* ---- The online rule's options, the same in every host ----
 * --rule auto|sgd|rls, --rls-prior X, --rls-forget X (cbrnn_engine_config
 * rule, rls_prior, rls_forget). name: the option without its dashes.
 * Returns 1 when name is one of them and arg was taken, 0 when name is
 * not one of them, -1 with a message in msg when arg is bad. The help
 * text lists them, two-space indented, each line ending in a newline. */
CBRNN_API int cbrnn_host_rule_option(cbrnn_engine_config *c, const char *name, const char *arg,
                                     char *msg, size_t msglen);
CBRNN_API const char *cbrnn_host_rule_help(void);

/* ---- Every engine option both command-line hosts take ----
 * The rule's (above) and the perturbed feedback's (cbrnn_host_perturb_option,
 * cbrnn_control.h): CBRNN_HOST_ENGINE_LONGOPTS(FIRST) are their getopt_long
 * entries (<getopt.h>), whose values run FIRST .. FIRST +
 * CBRNN_HOST_ENGINE_NOPTS - 1; cbrnn_host_engine_option takes the k-th
 * (value - FIRST) with its argument. 0, or -1 with the reason in msg. */
#define CBRNN_HOST_ENGINE_NOPTS 8
#define CBRNN_HOST_ENGINE_LONGOPTS(first)                                 \
    {"rule", required_argument, NULL, (first)},                           \
    {"rls-prior", required_argument, NULL, (first) + 1},                  \
    {"rls-forget", required_argument, NULL, (first) + 2},                 \
    {"perturb-delay", required_argument, NULL, (first) + 3},              \
    {"perturb-gain", required_argument, NULL, (first) + 4},               \
    {"perturb-pitch", required_argument, NULL, (first) + 5},              \
    {"perturb-max-delay", required_argument, NULL, (first) + 6},          \
    {"feedback-to-model", no_argument, NULL, (first) + 7}
CBRNN_API int cbrnn_host_engine_option(cbrnn_engine_config *c, int k, const char *arg, char *msg,
                                       size_t msglen);
/* "rls, prior 30, forget 0.9999", "rls, from the model's saved state,
 * forget 0.9999" or "sgd": the rule an engine runs (64 bytes hold it). */
CBRNN_API void cbrnn_host_rule_describe(const cbrnn_engine *e, char *buf, size_t len);
/* The name of a rule as options and files spell it: "auto", "sgd", "rls"
 * (NULL for a value that is none of them). */
CBRNN_API const char *cbrnn_rule_name(cbrnn_rule r);

/* ---- MIDI notes as classify labels (audio thread; no allocation) ----
 * A note-on makes class (note - base) the label while the note is held; the
 * last note pressed wins; its note-off (or note-on with velocity 0) ends
 * the label (-1). Other messages are ignored. */
typedef struct cbrnn_midi_labels {
    int base;      /* MIDI note of class 0 */
    int held_note; /* note in force, or -1 */
} cbrnn_midi_labels;

CBRNN_API void cbrnn_midi_labels_init(cbrnn_midi_labels *s, int base);
/* msg: one MIDI message of len bytes. Returns 1 and sets *label (a class,
 * or -1 for none) when the message changes the label, else 0. */
CBRNN_API int cbrnn_midi_labels_event(cbrnn_midi_labels *s, const uint8_t *msg, size_t len,
                                      int *label);

/* ---- Adapted-model files ----
 * Writes m (atomically: a temporary file renamed over path) after setting
 * its metadata adapted_by (the program), adapted_from (the model it was
 * loaded from; may be NULL) and adapted_frames (frames processed when the
 * weights were taken); by NULL: m as it is, no adapted_* keys (a model
 * that was not adapted, such as a training's rescue copy). 0, or a
 * negative code with msg. Not the audio thread (file I/O). */
CBRNN_API int cbrnn_host_save_adapted(cbrnn_model *m, const char *path, const char *by,
                                      const char *from, int64_t frames, char *msg,
                                      size_t msglen);

/* When a save to path failed (a full disk, a folder gone read-only): the
 * same model saved where it can still be kept, so a session's learning is
 * not lost: $XDG_STATE_HOME/cbrnn/rescue (default ~/.local/state), else
 * $TMPDIR (or /tmp)/cbrnn-rescue-UID, each a folder of this user only
 * (0700), as PID-FRAMES-NAME (NAME: path's last part). where gets the
 * path written. 0, or a negative code with msg naming both tries. Not the
 * audio thread. */
CBRNN_API int cbrnn_host_save_rescue(cbrnn_model *m, const char *path, const char *by,
                                     const char *from, int64_t frames, char *where,
                                     size_t where_len, char *msg, size_t msglen);

/* 1 when paths a and b name the same file (device and inode: ./x, hard
 * and symbolic links count); 0 otherwise or when either is missing. */
CBRNN_API int cbrnn_host_same_file(const char *a, const char *b);

/* ---- The snapshot/save handshake ----
 * A host asks for a save from its control thread; the audio thread takes
 * a copy of the weights between two frames (CBRNN_CMD_SNAPSHOT) and the
 * control thread writes it later, so no file I/O ever runs on the audio
 * thread. cbrnn_host_saves keeps the saves in flight (path, reason) and a
 * scratch model of the engine's layout that they are written from. All
 * calls on the engine's control thread (the one that calls
 * cbrnn_engine_send and cbrnn_engine_take_snapshot). */
typedef struct cbrnn_host_saves cbrnn_host_saves;

/* Called once per finished save: rc 0 (saved) or a negative code, msg the
 * error text (rc < 0) or NULL. */
typedef void (*cbrnn_host_saved_fn)(void *ctx, const char *path, const char *why,
                                    int64_t frame, int rc, const char *msg);

/* by, from: the metadata of cbrnn_host_save_adapted (copied). NULL with
 * *err on failure. */
CBRNN_API cbrnn_host_saves *cbrnn_host_saves_create(const cbrnn_engine *e, const char *by,
                                                    const char *from, int *err);
CBRNN_API void cbrnn_host_saves_destroy(cbrnn_host_saves *s);
/* Asks the audio thread of e for a snapshot to be written to path (why: a
 * static string such as "osc" or "autosave"). At most
 * CBRNN_ENGINE_SNAPSHOT_SLOTS requests go to the engine at once; later
 * ones wait here and go as cbrnn_host_saves_collect frees slots (a burst
 * of saves is served a few milliseconds apart, each with the weights of
 * the frame it was taken at, never dropped). 0, CBRNN_ERR_FULL (16 saves
 * already waiting: nothing is queued) or CBRNN_ERR_ARG. */
CBRNN_API int cbrnn_host_saves_request(cbrnn_host_saves *s, cbrnn_engine *e, const char *path,
                                       const char *why);
/* The same for a path from a control message: it is checked against dir
 * (cbrnn_control_check_save: inside dir, never over a file that is not a
 * cbrnn model) again right before writing, since the file system may have
 * changed since the request; a failed check is reported through the
 * callback as an error and nothing is written. dir NULL: no check. */
CBRNN_API int cbrnn_host_saves_request_in(cbrnn_host_saves *s, cbrnn_engine *e,
                                          const char *path, const char *why, const char *dir);
/* Writes every snapshot the audio thread has handed over; returns how many
 * saves finished (each reported through fn, which may be NULL). */
CBRNN_API int cbrnn_host_saves_collect(cbrnn_host_saves *s, cbrnn_engine *e,
                                       cbrnn_host_saved_fn fn, void *ctx);
/* Once process() can no longer run (the audio thread stopped): serves
 * the saves still waiting from the weights directly. Returns how many. */
CBRNN_API int cbrnn_host_saves_flush(cbrnn_host_saves *s, cbrnn_engine *e,
                                     cbrnn_host_saved_fn fn, void *ctx);
/* Writes e's current weights to path now. Only while process() cannot run.
 * 0 or a negative code with msg. */
CBRNN_API int cbrnn_host_saves_now(cbrnn_host_saves *s, const cbrnn_engine *e, const char *path,
                                   char *msg, size_t msglen);
/* The save at the end of a session, the last chance to keep what was
 * learned: cbrnn_host_saves_now, and when that fails, the same weights
 * through cbrnn_host_save_rescue. 0 saved at path; 1 saved at where (msg
 * says why path failed); a negative code when neither (msg says both). */
CBRNN_API int cbrnn_host_saves_last_chance(cbrnn_host_saves *s, const cbrnn_engine *e,
                                           const char *path, char *where, size_t where_len,
                                           char *msg, size_t msglen);
/* A host that replaces its engine (a new sample rate) hands over the
 * frames the old one ran: a new engine counts from 0, and adapted_frames
 * (and the frame given to cbrnn_host_saved_fn) counts every frame the
 * weights were run on since the load. */
CBRNN_API void cbrnn_host_saves_carry(cbrnn_host_saves *s, int64_t frames);
/* The frames the weights ran on since the load: e's and those carried. */
CBRNN_API int64_t cbrnn_host_saves_frames(const cbrnn_host_saves *s, const cbrnn_engine *e);
/* Saves waiting for a snapshot. */
CBRNN_API int cbrnn_host_saves_pending(const cbrnn_host_saves *s);

/* ---- Float WAV files (cbrnn-jack --record, cbrnn run's surprise.wav) ----
 * Mono 32-bit float WAV with the 18-byte fmt chunk and the fact chunk the
 * spec gives non-PCM formats (libsndfile's shorter one makes sox warn);
 * every libsndfile reader reads it. create: NULL with *err (CBRNN_ERR_IO:
 * errno says why) when the file cannot be opened; a header that cannot be
 * written (a full disk) fails the first write instead. write appends n samples; once per second of audio
 * (rate samples) it writes them out and rewrites the header's sizes to
 * what the file holds, so a writer killed mid-recording leaves a WAV
 * short of at most a second; CBRNN_ERR_IO with errno (ENOSPC, EFBIG when
 * the data would pass the 4 GiB a RIFF header can declare: what fits is
 * kept) on failure, after which nothing more is written. close writes the
 * rest and the final sizes and closes; 0 or CBRNN_ERR_IO (errno) if
 * anything failed. The sizes are always those of what reached the file.
 * Not the audio thread; one thread at a time per file. */
typedef struct cbrnn_wav cbrnn_wav;
CBRNN_API cbrnn_wav *cbrnn_wav_create(const char *path, int rate, int *err);
CBRNN_API int cbrnn_wav_write(cbrnn_wav *w, const float *x, long n);
CBRNN_API int cbrnn_wav_close(cbrnn_wav *w);

#ifdef __cplusplus
}
#endif
#endif
