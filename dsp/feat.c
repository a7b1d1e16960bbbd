/* feat.c: the streaming feature extractor (samples -> log-mel / MFCC
 * frames, optional causal deltas), the one feature code path for training
 * and live use. Everything is allocated and the FFTW plan made in
 * cbrnn_feat_create; cbrnn_feat_push and cbrnn_feat_reset must never
 * allocate, lock, print or make a system call: they run inside audio
 * callbacks.
 *
 * Why the output cannot depend on block sizes: a frame is a function of
 * the last `win` samples only (held in a ring buffer) and of the previous
 * base frames (deltas); the same FFTW plan on the same aligned buffers
 * runs for every frame, whatever the sizes of the pushes that filled it.
 * The same locality means a NaN or Inf sample poisons only the frames whose
 * window (and delta history, 4 frames) contains it; the state then heals
 * by itself, with no reset needed.
 *
 * FFTW's planner (plan creation and destruction) is not thread-safe, and a
 * plugin host may instantiate several engines at once (two LV2 instances
 * loading models in their worker threads): every plan is made and
 * destroyed under one process-wide mutex (plan_mu). Executing a plan on
 * our own buffers is thread-safe and takes no lock. */
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_dsp.h"
#include "dsp_internal.h"

static pthread_mutex_t plan_mu = PTHREAD_MUTEX_INITIALIZER;

/* Frames of history the causal delta needs: x_t .. x_{t-4} (N = 2). */
#define DELTA_HIST 5

struct cbrnn_feat {
    int win, hop, nfft, n_mels, n_mfcc, base_dim, dim, deltas;
    /* ring: 2 * win samples, each sample stored twice (at pos and
     * pos + win) so the last win samples are always contiguous at
     * ring + pos, oldest first; pos is the next write index. */
    float *ring;
    int pos;
    long need;          /* samples still missing for the next frame */
    /* The transform runs in double: see the note at compute_frame. */
    double *window;     /* [win] periodic Hann */
    double *fft_in;     /* [nfft], fftw_malloc'ed (SIMD alignment) */
    fftw_complex *fft_out; /* [nfft / 2 + 1] */
    fftw_plan plan;
    int n_bins;         /* power bins any mel band touches: [0, n_bins) */
    double *power;      /* [n_bins] */
    /* Sparse mel bank: band j weighs bins [mel_lo[j], mel_lo[j] + mel_len[j])
     * by mel_w[mel_off[j] ...]. Kept in double: the weights are what
     * torchaudio computes in float64, and summing in double keeps the
     * quiet bands (where log(x + 1e-6) is most sensitive) accurate. */
    int *mel_lo, *mel_len, *mel_off;
    double *mel_w;
    double *logmel;     /* [n_mels] */
    double level;       /* factor on every mel energy (ref_rate); 1: none */
    double *dct;        /* [n_mfcc][n_mels], NULL without MFCC */
    float *hist;        /* [DELTA_HIST][base_dim] ring of base frames */
    int hist_pos;       /* slot of the newest base frame */
    long frames;        /* frames emitted since create/reset */
};

void cbrnn_feat_config_default(cbrnn_feat_config *c, double sample_rate)
{
    if (!c)
        return;
    c->sample_rate = sample_rate;
    c->win_ms = 25.0; /* DESIGN.md: 25 ms window, 10 ms hop (speech standard) */
    c->hop_ms = 10.0;
    c->n_mels = 40;
    c->f_min = 20.0;
    c->f_max = 0.0; /* min(8000, rate / 2) */
    c->n_mfcc = 0;
    c->deltas = 0;
    c->ref_rate = 0.0; /* no level change */
}

/* round(ms * rate / 1000) in samples, or 0 when out of range. */
static int ms_to_samples(double ms, double rate)
{
    double x = ms * rate / 1000.0;
    if (!(x >= 0.5) || x > (double)DSP_MAX_FFT)
        return 0;
    return (int)round(x);
}

int cbrnn_feat_config_win(const cbrnn_feat_config *c)
{
    return c ? ms_to_samples(c->win_ms, c->sample_rate) : 0;
}

int cbrnn_feat_config_hop(const cbrnn_feat_config *c)
{
    return c ? ms_to_samples(c->hop_ms, c->sample_rate) : 0;
}

int cbrnn_feat_config_dim(const cbrnn_feat_config *c)
{
    if (!c)
        return 0;
    int base = c->n_mfcc > 0 ? c->n_mfcc : c->n_mels;
    return c->deltas ? 2 * base : base;
}

static double effective_fmax(const cbrnn_feat_config *c)
{
    if (c->f_max != 0.0)
        return c->f_max;
    /* DESIGN.md: 8 kHz covers speech; never above Nyquist. Worked out at
     * the rate the model was trained at (ref_rate) when there is one, so a
     * model trained at 8 kHz keeps its 20..4000 Hz bands at 48 kHz (at the
     * playback rate it would get 20..8000 Hz: other bands, 4.7 times its
     * loss; issue 13). Below that rate's band edge only the Nyquist limit
     * of the playback rate can cut it. */
    double r = c->ref_rate != 0.0 ? c->ref_rate : c->sample_rate;
    double f = r / 2.0 < 8000.0 ? r / 2.0 : 8000.0;
    return f < c->sample_rate / 2.0 ? f : c->sample_rate / 2.0;
}

int cbrnn_feat_config_check(const cbrnn_feat_config *c)
{
    if (!c)
        return CBRNN_ERR_ARG;
    if (!(c->sample_rate >= CBRNN_RATE_MIN && c->sample_rate <= CBRNN_RATE_MAX))
        return CBRNN_ERR_RATE;
    if (c->ref_rate != 0.0 && !(c->ref_rate >= CBRNN_RATE_MIN && c->ref_rate <= CBRNN_RATE_MAX))
        return CBRNN_ERR_RATE;
    int win = cbrnn_feat_config_win(c), hop = cbrnn_feat_config_hop(c);
    if (win < 2 || hop < 1 || !isfinite(c->win_ms) || !isfinite(c->hop_ms))
        return CBRNN_ERR_ARG;
    if (c->ref_rate != 0.0 && ms_to_samples(c->win_ms, c->ref_rate) < 2)
        return CBRNN_ERR_ARG;
    if (c->n_mels < 1 || c->n_mels > DSP_MAX_MELS)
        return CBRNN_ERR_ARG;
    if (c->n_mfcc < 0 || c->n_mfcc > c->n_mels)
        return CBRNN_ERR_ARG;
    if (c->deltas != 0 && c->deltas != 1)
        return CBRNN_ERR_ARG;
    double fmax = effective_fmax(c);
    if (!(c->f_min >= 0.0) || !(fmax > c->f_min) || !(fmax <= c->sample_rate / 2.0))
        return CBRNN_ERR_ARG;
    return CBRNN_OK;
}

/* sum of the squared periodic Hann window of win samples, times the FFT
 * size: what a band's energy is proportional to for a given sound (the
 * power per bin grows with sum w^2 for the same signal power, and a band
 * spans nfft / rate bins of a spectrum whose density grows with rate). */
static double window_energy_nfft(int win)
{
    const double pi = 3.14159265358979323846;
    double s = 0.0;
    for (int i = 0; i < win; i++) {
        double w = 0.5 - 0.5 * cos(2.0 * pi * (double)i / (double)win);
        s += w * w;
    }
    return s * (double)dsp_next_pow2(win);
}

/* The factor on every mel energy for c->ref_rate, or 1 (none). Equal
 * window sizes give exactly 1, so ref_rate == sample_rate is a no-op. */
static double level_factor(const cbrnn_feat_config *c)
{
    if (c->ref_rate == 0.0)
        return 1.0;
    int win = cbrnn_feat_config_win(c), win_r = ms_to_samples(c->win_ms, c->ref_rate);
    if (win == win_r)
        return 1.0;
    return window_energy_nfft(win_r) / window_energy_nfft(win);
}

double cbrnn_feat_config_level_shift(const cbrnn_feat_config *c)
{
    if (cbrnn_feat_config_check(c))
        return NAN;
    return log(level_factor(c));
}

static void *zalloc(size_t n)
{
    return calloc(1, n ? n : 1);
}

/* Every buffer of the frame pipeline, the DCT matrix (MFCC) and the
 * analysis window. 0 or -1 (out of memory). */
static int alloc_pipeline(cbrnn_feat *f)
{
    int n_freqs = f->nfft / 2 + 1;
    f->ring = zalloc(2 * (size_t)f->win * sizeof *f->ring);
    f->window = zalloc((size_t)f->win * sizeof *f->window);
    f->fft_in = fftw_alloc_real((size_t)f->nfft);
    f->fft_out = fftw_alloc_complex((size_t)n_freqs);
    f->mel_lo = zalloc((size_t)f->n_mels * sizeof *f->mel_lo);
    f->mel_len = zalloc((size_t)f->n_mels * sizeof *f->mel_len);
    f->mel_off = zalloc((size_t)f->n_mels * sizeof *f->mel_off);
    f->logmel = zalloc((size_t)f->n_mels * sizeof *f->logmel);
    f->hist = zalloc((size_t)DELTA_HIST * f->base_dim * sizeof *f->hist);
    if (!f->ring || !f->window || !f->fft_in || !f->fft_out || !f->mel_lo || !f->mel_len ||
        !f->mel_off || !f->logmel || !f->hist)
        return -1;
    if (f->n_mfcc > 0) {
        f->dct = malloc((size_t)f->n_mfcc * f->n_mels * sizeof *f->dct);
        if (!f->dct)
            return -1;
        dsp_dct_ortho(f->dct, f->n_mfcc, f->n_mels);
    }
    /* torch.hann_window(win, periodic=True): 0.5 - 0.5 cos(2 pi n / win). */
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < f->win; i++)
        f->window[i] = 0.5 - 0.5 * cos(2.0 * pi * (double)i / (double)f->win);
    return 0;
}

/* The mel filter bank as sparse bands: a triangle is nonzero on one
 * contiguous run of bins; an empty band (too many mels for the FFT
 * resolution) gets length 0 and yields log(1e-6), as in torchaudio. 0 or
 * -1 (out of memory). */
static int sparse_mel_bank(cbrnn_feat *f, const cbrnn_feat_config *c)
{
    int n_freqs = f->nfft / 2 + 1;
    double f_pts[DSP_MAX_MELS + 2];
    dsp_mel_points(f_pts, f->n_mels, c->f_min, effective_fmax(c));
    /* Band j's run of nonzero weights, without the dense [n_freqs][n_mels]
     * table: at a long window and many bands that table alone would be
     * gigabytes (a model file chooses both). */
    int total = 0;
    for (int j = 0; j < f->n_mels; j++) {
        int lo = -1, hi = -1;
        for (int k = 0; k < n_freqs; k++)
            if (dsp_mel_weight(f_pts, j, dsp_bin_hz(c->sample_rate, f->nfft, k)) > 0.0) {
                if (lo < 0)
                    lo = k;
                hi = k;
            }
        f->mel_lo[j] = lo < 0 ? 0 : lo;
        f->mel_len[j] = lo < 0 ? 0 : hi - lo + 1;
        f->mel_off[j] = total;
        total += f->mel_len[j];
        if (lo >= 0 && hi + 1 > f->n_bins)
            f->n_bins = hi + 1;
    }
    f->mel_w = zalloc((size_t)total * sizeof *f->mel_w);
    f->power = zalloc((size_t)(f->n_bins > 0 ? f->n_bins : 1) * sizeof *f->power);
    if (!f->mel_w || !f->power)
        return -1;
    for (int j = 0; j < f->n_mels; j++)
        for (int i = 0; i < f->mel_len[j]; i++)
            f->mel_w[f->mel_off[j] + i] =
                dsp_mel_weight(f_pts, j, dsp_bin_hz(c->sample_rate, f->nfft, f->mel_lo[j] + i));
    return 0;
}

/* The FFT plan, made once under the planner's lock. FFTW_ESTIMATE: the
 * plan (hence every rounding) is the same on every run; MEASURE could
 * pick different algorithms from run to run. 0 or -1. */
static int plan_fft(cbrnn_feat *f)
{
    memset(f->fft_in, 0, (size_t)f->nfft * sizeof *f->fft_in);
    pthread_mutex_lock(&plan_mu);
    f->plan = fftw_plan_dft_r2c_1d(f->nfft, f->fft_in, f->fft_out, FFTW_ESTIMATE);
    pthread_mutex_unlock(&plan_mu);
    return f->plan ? 0 : -1;
}

cbrnn_feat *cbrnn_feat_create(const cbrnn_feat_config *c, int *err)
{
    int e = cbrnn_feat_config_check(c);
    if (e) {
        if (err)
            *err = e;
        return NULL;
    }
    cbrnn_feat *f = zalloc(sizeof *f);
    if (!f)
        goto nomem;
    f->win = cbrnn_feat_config_win(c);
    f->hop = cbrnn_feat_config_hop(c);
    f->nfft = dsp_next_pow2(f->win);
    f->n_mels = c->n_mels;
    f->n_mfcc = c->n_mfcc;
    f->base_dim = c->n_mfcc > 0 ? c->n_mfcc : c->n_mels;
    f->deltas = c->deltas;
    f->dim = cbrnn_feat_config_dim(c);
    f->level = level_factor(c);
    if (alloc_pipeline(f) || sparse_mel_bank(f, c) || plan_fft(f))
        goto nomem;
    /* Touch every buffer now so the audio thread takes no page faults. */
    memset(f->fft_in, 0, (size_t)f->nfft * sizeof *f->fft_in);
    memset(f->fft_out, 0, (size_t)(f->nfft / 2 + 1) * sizeof *f->fft_out);
    cbrnn_feat_reset(f);
    if (err)
        *err = CBRNN_OK;
    return f;

nomem:
    cbrnn_feat_destroy(f);
    if (err)
        *err = CBRNN_ERR_NOMEM;
    return NULL;
}

void cbrnn_feat_destroy(cbrnn_feat *f)
{
    if (!f)
        return;
    if (f->plan) {
        pthread_mutex_lock(&plan_mu);
        fftw_destroy_plan(f->plan);
        pthread_mutex_unlock(&plan_mu);
    }
    fftw_free(f->fft_in);
    fftw_free(f->fft_out);
    free(f->ring);
    free(f->window);
    free(f->power);
    free(f->mel_lo);
    free(f->mel_len);
    free(f->mel_off);
    free(f->mel_w);
    free(f->logmel);
    free(f->dct);
    free(f->hist);
    free(f);
}

int cbrnn_feat_dim(const cbrnn_feat *f) { return f ? f->dim : 0; }
int cbrnn_feat_hop(const cbrnn_feat *f) { return f ? f->hop : 0; }
int cbrnn_feat_win(const cbrnn_feat *f) { return f ? f->win : 0; }
int cbrnn_feat_nfft(const cbrnn_feat *f) { return f ? f->nfft : 0; }

void cbrnn_feat_reset(cbrnn_feat *f)
{
    if (!f)
        return;
    memset(f->ring, 0, 2 * (size_t)f->win * sizeof *f->ring);
    memset(f->hist, 0, (size_t)DELTA_HIST * f->base_dim * sizeof *f->hist);
    f->pos = 0;
    f->need = f->win;
    f->hist_pos = 0;
    f->frames = 0;
}

/* Appends m samples to the ring (only the last win of them matter). */
static void ring_write(cbrnn_feat *f, const float *x, long m)
{
    if (m > f->win) {
        x += m - f->win;
        m = f->win;
    }
    while (m > 0) {
        long seg = f->win - f->pos;
        if (seg > m)
            seg = m;
        memcpy(f->ring + f->pos, x, (size_t)seg * sizeof *x);
        memcpy(f->ring + f->pos + f->win, x, (size_t)seg * sizeof *x);
        f->pos += (int)seg;
        if (f->pos == f->win)
            f->pos = 0;
        x += seg;
        m -= seg;
    }
}

/* One frame from the last win samples into out[0 .. dim).
 *
 * Why the FFT runs in double although samples and frames are float: a
 * float32 FFT's rounding error in every bin is about 1e-7 of the whole
 * frame's amplitude, and log(x + 1e-6) magnifies absolute errors in quiet
 * bands 1e6-fold. With a loud tone or noise in some bands and others near
 * the floor (samples/noise_tones_48k.wav), fftw3f missed torchaudio's
 * float64 log-mel by up to 2.9e-3 (the DESIGN.md tolerance is 1e-3); the
 * double transform agrees to 4e-6 (the float output's own rounding) and
 * costs a few microseconds per frame (cbrnn bench --items features). */
static void compute_frame(cbrnn_feat *f, float *out)
{
    const float *src = f->ring + f->pos;
    double *in = f->fft_in;
    for (int i = 0; i < f->win; i++)
        in[i] = (double)src[i] * f->window[i];
    /* Zero padding sits after the window rather than around it as in
     * torch.stft: a circular shift changes the phase, not the power. */
    memset(in + f->win, 0, (size_t)(f->nfft - f->win) * sizeof *in);
    fftw_execute_dft_r2c(f->plan, in, f->fft_out);

    const fftw_complex *X = f->fft_out;
    for (int k = 0; k < f->n_bins; k++)
        f->power[k] = X[k][0] * X[k][0] + X[k][1] * X[k][1];

    for (int j = 0; j < f->n_mels; j++) {
        const double *p = f->power + f->mel_lo[j];
        const double *w = f->mel_w + f->mel_off[j];
        double acc = 0.0;
        for (int i = 0; i < f->mel_len[j]; i++)
            acc += w[i] * p[i];
        /* ref_rate: the level at the reference rate, applied before the
         * floor so that quiet bands land where they do there too. */
        if (f->level != 1.0)
            acc *= f->level;
        /* 1e-6: DESIGN.md's log floor (as in the torchaudio reference). */
        f->logmel[j] = log(acc + 1e-6);
    }

    float *base = out;
    if (f->n_mfcc > 0) {
        for (int k = 0; k < f->n_mfcc; k++) {
            const double *d = f->dct + (long)k * f->n_mels;
            double acc = 0.0;
            for (int n = 0; n < f->n_mels; n++)
                acc += d[n] * f->logmel[n];
            base[k] = (float)acc;
        }
    } else {
        for (int j = 0; j < f->n_mels; j++)
            base[j] = (float)f->logmel[j];
    }

    if (f->deltas) {
        int D = f->base_dim;
        if (f->frames == 0) {
            /* Frames before the first are the first (torchaudio's
             * "replicate" padding): fill the whole history with it. */
            for (int s = 0; s < DELTA_HIST; s++)
                memcpy(f->hist + (long)s * D, base, (size_t)D * sizeof *base);
            f->hist_pos = 0;
        } else {
            f->hist_pos = (f->hist_pos + 1) % DELTA_HIST;
            memcpy(f->hist + (long)f->hist_pos * D, base, (size_t)D * sizeof *base);
        }
        /* Regression (HTK Book 5.9, torchaudio compute_deltas, N = 2)
         * centred on frame t-2: sum_n n (x_{t-2+n} - x_{t-2-n}) / 10. */
        const float *x0 = f->hist + (long)f->hist_pos * D;
        const float *x1 = f->hist + (long)((f->hist_pos + 4) % DELTA_HIST) * D;
        const float *x3 = f->hist + (long)((f->hist_pos + 2) % DELTA_HIST) * D;
        const float *x4 = f->hist + (long)((f->hist_pos + 1) % DELTA_HIST) * D;
        float *d = out + D;
        for (int i = 0; i < D; i++)
            d[i] = (float)((2.0 * ((double)x0[i] - (double)x4[i]) +
                            ((double)x1[i] - (double)x3[i])) / 10.0);
    }
    f->frames++;
}

int cbrnn_feat_push(cbrnn_feat *f, float *frame, const float *in, int n, int *consumed)
{
    if (!f || !frame || !consumed || n < 0 || (n > 0 && !in))
        return CBRNN_ERR_ARG;
    *consumed = 0;
    if (n == 0)
        return 0;
    long m = n < f->need ? n : f->need;
    ring_write(f, in, m);
    *consumed = (int)m;
    f->need -= m;
    if (f->need > 0)
        return 0;
    compute_frame(f, frame);
    f->need = f->hop;
    return 1;
}
