/* cbrnn_perturb.h: perturbed auditory feedback, the classic adaptation
 * paradigm (Audapter-style): the input with a delay, a gain and a pitch
 * shift applied, each changed with a linear ramp. The engine owns one
 * (cbrnn_engine_config.perturb) and applies its changes at frame
 * boundaries like every other control change, so a live run replays
 * offline bit for bit; this header is the DSP on its own.
 *
 * Signal path, per sample: input -> pitch shifter (Rubber Band's R3
 * engine in its real-time mode, short window, no threads) -> delay line
 * -> gain -> output. The pitch shifter is fed in fixed chunks counted from
 * the stream start and read through a fixed-latency queue, so the output
 * depends only on the sample sequence and on the sample each change
 * arrives at, never on how the stream is cut into blocks.
 *
 * Real time: everything is allocated at create; process() and set() never
 * allocate, lock or wait (tests/engine/test_engine_rt.c). Rubber Band's
 * resampler allocates when a pitch ratio needs more filter phases or a
 * longer buffer than any ratio before it: pitch scales are rounded to
 * k / 1000 (at most 0.87 cents off) and create runs the shifter once
 * through both ends of the pitch range, so no later ratio needs more.
 * Library code: never prints. */
#ifndef CBRNN_PERTURB_H
#define CBRNN_PERTURB_H

#include "cbrnn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CBRNN_PERTURB_DELAY = 0, /* ms, [0, max_delay_ms] */
    CBRNN_PERTURB_GAIN = 1,  /* dB, [-60, 20] */
    CBRNN_PERTURB_PITCH = 2  /* semitones, [-12, 12]; needs with_pitch */
} cbrnn_perturb_param;

/* Ranges every host accepts (command line, OSC, schedules, events). */
#define CBRNN_PERTURB_DELAY_MAX_MS 2000.0
#define CBRNN_PERTURB_GAIN_DB_MIN -60.0
#define CBRNN_PERTURB_GAIN_DB_MAX 20.0
#define CBRNN_PERTURB_PITCH_MAX 12.0
#define CBRNN_PERTURB_RAMP_MAX_MS 60000

typedef struct cbrnn_perturb cbrnn_perturb;

/* rate: Hz (8000..192000); max_delay_ms: the largest delay set() may ask
 * for, (0, CBRNN_PERTURB_DELAY_MAX_MS]; with_pitch: 1 to put the pitch
 * shifter in the path (it adds cbrnn_perturb_latency() samples even at 0
 * semitones, so the latency stays the same when the shift comes and
 * goes), 0 for delay and gain only (no added latency). Starts at delay 0,
 * gain 0 dB, pitch 0. Not RT-safe. NULL with *err (may be NULL) on failure:
 * CBRNN_ERR_ARG, CBRNN_ERR_RATE, CBRNN_ERR_NOMEM. */
CBRNN_API cbrnn_perturb *cbrnn_perturb_create(double rate, double max_delay_ms, int with_pitch,
                                              int *err);
CBRNN_API void cbrnn_perturb_destroy(cbrnn_perturb *p);

/* 0 when value and ramp_ms (0..CBRNN_PERTURB_RAMP_MAX_MS) are in range for
 * param (delay up to CBRNN_PERTURB_DELAY_MAX_MS), else CBRNN_ERR_ARG. Any
 * thread. */
CBRNN_API int cbrnn_perturb_check(int param, float value, int ramp_ms);

/* From the next sample processed, param moves linearly from where it is
 * to value over ramp_ms ms (0: at once). Delay and gain act on the output
 * (a delay change is heard at once; while a delay ramps the line is read
 * between samples, linearly interpolated); the pitch shift acts on the
 * input and moves once per chunk (cbrnn_perturb_chunk). Audio thread (the
 * one that calls process). 0, CBRNN_ERR_ARG (out of range, or a delay
 * above this perturber's max_delay_ms) or CBRNN_ERR_UNSUPPORTED (pitch
 * without the shifter). */
CBRNN_API int cbrnn_perturb_set(cbrnn_perturb *p, int param, float value, int ramp_ms);

/* n samples in, n out; out may be in (in-place). Audio thread. 0 or
 * CBRNN_ERR_ARG. */
CBRNN_API int cbrnn_perturb_process(cbrnn_perturb *p, float *out, const float *in, int n);

/* Back to the start of a stream: silence in the shifter and the delay
 * line; the parameters keep their targets (ramps end). Not concurrently
 * with process(). */
CBRNN_API void cbrnn_perturb_reset(cbrnn_perturb *p);

/* Samples from an input sample to the output sample that carries it, at
 * delay 0: the pitch shifter's fixed latency (0 without it). Any thread. */
CBRNN_API int cbrnn_perturb_latency(const cbrnn_perturb *p);
/* Samples per pitch-shifter chunk (5 ms), 0 without the shifter. */
CBRNN_API int cbrnn_perturb_chunk(const cbrnn_perturb *p);
/* Output samples the shifter had not produced in time (played as 0);
 * 0 unless the pitch jumps by many semitones many times a second. */
CBRNN_API long long cbrnn_perturb_underruns(const cbrnn_perturb *p);
/* The current (ramping) value of param. Audio thread, or when process()
 * is not running. */
CBRNN_API float cbrnn_perturb_get(const cbrnn_perturb *p, int param);

#ifdef __cplusplus
}
#endif
#endif
