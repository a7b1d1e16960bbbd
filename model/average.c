/* average.c: weight averaging (Polyak-Ruppert, as in stochastic weight
 * averaging): the running mean of the parameter block over the steps it is
 * shown, which a training run can end with instead of its last step's
 * weights. The mean is kept in double so that thousands of small steps do
 * not round away. */
#include <stdlib.h>

#include "cbrnn/cbrnn_model.h"

struct cbrnn_param_avg {
    size_t n;
    long count;
    double *mean;
};

cbrnn_param_avg *cbrnn_param_avg_create(const cbrnn_model *m, int *err)
{
    cbrnn_param_avg *a = calloc(1, sizeof *a);
    if (a) {
        a->n = m->n_params;
        a->mean = calloc(a->n ? a->n : 1, sizeof *a->mean);
    }
    if (!a || !a->mean) {
        cbrnn_param_avg_destroy(a);
        if (err)
            *err = CBRNN_ERR_NOMEM;
        return NULL;
    }
    if (err)
        *err = 0;
    return a;
}

void cbrnn_param_avg_destroy(cbrnn_param_avg *a)
{
    if (!a)
        return;
    free(a->mean);
    free(a);
}

void cbrnn_param_avg_add(cbrnn_param_avg *a, const cbrnn_model *m)
{
    a->count++;
    double w = 1.0 / (double)a->count;
    for (size_t i = 0; i < a->n; i++)
        a->mean[i] += ((double)m->params[i] - a->mean[i]) * w;
}

long cbrnn_param_avg_count(const cbrnn_param_avg *a)
{
    return a->count;
}

int cbrnn_param_avg_apply(const cbrnn_param_avg *a, cbrnn_model *m)
{
    if (a->count == 0 || m->n_params != a->n)
        return CBRNN_ERR_ARG;
    for (size_t i = 0; i < a->n; i++)
        m->params[i] = (float)a->mean[i];
    return 0;
}
