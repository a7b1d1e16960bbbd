/* optim.c: SGD (momentum, Nesterov) and Adam with exactly the arithmetic of
 * torch.optim in PyTorch 1.13 (torch/optim/sgd.py, adam.py, single-tensor
 * path), and global-norm clipping as torch.nn.utils.clip_grad_norm_. The
 * update is one flat loop over the ranges of trainable groups, which are
 * contiguous in the parameter block. No allocation after create: the
 * engine steps its cerebellum with these on the audio thread. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_model.h"
#include "model_internal.h"

void cbrnn_optim_config_default(cbrnn_optim_config *c, cbrnn_opt_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->lr = kind == CBRNN_OPT_ADAM ? 1e-3f : 1e-2f;
    c->momentum = 0.0f;
    c->nesterov = 0;
    c->beta1 = 0.9f;   /* torch.optim.Adam defaults */
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.0f;
    c->clip_norm = 0.0f;
}

static int config_ok(const cbrnn_optim_config *c)
{
    if (c->kind != CBRNN_OPT_SGD && c->kind != CBRNN_OPT_ADAM)
        return 0;
    if (!(c->lr >= 0.0f && isfinite(c->lr)) || !(c->weight_decay >= 0.0f) ||
        !isfinite(c->weight_decay) || !(c->clip_norm >= 0.0f) || !isfinite(c->clip_norm))
        return 0;
    if (c->kind == CBRNN_OPT_SGD) {
        if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
            return 0;
        if (c->nesterov && !(c->momentum > 0.0f)) /* torch refuses it too */
            return 0;
    } else {
        if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f) ||
            !(c->eps >= 0.0f && isfinite(c->eps)))
            return 0;
    }
    return 1;
}

cbrnn_optim *cbrnn_optim_create(const cbrnn_model *m, const cbrnn_optim_config *c, int *err)
{
    if (!m || !c || !config_ok(c)) {
        if (err)
            *err = CBRNN_ERR_ARG;
        return NULL;
    }
    cbrnn_optim *o = calloc(1, sizeof *o);
    if (o) {
        o->cfg = *c;
        o->n = m->n_params;
        o->m = cbrnn_alloc_floats(o->n);
        o->v = cbrnn_alloc_floats(o->n);
    }
    if (!o || !o->m || !o->v) {
        cbrnn_optim_destroy(o);
        if (err)
            *err = CBRNN_ERR_NOMEM;
        return NULL;
    }
    if (err)
        *err = 0;
    return o;
}

void cbrnn_optim_destroy(cbrnn_optim *o)
{
    if (!o)
        return;
    free(o->m);
    free(o->v);
    free(o);
}

void cbrnn_optim_reset(cbrnn_optim *o)
{
    memset(o->m, 0, o->n * sizeof(float));
    memset(o->v, 0, o->n * sizeof(float));
    o->step = 0;
}

/* The trainable ranges [start, end) of the block: runs of tensors whose
 * group is not frozen, merged where adjacent. Returns their count. */
static int trainable_ranges(const cbrnn_model *m, size_t *start, size_t *end)
{
    int n = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const cbrnn_tensor *t = &m->tensors[i];
        if (m->frozen[t->group])
            continue;
        if (n > 0 && end[n - 1] == t->offset) {
            end[n - 1] += t->size;
        } else {
            start[n] = t->offset;
            end[n] = t->offset + t->size;
            n++;
        }
    }
    return n;
}

int cbrnn_optim_step(cbrnn_optim *o, cbrnn_model *m, float *grad, float *grad_norm)
{
    if (!o || !m || !grad || o->n != m->n_params)
        return CBRNN_ERR_ARG;
    size_t rs[CBRNN_MAX_TENSORS], re[CBRNN_MAX_TENSORS];
    int nr = trainable_ranges(m, rs, re);
    const cbrnn_optim_config *c = &o->cfg;
    double ss = 0.0;
    for (int k = 0; k < nr; k++)
        for (size_t i = rs[k]; i < re[k]; i++)
            ss += (double)grad[i] * grad[i];
    float norm = (float)sqrt(ss);
    if (grad_norm)
        *grad_norm = norm;
    /* torch would carry NaN into every weight; refusing the step keeps the
     * model usable and tells the caller. */
    if (!isfinite(norm))
        return CBRNN_ERR_NONFINITE;
    if (c->clip_norm > 0.0f) {
        float coef = c->clip_norm / (norm + 1e-6f); /* clip_grad_norm_'s 1e-6 */
        if (coef < 1.0f)
            for (int k = 0; k < nr; k++)
                for (size_t i = rs[k]; i < re[k]; i++)
                    grad[i] *= coef;
    }
    o->step++;
    float *p = m->params, *mo = o->m, *v = o->v;
    float wd = c->weight_decay, lr = c->lr;
    if (c->kind == CBRNN_OPT_SGD) {
        float mu = c->momentum;
        for (int k = 0; k < nr; k++)
            for (size_t i = rs[k]; i < re[k]; i++) {
                float d = grad[i];
                if (wd != 0.0f)
                    d += wd * p[i];
                if (mu != 0.0f) {
                    /* torch starts the buffer as a copy of d, which equals
                     * mu * 0 + d: zero-initialised moments are the same. */
                    mo[i] = mu * mo[i] + d;
                    d = c->nesterov ? d + mu * mo[i] : mo[i];
                }
                p[i] -= lr * d;
            }
    } else {
        /* Scalars as torch computes them: Python doubles, then used as
         * float32 scalars by the tensor ops. */
        double step = (double)o->step;
        float b1 = c->beta1, b2 = c->beta2;
        float one_b1 = (float)(1.0 - (double)b1), one_b2 = (float)(1.0 - (double)b2);
        double bc1 = 1.0 - pow((double)b1, step), bc2 = 1.0 - pow((double)b2, step);
        float step_size = (float)((double)lr / bc1);
        float bc2_sqrt = (float)sqrt(bc2);
        float eps = c->eps;
        for (int k = 0; k < nr; k++)
            for (size_t i = rs[k]; i < re[k]; i++) {
                float g = grad[i];
                if (wd != 0.0f)
                    g += wd * p[i];
                mo[i] = mo[i] * b1 + one_b1 * g;
                v[i] = v[i] * b2 + one_b2 * (g * g);
                float denom = sqrtf(v[i]) / bc2_sqrt + eps;
                p[i] += (-step_size * mo[i]) / denom;
            }
    }
    return 0;
}
