/* dsp_internal.h: pieces of the feature front end shared between dsp/
 * sources and the dsp unit tests (not part of the public API). These build
 * tables at creation time; none of them is called on the real-time path. */
#ifndef CBRNN_DSP_INTERNAL_H
#define CBRNN_DSP_INTERNAL_H

/* Largest window / FFT the extractor accepts (2^20 samples: 5.4 s at
 * 192 kHz, far beyond any sensible analysis window). */
#define DSP_MAX_FFT (1 << 20)
/* Most mel bands a configuration may ask for. */
#define DSP_MAX_MELS 1024

/* Smallest power of two >= n (n >= 1, n <= DSP_MAX_FFT). */
int dsp_next_pow2(int n);

/* HTK mel scale (Young et al., The HTK Book, sec. 5.4; torchaudio
 * _hz_to_mel/_mel_to_hz with mel_scale="htk"). */
double dsp_hz_to_mel(double hz);
double dsp_mel_to_hz(double mel);

/* torch.linspace(start, end, steps)[i] with torch's CPU kernel formula
 * (first half counted up from start, second half down from end), so the
 * grid points are the same doubles torch computes in float64. */
double dsp_linspace(double start, double end, int steps, int i);

/* The mel filter bank exactly as torchaudio.functional.melscale_fbanks
 * (n_freqs = n_fft/2 + 1, f_min, f_max, n_mels, sample_rate, norm=None,
 * mel_scale="htk") builds it, in double: triangles over the linear grid
 * linspace(0, floor(sample_rate/2), n_freqs) (torchaudio's `sample_rate // 2`),
 * corners at n_mels + 2 points equally spaced in mel. fb: out,
 * [n_freqs][n_mels] row-major (fb[k * n_mels + j] weighs bin k in band j). */
void dsp_mel_bank(double *fb, double sample_rate, int n_fft, int n_mels, double f_min,
                  double f_max);

/* The pieces of dsp_mel_bank, for building the bank one band at a time
 * (feat.c keeps only each band's nonzero run): f_pts, out [n_mels + 2],
 * the triangles' corners in Hz; the frequency of bin k of the grid; the
 * weight of band j at frequency f. */
void dsp_mel_points(double *f_pts, int n_mels, double f_min, double f_max);
double dsp_bin_hz(double sample_rate, int n_fft, int k);
double dsp_mel_weight(const double *f_pts, int j, double f);

/* Orthonormal DCT-II rows as torchaudio.functional.create_dct(n_mfcc,
 * n_mels, norm="ortho") (transposed): dct[k * n_mels + n] =
 * s_k sqrt(2 / n_mels) cos(pi / n_mels * (n + 0.5) * k), s_0 = 1/sqrt(2),
 * else 1. */
void dsp_dct_ortho(double *dct, int n_mfcc, int n_mels);

#endif
