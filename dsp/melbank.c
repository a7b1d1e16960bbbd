/* melbank.c: the tables of the feature front end (HTK mel filter bank,
 * orthonormal DCT-II), built in double precision at creation time to the
 * same construction torchaudio uses, so that parity with torchaudio is a
 * matter of float rounding only. Never called on the real-time path. */
#include <math.h>

#include "dsp_internal.h"

int dsp_next_pow2(int n)
{
    int p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* 2595 and 700: the HTK mel constants (HTK Book 5.4; torchaudio htk). */
double dsp_hz_to_mel(double hz)
{
    return 2595.0 * log10(1.0 + hz / 700.0);
}

double dsp_mel_to_hz(double mel)
{
    return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
}

double dsp_linspace(double start, double end, int steps, int i)
{
    if (steps == 1)
        return start;
    /* aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp (linspace). */
    double step = (end - start) / (double)(steps - 1);
    int halfway = steps / 2;
    if (i < halfway)
        return start + step * (double)i;
    return end - step * (double)(steps - i - 1);
}

void dsp_mel_points(double *f_pts, int n_mels, double f_min, double f_max)
{
    double m_min = dsp_hz_to_mel(f_min), m_max = dsp_hz_to_mel(f_max);
    for (int j = 0; j < n_mels + 2; j++)
        f_pts[j] = dsp_mel_to_hz(dsp_linspace(m_min, m_max, n_mels + 2, j));
}

double dsp_bin_hz(double sample_rate, int n_fft, int k)
{
    /* torchaudio grids the bins over [0, sample_rate // 2] (integer
     * division for an integer rate), not over k * rate / n_fft; for even
     * rates the two agree. Follow torchaudio for parity. */
    return dsp_linspace(0.0, floor(sample_rate / 2.0), n_fft / 2 + 1, k);
}

double dsp_mel_weight(const double *f_pts, int j, double f)
{
    double down = -(f_pts[j] - f) / (f_pts[j + 1] - f_pts[j]);
    double up = (f_pts[j + 2] - f) / (f_pts[j + 2] - f_pts[j + 1]);
    double w = down < up ? down : up;
    return w > 0.0 ? w : 0.0;
}

void dsp_mel_bank(double *fb, double sample_rate, int n_fft, int n_mels, double f_min,
                  double f_max)
{
    double f_pts[DSP_MAX_MELS + 2];
    dsp_mel_points(f_pts, n_mels, f_min, f_max);
    for (int k = 0; k < n_fft / 2 + 1; k++) {
        double f = dsp_bin_hz(sample_rate, n_fft, k);
        for (int j = 0; j < n_mels; j++)
            fb[(long)k * n_mels + j] = dsp_mel_weight(f_pts, j, f);
    }
}

void dsp_dct_ortho(double *dct, int n_mfcc, int n_mels)
{
    const double pi = 3.14159265358979323846;
    double scale = sqrt(2.0 / (double)n_mels);
    for (int k = 0; k < n_mfcc; k++)
        for (int n = 0; n < n_mels; n++) {
            double v = cos(pi / (double)n_mels * ((double)n + 0.5) * (double)k) * scale;
            if (k == 0)
                v *= 1.0 / sqrt(2.0);
            dct[k * n_mels + n] = v;
        }
}
