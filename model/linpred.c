/* linpred.c: the linear-predictor baseline of the speech comparisons:
 * least squares of the next frame's change y_t - base_t[0:O] on the last k
 * input frames [x_t, x_{t-1}, ..., x_{t-k+1}, 1] of the model's inputs
 * (cbrnn_seq: base is the corpus-normalised frame; zeros before a
 * sequence's start), fitted with a small ridge on training sequences and
 * scored like a model (cbrnn_eval_sums). It is what "a network should at
 * least beat" on next-frame prediction: smoothing and trend of the recent
 * past, with no state beyond k frames. Not for the audio thread. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_model.h"

/* Rows of design matrix built and folded into the normal equations at
 * once (one dsyrk + one dgemm per block). */
#define LP_BLOCK 1024

struct cbrnn_linpred {
    int F, O, k, D;  /* D = k F + 1 */
    double *xtx;     /* [D, D] upper triangle used */
    double *xty;     /* [D, O] */
    double *w;       /* [D, O] after solve */
    double *phi;     /* [LP_BLOCK, D] scratch */
    double *res;     /* [LP_BLOCK, O] scratch */
    long rows;
    int solved;
};

extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda,
                   double *b, const int *ldb, int *info, size_t uplo_len);

cbrnn_linpred *cbrnn_linpred_create(int n_in, int n_out, int k, int *err)
{
    int e = CBRNN_ERR_ARG;
    cbrnn_linpred *p = NULL;
    if (n_in < 1 || n_out < 1 || n_out > n_in || k < 1 || (long)k * n_in > 16384)
        goto fail;
    e = CBRNN_ERR_NOMEM;
    p = calloc(1, sizeof *p);
    if (!p)
        goto fail;
    p->F = n_in;
    p->O = n_out;
    p->k = k;
    p->D = k * n_in + 1;
    size_t D = (size_t)p->D;
    p->xtx = calloc(D * D, sizeof(double));
    p->xty = calloc(D * (size_t)n_out, sizeof(double));
    p->w = calloc(D * (size_t)n_out, sizeof(double));
    p->phi = calloc((size_t)LP_BLOCK * D, sizeof(double));
    p->res = calloc((size_t)LP_BLOCK * (size_t)n_out, sizeof(double));
    if (!p->xtx || !p->xty || !p->w || !p->phi || !p->res)
        goto fail;
    if (err)
        *err = 0;
    return p;
fail:
    cbrnn_linpred_destroy(p);
    if (err)
        *err = e;
    return NULL;
}

void cbrnn_linpred_destroy(cbrnn_linpred *p)
{
    if (!p)
        return;
    free(p->xtx);
    free(p->xty);
    free(p->w);
    free(p->phi);
    free(p->res);
    free(p);
}

/* Row r of the design matrix for frame t of s. */
static void design_row(const cbrnn_linpred *p, double *row, const cbrnn_seq *s, int t)
{
    for (int j = 0; j < p->k; j++) {
        double *dst = row + (size_t)j * p->F;
        if (t - j < 0) {
            memset(dst, 0, (size_t)p->F * sizeof(double));
            continue;
        }
        const float *x = s->x + (size_t)(t - j) * p->F;
        for (int f = 0; f < p->F; f++)
            dst[f] = x[f];
    }
    row[p->D - 1] = 1.0;
}

int cbrnn_linpred_add(cbrnn_linpred *p, const cbrnn_seq *s)
{
    if (!p || !s || !s->y || s->T < 0 || (s->T > 0 && !s->x))
        return CBRNN_ERR_ARG;
    const int D = p->D, O = p->O, ys = s->y_stride ? s->y_stride : O;
    const float *base = s->base ? s->base : s->x;
    for (int t0 = 0; t0 < s->T; t0 += LP_BLOCK) {
        int n = s->T - t0 < LP_BLOCK ? s->T - t0 : LP_BLOCK;
        for (int r = 0; r < n; r++) {
            int t = t0 + r;
            design_row(p, p->phi + (size_t)r * D, s, t);
            for (int o = 0; o < O; o++)
                p->res[(size_t)r * O + o] = (double)s->y[(size_t)t * ys + o] -
                                            (double)base[(size_t)t * p->F + o];
        }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, n, 1.0, p->phi, D, 1.0, p->xtx, D);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, O, n, 1.0, p->phi, D, p->res, O,
                    1.0, p->xty, O);
        p->rows += n;
    }
    p->solved = 0;
    return 0;
}

int cbrnn_linpred_solve(cbrnn_linpred *p, double ridge)
{
    if (!p || !(ridge >= 0) || p->rows < 1)
        return CBRNN_ERR_ARG;
    const int D = p->D, O = p->O;
    /* Column-major for LAPACK: the row-major upper triangle read as
     * column-major is the lower one; B = xty transposed, [O][D]. */
    double *a = malloc((size_t)D * D * sizeof(double));
    double *b = malloc((size_t)D * O * sizeof(double));
    if (!a || !b) {
        free(a);
        free(b);
        return CBRNN_ERR_NOMEM;
    }
    double tr = 0;
    for (int i = 0; i < D; i++)
        tr += p->xtx[(size_t)i * D + i];
    /* Ridge relative to the mean diagonal: scale-free, and it keeps the
     * system positive definite where frames are constant (silence). */
    double lam = ridge * (tr / D > 0 ? tr / D : 1.0);
    memcpy(a, p->xtx, (size_t)D * D * sizeof(double));
    for (int i = 0; i < D; i++)
        a[(size_t)i * D + i] += lam;
    for (int i = 0; i < D; i++)
        for (int o = 0; o < O; o++)
            b[(size_t)o * D + i] = p->xty[(size_t)i * O + o];
    int info = 0;
    dposv_("L", &D, &O, a, &D, b, &D, &info, 1);
    if (info == 0)
        for (int i = 0; i < D; i++)
            for (int o = 0; o < O; o++)
                p->w[(size_t)i * O + o] = b[(size_t)o * D + i];
    free(a);
    free(b);
    if (info != 0)
        return CBRNN_ERR_NONFINITE;
    p->solved = 1;
    return 0;
}

int cbrnn_linpred_eval(const cbrnn_linpred *p, const cbrnn_seq *s, float *outputs,
                       cbrnn_eval_sums *acc)
{
    if (!p || !s || !acc || !s->y || !p->solved || s->T < 0 || (s->T > 0 && !s->x))
        return CBRNN_ERR_ARG;
    const int D = p->D, O = p->O, F = p->F, ys = s->y_stride ? s->y_stride : O;
    const float *base = s->base ? s->base : s->x;
    double *row = malloc((size_t)D * sizeof(double));
    if (!row)
        return CBRNN_ERR_NOMEM;
    for (int t = 0; t < s->T; t++) {
        design_row(p, row, s, t);
        for (int o = 0; o < O; o++) {
            double v = base[(size_t)t * F + o];
            for (int i = 0; i < D; i++)
                v += row[i] * p->w[(size_t)i * O + o];
            double tg = s->y[(size_t)t * ys + o];
            double d = v - tg, dp = (double)base[(size_t)t * F + o] - tg;
            acc->loss += d * d;
            acc->persist += dp * dp;
            if (outputs)
                outputs[(size_t)t * O + o] = (float)v;
        }
        acc->count += O;
    }
    free(row);
    return 0;
}
