/* parity_helper.c: runs one small model case through cbrnn and writes
 * everything PyTorch needs to redo it (tests/model/parity_torch.py):
 * the initial parameters, inputs, targets, and cbrnn's outputs, loss, BPTT
 * gradients, and parameters after two steps of SGD-Nesterov and of Adam.
 * Files: DIR/meta.json and DIR/<name>.bin (raw little-endian float32, or
 * int32 for labels). A test tool: it must never decide pass or fail itself;
 * PyTorch is the judge. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_model.h"

static const char *dir = ".";

static int write_bin(const char *name, const void *p, size_t bytes)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f)) {
        fprintf(stderr, "parity_helper: cannot write %s\n", path);
        exit(1);
    }
    return 0;
}

static void fill(float *p, size_t n, float lo, float hi, cbrnn_rng *r)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(lo + (hi - lo) * cbrnn_rng_uniform(r));
}

static void usage(void)
{
    fprintf(stderr,
            "usage: parity_helper --out DIR [--arch cbrnn|rnn] [--wiring readout|loop]\n"
            "  [--act tanh|relu|leaky] [--alpha A] [--sizes F,N,O] [--cb W1,W2..]\n"
            "  [--batch B] [--seq T] [--loss mse|ce|ce-last] [--h0] [--freeze-cortex]\n"
            "  [--clip C] [--wd W] [--seed S] [--residual] [--stream-norm SEC]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    cbrnn_model_config c;
    cbrnn_model_config_default(&c);
    c.n_in = 6, c.n_hidden = 12, c.n_out = 5, c.cb_hidden[0] = 16;
    int B = 3, T = 7, loss_kind = 0, use_h0 = 0, freeze = 0;
    float clip = 0.0f, wd = 0.0f;
    unsigned long long seed = 1;
    static const struct option opts[] = {
        {"out", 1, 0, 'o'},   {"arch", 1, 0, 'A'},  {"wiring", 1, 0, 'w'},
        {"act", 1, 0, 'a'},   {"alpha", 1, 0, 'l'}, {"sizes", 1, 0, 's'},
        {"cb", 1, 0, 'c'},    {"batch", 1, 0, 'b'}, {"seq", 1, 0, 't'},
        {"loss", 1, 0, 'L'},  {"h0", 0, 0, 'h'},    {"freeze-cortex", 0, 0, 'f'},
        {"clip", 1, 0, 'C'},  {"wd", 1, 0, 'W'},    {"seed", 1, 0, 'S'},
        {"residual", 0, 0, 'R'}, {"stream-norm", 1, 0, 'N'},
        {0, 0, 0, 0}};
    float stream_norm = 0.0f;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'o': dir = optarg; break;
        case 'A': c.arch = !strcmp(optarg, "rnn") ? CBRNN_ARCH_RNN : CBRNN_ARCH_CBRNN; break;
        case 'w': c.wiring = !strcmp(optarg, "loop") ? CBRNN_WIRING_LOOP : CBRNN_WIRING_READOUT; break;
        case 'a':
            c.act = !strcmp(optarg, "relu")    ? CBRNN_ACT_RELU
                    : !strcmp(optarg, "leaky") ? CBRNN_ACT_LEAKY_RELU
                                               : CBRNN_ACT_TANH;
            break;
        case 'l': c.alpha = strtof(optarg, NULL); break;
        case 's':
            if (sscanf(optarg, "%d,%d,%d", &c.n_in, &c.n_hidden, &c.n_out) != 3)
                usage();
            break;
        case 'c': {
            c.n_cb_hidden = 0;
            for (char *p = optarg; *p && c.n_cb_hidden < CBRNN_MAX_CB_HIDDEN;) {
                c.cb_hidden[c.n_cb_hidden++] = (int)strtol(p, &p, 10);
                if (*p == ',')
                    p++;
            }
            break;
        }
        case 'b': B = atoi(optarg); break;
        case 't': T = atoi(optarg); break;
        case 'L': loss_kind = !strcmp(optarg, "ce") ? 1 : !strcmp(optarg, "ce-last") ? 2 : 0; break;
        case 'h': use_h0 = 1; break;
        case 'f': freeze = 1; break;
        case 'C': clip = strtof(optarg, NULL); break;
        case 'W': wd = strtof(optarg, NULL); break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        case 'R': c.residual = 1; break;
        case 'N': stream_norm = strtof(optarg, NULL); break;
        default: usage();
        }
    }
    char msg[200];
    if (cbrnn_model_config_check(&c, msg, sizeof msg)) {
        fprintf(stderr, "parity_helper: %s\n", msg);
        return 2;
    }
    int err, F = c.n_in, N = c.n_hidden, O = c.n_out;
    cbrnn_model *m = cbrnn_model_create(&c, &err);
    if (!m || cbrnn_model_init(m, seed))
        return 1;
    cbrnn_rng r;
    cbrnn_rng_seed(&r, seed + 1000);
    /* The loop wiring's CB starts near zero; give it weights that matter. */
    if (c.wiring == CBRNN_WIRING_LOOP)
        for (int l = 0; l < m->n_cb_layers; l++) {
            fill(m->cb_w[l], (size_t)m->cb_dim[l + 1] * m->cb_dim[l], -0.4f, 0.4f, &r);
            fill(m->cb_b[l], (size_t)m->cb_dim[l + 1], -0.2f, 0.2f, &r);
        }
    m->frozen[CBRNN_GROUP_CORTEX] = freeze;
    size_t nx = (size_t)B * T * F, ny = (size_t)B * T * O, P = m->n_params;
    float *x = malloc(nx * 4), *h0 = malloc((size_t)B * N * 4), *tgt = malloc(ny * 4);
    float *y = malloc(ny * 4), *dy = malloc(ny * 4), *g = malloc(P * 4);
    int *lab = malloc((size_t)B * T * sizeof(int));
    fill(x, nx, -1.0f, 1.0f, &r);
    fill(h0, (size_t)B * N, -0.5f, 0.5f, &r);
    fill(tgt, ny, -1.0f, 1.0f, &r);
    for (int i = 0; i < B * T; i++) {
        int t = i % T;
        lab[i] = (int)(cbrnn_rng_u64(&r) % (uint64_t)O);
        if (loss_kind == 1 && cbrnn_rng_uniform(&r) < 0.2)
            lab[i] = -1; /* ignored rows */
        if (loss_kind == 2 && t != T - 1)
            lab[i] = -1; /* the paper's tasks: loss on the last step only */
    }
    write_bin("params0", m->params, P * 4);
    /* --stream-norm: the model's input is each sequence through the running
     * normaliser (x_raw: the corpus-normalised frames, the residual base;
     * x: z; scale: s), as training and the engine feed it. A short time
     * constant so that T frames move the statistics far. */
    write_bin("x_raw", x, nx * 4);
    float *xr = malloc(nx * 4), *sc = malloc(nx * 4);
    memcpy(xr, x, nx * 4);
    m->stream_norm_s = stream_norm;
    for (int b = 0; b < B; b++)
        if (cbrnn_model_stream_seq(m, xr + (size_t)b * T * F, x + (size_t)b * T * F,
                                   sc + (size_t)b * T * F, T))
            return 1;
    write_bin("scale", sc, nx * 4);
    write_bin("x", x, nx * 4);
    write_bin("h0", h0, (size_t)B * N * 4);
    write_bin("target", tgt, ny * 4);
    write_bin("labels", lab, (size_t)B * T * sizeof(int));

    cbrnn_ws *ws = cbrnn_ws_create(m, B, T, &err);
    float losses[2][2], norms[2][2], loss0;
#define RUN(model, lossvar)                                                                      \
    do {                                                                                          \
        cbrnn_forward(ws, y, NULL, model, x, use_h0 ? h0 : NULL, B, T);                           \
        cbrnn_model_output(model, y, xr, sc, F, (long)B * T);                                     \
        lossvar = loss_kind ? cbrnn_loss_xent(dy, NULL, y, lab, B * T, O)                         \
                            : cbrnn_loss_mse(dy, y, tgt, B * T, O);                               \
        cbrnn_model_output_backward(model, dy, sc, F, (long)B * T);                               \
        memset(g, 0, P * 4);                                                                      \
        cbrnn_backward(ws, g, model, dy, B, T);                                                   \
    } while (0)
    RUN(m, loss0);
    write_bin("y", y, ny * 4);
    write_bin("grad", g, P * 4);
    const char *names[2] = {"sgd", "adam"};
    for (int k = 0; k < 2; k++) {
        cbrnn_model *mc = cbrnn_model_clone(m, &err);
        cbrnn_optim_config oc;
        cbrnn_optim_config_default(&oc, k ? CBRNN_OPT_ADAM : CBRNN_OPT_SGD);
        if (!k) {
            oc.lr = 0.05f;
            oc.momentum = 0.9f;
            oc.nesterov = 1;
        } else {
            oc.lr = 0.01f;
        }
        oc.clip_norm = clip;
        oc.weight_decay = wd;
        cbrnn_optim *opt = cbrnn_optim_create(mc, &oc, &err);
        for (int s = 0; s < 2; s++) {
            RUN(mc, losses[k][s]);
            if (cbrnn_optim_step(opt, mc, g, &norms[k][s]))
                return 1;
            char nm[32];
            snprintf(nm, sizeof nm, "params_%s_%d", names[k], s + 1);
            write_bin(nm, mc->params, P * 4);
        }
        cbrnn_optim_destroy(opt);
        cbrnn_model_destroy(mc);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
    fprintf(f, "{\"arch\": \"%s\", \"wiring\": \"%s\", \"act\": \"%s\", \"alpha\": %.9g,\n",
            c.arch == CBRNN_ARCH_RNN ? "rnn" : "cbrnn",
            c.wiring == CBRNN_WIRING_LOOP ? "loop" : "readout",
            c.act == CBRNN_ACT_TANH ? "tanh" : c.act == CBRNN_ACT_RELU ? "relu" : "leaky",
            (double)c.alpha);
    fprintf(f, " \"F\": %d, \"N\": %d, \"O\": %d, \"B\": %d, \"T\": %d, \"cb\": [", F, N, O, B, T);
    for (int i = 0; i < m->cfg.n_cb_hidden; i++)
        fprintf(f, "%s%d", i ? ", " : "", m->cfg.cb_hidden[i]);
    fprintf(f, "],\n \"loss_kind\": \"%s\", \"h0\": %d, \"freeze_cortex\": %d, \"clip\": %.9g, "
               "\"wd\": %.9g,\n",
            loss_kind == 0 ? "mse" : loss_kind == 1 ? "ce" : "ce-last", use_h0, freeze,
            (double)clip, (double)wd);
    fprintf(f, " \"residual\": %d, \"stream_norm\": %.9g, \"stream_floor\": %.9g, "
               "\"hop_ms\": %.17g,\n", c.residual, (double)m->stream_norm_s,
            (double)m->stream_norm_floor, m->feat.hop_ms);
    fprintf(f, " \"loss\": %.9g, \"losses_sgd\": [%.9g, %.9g], \"losses_adam\": [%.9g, %.9g],\n",
            (double)loss0, (double)losses[0][0], (double)losses[0][1], (double)losses[1][0],
            (double)losses[1][1]);
    fprintf(f, " \"norms_sgd\": [%.9g, %.9g], \"norms_adam\": [%.9g, %.9g],\n",
            (double)norms[0][0], (double)norms[0][1], (double)norms[1][0], (double)norms[1][1]);
    fprintf(f, " \"n_params\": %zu, \"tensors\": [\n", P);
    for (int i = 0; i < m->n_tensors; i++) {
        const cbrnn_tensor *t = &m->tensors[i];
        fprintf(f, "  {\"name\": \"%s\", \"group\": %d, \"shape\": [%d%s%.0d], \"offset\": %zu, "
                   "\"size\": %zu}%s\n",
                t->name, t->group, t->shape[0], t->ndim == 2 ? ", " : "",
                t->ndim == 2 ? t->shape[1] : 0, t->offset, t->size,
                i + 1 < m->n_tensors ? "," : "");
    }
    fprintf(f, "]}\n");
    fclose(f);
    cbrnn_ws_destroy(ws);
    cbrnn_model_destroy(m);
    free(x), free(xr), free(sc), free(h0), free(tgt), free(y), free(dy), free(g), free(lab);
    return 0;
}
