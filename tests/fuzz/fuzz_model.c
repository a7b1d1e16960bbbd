/* fuzz_model.c: libFuzzer target for the model file loader
 * (cbrnn_model_load_mem: safetensors header, __metadata__, tensor table,
 * data). Whatever the bytes, the loader must either refuse with an error
 * code and a message or return a model that keeps its promises: every
 * parameter finite, the tensor table inside the parameter block, a file
 * that saves and reloads to the same model, and an engine built from it
 * that runs a second of audio with finite outputs. Never writes outside
 * its scratch folder (fuzz_util.h). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_model.h"
#include "fuzz_util.h"

static void check_invariants(const cbrnn_model *m)
{
    CHECK(m->params != NULL || m->n_params == 0, "no parameter block for %zu parameters",
          m->n_params);
    for (size_t i = 0; i < m->n_params; i++)
        CHECK(isfinite(m->params[i]), "parameter %zu is %g: the loader promises finite values", i,
              (double)m->params[i]);
    size_t covered = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const cbrnn_tensor *tn = &m->tensors[t];
        CHECK(tn->offset + tn->size <= m->n_params, "tensor %s [%zu, +%zu) beyond %zu parameters",
              tn->name, tn->offset, tn->size, m->n_params);
        covered += tn->size;
    }
    CHECK(covered == m->n_params, "tensors cover %zu of %zu parameters", covered, m->n_params);
    if (m->norm_mean) {
        for (int i = 0; i < m->cfg.n_in; i++)
            CHECK(isfinite(m->norm_mean[i]) && isfinite(m->norm_std[i]),
                  "normaliser %d: mean %g std %g", i, (double)m->norm_mean[i],
                  (double)m->norm_std[i]);
    }
    CHECK(m->n_classes >= 0 && m->n_classes <= CBRNN_MAX_CLASSES, "%d classes", m->n_classes);
}

/* What loads must save, and what saves must load back identical. */
static void check_round_trip(const cbrnn_model *m)
{
    char path[512], msg[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", fz_scratch());
    if (cbrnn_model_save(m, path, msg, sizeof msg) != 0) {
        /* The only refusals a loaded model may meet are about the disk. */
        CHECK(0, "a model the loader accepted cannot be saved: %s", msg);
    }
    int err = 0;
    cbrnn_model *r = cbrnn_model_load(path, &err, msg, sizeof msg);
    CHECK(r != NULL, "the saved copy does not load: %s", msg);
    CHECK(r->n_params == m->n_params, "parameters %zu -> %zu", m->n_params, r->n_params);
    CHECK(memcmp(r->params, m->params, m->n_params * sizeof(float)) == 0,
          "parameters changed in the round trip");
    CHECK(r->cfg.arch == m->cfg.arch && r->cfg.wiring == m->cfg.wiring &&
              r->cfg.act == m->cfg.act && r->cfg.alpha == m->cfg.alpha &&
              r->cfg.n_in == m->cfg.n_in && r->cfg.n_hidden == m->cfg.n_hidden &&
              r->cfg.n_out == m->cfg.n_out && r->cfg.n_cb_hidden == m->cfg.n_cb_hidden,
          "configuration changed in the round trip");
    CHECK(r->target == m->target && r->horizon == m->horizon && r->n_classes == m->n_classes,
          "target/horizon/classes changed in the round trip");
    CHECK(r->feat.sample_rate == m->feat.sample_rate && r->feat.win_ms == m->feat.win_ms &&
              r->feat.hop_ms == m->feat.hop_ms && r->feat.n_mels == m->feat.n_mels &&
              r->feat.n_mfcc == m->feat.n_mfcc && r->feat.deltas == m->feat.deltas,
          "feature configuration changed in the round trip");
    for (int i = 0; i < m->n_classes; i++)
        CHECK(strcmp(r->class_names[i], m->class_names[i]) == 0, "class %d: '%s' -> '%s'", i,
              m->class_names[i], r->class_names[i]);
    for (int g = 0; g < CBRNN_NGROUPS; g++)
        CHECK(r->frozen[g] == m->frozen[g], "frozen[%d] changed", g);
    cbrnn_model_destroy(r);
}

/* An engine from the model either refuses with a code or runs a second of
 * a 440 Hz tone (with learning on) and emits only finite values. */
static void check_engine(const cbrnn_model *m)
{
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, 16000.0);
    c.learn = 1;
    int err = 0;
    cbrnn_engine *e = cbrnn_engine_create(m, &c, &err);
    if (!e) {
        CHECK(err < 0, "engine refused without an error code");
        return;
    }
    enum { BLOCK = 400 };
    float in[BLOCK], o0[BLOCK], o1[BLOCK];
    float *outs[2] = {o0, o1};
    int n_out = cbrnn_engine_n_outputs(e) < 2 ? cbrnn_engine_n_outputs(e) : 2;
    cbrnn_record rec;
    for (int b = 0; b < 40; b++) {
        for (int i = 0; i < BLOCK; i++)
            in[i] = 0.5f * sinf(2.0f * 3.14159265f * 440.0f * (float)(b * BLOCK + i) / 16000.0f);
        /* the map target's teacher is the input itself */
        int rc = cbrnn_engine_process(e, outs, n_out, in, in, BLOCK);
        CHECK(rc == 0, "process: %s", cbrnn_strerror(rc));
        for (int k = 0; k < n_out; k++)
            for (int i = 0; i < BLOCK; i++)
                CHECK(isfinite(outs[k][i]), "output %d sample %d is %g", k, b * BLOCK + i,
                      (double)outs[k][i]);
        while (cbrnn_engine_read_record(e, &rec, NULL))
            ;
    }
    cbrnn_engine_destroy(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[1024];
    int err = 0;
    cbrnn_model *m = cbrnn_model_load_mem(data, size, &err, msg, sizeof msg);
    if (!m) {
        CHECK(err < 0, "refused with code %d", err);
        CHECK(msg[0] != 0, "refused (%s) without a message", cbrnn_strerror(err));
        return 0;
    }
    check_invariants(m);
    check_round_trip(m);
    check_engine(m);
    cbrnn_model_destroy(m);
    return 0;
}
