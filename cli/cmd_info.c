/* cmd_info.c: `cbrnn info MODEL [--json]`: what a model file holds: the
 * configuration, parameter counts per module, the feature front end it
 * expects, its target and the provenance recorded when it was trained.
 * Reads only; a file the loader refuses is reported with its reason
 * (exit 2). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cbrnn/cbrnn_model.h"
#include "host_files.h"
#include "util_json.h"

const char cmd_info_summary[] = "show a model file's configuration, sizes, features and provenance";

static const char *const arch_names[] = {"cbrnn", "rnn", "reservoir"};
static const char *const wiring_names[] = {"readout", "loop"};
static const char *const act_names[] = {"tanh", "relu", "leaky_relu"};
static const char *const target_names[] = {"predict", "map", "classify", "task"};
static const char *const group_names[] = {"cortex", "cerebellum", "readout"};

static void usage(FILE *f)
{
    fprintf(f, "usage: cbrnn info MODEL [--json]\n"
               "\n"
               "Shows what MODEL (a .safetensors file written by cbrnn) holds: architecture,\n"
               "wiring, sizes and parameter counts per module (cortex, cerebellum, readout),\n"
               "the feature front end it expects, its target, and its training provenance.\n"
               "\n"
               "  --json   one JSON object instead of text\n");
}

/* Characters of a ';'-separated list value that the text output shows. */
#define META_LIST_SHOWN 200

/* n bytes of s as text a terminal shows as they are (host_shown_text:
 * control bytes and the backslash as \xHH), in pieces. */
static void put_text(const char *s, size_t n)
{
    char buf[4 * 256 + 1];
    for (size_t i = 0; i < n && s[i]; i += 256)
        fputs(host_shown_text(buf, sizeof buf, s + i, n - i < 256 ? n - i : 256), stdout);
}

/* One provenance line. A long list (held_out: ';'-separated names) shows
 * the names that fit in META_LIST_SHOWN characters and how many more there
 * are; --json gives the whole value. */
static void print_meta(const char *key, const char *val)
{
    size_t len = strlen(val);
    printf("  ");
    put_text(key, strlen(key));
    printf("%*s ", strlen(key) < 26 ? (int)(26 - strlen(key)) : 0, "");
    if (len <= META_LIST_SHOWN || !strchr(val, ';')) {
        put_text(val, len);
        printf("\n");
        return;
    }
    size_t cut = 0;
    for (size_t k = 0; k <= META_LIST_SHOWN; k++)
        if (val[k] == ';')
            cut = k;
    int more = 0;
    for (const char *p = val + cut; *p; p++)
        more += *p == ';';
    if (cut == 0) /* a first name longer than the line: shown whole */
        cut = strcspn(val, ";");
    put_text(val, cut);
    printf("; ... (%d more; --json shows all)\n", more);
}

static void print_text(const char *path, const cbrnn_model *m)
{
    const cbrnn_model_config *c = &m->cfg;
    const cbrnn_feat_config *f = &m->feat;
    printf("model:        %s (format cbrnn-%d)\n", path, m->file_format);
    printf("architecture: %s, %s wiring, %s, alpha %g", arch_names[c->arch],
           wiring_names[c->wiring], act_names[c->act], (double)c->alpha);
    if (c->arch == CBRNN_ARCH_RESERVOIR)
        printf(", spectral radius %g", (double)c->spectral_radius);
    printf("\nsizes:        %d inputs, cortex %d, cerebellum ", c->n_in, c->n_hidden);
    if (c->n_cb_hidden == 0)
        printf("none");
    for (int i = 0; i < c->n_cb_hidden; i++)
        printf("%s%d", i ? "," : "", c->cb_hidden[i]);
    printf(", %d outputs\n", c->n_out);
    size_t tot = 0;
    printf("parameters:  ");
    for (int g = 0; g < CBRNN_NGROUPS; g++) {
        size_t n = cbrnn_model_group_params(m, g);
        tot += n;
        printf(" %s %zu%s,", group_names[g], n, m->frozen[g] ? " (frozen)" : "");
    }
    printf(" total %zu (%.1f kB as float32)\n", tot, 4.0 * (double)tot / 1000.0);
    printf("features:     ");
    if (f->n_mfcc > 0)
        printf("%d MFCC from %d", f->n_mfcc, f->n_mels);
    else
        printf("%d", f->n_mels);
    printf(" log-mel bands, %g Hz to ", f->f_min);
    if (f->f_max > 0)
        printf("%g Hz", f->f_max);
    else
        printf("min(8000 Hz, Nyquist)");
    printf(", %g ms window, %g ms hop%s; %d per frame; trained at %g Hz\n", f->win_ms, f->hop_ms,
           f->deltas ? ", with deltas" : "", cbrnn_feat_config_dim(f), f->sample_rate);
    printf("normaliser:   %s", m->norm_mean ? "stored (frontend.mean, frontend.std)"
                                            : "none (inputs used as they come)");
    if (m->stream_norm_s > 0)
        printf(", then running per stream (time constant %g s, floor %g)",
               (double)m->stream_norm_s, (double)m->stream_norm_floor);
    printf("\noutput:       %s\n",
           !m->cfg.residual ? "plain (the seed's CBRNN: y = model(x))"
           : m->stream_norm_s > 0
               ? "residual: frame + running scale x cerebellum (PyTorch: y = x[..., :O] + "
                 "s[..., :O] * model(z))"
               : "residual: frame + cerebellum (PyTorch: y = x[..., :O] + model(x))");
    printf("target:       %s", target_names[m->target]);
    if (m->target == CBRNN_TARGET_PREDICT)
        printf(", %d frame%s ahead", m->horizon, m->horizon == 1 ? "" : "s");
    if (m->target == CBRNN_TARGET_CLASSIFY) {
        printf(", %d classes:", m->n_classes);
        for (int i = 0; i < m->n_classes; i++) { /* quoted: a name may hold spaces */
            printf("%s\"", i ? ", " : " ");
            put_text(m->class_names[i], strlen(m->class_names[i]));
            printf("\"");
        }
    }
    printf("\n");
    if (m->online_rule == CBRNN_RULE_RLS)
        printf("online rule:  rls: recursive least squares on the cerebellum's last layer "
               "(prior %g, forgetting %g); hosts' --rule sgd overrides\n",
               (double)m->rls_prior, (double)m->rls_forget);
    else
        printf("online rule:  sgd: per-frame gradient (lr, momentum, decay from the host)\n");
    if (m->rls_P)
        printf("rls state:    saved (rls.P, %d x %d): learning by RLS%s goes on from it, "
               "not from the prior\n", m->rls_n, m->rls_n,
               m->online_rule == CBRNN_RULE_RLS ? "" : " (a host's --rule rls)");
    if (m->n_meta) {
        printf("provenance:\n");
        for (int i = 0; i < m->n_meta; i++)
            print_meta(m->meta_key[i], m->meta_val[i]);
    }
}

static void print_json(const char *path, const cbrnn_model *m)
{
    const cbrnn_model_config *c = &m->cfg;
    const cbrnn_feat_config *f = &m->feat;
    printf("{\"file\":");
    fput_json_string(stdout, path);
    printf(",\"format\":\"cbrnn-%d\",\"arch\":\"%s\",\"wiring\":\"%s\",\"activation\":\"%s\","
           "\"alpha\":%.9g,\"n_in\":%d,\"n_hidden\":%d,\"n_out\":%d,\"cb_hidden\":[",
           m->file_format, arch_names[c->arch], wiring_names[c->wiring], act_names[c->act], (double)c->alpha,
           c->n_in, c->n_hidden, c->n_out);
    for (int i = 0; i < c->n_cb_hidden; i++)
        printf("%s%d", i ? "," : "", c->cb_hidden[i]);
    printf("],\"spectral_radius\":%.9g,\"params\":{", (double)c->spectral_radius);
    size_t tot = 0;
    for (int g = 0; g < CBRNN_NGROUPS; g++) {
        size_t n = cbrnn_model_group_params(m, g);
        tot += n;
        printf("\"%s\":%zu,", group_names[g], n);
    }
    printf("\"total\":%zu},\"frozen\":[", tot);
    for (int g = 0, k = 0; g < CBRNN_NGROUPS; g++)
        if (m->frozen[g])
            printf("%s\"%s\"", k++ ? "," : "", group_names[g]);
    printf("],\"features\":{\"sample_rate\":%.17g,\"win_ms\":%.17g,\"hop_ms\":%.17g,"
           "\"n_mels\":%d,\"f_min\":%.17g,\"f_max\":%.17g,\"n_mfcc\":%d,\"deltas\":%d,\"dim\":%d},",
           f->sample_rate, f->win_ms, f->hop_ms, f->n_mels, f->f_min, f->f_max, f->n_mfcc,
           f->deltas, cbrnn_feat_config_dim(f));
    printf("\"normaliser\":%s,\"stream_norm\":%.9g,\"stream_norm_floor\":%.9g,"
           "\"output\":\"%s\",\"online_rule\":\"%s\",\"rls_prior\":%.9g,\"rls_forget\":%.9g,"
           "\"target\":\"%s\",\"horizon\":%d,\"classes\":[",
           m->norm_mean ? "true" : "false", (double)m->stream_norm_s,
           (double)m->stream_norm_floor, m->cfg.residual ? "residual" : "plain",
           m->online_rule == CBRNN_RULE_RLS ? "rls" : "sgd", (double)m->rls_prior,
           (double)m->rls_forget, target_names[m->target], m->horizon);
    for (int i = 0; i < m->n_classes; i++) {
        if (i)
            putchar(',');
        fput_json_string(stdout, m->class_names[i]);
    }
    /* the saved RLS state (rls.P): its size, or null */
    if (m->rls_P)
        printf("],\"rls_state\":{\"tensor\":\"rls.P\",\"n\":%d},\"metadata\":{", m->rls_n);
    else
        printf("],\"rls_state\":null,\"metadata\":{");
    for (int i = 0; i < m->n_meta; i++) {
        if (i)
            putchar(',');
        fput_json_string(stdout, m->meta_key[i]);
        putchar(':');
        fput_json_string(stdout, m->meta_val[i]);
    }
    printf("}}\n");
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "cbrnn info: expected one MODEL file\n");
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    char msg[1024];
    int err = 0;
    cbrnn_model *m = cbrnn_model_load(path, &err, msg, sizeof msg);
    if (!m) {
        fprintf(stderr, "cbrnn info: %s\n", msg);
        return 2;
    }
    if (json)
        print_json(path, m);
    else
        print_text(path, m);
    cbrnn_model_destroy(m);
    return 0; /* a failed write to stdout: main's cli_finish_stdout says so */
}
