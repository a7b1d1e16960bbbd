/* stats.c: per-feature mean and variance over a corpus, for the feature
 * normaliser a model stores. Welford's update per frame and Chan et al.'s
 * pairwise merge, both in double, so that millions of frames with a large
 * offset lose no precision (the naive sum of squares would cancel). Not for
 * the real-time path (init allocates). */
#include <math.h>
#include <stdlib.h>

#include "cbrnn/cbrnn_dsp.h"

int cbrnn_stats_init(cbrnn_stats *s, int dim)
{
    if (!s)
        return CBRNN_ERR_ARG;
    s->dim = 0;
    s->count = 0.0;
    s->mean = s->m2 = NULL;
    if (dim <= 0)
        return CBRNN_ERR_ARG;
    s->mean = calloc((size_t)dim, sizeof *s->mean);
    s->m2 = calloc((size_t)dim, sizeof *s->m2);
    if (!s->mean || !s->m2) {
        cbrnn_stats_free(s);
        return CBRNN_ERR_NOMEM;
    }
    s->dim = dim;
    return CBRNN_OK;
}

void cbrnn_stats_free(cbrnn_stats *s)
{
    if (!s)
        return;
    free(s->mean);
    free(s->m2);
    s->mean = s->m2 = NULL;
    s->dim = 0;
    s->count = 0.0;
}

/* Welford (1962), Technometrics 4(3): running mean and sum of squared
 * deviations, updated with the deviation before and after the new mean. */
void cbrnn_stats_add(cbrnn_stats *s, const float *x)
{
    if (!s || !x || s->dim <= 0)
        return;
    s->count += 1.0;
    double inv = 1.0 / s->count;
    for (int i = 0; i < s->dim; i++) {
        double v = (double)x[i];
        double d = v - s->mean[i];
        s->mean[i] += d * inv;
        s->m2[i] += d * (v - s->mean[i]);
    }
}

/* Chan, Golub & LeVeque (1979), "Updating formulae and a pairwise
 * algorithm for computing sample variances". */
int cbrnn_stats_merge(cbrnn_stats *into, const cbrnn_stats *from)
{
    if (!into || !from)
        return CBRNN_ERR_ARG;
    if (into->dim != from->dim || into->dim <= 0)
        return CBRNN_ERR_SHAPE;
    if (from->count == 0.0)
        return CBRNN_OK;
    double na = into->count, nb = from->count, n = na + nb;
    for (int i = 0; i < into->dim; i++) {
        double delta = from->mean[i] - into->mean[i];
        into->mean[i] += delta * (nb / n);
        into->m2[i] += from->m2[i] + delta * delta * (na * nb / n);
    }
    into->count = n;
    return CBRNN_OK;
}

int cbrnn_stats_result(const cbrnn_stats *s, float *mean, float *std, float floor_)
{
    if (!s || !mean || !std || s->dim <= 0 || !(floor_ >= 0.0f))
        return CBRNN_ERR_ARG;
    /* No frames: there is no mean to report; refuse rather than invent. */
    if (!(s->count > 0.0))
        return CBRNN_ERR_ARG;
    for (int i = 0; i < s->dim; i++) {
        double var = s->m2[i] / s->count;
        double sd = var > 0.0 ? sqrt(var) : 0.0;
        mean[i] = (float)s->mean[i];
        std[i] = sd < (double)floor_ ? floor_ : (float)sd;
    }
    return CBRNN_OK;
}

int cbrnn_std_degenerate(const float *std, int dim, float floor_, int *varying)
{
    int n = 0;
    for (int i = 0; std && i < dim; i++)
        n += std[i] > floor_;
    if (varying)
        *varying = n;
    return n == 0 || n * CBRNN_STD_DEGENERATE_SHARE < dim;
}
