/* perturb.c: perturbed auditory feedback (cbrnn_perturb.h): a pitch
 * shifter (Rubber Band, R3 engine, real-time mode), a delay line and a
 * gain, each parameter ramped linearly.
 *
 * It must never allocate, lock or wait after create: the pitch shifter
 * runs without threads, its pitch scales are rounded to k / 1000 and
 * create drives it once through both ends of the pitch range (see
 * cbrnn_perturb.h), and every buffer here is allocated and touched in
 * create. Block independence: the shifter is fed chunks of a fixed size
 * counted from the stream start, and its output is read through a queue
 * primed with `lat` zeros, so output sample t is the shifter's output for
 * input t - lat whatever the block sizes; when the shifter is late (it
 * is, briefly, after large sudden pitch jumps) the sample is played as 0
 * and the one that arrives late for it is dropped, so the alignment never
 * drifts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <rubberband/rubberband-c.h>

#include "cbrnn/cbrnn_perturb.h"

/* Pitch-shifter chunk: 5 ms (measured: with 10 ms chunks the latency
 * needed was one chunk longer and the CPU cost the same). */
#define CHUNK_MS 5.0
/* The output queue's latency in start delays of the shifter, plus one
 * chunk. Measured with Rubber Band 3.1.2 (R3, short window): its output
 * lagged its input by up to 3.1 start delays (1792 samples at 16 kHz, 4013
 * at 48 kHz, 3931 at 44.1 kHz, start delays 576, 1280, 1280) with the
 * pitch ramped anywhere in +-12 semitones every 2 s over 2 minutes of tone
 * and noise; with 2.5 start delays the shifter was late for most samples.
 * 3.25 leaves margin; tests/dsp/test_perturb.c holds it to no late sample
 * under sudden switches of +-3 semitones. */
#define LAT_START_DELAYS 3.25
/* Rounding of pitch scales (see cbrnn_perturb.h): 1/1000 is at most 0.87
 * cents at the top of the range. */
#define SCALE_STEPS 1000.0

struct ramp {
    double cur, tgt, step; /* step per sample */
    long left;             /* samples until cur reaches tgt */
};

struct cbrnn_perturb {
    double rate;
    int with_pitch;
    RubberBandState rb;
    int chunk, cin_n, start_delay, lat;
    float *cin;            /* the chunk being gathered */
    float *scratch;        /* the shifter's output, one retrieve at a time */
    int scratch_n;
    float *q;              /* output queue (ring) */
    int qcap, qhead, qfill;
    long debt;             /* shifter samples still to drop */
    double scale;          /* the shifter's current pitch scale */
    long long underruns;
    float *dl;             /* delay line */
    int dlcap, dlpos, max_delay;
    struct ramp delay, gain, pitch; /* samples, linear gain, semitones */
};

static double pitch_scale(double semitones)
{
    return round(pow(2.0, semitones / 12.0) * SCALE_STEPS) / SCALE_STEPS;
}

static float *zalloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float)); /* zeroed: touched, no later page faults */
    return p;
}

/* Feeds the shifter n samples of silence at each pitch scale, so that its
 * resampler has met the longest buffer and the most phases it will need. */
static void warm_up(cbrnn_perturb *p)
{
    const double scales[] = {pitch_scale(-CBRNN_PERTURB_PITCH_MAX),
                             pitch_scale(CBRNN_PERTURB_PITCH_MAX),
                             pitch_scale(-CBRNN_PERTURB_PITCH_MAX), 1.0};
    memset(p->cin, 0, (size_t)p->chunk * sizeof(float));
    for (size_t s = 0; s < sizeof scales / sizeof *scales; s++) {
        rubberband_set_pitch_scale(p->rb, scales[s]);
        for (int k = 0; k < 40; k++) {
            const float *ip = p->cin;
            rubberband_process(p->rb, &ip, (unsigned)p->chunk, 0);
            int av;
            while ((av = rubberband_available(p->rb)) > 0) {
                float *op = p->scratch;
                rubberband_retrieve(p->rb, &op, (unsigned)(av < p->scratch_n ? av : p->scratch_n));
            }
        }
    }
    rubberband_reset(p->rb);
    p->scale = 1.0;
}

void cbrnn_perturb_reset(cbrnn_perturb *p)
{
    if (!p)
        return;
    if (p->rb) {
        rubberband_reset(p->rb);
        memset(p->q, 0, (size_t)p->qcap * sizeof(float));
        p->qhead = 0;
        p->qfill = p->lat;
        p->debt = p->start_delay;
        p->cin_n = 0;
    }
    memset(p->dl, 0, (size_t)p->dlcap * sizeof(float));
    p->dlpos = 0;
    struct ramp *r[3] = {&p->delay, &p->gain, &p->pitch};
    for (int k = 0; k < 3; k++) {
        r[k]->cur = r[k]->tgt;
        r[k]->left = 0;
    }
}

static int make_shifter(cbrnn_perturb *p)
{
    RubberBandOptions o = RubberBandOptionProcessRealTime | RubberBandOptionThreadingNever |
                          RubberBandOptionEngineFiner | RubberBandOptionWindowShort |
                          RubberBandOptionPitchHighConsistency;
    p->rb = rubberband_new((unsigned)p->rate, 1, o, 1.0, 1.0);
    if (!p->rb)
        return -1;
    p->chunk = (int)lround(p->rate * CHUNK_MS / 1000.0);
    rubberband_set_max_process_size(p->rb, (unsigned)p->chunk);
    p->scratch_n = 8192;
    if (!(p->cin = zalloc((size_t)p->chunk)) || !(p->scratch = zalloc((size_t)p->scratch_n)))
        return -1;
    warm_up(p);
    p->start_delay = (int)rubberband_get_start_delay(p->rb);
    p->lat = (int)ceil(LAT_START_DELAYS * p->start_delay) + p->chunk;
    /* room for the shifter running far ahead after pitch jumps */
    p->qcap = 2 * p->lat + 4 * p->scratch_n;
    return (p->q = zalloc((size_t)p->qcap)) ? 0 : -1;
}

cbrnn_perturb *cbrnn_perturb_create(double rate, double max_delay_ms, int with_pitch, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = CBRNN_ERR_ARG;
    if (!isfinite(max_delay_ms) || max_delay_ms <= 0 || max_delay_ms > CBRNN_PERTURB_DELAY_MAX_MS)
        return NULL;
    *err = CBRNN_ERR_RATE;
    if (!isfinite(rate) || rate < 8000 || rate > 192000)
        return NULL;
    *err = CBRNN_ERR_NOMEM;
    cbrnn_perturb *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->rate = rate;
    p->with_pitch = with_pitch != 0;
    p->max_delay = (int)ceil(max_delay_ms * rate / 1000.0);
    p->dlcap = p->max_delay + 2;
    p->gain.cur = p->gain.tgt = 1.0;
    if (!(p->dl = zalloc((size_t)p->dlcap)) || (p->with_pitch && make_shifter(p))) {
        cbrnn_perturb_destroy(p);
        return NULL;
    }
    cbrnn_perturb_reset(p);
    *err = 0;
    return p;
}

void cbrnn_perturb_destroy(cbrnn_perturb *p)
{
    if (!p)
        return;
    if (p->rb)
        rubberband_delete(p->rb);
    free(p->cin);
    free(p->scratch);
    free(p->q);
    free(p->dl);
    free(p);
}

int cbrnn_perturb_check(int param, float value, int ramp_ms)
{
    if (!isfinite(value) || ramp_ms < 0 || ramp_ms > CBRNN_PERTURB_RAMP_MAX_MS)
        return CBRNN_ERR_ARG;
    switch (param) {
    case CBRNN_PERTURB_DELAY:
        return value >= 0 && value <= CBRNN_PERTURB_DELAY_MAX_MS ? 0 : CBRNN_ERR_ARG;
    case CBRNN_PERTURB_GAIN:
        return value >= CBRNN_PERTURB_GAIN_DB_MIN && value <= CBRNN_PERTURB_GAIN_DB_MAX
                   ? 0
                   : CBRNN_ERR_ARG;
    case CBRNN_PERTURB_PITCH:
        return fabsf(value) <= CBRNN_PERTURB_PITCH_MAX ? 0 : CBRNN_ERR_ARG;
    default: return CBRNN_ERR_ARG;
    }
}

int cbrnn_perturb_set(cbrnn_perturb *p, int param, float value, int ramp_ms)
{
    if (!p || cbrnn_perturb_check(param, value, ramp_ms))
        return CBRNN_ERR_ARG;
    double tgt = value;
    struct ramp *r = &p->pitch;
    if (param == CBRNN_PERTURB_PITCH && !p->with_pitch)
        return CBRNN_ERR_UNSUPPORTED;
    if (param == CBRNN_PERTURB_DELAY) {
        tgt = round((double)value * p->rate / 1000.0);
        if (tgt > p->max_delay)
            return CBRNN_ERR_ARG;
        r = &p->delay;
    } else if (param == CBRNN_PERTURB_GAIN) {
        tgt = (float)pow(10.0, (double)value / 20.0);
        r = &p->gain;
    }
    r->tgt = tgt;
    r->left = lround((double)ramp_ms * p->rate / 1000.0);
    if (r->left == 0)
        r->cur = tgt;
    else
        r->step = (tgt - r->cur) / (double)r->left;
    return 0;
}

/* cur moves k samples along its ramp. */
static void advance(struct ramp *r, long k)
{
    if (r->left <= 0)
        return;
    if (k >= r->left) {
        r->cur = r->tgt;
        r->left = 0;
    } else {
        r->cur += r->step * (double)k;
        r->left -= k;
    }
}

/* The shifter's output into the queue, after the samples owed (the start
 * delay, and one for each sample played as 0 while the shifter was late). */
static void take_output(cbrnn_perturb *p)
{
    int av;
    while ((av = rubberband_available(p->rb)) > 0) {
        float *op = p->scratch;
        int got = (int)rubberband_retrieve(p->rb, &op,
                                           (unsigned)(av < p->scratch_n ? av : p->scratch_n));
        if (got <= 0)
            break;
        for (int i = 0; i < got; i++) {
            if (p->debt > 0) {
                p->debt--;
            } else if (p->qfill < p->qcap) {
                p->q[(p->qhead + p->qfill) % p->qcap] = op[i];
                p->qfill++;
            }
        }
    }
}

/* A full chunk through the shifter, at the pitch in force now. */
static void run_chunk(cbrnn_perturb *p)
{
    advance(&p->pitch, p->chunk);
    double s = pitch_scale(p->pitch.cur);
    if (s != p->scale) {
        rubberband_set_pitch_scale(p->rb, s);
        p->scale = s;
    }
    const float *ip = p->cin;
    rubberband_process(p->rb, &ip, (unsigned)p->chunk, 0);
    take_output(p);
}

/* One sample through the shifter's queue: the output for the input lat
 * samples ago (0 if the shifter is late). */
static float shift_one(cbrnn_perturb *p, float x)
{
    float y = 0.0f;
    if (p->qfill > 0) {
        y = p->q[p->qhead];
        p->qhead = (p->qhead + 1) % p->qcap;
        p->qfill--;
    } else {
        p->underruns++;
        p->debt++;
    }
    p->cin[p->cin_n++] = x;
    if (p->cin_n == p->chunk) {
        run_chunk(p);
        p->cin_n = 0;
    }
    return y;
}

int cbrnn_perturb_process(cbrnn_perturb *p, float *out, const float *in, int n)
{
    if (!p || n < 0 || (n > 0 && (!out || !in)))
        return CBRNN_ERR_ARG;
    for (int i = 0; i < n; i++) {
        float x = in[i];
        float y = p->with_pitch ? shift_one(p, x) : x;
        p->dl[p->dlpos] = y;
        advance(&p->delay, 1);
        advance(&p->gain, 1);
        double d = p->delay.cur;
        int di = (int)d;
        double frac = d - di;
        int at = p->dlpos - di;
        if (at < 0)
            at += p->dlcap;
        float z = p->dl[at];
        if (frac > 0) {
            int at2 = at > 0 ? at - 1 : p->dlcap - 1;
            z = (float)((1.0 - frac) * z + frac * p->dl[at2]);
        }
        p->dlpos = p->dlpos + 1 == p->dlcap ? 0 : p->dlpos + 1;
        out[i] = (float)p->gain.cur * z;
    }
    return 0;
}

int cbrnn_perturb_latency(const cbrnn_perturb *p) { return p && p->with_pitch ? p->lat : 0; }
int cbrnn_perturb_chunk(const cbrnn_perturb *p) { return p && p->with_pitch ? p->chunk : 0; }
long long cbrnn_perturb_underruns(const cbrnn_perturb *p) { return p ? p->underruns : 0; }

float cbrnn_perturb_get(const cbrnn_perturb *p, int param)
{
    if (!p)
        return 0.0f;
    switch (param) {
    case CBRNN_PERTURB_DELAY: return (float)(p->delay.cur * 1000.0 / p->rate);
    case CBRNN_PERTURB_GAIN: return (float)(20.0 * log10(p->gain.cur));
    case CBRNN_PERTURB_PITCH: return (float)p->pitch.cur;
    default: return 0.0f;
    }
}
