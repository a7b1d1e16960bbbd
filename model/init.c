/* init.c: random initialisation of a model as PyTorch's modules do it and
 * the reservoir's spectral-radius scaling (LAPACK's dgeev). Training-side
 * code: it links OpenBLAS, which the real-time pieces (model.c, io.c,
 * layers_elem.c, the engine) must not. Never prints, never exits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_model.h"
#include "model_internal.h"

static void fill_uniform(float *p, size_t n, double bound, cbrnn_rng *r)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((2.0 * cbrnn_rng_uniform(r) - 1.0) * bound);
}

static void fill_normal(float *p, size_t n, double sd, cbrnn_rng *r)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(sd * cbrnn_rng_normal(r));
}

/* LAPACK's general eigenvalue solver, from the LAPACK inside OpenBLAS.
 * The trailing size_t are the hidden lengths gfortran passes for the
 * CHARACTER arguments; passing them keeps the call well defined. */
extern void dgeev_(const char *jobvl, const char *jobvr, const int *n, double *a,
                   const int *lda, double *wr, double *wi, double *vl, const int *ldvl,
                   double *vr, const int *ldvr, double *work, const int *lwork, int *info,
                   size_t len_jobvl, size_t len_jobvr);

double cbrnn_spectral_radius(const float *w, int n)
{
    /* The exact eigenvalues (dgeev) rather than power iteration: a random
     * non-symmetric W has complex leading pairs, where power iteration
     * oscillates instead of converging. */
    if (!w || n <= 0)
        return n == 0 ? 0.0 : -1.0;
    size_t nn = (size_t)n * (size_t)n;
    int lwork = 4 * n + 64, info = 0, one = 1;
    double *a = malloc((nn + 2 * (size_t)n + (size_t)lwork) * sizeof(double));
    if (!a)
        return -1.0;
    double *wr = a + nn, *wi = wr + n, *work = wi + n, dummy = 0.0;
    /* Column-major A is the transpose of row-major W: same eigenvalues. */
    for (size_t i = 0; i < nn; i++)
        a[i] = w[i];
    dgeev_("N", "N", &n, a, &n, wr, wi, &dummy, &one, &dummy, &one, work, &lwork, &info, 1, 1);
    double rho = -1.0;
    if (info == 0) {
        rho = 0.0;
        for (int i = 0; i < n; i++)
            rho = fmax(rho, hypot(wr[i], wi[i]));
    }
    free(a);
    return rho;
}

int cbrnn_model_init(cbrnn_model *m, uint64_t seed)
{
    if (!m)
        return CBRNN_ERR_ARG;
    const cbrnn_model_config *c = &m->cfg;
    int F = c->n_in, N = c->n_hidden, O = c->n_out;
    cbrnn_rng r;
    cbrnn_rng_seed(&r, seed);
    if (c->wiring == CBRNN_WIRING_READOUT) {
        /* torch.nn.RNN.reset_parameters: every tensor U(-1/sqrt N, 1/sqrt N). */
        double k = 1.0 / sqrt((double)N);
        fill_uniform(m->w_ih, (size_t)N * F, k, &r);
        fill_uniform(m->w_hh, (size_t)N * N, k, &r);
        fill_uniform(m->b_ih, (size_t)N, k, &r);
        fill_uniform(m->b_hh, (size_t)N, k, &r);
        /* torch.nn.Linear: kaiming_uniform(a = sqrt 5) on the weight is
         * U(-1/sqrt fan_in, 1/sqrt fan_in); the bias uses the same bound. */
        for (int i = 0; i < m->n_cb_layers; i++) {
            double b = 1.0 / sqrt((double)m->cb_dim[i]);
            fill_uniform(m->cb_w[i], (size_t)m->cb_dim[i + 1] * m->cb_dim[i], b, &r);
            fill_uniform(m->cb_b[i], (size_t)m->cb_dim[i + 1], b, &r);
        }
    } else {
        /* The paper's loop model builds its cortex from nn.Linear layers
         * (input and recurrent), each with its own fan-in. */
        double kx = 1.0 / sqrt((double)F), kh = 1.0 / sqrt((double)N);
        fill_uniform(m->w_ih, (size_t)N * F, kx, &r);
        fill_uniform(m->w_hh, (size_t)N * N, kh, &r);
        fill_uniform(m->b_ih, (size_t)N, kx, &r);
        fill_uniform(m->b_hh, (size_t)N, kh, &r);
        /* CB starts near zero so that c_t barely perturbs the cortex at
         * first: biases 0, input layer N(0, 0.01^2), later ones N(0, 0.1^2). */
        for (int i = 0; i < m->n_cb_layers; i++) {
            fill_normal(m->cb_w[i], (size_t)m->cb_dim[i + 1] * m->cb_dim[i], i == 0 ? 0.01 : 0.1,
                        &r);
            memset(m->cb_b[i], 0, (size_t)m->cb_dim[i + 1] * sizeof(float));
        }
    }
    if (m->out_w) {
        double b = 1.0 / sqrt((double)N);
        fill_uniform(m->out_w, (size_t)O * N, b, &r);
        fill_uniform(m->out_b, (size_t)O, b, &r);
    }
    /* A residual model starts as persistence (y = x): its output layer
     * starts at zero (drawn first, so every other tensor is the same as
     * the plain model's for the seed), and learns only the change that
     * pays. The layers below still get gradients once it has moved. */
    if (c->residual) {
        float *w = m->out_w, *b = m->out_b;
        size_t nw = m->out_w ? (size_t)O * N : 0;
        if (m->n_cb_layers > 0 && c->wiring == CBRNN_WIRING_READOUT) {
            int L = m->n_cb_layers;
            w = m->cb_w[L - 1];
            b = m->cb_b[L - 1];
            nw = (size_t)m->cb_dim[L] * m->cb_dim[L - 1];
        }
        memset(w, 0, nw * sizeof(float));
        memset(b, 0, (size_t)O * sizeof(float));
    }
    if (c->arch == CBRNN_ARCH_RESERVOIR) {
        double rho = cbrnn_spectral_radius(m->w_hh, N);
        if (rho < 0.0)
            return CBRNN_ERR_NOMEM;
        if (rho > 0.0) {
            double s = c->spectral_radius / rho;
            for (size_t i = 0; i < (size_t)N * N; i++)
                m->w_hh[i] = (float)(m->w_hh[i] * s);
        }
        m->frozen[CBRNN_GROUP_CORTEX] = 1;
    }
    return 0;
}
