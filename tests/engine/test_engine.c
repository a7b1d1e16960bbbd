/* test_engine.c: the real-time engine's behaviour on real audio
 * (samples/): results independent of block size (bit for bit), learning
 * off leaves the weights alone, learning on lowers the loss on a voice,
 * non-finite input and divergence are survived and counted, the online
 * gradient equals the model library's batch backward (readout; loop at
 * K = 1 and K = 3) and a double-precision finite difference, and the
 * command/record/snapshot queues do what the header says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine_internal.h"
#include "engine_testutil.h"

static float *voiceA, *voiceB;
static long nA, nB;
static double rateA, rateB;

static int setup(void **state)
{
    voiceA = tu_load("voiceA_us_male_1.wav", 0, &nA, &rateA);  /* 16 kHz */
    voiceB = tu_load("voiceB_gb_female_1.wav", 0, &nB, &rateB); /* 22.05 kHz */
    return 0;
}

static int teardown(void **state)
{
    free(voiceA);
    free(voiceB);
    return 0;
}

static cbrnn_engine *make_engine_rule(const cbrnn_model *m, double rate, int learn, float lr,
                                      float momentum, int k, int rule)
{
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, rate);
    c.rule = rule;
    c.learn = learn;
    c.lr = lr;
    c.momentum = momentum;
    c.bptt_k = k;
    c.record_outputs = 1;
    c.record_capacity = 1 << 14;
    int err;
    cbrnn_engine *e = cbrnn_engine_create(m, &c, &err);
    if (!e)
        fail_msg("cbrnn_engine_create: %s", cbrnn_strerror(err));
    return e;
}

static cbrnn_engine *make_engine(const cbrnn_model *m, double rate, int learn, float lr,
                                 float momentum, int k)
{
    return make_engine_rule(m, rate, learn, lr, momentum, k, CBRNN_RULE_SGD);
}

/* Same bytes everywhere: records, per-frame outputs, audio outputs, weights. */
static void expect_identical(const char *what, const struct tu_run *a, const struct tu_run *b,
                             long n, int O, const cbrnn_engine *ea, const cbrnn_engine *eb)
{
    if (a->n_rec != b->n_rec)
        fail_msg("%s: frames: expected %ld, got %ld", what, a->n_rec, b->n_rec);
    for (long i = 0; i < a->n_rec; i++) {
        if (memcmp(&a->rec[i], &b->rec[i], sizeof a->rec[i]))
            fail_msg("%s: record of frame %ld differs: loss %.9g vs %.9g, surprise %.9g vs %.9g",
                     what, i, a->rec[i].loss, b->rec[i].loss, a->rec[i].surprise,
                     b->rec[i].surprise);
        if (memcmp(a->y + i * O, b->y + i * O, (size_t)O * sizeof(float)))
            fail_msg("%s: outputs of frame %ld differ", what, i);
    }
    for (long s = 0; s < n; s++)
        if (memcmp(&a->out0[s], &b->out0[s], sizeof(float)) ||
            memcmp(&a->out1[s], &b->out1[s], sizeof(float)))
            fail_msg("%s: audio-rate output at sample %ld differs: %.9g/%.9g vs %.9g/%.9g", what,
                     s, a->out0[s], a->out1[s], b->out0[s], b->out1[s]);
    const cbrnn_model *m = cbrnn_engine_model(ea);
    int err;
    cbrnn_model *pa = cbrnn_model_clone(m, &err), *pb = cbrnn_model_clone(m, &err);
    cbrnn_engine_copy_params(ea, pa);
    cbrnn_engine_copy_params(eb, pb);
    if (memcmp(pa->params, pb->params, m->n_params * sizeof(float)))
        fail_msg("%s: adapted weights differ", what);
    cbrnn_model_destroy(pa);
    cbrnn_model_destroy(pb);
}

static void block_invariance_for(int wiring, int target, const char *what)
{
    cbrnn_model *m = tu_model(wiring, target, 32, 48, 7, voiceA, nA, rateB);
    const float *teacher = target == CBRNN_TARGET_MAP ? voiceA : NULL;
    long n = target == CBRNN_TARGET_MAP ? (nA < nB ? nA : nB) : nB;
    if (n > 8 * 22050)
        n = 8 * 22050; /* 8 s: 800 frames with learning, per block pattern */
    const int blocks[] = {1, 64, 4096, 0};
    struct tu_run runs[4];
    cbrnn_engine *es[4];
    for (int i = 0; i < 4; i++) {
        es[i] = make_engine(m, rateB, 1, 1e-3f, 0.9f, 3);
        if (target == CBRNN_TARGET_CLASSIFY)
            cbrnn_engine_set_label(es[i], 1);
        tu_run(es[i], voiceB, teacher, n, blocks[i], &runs[i]);
    }
    assert_true(runs[0].n_rec > 700);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(es[0], &st);
    if (st.updates < runs[0].n_rec - 3)
        fail_msg("%s: expected an update on (nearly) every frame, got %lld of %ld", what,
                 (long long)st.updates, runs[0].n_rec);
    char label[128];
    for (int i = 1; i < 4; i++) {
        snprintf(label, sizeof label, "%s, block 1 vs %s%d", what, blocks[i] ? "" : "varied ",
                 blocks[i]);
        expect_identical(label, &runs[0], &runs[i], n, m->cfg.n_out, es[0], es[i]);
    }
    for (int i = 0; i < 4; i++) {
        tu_run_free(&runs[i]);
        cbrnn_engine_destroy(es[i]);
    }
    cbrnn_model_destroy(m);
}

static void block_invariance_readout(void **state)
{
    block_invariance_for(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, "readout predict");
}
static void block_invariance_loop(void **state)
{
    block_invariance_for(CBRNN_WIRING_LOOP, CBRNN_TARGET_PREDICT, "loop predict K=3");
}
static void block_invariance_map(void **state)
{
    block_invariance_for(CBRNN_WIRING_READOUT, CBRNN_TARGET_MAP, "readout map");
}
static void block_invariance_classify(void **state)
{
    block_invariance_for(CBRNN_WIRING_READOUT, CBRNN_TARGET_CLASSIFY, "readout classify");
}

static void learning_off_keeps_weights(void **state)
{
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 32, 48, 3, voiceA, nA,
                              rateB);
    cbrnn_engine *e = make_engine(m, rateB, 0, 1e-2f, 0.9f, 1);
    struct tu_run r;
    tu_run(e, voiceB, NULL, nB, 0, &r);
    int err;
    cbrnn_model *p = cbrnn_model_clone(m, &err);
    cbrnn_engine_copy_params(e, p);
    if (memcmp(p->params, m->params, m->n_params * sizeof(float)))
        fail_msg("learning off: the weights changed over %ld frames", r.n_rec);
    for (long i = 0; i < r.n_rec; i++)
        if (r.rec[i].learning || (r.rec[i].flags & CBRNN_REC_UPDATED))
            fail_msg("learning off: frame %ld says learning=%d flags=%u", i, r.rec[i].learning,
                     r.rec[i].flags);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(e, &st);
    assert_int_equal(st.updates, 0);
    tu_run_free(&r);
    cbrnn_model_destroy(p);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
}

/* A model whose `frozen` list names what online learning changes (its
 * cerebellum; the readout of a model without one) never learns: create
 * refuses learn on, and a learn command leaves learning off. */
static void frozen_head_never_learns(void **state)
{
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 32, 48, 3, voiceA, nA,
                              rateB);
    assert_int_equal(cbrnn_engine_learned_group(m), CBRNN_GROUP_CEREBELLUM);
    m->frozen[CBRNN_GROUP_CEREBELLUM] = 1;
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, rateB);
    c.learn = 1;
    int err = 0;
    assert_null(cbrnn_engine_create(m, &c, &err));
    assert_int_equal(err, CBRNN_ERR_UNSUPPORTED);
    cbrnn_engine *e = make_engine(m, rateB, 0, 1e-2f, 0.9f, 1);
    cbrnn_engine_cmd on = {CBRNN_CMD_LEARN, 1, 0};
    assert_int_equal(cbrnn_engine_send(e, &on), 0);
    struct tu_run r;
    tu_run(e, voiceB, NULL, nB / 4, 0, &r);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(e, &st);
    assert_int_equal(st.updates, 0);
    for (long i = 0; i < r.n_rec; i++)
        if (r.rec[i].learning || (r.rec[i].flags & CBRNN_REC_UPDATED))
            fail_msg("frozen cerebellum: frame %ld learning %d flags %u", i, r.rec[i].learning,
                     r.rec[i].flags);
    tu_run_free(&r);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
}

/* A model never trained on voice B: online learning must beat the frozen
 * model clearly over the second half of the clip. */
static void learning_lowers_loss(void **state)
{
    for (int wiring = 0; wiring < 2; wiring++) {
        cbrnn_model *m = tu_model(wiring, CBRNN_TARGET_PREDICT, 48, 64, 11, voiceA, nA, rateB);
        double second[2];
        for (int learn = 0; learn < 2; learn++) {
            cbrnn_engine *e = make_engine(m, rateB, learn, 1e-3f, 0.9f, 2);
            struct tu_run r;
            tu_run(e, voiceB, NULL, nB, 256, &r);
            second[learn] = tu_mean_loss(&r, r.n_rec / 2, r.n_rec);
            tu_run_free(&r);
            cbrnn_engine_destroy(e);
        }
        print_message("%s wiring: second-half loss %.4f without learning, %.4f with\n",
                      wiring ? "loop" : "readout", second[0], second[1]);
        if (!(second[1] < 0.8 * second[0]))
            fail_msg("%s wiring: second-half loss with learning %.4f is not below 0.8 x %.4f "
                     "without",
                     wiring ? "loop" : "readout", second[1], second[0]);
        cbrnn_model_destroy(m);
    }
}

/* Non-finite samples are zeroed and their frames flagged; outputs stay
 * finite; a flagged frame, and the frame that scores the prediction made
 * from one, is never learned from (learning 0, no update); learning goes
 * on after. Both wirings: readout runs the fused update, loop the other;
 * and RLS, whose readout keeps a single slot (the prediction scored and
 * the new frame share it). */
static void nonfinite_input_for(int wiring, int rule)
{
    cbrnn_model *m = tu_model(wiring, CBRNN_TARGET_PREDICT, 32, 48, 5, voiceA, nA, rateB);
    cbrnn_engine *e = make_engine_rule(m, rateB, 1, 1e-3f, 0.9f, 1, rule);
    long n = 6 * 22050;
    float *x = malloc((size_t)n * sizeof(float));
    memcpy(x, voiceB, (size_t)n * sizeof(float));
    for (long i = 22050; i < 22050 + 300; i++)
        x[i] = (i & 1) ? NAN : INFINITY;
    x[3 * 22050] = -INFINITY;
    x[4 * 22050 + 17] = NAN;
    struct tu_run r;
    tu_run(e, x, NULL, n, 0, &r);
    for (long s = 0; s < n; s++)
        if (!isfinite(r.out0[s]) || !isfinite(r.out1[s]))
            fail_msg("non-finite input: output at sample %ld is %g / %g", s, r.out0[s], r.out1[s]);
    long flagged = 0;
    for (long i = 0; i < r.n_rec; i++) {
        flagged += (r.rec[i].flags & CBRNN_REC_BAD_INPUT) != 0;
        for (int j = 0; j < m->cfg.n_out; j++)
            if (!isfinite(r.y[i * m->cfg.n_out + j]))
                fail_msg("non-finite input: frame %ld output %d is %g", i, j,
                         r.y[i * m->cfg.n_out + j]);
    }
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(e, &st);
    if (st.bad_input < 3 || flagged != st.bad_input)
        fail_msg("non-finite input: expected >= 3 flagged frames matching the counter, got "
                 "%ld flagged, counter %lld",
                 flagged, (long long)st.bad_input);
    long skipped = 0, updated = 0;
    for (long i = 1; i < r.n_rec; i++) {
        unsigned bad = (r.rec[i].flags | r.rec[i - 1].flags) & CBRNN_REC_BAD_INPUT;
        if (bad && (r.rec[i].learning || (r.rec[i].flags & CBRNN_REC_UPDATED)))
            fail_msg("non-finite input: frame %ld learned (learning=%d flags=%u) though it or "
                     "the frame before was flagged bad", i, r.rec[i].learning, r.rec[i].flags);
        skipped += bad != 0;
        updated += !bad && (r.rec[i].flags & CBRNN_REC_UPDATED);
    }
    print_message("%s%s: %lld frames flagged bad, %ld not learned from, %ld updated of %ld\n",
                  wiring ? "loop" : "readout", rule == CBRNN_RULE_RLS ? " (RLS)" : "", (long long)st.bad_input, skipped, updated,
                  r.n_rec);
    if (skipped < st.bad_input || updated < r.n_rec - 1 - skipped)
        fail_msg("non-finite input: %ld skipped (flagged %lld), %ld of the other %ld updated",
                 skipped, (long long)st.bad_input, updated, r.n_rec - 1 - skipped);
    /* Well after the bursts the loss is finite again and learning goes on. */
    assert_true(isfinite(r.rec[r.n_rec - 1].loss));
    assert_true(r.rec[r.n_rec - 1].flags & CBRNN_REC_UPDATED);
    int err;
    cbrnn_model *p = cbrnn_model_clone(m, &err);
    cbrnn_engine_copy_params(e, p);
    for (size_t i = 0; i < p->n_params; i++)
        if (!isfinite(p->params[i]))
            fail_msg("non-finite input: weight %zu is %g", i, p->params[i]);
    cbrnn_model_destroy(p);
    tu_run_free(&r);
    free(x);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
}

static void nonfinite_input_is_survived(void **state)
{
    nonfinite_input_for(CBRNN_WIRING_READOUT, CBRNN_RULE_SGD);
    nonfinite_input_for(CBRNN_WIRING_LOOP, CBRNN_RULE_SGD);
    nonfinite_input_for(CBRNN_WIRING_READOUT, CBRNN_RULE_RLS);
}

/* A learning rate far too large makes the loss and weights blow up: the
 * engine must restore the last good cerebellum, count it, and keep every
 * output and weight finite. With the divergence bound on (the default) it
 * also catches the runaway while it is still finite: no finite loss far
 * beyond the running mean goes unanswered, and the largest finite output
 * stays orders of magnitude below what the same run gives with it off. */
static double divergence_run(float diverge_ratio, long long *restores)
{
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 32, 48, 5, voiceA, nA,
                              rateB);
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, rateB);
    c.learn = 1;
    c.lr = 1e4f;
    c.momentum = 0.99f;
    c.record_outputs = 1;
    c.record_capacity = 1 << 14;
    c.diverge_ratio = diverge_ratio;
    int err;
    cbrnn_engine *e = cbrnn_engine_create(m, &c, &err);
    if (!e)
        fail_msg("cbrnn_engine_create: %s", cbrnn_strerror(err));
    struct tu_run r;
    tu_run(e, voiceB, NULL, 4 * 22050, 512, &r);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(e, &st);
    if (st.restores < 1)
        fail_msg("divergence: expected restores >= 1, got %lld", (long long)st.restores);
    *restores = st.restores;
    long flagged = 0;
    double ymax = 0;
    for (long i = 0; i < r.n_rec; i++) {
        flagged += (r.rec[i].flags & CBRNN_REC_RESTORED) != 0;
        for (int j = 0; j < m->cfg.n_out; j++) {
            double y = fabs(r.y[i * m->cfg.n_out + j]);
            if (isfinite(y) && y > ymax)
                ymax = y;
        }
    }
    assert_int_equal(flagged, st.restores);
    for (long s = 0; s < 4 * 22050; s++)
        if (!isfinite(r.out0[s]) || !isfinite(r.out1[s]))
            fail_msg("divergence: output at sample %ld is %g / %g", s, r.out0[s], r.out1[s]);
    cbrnn_model *p = cbrnn_model_clone(m, &err);
    cbrnn_engine_copy_params(e, p);
    for (size_t i = 0; i < p->n_params; i++)
        if (!isfinite(p->params[i]))
            fail_msg("divergence: weight %zu is %g after restores", i, p->params[i]);
    cbrnn_model_destroy(p);
    tu_run_free(&r);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
    return ymax;
}

static void divergence_restores(void **state)
{
    long long r_on, r_off;
    double on = divergence_run(1e6f, &r_on), off = divergence_run(0.0f, &r_off);
    print_message("divergence: largest finite output %.3g with the bound (%lld restores), "
                  "%.3g without (%lld restores)\n", on, r_on, off, r_off);
    if (!(on * 1e3 < off))
        fail_msg("divergence bound: largest finite output %g with it, %g without", on, off);
}

/* Feeds one sample at a time until `frames` frames are done. */
static void feed_until(cbrnn_engine *e, const float *x, long *pos, int64_t frames)
{
    cbrnn_engine_stats st;
    cbrnn_record rec;
    for (;;) {
        cbrnn_engine_get_stats(e, &st);
        if (st.frames >= frames)
            return;
        cbrnn_engine_process(e, NULL, 0, x + *pos, NULL, 1);
        (*pos)++;
        while (cbrnn_engine_read_record(e, &rec, NULL))
            ;
    }
}

/* The engine's online gradient (read from the momentum buffer after one
 * update with momentum 0, where v = g exactly) against cbrnn_backward over
 * the last K frames at B = 1 with the cortex frozen and the loss on the
 * last frame only. Learning is off until the scored frame, so the weights
 * are the same through the whole window, as the batch reference assumes. */
static void gradient_vs_batch(int wiring, int K, const char *what)
{
    cbrnn_model *m = tu_model(wiring, CBRNN_TARGET_PREDICT, 24, 40, 13, voiceA, nA, rateB);
    if (strstr(what, "residual")) { /* y = x + head behind the running normaliser */
        m->cfg.residual = 1;
        m->stream_norm_s = 0.5f;
    }
    cbrnn_engine *e = make_engine(m, rateB, 0, 1.0f, 0.0f, K);
    const int F = m->cfg.n_in, N = m->cfg.n_hidden, O = m->cfg.n_out;
    const int t = 40; /* the prediction made at frame t is scored at t + 1 */
    long pos = 0;
    float *h0 = malloc((size_t)N * sizeof(float));
    float *xs = malloc((size_t)K * F * sizeof(float));
    float *bs = malloc((size_t)K * F * sizeof(float)), *ss = malloc((size_t)K * F * sizeof(float));
    float *x_next = malloc((size_t)F * sizeof(float));
    float *y_eng = malloc((size_t)O * sizeof(float));
    feed_until(e, voiceB, &pos, t - K + 1); /* frames 0 .. t-K done */
    memcpy(h0, e->h, (size_t)N * sizeof(float));
    for (int k = 0; k < K; k++) {
        feed_until(e, voiceB, &pos, t - K + 2 + k);
        memcpy(xs + (size_t)k * F, e->xn, (size_t)F * sizeof(float));
        memcpy(bs + (size_t)k * F, e->xg, (size_t)F * sizeof(float));
        memcpy(ss + (size_t)k * F, e->sc, (size_t)F * sizeof(float));
    }
    memcpy(y_eng, e->slots[t % e->n_slots].y, (size_t)O * sizeof(float));
    cbrnn_engine_cmd on = {CBRNN_CMD_LEARN, 1, 0};
    cbrnn_engine_send(e, &on);
    feed_until(e, voiceB, &pos, t + 2);
    memcpy(x_next, e->xg, (size_t)F * sizeof(float)); /* the target: corpus-normalised */

    int err;
    cbrnn_model *ref = cbrnn_model_clone(m, &err);
    ref->frozen[CBRNN_GROUP_CORTEX] = 1;
    ref->frozen[CBRNN_GROUP_READOUT] = 1;
    cbrnn_ws *ws = cbrnn_ws_create(ref, 1, K, &err);
    float *y = calloc((size_t)K * O, sizeof(float)), *dy = calloc((size_t)K * O, sizeof(float));
    float *grad = calloc(ref->n_params, sizeof(float));
    assert_int_equal(cbrnn_forward(ws, y, NULL, ref, xs, h0, 1, K), 0);
    cbrnn_model_output(ref, y, bs, ss, F, K);
    double want_y[CBRNN_MAX_CLASSES];
    for (int i = 0; i < O; i++)
        want_y[i] = y[(size_t)(K - 1) * O + i];
    if (check_close(what, "prediction y_t", want_y, y_eng, O, 1e-4))
        fail();
    cbrnn_loss_mse(dy + (size_t)(K - 1) * O, y + (size_t)(K - 1) * O, x_next, 1, O);
    cbrnn_model_output_backward(ref, dy, ss, F, K);
    assert_int_equal(cbrnn_backward(ws, grad, ref, dy, 1, K), 0);
    double *want = malloc(e->head_n * sizeof(double));
    for (size_t i = 0; i < e->head_n; i++)
        want[i] = grad[e->head_off + i];
    if (check_close(what, "cerebellum gradient", want, e->vel, e->head_n, 1e-4))
        fail();
    free(want);
    free(grad);
    free(y);
    free(dy);
    cbrnn_ws_destroy(ws);
    cbrnn_model_destroy(ref);
    free(h0);
    free(xs);
    free(bs);
    free(ss);
    free(x_next);
    free(y_eng);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
}

/* A residual model behind the running normaliser, frozen: the engine's
 * per-frame outputs over a clip fed in random blocks equal the offline
 * path's (front end, cbrnn_model_normalise_seq, cbrnn_eval_seq), the one
 * cbrnn train and cbrnn eval use. Then its online gradient against the
 * batch reference, as for the plain models. */
static void residual_stream_norm_live_equals_offline(void **state)
{
    (void)state;
    for (int w = 0; w < 2; w++) {
        cbrnn_model *m = tu_model(w, CBRNN_TARGET_PREDICT, 24, 40, 29, voiceA, nA, rateB);
        m->cfg.residual = 1;
        m->stream_norm_s = 0.5f;
        cbrnn_engine *e = make_engine(m, rateB, 0, 1.0f, 0.0f, 1);
        const int F = m->cfg.n_in, O = m->cfg.n_out;
        struct tu_run r = {0};
        tu_run(e, voiceB, NULL, nB, 0, &r);
        cbrnn_feat_config fc;
        cbrnn_model_feat_config(m, rateB, &fc);
        int err;
        cbrnn_feat *f = cbrnn_feat_create(&fc, &err);
        float *x = malloc((size_t)(r.n_rec + 1) * F * sizeof(float));
        long T = 0;
        for (long pos = 0; pos < nB && T <= r.n_rec;) {
            int used;
            if (cbrnn_feat_push(f, x + (size_t)T * F, voiceB + pos,
                                (int)(nB - pos > 4096 ? 4096 : nB - pos), &used) == 1)
                T++;
            pos += used;
        }
        assert_int_equal(T, r.n_rec);
        cbrnn_model_normalise_seq(m, x, T);
        float *z = malloc((size_t)T * F * sizeof(float)), *sc = malloc((size_t)T * F * sizeof(float));
        assert_int_equal(cbrnn_model_stream_seq(m, x, z, sc, T), 0);
        float *y = malloc((size_t)T * O * sizeof(float));
        cbrnn_seq sq = {.x = z, .base = x, .scale = sc, .T = (int)T};
        cbrnn_eval_sums acc = {0, 0, 0, 0};
        assert_int_equal(cbrnn_eval_seq(m, &sq, y, &acc), 0);
        double *want = malloc((size_t)T * O * sizeof(double));
        for (size_t i = 0; i < (size_t)T * O; i++)
            want[i] = y[i];
        if (check_close(w ? "residual loop" : "residual readout", "frozen outputs", want, r.y,
                        (size_t)T * O, 1e-4))
            fail();
        free(want);
        free(y);
        free(x);
        free(z);
        free(sc);
        cbrnn_feat_destroy(f);
        tu_run_free(&r);
        cbrnn_engine_destroy(e);
        cbrnn_model_destroy(m);
    }
}

static void gradient_readout(void **state) { gradient_vs_batch(CBRNN_WIRING_READOUT, 1, "readout"); }
static void gradient_residual(void **state)
{
    gradient_vs_batch(CBRNN_WIRING_READOUT, 1, "readout residual");
    gradient_vs_batch(CBRNN_WIRING_LOOP, 2, "loop K=2 residual");
}
static void gradient_loop_k1(void **state) { gradient_vs_batch(CBRNN_WIRING_LOOP, 1, "loop K=1"); }
static void gradient_loop_k3(void **state) { gradient_vs_batch(CBRNN_WIRING_LOOP, 3, "loop K=3"); }

/* Readout wiring: the loss of y = CB(h_t) against x_{t+1} in double
 * precision, as a function of the CB weights; central differences on a
 * spread of weights against the engine's gradient. */
static double cb_loss_double(const cbrnn_engine *e, const double *w, const float *h,
                             const float *target)
{
    double a[2][1024];
    const double *in = NULL;
    double h_d[1024];
    for (int i = 0; i < e->dim[0]; i++)
        h_d[i] = h[i];
    in = h_d;
    for (int l = 0; l < e->L; l++) {
        const double *W = w + (e->w[l] - e->w[0]);
        const double *B = w + (e->b[l] - e->w[0]);
        double *out = a[l & 1];
        for (int o = 0; o < e->dim[l + 1]; o++) {
            double s = B[o];
            for (int i = 0; i < e->dim[l]; i++)
                s += W[(size_t)o * e->dim[l] + i] * in[i];
            out[o] = (l < e->L - 1 && s < 0) ? 0 : s;
        }
        in = out;
    }
    double loss = 0;
    for (int o = 0; o < e->O; o++)
        loss += (in[o] - target[o]) * (in[o] - target[o]);
    return loss / e->O;
}

static void gradient_finite_difference(void **state)
{
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 24, 40, 17, voiceA, nA,
                              rateB);
    cbrnn_engine *e = make_engine(m, rateB, 0, 1.0f, 0.0f, 1);
    const int N = m->cfg.n_hidden, F = m->cfg.n_in;
    long pos = 0;
    feed_until(e, voiceB, &pos, 31);
    float *h = malloc((size_t)N * sizeof(float)), *target = malloc((size_t)F * sizeof(float));
    memcpy(h, e->h, (size_t)N * sizeof(float));
    double *w = malloc(e->head_n * sizeof(double));
    for (size_t i = 0; i < e->head_n; i++)
        w[i] = m->params[e->head_off + i];
    cbrnn_engine_cmd on = {CBRNN_CMD_LEARN, 1, 0};
    cbrnn_engine_send(e, &on);
    feed_until(e, voiceB, &pos, 32);
    memcpy(target, e->xn, (size_t)F * sizeof(float));
    int checked = 0;
    for (size_t i = 0; i < e->head_n; i += e->head_n / 97 + 1) {
        const double eps = 1e-4;
        double keep = w[i];
        w[i] = keep + eps;
        double lp = cb_loss_double(e, w, h, target);
        w[i] = keep - eps;
        double lm = cb_loss_double(e, w, h, target);
        w[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        double lim = 1e-3 * fmax(fabs(fd), 1e-4);
        if (!(fabs(e->vel[i] - fd) <= lim))
            fail_msg("finite difference: head parameter %zu: expected %.9g, got %.9g", i, fd,
                     e->vel[i]);
        checked++;
    }
    assert_true(checked >= 90);
    free(w);
    free(h);
    free(target);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
}

static void several_markers_in_one_frame(void **state)
{
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 16, 24, 19, voiceA, nA,
                              rateB);
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, rateB);
    int err;
    cbrnn_engine *e = cbrnn_engine_create(m, &c, &err);
    assert_non_null(e);
    const int hop = cbrnn_engine_hop(e);
    cbrnn_engine_process(e, NULL, 0, voiceB, NULL, cbrnn_engine_win(e));
    long pos = cbrnn_engine_win(e);
    cbrnn_record r;
    cbrnn_event ev;
    cbrnn_engine_cmd cmd;
    assert_int_equal(cbrnn_engine_read_record(e, &r, NULL), 1);
    /* Several markers before one frame: all kept, in order. */
    for (int i = 0; i < 4; i++) {
        cmd = (cbrnn_engine_cmd){CBRNN_CMD_MARK, 100 + i, 0};
        assert_int_equal(cbrnn_engine_send(e, &cmd), 0);
    }
    cbrnn_engine_process(e, NULL, 0, voiceB + pos, NULL, hop);
    pos += hop;
    assert_int_equal(cbrnn_engine_read_record(e, &r, NULL), 1);
    assert_int_equal(r.n_markers, 4);
    assert_int_equal(r.marker, 100);
    assert_int_equal(r.markers[3], 103);
    char row[512];
    cbrnn_record_csv_row(row, sizeof row, &r);
    assert_non_null(strstr(row, ",100;101;102;103,"));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cbrnn_engine_read_event(e, &ev), 1);
        assert_true(ev.frame == 1 && ev.cmd.kind == CBRNN_CMD_MARK && ev.cmd.i == 100 + i);
    }
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
}


static void commands_and_queues(void **state)
{
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 16, 24, 19, voiceA, nA,
                              rateB);
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, rateB);
    c.learn = 1;
    c.record_capacity = 64;
    c.command_capacity = 8;
    int err;
    cbrnn_engine *e = cbrnn_engine_create(m, &c, &err);
    assert_non_null(e);
    const int hop = cbrnn_engine_hop(e);
    assert_int_equal(hop, 221); /* 10 ms at 22.05 kHz, rounded */
    assert_int_equal(cbrnn_engine_win(e), 551);
    assert_int_equal(cbrnn_engine_n_outputs(e), 1 + m->cfg.n_out);
    assert_int_equal(cbrnn_engine_feat_dim(e), 40);

    cbrnn_record r;
    long pos = 0;
    /* frames 0..9 */
    cbrnn_engine_process(e, NULL, 0, voiceB, NULL, 551 + 9 * hop);
    pos = 551 + 9 * hop;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(cbrnn_engine_read_record(e, &r, NULL), 1);
        assert_int_equal(r.frame, i);
        assert_true(fabs(r.time - (i * hop + 550) / rateB) < 1e-12);
        assert_int_equal(r.marker, -1);
        assert_int_equal(r.learning, 1);
        if (i == 0)
            assert_true(isnan(r.loss) && isnan(r.surprise));
        else
            assert_true(isfinite(r.loss) && isfinite(r.persistence_loss) && r.surprise > 0);
    }
    assert_int_equal(cbrnn_engine_read_record(e, &r, NULL), 0);

    /* A marker lands on the next frame only; lr and learn show in records. */
    cbrnn_engine_cmd cmd = {CBRNN_CMD_MARK, 42, 0};
    assert_int_equal(cbrnn_engine_send(e, &cmd), 0);
    cmd = (cbrnn_engine_cmd){CBRNN_CMD_LR, 0, 0.5e-3f};
    assert_int_equal(cbrnn_engine_send(e, &cmd), 0);
    cmd = (cbrnn_engine_cmd){CBRNN_CMD_LEARN, 0, 0};
    assert_int_equal(cbrnn_engine_send(e, &cmd), 0);
    cbrnn_engine_process(e, NULL, 0, voiceB + pos, NULL, 2 * hop);
    pos += 2 * hop;
    assert_int_equal(cbrnn_engine_read_record(e, &r, NULL), 1);
    assert_int_equal(r.marker, 42);
    assert_int_equal(r.learning, 0);
    assert_true(r.lr == 0.5e-3f);
    assert_int_equal(cbrnn_engine_read_record(e, &r, NULL), 1);
    assert_int_equal(r.marker, -1);

    /* Every applied command is reported with the frame it preceded
     * (frame 10: the one after the ten above), in order, and reads back
     * from its CSV row to the same bits. */
    static const int kinds[] = {CBRNN_CMD_MARK, CBRNN_CMD_LR, CBRNN_CMD_LEARN};
    cbrnn_event ev, back;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cbrnn_engine_read_event(e, &ev), 1);
        assert_int_equal(ev.frame, 10);
        assert_int_equal(ev.cmd.kind, kinds[i]);
        char row[128];
        cbrnn_event_csv_row(row, sizeof row, &ev);
        assert_int_equal(cbrnn_event_csv_parse(&back, row), 1);
        assert_true(back.frame == ev.frame && back.cmd.kind == ev.cmd.kind &&
                    back.cmd.i == ev.cmd.i && back.cmd.f == ev.cmd.f);
    }
    assert_int_equal(cbrnn_engine_read_event(e, &ev), 0);
    assert_int_equal(cbrnn_event_csv_parse(&back, "frame,event,value\n"), 0);
    assert_int_equal(cbrnn_event_csv_parse(&back, "12,lr,abc\n"), CBRNN_ERR_FORMAT);
    assert_int_equal(cbrnn_event_csv_parse(&back, "12,jump,1\n"), CBRNN_ERR_FORMAT);
    /* Subnormal values (strtof sets ERANGE for them) read back to the
     * bits written: a live run with --lr 1e-40 replays. Overflow does not. */
    static const float tiny[] = {1e-40f, 1e-42f, 1e-39f, -1e-41f, 1.4e-45f};
    static const int tiny_kinds[] = {CBRNN_CMD_LR, CBRNN_CMD_DECAY, CBRNN_CMD_MOMENTUM,
                                     CBRNN_CMD_GATE, CBRNN_CMD_DELAY};
    for (int i = 0; i < 5; i++) {
        char row[128];
        cbrnn_event t = {3, {tiny_kinds[i], 0, tiny[i]}};
        cbrnn_event_csv_row(row, sizeof row, &t);
        assert_int_equal(cbrnn_event_csv_parse(&back, row), 1);
        assert_true(back.cmd.kind == tiny_kinds[i] && back.cmd.f == tiny[i]);
    }
    assert_int_equal(cbrnn_event_csv_parse(&back, "0,delay,1e-41:20\n"), 1);
    assert_int_equal(back.cmd.i, 20);
    assert_int_equal(cbrnn_event_csv_parse(&back, "0,lr,1e39\n"), CBRNN_ERR_FORMAT);
    assert_int_equal(cbrnn_event_csv_parse(&back, "0,lr,1e-999\n"), 1);
    assert_true(back.cmd.f == 0.0f);

    /* Snapshot = the weights at that moment; reset = the loaded weights. */
    cbrnn_model *snap = cbrnn_model_clone(m, &err), *now = cbrnn_model_clone(m, &err);
    cmd = (cbrnn_engine_cmd){CBRNN_CMD_SNAPSHOT, 7, 0};
    assert_int_equal(cbrnn_engine_send(e, &cmd), 0);
    cbrnn_engine_process(e, NULL, 0, voiceB + pos, NULL, 0);
    int id = -1;
    int64_t at = -1;
    assert_int_equal(cbrnn_engine_take_snapshot(e, snap, &id, &at), 1);
    assert_int_equal(id, 7);
    assert_int_equal(at, 12);
    cbrnn_engine_copy_params(e, now);
    assert_memory_equal(snap->params, now->params, m->n_params * sizeof(float));
    assert_memory_not_equal(now->params, m->params, m->n_params * sizeof(float)); /* it learned */
    assert_int_equal(cbrnn_engine_take_snapshot(e, snap, &id, &at), 0);
    /* Three requests, two slots: the third is dropped and counted. */
    cmd = (cbrnn_engine_cmd){CBRNN_CMD_SNAPSHOT, 1, 0};
    for (int i = 0; i < 3; i++)
        cbrnn_engine_send(e, &cmd);
    cbrnn_engine_process(e, NULL, 0, voiceB + pos, NULL, 0);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(e, &st);
    assert_int_equal(st.dropped_snapshots, 1);
    assert_int_equal(cbrnn_engine_take_snapshot(e, snap, &id, &at), 1);
    assert_int_equal(cbrnn_engine_take_snapshot(e, snap, &id, &at), 1);
    assert_int_equal(cbrnn_engine_take_snapshot(e, snap, &id, &at), 0);

    cmd = (cbrnn_engine_cmd){CBRNN_CMD_RESET, 0, 0};
    cbrnn_engine_send(e, &cmd);
    cbrnn_engine_process(e, NULL, 0, voiceB + pos, NULL, hop);
    pos += hop;
    cbrnn_engine_copy_params(e, now);
    assert_memory_equal(now->params, m->params, m->n_params * sizeof(float));
    assert_int_equal(cbrnn_engine_read_record(e, &r, NULL), 1);
    assert_true(r.flags & CBRNN_REC_RESET);

    /* Bad commands are refused; a full command ring refuses and counts. */
    cmd = (cbrnn_engine_cmd){CBRNN_CMD_LR, 0, NAN};
    assert_int_equal(cbrnn_engine_send(e, &cmd), CBRNN_ERR_ARG);
    cmd = (cbrnn_engine_cmd){CBRNN_CMD_MOMENTUM, 0, 1.0f};
    assert_int_equal(cbrnn_engine_send(e, &cmd), CBRNN_ERR_ARG);
    cmd = (cbrnn_engine_cmd){99, 0, 0};
    assert_int_equal(cbrnn_engine_send(e, &cmd), CBRNN_ERR_ARG);
    cmd = (cbrnn_engine_cmd){CBRNN_CMD_MARK, 1, 0};
    int refused = 0;
    for (int i = 0; i < 20; i++)
        refused += cbrnn_engine_send(e, &cmd) == CBRNN_ERR_FULL;
    assert_int_equal(refused, 20 - 8);
    cbrnn_engine_get_stats(e, &st);
    assert_int_equal(st.dropped_commands, 12);

    /* A record ring nobody drains drops and counts, never blocks. */
    cbrnn_engine_process(e, NULL, 0, voiceB + pos, NULL, 100 * hop);
    cbrnn_engine_get_stats(e, &st);
    assert_int_equal(st.dropped_records, 100 - 64);

    /* Stream reset: frame numbering starts again. */
    while (cbrnn_engine_read_record(e, &r, NULL))
        ;
    cbrnn_engine_reset_stream(e);
    cbrnn_engine_process(e, NULL, 0, voiceB, NULL, 551);
    assert_int_equal(cbrnn_engine_read_record(e, &r, NULL), 1);
    assert_int_equal(r.frame, 0);

    /* Bad arguments. */
    float buf[4];
    float *outs[1] = {buf};
    assert_int_equal(cbrnn_engine_process(e, outs, 2 + m->cfg.n_out, voiceB, NULL, 4),
                     CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_engine_process(e, outs, 1, NULL, NULL, 4), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_engine_process(e, outs, 1, voiceB, NULL, -1), CBRNN_ERR_ARG);
    cbrnn_model_destroy(snap);
    cbrnn_model_destroy(now);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
}

/* An RLS engine from m, learning; prior 0: the model's (its saved state
 * if it has one). */
static cbrnn_engine *rls_engine(const cbrnn_model *m, float prior)
{
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, rateB);
    c.learn = 1;
    c.rule = CBRNN_RULE_RLS;
    c.rls_prior = prior;
    int err;
    cbrnn_engine *e = cbrnn_engine_create(m, &c, &err);
    if (!e)
        fail_msg("rls engine: %s", cbrnn_strerror(err));
    return e;
}

/* m's RLS state P is n x n, symmetric, and differs from I / prior
 * (learned) or equals it. */
static void check_P(const cbrnn_model *m, int n, double prior, int learned)
{
    assert_non_null(m->rls_P);
    assert_int_equal(m->rls_n, n);
    int is_prior = 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            const float v = m->rls_P[i * n + j];
            assert_true(v == m->rls_P[j * n + i]);
            is_prior &= v == (i == j ? (float)(1.0 / prior) : 0.0f);
        }
    assert_int_equal(is_prior, !learned);
}

/* The RLS rule's state goes out with the weights (snapshots taken on the
 * audio thread, copy_params), an engine from such a model begins from it
 * (reset returns to it), an explicit prior begins afresh, and SGD hands
 * out no state. */
static void rls_state_goes_with_the_weights(void **state)
{
    (void)state;
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 16, 24, 23, voiceA, nA,
                              rateB);
    const int n = 25, hop = 221;
    assert_int_equal(cbrnn_model_rls_dim(m), n);
    assert_null(m->rls_P);
    cbrnn_engine *e = rls_engine(m, 0);
    cbrnn_engine_process(e, NULL, 0, voiceB, NULL, 551 + 200 * hop);
    cbrnn_engine_cmd cmd = {CBRNN_CMD_SNAPSHOT, 1, 0};
    assert_int_equal(cbrnn_engine_send(e, &cmd), 0);
    cbrnn_engine_process(e, NULL, 0, voiceB, NULL, 0);
    int err;
    cbrnn_model *snap = cbrnn_model_clone(m, &err), *now = cbrnn_model_clone(m, &err);
    assert_int_equal(cbrnn_engine_take_snapshot(e, snap, NULL, NULL), 1);
    check_P(snap, n, m->rls_prior, 1);
    cbrnn_engine_copy_params(e, now);
    assert_memory_equal(now->rls_P, snap->rls_P, (size_t)n * n * sizeof(float));
    cbrnn_engine_rule_info info;
    cbrnn_engine_get_rule(e, &info);
    assert_int_equal(info.rls_saved, 0);

    /* From the adapted model: its state, also after a reset. */
    cbrnn_engine *e2 = rls_engine(snap, 0);
    cbrnn_engine_get_rule(e2, &info);
    assert_int_equal(info.rls_saved, 1);
    cbrnn_engine_copy_params(e2, now);
    assert_memory_equal(now->rls_P, snap->rls_P, (size_t)n * n * sizeof(float));
    assert_memory_equal(now->params, snap->params, m->n_params * sizeof(float));
    cbrnn_engine_process(e2, NULL, 0, voiceB + 300 * hop, NULL, 551 + 50 * hop);
    cbrnn_engine_copy_params(e2, now);
    assert_memory_not_equal(now->rls_P, snap->rls_P, (size_t)n * n * sizeof(float));
    cmd = (cbrnn_engine_cmd){CBRNN_CMD_RESET, 0, 0};
    cbrnn_engine_send(e2, &cmd);
    cbrnn_engine_process(e2, NULL, 0, voiceB, NULL, 0);
    cbrnn_engine_copy_params(e2, now);
    assert_memory_equal(now->rls_P, snap->rls_P, (size_t)n * n * sizeof(float));

    /* An explicit prior: a fresh start from it. */
    cbrnn_engine *e3 = rls_engine(snap, 20.0f);
    cbrnn_engine_get_rule(e3, &info);
    assert_int_equal(info.rls_saved, 0);
    cbrnn_engine_copy_params(e3, now);
    check_P(now, n, 20.0, 0);

    /* SGD moves the weights away from any saved state: none goes out. */
    cbrnn_engine *e4 = make_engine(snap, rateB, 1, 1e-3f, 0.9f, 1);
    cbrnn_engine_copy_params(e4, now);
    assert_null(now->rls_P);

    cbrnn_engine_destroy(e4);
    cbrnn_engine_destroy(e3);
    cbrnn_engine_destroy(e2);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(snap);
    cbrnn_model_destroy(now);
    cbrnn_model_destroy(m);
}

/* Resets between two frames: only the first does the work (a burst of
 * /cbrnn/reset once held the audio thread past its period). What that
 * must not change: each is reported, in order with the commands between
 * them, and they leave what one reset leaves, the loaded weights and RLS
 * state; a reset after frames works again. */
static void a_run_of_resets_is_one(void **state)
{
    (void)state;
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 16, 24, 23, voiceA, nA,
                              rateB);
    const int n = 25, hop = 221;
    cbrnn_engine *e = rls_engine(m, 0);
    int err;
    cbrnn_model *now = cbrnn_model_clone(m, &err);
    for (int round = 0; round < 2; round++) {
        cbrnn_engine_process(e, NULL, 0, voiceB + round * 100 * hop, NULL, 551 + 60 * hop);
        cbrnn_engine_copy_params(e, now);
        assert_memory_not_equal(now->params, m->params, m->n_params * sizeof(float));
        cbrnn_event ev;
        while (cbrnn_engine_read_event(e, &ev) == 1)
            ;
        const int kinds[] = {CBRNN_CMD_RESET, CBRNN_CMD_RESET, CBRNN_CMD_LEARN, CBRNN_CMD_RESET};
        for (int k = 0; k < 4; k++) {
            cbrnn_engine_cmd c = {kinds[k], kinds[k] == CBRNN_CMD_LEARN, 0};
            assert_int_equal(cbrnn_engine_send(e, &c), 0);
        }
        cbrnn_engine_process(e, NULL, 0, voiceB, NULL, 0); /* applied, no frame */
        cbrnn_engine_copy_params(e, now);
        assert_memory_equal(now->params, m->params, m->n_params * sizeof(float));
        check_P(now, n, m->rls_prior, 0);
        for (int k = 0; k < 4; k++) {
            assert_int_equal(cbrnn_engine_read_event(e, &ev), 1);
            assert_int_equal(ev.cmd.kind, kinds[k]);
        }
    }
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(now);
    cbrnn_model_destroy(m);
}

static void create_refuses_bad_input(void **state)
{
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 16, 24, 19, voiceA, nA,
                              rateA);
    cbrnn_engine_config c;
    int err = 0;
    cbrnn_engine_config_default(&c, 4000.0);
    assert_null(cbrnn_engine_create(m, &c, &err));
    assert_int_equal(err, CBRNN_ERR_RATE);
    cbrnn_engine_config_default(&c, 48000.0);
    c.momentum = 1.5f;
    assert_null(cbrnn_engine_create(m, &c, &err));
    assert_int_equal(err, CBRNN_ERR_ARG);
    assert_null(cbrnn_engine_create(NULL, &c, &err));
    /* Surprise's floor must be > 0 and finite, its maximum >= 1 and finite. */
    static const float bad_floor[] = {0.0f, -0.01f, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad_floor / sizeof bad_floor[0]; i++) {
        cbrnn_engine_config_default(&c, 48000.0);
        c.surprise_floor = bad_floor[i];
        if (cbrnn_engine_create(m, &c, &err) || err != CBRNN_ERR_ARG)
            fail_msg("surprise_floor %g: expected CBRNN_ERR_ARG, got %d", (double)bad_floor[i], err);
    }
    static const float bad_max[] = {0.5f, 0.0f, -1.0f, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad_max / sizeof bad_max[0]; i++) {
        cbrnn_engine_config_default(&c, 48000.0);
        c.surprise_max = bad_max[i];
        if (cbrnn_engine_create(m, &c, &err) || err != CBRNN_ERR_ARG)
            fail_msg("surprise_max %g: expected CBRNN_ERR_ARG, got %d", (double)bad_max[i], err);
    }
    /* Any rate: at 48 kHz the hop is 480 samples, the window 1200. */
    cbrnn_engine_config_default(&c, 48000.0);
    cbrnn_engine *e = cbrnn_engine_create(m, &c, &err);
    assert_non_null(e);
    assert_int_equal(cbrnn_engine_hop(e), 480);
    assert_int_equal(cbrnn_engine_win(e), 1200);
    assert_int_equal(cbrnn_engine_latency(e), 599);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
}

/* Surprise is what the header defines: min(max, (loss + f) / (mean + f))
 * against the running mean of the losses before it, recomputed here from
 * the records' losses (voice B, learning on); the audio output carries the
 * same value; and a small maximum clamps. */
static void surprise_definition(void **state)
{
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_PREDICT, 32, 48, 5, voiceA, nA,
                              rateA);
    for (int pass = 0; pass < 2; pass++) {
        cbrnn_engine_config c;
        cbrnn_engine_config_default(&c, rateB);
        if (pass == 0 && !(c.surprise_floor == 0.01f && c.surprise_max == 1000.0f &&
                           c.surprise_frames == 100))
            fail_msg("surprise defaults: floor %g, max %g, frames %d; the header says 0.01, "
                     "1000, 100", (double)c.surprise_floor, (double)c.surprise_max,
                     c.surprise_frames);
        c.learn = 1;
        c.record_capacity = 1 << 14;
        c.surprise_max = pass ? 1.5f : c.surprise_max;
        cbrnn_engine *e = cbrnn_engine_create(m, &c, NULL);
        assert_non_null(e);
        long n = nB < 10 * 22050 ? nB : 10 * 22050;
        struct tu_run r;
        tu_run(e, voiceB, NULL, n, 512, &r);
        assert_true(r.n_rec > 900);
        double mean = NAN;
        long clamped = 0;
        for (long i = 0; i < r.n_rec; i++) {
            const cbrnn_record *q = &r.rec[i];
            if (!isfinite(q->loss)) {
                assert_true(isnan(q->surprise));
                continue;
            }
            if (isnan(mean))
                mean = q->loss;
            double want = ((double)q->loss + c.surprise_floor) / (mean + c.surprise_floor);
            if (want >= c.surprise_max) {
                want = c.surprise_max;
                clamped++;
            }
            if (!(fabs(want - q->surprise) <= 1e-4 * want))
                fail_msg("frame %ld: surprise %.7g, expected %.7g (loss %.7g, mean %.7g)", i,
                         (double)q->surprise, want, (double)q->loss, mean);
            if (!(q->surprise > 0 && q->surprise <= c.surprise_max))
                fail_msg("frame %ld: surprise %g outside (0, %g]", i, (double)q->surprise,
                         (double)c.surprise_max);
            mean += ((double)q->loss - mean) / c.surprise_frames;
        }
        if (pass == 1 && clamped < 10)
            fail_msg("surprise_max 1.5: only %ld frames clamped; expected many", clamped);
        /* The audio output holds the last frame's surprise. */
        const cbrnn_record *last = &r.rec[r.n_rec - 1];
        if (memcmp(&r.out0[n - 1], &last->surprise, sizeof(float)))
            fail_msg("audio surprise %.9g, last record %.9g", (double)r.out0[n - 1],
                     (double)last->surprise);
        tu_run_free(&r);
        cbrnn_engine_destroy(e);
    }
    cbrnn_model_destroy(m);
}

/* Classify: posteriors sum to one, and learning a held label raises its
 * posterior. */
static void classify_learns_label(void **state)
{
    cbrnn_model *m = tu_model(CBRNN_WIRING_READOUT, CBRNN_TARGET_CLASSIFY, 16, 24, 23, voiceA, nA,
                              rateB);
    cbrnn_engine *e = make_engine(m, rateB, 1, 1e-2f, 0.9f, 1);
    cbrnn_engine_set_label(e, 2);
    struct tu_run r;
    tu_run(e, voiceB, NULL, 4 * 22050, 300, &r);
    for (long i = 0; i < r.n_rec; i++) {
        double s = 0;
        for (int k = 0; k < 3; k++)
            s += r.y[i * 3 + k];
        if (fabs(s - 1.0) > 1e-5)
            fail_msg("classify: posteriors of frame %ld sum to %.9g", i, s);
        assert_int_equal(r.rec[i].label, 2);
    }
    double first = r.y[0 * 3 + 2], last = r.y[(r.n_rec - 1) * 3 + 2];
    if (!(last > 0.9 && last > first))
        fail_msg("classify: posterior of the held label went from %.4f to %.4f", first, last);
    tu_run_free(&r);
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_refuses_bad_input),
        cmocka_unit_test(commands_and_queues),
        cmocka_unit_test(rls_state_goes_with_the_weights),
        cmocka_unit_test(a_run_of_resets_is_one),
        cmocka_unit_test(several_markers_in_one_frame),
        cmocka_unit_test(gradient_readout),
        cmocka_unit_test(residual_stream_norm_live_equals_offline),
        cmocka_unit_test(gradient_residual),
        cmocka_unit_test(gradient_loop_k1),
        cmocka_unit_test(gradient_loop_k3),
        cmocka_unit_test(gradient_finite_difference),
        cmocka_unit_test(block_invariance_readout),
        cmocka_unit_test(block_invariance_loop),
        cmocka_unit_test(block_invariance_map),
        cmocka_unit_test(block_invariance_classify),
        cmocka_unit_test(learning_off_keeps_weights),
        cmocka_unit_test(frozen_head_never_learns),
        cmocka_unit_test(learning_lowers_loss),
        cmocka_unit_test(nonfinite_input_is_survived),
        cmocka_unit_test(divergence_restores),
        cmocka_unit_test(classify_learns_label),
        cmocka_unit_test(surprise_definition),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
