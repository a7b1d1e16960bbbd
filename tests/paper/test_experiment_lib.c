/* test_experiment_lib.c: the experiments module driven from C
 * (cbrnn_experiment.h), as a script or another program would drive it:
 * units named and ordered as documented; states from the results folder
 * (missing, partial, failed with its reason, done); a failure reported
 * through the message callback and kept in failed/; summaries refused
 * while a unit is unfinished, partial ones marked; units run one by one
 * give the same summary bytes as the forked pool; bad configurations
 * refused; and the library writes nothing to stdout or stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cbrnn/cbrnn_experiment.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cbrnn_experiment_lib_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Messages the library sent. */
typedef struct inbox {
    int n;
    char last[2048];
} inbox;

static void collect_message(void *user, const char *text)
{
    inbox *b = user;
    b->n++;
    snprintf(b->last, sizeof b->last, "%s", text);
}

static cbrnn_exp *make(const char *sub, int n_variants, const int *variants, int seeds, int epochs)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    cbrnn_exp_paper_config c;
    cbrnn_exp_paper_config_default(&c, CBRNN_TASK_PARITY);
    c.n_variants = n_variants;
    memcpy(c.variants, variants, (size_t)n_variants * sizeof *variants);
    c.seeds = seeds;
    c.epochs = epochs;
    c.train_steps = 4;
    c.test_batches = 2;
    c.out_dir = dir;
    char msg[1024];
    int err = 0;
    cbrnn_exp *e = cbrnn_exp_paper_create(&c, &err, msg, sizeof msg);
    if (!e)
        fail_msg("cbrnn_exp_paper_create: %s (%s)", msg, cbrnn_strerror(err));
    int rc = cbrnn_exp_prepare(e, msg, sizeof msg);
    if (rc)
        fail_msg("cbrnn_exp_prepare: %s", msg);
    return e;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    return buf;
}

static void same_file(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    if (!x || !y || la != lb || memcmp(x, y, la))
        fail_msg("%s and %s differ (%zu and %zu bytes)", a, b, la, lb);
    free(x);
    free(y);
}

static void test_units_and_states(void **state)
{
    (void)state;
    static const int vs[2] = {CBRNN_VARIANT_RNN, CBRNN_VARIANT_FROZEN};
    cbrnn_exp *e = make("a", 2, vs, 2, 3);
    assert_int_equal(cbrnn_exp_n_units(e), 4);
    static const char *const want[4] = {"rnn-seed0", "frozen-seed0", "rnn-seed1", "frozen-seed1"};
    for (int k = 0; k < 4; k++) {
        char name[64];
        cbrnn_exp_unit_name(e, k, name, sizeof name);
        assert_string_equal(name, want[k]);
        assert_int_equal(cbrnn_exp_unit_state(e, k, NULL, NULL, NULL, 0), CBRNN_EXP_UNIT_MISSING);
    }
    assert_int_equal(cbrnn_exp_unit_state(e, 4, NULL, NULL, NULL, 0), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_exp_run_unit(e, -1, NULL), CBRNN_ERR_ARG);

    inbox box = {0, ""};
    cbrnn_exp_report rep = {&box, collect_message, NULL, NULL};
    assert_int_equal(cbrnn_exp_run_unit(e, 2, &rep), 0);
    long done = 0, total = 0;
    assert_int_equal(cbrnn_exp_unit_state(e, 2, &done, &total, NULL, 0), CBRNN_EXP_UNIT_DONE);
    assert_int_equal(done, 3);
    assert_int_equal(total, 3);

    char msg[1024];
    assert_int_equal(cbrnn_exp_summarise(e, 0, msg, sizeof msg), CBRNN_ERR_IO);
    assert_non_null(strstr(msg, "rnn-seed0.csv"));

    /* a broken curve: the unit fails, says why, and the folder keeps it */
    FILE *f = fopen(cbrnn_exp_unit_curve(e, 1), "w");
    assert_non_null(f);
    fputs("not a curve\n", f);
    fclose(f);
    assert_int_not_equal(cbrnn_exp_run_unit(e, 1, &rep), 0);
    assert_int_equal(box.n, 1);
    assert_non_null(strstr(box.last, "not a curve file"));
    char why[2048];
    assert_int_equal(cbrnn_exp_unit_state(e, 1, NULL, NULL, why, sizeof why),
                     CBRNN_EXP_UNIT_FAILED);
    assert_string_equal(why, box.last);

    /* partial: marked, and only the finished unit counted */
    assert_int_equal(cbrnn_exp_summarise(e, 1, msg, sizeof msg), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/summary.json", cbrnn_exp_out_dir(e));
    size_t len = 0;
    char *js = slurp(path, &len);
    assert_non_null(js);
    js[len < (1 << 20) ? len : len - 1] = 0;
    assert_non_null(strstr(js, "\"partial\": true"));
    assert_non_null(strstr(js, "\"frozen-seed0\""));
    free(js);

    /* repaired: every unit run one by one equals the pool's bytes */
    remove(cbrnn_exp_unit_curve(e, 1));
    for (int k = 0; k < 4; k++)
        assert_int_equal(cbrnn_exp_run_unit(e, k, &rep), 0);
    assert_int_equal(cbrnn_exp_unit_state(e, 1, NULL, NULL, NULL, 0), CBRNN_EXP_UNIT_DONE);
    assert_int_equal(cbrnn_exp_summarise(e, 0, msg, sizeof msg), 0);
    cbrnn_exp *p = make("b", 2, vs, 2, 3);
    assert_int_equal(cbrnn_exp_run_pool(p, 2, &rep), 0);
    assert_int_equal(cbrnn_exp_summarise(p, 0, msg, sizeof msg), 0);
    static const char *const files[] = {"summary.json", "summary.md", "curves/rnn-seed0.csv",
                                        "curves/frozen-seed1.csv"};
    for (int i = 0; i < 4; i++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/%s", cbrnn_exp_out_dir(e), files[i]);
        snprintf(b, sizeof b, "%s/%s", cbrnn_exp_out_dir(p), files[i]);
        same_file(a, b);
    }
    cbrnn_exp_destroy(e);
    cbrnn_exp_destroy(p);
}

/* Misuse of the API: an error, never a crash or an overflow. */
static void test_misuse(void **state)
{
    (void)state;
    char msg[256];
    int err = 0;
    assert_null(cbrnn_exp_paper_create(NULL, &err, msg, sizeof msg));
    assert_int_equal(err, CBRNN_ERR_ARG);
    cbrnn_task_h0(NULL, NULL, 1, 1, 1.0f); /* nothing to do, no crash */
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 1);
    assert_true(cbrnn_task_draw_len(&r, INT_MAX) > 0);
    assert_int_equal(cbrnn_curriculum_next(INT_MAX, 1.0, 0.9, 0), INT_MAX);
    cbrnn_paper_config pc;
    cbrnn_paper_config_default(&pc, CBRNN_TASK_PARITY, CBRNN_VARIANT_RNN);
    cbrnn_paper_run *run = cbrnn_paper_run_create(&pc, &err);
    assert_non_null(run);
    assert_int_equal(cbrnn_paper_run_set_level(run, 100000), CBRNN_ERR_ARG);
    assert_int_equal(cbrnn_paper_run_set_level(run, 10), 0);
    cbrnn_paper_run_destroy(run);
}

static void test_refusals(void **state)
{
    (void)state;
    cbrnn_exp_paper_config c;
    char msg[1024];
    int err = 0;
    cbrnn_exp_paper_config_default(&c, CBRNN_TASK_DMS);
    assert_null(cbrnn_exp_paper_create(&c, &err, msg, sizeof msg)); /* no folder */
    assert_int_equal(err, CBRNN_ERR_ARG);
    c.out_dir = tmpdir;
    c.n_variants = 2;
    c.variants[0] = c.variants[1] = CBRNN_VARIANT_RNN;
    assert_null(cbrnn_exp_paper_create(&c, &err, msg, sizeof msg));
    assert_non_null(strstr(msg, "twice"));
    cbrnn_exp_paper_config_default(&c, CBRNN_NTASKS);
    c.out_dir = tmpdir;
    assert_null(cbrnn_exp_paper_create(&c, &err, msg, sizeof msg));
    /* a folder of other settings */
    static const int v[1] = {CBRNN_VARIANT_RNN};
    cbrnn_exp *e = make("s", 1, v, 1, 1);
    cbrnn_exp_destroy(e);
    cbrnn_exp_paper_config_default(&c, CBRNN_TASK_DMS);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/s", tmpdir);
    c.out_dir = dir;
    e = cbrnn_exp_paper_create(&c, &err, msg, sizeof msg);
    assert_non_null(e);
    assert_int_equal(cbrnn_exp_prepare(e, msg, sizeof msg), CBRNN_ERR_ARG);
    assert_non_null(strstr(msg, "other settings"));
    /* the library names the keys that differ, both values whole */
    print_message("%s\n", msg);
    assert_non_null(strstr(msg, "they differ in:\n  task: stored parity, asked dms"));
    cbrnn_exp_destroy(e);
}

/* Everything above again with stdout and stderr going to a file: the
 * library must not have written a byte. */
static void test_silent(void **state)
{
    char path[600];
    snprintf(path, sizeof path, "%s/printed", tmpdir);
    fflush(NULL);
    int out = dup(1), err = dup(2);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    static const int v[1] = {CBRNN_VARIANT_CBRNN};
    cbrnn_exp *e = make("q", 1, v, 2, 2);
    cbrnn_exp_report rep = {NULL, NULL, NULL, NULL};
    int rc = cbrnn_exp_run_pool(e, 2, &rep);
    char msg[1024];
    if (!rc)
        rc = cbrnn_exp_summarise(e, 0, msg, sizeof msg);
    cbrnn_exp_destroy(e);
    fflush(NULL);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    fclose(f);
    assert_int_equal(rc, 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if (st.st_size != 0)
        fail_msg("the library printed %lld bytes (see %s)", (long long)st.st_size, path);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units_and_states),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_silent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
