/* test_train_lib.c: the training run as a library (cbrnn_train.h), driven
 * the way a host other than `cbrnn train` would: options that clash are
 * refused by cbrnn_train_opts_check and by the run itself (one ERROR line,
 * nothing written); a small real run on the sample clips trains, saves a
 * model that loads, and reports through the host's callbacks only; a run
 * stopped before training begins writes nothing; the host is told where
 * the model went, and a model out cannot take goes to a rescue copy; SHA-256 (the provenance's
 * content digests, train/digest.h) gives FIPS 180-4's answers.
 *   test_train_lib SAMPLES_DIR WORK_DIR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cbrnn/cbrnn_train.h"
#include "corpus.h"
#include "digest.h"

static const char *samples, *work;

struct seen {
    int n[5];          /* lines per cbrnn_train_msg kind */
    char last[5][512]; /* the last line of each kind */
    int stop;          /* what stop() answers */
    int begun;
    int n_saved, how;  /* saved(): calls, the last how */
    char saved[1024];  /* and its path */
};

static void on_message(void *user, cbrnn_train_msg kind, const char *text)
{
    struct seen *s = user;
    s->n[kind]++;
    snprintf(s->last[kind], sizeof s->last[kind], "%s", text);
}

static void on_begin(void *user) { ((struct seen *)user)->begun = 1; }
static int on_stop(void *user) { return ((struct seen *)user)->stop; }
static void on_saved(void *user, const char *path, int how)
{
    struct seen *s = user;
    s->n_saved++;
    s->how = how;
    snprintf(s->saved, sizeof s->saved, "%s", path);
}

/* A report whose every callback writes into s. */
static cbrnn_train_report report_to(struct seen *s)
{
    return (cbrnn_train_report){.user = s, .message = on_message, .begin = on_begin,
                                .stop = on_stop, .saved = on_saved};
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A small predict run on the sample clips, writing work/NAME. */
static void small_opts(cbrnn_train_opts *o, const char *const *inputs, char *out, size_t cap,
                       const char *name)
{
    cbrnn_train_opts_default(o);
    snprintf(out, cap, "%s/%s", work, name);
    o->out = out;
    o->inputs = inputs;
    o->n_inputs = 1;
    o->mc.n_hidden = 8;
    o->mc.n_cb_hidden = 1;
    o->mc.cb_hidden[0] = 8;
    o->warmup = 2;
    o->steps = 2;
    o->eval_every = 2;
    o->tc.batch = 2;
    o->tc.seq_len = 20;
    o->model_rate = 16000;
    o->quiet = 1;
}

static void clash(cbrnn_train_opts *o, const char *names)
{
    char msg[256] = "";
    assert_int_equal(cbrnn_train_opts_check(o, msg, sizeof msg), -1);
    if (!strstr(msg, names))
        fail_msg("the message '%s' does not name %s", msg, names);
    assert_int_equal(cbrnn_train_opts_check(o, NULL, 0), -1);
}

static void options_that_clash(void **state)
{
    (void)state;
    cbrnn_train_opts o;
    cbrnn_train_opts_default(&o);
    assert_int_equal(cbrnn_train_opts_check(&o, NULL, 0), 0);

    o.target = CBRNN_TARGET_MAP;
    clash(&o, "--teacher-suffix or --pairs");
    o.teacher_suffix = "_clean";
    assert_int_equal(cbrnn_train_opts_check(&o, NULL, 0), 0);
    o.pairs = "pairs.txt";
    clash(&o, "--teacher-suffix or --pairs");

    cbrnn_train_opts_default(&o);
    o.target = CBRNN_TARGET_CLASSIFY;
    clash(&o, "--labels-dir");
    o.labels_dir = "labels";
    assert_int_equal(cbrnn_train_opts_check(&o, NULL, 0), 0);
    o.mc.residual = 1;
    clash(&o, "--output-mode residual");

    cbrnn_train_opts_default(&o);
    o.stream_norm = 1;
    clash(&o, "--stream-norm");
    o.mc.residual = 1;
    assert_int_equal(cbrnn_train_opts_check(&o, NULL, 0), 0);

    cbrnn_train_opts_default(&o);
    o.tc.opt.nesterov = 1;
    clash(&o, "--nesterov");

    cbrnn_train_opts_default(&o);
    o.mc.arch = CBRNN_ARCH_RESERVOIR;
    clash(&o, "--warmup-steps must be 0");
    o.warmup = 0;
    assert_int_equal(cbrnn_train_opts_check(&o, NULL, 0), 0);

    cbrnn_train_opts_default(&o);
    o.warmup = o.steps = 0;
    clash(&o, "nothing to do");
}

static void run_refuses_a_clash(void **state)
{
    (void)state;
    char in[1024], out[1024];
    snprintf(in, sizeof in, "%s/voiceA_us_male_1.wav", samples);
    const char *inputs[] = {in};
    cbrnn_train_opts o;
    small_opts(&o, inputs, out, sizeof out, "clash.safetensors");
    o.target = CBRNN_TARGET_MAP; /* and no teacher */
    struct seen s = {0};
    const cbrnn_train_report rep = report_to(&s);
    unlink(out);
    assert_int_equal(cbrnn_train_run(&o, &rep), CBRNN_TRAIN_BAD_INPUT);
    assert_int_equal(s.n[CBRNN_TRAIN_MSG_ERROR], 1);
    assert_non_null(strstr(s.last[CBRNN_TRAIN_MSG_ERROR], "--target map"));
    assert_int_equal(s.begun, 0);
    assert_false(exists(out));
}

/* Misuse of the API is refused with a message, never a crash. */
static void api_misuse(void **state)
{
    (void)state;
    char msg[256];
    assert_int_not_equal(cbrnn_train_opts_check(NULL, msg, sizeof msg), 0);
    char out[1024];
    const char *inputs[] = {samples};
    cbrnn_train_opts o;
    small_opts(&o, inputs, out, sizeof out, "misuse.safetensors");
    o.inputs = NULL;
    o.n_inputs = 3;
    assert_int_not_equal(cbrnn_train_opts_check(&o, msg, sizeof msg), 0);
    struct seen s = {0};
    const cbrnn_train_report rep = report_to(&s);
    assert_int_equal(cbrnn_train_run(&o, &rep), CBRNN_TRAIN_BAD_INPUT);
    assert_int_equal(cbrnn_train_run(NULL, &rep), CBRNN_TRAIN_BAD_INPUT);
    assert_false(exists(out));
}

static void run_trains_and_saves(void **state)
{
    (void)state;
    char out[1024];
    const char *inputs[] = {samples};
    cbrnn_train_opts o;
    small_opts(&o, inputs, out, sizeof out, "small.safetensors");
    o.val_fraction = 0.25;
    o.date = 1700000000; /* the host's SOURCE_DATE_EPOCH */
    struct seen s = {0};
    const cbrnn_train_report rep = report_to(&s);
    unlink(out);
    assert_int_equal(cbrnn_train_run(&o, &rep), CBRNN_TRAIN_DONE);
    assert_int_equal(s.n[CBRNN_TRAIN_MSG_ERROR], 0);
    assert_int_equal(s.n[CBRNN_TRAIN_MSG_RESULT], 1);
    assert_non_null(strstr(s.last[CBRNN_TRAIN_MSG_RESULT], out));
    assert_int_equal(s.n[CBRNN_TRAIN_MSG_STEP], 0); /* quiet */
    assert_int_equal(s.begun, 1);
    assert_int_equal(s.n_saved, 1); /* the host is told where the model went */
    assert_int_equal(s.how, CBRNN_TRAIN_SAVED_OUT);
    assert_string_equal(s.saved, out);
    int err = 0;
    char msg[256];
    cbrnn_model *m = cbrnn_model_load(out, &err, msg, sizeof msg);
    if (!m)
        fail_msg("%s does not load: %s", out, msg);
    assert_int_equal(m->cfg.n_hidden, 8);
    assert_int_equal(m->cfg.cb_hidden[0], 8);
    assert_string_equal(cbrnn_model_get_meta(m, "date"), "2023-11-14T22:13:20Z");
    cbrnn_model_destroy(m);
}

static void run_stopped_before_training_writes_nothing(void **state)
{
    (void)state;
    char out[1024];
    const char *inputs[] = {samples};
    cbrnn_train_opts o;
    small_opts(&o, inputs, out, sizeof out, "stopped.safetensors");
    struct seen s = {.stop = 1};
    const cbrnn_train_report rep = report_to(&s);
    unlink(out);
    assert_int_equal(cbrnn_train_run(&o, &rep), CBRNN_TRAIN_STOPPED);
    assert_false(exists(out));
    assert_int_equal(s.n_saved, 0);
}

/* A model out cannot take (its folder is gone) goes to the rescue folder
 * of cbrnn_host_save_rescue; the host is told where; the run fails. */
static void run_rescues_a_model_out_cannot_take(void **state)
{
    (void)state;
    char out[1024], state_home[1024];
    const char *inputs[] = {samples};
    cbrnn_train_opts o;
    small_opts(&o, inputs, out, sizeof out, "no-such-folder/r.safetensors");
    o.cache_dir = work;
    snprintf(state_home, sizeof state_home, "%s/state", work);
    setenv("XDG_STATE_HOME", state_home, 1);
    struct seen s = {0};
    const cbrnn_train_report rep = report_to(&s);
    assert_int_equal(cbrnn_train_run(&o, &rep), CBRNN_TRAIN_FAILED);
    assert_int_equal(s.n_saved, 1);
    assert_int_equal(s.how, CBRNN_TRAIN_SAVED_RESCUE);
    assert_non_null(strstr(s.saved, "/cbrnn/rescue/"));
    assert_non_null(strstr(s.last[CBRNN_TRAIN_MSG_ERROR], s.saved));
    int err = 0;
    char msg[256];
    cbrnn_model *m = cbrnn_model_load(s.saved, &err, msg, sizeof msg);
    if (!m)
        fail_msg("the rescue copy %s does not load: %s", s.saved, msg);
    cbrnn_model_destroy(m);
    unlink(s.saved);
}

/* SHA-256 against FIPS 180-4's examples and a million 'a's fed in odd
 * pieces (every split of a block and the padding's two cases: 55 and 56
 * bytes left in the last block). */
static void sha256_known_answers(void **state)
{
    (void)state;
    static const struct {
        const char *in, *hex;
    } kat[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    unsigned char d[SHA256_BYTES];
    char hex[SHA256_HEX];
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        sha256_ctx c;
        sha256_init(&c);
        sha256_update(&c, kat[i].in, strlen(kat[i].in));
        sha256_final(&c, d);
        sha256_hex(d, hex);
        assert_string_equal(hex, kat[i].hex);
    }
    static char a[1000000];
    memset(a, 'a', sizeof a);
    sha256_ctx c;
    sha256_init(&c);
    for (size_t at = 0, k = 1; at < sizeof a; at += k, k = k % 97 + 1)
        sha256_update(&c, a + at, at + k > sizeof a ? sizeof a - at : k);
    sha256_final(&c, d);
    sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* run --labels' events: a label that ends at 1e300 s (finite, so read)
 * holds to the end of any file; its sample index is clamped, not
 * overflowed (lround's unspecified result ended it before it began). */
static void label_events_far_past_the_end(void **state)
{
    (void)state;
    char path[1024], msg[512];
    snprintf(path, sizeof path, "%s/far.txt", work);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("0\t1e300\tspeech\n1e300\t1e301\tnoise\n", f);
    fclose(f);
    const char *names[] = {"noise", "speech"};
    label_events ev = {0};
    assert_int_equal(labels_to_events(&ev, path, names, 2, 16000.0, msg, sizeof msg), 0);
    assert_true(ev.n >= 1);
    assert_int_equal(ev.at[0], 0);
    assert_int_equal(ev.cls[0], 1);
    for (long i = 1; i < ev.n; i++)
        assert_true(ev.at[i] > ev.at[i - 1]);
    label_events_free(&ev);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_train_lib SAMPLES_DIR WORK_DIR\n");
        return 2;
    }
    samples = argv[1];
    work = argv[2];
    mkdir(work, 0777);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_known_answers),
        cmocka_unit_test(label_events_far_past_the_end),
        cmocka_unit_test(options_that_clash),
        cmocka_unit_test(run_refuses_a_clash),
        cmocka_unit_test(api_misuse),
        cmocka_unit_test(run_trains_and_saves),
        cmocka_unit_test(run_stopped_before_training_writes_nothing),
        cmocka_unit_test(run_rescues_a_model_out_cannot_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
