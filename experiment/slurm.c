/* slurm.c: a comparison on a Slurm cluster (cbrnn_exp_slurm_submit and
 * cbrnn_exp_slurm_wait): the units as one job array, a merge job behind
 * it with afterok, and waiting for the merge job while reporting progress
 * from the curves in the shared results folder. Slurm is driven through
 * its commands (sbatch, scontrol, scancel): no library to link, and the
 * same commands a user would type. No accounting database is assumed
 * (sacct needs slurmdbd), so states come from `scontrol show job`.
 *
 * Must never: print, or run anything but Slurm's commands. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exp_internal.h"

#define MAX_ARGS 256
/* --sbatch-args fits sbatch()'s buffer and argument list (ours take at most
 * 8 of MAX_ARGS + 8) or is refused: never cut. */
#define MAX_EXTRA_LEN 4095
#define MAX_EXTRA_WORDS (MAX_ARGS - 16)

/* Runs argv (found on PATH) and collects its stdout and stderr into out
 * (NUL-terminated, cut to outlen). Its exit status, 127 if it could not
 * be started, or -1. */
static int run_capture(char *const *argv, char *out, size_t outlen)
{
    int fd[2];
    out[0] = 0;
    if (pipe(fd))
        return -1;
    fflush(NULL);
    pid_t p = fork();
    if (p < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (p == 0) {
        dup2(fd[1], 1);
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    for (;;) {
        char buf[1024];
        ssize_t got = read(fd[0], buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (ssize_t i = 0; i < got && n + 1 < outlen; i++)
            out[n++] = buf[i];
    }
    out[n] = 0;
    close(fd[0]);
    int status;
    while (waitpid(p, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Appends s to f quoted for sh. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

/* Appends s to f for a comment line: printable ASCII as it is, every
 * other byte as \ooo, so no text of ours can end the comment and start a
 * command (cbrnn_exp_slurm_check refuses such folders anyway). */
static void put_comment(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x20 && *p < 0x7f && *p != '\\')
            fputc(*p, f);
        else
            fprintf(f, "\\%03o", *p);
}

/* What a job script holds (write_script). */
struct script {
    const cbrnn_exp *e;
    const cbrnn_exp_slurm *s;
    const char *what, *tail;
};

/* exp_fill for a job script. */
static int put_script(FILE *f, void *ctx)
{
    const struct script *c = ctx;
    fprintf(f, "#!/bin/sh\n# Written by cbrnn_exp_slurm_submit: %s of the comparison in ", c->what);
    put_comment(f, c->e->out);
    fputs(".\n", f);
    fputs("exec", f);
    for (int i = 0; c->s->argv[i]; i++) {
        fputc(' ', f);
        put_quoted(f, c->s->argv[i]);
    }
    fprintf(f, " %s\n", c->tail);
    return 0; /* a failed write shows in ferror */
}

/* <out>/slurm/<name>: exec of argv plus `tail` (written unquoted: the
 * caller's option and a variable of ours), replaced whole
 * (exp_replace_file), then made executable (sbatch reads the script, so
 * a crash before the chmod leaves a script that still runs). */
static int write_script(const cbrnn_exp *e, const char *name, const cbrnn_exp_slurm *s,
                        const char *what, const char *tail, char *path, size_t pathlen,
                        char *msg, size_t msglen)
{
    snprintf(path, pathlen, "%s/slurm/%s", e->out, name);
    struct script c = {e, s, what, tail};
    int rc = exp_replace_file(path, put_script, &c, msg, msglen);
    if (rc)
        return rc;
    if (chmod(path, 0755))
        return exp_fail(msg, msglen, CBRNN_ERR_IO, "%s: cannot make it executable: %s", path,
                        strerror(errno));
    return 0;
}

int cbrnn_exp_slurm_check(const cbrnn_exp *e, const cbrnn_exp_slurm *s, char *msg, size_t msglen)
{
    if (!e || !s)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "incomplete Slurm settings");
    for (const unsigned char *p = (const unsigned char *)e->out; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return exp_fail(msg, msglen, CBRNN_ERR_ARG,
                            "--out-dir: the folder name has a control character (byte 0x%02x "
                            "at offset %d); it cannot go safely into Slurm's job scripts and "
                            "options: use another folder name", *p, (int)(p - (const unsigned char *)e->out));
    if (strchr(e->out, '\\'))
        return exp_fail(msg, msglen, CBRNN_ERR_ARG,
                        "--out-dir %s: the folder name has a '\\', which sbatch takes as "
                        "'no %% patterns' in the log file name (--output): use another folder "
                        "name", e->out);
    const char *a = s->sbatch_args ? s->sbatch_args : "";
    if (strlen(a) > MAX_EXTRA_LEN)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "--sbatch-args: %zu characters, at most %d",
                        strlen(a), MAX_EXTRA_LEN);
    const char *q = strpbrk(a, "'\"\\");
    if (q)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG,
                        "--sbatch-args: %c is not understood: the options are split at blanks, "
                        "each word one sbatch argument, with no quoting (put an option whose "
                        "value has blanks in an #SBATCH line of a wrapper, or drop the blanks)",
                        *q);
    int words = 0;
    for (const char *p = a; *p;) {
        p += strspn(p, " \t\n");
        if (*p)
            words++;
        p += strcspn(p, " \t\n");
    }
    if (words > MAX_EXTRA_WORDS)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "--sbatch-args: %d words, at most %d", words,
                        MAX_EXTRA_WORDS);
    return 0;
}

/* src into dst with every '%' doubled: sbatch replaces %-patterns in
 * --output. 0, or -1 if it does not fit. */
static int percent_escaped(char *dst, size_t len, const char *src)
{
    size_t n = 0;
    for (; *src; src++) {
        if (n + 3 > len)
            return -1;
        if (*src == '%')
            dst[n++] = '%';
        dst[n++] = *src;
    }
    dst[n] = 0;
    return 0;
}

/* sbatch --parsable with our options, then the user's, then the script;
 * *id gets the job id. */
static int sbatch(const cbrnn_exp_slurm *s, const char *const *ours, int n_ours,
                  const char *script, long *id, char *msg, size_t msglen)
{
    char *argv[MAX_ARGS + 8];
    char extra[4096];
    int n = 0;
    argv[n++] = "sbatch";
    argv[n++] = "--parsable";
    for (int i = 0; i < n_ours; i++)
        argv[n++] = (char *)ours[i];
    snprintf(extra, sizeof extra, "%s", s->sbatch_args ? s->sbatch_args : "");
    for (char *tok = strtok(extra, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
        argv[n++] = tok;
    argv[n++] = (char *)script;
    argv[n] = NULL;
    char out[4096];
    int rc = run_capture(argv, out, sizeof out);
    out[strcspn(out, "\n")] = 0;
    char *end = NULL;
    long v = rc == 0 ? strtol(out, &end, 10) : 0;
    if (rc == 127)
        return exp_fail(msg, msglen, CBRNN_ERR_UNSUPPORTED, "sbatch: not found on PATH "
                        "(is this a Slurm submit host?)");
    if (rc != 0 || !end || end == out || (*end && *end != ';') || v <= 0)
        return exp_fail(msg, msglen, CBRNN_ERR_IO, "sbatch %s failed (exit %d): %s", script, rc,
                        out);
    *id = v;
    return 0;
}

int cbrnn_exp_slurm_submit(const cbrnn_exp *e, const cbrnn_exp_slurm *s, long *array_id,
                           long *merge_id, char *msg, size_t msglen)
{
    if (!e || !s || !s->argv || !s->argv[0] || !s->unit_arg || !s->collect_arg)
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "incomplete Slurm settings");
    *array_id = *merge_id = 0;
    int rc = cbrnn_exp_slurm_check(e, s, msg, msglen);
    if (rc)
        return rc;
    char dir[EXP_PATH], cwd[EXP_PATH], units[EXP_PATH], collect[EXP_PATH];
    snprintf(dir, sizeof dir, "%s/slurm", e->out);
    if (mkdir(dir, 0777) && errno != EEXIST)
        return exp_fail(msg, msglen, CBRNN_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    if (!getcwd(cwd, sizeof cwd))
        return exp_fail(msg, msglen, CBRNN_ERR_IO, "getcwd: %s", strerror(errno));
    char unit_tail[256], collect_tail[256];
    snprintf(unit_tail, sizeof unit_tail, "%s \"$SLURM_ARRAY_TASK_ID\"", s->unit_arg);
    snprintf(collect_tail, sizeof collect_tail, "%s", s->collect_arg);
    rc = write_script(e, "units.sh", s, "one unit (the array task's)", unit_tail, units,
                          sizeof units, msg, msglen);
    if (!rc)
        rc = write_script(e, "collect.sh", s, "the merge", collect_tail, collect,
                          sizeof collect, msg, msglen);
    if (rc)
        return rc;
    /* Our options: the array, logs in the results folder, the folder the
     * relative paths of the command are relative to. */
    char array[64], chdir_opt[EXP_PATH + 16], name[160], ulog[2 * EXP_PATH + 32],
        clog[2 * EXP_PATH + 32], dep[64], dir_pc[2 * EXP_PATH];
    if (percent_escaped(dir_pc, sizeof dir_pc, dir))
        return exp_fail(msg, msglen, CBRNN_ERR_ARG, "%s: folder name too long", dir);
    if (s->limit > 0)
        snprintf(array, sizeof array, "--array=0-%d%%%d", e->n_units - 1, s->limit);
    else
        snprintf(array, sizeof array, "--array=0-%d", e->n_units - 1);
    snprintf(chdir_opt, sizeof chdir_opt, "--chdir=%s", cwd);
    snprintf(name, sizeof name, "--job-name=%s", s->job_name ? s->job_name : "cbrnn");
    snprintf(ulog, sizeof ulog, "--output=%s/unit-%%a.log", dir_pc);
    snprintf(clog, sizeof clog, "--output=%s/collect.log", dir_pc);
    const char *a_opts[] = {array, chdir_opt, name, ulog};
    if ((rc = sbatch(s, a_opts, 4, units, array_id, msg, msglen)))
        return rc;
    snprintf(dep, sizeof dep, "--dependency=afterok:%ld", *array_id);
    const char *m_opts[] = {dep, "--kill-on-invalid-dep=yes", chdir_opt, name, clog};
    return sbatch(s, m_opts, 5, collect, merge_id, msg, msglen);
}

/* The value of `key=` in scontrol's one-line record (up to a blank). */
static void field(const char *rec, const char *key, char *out, size_t len)
{
    out[0] = 0;
    size_t kl = strlen(key);
    for (const char *p = rec; (p = strstr(p, key)); p += kl)
        if ((p == rec || p[-1] == ' ' || p[-1] == '\n') && p[kl] == '=') {
            size_t n = strcspn(p + kl + 1, " \n");
            snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p + kl + 1);
            return;
        }
}

static int terminal(const char *state)
{
    static const char *const ended[] = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT",
                                        "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
                                        "DEADLINE", "SPECIAL_EXIT"};
    for (size_t i = 0; i < sizeof ended / sizeof ended[0]; i++)
        if (!strncmp(state, ended[i], strlen(ended[i])))
            return 1;
    return 0;
}

static void report_progress(const cbrnn_exp *e, const cbrnn_exp_report *r, double elapsed)
{
    if (!r || !r->progress)
        return;
    long done = 0;
    int finished = 0;
    for (int k = 0; k < e->n_units; k++) {
        long d = e->ops->progress(e, k);
        done += d;
        finished += d >= e->work_per_unit;
    }
    r->progress(r->user, (double)done, (double)e->n_units * (double)e->work_per_unit, finished,
                e->n_units, elapsed);
}

/* 1 if every unit is done and summary.json exists (what a completed merge
 * job leaves). */
static int merged(const cbrnn_exp *e)
{
    for (int k = 0; k < e->n_units; k++)
        if (e->ops->progress(e, k) < e->work_per_unit)
            return 0;
    char path[EXP_PATH];
    snprintf(path, sizeof path, "%s/summary.json", e->out);
    return access(path, F_OK) == 0;
}

int cbrnn_exp_slurm_wait(const cbrnn_exp *e, long merge_id, const cbrnn_exp_report *r, char *msg,
                         size_t msglen)
{
    char id[32], rec[16384], state[64], reason[128];
    snprintf(id, sizeof id, "%ld", merge_id);
    char *show[] = {"scontrol", "show", "--oneliner", "job", id, NULL};
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int misses = 0;;) {
        int rc = run_capture(show, rec, sizeof rec);
        if (rc != 0 && strstr(rec, "Invalid job id")) {
            /* Purged after MinJobAge: it ended; its summary says how. */
            if (merged(e))
                return 0;
            return exp_fail(msg, msglen, CBRNN_ERR_IO,
                            "merge job %s is gone from Slurm and left no summary", id);
        }
        if (rc != 0 && ++misses < 30) { /* slurmctld busy or restarting: ask again */
            struct timespec nap = {1, 0};
            nanosleep(&nap, NULL);
            continue;
        }
        if (rc != 0)
            return exp_fail(msg, msglen, CBRNN_ERR_IO, "scontrol show job %s failed (exit %d): %s",
                            id, rc, rec);
        misses = 0;
        field(rec, "JobState", state, sizeof state);
        field(rec, "Reason", reason, sizeof reason);
        if (terminal(state))
            break;
        if (!strcmp(state, "PENDING") && !strcmp(reason, "DependencyNeverSatisfied")) {
            /* A cluster that keeps such jobs (no kill_invalid_depend, and
             * --kill-on-invalid-dep ignored): cancel it ourselves. */
            char *cancel[] = {"scancel", id, NULL};
            char out[1024];
            run_capture(cancel, out, sizeof out);
            snprintf(state, sizeof state, "CANCELLED");
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        report_progress(e, r, (double)(now.tv_sec - t0.tv_sec) +
                                  1e-9 * (double)(now.tv_nsec - t0.tv_nsec));
        if (r && r->stop && r->stop(r->user))
            return 1;
        struct timespec nap = {1, 0};
        nanosleep(&nap, NULL);
    }
    if (!strcmp(state, "COMPLETED"))
        return 0;
    return exp_fail(msg, msglen, CBRNN_ERR_IO, "merge job %s: %s (%s)", id, state,
                    reason[0] ? reason : "no reason given");
}
