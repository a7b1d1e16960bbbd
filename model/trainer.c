/* trainer.c: truncated-BPTT training over a corpus of sequences (one per
 * audio file) and whole-sequence evaluation. A step draws B windows of
 * seq_len frames, runs forward, loss, backward, clipping and the optimiser.
 * Deterministic: every random choice comes from the trainer's own RNG
 * seeded from the configuration. Not for the audio thread; never prints. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_model.h"
#include "model_internal.h"

struct cbrnn_trainer {
    cbrnn_model *m;
    cbrnn_train_config cfg;
    cbrnn_ws *ws;
    cbrnn_optim *opt;
    cbrnn_rng rng;
    int B, L;                /* batch rows, window length */
    float *x, *tgt, *y, *dy; /* [B,L,F], [B,L,O] x3 */
    float *base, *scale;     /* [B,L,O] each: the residual output's base and s */
    int *lab;                /* [B*L] */
    int *len;                /* [B] valid frames of each row's window */
    float *grad;             /* [n_params] */
    float *h0, *h_last;      /* [B,N] */
    /* carry_state: where each stream is, and whether it has begun. */
    int *s_seq, *s_pos, started;
};

cbrnn_optim *cbrnn_trainer_optim(cbrnn_trainer *t)
{
    return t ? t->opt : NULL;
}

void cbrnn_trainer_destroy(cbrnn_trainer *t)
{
    if (!t)
        return;
    cbrnn_ws_destroy(t->ws);
    cbrnn_optim_destroy(t->opt);
    free(t->x);
    free(t->tgt);
    free(t->y);
    free(t->dy);
    free(t->base);
    free(t->scale);
    free(t->lab);
    free(t->len);
    free(t->grad);
    free(t->h0);
    free(t->h_last);
    free(t->s_seq);
    free(t->s_pos);
    free(t);
}

cbrnn_trainer *cbrnn_trainer_create(cbrnn_model *m, const cbrnn_train_config *c, int *err)
{
    int e = CBRNN_ERR_ARG;
    if (!m || !c || c->batch < 1 || c->seq_len < 1 || c->batch > 65536 || c->seq_len > 1000000 ||
        (c->windows != CBRNN_WINDOWS_POSITIONS && c->windows != CBRNN_WINDOWS_FRAMES))
        goto fail_early;
    cbrnn_trainer *t = calloc(1, sizeof *t);
    e = CBRNN_ERR_NOMEM;
    if (!t)
        goto fail_early;
    t->m = m;
    t->cfg = *c;
    t->B = c->batch;
    t->L = c->seq_len;
    cbrnn_rng_seed(&t->rng, c->seed);
    size_t BL = (size_t)t->B * t->L, F = m->cfg.n_in, O = m->cfg.n_out, N = m->cfg.n_hidden;
    t->ws = cbrnn_ws_create(m, t->B, t->L, &e);
    if (!t->ws)
        goto fail;
    t->opt = cbrnn_optim_create(m, &c->opt, &e);
    if (!t->opt)
        goto fail;
    e = CBRNN_ERR_NOMEM;
    t->x = cbrnn_alloc_floats(BL * F);
    t->tgt = cbrnn_alloc_floats(BL * O);
    t->y = cbrnn_alloc_floats(BL * O);
    t->dy = cbrnn_alloc_floats(BL * O);
    t->base = cbrnn_alloc_floats(BL * O);
    t->scale = cbrnn_alloc_floats(BL * O);
    t->lab = calloc(BL, sizeof(int));
    t->len = calloc((size_t)t->B, sizeof(int));
    t->grad = cbrnn_alloc_floats(m->n_params);
    t->h0 = cbrnn_alloc_floats((size_t)t->B * N);
    t->h_last = cbrnn_alloc_floats((size_t)t->B * N);
    t->s_seq = calloc((size_t)t->B, sizeof(int));
    t->s_pos = calloc((size_t)t->B, sizeof(int));
    if (!t->x || !t->tgt || !t->y || !t->dy || !t->lab || !t->len || !t->grad || !t->h0 ||
        !t->h_last || !t->s_seq || !t->s_pos)
        goto fail;
    if (err)
        *err = 0;
    return t;
fail:
    cbrnn_trainer_destroy(t);
fail_early:
    if (err)
        *err = e;
    return NULL;
}

/* 0: MSE corpus, 1: CE corpus, <0: unusable. */
static int corpus_kind(const cbrnn_seq *seqs, int n, const cbrnn_model *m)
{
    int kind = -1, frames = 0;
    for (int i = 0; i < n; i++) {
        const cbrnn_seq *s = &seqs[i];
        if (s->T < 0 || (s->T > 0 && !s->x) || (!!s->y == !!s->labels))
            return CBRNN_ERR_ARG;
        int k = s->labels ? 1 : 0;
        if (kind >= 0 && k != kind)
            return CBRNN_ERR_ARG;
        kind = k;
        frames += s->T > 0;
        for (int r = 0; k && r < s->T; r++)
            if (s->labels[r] >= m->cfg.n_out)
                return CBRNN_ERR_SHAPE;
    }
    return frames ? kind : CBRNN_ERR_ARG;
}

/* Copies rows [pos, pos+n) of src (rows ld apart, the first w floats of
 * each) into dst ([L, w]), padding the rest with pad. */
static void copy_rows(float *dst, const float *src, int ld, int w, int pos, int n, int L, float pad)
{
    for (int r = 0; r < n; r++)
        memcpy(dst + (size_t)r * w, src + (size_t)(pos + r) * ld, (size_t)w * sizeof(float));
    for (size_t i = (size_t)n * w; i < (size_t)L * w; i++)
        dst[i] = pad;
}

/* Copies frames [pos, pos+n) of s into batch row b (padding the rest). */
static void load_row(cbrnn_trainer *t, int b, const cbrnn_seq *s, int pos, int n, int L)
{
    int F = t->m->cfg.n_in, O = t->m->cfg.n_out;
    size_t xo = (size_t)b * L * F, yo = (size_t)b * L * O;
    copy_rows(t->x + xo, s->x, F, F, pos, n, L, 0.0f);
    if (s->y)
        copy_rows(t->tgt + yo, s->y, s->y_stride ? s->y_stride : O, O, pos, n, L, 0.0f);
    if (t->m->cfg.residual) {
        copy_rows(t->base + yo, s->base ? s->base : s->x, F, O, pos, n, L, 0.0f);
        if (s->scale)
            copy_rows(t->scale + yo, s->scale, F, O, pos, n, L, 1.0f);
        else
            for (size_t i = 0; i < (size_t)L * O; i++)
                t->scale[yo + i] = 1.0f;
    }
    int *lab = t->lab + (size_t)b * L;
    for (int r = 0; r < L; r++)
        lab[r] = s->labels && r < n ? s->labels[pos + r] : -1;
    t->len[b] = n;
}

/* A sequence's weight in the random draw: its number of window positions
 * (at least 1), or its number of frames (CBRNN_WINDOWS_FRAMES). */
static double draw_weight(const cbrnn_trainer *t, const cbrnn_seq *s, int L)
{
    if (t->cfg.windows == CBRNN_WINDOWS_FRAMES)
        return (double)s->T;
    return s->T >= L ? (double)(s->T - L + 1) : 1.0;
}

/* Random windows (cbrnn_train_config.windows says how likely each
 * sequence is), starting from h = 0. */
static void draw_random(cbrnn_trainer *t, const cbrnn_seq *seqs, int n, int L)
{
    double total = 0.0;
    for (int i = 0; i < n; i++)
        if (seqs[i].T > 0)
            total += draw_weight(t, &seqs[i], L);
    for (int b = 0; b < t->B; b++) {
        double u = cbrnn_rng_uniform(&t->rng) * total;
        int i = 0, last = 0;
        for (; i < n; i++) {
            if (seqs[i].T <= 0)
                continue;
            last = i;
            double w = draw_weight(t, &seqs[i], L);
            if (u < w)
                break;
            u -= w;
        }
        if (i == n)
            i = last; /* rounding at the very top of the range */
        const cbrnn_seq *s = &seqs[i];
        int pos = 0, len = s->T < L ? s->T : L;
        if (s->T > L)
            pos = (int)(cbrnn_rng_u64(&t->rng) % (uint64_t)(s->T - L + 1));
        load_row(t, b, s, pos, len, L);
    }
    memset(t->h0, 0, (size_t)t->B * t->m->cfg.n_hidden * sizeof(float));
}

/* Carried state: stream b walks through the concatenated corpus from its
 * own starting point (b/B of the way through), one window per step,
 * carrying h; a new file starts from h = 0, and the corpus wraps. */
static void draw_carry(cbrnn_trainer *t, const cbrnn_seq *seqs, int n, int L)
{
    size_t N = (size_t)t->m->cfg.n_hidden;
    if (!t->started) {
        double total = 0.0;
        for (int i = 0; i < n; i++)
            total += seqs[i].T > 0 ? seqs[i].T : 0;
        for (int b = 0; b < t->B; b++) {
            double target = total * b / t->B;
            int i = 0;
            while (i < n - 1 && (seqs[i].T <= 0 || target >= seqs[i].T)) {
                target -= seqs[i].T > 0 ? seqs[i].T : 0;
                i++;
            }
            while (seqs[i].T <= 0)
                i = (i + 1) % n;
            t->s_seq[b] = i;
            t->s_pos[b] = (int)target < seqs[i].T ? (int)target : 0;
            memset(t->h0 + b * N, 0, N * sizeof(float));
        }
        t->started = 1;
    } else {
        for (int b = 0; b < t->B; b++) {
            const cbrnn_seq *s = &seqs[t->s_seq[b]];
            if (t->s_pos[b] >= s->T) {
                /* File boundary: next file, state reset. */
                int i = t->s_seq[b];
                do
                    i = (i + 1) % n;
                while (seqs[i].T <= 0);
                t->s_seq[b] = i;
                t->s_pos[b] = 0;
                memset(t->h0 + b * N, 0, N * sizeof(float));
            } else {
                memcpy(t->h0 + b * N, t->h_last + b * N, N * sizeof(float));
            }
        }
    }
    for (int b = 0; b < t->B; b++) {
        const cbrnn_seq *s = &seqs[t->s_seq[b]];
        int pos = t->s_pos[b], len = s->T - pos < L ? s->T - pos : L;
        load_row(t, b, s, pos, len, L);
        t->s_pos[b] = pos + len;
    }
}

/* Mean squared error over the valid frames only; dy is zero on padding. */
static float masked_mse(cbrnn_trainer *t, int L)
{
    int O = t->m->cfg.n_out;
    long valid = 0;
    for (int b = 0; b < t->B; b++)
        valid += (long)t->len[b] * O;
    double sum = 0.0;
    for (int b = 0; b < t->B; b++) {
        size_t off = (size_t)b * L * O;
        int n = t->len[b];
        if (n > 0) {
            float lb = cbrnn_loss_mse(t->dy + off, t->y + off, t->tgt + off, n, O);
            /* Re-weight the row's mean into the batch mean. */
            float w = (float)((double)n * O / (double)valid);
            for (size_t i = 0; i < (size_t)n * O; i++)
                t->dy[off + i] *= w;
            sum += (double)lb * n * O;
        }
        memset(t->dy + off + (size_t)n * O, 0, (size_t)(L - n) * O * sizeof(float));
    }
    return (float)(sum / (double)valid);
}

int cbrnn_trainer_step(cbrnn_trainer *t, const cbrnn_seq *seqs, int n_seqs, float *loss)
{
    if (!t || !seqs || n_seqs < 1)
        return CBRNN_ERR_ARG;
    int kind = corpus_kind(seqs, n_seqs, t->m);
    if (kind < 0)
        return kind;
    /* Windows no longer than the longest sequence (no all-padding steps). */
    int L = t->L, longest = 0;
    for (int i = 0; i < n_seqs; i++)
        longest = seqs[i].T > longest ? seqs[i].T : longest;
    if (longest < L)
        L = longest;
    if (t->cfg.carry_state)
        draw_carry(t, seqs, n_seqs, L);
    else
        draw_random(t, seqs, n_seqs, L);
    cbrnn_model *m = t->m;
    int B = t->B, O = m->cfg.n_out;
    int e = cbrnn_forward(t->ws, t->y, t->h_last, m, t->x, t->h0, B, L);
    if (e)
        return e;
    cbrnn_model_output(m, t->y, t->base, t->scale, O, (long)B * L);
    float l = kind ? cbrnn_loss_xent(t->dy, NULL, t->y, t->lab, B * L, O) : masked_mse(t, L);
    cbrnn_model_output_backward(m, t->dy, t->scale, O, (long)B * L);
    if (loss)
        *loss = l;
    if (!isfinite(l))
        return CBRNN_ERR_NONFINITE;
    memset(t->grad, 0, m->n_params * sizeof(float));
    e = cbrnn_backward(t->ws, t->grad, m, t->dy, B, L);
    if (e)
        return e;
    return cbrnn_optim_step(t->opt, m, t->grad, NULL);
}

/* Frames per forward call of the evaluation: bounds its memory whatever
 * the file length (state is carried between chunks, so the result does not
 * depend on it). */
#define EVAL_CHUNK 512

int cbrnn_eval_seq(const cbrnn_model *m, const cbrnn_seq *s, float *outputs,
                   cbrnn_eval_sums *acc)
{
    if (!m || !s || !acc || s->T < 0 || (s->T > 0 && !s->x))
        return CBRNN_ERR_ARG;
    if (s->T == 0)
        return 0;
    int F = m->cfg.n_in, N = m->cfg.n_hidden, O = m->cfg.n_out, e = 0;
    cbrnn_ws *ws = cbrnn_ws_create(m, 1, EVAL_CHUNK, &e);
    float *y = cbrnn_alloc_floats((size_t)EVAL_CHUNK * O);
    float *dy = cbrnn_alloc_floats((size_t)EVAL_CHUNK * O);
    float *h = cbrnn_alloc_floats((size_t)N);
    if (!ws || !y || !dy || !h) {
        e = e ? e : CBRNN_ERR_NOMEM;
        goto done;
    }
    for (int p = 0; p < s->T; p += EVAL_CHUNK) {
        int n = s->T - p < EVAL_CHUNK ? s->T - p : EVAL_CHUNK;
        const float *x = s->x + (size_t)p * F;
        e = cbrnn_forward(ws, y, h, m, x, p ? h : NULL, 1, n);
        if (e)
            goto done;
        const float *base = s->base ? s->base + (size_t)p * F : x;
        cbrnn_model_output(m, y, base, s->scale ? s->scale + (size_t)p * F : NULL, F, n);
        if (outputs)
            memcpy(outputs + (size_t)p * O, y, (size_t)n * O * sizeof(float));
        if (s->y) {
            const int ys = s->y_stride ? s->y_stride : O;
            const float *t = s->y + (size_t)p * ys;
            for (int r = 0; r < n; r++)
                for (int o = 0; o < O; o++) {
                    double d = (double)y[(size_t)r * O + o] - t[(size_t)r * ys + o];
                    acc->loss += d * d;
                }
            acc->count += (long)n * O;
            if (F >= O) /* the first O features are the outputs' own */
                for (int r = 0; r < n; r++)
                    for (int o = 0; o < O; o++) {
                        double d = (double)base[(size_t)r * F + o] - t[(size_t)r * ys + o];
                        acc->persist += d * d;
                    }
        } else if (s->labels) {
            const int *lab = s->labels + p;
            int counted = 0, correct = 0;
            for (int r = 0; r < n; r++) {
                if (lab[r] >= O) {
                    e = CBRNN_ERR_SHAPE;
                    goto done;
                }
                counted += lab[r] >= 0;
            }
            float mean = cbrnn_loss_xent(dy, &correct, y, lab, n, O);
            acc->loss += (double)mean * counted;
            acc->count += counted;
            acc->correct += correct;
        }
    }
done:
    cbrnn_ws_destroy(ws);
    free(y);
    free(dy);
    free(h);
    return e;
}
