/* io.c: the model file. A model is saved as safetensors
 * (https://github.com/huggingface/safetensors, "Format"): an unsigned
 * 64-bit little-endian header length N, N bytes of JSON (padded with
 * spaces to a multiple of 8), then the raw little-endian float32 data of
 * every tensor. Tensor names are the PyTorch state_dict names of the
 * model's tensor table plus frontend.mean / frontend.std; everything else
 * (configuration, feature front end, target, provenance) is a string in
 * __metadata__. docs/FORMATS.md lists the keys.
 *
 * The loader never trusts a size or offset from the file before checking
 * it against the buffer and the configuration, and it never allocates more
 * than the file's own size (plus a small slack) because of what the file
 * says. Saving is atomic (temporary file in the same folder, fsync, rename,
 * fsync of the folder) and checks its own output with the loader first, so
 * that a file this code writes is always a file it can read; the writing
 * itself is file_replace.c's (which also removes the temporaries that
 * killed saves of the same file on this machine left behind).
 *
 * Library code: never prints, never exits; errors are codes plus a message. */
#include "cbrnn/cbrnn_model.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_replace.h"

/* Format names are "cbrnn-N", N = 1 .. CBRNN_FORMAT_NEWEST. */
#define FORMAT_PREFIX "cbrnn-"
/* The reference implementation refuses headers above 100 MB. A cbrnn header
 * is a few kB: about 150 bytes per tensor (at most 21), 1 kB of
 * configuration, the tools' provenance (the longest values: the command
 * line, 4 kB; held_out, 8 kB; two paths of 4 kB), the class names (128
 * labels of a few hundred bytes, escaped twice) and 32 keys of a user's
 * own: 1 MiB holds all of that several times over. */
#define HEADER_CAP ((uint64_t)1 << 20)
/* JSON values (objects, arrays, and members or elements after a comma)
 * the header may have, and how deep it may nest, checked by a scan before
 * jansson builds anything: jansson spends about 230 bytes on an empty
 * object, so 5.6 M "{}" in a 16 MiB header cost 1.3 GB. A cbrnn header
 * has at most about 400 (21 tensors of 7, and the metadata's members) and
 * nests 3 deep (root, tensor, shape list). */
#define HEADER_MAX_VALUES 4096
#define HEADER_MAX_DEPTH 3
/* Whole files above 1 GiB (250 M parameters) are refused before reading. */
#define FILE_CAP ((uint64_t)1 << 30)
/* The configuration may ask for at most this many floats more than the file
 * holds before the loader builds the model to name the mismatching tensor
 * (4 MiB of slack); beyond that it refuses without allocating. */
#define ALLOC_SLACK_FLOATS ((size_t)1 << 20)
/* Largest width accepted for any layer: far above live use (a 65536-unit
 * cortex is 16 GiB of W_hh) and small enough that products cannot overflow. */
#define DIM_MAX 65536
/* Mel bands: the front end's limit (dsp/ DSP_MAX_MELS). */
#define MELS_MAX 1024

static int fail(char *msg, size_t msglen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *msg, size_t msglen, int code, const char *fmt, ...)
{
    if (msg && msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- byte order ---- */

static int host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* dst: out n floats; src: n little-endian float32 (any alignment). */
static void f32_from_le(float *dst, const unsigned char *src, size_t n)
{
    if (host_is_le()) {
        memcpy(dst, src, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                     (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
        memcpy(&dst[i], &u, 4);
    }
}

static void f32_to_le(unsigned char *dst, const float *src, size_t n)
{
    if (host_is_le()) {
        memcpy(dst, src, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        dst[4 * i] = (unsigned char)u;
        dst[4 * i + 1] = (unsigned char)(u >> 8);
        dst[4 * i + 2] = (unsigned char)(u >> 16);
        dst[4 * i + 3] = (unsigned char)(u >> 24);
    }
}

/* ---- names of enumerations in the metadata ---- */

static const char *const arch_names[] = {"cbrnn", "rnn", "reservoir"};
static const char *const wiring_names[] = {"readout", "loop"};
static const char *const act_names[] = {"tanh", "relu", "leaky_relu"};
static const char *const target_names[] = {"predict", "map", "classify", "task"};
static const char *const group_names[] = {"cortex", "cerebellum", "readout"};
static const char *const output_names[] = {"plain", "residual"};
static const char *const rule_names[] = {"sgd", "rls"}; /* CBRNN_RULE_SGD, _RLS */

/* Keys the loader turns into configuration; every other key is free-form
 * provenance kept in m->meta_key / meta_val. */
static const char *const reserved_keys[] = {
    "format", "arch", "wiring", "activation", "alpha", "n_in", "n_hidden", "n_out",
    "cb_hidden", "spectral_radius", "sample_rate", "win_ms", "hop_ms", "n_mels",
    "f_min", "f_max", "n_mfcc", "deltas", "target", "horizon", "classes", "frozen",
    "output", "stream_norm", "stream_norm_floor", "online_rule", "rls_prior", "rls_forget"};
#define N_RESERVED (sizeof reserved_keys / sizeof reserved_keys[0])

static int is_reserved(const char *key)
{
    for (size_t i = 0; i < N_RESERVED; i++)
        if (!strcmp(key, reserved_keys[i]))
            return 1;
    return 0;
}

static int enum_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

/* ---- writing ---- */

static int meta_set(json_t *meta, const char *key, const char *val, char *msg, size_t msglen)
{
    json_t *s = json_string(val);
    if (!s)
        return fail(msg, msglen, CBRNN_ERR_ARG, "metadata %s: value is not valid UTF-8", key);
    if (json_object_set_new(meta, key, s))
        return fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory building the header");
    return 0;
}

static int meta_setf(json_t *meta, const char *key, char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int meta_setf(json_t *meta, const char *key, char *msg, size_t msglen, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return meta_set(meta, key, buf, msg, msglen);
}

/* Numbers are written with enough digits to read back bit-identically:
 * %.9g for float, %.17g for double (IEEE 754 round-trip digits). */
static int build_meta(json_t *meta, const cbrnn_model *m, char *msg, size_t msglen)
{
    const cbrnn_model_config *c = &m->cfg;
    const cbrnn_feat_config *f = &m->feat;
    int rc = 0;
    if ((unsigned)c->arch > 2 || (unsigned)c->wiring > 1 || (unsigned)c->act > 2 ||
        (unsigned)m->target > 3)
        return fail(msg, msglen, CBRNN_ERR_ARG, "model has an unknown arch, wiring, "
                                                "activation or target value");
    char cb[CBRNN_MAX_CB_HIDDEN * 12 + 1] = "";
    for (int i = 0; i < c->n_cb_hidden && i < CBRNN_MAX_CB_HIDDEN; i++) {
        size_t l = strlen(cb);
        snprintf(cb + l, sizeof cb - l, "%s%d", i ? "," : "", c->cb_hidden[i]);
    }
    char frozen[64] = "";
    for (int g = 0; g < CBRNN_NGROUPS; g++)
        if (m->frozen[g]) {
            size_t l = strlen(frozen);
            snprintf(frozen + l, sizeof frozen - l, "%s%s", l ? "," : "", group_names[g]);
        }
    const int version = cbrnn_model_format_version(m);
    rc = rc ? rc : meta_setf(meta, "format", msg, msglen, FORMAT_PREFIX "%d", version);
    rc = rc ? rc : meta_set(meta, "arch", arch_names[c->arch], msg, msglen);
    rc = rc ? rc : meta_set(meta, "wiring", wiring_names[c->wiring], msg, msglen);
    rc = rc ? rc : meta_set(meta, "activation", act_names[c->act], msg, msglen);
    rc = rc ? rc : meta_setf(meta, "alpha", msg, msglen, "%.9g", (double)c->alpha);
    rc = rc ? rc : meta_setf(meta, "n_in", msg, msglen, "%d", c->n_in);
    rc = rc ? rc : meta_setf(meta, "n_hidden", msg, msglen, "%d", c->n_hidden);
    rc = rc ? rc : meta_setf(meta, "n_out", msg, msglen, "%d", c->n_out);
    rc = rc ? rc : meta_set(meta, "cb_hidden", cb, msg, msglen);
    rc = rc ? rc : meta_setf(meta, "spectral_radius", msg, msglen, "%.9g", (double)c->spectral_radius);
    rc = rc ? rc : meta_setf(meta, "sample_rate", msg, msglen, "%.17g", f->sample_rate);
    rc = rc ? rc : meta_setf(meta, "win_ms", msg, msglen, "%.17g", f->win_ms);
    rc = rc ? rc : meta_setf(meta, "hop_ms", msg, msglen, "%.17g", f->hop_ms);
    rc = rc ? rc : meta_setf(meta, "n_mels", msg, msglen, "%d", f->n_mels);
    rc = rc ? rc : meta_setf(meta, "f_min", msg, msglen, "%.17g", f->f_min);
    rc = rc ? rc : meta_setf(meta, "f_max", msg, msglen, "%.17g", f->f_max);
    rc = rc ? rc : meta_setf(meta, "n_mfcc", msg, msglen, "%d", f->n_mfcc);
    rc = rc ? rc : meta_setf(meta, "deltas", msg, msglen, "%d", f->deltas);
    rc = rc ? rc : meta_set(meta, "target", target_names[m->target], msg, msglen);
    rc = rc ? rc : meta_setf(meta, "horizon", msg, msglen, "%d", m->horizon);
    /* The keys of cbrnn-2 go only into cbrnn-2 files: a cbrnn-1 build would
     * take them for provenance (and at their defaults they say nothing). */
    if (version >= 2) {
        rc = rc ? rc : meta_set(meta, "output", output_names[c->residual != 0], msg, msglen);
        rc = rc ? rc : meta_setf(meta, "stream_norm", msg, msglen, "%.9g",
                                 (double)m->stream_norm_s);
        rc = rc ? rc : meta_setf(meta, "stream_norm_floor", msg, msglen, "%.9g",
                                 (double)m->stream_norm_floor);
    }
    if (m->online_rule == CBRNN_RULE_RLS) /* absent: SGD, as before the key existed */
        rc = rc ? rc : meta_set(meta, "online_rule", rule_names[1], msg, msglen);
    /* RLS settings also under SGD when they differ from the defaults: a host
     * asked for --rule rls uses them (no output changes without it, so a
     * cbrnn-1 file may carry them). */
    if (m->online_rule == CBRNN_RULE_RLS || m->rls_prior != CBRNN_RLS_PRIOR ||
        m->rls_forget != CBRNN_RLS_FORGET) {
        rc = rc ? rc : meta_setf(meta, "rls_prior", msg, msglen, "%.9g", (double)m->rls_prior);
        rc = rc ? rc : meta_setf(meta, "rls_forget", msg, msglen, "%.9g", (double)m->rls_forget);
    }
    if (rc)
        return rc;
    /* Class names as a JSON list inside the string, so names may hold commas. */
    json_t *cl = json_array();
    if (!cl)
        return fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory building the header");
    for (int i = 0; i < m->n_classes && i < CBRNN_MAX_CLASSES; i++) {
        json_t *s = m->class_names[i] ? json_string(m->class_names[i]) : NULL;
        if (!s || json_array_append_new(cl, s)) {
            json_decref(cl);
            return fail(msg, msglen, CBRNN_ERR_ARG, "class %d: name missing or not valid UTF-8", i);
        }
    }
    char *cls = json_dumps(cl, JSON_COMPACT);
    json_decref(cl);
    if (!cls)
        return fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory building the header");
    rc = meta_set(meta, "classes", cls, msg, msglen);
    free(cls);
    rc = rc ? rc : meta_set(meta, "frozen", frozen, msg, msglen);
    for (int i = 0; !rc && i < m->n_meta; i++) {
        const char *k = m->meta_key[i];
        if (!k || !*k || !m->meta_val[i])
            return fail(msg, msglen, CBRNN_ERR_ARG, "metadata entry %d is empty", i);
        if (is_reserved(k))
            return fail(msg, msglen, CBRNN_ERR_ARG,
                        "metadata key '%s' is reserved for the configuration", k);
        rc = meta_set(meta, k, m->meta_val[i], msg, msglen);
    }
    return rc;
}

static int add_tensor(json_t *root, const char *name, int ndim, const int *shape, size_t begin,
                      size_t end, char *msg, size_t msglen)
{
    json_t *t = json_object(), *sh = json_array(), *off = json_array();
    int bad = !t || !sh || !off;
    for (int d = 0; !bad && d < ndim; d++)
        bad = json_array_append_new(sh, json_integer(shape[d]));
    bad = bad || json_array_append_new(off, json_integer((json_int_t)begin)) ||
          json_array_append_new(off, json_integer((json_int_t)end));
    if (!bad) {
        bad = json_object_set_new(t, "dtype", json_string("F32")) ||
              json_object_set_new(t, "shape", sh) || json_object_set_new(t, "data_offsets", off);
        sh = off = NULL; /* owned by t now, or freed by the failed set */
        bad = bad || json_object_set_new(root, name, t);
        t = NULL;
    }
    json_decref(sh);
    json_decref(off);
    json_decref(t);
    return bad ? fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory building the header") : 0;
}

/* The whole file in memory: *out malloc'ed, *outlen bytes. */
static int serialise(const cbrnn_model *m, unsigned char **out, size_t *outlen, char *msg,
                     size_t msglen)
{
    json_t *root = json_object(), *meta = json_object();
    if (!root || !meta || json_object_set_new(root, "__metadata__", meta)) {
        json_decref(root);
        return fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory building the header");
    }
    int rc = build_meta(meta, m, msg, msglen);
    size_t pos = 0;
    for (int i = 0; !rc && i < m->n_tensors; i++) {
        const cbrnn_tensor *t = &m->tensors[i];
        rc = add_tensor(root, t->name, t->ndim, t->shape, pos, pos + 4 * t->size, msg, msglen);
        pos += 4 * t->size;
    }
    const int has_norm = m->norm_mean && m->norm_std;
    const int nin[1] = {m->cfg.n_in};
    if (!rc && has_norm) {
        rc = add_tensor(root, "frontend.mean", 1, nin, pos, pos + 4 * (size_t)nin[0], msg, msglen);
        pos += 4 * (size_t)nin[0];
        rc = rc ? rc : add_tensor(root, "frontend.std", 1, nin, pos, pos + 4 * (size_t)nin[0], msg, msglen);
        pos += 4 * (size_t)nin[0];
    }
    const int nrls[2] = {m->rls_n, m->rls_n};
    const size_t rls_count = m->rls_P ? (size_t)m->rls_n * (size_t)m->rls_n : 0;
    if (!rc && rls_count) {
        rc = add_tensor(root, "rls.P", 2, nrls, pos, pos + 4 * rls_count, msg, msglen);
        pos += 4 * rls_count;
    }
    char *hdr = rc ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (rc)
        return rc;
    if (!hdr)
        return fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory building the header");
    /* Pad with spaces so the data starts 8-byte aligned (as the reference
     * implementation writes it). */
    size_t hlen = strlen(hdr);
    size_t padded = (hlen + 7) & ~(size_t)7;
    size_t total = 8 + padded + pos;
    unsigned char *buf = malloc(total);
    if (!buf) {
        free(hdr);
        return fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory (%zu bytes for the file)", total);
    }
    for (int b = 0; b < 8; b++)
        buf[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    memcpy(buf + 8, hdr, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    free(hdr);
    unsigned char *p = buf + 8 + padded;
    for (int i = 0; i < m->n_tensors; i++) {
        f32_to_le(p, m->params + m->tensors[i].offset, m->tensors[i].size);
        p += 4 * m->tensors[i].size;
    }
    if (has_norm) {
        f32_to_le(p, m->norm_mean, (size_t)nin[0]);
        f32_to_le(p + 4 * (size_t)nin[0], m->norm_std, (size_t)nin[0]);
        p += 8 * (size_t)nin[0];
    }
    if (rls_count)
        f32_to_le(p, m->rls_P, rls_count);
    *out = buf;
    *outlen = total;
    return 0;
}

/* The serialised model, checked by reading it back: a file that would not
 * load is never written, so a bad model (NaN weights, inconsistent
 * settings) leaves the previous file in place. */
static int serialise_checked(const cbrnn_model *m, const char *shown, unsigned char **buf,
                             size_t *len, char *msg, size_t msglen)
{
    char why[512];
    int rc = serialise(m, buf, len, why, sizeof why);
    if (rc)
        return fail(msg, msglen, rc, "%s: cannot save: %s", shown, why);
    int err = 0;
    cbrnn_model *check = cbrnn_model_load_mem(*buf, *len, &err, why, sizeof why);
    if (!check) {
        free(*buf);
        *buf = NULL;
        return fail(msg, msglen, err ? err : CBRNN_ERR_ARG, "%s: refusing to save: %s", shown,
                    why);
    }
    cbrnn_model_destroy(check);
    return 0;
}

int cbrnn_model_save_at(const cbrnn_model *m, int dfd, const char *name, const char *shown,
                        char *msg, size_t msglen)
{
    if (!shown)
        shown = name;
    if (!m || dfd < 0 || !name || !*name || strchr(name, '/') || !strcmp(name, ".") ||
        !strcmp(name, ".."))
        return fail(msg, msglen, CBRNN_ERR_ARG, "%s: not a file name", shown ? shown : "");
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        return fail(msg, msglen, CBRNN_ERR_IO, "%s: is a folder, not a model file", shown);
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = serialise_checked(m, shown, &buf, &len, msg, msglen);
    if (!rc)
        rc = cbrnn_file_replace_at(dfd, name, shown, buf, len, msg, msglen);
    free(buf);
    return rc;
}

int cbrnn_model_save_mem(const cbrnn_model *m, unsigned char **buf, size_t *len, char *msg,
                         size_t msglen)
{
    if (!buf || !len)
        return fail(msg, msglen, CBRNN_ERR_ARG, "no buffer to save into");
    *buf = NULL;
    *len = 0;
    if (!m)
        return fail(msg, msglen, CBRNN_ERR_ARG, "no model to save");
    int rc = serialise_checked(m, "the model", buf, len, msg, msglen);
    if (rc)
        *len = 0;
    return rc;
}

int cbrnn_model_save(const cbrnn_model *m, const char *path, char *msg, size_t msglen)
{
    if (!m || !path || !*path)
        return fail(msg, msglen, CBRNN_ERR_ARG, "no model or no path to save to");
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return fail(msg, msglen, CBRNN_ERR_IO, "%s: is a folder, not a model file", path);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base)
        return fail(msg, msglen, CBRNN_ERR_ARG, "%s: the path names a folder, not a file", path);
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;
    if (dfd < 0)
        rc = fail(msg, msglen, CBRNN_ERR_IO, "%s: cannot open its folder %s: %s", path, dir,
                  strerror(errno));
    else
        rc = cbrnn_model_save_at(m, dfd, base, path, msg, msglen);
    if (dfd >= 0)
        close(dfd);
    free(dir);
    return rc;
}

/* ---- reading ---- */

/* A parsed, range-checked __metadata__. */
struct meta_parsed {
    cbrnn_model_config cfg;
    cbrnn_feat_config feat;
    int target, horizon, frozen[CBRNN_NGROUPS];
    int n_classes;
    json_t *classes; /* array of strings (owned), or NULL */
    int version;     /* the file's format version */
    float stream_norm, stream_norm_floor;
    double stream_norm_text; /* stream_norm as written, before the float */
    int online_rule; /* index into rule_names */
    float rls_prior, rls_forget;
};

static const char *meta_str(json_t *meta, const char *key, int *rc, char *msg, size_t msglen)
{
    if (*rc)
        return NULL;
    json_t *v = json_object_get(meta, key);
    if (!v) {
        *rc = fail(msg, msglen, CBRNN_ERR_FORMAT, "missing metadata '%s'", key);
        return NULL;
    }
    return json_string_value(v); /* every value was checked to be a string */
}

static void meta_long(json_t *meta, const char *key, long lo, long hi, int *out, int *rc,
                      char *msg, size_t msglen)
{
    const char *s = meta_str(meta, key, rc, msg, msglen);
    if (!s)
        return;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno) {
        *rc = fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata %s: '%s' is not an integer", key, s);
        return;
    }
    if (v < lo || v > hi) {
        *rc = fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata %s: %ld is outside %ld..%ld", key, v,
                   lo, hi);
        return;
    }
    *out = (int)v;
}

/* The finite number metadata key holds, into *v: its text, or NULL (*rc
 * and msg say why). */
static const char *meta_number(json_t *meta, const char *key, double *v, int *rc, char *msg,
                               size_t msglen)
{
    const char *s = meta_str(meta, key, rc, msg, msglen);
    if (!s)
        return NULL;
    char *end;
    *v = strtod(s, &end);
    if (end == s || *end || !isfinite(*v)) {
        *rc = fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata %s: '%s' is not a finite number",
                   key, s);
        return NULL;
    }
    return s;
}

static void meta_double(json_t *meta, const char *key, double lo, double hi, int lo_open,
                        double *out, int *rc, char *msg, size_t msglen)
{
    double v;
    const char *s = meta_number(meta, key, &v, rc, msg, msglen);
    if (!s)
        return;
    if (v < lo || v > hi || (lo_open && v == lo)) {
        *rc = fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata %s: %s is outside %s%g..%g]", key, s,
                   lo_open ? "(" : "[", lo, hi);
        return;
    }
    *out = v;
}

/* A setting the model keeps as a float: the range is checked on the float
 * it becomes, so "1e-50" (0 as a float) cannot pass a check that 0 fails.
 * *text (may be NULL): the value as written. */
static void meta_float(json_t *meta, const char *key, float lo, float hi, int lo_open,
                       float *out, double *text, int *rc, char *msg, size_t msglen)
{
    double v;
    const char *s = meta_number(meta, key, &v, rc, msg, msglen);
    if (!s)
        return;
    const int fits = fabs(v) <= FLT_MAX; /* a double beyond float's range has no float */
    const float f = fits ? (float)v : 0.0f;
    if (!fits || f < lo || f > hi || (lo_open && f == lo)) {
        char as[64] = "";
        if (fits && (double)f != v)
            snprintf(as, sizeof as, " (as the float it is kept in: %g)", (double)f);
        *rc = fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata %s: %s%s is outside %s%g..%g]", key,
                   s, as, lo_open ? "(" : "[", (double)lo, (double)hi);
        return;
    }
    *out = f;
    if (text)
        *text = v;
}

static void meta_enum(json_t *meta, const char *key, const char *const *names, int n, int *out,
                      int *rc, char *msg, size_t msglen)
{
    const char *s = meta_str(meta, key, rc, msg, msglen);
    if (!s)
        return;
    int i = enum_index(names, n, s);
    if (i < 0) {
        char list[128] = "";
        for (int k = 0; k < n; k++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%s", k ? ", " : "", names[k]);
        }
        *rc = fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata %s: '%s' is not one of %s", key, s, list);
        return;
    }
    *out = i;
}

/* "256,64" -> widths; "" -> none. */
static int parse_cb(const char *s, cbrnn_model_config *c, char *msg, size_t msglen)
{
    c->n_cb_hidden = 0;
    const char *p = s;
    while (*p) {
        if (c->n_cb_hidden == CBRNN_MAX_CB_HIDDEN)
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "metadata cb_hidden: '%s' has more than %d layers", s, CBRNN_MAX_CB_HIDDEN);
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || (*end && *end != ',') || (*end == ',' && !end[1]))
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "metadata cb_hidden: '%s' is not a comma-separated list of widths", s);
        if (v < 1 || v > DIM_MAX)
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "metadata cb_hidden: width %ld is outside 1..%d", v, DIM_MAX);
        c->cb_hidden[c->n_cb_hidden++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int parse_frozen(const char *s, int *frozen, char *msg, size_t msglen)
{
    for (int g = 0; g < CBRNN_NGROUPS; g++)
        frozen[g] = 0;
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        int g = -1;
        for (int k = 0; k < CBRNN_NGROUPS; k++)
            if (strlen(group_names[k]) == n && !strncmp(p, group_names[k], n))
                g = k;
        if (g < 0)
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "metadata frozen: '%s' is not a list of cortex, cerebellum, readout", s);
        frozen[g] = 1;
        p += n;
        if (*p == ',' && !*++p)
            return fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata frozen: '%s' ends with a comma", s);
    }
    return 0;
}

/* classes: a JSON list of strings ("[\"a\",\"b\"]") or, for files written
 * by hand, a comma-separated list ("a,b"). */
static int parse_classes(const char *s, struct meta_parsed *p, char *msg, size_t msglen)
{
    json_t *arr = NULL;
    if (s[0] == '[') {
        json_error_t je;
        arr = json_loads(s, 0, &je);
        if (!arr || !json_is_array(arr)) {
            json_decref(arr);
            return fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata classes: not a JSON list of names");
        }
    } else {
        arr = json_array();
        if (!arr)
            return fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
        const char *q = s;
        while (*q) {
            size_t n = strcspn(q, ",");
            if (json_array_append_new(arr, json_stringn(q, n))) {
                json_decref(arr);
                return fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata classes: bad name in '%s'", s);
            }
            q += n;
            if (*q == ',')
                q++;
        }
    }
    size_t n = json_array_size(arr);
    if (n > CBRNN_MAX_CLASSES) {
        json_decref(arr);
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata classes: %zu classes, at most %d", n,
                    CBRNN_MAX_CLASSES);
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(arr, i));
        if (!name || !*name) {
            json_decref(arr);
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "metadata classes: class %zu is empty or not a string", i);
        }
    }
    p->classes = arr;
    p->n_classes = (int)n;
    return 0;
}

/* Every metadata value is a string, and there are at most
 * CBRNN_MAX_META_OWN free-form ones besides the tools' keys (so that the
 * tools can always add theirs). 0 or the error code (msg). */
static int check_meta_entries(json_t *meta, char *msg, size_t msglen)
{
    const char *key;
    json_t *val;
    int n_own = 0;
    json_object_foreach(meta, key, val) {
        if (!*key) /* the saver could not write it back */
            return fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata has an empty key");
        if (!json_is_string(val))
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "metadata '%s' is not a string (safetensors metadata maps strings to strings)",
                        key);
        if (!is_reserved(key) && !cbrnn_meta_is_tool_key(key) && ++n_own > CBRNN_MAX_META_OWN)
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "more than %d free-form metadata entries besides the ones cbrnn's tools "
                        "write (docs/FORMATS.md): remove some", CBRNN_MAX_META_OWN);
    }
    return 0;
}

/* The format is one this build reads: cbrnn-N, N = 1 .. CBRNN_FORMAT_NEWEST
 * (*version = N). cbrnn-N with a larger N is newer (CBRNN_ERR_UNSUPPORTED);
 * anything else ("cbrnn-0", "cbrnn-1.1", "cbrnn-01") is no cbrnn format.
 * 0 or the error code (msg). */
static int check_format(json_t *meta, int *version, char *msg, size_t msglen)
{
    int rc = 0;
    const char *fmt = meta_str(meta, "format", &rc, msg, msglen);
    if (rc)
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "missing metadata 'format': not a cbrnn model file");
    const size_t pl = strlen(FORMAT_PREFIX);
    const char *num = fmt + pl;
    size_t digits = strncmp(fmt, FORMAT_PREFIX, pl) ? 0 : strspn(num, "0123456789");
    if (digits == 0 || num[digits] || num[0] == '0')
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "not a cbrnn model format (format '%s'; this build reads " FORMAT_PREFIX
                    "1 to " FORMAT_PREFIX "%d)", fmt, CBRNN_FORMAT_NEWEST);
    if (digits > 4 || atoi(num) > CBRNN_FORMAT_NEWEST)
        return fail(msg, msglen, CBRNN_ERR_UNSUPPORTED,
                    "format '%s' is newer than this build reads (" FORMAT_PREFIX "1 to "
                    FORMAT_PREFIX "%d): use a newer cbrnn", fmt, CBRNN_FORMAT_NEWEST);
    *version = atoi(num);
    return 0;
}

/* The network's configuration into p->cfg; *cb: the cb_hidden text. The
 * first problem goes to *rc and msg (meta_*'s convention). */
static void parse_net_meta(json_t *meta, struct meta_parsed *p, const char **cb, int *rc,
                           char *msg, size_t msglen)
{
    cbrnn_model_config *c = &p->cfg;
    memset(c, 0, sizeof *c);
    int arch = 0, wiring = 0, act = 0;
    meta_enum(meta, "arch", arch_names, 3, &arch, rc, msg, msglen);
    meta_enum(meta, "wiring", wiring_names, 2, &wiring, rc, msg, msglen);
    meta_enum(meta, "activation", act_names, 3, &act, rc, msg, msglen);
    c->arch = (cbrnn_arch)arch;
    c->wiring = (cbrnn_wiring)wiring;
    c->act = (cbrnn_act)act;
    meta_float(meta, "alpha", 1e-6f, 1, 0, &c->alpha, NULL, rc, msg, msglen);
    meta_long(meta, "n_in", 1, DIM_MAX, &c->n_in, rc, msg, msglen);
    meta_long(meta, "n_hidden", 1, DIM_MAX, &c->n_hidden, rc, msg, msglen);
    meta_long(meta, "n_out", 1, DIM_MAX, &c->n_out, rc, msg, msglen);
    *cb = meta_str(meta, "cb_hidden", rc, msg, msglen);
    if (!*rc)
        *rc = parse_cb(*cb, c, msg, msglen);
    meta_float(meta, "spectral_radius", 0, 1e3f, 0, &c->spectral_radius, NULL, rc, msg, msglen);
}

/* The front end's configuration into p->feat, the target and horizon. */
static void parse_feat_meta(json_t *meta, struct meta_parsed *p, int *rc, char *msg,
                            size_t msglen)
{
    cbrnn_feat_config *f = &p->feat;
    memset(f, 0, sizeof *f);
    meta_double(meta, "sample_rate", CBRNN_RATE_MIN, CBRNN_RATE_MAX, 0, &f->sample_rate, rc, msg, msglen);
    meta_double(meta, "win_ms", 0, 1e4, 1, &f->win_ms, rc, msg, msglen);
    meta_double(meta, "hop_ms", 0, 1e4, 1, &f->hop_ms, rc, msg, msglen);
    meta_long(meta, "n_mels", 1, MELS_MAX, &f->n_mels, rc, msg, msglen);
    meta_double(meta, "f_min", 0, CBRNN_RATE_MAX / 2, 0, &f->f_min, rc, msg, msglen);
    meta_double(meta, "f_max", 0, CBRNN_RATE_MAX / 2, 0, &f->f_max, rc, msg, msglen);
    meta_long(meta, "n_mfcc", 0, MELS_MAX, &f->n_mfcc, rc, msg, msglen);
    meta_long(meta, "deltas", 0, 1, &f->deltas, rc, msg, msglen);
    meta_enum(meta, "target", target_names, 4, &p->target, rc, msg, msglen);
    meta_long(meta, "horizon", 1, CBRNN_MAX_HORIZON, &p->horizon, rc, msg, msglen);
}

/* The keys added after format cbrnn-1 first shipped: absent means the
 * old behaviour (plain output, no running normaliser, online rule sgd).
 * 0, or the error code of an rls rule the model cannot have. */
static int parse_later_meta(json_t *meta, struct meta_parsed *p, int *rc, char *msg,
                            size_t msglen)
{
    int residual = 0;
    if (json_object_get(meta, "output"))
        meta_enum(meta, "output", output_names, 2, &residual, rc, msg, msglen);
    p->cfg.residual = residual;
    p->stream_norm = 0;
    p->stream_norm_text = 0;
    p->stream_norm_floor = CBRNN_STREAM_NORM_FLOOR;
    if (json_object_get(meta, "stream_norm"))
        meta_float(meta, "stream_norm", 0, 3600, 0, &p->stream_norm, &p->stream_norm_text, rc,
                   msg, msglen);
    /* floor: the smallest cbrnn train --stream-norm-floor takes */
    if (json_object_get(meta, "stream_norm_floor"))
        meta_float(meta, "stream_norm_floor", 1e-6f, 100, 0, &p->stream_norm_floor, NULL, rc,
                   msg, msglen);
    p->online_rule = 0;
    p->rls_prior = CBRNN_RLS_PRIOR;
    p->rls_forget = CBRNN_RLS_FORGET;
    if (json_object_get(meta, "online_rule"))
        meta_enum(meta, "online_rule", rule_names, 2, &p->online_rule, rc, msg, msglen);
    /* prior: the range of cbrnn train --rls-prior; its inverse starts P */
    if (json_object_get(meta, "rls_prior"))
        meta_float(meta, "rls_prior", 1e-9f, 1e9f, 0, &p->rls_prior, NULL, rc, msg, msglen);
    if (json_object_get(meta, "rls_forget"))
        meta_float(meta, "rls_forget", 0.9f, 1, 0, &p->rls_forget, NULL, rc, msg, msglen);
    if (!*rc && p->online_rule &&
        !cbrnn_rule_rls_fits(p->cfg.wiring, (cbrnn_target)p->target))
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "metadata online_rule: rls needs the readout wiring and a predict or map "
                    "target (a squared error)");
    return 0;
}

/* The parsed configuration holds together: valid network and front end,
 * input and output sizes that fit the target, the output mode and the
 * running normaliser where they apply. 0 or the error code (msg). */
static int check_meta_parsed(const struct meta_parsed *p, char *msg, size_t msglen)
{
    const cbrnn_model_config *c = &p->cfg;
    const cbrnn_feat_config *f = &p->feat;
    char why[256] = "";
    if (cbrnn_model_config_check(c, why, sizeof why))
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "configuration: %s", why);
    int frc = cbrnn_feat_config_check(f);
    if (frc)
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "feature configuration: %s", cbrnn_strerror(frc));
    /* Audio models: the input is the front end's frame; predict and map
     * output a frame of the same features; classify one logit per class. */
    if (p->target != CBRNN_TARGET_TASK) {
        int dim = cbrnn_feat_config_dim(f);
        if (dim != c->n_in)
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "n_in is %d but the feature configuration gives %d features", c->n_in, dim);
    }
    /* predict: the frame's features (with deltas, possibly the frame's
     * own features only: the first n_out); map: the teacher's whole frame */
    if (p->target == CBRNN_TARGET_PREDICT && c->n_out != c->n_in &&
        !(f->deltas && 2 * c->n_out == c->n_in))
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "target predict needs n_out = n_in (or, with "
                    "deltas, n_in / 2), got %d and %d", c->n_out, c->n_in);
    if (p->target == CBRNN_TARGET_MAP && c->n_out != c->n_in)
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "target %s needs n_out = n_in, got %d and %d",
                    target_names[p->target], c->n_out, c->n_in);
    /* A time constant written as > 0 but 0 as a float would switch the
     * normaliser off; one shorter than CBRNN_STREAM_NORM_MIN_HOPS hops
     * follows the frame itself (a = hop / tau near 1: z near 0). */
    const double min_tau = CBRNN_STREAM_NORM_MIN_HOPS * f->hop_ms / 1000.0;
    if (p->stream_norm_text != 0 && !((double)p->stream_norm >= min_tau))
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "metadata stream_norm: %g s is shorter than "
                    "%d hops (%g s); 0 switches the running normaliser off",
                    p->stream_norm_text, CBRNN_STREAM_NORM_MIN_HOPS, min_tau);
    if (p->stream_norm > 0 && (p->target != CBRNN_TARGET_PREDICT || !c->residual))
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "stream_norm needs target predict and output "
                    "residual (its output is brought back with the running scale)");
    if (c->residual && p->target != CBRNN_TARGET_PREDICT && p->target != CBRNN_TARGET_MAP)
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "output residual needs target predict or map, "
                    "not %s", target_names[p->target]);
    if (p->target == CBRNN_TARGET_CLASSIFY && p->n_classes != c->n_out)
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "target classify with %d classes but n_out is %d",
                    p->n_classes, c->n_out);
    return 0;
}

/* The model file's metadata into p, checked: the entries, the format, the
 * network, the front end, the later keys, the classes and frozen groups,
 * and that they hold together. 0 or the error code (msg). */
static int parse_meta(json_t *meta, struct meta_parsed *p, char *msg, size_t msglen)
{
    int rc = check_meta_entries(meta, msg, msglen);
    if (!rc)
        rc = check_format(meta, &p->version, msg, msglen);
    if (rc)
        return rc;
    const char *cb = NULL;
    parse_net_meta(meta, p, &cb, &rc, msg, msglen);
    parse_feat_meta(meta, p, &rc, msg, msglen);
    int lrc = parse_later_meta(meta, p, &rc, msg, msglen);
    if (lrc)
        return lrc;
    const char *cls = meta_str(meta, "classes", &rc, msg, msglen);
    if (!rc)
        rc = parse_classes(cls, p, msg, msglen);
    const char *fr = meta_str(meta, "frozen", &rc, msg, msglen);
    if (!rc)
        rc = parse_frozen(fr, p->frozen, msg, msglen);
    if (rc)
        return rc;
    if (p->cfg.arch == CBRNN_ARCH_RNN && p->cfg.n_cb_hidden > 0)
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "arch rnn has no cerebellum but cb_hidden is '%s'", cb);
    return check_meta_parsed(p, msg, msglen);
}

/* One tensor entry of the header, after its checks. */
struct entry {
    const char *name;
    uint64_t begin, end;
    int slot; /* index in m->tensors, or n_tensors + SLOT_* */
};

/* The tensors beyond the configuration's, as slots after m->tensors. */
enum { SLOT_MEAN, SLOT_STD, SLOT_RLS, N_EXTRA_SLOTS };

static void shape_text(char *buf, size_t len, const int64_t *dims, int nd)
{
    size_t l = 0;
    buf[0] = 0;
    l += (size_t)snprintf(buf + l, len - l, "[");
    for (int d = 0; d < nd && l < len; d++)
        l += (size_t)snprintf(buf + l, len - l, "%s%lld", d ? "," : "", (long long)dims[d]);
    if (l < len)
        snprintf(buf + l, len - l, "]");
}

static int parse_entry(const char *name, json_t *v, const cbrnn_model *m, uint64_t data_len,
                       struct entry *e, char *msg, size_t msglen)
{
    if (!json_is_object(v))
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "tensor %s: entry is not an object", name);
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
            return fail(msg, msglen, CBRNN_ERR_FORMAT, "tensor %s: unknown field '%s'", name, k);
    }
    /* Which tensor the configuration expects under this name. */
    int slot = -1, exp_nd = 0;
    int64_t exp[2] = {0, 0};
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) {
            slot = i;
            exp_nd = m->tensors[i].ndim;
            exp[0] = m->tensors[i].shape[0];
            exp[1] = m->tensors[i].shape[1];
        }
    if (!strcmp(name, "frontend.mean") || !strcmp(name, "frontend.std")) {
        slot = m->n_tensors + (name[9] == 's' ? SLOT_STD : SLOT_MEAN);
        exp_nd = 1;
        exp[0] = m->cfg.n_in;
    }
    if (!strcmp(name, "rls.P")) {
        slot = m->n_tensors + SLOT_RLS;
        exp_nd = 2;
        exp[0] = exp[1] = cbrnn_model_rls_dim(m);
    }
    if (slot < 0)
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "tensor %s is not part of a %s model with this configuration (extra tensor)",
                    name, arch_names[m->cfg.arch]);
    const char *dt = json_string_value(json_object_get(v, "dtype"));
    if (!dt)
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "tensor %s: missing dtype", name);
    if (strcmp(dt, "F32"))
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "tensor %s: dtype %s, cbrnn models are F32",
                    name, dt);
    json_t *sh = json_object_get(v, "shape");
    if (!json_is_array(sh))
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "tensor %s: missing shape list", name);
    size_t nd = json_array_size(sh);
    int64_t dims[8];
    if (nd > 8)
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "tensor %s: %zu dimensions", name, nd);
    for (size_t d = 0; d < nd; d++) {
        json_t *dv = json_array_get(sh, d);
        if (!json_is_integer(dv) || json_integer_value(dv) < 0)
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "tensor %s: shape entry %zu is not a non-negative integer", name, d);
        dims[d] = json_integer_value(dv);
    }
    int same = (int)nd == exp_nd;
    for (int d = 0; same && d < exp_nd; d++)
        same = dims[d] == exp[d];
    if (!same) {
        char got[128], want[64];
        shape_text(got, sizeof got, dims, (int)nd);
        shape_text(want, sizeof want, exp, exp_nd);
        return fail(msg, msglen, CBRNN_ERR_SHAPE,
                    "tensor %s: shape %s but the configuration needs %s", name, got, want);
    }
    json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !json_is_integer(json_array_get(off, 0)) || !json_is_integer(json_array_get(off, 1)))
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "tensor %s: data_offsets is not a list of two integers", name);
    json_int_t b = json_integer_value(json_array_get(off, 0));
    json_int_t en = json_integer_value(json_array_get(off, 1));
    if (b >= 0 && en >= b && (uint64_t)en > data_len)
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "tensor %s: data_offsets [%lld,%lld] end past the data section (%llu bytes): "
                    "the file is truncated or damaged",
                    name, (long long)b, (long long)en, (unsigned long long)data_len);
    if (b < 0 || en < b)
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "tensor %s: data_offsets [%lld,%lld] are not "
                    "a range", name, (long long)b, (long long)en);
    /* The expected shape is at most DIM_MAX^2, so this product fits. */
    uint64_t bytes = 4 * (uint64_t)exp[0] * (uint64_t)(exp_nd == 2 ? exp[1] : 1);
    if ((uint64_t)(en - b) != bytes)
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "tensor %s: data_offsets [%lld,%lld] hold %lld bytes but its shape needs %llu",
                    name, (long long)b, (long long)en, (long long)(en - b),
                    (unsigned long long)bytes);
    e->name = name;
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    e->slot = slot;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

static int copy_checked(float *dst, const unsigned char *src, size_t n, const char *name,
                        char *msg, size_t msglen)
{
    f32_from_le(dst, src, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return fail(msg, msglen, CBRNN_ERR_NONFINITE, "tensor %s: element %zu is %s", name, i,
                        isnan(dst[i]) ? "NaN" : "infinite");
    return 0;
}

/* rls.P (shape already checked): finite, symmetric, a positive diagonal,
 * as the RLS rule leaves it. */
static int load_rls_state(cbrnn_model *m, const unsigned char *src, char *msg, size_t msglen)
{
    float *P = cbrnn_model_rls_state(m);
    if (!P)
        return fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
    const size_t n = (size_t)m->rls_n;
    int rc = copy_checked(P, src, n * n, "rls.P", msg, msglen);
    for (size_t i = 0; !rc && i < n; i++) {
        if (!(P[i * n + i] > 0.0f))
            rc = fail(msg, msglen, CBRNN_ERR_FORMAT,
                      "tensor rls.P: diagonal element %zu is %g; it must be positive", i,
                      (double)P[i * n + i]);
        for (size_t j = i + 1; !rc && j < n; j++)
            if (P[i * n + j] != P[j * n + i])
                rc = fail(msg, msglen, CBRNN_ERR_FORMAT,
                          "tensor rls.P: not symmetric (elements [%zu,%zu] and [%zu,%zu] differ)",
                          i, j, j, i);
    }
    if (rc)
        cbrnn_model_drop_rls_state(m);
    return rc;
}

/* After the metadata: build the model, check every tensor against it and
 * copy the data in. */
static cbrnn_model *load_tensors(json_t *root, const struct meta_parsed *p,
                                 const unsigned char *data, uint64_t data_len, int *err,
                                 char *msg, size_t msglen)
{
    /* Allocation is bounded by what the file holds (see ALLOC_SLACK_FLOATS). */
    size_t need = cbrnn_model_config_params(&p->cfg);
    if (need > data_len / 4 + ALLOC_SLACK_FLOATS) {
        *err = fail(msg, msglen, CBRNN_ERR_SHAPE,
                    "the configuration needs %zu parameters (%zu bytes) but the file holds only "
                    "%llu bytes of tensor data",
                    need, 4 * need, (unsigned long long)data_len);
        return NULL;
    }
    int e = 0;
    cbrnn_model *m = cbrnn_model_create(&p->cfg, &e);
    if (!m) {
        *err = fail(msg, msglen, e ? e : CBRNN_ERR_NOMEM, "cannot create the model: %s",
                    cbrnn_strerror(e ? e : CBRNN_ERR_NOMEM));
        return NULL;
    }
    const int x0 = m->n_tensors; /* the first extra slot */
    struct entry ent[CBRNN_MAX_TENSORS + N_EXTRA_SLOTS];
    int seen[CBRNN_MAX_TENSORS + N_EXTRA_SLOTS] = {0};
    int n = 0, rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__"))
            continue;
        struct entry one;
        rc = parse_entry(key, v, m, data_len, &one, msg, msglen);
        if (rc)
            goto bad;
        seen[one.slot] = 1; /* names are unique (duplicate keys are refused) */
        ent[n++] = one;
    }
    for (int i = 0; i < m->n_tensors; i++)
        if (!seen[i]) {
            rc = fail(msg, msglen, CBRNN_ERR_FORMAT, "missing tensor %s", m->tensors[i].name);
            goto bad;
        }
    /* An RLS state where no host could learn by RLS (hosts take it up only
     * under that rule; under SGD it waits for --rule rls). */
    if (seen[x0 + SLOT_RLS] && !cbrnn_rule_rls_fits(p->cfg.wiring, (cbrnn_target)p->target)) {
        rc = fail(msg, msglen, CBRNN_ERR_FORMAT,
                  "tensor rls.P: an RLS state, but RLS does not apply to a model with the %s "
                  "wiring and target %s (it needs the readout wiring and a predict or map "
                  "target)", wiring_names[p->cfg.wiring], target_names[p->target]);
        goto bad;
    }
    if (seen[x0 + SLOT_RLS] && cbrnn_model_rls_dim(m) > CBRNN_RLS_MAX_DIM) {
        rc = fail(msg, msglen, CBRNN_ERR_FORMAT,
                  "tensor rls.P: an RLS state of %d x %d, but RLS takes at most %d inputs",
                  cbrnn_model_rls_dim(m), cbrnn_model_rls_dim(m), CBRNN_RLS_MAX_DIM);
        goto bad;
    }
    if (seen[x0 + SLOT_MEAN] != seen[x0 + SLOT_STD]) {
        rc = fail(msg, msglen, CBRNN_ERR_FORMAT, "frontend.%s without frontend.%s",
                  seen[x0 + SLOT_MEAN] ? "mean" : "std", seen[x0 + SLOT_MEAN] ? "std" : "mean");
        goto bad;
    }
    /* The tensors must tile the data section exactly: no gap, no overlap,
     * nothing after the last one (the reference implementation's rule). */
    qsort(ent, (size_t)n, sizeof ent[0], cmp_entry);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (ent[i].begin < pos) {
            rc = fail(msg, msglen, CBRNN_ERR_FORMAT,
                      "tensors %s and %s overlap (bytes %llu..%llu and %llu..%llu)",
                      ent[i - 1].name, ent[i].name, (unsigned long long)ent[i - 1].begin,
                      (unsigned long long)ent[i - 1].end, (unsigned long long)ent[i].begin,
                      (unsigned long long)ent[i].end);
            goto bad;
        }
        if (ent[i].begin > pos) {
            rc = fail(msg, msglen, CBRNN_ERR_FORMAT, "gap of %llu bytes in the data before tensor %s",
                      (unsigned long long)(ent[i].begin - pos), ent[i].name);
            goto bad;
        }
        pos = ent[i].end;
    }
    if (pos != data_len) {
        rc = fail(msg, msglen, CBRNN_ERR_FORMAT,
                  "%llu bytes of data after the last tensor (the tensors end at byte %llu)",
                  (unsigned long long)(data_len - pos), (unsigned long long)pos);
        goto bad;
    }
    float *norm = NULL;
    for (int i = 0; i < n; i++) {
        const struct entry *t = &ent[i];
        size_t cnt = (size_t)(t->end - t->begin) / 4;
        if (t->slot < m->n_tensors) {
            rc = copy_checked(m->params + m->tensors[t->slot].offset, data + t->begin, cnt,
                              t->name, msg, msglen);
        } else if (t->slot == x0 + SLOT_RLS) {
            rc = load_rls_state(m, data + t->begin, msg, msglen);
        } else {
            if (!norm && !(norm = calloc(2 * (size_t)m->cfg.n_in, sizeof *norm))) {
                rc = fail(msg, msglen, CBRNN_ERR_NOMEM, "out of memory");
                goto bad;
            }
            float *dst = norm + (size_t)(t->slot - m->n_tensors) * (size_t)m->cfg.n_in;
            rc = copy_checked(dst, data + t->begin, cnt, t->name, msg, msglen);
            for (size_t k = 0; !rc && t->slot == x0 + SLOT_STD && k < cnt; k++)
                if (!(dst[k] > 0))
                    rc = fail(msg, msglen, CBRNN_ERR_FORMAT,
                              "tensor frontend.std: element %zu is %g; standard deviations must "
                              "be positive", k, (double)dst[k]);
        }
        if (rc) {
            free(norm);
            goto bad;
        }
    }
    if (norm) {
        rc = cbrnn_model_set_norm(m, norm, norm + m->cfg.n_in);
        free(norm);
        if (rc) {
            rc = fail(msg, msglen, rc, "cannot store the normaliser: %s", cbrnn_strerror(rc));
            goto bad;
        }
    }
    return m;
bad:
    cbrnn_model_destroy(m);
    *err = rc;
    return NULL;
}

/* The file's first bytes (avail of its len; avail >= min(len, PREFIX_LEN)):
 * not audio, a header length that fits the file and HEADER_CAP, a header
 * that starts with '{'. *hlen: the header length. 0 or the error code. */
#define PREFIX_LEN 9
static int check_prefix(const unsigned char *buf, size_t avail, uint64_t len, uint64_t *hlen,
                        char *msg, size_t msglen)
{
    if (len < 8)
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "%llu bytes: too short for a safetensors file (the header length alone is 8)",
                    (unsigned long long)len);
    /* Audio given where a model belongs (e.g. `cbrnn eval` with its
     * arguments swapped): say so rather than report a huge header length. */
    static const struct { const char *magic, *what; } audio[] = {
        {"RIFF", "a WAV (RIFF) audio file"}, {"RF64", "a WAV (RF64) audio file"},
        {"fLaC", "a FLAC audio file"},       {"OggS", "an Ogg audio file"},
        {"FORM", "an AIFF audio file"},      {"ID3", "an MP3 audio file"}};
    for (size_t k = 0; k < sizeof audio / sizeof *audio; k++)
        if (!memcmp(buf, audio[k].magic, strlen(audio[k].magic)))
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "this is %s, not a cbrnn model (.safetensors)", audio[k].what);
    uint64_t h = 0;
    for (int b = 0; b < 8; b++)
        h |= (uint64_t)buf[b] << (8 * b);
    if (h > len - 8)
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "header length %llu is larger than the rest of the file (%llu bytes): "
                    "truncated or not a safetensors file",
                    (unsigned long long)h, (unsigned long long)(len - 8));
    if (h > HEADER_CAP)
        return fail(msg, msglen, CBRNN_ERR_FORMAT, "header length %llu exceeds the %llu-byte limit",
                    (unsigned long long)h, (unsigned long long)HEADER_CAP);
    if (h < 2 || avail < PREFIX_LEN || buf[8] != '{')
        return fail(msg, msglen, CBRNN_ERR_FORMAT,
                    "the header does not start with '{': not a safetensors file");
    *hlen = h;
    return 0;
}

/* The header's shape before jansson builds it: at most HEADER_MAX_VALUES
 * values, nested at most HEADER_MAX_DEPTH deep (strings skipped whole). A
 * header that passes costs jansson a few times its own size at most. */
static int prescan_header(const unsigned char *h, size_t n, char *msg, size_t msglen)
{
    size_t values = 0;
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = h[i];
        if (c == '"') { /* to the closing quote; JSON escapes are \x or \uXXXX */
            for (i++; i < n && h[i] != '"'; i++)
                i += h[i] == '\\';
            continue;
        }
        if (c == '{' || c == '[') {
            if (++depth > HEADER_MAX_DEPTH)
                return fail(msg, msglen, CBRNN_ERR_FORMAT,
                            "the header nests deeper than %d levels (a safetensors header nests "
                            "%d: the header, a tensor, its shape)", HEADER_MAX_DEPTH,
                            HEADER_MAX_DEPTH);
            values++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',') {
            values++;
        }
        if (values > HEADER_MAX_VALUES)
            return fail(msg, msglen, CBRNN_ERR_FORMAT,
                        "the header has more than %d JSON values (a cbrnn header has a few "
                        "hundred)", HEADER_MAX_VALUES);
    }
    return 0;
}

cbrnn_model *cbrnn_model_load_mem(const unsigned char *buf, size_t len, int *err, char *msg,
                                  size_t msglen)
{
    int e = 0;
    if (!err)
        err = &e;
    if (msg && msglen)
        msg[0] = 0;
    if (!buf) {
        *err = fail(msg, msglen, CBRNN_ERR_ARG, "no buffer");
        return NULL;
    }
    uint64_t hlen = 0;
    if ((*err = check_prefix(buf, len, len, &hlen, msg, msglen)) != 0 ||
        (*err = prescan_header(buf + 8, (size_t)hlen, msg, msglen)) != 0)
        return NULL;
    json_error_t je;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        *err = fail(msg, msglen, CBRNN_ERR_FORMAT, "header is not valid JSON: %s (at byte %d)",
                    je.text, je.position);
        return NULL;
    }
    cbrnn_model *m = NULL;
    struct meta_parsed p;
    memset(&p, 0, sizeof p);
    json_t *meta = json_object_get(root, "__metadata__");
    if (!json_is_object(root)) {
        *err = fail(msg, msglen, CBRNN_ERR_FORMAT, "header is not a JSON object");
    } else if (!json_is_object(meta)) {
        *err = fail(msg, msglen, CBRNN_ERR_FORMAT,
                    meta ? "__metadata__ is not an object"
                         : "no __metadata__: not a cbrnn model file (a cbrnn file records its "
                           "configuration there)");
    } else if ((*err = parse_meta(meta, &p, msg, msglen)) == 0) {
        m = load_tensors(root, &p, buf + 8 + hlen, (uint64_t)(len - 8) - hlen, err, msg, msglen);
    }
    if (m) {
        m->feat = p.feat;
        m->file_format = p.version;
        m->stream_norm_s = p.stream_norm;
        m->stream_norm_floor = p.stream_norm_floor;
        m->online_rule = p.online_rule ? CBRNN_RULE_RLS : CBRNN_RULE_SGD;
        m->rls_prior = p.rls_prior;
        m->rls_forget = p.rls_forget;
        m->target = (cbrnn_target)p.target;
        m->horizon = p.horizon;
        for (int g = 0; g < CBRNN_NGROUPS; g++)
            m->frozen[g] = p.frozen[g];
        const char *names[CBRNN_MAX_CLASSES];
        for (int i = 0; i < p.n_classes; i++)
            names[i] = json_string_value(json_array_get(p.classes, (size_t)i));
        int rc = cbrnn_model_set_classes(m, p.n_classes, names);
        const char *key;
        json_t *v;
        json_object_foreach(meta, key, v) {
            if (!rc && !is_reserved(key))
                rc = cbrnn_model_set_meta(m, key, json_string_value(v));
        }
        if (rc) {
            *err = fail(msg, msglen, rc, "cannot store the metadata: %s", cbrnn_strerror(rc));
            cbrnn_model_destroy(m);
            m = NULL;
        }
    }
    json_decref(p.classes);
    json_decref(root);
    if (m)
        *err = 0;
    return m;
}

/* Reads n bytes at the file's current position; 0, or -1 (errno) / short. */
static int read_full(int fd, unsigned char *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = read(fd, buf + *got, n - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        *got += (size_t)r;
    }
    return 0;
}

/* Opens path for reading if it is a regular file. O_NONBLOCK so that a
 * named pipe without a writer (or a device) cannot block the open; it is
 * cleared before reading. -1 and the error (msg) otherwise. */
static int open_regular(const char *path, struct stat *st, int *err, char *msg, size_t msglen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        *err = fail(msg, msglen, CBRNN_ERR_IO, "%s: %s", path, strerror(errno));
        return -1;
    }
    int fl = -1;
    st->st_mode = 0;
    if (fstat(fd, st) || !S_ISREG(st->st_mode) || (fl = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        *err = fail(msg, msglen, CBRNN_ERR_IO, "%s: not a regular file%s", path,
                    fl < 0 && S_ISDIR(st->st_mode)   ? " (a folder)"
                    : fl < 0 && S_ISFIFO(st->st_mode) ? " (a named pipe)"
                    : fl < 0 && (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) ? " (a device)"
                                                                               : "");
        close(fd);
        return -1;
    }
    return fd;
}

cbrnn_model *cbrnn_model_load(const char *path, int *err, char *msg, size_t msglen)
{
    return cbrnn_model_load_bytes(path, NULL, NULL, err, msg, msglen);
}

cbrnn_model *cbrnn_model_load_bytes(const char *path, unsigned char **bytes, size_t *nbytes,
                                    int *err, char *msg, size_t msglen)
{
    int e = 0;
    if (!err)
        err = &e;
    if (bytes)
        *bytes = NULL;
    if (nbytes)
        *nbytes = 0;
    if (!path) {
        *err = fail(msg, msglen, CBRNN_ERR_ARG, "no path");
        return NULL;
    }
    struct stat st;
    int fd = open_regular(path, &st, err, msg, msglen);
    if (fd < 0)
        return NULL;
    /* The first bytes decide whether the rest is worth reading (a big
     * audio or text file is told apart without reading it). */
    char why[512];
    why[0] = 0;
    const uint64_t flen = (uint64_t)st.st_size;
    unsigned char head[PREFIX_LEN];
    size_t got = 0, want = flen < PREFIX_LEN ? (size_t)flen : PREFIX_LEN;
    uint64_t hlen = 0;
    int rc = read_full(fd, head, want, &got) ? CBRNN_ERR_IO
             : check_prefix(head, got, flen, &hlen, why, sizeof why);
    if (!rc && flen > FILE_CAP)
        rc = fail(why, sizeof why, CBRNN_ERR_FORMAT, "%llu bytes, above the %llu-byte limit",
                  (unsigned long long)flen, (unsigned long long)FILE_CAP);
    unsigned char *buf = NULL;
    if (!rc && !(buf = malloc((size_t)flen)))
        rc = fail(why, sizeof why, CBRNN_ERR_NOMEM, "out of memory");
    if (!rc) {
        memcpy(buf, head, got);
        size_t more = 0;
        if (read_full(fd, buf + got, (size_t)flen - got, &more))
            rc = fail(why, sizeof why, CBRNN_ERR_IO, "read %zu of %llu bytes", got + more,
                      (unsigned long long)flen);
    }
    close(fd);
    if (rc) {
        if (!why[0])
            snprintf(why, sizeof why, "read %zu of %llu bytes", got, (unsigned long long)flen);
        free(buf);
        *err = fail(msg, msglen, rc, "%s: %s", path, why);
        return NULL;
    }
    cbrnn_model *m = cbrnn_model_load_mem(buf, (size_t)flen, err, why, sizeof why);
    if (m && bytes && nbytes) { /* the caller's: exactly what m was made from */
        *bytes = buf;
        *nbytes = (size_t)flen;
    } else {
        free(buf);
    }
    if (!m)
        fail(msg, msglen, *err, "%s: %s", path, why);
    return m;
}
