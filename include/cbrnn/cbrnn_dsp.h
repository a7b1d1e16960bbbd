/* cbrnn_dsp.h: the streaming feature front end (samples -> feature frames)
 * and the per-feature statistics used for normalisation.
 *
 * Features are defined in physical units so that a model runs at any rate:
 * 25 ms periodic Hann window, 10 ms hop, FFT size the next power of two of
 * the window, power spectrum, HTK mel bank (no filter normalisation),
 * natural log of (mel + 1e-6); optionally the orthonormal DCT-II of the
 * log-mel (MFCC) and causal deltas. Framing is causal: frame t covers
 * samples [t*hop, t*hop + win), no centre padding; a frame is emitted when
 * its last sample arrives. Output does not depend on how the audio is cut
 * into blocks. This is the one feature code path for training and live use.
 *
 * Deltas are causal: the frame emitted at t carries the delta that the
 * HTK/torchaudio regression (window 5, N = 2) gives for frame t-2, i.e.
 * d_t = sum_{n=1..2} n (x_{t-2+n} - x_{t-2-n}) / 10, with frames before
 * the first replaced by the first frame.
 *
 * Level across rates (ref_rate). In physical units the mel bands cover the
 * same frequencies at any rate, but their energy does not: for the same
 * sound a band's power grows with sum(window^2) * n_fft (a longer window
 * and a finer FFT grid; +2.40 nats at 44.1 kHz, +3.87 at 96 kHz against
 * 16 kHz). A model trained at one rate therefore sees every band shifted
 * when it runs at another. With ref_rate set, each mel energy is multiplied
 * by (sum w_r^2 * n_fft_r) / (sum w^2 * n_fft) (r: the window and FFT size
 * at ref_rate) before the log, so the features come out at the level the
 * same sound has at ref_rate. The factor goes in before the 1e-6 floor,
 * not after the log: silence and quiet bands then also land where they do
 * at ref_rate (adding log(factor) after the log moved the per-band mean of
 * voice A by 0.24-0.30 nats at 44.1-96 kHz, mostly from quiet frames;
 * scaling before the floor leaves it within 0.07: tests/dsp/rate_level.py).
 * ref_rate 0 (the default) or equal to sample_rate changes nothing: the
 * output is bit-identical and torchaudio parity is untouched. */
#ifndef CBRNN_DSP_H
#define CBRNN_DSP_H

#include <stddef.h>
#include "cbrnn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CBRNN_RATE_MIN 8000.0
#define CBRNN_RATE_MAX 192000.0

typedef struct cbrnn_feat_config {
    double sample_rate; /* Hz, in [CBRNN_RATE_MIN, CBRNN_RATE_MAX] */
    double win_ms;      /* window length, ms (default 25) */
    double hop_ms;      /* hop, ms (default 10) */
    int n_mels;         /* mel bands (default 40) */
    double f_min;       /* Hz (default 20) */
    double f_max;       /* Hz; 0 means min(8000, R / 2, sample_rate / 2) with
                         * R = ref_rate when set (the model's trained rate:
                         * the same bands at every playback rate), else
                         * sample_rate */
    int n_mfcc;         /* 0: output log-mel; >0: first n_mfcc DCT-II coefs */
    int deltas;         /* 0/1: append causal deltas (doubles the dimension) */
    double ref_rate;    /* Hz: give the mel energies the level they have at this
                         * rate (see above); 0 (default): none. A model's
                         * trained rate when it runs at another rate. */
} cbrnn_feat_config;

/* Fills c with the defaults above for sample_rate. Any thread. */
CBRNN_API void cbrnn_feat_config_default(cbrnn_feat_config *c, double sample_rate);

/* Window and hop in samples for a configuration: round(ms * rate / 1000). */
CBRNN_API int cbrnn_feat_config_win(const cbrnn_feat_config *c);
CBRNN_API int cbrnn_feat_config_hop(const cbrnn_feat_config *c);
/* Feature dimension the configuration produces. */
CBRNN_API int cbrnn_feat_config_dim(const cbrnn_feat_config *c);
/* The log of the factor ref_rate applies to every mel energy, in nats:
 * log((sum w_r^2 * n_fft_r) / (sum w^2 * n_fft)); exactly 0 when ref_rate
 * is 0 or equal to sample_rate. For bands well above the 1e-6 floor it is
 * what the log-mel moves by (an MFCC c0 moves by it times sqrt(n_mels)).
 * NaN if c is not usable. */
CBRNN_API double cbrnn_feat_config_level_shift(const cbrnn_feat_config *c);
/* 0 if c is usable, else a negative code (CBRNN_ERR_RATE for the rate or
 * ref_rate). */
CBRNN_API int cbrnn_feat_config_check(const cbrnn_feat_config *c);

typedef struct cbrnn_feat cbrnn_feat;

/* Creates a streaming extractor: allocates everything and makes the FFTW
 * plan. Not real-time safe; call from a non-RT thread (FFTW's planner is not
 * thread-safe: do not create two extractors concurrently). Returns NULL on
 * failure and sets *err (may be NULL). */
CBRNN_API cbrnn_feat *cbrnn_feat_create(const cbrnn_feat_config *c, int *err);
CBRNN_API void cbrnn_feat_destroy(cbrnn_feat *f);

CBRNN_API int cbrnn_feat_dim(const cbrnn_feat *f); /* floats per frame */
CBRNN_API int cbrnn_feat_hop(const cbrnn_feat *f); /* samples per hop */
CBRNN_API int cbrnn_feat_win(const cbrnn_feat *f); /* samples per window */
CBRNN_API int cbrnn_feat_nfft(const cbrnn_feat *f);

/* Pushes samples until one frame completes or the input runs out.
 * frame: out, cbrnn_feat_dim() floats, written only when a frame completes.
 * in: n mono samples (any scale; full scale is +-1).
 * *consumed: how many samples of in were used (always >= 1 when n > 0).
 * Returns 1 when a frame was written (it completed at in[*consumed - 1]),
 * 0 when all of in was consumed without completing a frame, <0 on error.
 * Real-time safe: no allocation, lock or system call. Loop until n is used:
 *     while (n > 0) { int used; if (cbrnn_feat_push(f, fr, x, n, &used) == 1)
 *     use(fr); x += used; n -= used; } */
CBRNN_API int cbrnn_feat_push(cbrnn_feat *f, float *frame, const float *in,
                              int n, int *consumed);

/* Forgets all buffered audio and delta history (stream restart). RT-safe. */
CBRNN_API void cbrnn_feat_reset(cbrnn_feat *f);

/* Numerically stable per-feature mean/variance accumulation (Welford in
 * double precision, mergeable with Chan's formula). */
typedef struct cbrnn_stats {
    int dim;
    double count;
    double *mean; /* [dim] */
    double *m2;   /* [dim] sum of squared deviations */
} cbrnn_stats;

CBRNN_API int cbrnn_stats_init(cbrnn_stats *s, int dim);
CBRNN_API void cbrnn_stats_free(cbrnn_stats *s);
CBRNN_API void cbrnn_stats_add(cbrnn_stats *s, const float *x); /* one frame */
CBRNN_API int cbrnn_stats_merge(cbrnn_stats *into, const cbrnn_stats *from);
/* Population std with a floor (std < floor -> floor) so that normalising
 * never divides by zero. mean, std: out, dim floats each. */
CBRNN_API int cbrnn_stats_result(const cbrnn_stats *s, float *mean, float *std,
                                 float floor);
/* Whether a corpus normaliser is degenerate: fewer than one feature in
 * CBRNN_STD_DEGENERATE_SHARE (and always when none) varies by more than
 * floor (digital silence, one steady tone), so dividing by the floor would
 * blow any real input up by 1/floor. *varying (may be NULL) gets how many
 * vary. 1 degenerate, 0 not. */
#define CBRNN_STD_DEGENERATE_SHARE 10
CBRNN_API int cbrnn_std_degenerate(const float *std, int dim, float floor, int *varying);

#ifdef __cplusplus
}
#endif
#endif
