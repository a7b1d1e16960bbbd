/* save_loop.c: the saver scripts/faults.sh kills. Loads MODEL and makes
 * two versions of it, A (as loaded) and B (every cerebellum weight times
 * 1.01), then:
 *   save_loop MODEL OUT          saves A, B, A, B... to OUT through
 *                                cbrnn_model_save (temporary file, fsync,
 *                                rename) as fast as it can, forever; prints
 *                                "ready" once OUT exists; SIGKILL ends it;
 *   save_loop --check MODEL OUT  exit 0 if OUT loads and holds exactly A's
 *                                or B's parameters, 1 (saying why) if not:
 *                                a torn or mixed file is a failure;
 *   save_loop --once MODEL OUT   saves B once: exit 0, or 1 with
 *                                cbrnn_model_save's message (full disk).
 * Tests only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbrnn/cbrnn_model.h"

static cbrnn_model *version_b(const cbrnn_model *a)
{
    int err;
    cbrnn_model *b = cbrnn_model_clone(a, &err);
    if (!b)
        return NULL;
    for (int l = 0; l < b->n_cb_layers; l++) {
        const int rows = b->cb_dim[l + 1], cols = b->cb_dim[l];
        for (int i = 0; i < rows * cols; i++)
            b->cb_w[l][i] *= 1.01f;
    }
    return b;
}

int main(int argc, char **argv)
{
    const char *mode = argc == 4 ? argv[1] : "";
    if (!(argc == 3 || (argc == 4 && (!strcmp(mode, "--check") || !strcmp(mode, "--once"))))) {
        fprintf(stderr, "usage: save_loop [--check|--once] MODEL OUT\n");
        return 2;
    }
    const char *model = argv[argc - 2], *out = argv[argc - 1];
    char msg[2048];
    int err;
    cbrnn_model *a = cbrnn_model_load(model, &err, msg, sizeof msg);
    if (!a) {
        fprintf(stderr, "save_loop: %s\n", msg);
        return 2;
    }
    cbrnn_model *b = version_b(a);
    if (!b || a->n_cb_layers == 0) {
        fprintf(stderr, "save_loop: %s has no cerebellum to vary\n", model);
        return 2;
    }
    if (!strcmp(mode, "--check")) {
        cbrnn_model *o = cbrnn_model_load(out, &err, msg, sizeof msg);
        if (!o) {
            fprintf(stderr, "save_loop: %s\n", msg);
            return 1;
        }
        int same_a = o->n_params == a->n_params &&
                     !memcmp(o->params, a->params, a->n_params * sizeof(float));
        int same_b = o->n_params == b->n_params &&
                     !memcmp(o->params, b->params, b->n_params * sizeof(float));
        if (!same_a && !same_b) {
            fprintf(stderr, "save_loop: %s loads but holds neither version saved\n", out);
            return 1;
        }
        cbrnn_model_destroy(o);
        cbrnn_model_destroy(a);
        cbrnn_model_destroy(b);
        return 0;
    }
    if (!strcmp(mode, "--once")) {
        int rc = cbrnn_model_save(b, out, msg, sizeof msg);
        if (rc)
            fprintf(stderr, "save_loop: %s\n", msg);
        cbrnn_model_destroy(a);
        cbrnn_model_destroy(b);
        return rc ? 1 : 0;
    }
    for (unsigned long k = 0;; k++) {
        if (cbrnn_model_save(k & 1 ? b : a, out, msg, sizeof msg)) {
            fprintf(stderr, "save_loop: %s\n", msg);
            return 1;
        }
        if (k == 0) {
            puts("ready");
            fflush(stdout);
        }
    }
}
