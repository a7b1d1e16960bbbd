/* test_paper_torch.c: PyTorch parity of the paper's training step. For each
 * case cbrnn takes two SGD steps (Nesterov momentum 0.1, lr 0.01, clipping
 * at 7.5, cross-entropy on the last step) from its own initial weights on
 * its own batches; the weights before and after (safetensors), the
 * batches and initial states (.npy) and the losses go to a folder, and
 * bench/paper_torch_model.py replays the steps in float64 PyTorch (the
 * authors' time-loop model) and compares losses and updated weights
 * (1e-5 relative). Cases: CB-RNN and RNN on parity, the multitask heads,
 * the frozen variant's two phases (CB frozen in the loop; core frozen), and
 * a case whose gradient norm exceeds the clipping threshold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cbrnn/cbrnn_experiment.h"
#include "util_npy.h"

#ifndef CBRNN_SOURCE_DIR
#error "CBRNN_SOURCE_DIR must name the source tree (set by tests/paper/CMakeLists.txt)"
#endif
#ifndef CBRNN_PYTHON
#define CBRNN_PYTHON "/usr/bin/python3"
#endif

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cbrnn_paper_torch_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct tcase {
    const char *name;
    int task, variant;
    int freeze_cb, freeze_core; /* frozen groups during the steps */
    float scale_whh;            /* > 0: W_hh scaled, to make gradients large */
    int expect_clipped;
} tcase;

static void write_npy(const char *dir, const char *name, const float *d, long rows, int cols)
{
    char path[600], msg[512]; /* dir (512) + "/" + name */
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (npy_write(path, d, rows, cols, msg, sizeof msg))
        fail_msg("%s", msg);
}

static void run_case(const tcase *tc)
{
    const int B = 64, N = 5, STEPS = 2;
    char dir[512], path[600], msg[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, tc->name);
    assert_int_equal(mkdir(dir, 0777), 0);
    cbrnn_paper_config c;
    cbrnn_paper_config_default(&c, tc->task, tc->variant);
    c.seed = 17;
    int err = 0;
    cbrnn_paper_run *run = cbrnn_paper_run_create(&c, &err);
    assert_non_null(run);
    cbrnn_model *m = cbrnn_paper_run_model(run);
    m->frozen[CBRNN_GROUP_CORTEX] = tc->freeze_core;
    m->frozen[CBRNN_GROUP_CEREBELLUM] = tc->freeze_cb;
    m->frozen[CBRNN_GROUP_READOUT] = 0;
    if (tc->scale_whh > 0)
        for (int i = 0; i < m->cfg.n_hidden * m->cfg.n_hidden; i++)
            m->w_hh[i] *= tc->scale_whh;
    snprintf(path, sizeof path, "%s/init.safetensors", dir);
    if (cbrnn_model_save(m, path, msg, sizeof msg))
        fail_msg("%s", msg);
    const int F = cbrnn_task_n_in(tc->task), Hd = cbrnn_task_n_heads(tc->task),
              H = m->cfg.n_hidden;
    float *x = malloc((size_t)B * (4 * N + 2) * F * sizeof *x);
    float *h0 = malloc((size_t)B * H * sizeof *h0);
    int *labels = malloc((size_t)B * Hd * sizeof *labels);
    float *flab = malloc((size_t)B * Hd * sizeof *flab);
    assert_true(x && h0 && labels && flab);
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 23);
    snprintf(path, sizeof path, "%s/case.json", dir);
    FILE *js = fopen(path, "w");
    assert_non_null(js);
    fprintf(js, "{\"init\": \"init.safetensors\", \"after\": \"after.safetensors\",\n"
                " \"expect_clipped\": %s, \"frozen\": [%s%s%s],\n \"steps\": [",
            tc->expect_clipped ? "true" : "false", tc->freeze_core ? "\"cortex\"" : "",
            tc->freeze_core && tc->freeze_cb ? ", " : "", tc->freeze_cb ? "\"cerebellum\"" : "");
    for (int s = 0; s < STEPS; s++) {
        int M = cbrnn_task_draw_len(&r, N);
        assert_int_equal(cbrnn_task_batch(x, labels, &r, tc->task, N, B, M), 0);
        cbrnn_task_h0(h0, &r, B, H, CBRNN_PAPER_H0_SCALE);
        for (int i = 0; i < B * Hd; i++)
            flab[i] = (float)labels[i];
        char xn[32], ln[32], hn[32];
        snprintf(xn, sizeof xn, "x%d.npy", s);
        snprintf(ln, sizeof ln, "labels%d.npy", s);
        snprintf(hn, sizeof hn, "h0_%d.npy", s);
        write_npy(dir, xn, x, B, M * F);
        write_npy(dir, ln, flab, B, Hd);
        write_npy(dir, hn, h0, B, H);
        float loss = 0;
        err = cbrnn_paper_run_train_batch(run, x, labels, h0, B, M, &loss);
        if (err)
            fail_msg("%s step %d: %s", tc->name, s, cbrnn_strerror(err));
        fprintf(js, "%s\n  {\"x\": \"%s\", \"labels\": \"%s\", \"h0\": \"%s\", \"M\": %d, "
                    "\"loss\": %.9g}", s ? "," : "", xn, ln, hn, M, loss);
    }
    fprintf(js, "]}\n");
    assert_int_equal(fclose(js), 0);
    snprintf(path, sizeof path, "%s/after.safetensors", dir);
    if (cbrnn_model_save(m, path, msg, sizeof msg))
        fail_msg("%s", msg);
    free(x);
    free(h0);
    free(labels);
    free(flab);
    cbrnn_paper_run_destroy(run);

    fflush(NULL);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        char cj[600];
        snprintf(cj, sizeof cj, "%s/case.json", dir);
        execl(CBRNN_PYTHON, CBRNN_PYTHON, CBRNN_SOURCE_DIR "/bench/paper_torch_model.py", "--check",
              cj, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_true(waitpid(p, &status, 0) == p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("case %s: bench/paper_torch_model.py --check: %s %d (see its output above)",
                 tc->name, WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void test_cbrnn_parity(void **s)
{
    (void)s;
    run_case(&(tcase){"cbrnn_parity", CBRNN_TASK_PARITY, CBRNN_VARIANT_CBRNN, 0, 0, 0, 0});
}
static void test_rnn_parity(void **s)
{
    (void)s;
    run_case(&(tcase){"rnn_parity", CBRNN_TASK_PARITY, CBRNN_VARIANT_RNN, 0, 0, 0, 0});
}
static void test_multitask(void **s)
{
    (void)s;
    run_case(&(tcase){"cbrnn_multitask", CBRNN_TASK_MULTITASK, CBRNN_VARIANT_CBRNN, 0, 0, 0, 0});
}
static void test_frozen_warmup(void **s)
{
    (void)s;
    run_case(&(tcase){"frozen_cb", CBRNN_TASK_DMS, CBRNN_VARIANT_FROZEN, 1, 0, 0, 0});
}
static void test_frozen_core(void **s)
{
    (void)s;
    run_case(&(tcase){"frozen_core", CBRNN_TASK_DMS, CBRNN_VARIANT_FROZEN, 0, 1, 0, 0});
}
static void test_clipped(void **s)
{
    (void)s;
    run_case(&(tcase){"clipped", CBRNN_TASK_PARITY, CBRNN_VARIANT_CBRNN, 0, 0, 6.0f, 1});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cbrnn_parity), cmocka_unit_test(test_rnn_parity),
        cmocka_unit_test(test_multitask),    cmocka_unit_test(test_frozen_warmup),
        cmocka_unit_test(test_frozen_core),  cmocka_unit_test(test_clipped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
