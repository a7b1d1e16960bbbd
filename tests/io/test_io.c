/* test_io.c: the model file (model/io.c). Round trips are bit-identical
 * for every architecture and wiring; saving is atomic (a failed save keeps
 * the previous file and leaves no temporary behind); and the loader
 * refuses each kind of damage (truncation, a header length past the end,
 * bad JSON, wrong dtype, wrong shape, offsets out of range / overlapping /
 * with gaps, NaN and Inf, missing and extra tensors, missing or bad
 * metadata) with a message that names the problem. Damaged files are made
 * by editing a real saved file's header with jansson and re-laying its data. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cbrnn/cbrnn_model.h"
#include "file_replace.h"

static char tmpdir[256];

static int setup_dir(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cbrnn_test_io_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    return rmdir(dir);
}

static int teardown_dir(void **state)
{
    remove_tree(tmpdir);
    return 0;
}

/* ---- models ---- */

enum { M_READOUT, M_LOOP, M_RNN, M_RESERVOIR_LINEAR, M_CLASSIFY, M_KINDS };

static cbrnn_model *make_model(int kind, uint64_t seed)
{
    cbrnn_model_config c;
    cbrnn_model_config_default(&c);
    c.n_in = c.n_out = 40;
    c.n_hidden = 24;
    c.n_cb_hidden = 1;
    c.cb_hidden[0] = 32;
    if (kind == M_LOOP) {
        c.wiring = CBRNN_WIRING_LOOP;
        c.n_cb_hidden = 2;
        c.cb_hidden[0] = 20;
        c.cb_hidden[1] = 12;
        c.alpha = 0.25f;
        c.act = CBRNN_ACT_RELU;
    } else if (kind == M_RNN) {
        c.arch = CBRNN_ARCH_RNN;
        c.n_cb_hidden = 0;
        c.act = CBRNN_ACT_LEAKY_RELU;
    } else if (kind == M_RESERVOIR_LINEAR) {
        c.arch = CBRNN_ARCH_RESERVOIR;
        c.n_cb_hidden = 0;
        c.spectral_radius = 0.95f;
    } else if (kind == M_CLASSIFY) {
        c.n_out = 3;
    }
    int err = 0;
    cbrnn_model *m = cbrnn_model_create(&c, &err);
    assert_non_null(m);
    assert_int_equal(cbrnn_model_init(m, seed), 0);
    float mean[40], sd[40];
    for (int i = 0; i < 40; i++) {
        mean[i] = -3.0f + 0.1f * (float)i + 1e-7f * (float)seed;
        sd[i] = 0.5f + 0.01f * (float)i;
    }
    assert_int_equal(cbrnn_model_set_norm(m, mean, sd), 0);
    if (kind == M_CLASSIFY) {
        const char *names[3] = {"speech", "noise, loud", "tone \"A\""};
        assert_int_equal(cbrnn_model_set_classes(m, 3, names), 0);
        m->target = CBRNN_TARGET_CLASSIFY;
    }
    if (kind == M_LOOP) {
        m->horizon = 3;
        m->feat.deltas = 1;
        m->feat.n_mels = 20; /* 20 log-mels + 20 deltas = 40 inputs */
        m->feat.sample_rate = 22050;
    }
    m->frozen[CBRNN_GROUP_CORTEX] = kind != M_RNN;
    assert_int_equal(cbrnn_model_set_meta(m, "command", "cbrnn train -o x.safetensors a b"), 0);
    assert_int_equal(cbrnn_model_set_meta(m, "note", "unicode \xc3\xa9 and \"quotes\""), 0);
    return m;
}

static unsigned char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static unsigned char *saved_bytes(const cbrnn_model *m, size_t *len)
{
    char path[512], msg[512];
    snprintf(path, sizeof path, "%s/bytes.safetensors", tmpdir);
    int rc = cbrnn_model_save(m, path, msg, sizeof msg);
    if (rc)
        fail_msg("save %s: %d %s", path, rc, msg);
    unsigned char *b = read_whole(path, len);
    assert_non_null(b);
    unlink(path);
    return b;
}

static void assert_same_model(const cbrnn_model *a, const cbrnn_model *b)
{
    assert_int_equal(a->cfg.arch, b->cfg.arch);
    assert_int_equal(a->cfg.wiring, b->cfg.wiring);
    assert_int_equal(a->cfg.act, b->cfg.act);
    assert_true(a->cfg.alpha == b->cfg.alpha);
    assert_int_equal(a->cfg.n_in, b->cfg.n_in);
    assert_int_equal(a->cfg.n_hidden, b->cfg.n_hidden);
    assert_int_equal(a->cfg.n_out, b->cfg.n_out);
    assert_int_equal(a->cfg.n_cb_hidden, b->cfg.n_cb_hidden);
    for (int i = 0; i < a->cfg.n_cb_hidden; i++)
        assert_int_equal(a->cfg.cb_hidden[i], b->cfg.cb_hidden[i]);
    assert_true(a->cfg.spectral_radius == b->cfg.spectral_radius);
    assert_int_equal(a->n_params, b->n_params);
    if (memcmp(a->params, b->params, a->n_params * sizeof(float))) {
        for (size_t i = 0; i < a->n_params; i++)
            if (memcmp(&a->params[i], &b->params[i], sizeof(float)))
                fail_msg("parameter %zu: saved %a, loaded %a", i, (double)a->params[i],
                         (double)b->params[i]);
    }
    assert_true((a->norm_mean != NULL) == (b->norm_mean != NULL));
    if (a->norm_mean) {
        assert_memory_equal(a->norm_mean, b->norm_mean, (size_t)a->cfg.n_in * sizeof(float));
        assert_memory_equal(a->norm_std, b->norm_std, (size_t)a->cfg.n_in * sizeof(float));
    }
    assert_memory_equal(&a->feat, &b->feat, sizeof a->feat);
    assert_int_equal(a->target, b->target);
    assert_int_equal(a->horizon, b->horizon);
    assert_int_equal(a->online_rule, b->online_rule);
    assert_true(a->rls_prior == b->rls_prior);
    assert_true(a->rls_forget == b->rls_forget);
    for (int g = 0; g < CBRNN_NGROUPS; g++)
        assert_int_equal(a->frozen[g], b->frozen[g]);
    assert_int_equal(a->n_classes, b->n_classes);
    for (int i = 0; i < a->n_classes; i++)
        assert_string_equal(a->class_names[i], b->class_names[i]);
    assert_int_equal(a->n_meta, b->n_meta);
    for (int i = 0; i < a->n_meta; i++)
        assert_string_equal(b->meta_val[i], cbrnn_model_get_meta(a, b->meta_key[i]));
}

/* ---- round trip ---- */

static void roundtrip_all_kinds(void **state)
{
    for (int kind = 0; kind < M_KINDS; kind++) {
        cbrnn_model *m = make_model(kind, 100 + (uint64_t)kind);
        if (kind % 2 == 0 && m->cfg.wiring == CBRNN_WIRING_READOUT &&
            (m->target == CBRNN_TARGET_PREDICT || m->target == CBRNN_TARGET_MAP)) {
            m->online_rule = CBRNN_RULE_RLS; /* stored with its settings */
            m->rls_prior = 12.5f;
            m->rls_forget = 0.995f;
        }
        char p1[512], p2[512], msg[512];
        snprintf(p1, sizeof p1, "%s/rt%d.safetensors", tmpdir, kind);
        snprintf(p2, sizeof p2, "%s/rt%d_again.safetensors", tmpdir, kind);
        int rc = cbrnn_model_save(m, p1, msg, sizeof msg);
        if (rc)
            fail_msg("kind %d: save failed: %s", kind, msg);
        int err = 1;
        cbrnn_model *l = cbrnn_model_load(p1, &err, msg, sizeof msg);
        if (!l)
            fail_msg("kind %d: load failed: %s", kind, msg);
        assert_int_equal(err, 0);
        assert_same_model(m, l);
        /* Saving what was loaded gives the same bytes. */
        assert_int_equal(cbrnn_model_save(l, p2, msg, sizeof msg), 0);
        size_t n1, n2;
        unsigned char *b1 = read_whole(p1, &n1), *b2 = read_whole(p2, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        /* Layout promised by the format: header length a multiple of 8,
         * header starts with '{', data = every tensor once. */
        uint64_t hlen = 0;
        for (int i = 0; i < 8; i++)
            hlen |= (uint64_t)b1[i] << (8 * i);
        assert_int_equal(hlen % 8, 0);
        assert_int_equal(b1[8], '{');
        assert_int_equal(n1 - 8 - hlen, 4 * (m->n_params + 2 * (size_t)m->cfg.n_in));
        free(b1);
        free(b2);
        cbrnn_model_destroy(l);
        cbrnn_model_destroy(m);
    }
}

static void roundtrip_without_normaliser(void **state)
{
    cbrnn_model_config c;
    cbrnn_model_config_default(&c);
    c.n_hidden = 8;
    c.cb_hidden[0] = 16;
    cbrnn_model *m = cbrnn_model_create(&c, NULL);
    assert_non_null(m);
    assert_int_equal(cbrnn_model_init(m, 7), 0);
    size_t len;
    unsigned char *b = saved_bytes(m, &len);
    char msg[512];
    int err;
    cbrnn_model *l = cbrnn_model_load_mem(b, len, &err, msg, sizeof msg);
    if (!l)
        fail_msg("load failed: %s", msg);
    assert_null(l->norm_mean);
    assert_same_model(m, l);
    /* Metadata holds the documented strings. */
    const char *hdr = (const char *)b + 8;
    assert_non_null(strstr(hdr, "\"format\":\"cbrnn-1\""));
    assert_non_null(strstr(hdr, "\"cb_hidden\":\"16\""));
    assert_non_null(strstr(hdr, "\"cortex.rnn.weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[8,40]"));
    assert_null(strstr(hdr, "frontend.mean"));
    free(b);
    cbrnn_model_destroy(l);
    cbrnn_model_destroy(m);
}

/* cbrnn_model_save_mem gives the bytes of the file cbrnn_model_save writes
 * (every kind, an RLS state too), and refuses what a save refuses. */
static void save_mem_is_the_file(void **state)
{
    for (int kind = 0; kind < M_KINDS; kind++) {
        cbrnn_model *m = make_model(kind, 300 + (uint64_t)kind);
        if (kind == M_READOUT) {
            m->online_rule = CBRNN_RULE_RLS;
            float *P = cbrnn_model_rls_state(m);
            assert_non_null(P);
            memset(P, 0, (size_t)m->rls_n * (size_t)m->rls_n * sizeof(float));
            for (int i = 0; i < m->rls_n; i++)
                P[(size_t)i * (size_t)m->rls_n + (size_t)i] = 1.0f / 30.0f;
        }
        size_t n_file, n_mem;
        unsigned char *file = saved_bytes(m, &n_file), *mem = NULL;
        char msg[512];
        int rc = cbrnn_model_save_mem(m, &mem, &n_mem, msg, sizeof msg);
        if (rc)
            fail_msg("kind %d: %s", kind, msg);
        assert_int_equal(n_mem, n_file);
        assert_memory_equal(mem, file, n_file);
        free(mem);
        free(file);
        m->params[5] = NAN;
        mem = (unsigned char *)&rc;
        n_mem = 1;
        assert_int_equal(cbrnn_model_save_mem(m, &mem, &n_mem, msg, sizeof msg),
                         CBRNN_ERR_NONFINITE);
        assert_null(mem);
        assert_int_equal(n_mem, 0);
        if (!strstr(msg, "refusing to save") || !strstr(msg, "element 5 is NaN"))
            fail_msg("kind %d, a NaN: message '%s'", kind, msg);
        cbrnn_model_destroy(m);
    }
    unsigned char *buf;
    size_t len;
    char msg[512];
    assert_int_equal(cbrnn_model_save_mem(NULL, &buf, &len, msg, sizeof msg), CBRNN_ERR_ARG);
    assert_null(buf);
}

/* ---- atomic save ---- */

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static int exists(const char *dir, const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void touch(const char *dir, const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("half a model", f);
    fclose(f);
}

/* A save killed mid-write leaves .NAME.HOST.PID.N.tmp; the next save of
 * NAME removes those of this host whose process is gone, and nothing else:
 * not another host's (its pid means nothing here: on a shared NFS folder
 * that save may still be writing), not old-format .NAME.PID.N.tmp ones
 * (their host is unknown). */
static void save_sweeps_stale_temporaries(void **state)
{
    (void)state;
    char dir[300], path[600], msg[512], name[256], host[CBRNN_TMP_HOST_MAX + 1];
    snprintf(dir, sizeof dir, "%s/sweep", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    assert_int_equal(cbrnn_file_tmp_host(host), 0);
    /* a PID that is certainly gone: a child that has been reaped */
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0)
        _exit(0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    /* %1$s this host, %2$d the dead pid (%1$.0s: the host, not printed) */
    const char *keep[] = {".m.safetensors.%1$s.1.0.tmp",       /* init: alive */
                          ".other.safetensors.%1$s.%2$d.0.tmp", /* another target */
                          ".m.safetensors.%1$s.%2$d.x.tmp",     /* not our pattern */
                          "m.safetensors.%1$s.%2$d.0.tmp",      /* no leading dot */
                          ".m.safetensors.%1$sx.%2$d.0.tmp",    /* another host */
                          ".m.safetensors.%1$.0sother-node.%2$d.0.tmp",
                          ".m.safetensors.%1$.0s%2$d.0.tmp"};    /* old format */
    const char *gone[] = {".m.safetensors.%1$s.%2$d.0.tmp", ".m.safetensors.%1$s.%2$d.17.tmp"};
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        snprintf(name, sizeof name, keep[i], host, (int)dead);
        touch(dir, name);
    }
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        snprintf(name, sizeof name, gone[i], host, (int)dead);
        touch(dir, name);
    }
    char live[256]; /* ours, alive */
    snprintf(live, sizeof live, ".m.safetensors.%s.%d.99.tmp", host, (int)getpid());
    touch(dir, live);
    cbrnn_model *m = make_model(M_READOUT, 1);
    assert_int_equal(cbrnn_model_save(m, path, msg, sizeof msg), 0);
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        snprintf(name, sizeof name, keep[i], host, (int)dead);
        if (!exists(dir, name))
            fail_msg("%s was removed", name);
    }
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        snprintf(name, sizeof name, gone[i], host, (int)dead);
        if (exists(dir, name))
            fail_msg("stale %s was left", name);
    }
    assert_true(exists(dir, live));
    assert_int_equal(count_entries(dir), 9); /* 7 kept + ours + the model */
    cbrnn_model_destroy(m);
}

static void atomic_save_keeps_previous(void **state)
{
    char dir[300], path[600], msg[512];
    snprintf(dir, sizeof dir, "%s/atomic", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cbrnn_model *a = make_model(M_READOUT, 1), *b = make_model(M_READOUT, 2);
    assert_int_equal(cbrnn_model_save(a, path, msg, sizeof msg), 0);
    size_t n0;
    unsigned char *before = read_whole(path, &n0);

    /* 1. The write itself fails: a file-size limit below the model's size
     * makes write() fail with EFBIG part-way through the temporary file. */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = cbrnn_model_save(b, path, msg, sizeof msg);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(rc, CBRNN_ERR_IO);
    if (!strstr(msg, "File too large"))
        fail_msg("write failure: message '%s' does not give the reason", msg);

    /* 2. The model cannot be saved (a NaN weight): refused before writing. */
    b->params[5] = NAN;
    rc = cbrnn_model_save(b, path, msg, sizeof msg);
    assert_int_equal(rc, CBRNN_ERR_NONFINITE);
    if (!strstr(msg, "refusing to save") || !strstr(msg, "cortex.rnn.weight_ih_l0: element 5 is NaN"))
        fail_msg("NaN save: message '%s'", msg);
    b->params[5] = 0.5f;

    /* 3. The folder does not exist. */
    char nodir[512];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/m.safetensors", tmpdir);
    assert_int_equal(cbrnn_model_save(b, nodir, msg, sizeof msg), CBRNN_ERR_IO);
    assert_non_null(strstr(msg, "No such file or directory"));

    /* After all of that: the previous file is intact and nothing else is
     * left in the folder (no temporary files). */
    size_t n1;
    unsigned char *after = read_whole(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    assert_int_equal(count_entries(dir), 1);
    free(after);

    /* 4. The path is a folder: refused, folder untouched. */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(cbrnn_model_save(b, sub, msg, sizeof msg), CBRNN_ERR_IO);
    assert_non_null(strstr(msg, "is a folder"));
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(count_entries(dir), 2);

    /* 5. A successful save replaces the file completely. */
    assert_int_equal(cbrnn_model_save(b, path, msg, sizeof msg), 0);
    cbrnn_model *l = cbrnn_model_load(path, NULL, msg, sizeof msg);
    assert_non_null(l);
    assert_same_model(b, l);
    assert_int_equal(count_entries(dir), 2);
    cbrnn_model_destroy(l);
    free(before);
    cbrnn_model_destroy(a);
    cbrnn_model_destroy(b);
}

/* ---- damaged files ---- */

/* A file split into its header (editable) and data. */
struct sfile {
    json_t *root;
    unsigned char *data;
    size_t dlen;
};

static struct sfile parse_file(const unsigned char *b, size_t len)
{
    struct sfile f;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)b[i] << (8 * i);
    json_error_t je;
    f.root = json_loadb((const char *)b + 8, hlen, 0, &je);
    assert_non_null(f.root);
    f.dlen = len - 8 - hlen;
    f.data = malloc(f.dlen + 64);
    assert_non_null(f.data);
    memcpy(f.data, b + 8 + hlen, f.dlen);
    return f;
}

/* Serialises f (header padded to 8 as the writer does). */
static unsigned char *build_file(const struct sfile *f, size_t *len)
{
    char *h = json_dumps(f->root, JSON_COMPACT);
    assert_non_null(h);
    size_t hl = strlen(h), pad = (hl + 7) & ~(size_t)7;
    *len = 8 + pad + f->dlen;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)pad >> (8 * i));
    memcpy(b + 8, h, hl);
    memset(b + 8 + hl, ' ', pad - hl);
    memcpy(b + 8 + pad, f->data, f->dlen);
    free(h);
    return b;
}

static void free_file(struct sfile *f)
{
    json_decref(f->root);
    free(f->data);
}

static json_t *offsets(struct sfile *f, const char *name)
{
    json_t *t = json_object_get(f->root, name);
    assert_non_null(t);
    return json_object_get(t, "data_offsets");
}

static size_t off_at(struct sfile *f, const char *name, int k)
{
    return (size_t)json_integer_value(json_array_get(offsets(f, name), (size_t)k));
}

static void set_offsets(struct sfile *f, const char *name, size_t b, size_t e)
{
    json_t *o = offsets(f, name);
    json_array_set_new(o, 0, json_integer((json_int_t)b));
    json_array_set_new(o, 1, json_integer((json_int_t)e));
}

/* Re-lays the data in the header's key order, contiguously, from the
 * current offsets (so tensors can be deleted or reordered first). */
static void relayout(struct sfile *f)
{
    unsigned char *nd = malloc(f->dlen + 64);
    assert_non_null(nd);
    size_t pos = 0;
    const char *k;
    json_t *v;
    json_object_foreach(f->root, k, v) {
        if (!strcmp(k, "__metadata__"))
            continue;
        size_t b = off_at(f, k, 0), e = off_at(f, k, 1);
        memcpy(nd + pos, f->data + b, e - b);
        set_offsets(f, k, pos, pos + e - b);
        pos += e - b;
    }
    free(f->data);
    f->data = nd;
    f->dlen = pos;
}

static void set_meta(struct sfile *f, const char *key, const char *val)
{
    json_t *meta = json_object_get(f->root, "__metadata__");
    if (val)
        json_object_set_new(meta, key, json_string(val));
    else
        json_object_del(meta, key);
}

/* Loads b and expects refusal with code `code` and `want` in the message. */
static void expect_refusal(const unsigned char *b, size_t len, int code, const char *want,
                           const char *what)
{
    char msg[1024] = "";
    int err = 0;
    cbrnn_model *m = cbrnn_model_load_mem(b, len, &err, msg, sizeof msg);
    if (m) {
        cbrnn_model_destroy(m);
        fail_msg("%s: loaded, expected a refusal containing '%s'", what, want);
    }
    if (err != code)
        fail_msg("%s: error %d, expected %d (message '%s')", what, err, code, msg);
    if (!strstr(msg, want))
        fail_msg("%s: message '%s' does not contain '%s'", what, msg, want);
}

static void expect_file_refusal(struct sfile *f, int code, const char *want, const char *what)
{
    size_t len;
    unsigned char *b = build_file(f, &len);
    expect_refusal(b, len, code, want, what);
    free(b);
}

/* A fresh editable copy of the reference model's file. */
static struct sfile fresh(const unsigned char *b, size_t len)
{
    return parse_file(b, len);
}

static void loader_refuses_damage(void **state)
{
    /* Reference: the seed's sizes (hidden 256, CB 512) so the messages read
     * as a user would see them. */
    cbrnn_model_config c;
    cbrnn_model_config_default(&c);
    cbrnn_model *m = cbrnn_model_create(&c, NULL);
    assert_non_null(m);
    assert_int_equal(cbrnn_model_init(m, 3), 0);
    float mean[40], sd[40];
    for (int i = 0; i < 40; i++)
        mean[i] = 0.f, sd[i] = 1.f;
    assert_int_equal(cbrnn_model_set_norm(m, mean, sd), 0);
    size_t len;
    unsigned char *good = saved_bytes(m, &len);
    /* The unmodified file (rebuilt through the editor) loads. */
    {
        struct sfile f = fresh(good, len);
        size_t l2;
        unsigned char *b = build_file(&f, &l2);
        char msg[512];
        cbrnn_model *ok = cbrnn_model_load_mem(b, l2, NULL, msg, sizeof msg);
        if (!ok)
            fail_msg("rebuilt reference file refused: %s", msg);
        assert_memory_equal(ok->params, m->params, m->n_params * sizeof(float));
        cbrnn_model_destroy(ok);
        free(b);
        free_file(&f);
    }

    /* Truncations. */
    expect_refusal(good, 5, CBRNN_ERR_FORMAT, "too short", "5-byte file");
    expect_refusal(good, len - 1, CBRNN_ERR_FORMAT, "", "one byte short");
    expect_refusal(good, len - 1000, CBRNN_ERR_FORMAT, "", "1000 bytes short");
    {
        uint64_t hlen = 0;
        for (int i = 0; i < 8; i++)
            hlen |= (uint64_t)good[i] << (8 * i);
        expect_refusal(good, 8 + hlen / 2, CBRNN_ERR_FORMAT, "larger than the rest of the file",
                       "cut inside the header");
        expect_refusal(good, 8 + hlen, CBRNN_ERR_FORMAT, "the file is truncated or damaged", "header only");
    }
    /* Header length beyond the file, and beyond any sane size. */
    {
        unsigned char *b = malloc(len);
        memcpy(b, good, len);
        b[6] = 0x01; /* 2^48 + ... */
        expect_refusal(b, len, CBRNN_ERR_FORMAT, "larger than the rest of the file", "huge hlen");
        free(b);
    }
    /* Not JSON. */
    {
        unsigned char *b = malloc(len);
        memcpy(b, good, len);
        b[8 + 1] = 'X'; /* {X__metadata__"... */
        expect_refusal(b, len, CBRNN_ERR_FORMAT, "not valid JSON", "bad JSON");
        b[8] = '[';
        expect_refusal(b, len, CBRNN_ERR_FORMAT, "does not start with '{'", "not an object");
        free(b);
    }
    struct sfile f;
    /* Wrong dtype. */
    f = fresh(good, len);
    json_object_set_new(json_object_get(f.root, "cerebellum.fc1.bias"), "dtype", json_string("F16"));
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "tensor cerebellum.fc1.bias: dtype F16, cbrnn models are F32",
                        "dtype");
    free_file(&f);
    /* Wrong shape (same byte count, so only the shape is wrong). */
    f = fresh(good, len);
    json_object_set_new(json_object_get(f.root, "cerebellum.fc1.weight"), "shape",
                        json_pack("[i,i]", 1024, 128));
    expect_file_refusal(&f, CBRNN_ERR_SHAPE,
                        "tensor cerebellum.fc1.weight: shape [1024,128] but the configuration needs [512,256]",
                        "shape");
    free_file(&f);
    /* The metadata describes another model than the tensors. */
    f = fresh(good, len);
    set_meta(&f, "n_hidden", "128");
    expect_file_refusal(&f, CBRNN_ERR_SHAPE,
                        "tensor cortex.rnn.weight_ih_l0: shape [256,40] but the configuration needs [128,40]",
                        "metadata/tensor mismatch");
    free_file(&f);
    /* A configuration far larger than the data: refused without building it. */
    f = fresh(good, len);
    set_meta(&f, "n_hidden", "5000");
    expect_file_refusal(&f, CBRNN_ERR_SHAPE, "but the file holds only", "huge configuration");
    free_file(&f);
    /* Offsets past the end of the data. */
    f = fresh(good, len);
    set_offsets(&f, "frontend.std", f.dlen - 160 + 4, f.dlen + 4);
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "tensor frontend.std: data_offsets", "offset range");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "end past the data section", "offset range");
    free_file(&f);
    /* Offsets that disagree with the shape. */
    f = fresh(good, len);
    set_offsets(&f, "frontend.std", off_at(&f, "frontend.std", 0), off_at(&f, "frontend.std", 1) - 4);
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "hold 156 bytes but its shape needs 160", "offset size");
    free_file(&f);
    /* Overlap: bias_hh points at bias_ih's bytes. */
    f = fresh(good, len);
    set_offsets(&f, "cortex.rnn.bias_hh_l0", off_at(&f, "cortex.rnn.bias_ih_l0", 0),
                off_at(&f, "cortex.rnn.bias_ih_l0", 1));
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "overlap", "overlap");
    free_file(&f);
    /* A gap: the last tensor moved 4 bytes on, the data 4 bytes longer. */
    f = fresh(good, len);
    {
        size_t b0 = off_at(&f, "frontend.std", 0);
        memmove(f.data + b0 + 4, f.data + b0, 160);
        set_offsets(&f, "frontend.std", b0 + 4, b0 + 164);
        f.dlen += 4;
    }
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "gap of 4 bytes in the data before tensor frontend.std",
                        "gap");
    free_file(&f);
    /* Trailing bytes after the last tensor. */
    f = fresh(good, len);
    memset(f.data + f.dlen, 0, 8);
    f.dlen += 8;
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "8 bytes of data after the last tensor", "trailing");
    free_file(&f);
    /* NaN and Inf in the data. */
    f = fresh(good, len);
    {
        size_t b0 = off_at(&f, "cerebellum.fc2.weight", 0);
        float nan = NAN, inf = -INFINITY;
        memcpy(f.data + b0 + 4 * 17, &nan, 4);
        expect_file_refusal(&f, CBRNN_ERR_NONFINITE, "tensor cerebellum.fc2.weight: element 17 is NaN",
                            "NaN");
        memcpy(f.data + b0 + 4 * 17, &inf, 4);
        expect_file_refusal(&f, CBRNN_ERR_NONFINITE, "element 17 is infinite", "Inf");
    }
    free_file(&f);
    /* A standard deviation of zero would divide by zero. */
    f = fresh(good, len);
    memset(f.data + off_at(&f, "frontend.std", 0) + 8, 0, 4);
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "frontend.std: element 2 is 0", "zero std");
    free_file(&f);
    /* Missing tensor. */
    f = fresh(good, len);
    json_object_del(f.root, "cerebellum.fc2.bias");
    relayout(&f);
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "missing tensor cerebellum.fc2.bias", "missing");
    free_file(&f);
    /* Half a normaliser. */
    f = fresh(good, len);
    json_object_del(f.root, "frontend.std");
    relayout(&f);
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "frontend.mean without frontend.std", "half norm");
    free_file(&f);
    /* Extra unknown tensor (readout.weight does not exist in a readout-wired CBRNN). */
    f = fresh(good, len);
    json_object_set_new(f.root, "readout.weight",
                        json_pack("{s:s,s:[i,i],s:[I,I]}", "dtype", "F32", "shape", 40, 256,
                                  "data_offsets", (json_int_t)0, (json_int_t)40960));
    expect_file_refusal(&f, CBRNN_ERR_FORMAT,
                        "tensor readout.weight is not part of a cbrnn model with this configuration",
                        "extra");
    free_file(&f);
    /* Unknown field in a tensor entry; offsets that are not integers. */
    f = fresh(good, len);
    json_object_set_new(json_object_get(f.root, "cortex.rnn.bias_ih_l0"), "strides", json_integer(1));
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "unknown field 'strides'", "unknown field");
    free_file(&f);
    f = fresh(good, len);
    json_array_set_new(offsets(&f, "cortex.rnn.bias_ih_l0"), 0, json_real(0.5));
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "not a list of two integers", "real offsets");
    free_file(&f);
    /* Metadata: missing, not a string, out of range, not a number, unknown name. */
    f = fresh(good, len);
    set_meta(&f, "n_hidden", NULL);
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "missing metadata 'n_hidden'", "no n_hidden");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "format", NULL);
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "not a cbrnn model file", "no format");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "format", "cbrnn-3");
    expect_file_refusal(&f, CBRNN_ERR_UNSUPPORTED, "newer than this build", "new format");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "hop_ms", NULL);
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "missing metadata 'hop_ms'", "no hop_ms");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "alpha", "1.5");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "metadata alpha: 1.5 is outside [1e-06..1]", "alpha");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "alpha", "nan");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "metadata alpha: 'nan' is not a finite number",
                        "alpha nan");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "online_rule", "adam");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "metadata online_rule: 'adam' is not one of sgd, rls",
                        "online_rule");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "rls_forget", "1.5");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "metadata rls_forget: 1.5 is outside [0.9..1]",
                        "rls_forget");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "n_out", "40x");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "metadata n_out: '40x' is not an integer", "n_out");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "activation", "sigmoid");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "'sigmoid' is not one of tanh, relu, leaky_relu",
                        "activation");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "sample_rate", "4000");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "metadata sample_rate: 4000 is outside", "rate");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "n_mels", "30");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "n_in is 40 but the feature configuration gives 30",
                        "feature dim");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "cb_hidden", "512,");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "metadata cb_hidden: '512,'", "cb list");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "frozen", "cortex,brainstem");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "metadata frozen", "frozen");
    free_file(&f);
    f = fresh(good, len);
    set_meta(&f, "target", "classify");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "target classify with 0 classes but n_out is 40",
                        "classes");
    free_file(&f);
    f = fresh(good, len);
    json_object_set_new(json_object_get(f.root, "__metadata__"), "horizon", json_integer(1));
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "metadata 'horizon' is not a string", "meta type");
    free_file(&f);
    f = fresh(good, len);
    json_object_del(f.root, "__metadata__");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "no __metadata__", "no metadata");
    free_file(&f);
    /* Duplicate keys in the header. */
    {
        const char *dup = "{\"__metadata__\":{\"format\":\"cbrnn-1\",\"format\":\"cbrnn-1\"}}";
        size_t hl = strlen(dup), pad = (hl + 7) & ~(size_t)7;
        unsigned char *b = calloc(1, 8 + pad);
        b[0] = (unsigned char)pad;
        memcpy(b + 8, dup, hl);
        memset(b + 8 + hl, ' ', pad - hl);
        expect_refusal(b, 8 + pad, CBRNN_ERR_FORMAT, "duplicate", "duplicate key");
        free(b);
    }

    /* Tensors in another order than the writer's (as Python's safetensors
     * writes them) still load, value for value. */
    f = fresh(good, len);
    {
        json_t *meta = json_incref(json_object_get(f.root, "__metadata__"));
        json_t *nr = json_object();
        const char *order[] = {"frontend.std", "cerebellum.fc2.bias", "cortex.rnn.weight_hh_l0",
                               "frontend.mean", "cerebellum.fc1.weight", "cortex.rnn.bias_hh_l0",
                               "cortex.rnn.weight_ih_l0", "cerebellum.fc2.weight",
                               "cortex.rnn.bias_ih_l0", "cerebellum.fc1.bias"};
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
            json_object_set(nr, order[i], json_object_get(f.root, order[i]));
        json_object_set_new(nr, "__metadata__", meta);
        json_decref(f.root);
        f.root = nr;
        relayout(&f);
        size_t l2;
        unsigned char *b = build_file(&f, &l2);
        char msg[512];
        cbrnn_model *ok = cbrnn_model_load_mem(b, l2, NULL, msg, sizeof msg);
        if (!ok)
            fail_msg("reordered file refused: %s", msg);
        assert_same_model(m, ok);
        cbrnn_model_destroy(ok);
        free(b);
    }
    free_file(&f);
    free(good);
    cbrnn_model_destroy(m);
}

/* Random damage (seeded, so reproducible): flipped bytes anywhere, bytes
 * of the header replaced by JSON punctuation or digits, and truncations.
 * Each load either succeeds (a flip in the data can leave valid floats) or
 * refuses with a message; under ASan/UBSan any out-of-bounds read or
 * undefined arithmetic fails the test. */
static void loader_survives_random_damage(void **state)
{
    cbrnn_model *m = make_model(M_LOOP, 9);
    size_t len;
    unsigned char *good = saved_bytes(m, &len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)good[i] << (8 * i);
    unsigned char *b = malloc(len);
    assert_non_null(b);
    cbrnn_rng r;
    cbrnn_rng_seed(&r, 12345);
    static const char punct[] = "{}[],:\"0123456789-.eE \\";
    int loaded = 0, refused = 0;
    for (int it = 0; it < 4000; it++) {
        memcpy(b, good, len);
        size_t n = len;
        int kind = (int)(cbrnn_rng_u64(&r) % 4);
        int edits = 1 + (int)(cbrnn_rng_u64(&r) % 4);
        for (int e = 0; e < edits; e++) {
            if (kind == 0) { /* any byte, anywhere */
                size_t p = cbrnn_rng_u64(&r) % len;
                b[p] = (unsigned char)cbrnn_rng_u64(&r);
            } else if (kind == 1) { /* header text */
                size_t p = 8 + cbrnn_rng_u64(&r) % hlen;
                b[p] = (unsigned char)punct[cbrnn_rng_u64(&r) % (sizeof punct - 1)];
            } else if (kind == 2) { /* the length field */
                b[cbrnn_rng_u64(&r) % 8] = (unsigned char)cbrnn_rng_u64(&r);
            }
        }
        if (kind == 3)
            n = cbrnn_rng_u64(&r) % len;
        char msg[512] = "";
        int err = 0;
        cbrnn_model *l = cbrnn_model_load_mem(b, n, &err, msg, sizeof msg);
        if (l) {
            loaded++;
            cbrnn_model_destroy(l);
        } else {
            refused++;
            if (err >= 0 || !msg[0])
                fail_msg("iteration %d: refused with code %d and message '%s'", it, err, msg);
        }
    }
    print_message("random damage: %d loaded, %d refused\n", loaded, refused);
    assert_true(refused > 2000);
    free(b);
    free(good);
    cbrnn_model_destroy(m);
}

static void load_from_path_errors(void **state)
{
    char msg[512], path[512];
    int err = 0;
    snprintf(path, sizeof path, "%s/none.safetensors", tmpdir);
    assert_null(cbrnn_model_load(path, &err, msg, sizeof msg));
    assert_int_equal(err, CBRNN_ERR_IO);
    assert_non_null(strstr(msg, path));
    assert_null(cbrnn_model_load(tmpdir, &err, msg, sizeof msg));
    assert_int_equal(err, CBRNN_ERR_IO);
    assert_non_null(strstr(msg, "not a regular file"));
    /* An empty file: the message names the file and the problem. */
    snprintf(path, sizeof path, "%s/empty.safetensors", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_null(cbrnn_model_load(path, &err, msg, sizeof msg));
    assert_int_equal(err, CBRNN_ERR_FORMAT);
    if (!strstr(msg, path) || !strstr(msg, "too short"))
        fail_msg("empty file: message '%s'", msg);
}

/* ---- format versions, limits and ranges (the format audit) ---- */

/* The metadata of a saved model as a JSON object (owned). */
static json_t *saved_meta(const cbrnn_model *m)
{
    size_t len;
    unsigned char *b = saved_bytes(m, &len);
    struct sfile f = parse_file(b, len);
    json_t *meta = json_incref(json_object_get(f.root, "__metadata__"));
    free_file(&f);
    free(b);
    return meta;
}

static const char *meta_of(json_t *meta, const char *key)
{
    return json_string_value(json_object_get(meta, key));
}

/* A save writes the lowest format that holds the model: cbrnn-1 (which a
 * build from before residual output, the running normaliser and RLS
 * computes the same) unless it uses one of those; the loader reads both,
 * and a cbrnn-1 file with the newer keys (an exporter's) as before. */
static void format_version_is_the_lowest(void **state)
{
    (void)state;
    cbrnn_model *m = make_model(M_READOUT, 4);
    json_t *meta = saved_meta(m);
    assert_string_equal(meta_of(meta, "format"), "cbrnn-1");
    const char *newer[] = {"output", "stream_norm", "stream_norm_floor", "online_rule",
                           "rls_prior", "rls_forget"};
    for (size_t i = 0; i < sizeof newer / sizeof *newer; i++)
        if (json_object_get(meta, newer[i]))
            fail_msg("a cbrnn-1 file carries '%s'", newer[i]);
    json_decref(meta);
    for (int use = 0; use < 4; use++) {
        cbrnn_model *u = make_model(M_READOUT, 5);
        if (use == 0)
            u->cfg.residual = 1;
        if (use == 1) {
            u->cfg.residual = 1;
            u->stream_norm_s = 1.0f;
        }
        if (use == 2)
            u->online_rule = CBRNN_RULE_RLS;
        if (use == 3) {
            float *P = cbrnn_model_rls_state(u);
            assert_non_null(P);
            const int n = u->rls_n;
            for (int i = 0; i < n * n; i++)
                P[i] = i % (n + 1) == 0 ? 1.0f / 30 : 0.0f;
        }
        meta = saved_meta(u);
        if (strcmp(meta_of(meta, "format"), "cbrnn-2"))
            fail_msg("use %d: format %s, expected cbrnn-2", use, meta_of(meta, "format"));
        json_decref(meta);
        size_t len;
        unsigned char *b = saved_bytes(u, &len);
        char msg[512];
        cbrnn_model *l = cbrnn_model_load_mem(b, len, NULL, msg, sizeof msg);
        if (!l)
            fail_msg("use %d: %s", use, msg);
        assert_int_equal(l->file_format, 2);
        assert_int_equal(l->cfg.residual, u->cfg.residual);
        assert_true(l->stream_norm_s == u->stream_norm_s);
        assert_int_equal(l->online_rule, u->online_rule);
        assert_int_equal(l->rls_P != NULL, u->rls_P != NULL);
        /* the same file labelled cbrnn-1 (an exporter): read the same */
        struct sfile f = parse_file(b, len);
        set_meta(&f, "format", "cbrnn-1");
        size_t l2;
        unsigned char *b1 = build_file(&f, &l2);
        cbrnn_model *l1 = cbrnn_model_load_mem(b1, l2, NULL, msg, sizeof msg);
        if (!l1)
            fail_msg("use %d as cbrnn-1: %s", use, msg);
        assert_int_equal(l1->file_format, 1);
        assert_int_equal(l1->cfg.residual, u->cfg.residual);
        assert_true(l1->stream_norm_s == u->stream_norm_s);
        assert_int_equal(l1->online_rule, u->online_rule);
        cbrnn_model_destroy(l1);
        free(b1);
        free_file(&f);
        cbrnn_model_destroy(l);
        free(b);
        cbrnn_model_destroy(u);
    }
    /* a plain model loaded from its file says cbrnn-1 */
    size_t len;
    unsigned char *b = saved_bytes(m, &len);
    cbrnn_model *l = cbrnn_model_load_mem(b, len, NULL, NULL, 0);
    assert_non_null(l);
    assert_int_equal(l->file_format, 1);
    assert_int_equal(cbrnn_model_format_version(l), 1);
    cbrnn_model_destroy(l);
    free(b);
    cbrnn_model_destroy(m);
}

/* Only cbrnn-N with N above the newest known is newer; other names are
 * no cbrnn format. */
static void format_names(void **state)
{
    (void)state;
    cbrnn_model *m = make_model(M_READOUT, 6);
    size_t len;
    unsigned char *good = saved_bytes(m, &len);
    const char *other[] = {"cbrnn-0", "cbrnn-1.1", "cbrnn-01", "cbrnn-", "cbrnn-2x", "cbrnn-+3",
                           "CBRNN-1", "safetensors"};
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        struct sfile f = fresh(good, len);
        set_meta(&f, "format", other[i]);
        expect_file_refusal(&f, CBRNN_ERR_FORMAT, "not a cbrnn model format", other[i]);
        free_file(&f);
    }
    const char *newer[] = {"cbrnn-3", "cbrnn-10", "cbrnn-99999999999999999999"};
    for (size_t i = 0; i < sizeof newer / sizeof *newer; i++) {
        struct sfile f = fresh(good, len);
        set_meta(&f, "format", newer[i]);
        expect_file_refusal(&f, CBRNN_ERR_UNSUPPORTED, "newer than this build reads", newer[i]);
        free_file(&f);
    }
    struct sfile f = fresh(good, len);
    set_meta(&f, "format", "cbrnn-2");
    size_t l2;
    unsigned char *b = build_file(&f, &l2);
    cbrnn_model *l = cbrnn_model_load_mem(b, l2, NULL, NULL, 0);
    assert_non_null(l);
    cbrnn_model_destroy(l);
    free(b);
    free_file(&f);
    free(good);
    cbrnn_model_destroy(m);
}

/* Settings are checked as the floats they are kept in, with minimums that
 * make sense; horizon at most CBRNN_MAX_HORIZON. */
static void ranges_as_stored(void **state)
{
    (void)state;
    cbrnn_model *m = make_model(M_READOUT, 7);
    m->cfg.residual = 1;
    size_t len;
    unsigned char *good = saved_bytes(m, &len);
    static const struct { const char *key, *val, *want; } bad[] = {
        {"rls_prior", "1e-50", "as the float it is kept in: 0"},
        {"rls_prior", "0", "outside [1e-09..1e+09]"},
        {"rls_prior", "1e10", "outside"},
        {"stream_norm", "1e-50", "shorter than 10 hops"},
        {"stream_norm", "1e-30", "shorter than 10 hops"},
        {"stream_norm", "0.05", "shorter than 10 hops (0.1 s)"},
        {"stream_norm", "1e39", "outside [0..3600]"},
        {"stream_norm_floor", "1e-50", "outside [1e-06..100]"},
        {"alpha", "1e-50", "as the float it is kept in: 0"},
        {"rls_forget", "0.89", "outside [0.9..1]"},
        {"horizon", "1001", "outside 1..1000"},
        {"horizon", "100000", "outside 1..1000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct sfile f = fresh(good, len);
        set_meta(&f, bad[i].key, bad[i].val);
        char what[64];
        snprintf(what, sizeof what, "%s %s", bad[i].key, bad[i].val);
        expect_file_refusal(&f, CBRNN_ERR_FORMAT, bad[i].want, what);
        free_file(&f);
    }
    static const struct { const char *key, *val; } ok[] = {
        {"rls_prior", "1e-9"}, {"stream_norm", "0"}, {"stream_norm", "0.1"},
        {"stream_norm_floor", "1e-6"}, {"horizon", "1000"}, {"alpha", "1e-6"}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        struct sfile f = fresh(good, len);
        set_meta(&f, ok[i].key, ok[i].val);
        size_t l2;
        unsigned char *b = build_file(&f, &l2);
        char msg[512];
        cbrnn_model *l = cbrnn_model_load_mem(b, l2, NULL, msg, sizeof msg);
        if (!l)
            fail_msg("%s %s refused: %s", ok[i].key, ok[i].val, msg);
        cbrnn_model_destroy(l);
        free(b);
        free_file(&f);
    }
    free(good);
    cbrnn_model_destroy(m);
}

/* RLS settings survive a save under SGD (a host's --rule rls uses them). */
static void rls_settings_kept_under_sgd(void **state)
{
    (void)state;
    cbrnn_model *m = make_model(M_READOUT, 8);
    m->rls_prior = 10.0f;
    m->rls_forget = 0.999f;
    size_t len;
    unsigned char *b = saved_bytes(m, &len);
    cbrnn_model *l = cbrnn_model_load_mem(b, len, NULL, NULL, 0);
    assert_non_null(l);
    assert_int_equal(l->online_rule, CBRNN_RULE_SGD);
    assert_true(l->rls_prior == 10.0f);
    assert_true(l->rls_forget == 0.999f);
    assert_int_equal(l->file_format, 1); /* SGD: a cbrnn-1 build computes it the same */
    cbrnn_model_destroy(l);
    free(b);
    cbrnn_model_destroy(m);
}

/* rls.P only where RLS can apply. */
static void rls_state_only_where_rls_applies(void **state)
{
    (void)state;
    cbrnn_model *m = make_model(M_READOUT, 9);
    float *P = cbrnn_model_rls_state(m);
    assert_non_null(P);
    for (int i = 0; i < m->rls_n * m->rls_n; i++)
        P[i] = i % (m->rls_n + 1) == 0 ? 0.5f : 0.0f;
    size_t len;
    unsigned char *good = saved_bytes(m, &len);
    struct sfile f = fresh(good, len);
    set_meta(&f, "target", "task");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "RLS does not apply to a model with the readout "
                        "wiring and target task", "rls.P on a task model");
    free_file(&f);
    /* and a save of such a model is refused before it is written */
    m->target = CBRNN_TARGET_TASK;
    char path[512], msg[512];
    snprintf(path, sizeof path, "%s/rlstask.safetensors", tmpdir);
    assert_int_equal(cbrnn_model_save(m, path, msg, sizeof msg), CBRNN_ERR_FORMAT);
    assert_non_null(strstr(msg, "rls.P"));
    free(good);
    cbrnn_model_destroy(m);
}

/* Free-form metadata: at most CBRNN_MAX_META_OWN keys besides the tools',
 * so a tool always has room for its own; a file with more names the
 * problem. */
static void metadata_room_for_the_tools(void **state)
{
    (void)state;
    cbrnn_model *m = make_model(M_READOUT, 10); /* command (a tool key) and note */
    char k[32];
    for (int i = 1; i < CBRNN_MAX_META_OWN; i++) {
        snprintf(k, sizeof k, "own_%d", i);
        assert_int_equal(cbrnn_model_set_meta(m, k, "x"), 0);
    }
    assert_int_equal(cbrnn_model_set_meta(m, "one_too_many", "x"), CBRNN_ERR_FULL);
    size_t len;
    unsigned char *b = saved_bytes(m, &len);
    char msg[512];
    cbrnn_model *l = cbrnn_model_load_mem(b, len, NULL, msg, sizeof msg);
    if (!l)
        fail_msg("32 own keys refused: %s", msg);
    /* every tool key fits beside the 32 */
    const char *tools[] = {"command", "date", "cbrnn_version", "train_files", "speed_perturb",
                           "val_files", "held_out_dir", "held_out", "held_out_truncated",
                           "train_set_sha256", "val_set_sha256",
                           "skipped_files", "train_frames", "seed", "optimizer", "lr", "batch",
                           "seq_len", "windows", "steps_warmup", "steps_frozen", "steps_done",
                           "average", "final_train_loss", "final_val_loss",
                           "final_val_accuracy", "final_val_persistence_loss", "final_skill",
                           "interrupted", "init_from", "adapted_by", "adapted_from",
                           "adapted_frames", "adapted_updates", "experiment", "task", "variant"};
    assert_int_equal(sizeof tools / sizeof *tools, CBRNN_META_TOOL_KEYS);
    for (size_t i = 0; i < sizeof tools / sizeof *tools; i++) {
        assert_true(cbrnn_meta_is_tool_key(tools[i]));
        if (cbrnn_model_set_meta(l, tools[i], "1"))
            fail_msg("tool key %s does not fit", tools[i]);
    }
    size_t len2;
    unsigned char *b2 = saved_bytes(l, &len2);
    cbrnn_model *l2 = cbrnn_model_load_mem(b2, len2, NULL, msg, sizeof msg);
    if (!l2)
        fail_msg("the tools' keys beside 32 own: %s", msg);
    assert_int_equal(l2->n_meta, CBRNN_MAX_META);
    /* dropping the tools' provenance keeps the model's own */
    cbrnn_model_drop_tool_meta(l2);
    assert_int_equal(l2->n_meta, CBRNN_MAX_META_OWN);
    assert_null(cbrnn_model_get_meta(l2, "command"));
    assert_string_equal(cbrnn_model_get_meta(l2, "own_31"), "x");
    cbrnn_model_del_meta(l2, "own_1");
    assert_int_equal(l2->n_meta, CBRNN_MAX_META_OWN - 1);
    assert_null(cbrnn_model_get_meta(l2, "own_1"));
    cbrnn_model_destroy(l2);
    /* one more own key in the file: refused with a message that says so */
    struct sfile f = fresh(b, len);
    free(b2);
    set_meta(&f, "own_extra", "x");
    expect_file_refusal(&f, CBRNN_ERR_FORMAT, "more than 32 free-form metadata entries besides",
                        "33 own keys");
    free_file(&f);
    cbrnn_model_destroy(l);
    free(b);
    cbrnn_model_destroy(m);
}

/* Resident memory of this process now, kB (/proc/self/statm). */
static long rss_now_kb(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* What loading path costs a child: its peak resident memory above what it
 * held before (kB; the parent's pages, counted in the child's peak after
 * fork, are not the loader's); *out gets the loader's message. */
static long child_load_rss(const char *path, char *out, size_t outlen)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        alarm(20); /* a load that hangs fails the test */
        long before = rss_now_kb();
        char msg[512] = "";
        cbrnn_model *m = cbrnn_model_load(path, NULL, msg, sizeof msg);
        if (m)
            snprintf(msg, sizeof msg, "loaded");
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        char line[600];
        int n = snprintf(line, sizeof line, "%ld\n%s", ru.ru_maxrss - before, msg);
        ssize_t w = write(fds[1], line, (size_t)n);
        (void)w;
        _exit(0);
    }
    close(fds[1]);
    char line[600];
    ssize_t n = read(fds[0], line, sizeof line - 1);
    line[n > 0 ? n : 0] = 0;
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st))
        fail_msg("%s: the loading child died (signal %d)", path,
                 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    char *nl = strchr(line, '\n');
    snprintf(out, outlen, "%s", nl ? nl + 1 : "");
    return strtol(line, NULL, 10);
}

static void write_bytes(const char *path, const void *b, size_t n, off_t total)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    if (total > (off_t)n) { /* sparse up to total bytes */
        assert_int_equal(fseeko(f, total - 1, SEEK_SET), 0);
        assert_int_equal(fputc(0, f), 0);
    }
    fclose(f);
}

/* What a hostile or wrong file can cost: a named pipe is refused without
 * blocking; a big non-model file is told apart by its first bytes; a
 * header of millions of tiny JSON values or one nested deep is refused
 * before jansson builds it; the header cap is 1 MiB. */
static void hostile_files_cost_little(void **state)
{
    (void)state;
    char path[512], msg[512];
    snprintf(path, sizeof path, "%s/fifo.safetensors", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    long rss = child_load_rss(path, msg, sizeof msg);
    if (!strstr(msg, "not a regular file (a named pipe)"))
        fail_msg("fifo: '%s'", msg);
    unlink(path);
    /* 600 MB of "audio" (sparse): the loader must not read it to say so */
    snprintf(path, sizeof path, "%s/big.wav", tmpdir);
    write_bytes(path, "RIFF\x24\x00\x00\x00WAVEfmt ", 16, (off_t)600 << 20);
    rss = child_load_rss(path, msg, sizeof msg);
    if (!strstr(msg, "this is a WAV (RIFF) audio file") || rss > 100 * 1024)
        fail_msg("big WAV: '%s', %ld kB at peak", msg, rss);
    unlink(path);
    /* a header just under the cap made of empty objects */
    size_t hl = (size_t)1 << 20;
    unsigned char *b = malloc(8 + hl);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, "{\"a\":[", 6);
    for (size_t i = 6; i + 3 <= hl - 2; i += 3)
        memcpy(b + 8 + i, "{},", 3);
    memset(b + 8 + hl - 4, ' ', 2);
    memcpy(b + 8 + hl - 2, "]}", 2);
    b[8 + hl - 5] = ' '; /* the last comma */
    snprintf(path, sizeof path, "%s/objects.safetensors", tmpdir);
    write_bytes(path, b, 8 + hl, 0);
    rss = child_load_rss(path, msg, sizeof msg);
    if (!strstr(msg, "more than 4096 JSON values") || rss > 100 * 1024)
        fail_msg("1 MiB of {}: '%s', %ld kB at peak", msg, rss);
    /* nested lists */
    memcpy(b + 8, "{\"a\":[[[", 8);
    snprintf(path, sizeof path, "%s/deep.safetensors", tmpdir);
    write_bytes(path, b, 8 + hl, 0);
    child_load_rss(path, msg, sizeof msg);
    if (!strstr(msg, "nests deeper than 3"))
        fail_msg("deep header: '%s'", msg);
    free(b);
    /* the cap: a header of 1 MiB + 8 */
    hl = ((size_t)1 << 20) + 8;
    b = calloc(1, 8 + hl);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    b[8] = '{';
    expect_refusal(b, 8 + hl, CBRNN_ERR_FORMAT, "exceeds the 1048576-byte limit", "header cap");
    free(b);
}

/* The largest header a real model has fits the cap: 128 classes with long
 * names full of characters JSON escapes, the tools' longest values and
 * 32 keys of the model's own of 4 kB each. */
static void largest_real_header_fits(void **state)
{
    (void)state;
    cbrnn_model *m = make_model(M_CLASSIFY, 11);
    cbrnn_model_config c = m->cfg;
    cbrnn_model_destroy(m);
    c.n_out = CBRNN_MAX_CLASSES;
    m = cbrnn_model_create(&c, NULL);
    assert_non_null(m);
    assert_int_equal(cbrnn_model_init(m, 1), 0);
    m->target = CBRNN_TARGET_CLASSIFY;
    static char names[CBRNN_MAX_CLASSES][1001];
    const char *np[CBRNN_MAX_CLASSES];
    for (int i = 0; i < CBRNN_MAX_CLASSES; i++) {
        for (int j = 0; j < 1000; j++)
            names[i][j] = "\"\\"[j % 2]; /* each escaped twice: 4 bytes */
        snprintf(names[i], 8, "%05d", i);
        names[i][5] = 'x';
        np[i] = names[i];
    }
    assert_int_equal(cbrnn_model_set_classes(m, CBRNN_MAX_CLASSES, np), 0);
    static char big[8193];
    memset(big, 'a', 8192);
    assert_int_equal(cbrnn_model_set_meta(m, "held_out", big), 0);
    big[4096] = 0;
    const char *paths[] = {"command", "held_out_dir", "adapted_from", "init_from"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        assert_int_equal(cbrnn_model_set_meta(m, paths[i], big), 0);
    char k[32];
    for (int i = 0; i < CBRNN_MAX_META_OWN - 1; i++) { /* note is one */
        snprintf(k, sizeof k, "own_%d", i);
        assert_int_equal(cbrnn_model_set_meta(m, k, big), 0);
    }
    size_t len;
    unsigned char *b = saved_bytes(m, &len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)b[i] << (8 * i);
    print_message("largest real header: %llu bytes\n", (unsigned long long)hlen);
    assert_true(hlen < ((uint64_t)1 << 20));
    free(b);
    cbrnn_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_all_kinds),
        cmocka_unit_test(roundtrip_without_normaliser),
        cmocka_unit_test(save_mem_is_the_file),
        cmocka_unit_test(atomic_save_keeps_previous),
        cmocka_unit_test(save_sweeps_stale_temporaries),
        cmocka_unit_test(loader_refuses_damage),
        cmocka_unit_test(loader_survives_random_damage),
        cmocka_unit_test(load_from_path_errors),
        cmocka_unit_test(format_version_is_the_lowest),
        cmocka_unit_test(format_names),
        cmocka_unit_test(ranges_as_stored),
        cmocka_unit_test(rls_settings_kept_under_sgd),
        cmocka_unit_test(rls_state_only_where_rls_applies),
        cmocka_unit_test(metadata_room_for_the_tools),
        cmocka_unit_test(hostile_files_cost_little),
        cmocka_unit_test(largest_real_header_fits),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
