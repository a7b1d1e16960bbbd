/* host.c: the code every host of the engine shares (cbrnn_host.h): opening
 * a model and starting its engine, MIDI notes as labels, adapted-model
 * files and the snapshot/save handshake. Library code: never prints,
 * never exits; the MIDI function runs on the audio thread and must not
 * allocate, lock or call the kernel. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_host.h"
#include "file_replace.h"
#include "host_sha256.h"

#define MAX_SAVES 16 /* saves in flight; more means the writer is stuck */
#define PATH_LEN 4096

static void set_err(int *err, int code)
{
    if (err)
        *err = code;
}

cbrnn_engine *cbrnn_host_start(const cbrnn_model *m, const char *name,
                               const cbrnn_engine_config *c, int max_block, int *err,
                               char *msg, size_t msglen)
{
    if (!m || !c) {
        set_err(err, CBRNN_ERR_ARG);
        snprintf(msg, msglen, "no model");
        return NULL;
    }
    if (!name)
        name = "the model";
    if (m->target == CBRNN_TARGET_TASK) {
        set_err(err, CBRNN_ERR_UNSUPPORTED);
        snprintf(msg, msglen, "%s is a sequence-task model (target task), not an audio model",
                 name);
        return NULL;
    }
    if (!(c->sample_rate >= CBRNN_RATE_MIN && c->sample_rate <= CBRNN_RATE_MAX)) {
        set_err(err, CBRNN_ERR_RATE);
        snprintf(msg, msglen, "sample rate %g Hz is outside %g..%g Hz", c->sample_rate,
                 CBRNN_RATE_MIN, CBRNN_RATE_MAX);
        return NULL;
    }
    cbrnn_rule rule = c->rule != CBRNN_RULE_AUTO ? c->rule : m->online_rule;
    const int last_in = m->n_cb_layers ? m->cb_dim[m->n_cb_layers - 1] : m->cfg.n_hidden;
    if (rule == CBRNN_RULE_RLS && !cbrnn_rule_rls_fits(m->cfg.wiring, m->target)) {
        set_err(err, CBRNN_ERR_UNSUPPORTED);
        snprintf(msg, msglen, "%s: the rls online rule needs the readout wiring and a predict "
                              "or map target (a squared error); use --rule sgd", name);
        return NULL;
    }
    if (rule == CBRNN_RULE_RLS && last_in + 1 > CBRNN_RLS_MAX_DIM) {
        set_err(err, CBRNN_ERR_UNSUPPORTED);
        snprintf(msg, msglen, "%s: the rls online rule takes a last layer of at most %d inputs "
                              "(this one has %d); use --rule sgd", name, CBRNN_RLS_MAX_DIM - 1,
                 last_in);
        return NULL;
    }
    const int g = cbrnn_engine_learned_group(m);
    if (c->learn && m->frozen[g]) {
        set_err(err, CBRNN_ERR_UNSUPPORTED);
        snprintf(msg, msglen, "%s: its %s, what online learning changes, is frozen (model "
                 "metadata `frozen`): run it without learning", name,
                 g == CBRNN_GROUP_CEREBELLUM ? "cerebellum" : "readout");
        return NULL;
    }
    cbrnn_engine_config ec = *c;
    if (max_block > 0) {
        /* What the engine builds: its hop at this rate. */
        cbrnn_feat_config fc;
        cbrnn_model_feat_config(m, c->sample_rate, &fc);
        int hop = cbrnn_feat_config_hop(&fc);
        ec.record_capacity = max_block / (hop > 0 ? hop : 1) + 64;
    }
    int e_err = 0;
    cbrnn_engine *e = cbrnn_engine_create(m, &ec, &e_err);
    if (!e) {
        set_err(err, e_err);
        snprintf(msg, msglen, "%s: cannot run this model at %g Hz: %s", name, c->sample_rate,
                 cbrnn_strerror(e_err));
        return NULL;
    }
    set_err(err, 0);
    return e;
}

cbrnn_engine *cbrnn_host_open(const char *path, const cbrnn_engine_config *c, int max_block,
                              int *err, char *msg, size_t msglen)
{
    int l_err = 0;
    if (!path) {
        set_err(err, CBRNN_ERR_ARG);
        snprintf(msg, msglen, "no model file given");
        return NULL;
    }
    cbrnn_model *m = cbrnn_model_load(path, &l_err, msg, msglen);
    if (!m) {
        set_err(err, l_err);
        return NULL;
    }
    cbrnn_engine *e = cbrnn_host_start(m, path, c, max_block, err, msg, msglen);
    cbrnn_model_destroy(m);
    return e;
}

cbrnn_model *cbrnn_host_load_model(const char *path, char sha256[65], int *err, char *msg,
                                   size_t msglen)
{
    unsigned char *bytes;
    size_t n;
    cbrnn_model *m = cbrnn_model_load_bytes(path, &bytes, &n, err, msg, msglen);
    if (!m)
        return NULL;
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, bytes, n);
    sha256_final_hex(&c, sha256);
    free(bytes);
    return m;
}

int cbrnn_host_engine_option(cbrnn_engine_config *c, int k, const char *arg, char *msg,
                             size_t msglen)
{
    static const char *const names[CBRNN_HOST_ENGINE_NOPTS] = {
        "rule", "rls-prior", "rls-forget", /* cbrnn_host_rule_option */
        "perturb-delay", "perturb-gain", "perturb-pitch", "perturb-max-delay",
        "feedback-to-model"}; /* cbrnn_host_perturb_option */
    if (k < 0 || k >= CBRNN_HOST_ENGINE_NOPTS) {
        snprintf(msg, msglen, "engine option %d: no such option", k);
        return -1;
    }
    const int rule = cbrnn_host_rule_option(c, names[k], arg, msg, msglen); /* 0: not a rule option */
    if (rule)
        return rule < 0 ? -1 : 0;
    return cbrnn_host_perturb_option(c, names[k], arg, msg, msglen) ? -1 : 0;
}

static const char *const rule_names[] = {"auto", "sgd", "rls"}; /* cbrnn_rule order */

const char *cbrnn_rule_name(cbrnn_rule r)
{
    return (int)r >= 0 && (int)r < 3 ? rule_names[r] : NULL;
}

int cbrnn_host_rule_option(cbrnn_engine_config *c, const char *name, const char *arg,
                           char *msg, size_t msglen)
{
    char *end = NULL;
    if (!name || (strcmp(name, "rule") && strcmp(name, "rls-prior") && strcmp(name, "rls-forget")))
        return 0; /* not a rule option */
    if (!c || !arg) {
        if (msg && msglen)
            snprintf(msg, msglen, "--%s: needs a value", name);
        return -1;
    }
    if (!strcmp(name, "rule")) {
        for (int i = 0; i < 3; i++)
            if (!strcmp(arg, rule_names[i])) {
                c->rule = (cbrnn_rule)i;
                return 1;
            }
        snprintf(msg, msglen, "--rule '%s': expected auto, sgd or rls", arg);
        return -1;
    }
    if (!strcmp(name, "rls-prior")) {
        double v = strtod(arg, &end);
        /* checked as the float it becomes (1e-50 would be 0: "the model's") */
        if (end == arg || *end || !((float)v >= 1e-9f && (float)v <= 1e9f)) {
            snprintf(msg, msglen, "--rls-prior '%s': expected a number in [1e-9, 1e9]", arg);
            return -1;
        }
        c->rls_prior = (float)v;
        return 1;
    }
    if (!strcmp(name, "rls-forget")) {
        double v = strtod(arg, &end);
        if (end == arg || *end || !(v >= 0.9 && v <= 1)) {
            snprintf(msg, msglen, "--rls-forget '%s': expected a number in [0.9, 1]", arg);
            return -1;
        }
        c->rls_forget = (float)v;
        return 1;
    }
    return 0;
}

const char *cbrnn_host_rule_help(void)
{
    return "  --rule R           how the cerebellum learns online: sgd (per-frame gradient\n"
           "                     with --lr, --momentum, --decay), rls (recursive least\n"
           "                     squares on its last layer: faster on a new voice; readout\n"
           "                     models with a predict or map target), or auto (default:\n"
           "                     what the model file says; sgd if it says nothing)\n"
           "  --rls-prior X      rls: how strongly the loaded weights hold, > 0 (default:\n"
           "                     the model's, else 30). A model saved while learning by\n"
           "                     RLS carries the rule's state and learning goes on from\n"
           "                     it, unless --rls-prior is given (a fresh start)\n"
           "  --rls-forget X     rls: forgetting factor in [0.9, 1]; 0.9999 remembers about\n"
           "                     10^4 frames (default: the model's, else 0.9999)\n";
}

void cbrnn_host_rule_describe(const cbrnn_engine *e, char *buf, size_t len)
{
    cbrnn_engine_rule_info info;
    cbrnn_engine_get_rule(e, &info);
    if (info.rule == CBRNN_RULE_RLS && info.rls_saved)
        snprintf(buf, len, "rls, from the model's saved state, forget %g", (double)info.rls_forget);
    else if (info.rule == CBRNN_RULE_RLS)
        snprintf(buf, len, "rls, prior %g, forget %g", (double)info.rls_prior,
                 (double)info.rls_forget);
    else
        snprintf(buf, len, "%s", cbrnn_rule_name(CBRNN_RULE_SGD));
}

void cbrnn_midi_labels_init(cbrnn_midi_labels *s, int base)
{
    s->base = base;
    s->held_note = -1;
}

int cbrnn_midi_labels_event(cbrnn_midi_labels *s, const uint8_t *msg, size_t len, int *label)
{
    if (!s || !msg || len < 3 || !label)
        return 0;
    unsigned st = msg[0] & 0xF0u, note = msg[1] & 0x7Fu, vel = msg[2] & 0x7Fu;
    if (st == 0x90 && vel > 0) {
        s->held_note = (int)note;
        *label = (int)note - s->base;
        return 1;
    }
    if ((st == 0x80 || st == 0x90) && (int)note == s->held_note) {
        s->held_note = -1;
        *label = -1;
        return 1;
    }
    return 0;
}

/* The provenance of an adapted model (docs/FORMATS.md). */
static int set_adapted_meta(cbrnn_model *m, const char *path, const char *by, const char *from,
                            int64_t frames, char *msg, size_t msglen)
{
    char val[64];
    snprintf(val, sizeof val, "%lld", (long long)frames);
    if ((by && cbrnn_model_set_meta(m, "adapted_by", by)) ||
        (from && cbrnn_model_set_meta(m, "adapted_from", from)) ||
        cbrnn_model_set_meta(m, "adapted_frames", val)) {
        snprintf(msg, msglen, "%s: out of memory", path);
        return CBRNN_ERR_NOMEM;
    }
    return 0;
}

int cbrnn_host_save_adapted(cbrnn_model *m, const char *path, const char *by, const char *from,
                            int64_t frames, char *msg, size_t msglen)
{
    if (!m || !path) {
        if (msg && msglen)
            snprintf(msg, msglen, "no model or no path to save to");
        return CBRNN_ERR_ARG;
    }
    /* by NULL: not an adapted model (a training's rescue copy) */
    int rc = by ? set_adapted_meta(m, path, by, from, frames, msg, msglen) : 0;
    /* checked at start too, but a file may have appeared there since */
    if (!rc)
        rc = cbrnn_control_check_output(path, msg, msglen);
    return rc ? rc : cbrnn_model_save(m, path, msg, msglen);
}

/* A private folder for a rescue save under base (created 0700; an
 * existing one must be ours and not a link), into dir. 0 or -1. */
static int rescue_dir(const char *base, const char *sub, char *dir, size_t len)
{
    if (!base || !*base || snprintf(dir, len, "%s/%s", base, sub) >= (int)len)
        return -1;
    for (char *p = dir + 1; *p; p++) /* like mkdir -p, each level 0700 */
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() ? 0 : -1;
}

/* dir/PID-FRAMES-BASE into where, BASE cut from its start as much as
 * needed for the name to fit what a save takes (CBRNN_REPLACE_NAME_MAX):
 * any name a host accepts has a rescue name (its end, the extension,
 * kept). 0 or -1 (no room in where). */
static int rescue_name(char *where, size_t len, const char *dir, int64_t frames,
                       const char *base)
{
    char head[64];
    int hn = snprintf(head, sizeof head, "%ld-%lld-", (long)getpid(), (long long)frames);
    size_t bl = strlen(base), room = CBRNN_REPLACE_NAME_MAX - (size_t)hn;
    if (bl > room)
        base += bl - room;
    return snprintf(where, len, "%s/%s%s", dir, head, base) >= (int)len ? -1 : 0;
}

int cbrnn_host_save_rescue(cbrnn_model *m, const char *path, const char *by, const char *from,
                           int64_t frames, char *where, size_t where_len, char *msg,
                           size_t msglen)
{
    if (!m || !path || !where || !where_len)
        return CBRNN_ERR_ARG;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char state[PATH_MAX] = "";
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg == '/')
        snprintf(state, sizeof state, "%s", xdg);
    else if (home && *home == '/')
        snprintf(state, sizeof state, "%s/.local/state", home);
    const char *tmp = getenv("TMPDIR");
    char user[64];
    snprintf(user, sizeof user, "cbrnn-rescue-%ld", (long)geteuid());
    const char *bases[2][2] = {{state, "cbrnn/rescue"},
                               {tmp && *tmp == '/' ? tmp : "/tmp", user}};
    int rc = CBRNN_ERR_IO;
    for (int i = 0; i < 2 && rc; i++) {
        char dir[PATH_MAX];
        if (rescue_dir(bases[i][0], bases[i][1], dir, sizeof dir))
            continue;
        if (rescue_name(where, where_len, dir, frames, base))
            continue;
        rc = cbrnn_host_save_adapted(m, where, by, from, frames, msg, msglen);
    }
    if (rc) {
        where[0] = '\0';
        if (msg && msglen)
            snprintf(msg, msglen, "%s: no rescue copy either (tried %s/cbrnn/rescue and %s/%s)",
                     path, state[0] ? state : "$XDG_STATE_HOME", tmp && *tmp == '/' ? tmp : "/tmp",
                     user);
    }
    return rc;
}

int cbrnn_host_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* ---- the snapshot/save handshake ---- */

struct pending_save {
    int id;
    int sent; /* the snapshot command is with the engine */
    const char *why;
    char path[PATH_LEN];
    char dir[PATH_LEN]; /* non-empty: checked against it again before writing */
};

struct cbrnn_host_saves {
    cbrnn_model *scratch; /* the engine's layout; snapshots land here */
    char *by, *from;
    struct pending_save pend[MAX_SAVES];
    int n_pend, next_id;
    int n_sent; /* pending saves whose snapshot command the engine has */
    int64_t frames_before; /* frames of engines replaced (cbrnn_host_saves_carry) */
};

static char *dup_or_null(const char *s, int *bad)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *bad = 1;
    return d;
}

cbrnn_host_saves *cbrnn_host_saves_create(const cbrnn_engine *e, const char *by,
                                          const char *from, int *err)
{
    if (!e) {
        set_err(err, CBRNN_ERR_ARG);
        return NULL;
    }
    cbrnn_host_saves *s = calloc(1, sizeof *s);
    int bad = !s;
    if (s) {
        s->scratch = cbrnn_model_clone(cbrnn_engine_model(e), NULL);
        s->by = dup_or_null(by, &bad);
        s->from = dup_or_null(from, &bad);
        bad = bad || !s->scratch;
    }
    if (bad) {
        cbrnn_host_saves_destroy(s);
        set_err(err, CBRNN_ERR_NOMEM);
        return NULL;
    }
    set_err(err, 0);
    return s;
}

void cbrnn_host_saves_destroy(cbrnn_host_saves *s)
{
    if (!s)
        return;
    cbrnn_model_destroy(s->scratch);
    free(s->by);
    free(s->from);
    free(s);
}

void cbrnn_host_saves_carry(cbrnn_host_saves *s, int64_t frames)
{
    if (s && frames > 0)
        s->frames_before += frames;
}

int64_t cbrnn_host_saves_frames(const cbrnn_host_saves *s, const cbrnn_engine *e)
{
    cbrnn_engine_stats st = {0};
    if (e)
        cbrnn_engine_get_stats(e, &st);
    return st.frames + (s ? s->frames_before : 0);
}

int cbrnn_host_saves_pending(const cbrnn_host_saves *s)
{
    return s ? s->n_pend : 0;
}

int cbrnn_host_saves_request(cbrnn_host_saves *s, cbrnn_engine *e, const char *path,
                             const char *why)
{
    return cbrnn_host_saves_request_in(s, e, path, why, NULL);
}

/* Hands the engine the snapshot commands of waiting saves, oldest first,
 * while it has a free slot for each (CBRNN_ENGINE_SNAPSHOT_SLOTS): a
 * command beyond them would be dropped by the audio thread. The rest wait
 * for cbrnn_host_saves_collect to free slots, a few milliseconds. */
static void send_waiting(cbrnn_host_saves *s, cbrnn_engine *e)
{
    for (int i = 0; i < s->n_pend && s->n_sent < CBRNN_ENGINE_SNAPSHOT_SLOTS; i++) {
        struct pending_save *p = &s->pend[i];
        if (p->sent)
            continue;
        cbrnn_engine_cmd c = {CBRNN_CMD_SNAPSHOT, p->id, 0};
        if (cbrnn_engine_send(e, &c))
            return; /* the command ring is full: next time */
        p->sent = 1;
        s->n_sent++;
    }
}

int cbrnn_host_saves_request_in(cbrnn_host_saves *s, cbrnn_engine *e, const char *path,
                                const char *why, const char *dir)
{
    if (!s || !e || !path || strlen(path) >= PATH_LEN || (dir && strlen(dir) >= PATH_LEN))
        return CBRNN_ERR_ARG;
    if (s->n_pend == MAX_SAVES)
        return CBRNN_ERR_FULL;
    struct pending_save *p = &s->pend[s->n_pend++];
    p->id = s->next_id++;
    p->sent = 0;
    p->why = why;
    snprintf(p->path, sizeof p->path, "%s", path);
    snprintf(p->dir, sizeof p->dir, "%s", dir ? dir : "");
    send_waiting(s, e);
    return 0;
}

static void write_one(cbrnn_host_saves *s, int i, int64_t frame, cbrnn_host_saved_fn fn,
                      void *ctx)
{
    char msg[PATH_LEN + 256];
    struct pending_save *p = &s->pend[i];
    int rc;
    frame += s->frames_before;
    if (!p->dir[0]) {
        rc = cbrnn_host_save_adapted(s->scratch, p->path, s->by, s->from, frame, msg,
                                     sizeof msg);
    } else if (cbrnn_host_same_file(p->path, s->from)) {
        /* a control message never replaces the model the host runs */
        snprintf(msg, sizeof msg, "%s is the model this host loaded: not overwritten by a "
                                  "control message", p->path);
        rc = CBRNN_ERR_ARG;
    } else {
        /* A confined save: checked again and written beneath the folder
         * without following links (cbrnn_control_save_in), since the file
         * system may have changed since the request. */
        rc = set_adapted_meta(s->scratch, p->path, s->by, s->from, frame, msg, sizeof msg);
        if (!rc)
            rc = cbrnn_control_save_in(s->scratch, p->dir, p->path, msg, sizeof msg);
    }
    if (fn)
        fn(ctx, p->path, p->why, frame, rc, rc ? msg : NULL);
}

int cbrnn_host_saves_collect(cbrnn_host_saves *s, cbrnn_engine *e, cbrnn_host_saved_fn fn,
                             void *ctx)
{
    int id, done = 0;
    int64_t frame;
    while (s && e && cbrnn_engine_take_snapshot(e, s->scratch, &id, &frame) == 1) {
        for (int i = 0; i < s->n_pend; i++)
            if (s->pend[i].id == id) {
                write_one(s, i, frame, fn, ctx);
                /* keep the order: waiting saves go to the engine oldest first */
                memmove(&s->pend[i], &s->pend[i + 1], (size_t)(s->n_pend - i - 1) * sizeof *s->pend);
                s->n_pend--;
                s->n_sent--;
                done++;
                break;
            }
    }
    if (s && e)
        send_waiting(s, e);
    return done;
}

int cbrnn_host_saves_flush(cbrnn_host_saves *s, cbrnn_engine *e, cbrnn_host_saved_fn fn,
                           void *ctx)
{
    if (!s || !e)
        return 0;
    int done = s->n_pend;
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(e, &st);
    cbrnn_engine_copy_params(e, s->scratch);
    for (int i = 0; i < s->n_pend; i++)
        write_one(s, i, st.frames, fn, ctx);
    s->n_pend = s->n_sent = 0;
    return done;
}

/* e's weights into s->scratch, and the frames e has run (*frames). 0, or
 * a negative code with msg naming path. */
static int take_weights(cbrnn_host_saves *s, const cbrnn_engine *e, const char *path,
                        int64_t *frames, char *msg, size_t msglen)
{
    int rc = cbrnn_engine_copy_params(e, s->scratch);
    if (rc) {
        snprintf(msg, msglen, "%s: %s", path, cbrnn_strerror(rc));
        return rc;
    }
    *frames = cbrnn_host_saves_frames(s, e);
    return 0;
}

int cbrnn_host_saves_now(cbrnn_host_saves *s, const cbrnn_engine *e, const char *path, char *msg,
                         size_t msglen)
{
    if (!s || !e || !path)
        return CBRNN_ERR_ARG;
    int64_t frames;
    int rc = take_weights(s, e, path, &frames, msg, msglen);
    return rc ? rc : cbrnn_host_save_adapted(s->scratch, path, s->by, s->from, frames, msg, msglen);
}

int cbrnn_host_saves_last_chance(cbrnn_host_saves *s, const cbrnn_engine *e, const char *path,
                                 char *where, size_t where_len, char *msg, size_t msglen)
{
    if (!s || !e || !path || !where || !where_len)
        return CBRNN_ERR_ARG;
    where[0] = '\0';
    int64_t frames;
    int rc = take_weights(s, e, path, &frames, msg, msglen);
    if (rc)
        return rc;
    if (!(rc = cbrnn_host_save_adapted(s->scratch, path, s->by, s->from, frames, msg, msglen)))
        return 0;
    char why[1024];
    if (cbrnn_host_save_rescue(s->scratch, path, s->by, s->from, frames, where, where_len,
                               why, sizeof why)) {
        size_t n = strlen(msg);
        snprintf(msg + n, msglen - n, "; %s", why);
        return rc;
    }
    return 1;
}
