/* corpus.c: gathering input files (files, folders, @lists), pairing
 * inputs with teachers, reading Audacity label files (corpus.h). Library
 * code of the train module: reports problems through msg, never prints or
 * exits itself. */
#include "corpus.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "host_files.h"

/* Folders nested deeper than this are not searched (a guard against
 * pathological trees; symbolic links to folders are not followed at all). */
#define MAX_DEPTH 32

int corpus_push(corpus *c, const char *path)
{
    char **p = realloc(c->paths, (size_t)(c->n + 1) * sizeof *p);
    if (!p)
        return -1;
    c->paths = p;
    if (!(p[c->n] = strdup(path)))
        return -1;
    c->n++;
    return 0;
}

void corpus_free(corpus *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->paths[i]);
    free(c->paths);
    c->paths = NULL;
    c->n = 0;
}

/* Extensions of the formats libsndfile 1.2 reads (sf_command
 * SFC_GET_FORMAT_MAJOR list, plus Ogg/Opus and MPEG layer III). */
int corpus_is_audio_name(const char *name)
{
    static const char *const ext[] = {"wav", "wave", "flac", "ogg", "oga", "opus", "aif",
                                      "aiff", "aifc", "au", "snd", "caf", "w64", "rf64",
                                      "mp3", "sph", "nist", "voc", "paf", "svx", "sf"};
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (!dot || (slash && dot < slash) || dot == name || (slash && dot == slash + 1))
        return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (!strcasecmp(dot + 1, ext[i]))
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* path as host_shown_text shows it (control bytes as \xHH), malloc'ed;
 * NULL when out of memory. */
static char *shown(const char *path)
{
    size_t n = strlen(path), len = 4 * n + 1;
    char *out = malloc(len);
    return out ? host_shown_text(out, len, path, n) : NULL;
}

/* msg "PATH: why" (path shown) and -1. */
static int path_error(const char *path, const char *why, char *msg, size_t msglen)
{
    char *p = shown(path);
    snprintf(msg, msglen, "%s: %s", p ? p : path, why);
    free(p);
    return -1;
}

/* An entry that cannot be examined or read (why: the reason): left out
 * with a warning "PATH: why" (path shown) through c->warn; with c->strict
 * (or no c->warn to tell) an error. 0 (left out) or -1 with msg. */
static int bad_entry(corpus *c, const char *path, const char *why, char *msg, size_t msglen)
{
    if (c->strict || !c->warn) {
        path_error(path, why, msg, msglen);
        if (c->strict && strlen(msg) + 60 < msglen)
            strcat(msg, " (--strict: an entry that cannot be read is an error)");
        return -1;
    }
    char *p = shown(path);
    const char *name = p ? p : path;
    size_t len = strlen(name) + strlen(why) + 3;
    char *w = malloc(len);
    if (w) {
        snprintf(w, len, "%s: %s", name, why);
        c->warn(c->warn_user, w, 1);
    }
    free(w);
    free(p);
    c->n_left_out++;
    return 0;
}

/* msg "PATH: out of memory" and -1. */
static int no_memory(const char *where, char *msg, size_t msglen)
{
    return path_error(where, "out of memory", msg, msglen);
}

/* The names in folder d but hidden ones, in byte order, into *names
 * (malloc'ed, *n of them). 0, -1 (msg), or 1 when the folder could not be
 * read to its end (msg the reason, without the folder). */
static int folder_names(DIR *d, const char *dir, char ***names, int *n, char *msg,
                        size_t msglen)
{
    struct dirent *e;
    *names = NULL;
    *n = 0;
    for (;;) {
        errno = 0; /* readdir's NULL is the end, or an error (errno) */
        if (!(e = readdir(d))) {
            if (errno) { /* a bad entry of its parent, or the folder named: add_folder */
                snprintf(msg, msglen, "cannot read folder: %s", strerror(errno));
                return 1;
            }
            break;
        }
        if (e->d_name[0] == '.')
            continue;
        char **p = realloc(*names, (size_t)(*n + 1) * sizeof *p);
        if (p)
            *names = p;
        if (!p || !(p[*n] = strdup(e->d_name)))
            return no_memory(dir, msg, msglen);
        (*n)++;
    }
    if (*n > 1)
        qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return 0;
}

static int add_folder(corpus *c, const char *dir, int depth, char *msg, size_t msglen);

/* One entry of a folder: a folder (searched), an audio file (added), or
 * else left alone. An entry that cannot be examined (its folder cannot be
 * searched, a symbolic link to nothing or in a loop) or an audio-named one
 * that is no regular file is a bad entry (bad_entry). 0 or -1 (msg);
 * *unsearchable set when the folder itself refused (EACCES). */
static int add_entry(corpus *c, const char *path, const char *name, int depth, int *unsearchable,
                     char *msg, size_t msglen)
{
    struct stat st;
    char why[256];
    if (lstat(path, &st)) {
        if (errno == EACCES) {
            *unsearchable = 1;
            return 0;
        }
        snprintf(why, sizeof why, "cannot examine: %s", strerror(errno));
        return bad_entry(c, path, why, msg, msglen);
    }
    if (S_ISDIR(st.st_mode))
        return add_folder(c, path, depth + 1, msg, msglen);
    if (!corpus_is_audio_name(name))
        return 0;
    int link = S_ISLNK(st.st_mode);
    if (stat(path, &st)) {
        snprintf(why, sizeof why, "cannot examine: %s%s", strerror(errno),
                 link && errno == ENOENT ? " (a symbolic link to a missing file)" : "");
        return bad_entry(c, path, why, msg, msglen);
    }
    if (!S_ISREG(st.st_mode))
        return S_ISDIR(st.st_mode) ? 0 /* a link to a folder: not followed */
                                   : bad_entry(c, path, "not a regular file", msg, msglen);
    return corpus_push(c, path) ? no_memory(path, msg, msglen) : 0;
}

/* Every audio file below dir, depth folders down from the one given. A
 * folder below that cannot be opened or read is a bad entry, the one given
 * (depth 0) an error; entries a folder lists but that cannot be looked
 * into (no search permission) are bad entries at any depth, as files that
 * cannot be read are. 0 or -1 (msg). */
static int add_folder(corpus *c, const char *dir, int depth, char *msg, size_t msglen)
{
    char why[256];
    if (depth > MAX_DEPTH) {
        snprintf(why, sizeof why, "folders nested more than %d deep", MAX_DEPTH);
        return path_error(dir, why, msg, msglen);
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(why, sizeof why, "cannot open folder: %s", strerror(errno));
        return depth ? bad_entry(c, dir, why, msg, msglen) : path_error(dir, why, msg, msglen);
    }
    char **names;
    int n, rc = folder_names(d, dir, &names, &n, msg, msglen), unsearchable = 0;
    closedir(d);
    if (rc == 1) { /* nothing of it is added: what it lists may be partial */
        snprintf(why, sizeof why, "%s", msg);
        rc = depth ? bad_entry(c, dir, why, msg, msglen) : path_error(dir, why, msg, msglen);
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return rc;
    }
    for (int i = 0; i < n && !rc && !unsearchable; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            rc = no_memory(dir, msg, msglen);
            break;
        }
        snprintf(path, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names[i]);
        rc = add_entry(c, path, names[i], depth, &unsearchable, msg, msglen);
        free(path);
    }
    if (!rc && unsearchable) {
        snprintf(why, sizeof why, "cannot look into folder (its %d entr%s left out): %s", n,
                 n == 1 ? "y" : "ies", strerror(EACCES));
        rc = bad_entry(c, dir, why, msg, msglen);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* One FILE or FOLDER the user named (on the command line or a list line):
 * a folder that brings no audio file is said (c->warn). 0 or -1 (msg). */
static int add_path(corpus *c, const char *path, char *msg, size_t msglen)
{
    struct stat st;
    if (stat(path, &st))
        return path_error(path, errno == ENOENT ? "no such file or folder" : strerror(errno),
                          msg, msglen);
    if (!S_ISDIR(st.st_mode))
        return corpus_push(c, path) ? no_memory(path, msg, msglen) : 0;
    int before = c->n, left_before = c->n_left_out;
    if (add_folder(c, path, 0, msg, msglen))
        return -1;
    if (c->n == before && c->n_left_out == left_before && c->warn) {
        char *p = shown(path);
        size_t len = strlen(p ? p : path) + 40;
        char *line = malloc(len);
        if (line) {
            snprintf(line, len, "%s: no audio files in this folder", p ? p : path);
            c->warn(c->warn_user, line, 0);
        }
        free(line);
        free(p);
    }
    return 0;
}

void corpus_name_specs(char *out, size_t len, const char *const *specs, int n)
{
    size_t k = 0;
    if (len)
        out[0] = 0;
    for (int i = 0; i < n && i < 3 && k + 1 < len; i++) {
        char *p = shown(specs[i]);
        const char *sep = i == 0 ? "" : i == n - 1 ? " and " : ", ";
        int w = snprintf(out + k, len - k, "%s%s", sep, p ? p : specs[i]);
        k += w > 0 ? (size_t)w : 0;
        free(p);
    }
    if (n > 3 && k + 1 < len)
        snprintf(out + k, len - k, " and %d more", n - 3);
}

/* path relative to the folder of `list` unless absolute. malloc'ed. */
static char *relative_to(const char *list, const char *path)
{
    const char *slash = strrchr(list, '/');
    if (path[0] == '/' || !slash)
        return strdup(path);
    size_t dl = (size_t)(slash - list) + 1, len = dl + strlen(path) + 1;
    char *out = malloc(len);
    if (out) {
        memcpy(out, list, dl);
        strcpy(out + dl, path);
    }
    return out;
}

/* Strips the line end (LF, CRLF; blanks before it stay: a label may end
 * in one) in place. */
static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
}

static int is_blank(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return !*s;
}

/* Whether the opened f is a folder: fopen(dir, "r") succeeds on Linux and
 * only the first read fails (EISDIR), with no better word than "read
 * error". */
static int is_folder(FILE *f)
{
    struct stat sb;
    return fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Line 1 without a UTF-8 byte order mark (editors on Windows write one):
 * it cannot be seen in a message, so it may not be part of a name or a
 * number. Lists and label files alike. */
static char *skip_bom(char *s, int lineno)
{
    return lineno == 1 && !strncmp(s, "\xef\xbb\xbf", 3) ? s + 3 : s;
}

/* A list line without the blanks (spaces, tabs) around it and, on line 1,
 * a byte order mark (skip_bom). */
static char *trim_list_line(char *s, int lineno)
{
    s = skip_bom(s, lineno);
    s += strspn(s, " \t");
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    return s;
}

/* Reads the list file `list` (kind: "list", "pairs list": for the
 * message when it cannot be opened) line by line, skipping blank lines
 * and comments (lines whose first non-blank is '#'), and hands each line
 * (its end, the blanks around it and a byte order mark stripped; the
 * callee may change it) to on_line, until one fails. 0, or -1 with msg. */
static int read_list(const char *list, const char *kind,
                     int (*on_line)(void *ctx, const char *list, char *line, int lineno,
                                    char *msg, size_t msglen),
                     void *ctx, char *msg, size_t msglen)
{
    FILE *f = fopen(list, "r");
    if (!f) {
        char why[256];
        snprintf(why, sizeof why, "cannot open %s: %s", kind, strerror(errno));
        return path_error(list, why, msg, msglen);
    }
    if (is_folder(f)) {
        char why[64];
        snprintf(why, sizeof why, "is a folder, not a %s", kind);
        fclose(f);
        return path_error(list, why, msg, msglen);
    }
    char *line = NULL;
    size_t cap = 0;
    int rc = 0, lineno = 0;
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        chomp(line);
        char *text = trim_list_line(line, lineno);
        if (!*text || text[0] == '#')
            continue;
        rc = on_line(ctx, list, text, lineno, msg, msglen);
    }
    if (!rc && ferror(f))
        rc = path_error(list, "read error", msg, msglen);
    free(line);
    fclose(f);
    return rc;
}

/* The warnings of one list line go to the caller's c->warn as
 * "LIST:LINE: PATH: why". */
struct line_warn {
    corpus_warn_fn warn;
    void *user;
    const char *list; /* shown */
    int lineno;
};

static void warn_from_line(void *user, const char *line, int left_out)
{
    struct line_warn *lw = user;
    size_t len = strlen(lw->list) + strlen(line) + 16;
    char *w = malloc(len);
    if (w)
        snprintf(w, len, "%s:%d: %s", lw->list, lw->lineno, line);
    lw->warn(lw->user, w ? w : line, left_out);
    free(w);
}

/* An @list line: a file or folder, relative to the list. */
static int add_list_line(void *ctx, const char *list, char *line, int lineno, char *msg,
                         size_t msglen)
{
    corpus *c = ctx;
    char *path = relative_to(list, line), *why = malloc(msglen), *l = shown(list);
    int rc = 0;
    if (!path || !why || !l) {
        snprintf(msg, msglen, "%s:%d: out of memory", l ? l : "list", lineno);
        rc = -1;
    } else {
        struct line_warn lw = {c->warn, c->warn_user, l, lineno};
        if (c->warn) {
            c->warn = warn_from_line;
            c->warn_user = &lw;
        }
        rc = add_path(c, path, why, msglen);
        if (lw.warn) {
            c->warn = lw.warn;
            c->warn_user = lw.user;
        }
        if (rc)
            snprintf(msg, msglen, "%s:%d: %s", l, lineno, why);
    }
    free(path);
    free(why);
    free(l);
    return rc;
}

int corpus_add(corpus *c, const char *spec, char *msg, size_t msglen)
{
    if (spec[0] != '@')
        return add_path(c, spec, msg, msglen);
    return read_list(spec + 1, "list", add_list_line, c, msg, msglen);
}

/* Start of the name and of the extension ('.' or the end) in path. */
static void split_name(const char *path, const char **name, const char **ext)
{
    const char *slash = strrchr(path, '/');
    *name = slash ? slash + 1 : path;
    const char *dot = strrchr(*name, '.');
    *ext = (dot && dot != *name) ? dot : *name + strlen(*name);
}

int corpus_stem_has_suffix(const char *path, const char *suffix)
{
    const char *name, *ext;
    split_name(path, &name, &ext);
    size_t stem = (size_t)(ext - name), sl = strlen(suffix);
    return sl > 0 && stem >= sl && !strncmp(ext - sl, suffix, sl);
}

char *corpus_teacher_path(const char *input, const char *suffix)
{
    const char *name, *ext;
    split_name(input, &name, &ext);
    size_t head = (size_t)(ext - input), len = strlen(input) + strlen(suffix) + 1;
    char *out = malloc(len);
    if (out) {
        memcpy(out, input, head);
        strcpy(out + head, suffix);
        strcat(out, ext);
    }
    return out;
}

/* A pairs-list line: "input<TAB>teacher", both relative to the list. */
static int add_pair_line(void *ctx, const char *list, char *line, int lineno, char *msg,
                         size_t msglen)
{
    corpus **io = ctx; /* inputs, teachers */
    char *tab = strchr(line, '\t');
    if (!tab || tab == line || !tab[1] || strchr(tab + 1, '\t')) {
        snprintf(msg, msglen, "%s:%d: expected 'input<TAB>teacher'", list, lineno);
        return -1;
    }
    *tab = 0;
    char *a = relative_to(list, line), *b = relative_to(list, tab + 1);
    int rc = 0;
    if (!a || !b || corpus_push(io[0], a) || corpus_push(io[1], b)) {
        snprintf(msg, msglen, "%s:%d: out of memory", list, lineno);
        rc = -1;
    }
    free(a);
    free(b);
    return rc;
}

int corpus_read_pairs(const char *list, corpus *inputs, corpus *teachers, char *msg,
                      size_t msglen)
{
    corpus *io[2] = {inputs, teachers};
    return read_list(list, "pairs list", add_pair_line, io, msg, msglen);
}

char *labels_path_for(const char *labels_dir, const char *audio_path)
{
    const char *name, *ext;
    split_name(audio_path, &name, &ext);
    size_t stem = (size_t)(ext - name);
    size_t len = strlen(labels_dir) + stem + 6;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%s/%.*s.txt", labels_dir, (int)stem, name);
    return out;
}

/* An input's stem (the name without folder and extension), for sorting. */
struct stem_ref {
    const char *name;
    size_t len;
    int i;
};

static int cmp_stem(const void *a, const void *b)
{
    const struct stem_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->i - y->i;
}

/* Whether a and b name one file (a link, "./a.wav" beside "a.wav"). */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) || stat(b, &sb))
        return !strcmp(a, b);
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int labels_check_distinct(const char *labels_dir, const char *const *paths, int n, char *msg,
                          size_t msglen)
{
    if (n < 2)
        return 0;
    struct stem_ref *r = malloc((size_t)n * sizeof *r);
    if (!r) {
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *ext;
        split_name(paths[i], &r[i].name, &ext);
        r[i].len = (size_t)(ext - r[i].name);
        r[i].i = i;
    }
    qsort(r, (size_t)n, sizeof *r, cmp_stem);
    int rc = 0;
    for (int k = 0; k + 1 < n && !rc; k++) {
        /* r[k] is the first input of its stem (sorted by stem, then by
         * place in the corpus): every later one of that stem against it. */
        for (int m = k + 1;
             m < n && r[m].len == r[k].len && !memcmp(r[m].name, r[k].name, r[k].len); m++) {
            const char *a = paths[r[k].i], *b = paths[r[m].i];
            if (same_file(a, b))
                continue;
            char *lp = labels_path_for(labels_dir, a);
            snprintf(msg, msglen, "%s and %s would share the label file %s (a label file is "
                     "found by the input's name alone, without its folder and extension): "
                     "rename one of them", a, b, lp ? lp : "of that name");
            free(lp);
            rc = -1;
            break;
        }
    }
    free(r);
    return rc;
}

void labels_free(label_file *lf)
{
    for (int i = 0; i < lf->n; i++)
        free(lf->seg[i].name);
    free(lf->seg);
    free(lf->path);
    memset(lf, 0, sizeof *lf);
}

/* A decimal number in seconds, the whole field (no hex, no inf/nan). */
static int parse_seconds(const char *s, double *out)
{
    char *end;
    if (!*s || isspace((unsigned char)*s) || s[strspn(s, "0123456789.+-eE")])
        return -1;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* What is wrong with a label's text, or NULL: it becomes a class name in
 * the model file (UTF-8) and a field of CSV logs, so no control character
 * (a tab, a CR of old Mac line endings) and valid UTF-8 only. */
static const char *label_text_problem(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20 || *p == 0x7f)
            return *p == '\r' ? "a carriage return (old Mac line endings?)"
                   : *p == '\t' ? "a tab (a label has none: start<TAB>end<TAB>label)"
                                : "a control character";
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
                : (*p & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0 || (n == 1 && *p < 0xc2) || (n == 3 && *p > 0xf4))
            return "bytes that are not UTF-8";
        for (int k = 1; k <= n; k++)
            if ((p[k] & 0xc0) != 0x80)
                return "bytes that are not UTF-8";
        p += n + 1;
    }
    return NULL;
}

int labels_read(const char *path, label_file *lf, char *msg, size_t msglen)
{
    memset(lf, 0, sizeof *lf);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, msglen, "%s: cannot open label file: %s", path, strerror(errno));
        return -1;
    }
    if (is_folder(f)) {
        snprintf(msg, msglen, "%s: is a folder, not a label file", path);
        fclose(f);
        return -1;
    }
    lf->path = strdup(path);
    char *line = NULL;
    size_t cap = 0;
    int rc = lf->path ? 0 : -1, lineno = 0;
    if (rc)
        snprintf(msg, msglen, "%s: out of memory", path);
    ssize_t got;
    while (!rc && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if ((size_t)got != strlen(line)) {
            snprintf(msg, msglen, "%s:%d: a NUL byte: not a text label file", path, lineno);
            rc = -1;
            break;
        }
        chomp(line);
        char *text = skip_bom(line, lineno);
        if (is_blank(text) || text[0] == '\\')
            continue;
        char *t1 = strchr(text, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t1 || !t2) {
            snprintf(msg, msglen, "%s:%d: expected 'start<TAB>end<TAB>label' (Audacity label "
                                  "format), got '%.60s'", path, lineno, text);
            rc = -1;
            break;
        }
        *t1 = *t2 = 0;
        double start, end;
        if (parse_seconds(text, &start) || parse_seconds(t1 + 1, &end)) {
            snprintf(msg, msglen, "%s:%d: start and end must be numbers of seconds, got '%.30s' "
                                  "and '%.30s'", path, lineno, text, t1 + 1);
            rc = -1;
            break;
        }
        if (start < 0 || end < start) {
            snprintf(msg, msglen, "%s:%d: interval %g..%g s is negative or reversed", path,
                     lineno, start, end);
            rc = -1;
            break;
        }
        const char *name = t2 + 1;
        if (is_blank(name)) {
            snprintf(msg, msglen, "%s:%d: empty label", path, lineno);
            rc = -1;
            break;
        }
        const char *bad = label_text_problem(name);
        if (bad) {
            snprintf(msg, msglen, "%s:%d: the label holds %s", path, lineno, bad);
            rc = -1;
            break;
        }
        label_seg *p = realloc(lf->seg, (size_t)(lf->n + 1) * sizeof *p);
        if (!p || !(p[lf->n].name = strdup(name))) {
            lf->seg = p ? p : lf->seg;
            snprintf(msg, msglen, "%s: out of memory", path);
            rc = -1;
            break;
        }
        lf->seg = p;
        p[lf->n].start = start;
        p[lf->n].end = end;
        p[lf->n].line = lineno;
        lf->n++;
    }
    if (!rc && ferror(f)) {
        snprintf(msg, msglen, "%s: read error", path);
        rc = -1;
    }
    free(line);
    fclose(f);
    if (rc)
        labels_free(lf);
    return rc;
}

int labels_to_frames(int *out, const label_file *lf, const char *const *names, int n_names,
                     double rate, int hop, int win, int n_frames, char *msg, size_t msglen)
{
    for (int t = 0; t < n_frames; t++)
        out[t] = -1;
    for (int i = 0; i < lf->n; i++) {
        const label_seg *s = &lf->seg[i];
        int cls = -1;
        for (int k = 0; k < n_names; k++)
            if (!strcmp(names[k], s->name))
                cls = k;
        if (cls < 0) {
            snprintf(msg, msglen, "%s:%d: label '%s' is not one of the model's classes", lf->path,
                     s->line, s->name);
            return -1;
        }
        /* Frames whose centre (t*hop + win/2) / rate lies in [start, end):
         * t >= (start*rate - win/2) / hop and t < (end*rate - win/2) / hop. */
        double a = (s->start * rate - 0.5 * win) / hop, b = (s->end * rate - 0.5 * win) / hop;
        /* Clamped before the conversion: a label at 1e300 s is finite but
         * its frame index fits no long (found by tests/fuzz/fuzz_labels). */
        a = a < 0 ? 0 : a > n_frames ? n_frames : a;
        b = b < 0 ? 0 : b > n_frames ? n_frames : b;
        long t0 = (long)ceil(a), t1 = (long)ceil(b);
        for (long t = t0; t < t1; t++)
            out[t] = cls;
    }
    return 0;
}

int labels_collect(char ***names, int *n_names, int max, const label_file *lf, char *msg,
                   size_t msglen)
{
    for (int i = 0; i < lf->n; i++) {
        int found = 0;
        for (int k = 0; k < *n_names && !found; k++)
            found = !strcmp((*names)[k], lf->seg[i].name);
        if (found)
            continue;
        if (*n_names >= max) {
            snprintf(msg, msglen, "%s:%d: more than %d different labels", lf->path,
                     lf->seg[i].line, max);
            return -1;
        }
        char **p = realloc(*names, (size_t)(*n_names + 1) * sizeof *p);
        if (!p) {
            snprintf(msg, msglen, "out of memory");
            return -1;
        }
        *names = p;
        if (!(p[*n_names] = strdup(lf->seg[i].name))) {
            snprintf(msg, msglen, "out of memory");
            return -1;
        }
        (*n_names)++;
    }
    return 0;
}

size_t corpus_common_dir_len(const char *const *paths, int n)
{
    if (n <= 0)
        return 0;
    /* the shared prefix of every path, then back to its last '/' */
    size_t len = strlen(paths[0]);
    for (int i = 1; i < n && len; i++) {
        size_t k = 0;
        while (k < len && paths[i][k] == paths[0][k])
            k++;
        len = k;
    }
    while (len && paths[0][len - 1] != '/')
        len--;
    return len;
}

/* Sample index of a label time: clamped before the conversion (as
 * labels_to_frames does), since a label at 1e300 s is finite but its
 * sample index fits no long and lround's result is then unspecified
 * (LONG_MIN on x86: the label ended before it began). No file is 1e15
 * samples long. */
#define MAX_LABEL_SAMPLE 1e15

static long label_sample(double sec, double rate)
{
    double s = sec * rate;
    return lround(s < 0 ? 0 : s > MAX_LABEL_SAMPLE ? MAX_LABEL_SAMPLE : s);
}

/* The class of sample s: the last segment whose [start, end) holds
 * s / rate, or -1. */
static int label_at(const label_file *lf, const int *seg_cls, long s, double rate)
{
    int c = -1;
    for (int i = 0; i < lf->n; i++) {
        long a = label_sample(lf->seg[i].start, rate), b = label_sample(lf->seg[i].end, rate);
        if (s >= a && s < b)
            c = seg_cls[i];
    }
    return c;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

void label_events_free(label_events *ev)
{
    free(ev->at);
    free(ev->cls);
    ev->at = NULL;
    ev->cls = NULL;
    ev->n = 0;
}

int labels_to_events(label_events *ev, const char *path, const char *const *names, int n_names,
                     double rate, char *msg, size_t msglen)
{
    label_file lf = {NULL, 0, NULL};
    if (labels_read(path, &lf, msg, msglen))
        return -1;
    int *seg_cls = calloc((size_t)lf.n + 1, sizeof(int));
    ev->at = calloc(2 * (size_t)lf.n + 1, sizeof(long));
    ev->cls = calloc(2 * (size_t)lf.n + 1, sizeof(int));
    if (!seg_cls || !ev->at || !ev->cls) {
        snprintf(msg, msglen, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < lf.n; i++) {
        seg_cls[i] = -1;
        for (int k = 0; k < n_names; k++)
            if (names[k] && !strcmp(names[k], lf.seg[i].name))
                seg_cls[i] = k;
        if (seg_cls[i] < 0) {
            snprintf(msg, msglen, "%s:%d: label '%s' is not one of the model's classes", path,
                     lf.seg[i].line, lf.seg[i].name);
            goto fail;
        }
    }
    /* Every segment boundary (and sample 0), sorted, once each. */
    long nb = 0;
    ev->at[nb++] = 0;
    for (int i = 0; i < lf.n; i++) {
        ev->at[nb++] = label_sample(lf.seg[i].start, rate);
        ev->at[nb++] = label_sample(lf.seg[i].end, rate);
    }
    qsort(ev->at, (size_t)nb, sizeof(long), cmp_long);
    ev->n = 0;
    for (long i = 0; i < nb; i++)
        if (ev->at[i] >= 0 && (ev->n == 0 || ev->at[i] != ev->at[ev->n - 1]))
            ev->at[ev->n++] = ev->at[i];
    for (long i = 0; i < ev->n; i++)
        ev->cls[i] = label_at(&lf, seg_cls, ev->at[i], rate);
    free(seg_cls);
    labels_free(&lf);
    return 0;
fail:
    free(seg_cls);
    labels_free(&lf);
    label_events_free(ev);
    return -1;
}
