/* test_host_control.c: cbrnn_control.h on real files in a fresh temporary
 * folder: the save-path policy (every way out of the folder, non-model
 * files, symlinks), the re-check right before a confined save is written,
 * events files (errors with file:line, order), event feeding limits, and
 * schedules (frames, repeats, markers, errors), the engine options
 * both command-line hosts share (getopt table and setter), the rescue
 * copy when the last save of a session fails, and the header lines of
 * events files (the model's SHA-256, the options no event carries:
 * written, read back, applied, compared; bad values refused). */
#define _XOPEN_SOURCE 700 /* mkdtemp, symlink */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_host.h"
#include "file_replace.h"
#include "host_sha256.h"

static char dir[64];
static const char *model_path = CBRNN_SAMPLES "/default.safetensors";

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void copy_model(const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *in = fopen(model_path, "rb"), *out = fopen(p, "wb");
    assert_true(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/cbrnn-host-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char p[256], t[256];
    snprintf(p, sizeof p, "%s/saves", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/outside", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/saves/link", dir);
    snprintf(t, sizeof t, "%s/outside", dir);
    assert_int_equal(symlink(t, p), 0);
    write_file("saves/notes.txt", "keep me\n");
    copy_model("saves/old.safetensors");
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) ? -1 : 0;
}

static int check(const char *path, char *msg)
{
    char sd[256], out[4096];
    snprintf(sd, sizeof sd, "%s/saves", dir);
    return cbrnn_control_check_save(out, sizeof out, sd, path, msg, 1024);
}

static void save_paths(void **state)
{
    char msg[1024], p[256];
    assert_int_equal(check("new.safetensors", msg), 0);
    assert_int_equal(check("old.safetensors", msg), 0); /* a model may be replaced */
    snprintf(p, sizeof p, "%s/saves/sub-not-there/x.safetensors", dir);
    assert_int_equal(check(p, msg), CBRNN_ERR_ARG);
    assert_non_null(strstr(msg, "does not exist"));
    const char *outside[] = {"../outside/x.safetensors", "link/x.safetensors", "/tmp/x.safetensors",
                             "..", "."};
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++) {
        assert_int_not_equal(check(outside[i], msg), 0);
        print_message("refused %s: %s\n", outside[i], msg);
    }
    assert_int_equal(check("notes.txt", msg), CBRNN_ERR_FORMAT);
    assert_non_null(strstr(msg, "not a cbrnn model"));
    assert_int_equal(check("", msg), CBRNN_ERR_ARG);
    char out[256];
    assert_int_equal(cbrnn_control_check_save(out, sizeof out, NULL, "x.safetensors", msg,
                                              sizeof msg),
                     CBRNN_ERR_ARG); /* no save folder: nothing allowed */
    snprintf(p, sizeof p, "%s/nodir/x.safetensors", dir);
    assert_int_not_equal(cbrnn_control_check_output(p, msg, sizeof msg), 0);
    snprintf(p, sizeof p, "%s/saves/notes.txt", dir);
    assert_int_equal(cbrnn_control_check_output(p, msg, sizeof msg), CBRNN_ERR_FORMAT);
    snprintf(p, sizeof p, "%s/saves/fresh.safetensors", dir);
    assert_int_equal(cbrnn_control_check_output(p, msg, sizeof msg), 0);
}

struct saved {
    int calls, rc;
};

static void on_saved(void *ctx, const char *path, const char *why, int64_t frame, int rc,
                     const char *msg)
{
    struct saved *s = ctx;
    s->calls++;
    s->rc = rc;
    if (msg)
        print_message("save %s: %s\n", path, msg);
}

/* A confined save whose target became a text file after the request is
 * refused at write time and the text file is kept. */
static void confined_save_rechecked(void **state)
{
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, 16000);
    char msg[1024], sd[256], p[256], ok[4096];
    int err;
    cbrnn_engine *e = cbrnn_host_open(model_path, &c, 0, &err, msg, sizeof msg);
    assert_non_null(e);
    cbrnn_host_saves *s = cbrnn_host_saves_create(e, "test", model_path, &err);
    assert_non_null(s);
    snprintf(sd, sizeof sd, "%s/saves", dir);
    assert_int_equal(cbrnn_control_check_save(ok, sizeof ok, sd, "race.safetensors", msg,
                                              sizeof msg), 0);
    assert_int_equal(cbrnn_host_saves_request_in(s, e, ok, "test", sd), 0);
    write_file("saves/race.safetensors", "a text file now\n");
    float in[512] = {0};
    cbrnn_engine_process(e, NULL, 0, in, NULL, 512); /* the snapshot is taken */
    struct saved r = {0, 0};
    assert_int_equal(cbrnn_host_saves_collect(s, e, on_saved, &r), 1);
    assert_int_equal(r.calls, 1);
    assert_int_not_equal(r.rc, 0);
    snprintf(p, sizeof p, "%s/saves/race.safetensors", dir);
    FILE *f = fopen(p, "r");
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "a text file now\n");
    /* unconfined (a --save path checked at start) it is refused too: the
     * text file appeared after the start check */
    assert_int_equal(cbrnn_host_saves_request_in(s, e, p, "test", NULL), 0);
    cbrnn_engine_process(e, NULL, 0, in, NULL, 512);
    assert_int_equal(cbrnn_host_saves_collect(s, e, on_saved, &r), 1);
    assert_int_not_equal(r.rc, 0);
    f = fopen(p, "r");
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "a text file now\n");
    /* a fresh name writes */
    snprintf(p, sizeof p, "%s/saves/fresh.safetensors", dir);
    assert_int_equal(cbrnn_host_saves_request_in(s, e, p, "test", sd), 0);
    cbrnn_engine_process(e, NULL, 0, in, NULL, 512);
    assert_int_equal(cbrnn_host_saves_collect(s, e, on_saved, &r), 1);
    assert_int_equal(r.rc, 0);
    cbrnn_host_saves_destroy(s);
    cbrnn_engine_destroy(e);
}

/* The save at the end of a session, when its path cannot be written (a
 * folder that is gone): the same weights go to the rescue folder of
 * $XDG_STATE_HOME, else of $TMPDIR, each made for this user only, and
 * loads; when neither can be written either, a negative code names both. */
static void last_chance_save(void **state)
{
    (void)state;
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, 16000);
    char msg[2048], where[4096], p[256], xdg[256], tmpd[256];
    int err;
    cbrnn_engine *e = cbrnn_host_open(model_path, &c, 0, &err, msg, sizeof msg);
    assert_non_null(e);
    cbrnn_host_saves *s = cbrnn_host_saves_create(e, "test", model_path, &err);
    assert_non_null(s);
    snprintf(p, sizeof p, "%s/gone/adapted.safetensors", dir);
    snprintf(xdg, sizeof xdg, "%s/state", dir);
    setenv("XDG_STATE_HOME", xdg, 1);
    assert_int_equal(cbrnn_host_saves_last_chance(s, e, p, where, sizeof where, msg, sizeof msg),
                     1);
    assert_non_null(strstr(msg, "gone/adapted.safetensors"));
    char want[512];
    snprintf(want, sizeof want, "%s/cbrnn/rescue/", xdg);
    assert_memory_equal(where, want, strlen(want));
    assert_non_null(strstr(where, "adapted.safetensors"));
    struct stat st;
    snprintf(want, sizeof want, "%s/cbrnn/rescue", xdg);
    assert_int_equal(stat(want, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    cbrnn_model *m = cbrnn_model_load(where, &err, msg, sizeof msg);
    assert_non_null(m);
    const cbrnn_model *live = cbrnn_engine_model(e);
    assert_int_equal(m->n_params, live->n_params);
    assert_memory_equal(m->params, live->params, m->n_params * sizeof(float));
    cbrnn_model_destroy(m);
    /* the state folder unusable (a file in its place): the temporary folder */
    snprintf(xdg, sizeof xdg, "%s/state_is_a_file", dir);
    write_file("state_is_a_file", "x\n");
    setenv("XDG_STATE_HOME", xdg, 1);
    snprintf(tmpd, sizeof tmpd, "%s/tmp", dir);
    mkdir(tmpd, 0700);
    setenv("TMPDIR", tmpd, 1);
    assert_int_equal(cbrnn_host_saves_last_chance(s, e, p, where, sizeof where, msg, sizeof msg),
                     1);
    snprintf(want, sizeof want, "%s/cbrnn-rescue-%ld/", tmpd, (long)geteuid());
    assert_memory_equal(where, want, strlen(want));
    /* neither: a negative code, both tries named */
    setenv("TMPDIR", xdg, 1);
    assert_true(cbrnn_host_saves_last_chance(s, e, p, where, sizeof where, msg, sizeof msg) < 0);
    assert_non_null(strstr(msg, "no rescue copy either"));
    assert_string_equal(where, "");
    /* a path that can be written: saved there, nothing rescued */
    snprintf(p, sizeof p, "%s/fine.safetensors", dir);
    assert_int_equal(cbrnn_host_saves_last_chance(s, e, p, where, sizeof where, msg, sizeof msg),
                     0);
    /* the longest name a save takes (195 bytes here) has a rescue name
     * too: its start cut to make room for PID-FRAMES- (before, every
     * rescue of such a name failed "too long") */
    char longname[256];
    memset(longname, 'm', CBRNN_REPLACE_NAME_MAX - 12);
    snprintf(longname + CBRNN_REPLACE_NAME_MAX - 12, 13, ".safetensors");
    assert_int_equal(strlen(longname), CBRNN_REPLACE_NAME_MAX);
    char longp[512];
    snprintf(longp, sizeof longp, "%s/gone/%s", dir, longname);
    assert_int_equal(cbrnn_control_check_output(longp, msg, sizeof msg), CBRNN_ERR_IO); /* no folder */
    snprintf(xdg, sizeof xdg, "%s/state", dir);
    setenv("XDG_STATE_HOME", xdg, 1);
    assert_int_equal(
        cbrnn_host_saves_last_chance(s, e, longp, where, sizeof where, msg, sizeof msg), 1);
    assert_true(strlen(strrchr(where, '/') + 1) <= CBRNN_REPLACE_NAME_MAX);
    assert_non_null(strstr(where, "mmm.safetensors"));
    m = cbrnn_model_load(where, &err, msg, sizeof msg);
    assert_non_null(m);
    cbrnn_model_destroy(m);
    /* one byte more: refused by the start-up check of --save (as by
     * cbrnn_control_check_save), not only when the save fails */
    snprintf(longp, sizeof longp, "%s/m%s", dir, longname);
    assert_int_equal(cbrnn_control_check_output(longp, msg, sizeof msg), CBRNN_ERR_ARG);
    assert_non_null(strstr(msg, "too long"));
    unsetenv("XDG_STATE_HOME");
    unsetenv("TMPDIR");
    cbrnn_host_saves_destroy(s);
    cbrnn_engine_destroy(e);
}

/* A burst of saves: more than the engine's snapshot slots at once. Each is
 * written, in order, with the weights of a frame at or after its request;
 * the engine drops none (before: the third and later were dropped by the
 * audio thread and written at exit with the final weights). */
static void save_burst(void **state)
{
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, 16000);
    char msg[1024], p[256];
    int err;
    cbrnn_engine *e = cbrnn_host_open(model_path, &c, 0, &err, msg, sizeof msg);
    assert_non_null(e);
    cbrnn_host_saves *s = cbrnn_host_saves_create(e, "test", model_path, &err);
    assert_non_null(s);
    enum { N = 7 };
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof p, "%s/saves/b%d.safetensors", dir, i);
        assert_int_equal(cbrnn_host_saves_request(s, e, p, "test"), 0);
    }
    float in[512] = {0};
    struct saved r = {0, 0};
    int done = 0;
    for (int round = 0; round < 20 && done < N; round++) {
        cbrnn_engine_process(e, NULL, 0, in, NULL, 512);
        done += cbrnn_host_saves_collect(s, e, on_saved, &r);
    }
    assert_int_equal(done, N);
    assert_int_equal(r.rc, 0);
    assert_int_equal(cbrnn_host_saves_pending(s), 0);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(e, &st);
    assert_int_equal(st.dropped_snapshots, 0);
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof p, "%s/saves/b%d.safetensors", dir, i);
        cbrnn_model *m = cbrnn_model_load(p, &err, msg, sizeof msg);
        assert_non_null(m);
        cbrnn_model_destroy(m);
    }
    cbrnn_host_saves_destroy(s);
    cbrnn_engine_destroy(e);
}

/* The race the re-check alone cannot close: a folder inside the save
 * folder swapped for a link to elsewhere after the check. The write walks
 * the folders without following links, so it is refused and nothing lands
 * outside. And a control message never overwrites the loaded model. */
static void confined_save_race(void **state)
{
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, 16000);
    char msg[1024], sd[256], p[256], q[256], ok[4096];
    int err;
    cbrnn_engine *e = cbrnn_host_open(model_path, &c, 0, &err, msg, sizeof msg);
    assert_non_null(e);
    snprintf(sd, sizeof sd, "%s/saves", dir);
    snprintf(p, sizeof p, "%s/saves/sub", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    copy_model("saves/loaded.safetensors");
    snprintf(q, sizeof q, "%s/saves/loaded.safetensors", dir);
    cbrnn_host_saves *s = cbrnn_host_saves_create(e, "test", q, &err);
    assert_non_null(s);
    assert_int_equal(cbrnn_control_check_save(ok, sizeof ok, sd, "sub/r.safetensors", msg,
                                              sizeof msg), 0);
    assert_int_equal(cbrnn_host_saves_request_in(s, e, ok, "test", sd), 0);
    snprintf(q, sizeof q, "%s/saves/realsub", dir);
    assert_int_equal(rename(p, q), 0);
    assert_int_equal(symlink("../outside", p), 0);
    float in[512] = {0};
    cbrnn_engine_process(e, NULL, 0, in, NULL, 512);
    struct saved r = {0, 0};
    assert_int_equal(cbrnn_host_saves_collect(s, e, on_saved, &r), 1);
    assert_int_not_equal(r.rc, 0);
    snprintf(q, sizeof q, "%s/outside/r.safetensors", dir);
    assert_int_not_equal(access(q, F_OK), 0);
    /* the loaded model, by a confined request */
    snprintf(q, sizeof q, "%s/saves/loaded.safetensors", dir);
    struct stat before, after;
    assert_int_equal(stat(q, &before), 0);
    assert_int_equal(cbrnn_host_saves_request_in(s, e, q, "test", sd), 0);
    cbrnn_engine_process(e, NULL, 0, in, NULL, 512);
    assert_int_equal(cbrnn_host_saves_collect(s, e, on_saved, &r), 1);
    assert_int_not_equal(r.rc, 0);
    assert_int_equal(stat(q, &after), 0);
    assert_true(before.st_ino == after.st_ino && before.st_mtime == after.st_mtime);
    cbrnn_host_saves_destroy(s);
    cbrnn_engine_destroy(e);
}

/* What closes the race between the check and the write: the write goes
 * through a descriptor of the folder the check saw (cbrnn_model_save_at,
 * which cbrnn_control_save_in uses after walking to it without following
 * links), so a folder renamed away and replaced by a link to elsewhere in
 * between does not take the file with it. A save by path at that moment
 * would land outside (checked too, to show the test can fail). */
static void save_at_holds_the_folder(void **state)
{
    cbrnn_model_config c;
    cbrnn_model_config_default(&c);
    c.n_hidden = 4;
    c.cb_hidden[0] = 4;
    int err;
    cbrnn_model *m = cbrnn_model_create(&c, &err);
    assert_non_null(m);
    char sub[128], real[128], p[512], msg[1024];
    snprintf(sub, sizeof sub, "%s/saves/asub", dir);
    snprintf(real, sizeof real, "%s/saves/asub.real", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    int dfd = open(sub, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    /* the swap, after the check and before the write */
    assert_int_equal(rename(sub, real), 0);
    assert_int_equal(symlink("../outside", sub), 0);
    assert_int_equal(cbrnn_model_save_at(m, dfd, "x.safetensors", "asub/x.safetensors", msg,
                                         sizeof msg), 0);
    close(dfd);
    snprintf(p, sizeof p, "%s/x.safetensors", real);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/outside/x.safetensors", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    /* by path, the same moment lands outside */
    snprintf(p, sizeof p, "%s/y.safetensors", sub);
    assert_int_equal(cbrnn_model_save(m, p, msg, sizeof msg), 0);
    snprintf(p, sizeof p, "%s/outside/y.safetensors", dir);
    assert_int_equal(access(p, F_OK), 0);
    unlink(p);
    /* and a confined save through the link is refused */
    char sd[256];
    snprintf(sd, sizeof sd, "%s/saves", dir);
    assert_int_not_equal(cbrnn_control_save_in(m, sd, "asub/z.safetensors", msg, sizeof msg), 0);
    print_message("refused: %s\n", msg);
    cbrnn_model_destroy(m);
}

/* A markers row is always whole: a name too long for the buffer is cut,
 * the closing quote, seconds and newline stay (a 1000-byte name once gave
 * a row without them, and the next row was glued to it). */
static void marker_rows(void **state)
{
    char row[48], name[1000];
    int n = cbrnn_marker_csv_row(row, sizeof row, 3, "say \"a\"", 1.5);
    assert_string_equal(row, "3,\"say \"\"a\"\"\",1.500\n");
    assert_int_equal(n, (int)strlen(row));
    memset(name, '"', sizeof name - 1);
    name[sizeof name - 1] = 0;
    n = cbrnn_marker_csv_row(row, sizeof row, 12, name, 2.25);
    assert_int_equal(n, (int)strlen(row));
    assert_true(n < (int)sizeof row);
    assert_int_equal(strncmp(row, "12,\"", 4), 0);
    assert_string_equal(row + n - 8, "\",2.250\n");
    assert_int_equal((n - 4 - 8) % 2, 0); /* only whole doubled quotes */
    assert_int_equal(cbrnn_marker_csv_row(row, 8, 1, "x", 1.0), 0);
}

/* Names from control messages: no control characters, bounded length. */
static void control_names(void **state)
{
    char ok[4096], msg[512], sd[256], longname[300];
    assert_int_equal(cbrnn_control_check_name("baseline", CBRNN_MARKER_NAME_MAX), 0);
    assert_int_equal(cbrnn_control_check_name("zwei Wörter", CBRNN_MARKER_NAME_MAX), 0);
    assert_int_not_equal(cbrnn_control_check_name("", CBRNN_MARKER_NAME_MAX), 0);
    assert_int_not_equal(cbrnn_control_check_name("a\nb", CBRNN_MARKER_NAME_MAX), 0);
    assert_int_not_equal(cbrnn_control_check_name("tab\there", CBRNN_MARKER_NAME_MAX), 0);
    assert_int_not_equal(cbrnn_control_check_name("del\x7f", CBRNN_MARKER_NAME_MAX), 0);
    memset(longname, 'm', 201);
    longname[201] = 0;
    assert_int_not_equal(cbrnn_control_check_name(longname, CBRNN_MARKER_NAME_MAX), 0);
    snprintf(sd, sizeof sd, "%s/saves", dir);
    assert_int_not_equal(cbrnn_control_check_save(ok, sizeof ok, sd, "a\nb.safetensors", msg,
                                                  sizeof msg), 0);
    print_message("refused a newline: %s\n", msg);
    memset(longname, 'a', 250);
    strcpy(longname + 250, ".st");
    assert_int_not_equal(cbrnn_control_check_save(ok, sizeof ok, sd, longname, msg, sizeof msg),
                         0);
    assert_non_null(strstr(msg, "too long"));
}

static void events_files(void **state)
{
    char p[256], msg[1024];
    cbrnn_event_list l;
    /* A live run that lost changes or recorded samples says so at the
     * file's end; such a file is refused, naming it and the count (a
     * replay would silently differ). 0 counts, or no such lines: read. */
    write_file("inc.csv", "frame,event,value\n0,lr,0.001\n# changes_lost=1800\n");
    snprintf(p, sizeof p, "%s/inc.csv", dir);
    assert_int_equal(cbrnn_event_list_load(&l, p, msg, sizeof msg), CBRNN_ERR_FORMAT);
    assert_non_null(strstr(msg, "inc.csv: incomplete: 1800 control changes"));
    write_file("inc.csv", "frame,event,value\n0,lr,0.001\n# samples_dropped=2048\n");
    assert_int_equal(cbrnn_event_list_load(&l, p, msg, sizeof msg), CBRNN_ERR_FORMAT);
    assert_non_null(strstr(msg, "lacks 2048 samples"));
    write_file("inc.csv", "frame,event,value\n0,lr,0.001\n# changes_lost=0\n# samples_dropped=0\n");
    assert_int_equal(cbrnn_event_list_load(&l, p, msg, sizeof msg), 0);
    assert_int_equal(l.n, 1);
    cbrnn_event_list_free(&l);
    write_file("inc.csv", "frame,event,value\n# changes_lost=-3\n");
    assert_int_equal(cbrnn_event_list_load(&l, p, msg, sizeof msg), CBRNN_ERR_FORMAT);
    write_file("ev.csv", "frame,event,value\n# a comment\n5,mark,1\n2,lr,0.004\n2,learn,0\n"
                         "5,mark,2\n0,gate,-40\n");
    snprintf(p, sizeof p, "%s/ev.csv", dir);
    assert_int_equal(cbrnn_event_list_load(&l, p, msg, sizeof msg), 0);
    assert_int_equal(l.n, 5);
    /* sorted by frame, same-frame events in file order */
    assert_int_equal(l.ev[0].cmd.kind, CBRNN_CMD_GATE);
    assert_true(l.ev[1].cmd.kind == CBRNN_CMD_LR && l.ev[2].cmd.kind == CBRNN_CMD_LEARN);
    assert_true(l.ev[3].cmd.i == 1 && l.ev[4].cmd.i == 2);
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, 16000);
    int err;
    cbrnn_engine *e = cbrnn_host_open(model_path, &c, 0, &err, msg, sizeof msg);
    assert_non_null(e);
    const int hop = cbrnn_engine_hop(e), win = cbrnn_engine_win(e);
    /* frame 0: the gate is sent; up to frame 1's last sample may be fed,
     * so frame 2's events apply on the sample after it (where a live engine
     * applies commands that act on samples) */
    assert_int_equal(cbrnn_event_list_feed(&l, e, 0, 0), hop + win);
    assert_int_equal(l.next, 1);
    assert_int_equal(cbrnn_event_list_feed(&l, e, 2, hop + win), 3 * hop);
    assert_int_equal(l.next, 3);
    assert_int_equal(cbrnn_event_list_feed(&l, e, 5, 4 * hop + win), -1);
    cbrnn_engine_destroy(e);
    cbrnn_event_list_free(&l);
    /* 300 changes in one frame (more than the default command ring's
     * 256): with the rings sized for the file, all are sent before the
     * frame, none refused (before: "too many events in one frame") */
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    for (int i = 0; i < 300; i++)
        fprintf(f, "3,lr,%s\n", i % 2 ? "0.002" : "0.001");
    fclose(f);
    assert_int_equal(cbrnn_event_list_load(&l, p, msg, sizeof msg), 0);
    cbrnn_engine_config_default(&c, 16000);
    cbrnn_host_size_event_ring(&c, l.n);
    e = cbrnn_host_open(model_path, &c, 0, &err, msg, sizeof msg);
    assert_non_null(e);
    assert_int_equal(cbrnn_event_list_feed(&l, e, 3, 2 * hop + win), -1);
    assert_int_equal(l.next, 300);
    cbrnn_engine_destroy(e);
    cbrnn_event_list_free(&l);
    /* perturbation events: value, and ":R" for a ramp of R ms */
    write_file("ev.csv", "0,pitch,2:150\n0,delay,50\n1,gain,-6.5:20\n1,listen,1\n");
    assert_int_equal(cbrnn_event_list_load(&l, p, msg, sizeof msg), 0);
    assert_true(l.n == 4 && l.ev[0].cmd.kind == CBRNN_CMD_PITCH && l.ev[0].cmd.f == 2.0f &&
                l.ev[0].cmd.i == 150 && l.ev[1].cmd.i == 0 && l.ev[2].cmd.f == -6.5f &&
                l.ev[2].cmd.i == 20 && l.ev[3].cmd.kind == CBRNN_CMD_LISTEN);
    int need;
    float md;
    cbrnn_events_perturb_needs(l.ev, l.n, &need, &md);
    assert_true(need == 2 && md == 50.0f);
    char row[128];
    cbrnn_event_csv_row(row, sizeof row, &l.ev[2]);
    assert_string_equal(row, "1,gain,-6.5:20\n");
    cbrnn_event_list_free(&l);
    static const char *const bad[] = {"3,jump,1\n", "x,lr,1\n", "3,lr,1e9\n", "3,mark,-4\n",
                                      "3,lr,\n", "3,gate,5\n", "3,pitch,13\n",
                                      "3,delay,-1\n", "3,gain,5:-3\n", "3,gain,30\n",
                                      "0,learn,5\n", "0,learn,-1\n", "0,listen,2\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file("bad.csv", bad[i]);
        snprintf(p, sizeof p, "%s/bad.csv", dir);
        assert_int_not_equal(cbrnn_event_list_load(&l, p, msg, sizeof msg), 0);
        assert_non_null(strstr(msg, "bad.csv:1"));
    }
}

/* header + "frame,event,value" + one event into dir/name; loads it into l. */
static void header_file(const char *name, const char *head, cbrnn_event_list *l)
{
    char p[256], msg[1024], text[CBRNN_EVENTS_HEADER_MAX + 64];
    snprintf(text, sizeof text, "%sframe,event,value\n0,learn,1\n", head);
    write_file(name, text);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (cbrnn_event_list_load(l, p, msg, sizeof msg))
        fail_msg("%s: %s", name, msg);
    assert_int_equal(l->n, 1);
}

static void events_header(void **state)
{
    char p[256], msg[1024], head[CBRNN_EVENTS_HEADER_MAX], hex[SHA256_HEX];
    cbrnn_event_list l;
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, 16000);
    c.rule = CBRNN_RULE_SGD;
    c.bptt_k = 7;
    c.surprise_floor = 0.02f;
    int err;
    cbrnn_engine *e = cbrnn_host_open(model_path, &c, 0, &err, msg, sizeof msg);
    assert_non_null(e);
    /* written and read back: every key, the SGD rule without RLS keys */
    int n = cbrnn_events_header(head, sizeof head, model_path, NULL, e, &c, msg, sizeof msg);
    assert_true(n > 0 && (size_t)n == strlen(head) && head[n - 1] == '\n');
    assert_null(strstr(head, "rls_"));
    header_file("h.csv", head, &l);
    const cbrnn_events_info *h = &l.info;
    assert_int_equal(h->have, CBRNN_EVH_MODEL | CBRNN_EVH_MODEL_SHA256 | CBRNN_EVH_RATE |
                                  CBRNN_EVH_RULE | CBRNN_EVH_BPTT | CBRNN_EVH_SURPRISE_FRAMES |
                                  CBRNN_EVH_SURPRISE_FLOOR | CBRNN_EVH_SURPRISE_MAX |
                                  CBRNN_EVH_DIVERGE_RATIO | CBRNN_EVH_CHECKPOINT_FRAMES);
    assert_int_equal(sha256_file(model_path, hex, msg, sizeof msg), 0);
    assert_string_equal(h->model_sha256, hex);
    assert_string_equal(h->model, model_path);
    assert_true(h->ec.sample_rate == 16000 && h->ec.rule == CBRNN_RULE_SGD &&
                h->ec.bptt_k == 7 && h->ec.surprise_floor == 0.02f);
    /* the same engine compares equal; the model is the same file */
    assert_int_equal(cbrnn_events_compare(msg, sizeof msg, h, e, &c), 0);
    assert_string_equal(msg, "");
    assert_int_equal(cbrnn_events_check_model(h, "h.csv", model_path, NULL, msg, sizeof msg), 0);
    /* applied to a default config, except what the user gave (the rule) */
    cbrnn_engine_config d;
    cbrnn_engine_config_default(&d, 44100);
    cbrnn_events_apply(&d, h, CBRNN_EVH_RULE);
    assert_true(d.rule == CBRNN_RULE_AUTO && d.bptt_k == 7 && d.surprise_floor == 0.02f &&
                d.sample_rate == 44100);
    /* an engine with the model's own rule (RLS) differs, and says how */
    cbrnn_engine *e2 = cbrnn_host_open(model_path, &d, 0, &err, msg, sizeof msg);
    assert_non_null(e2);
    assert_int_equal(cbrnn_events_compare(msg, sizeof msg, h, e2, &d), 2);
    assert_non_null(strstr(msg, "sample rate 44100 here, 16000 recorded"));
    assert_non_null(strstr(msg, "rule rls here, sgd recorded"));
    /* RLS: its prior and forgetting factor round-trip to the same floats */
    n = cbrnn_events_header(head, sizeof head, model_path, NULL, e2, &d, msg, sizeof msg);
    assert_true(n > 0);
    cbrnn_event_list_free(&l);
    header_file("h.csv", head, &l);
    cbrnn_engine_rule_info ri;
    cbrnn_engine_get_rule(e2, &ri);
    assert_true(h->ec.rule == CBRNN_RULE_RLS && h->ec.rls_prior == ri.rls_prior &&
                h->ec.rls_forget == ri.rls_forget && (h->have & CBRNN_EVH_RLS_PRIOR));
    assert_int_equal(cbrnn_events_compare(msg, sizeof msg, h, e2, &d), 0);
    cbrnn_engine_destroy(e2);
    /* another model file: both named; a file without the lines: a note */
    copy_model("other.safetensors");
    snprintf(p, sizeof p, "%s/other.safetensors", dir);
    FILE *f = fopen(p, "ab");
    fputc(0, f);
    fclose(f);
    assert_int_equal(cbrnn_events_check_model(h, "h.csv", p, NULL, msg, sizeof msg), 1);
    assert_true(strstr(msg, "other.safetensors") && strstr(msg, "h.csv") &&
                strstr(msg, model_path));
    /* a model loaded, then its file replaced (another process saving
     * over it): the header and the check name the bytes loaded, not the
     * file as it is now */
    char loaded[65], now[SHA256_HEX];
    cbrnn_model *lm = cbrnn_host_load_model(model_path, loaded, &err, msg, sizeof msg);
    assert_non_null(lm);
    assert_string_equal(loaded, hex);
    copy_model("swap.safetensors");
    char swap[256];
    snprintf(swap, sizeof swap, "%s/swap.safetensors", dir);
    assert_int_equal(cbrnn_events_check_model(h, "h.csv", swap, loaded, msg, sizeof msg), 0);
    f = fopen(swap, "ab");
    fputc(0, f);
    fclose(f);
    assert_int_equal(sha256_file(swap, now, msg, sizeof msg), 0);
    assert_string_not_equal(now, loaded);
    assert_int_equal(cbrnn_events_check_model(h, "h.csv", swap, loaded, msg, sizeof msg), 0);
    assert_int_equal(cbrnn_events_check_model(h, "h.csv", swap, NULL, msg, sizeof msg), 1);
    n = cbrnn_events_header(head, sizeof head, swap, loaded, e, &c, msg, sizeof msg);
    assert_true(n > 0 && strstr(head, loaded) && !strstr(head, now));
    cbrnn_model_destroy(lm);
    assert_null(cbrnn_host_load_model("/nonexistent/m.safetensors", loaded, &err, msg,
                                      sizeof msg));
    assert_non_null(strstr(msg, "/nonexistent/m.safetensors"));
    cbrnn_event_list_free(&l);
    header_file("old.csv", "# a comment\n", &l);
    assert_int_equal(l.info.have, 0);
    assert_int_equal(cbrnn_events_check_model(&l.info, "old.csv", p, NULL, msg, sizeof msg), 2);
    assert_non_null(strstr(msg, "cannot be checked"));
    cbrnn_event_list_free(&l);
    /* a model path with a newline stays on its line; a long one is read
     * whole (up to the field's size), unknown keys are skipped */
    snprintf(p, sizeof p, "%s/new\nline.safetensors", dir);
    copy_model("new\nline.safetensors");
    n = cbrnn_events_header(head, sizeof head, p, NULL, e, &c, msg, sizeof msg);
    assert_true(n > 0 && strstr(head, "/new?line.safetensors\n"));
    char *longhead = malloc(6000);
    assert_non_null(longhead);
    memcpy(longhead, "# later_key=1\n# model=", 22);
    memset(longhead + 22, 'a', 5000);
    strcpy(longhead + 5022, "\n");
    header_file("long.csv", longhead, &l);
    free(longhead);
    assert_int_equal(l.info.have, CBRNN_EVH_MODEL);
    assert_int_equal(strlen(l.info.model), sizeof l.info.model - 1);
    cbrnn_event_list_free(&l);
    /* a float past int's range (fuzz_control found it cast to int) */
    header_file("big.csv", "# surprise_max=1.0001e12\n", &l);
    assert_true(l.info.ec.surprise_max == 1.0001e12f);
    cbrnn_event_list_free(&l);
    /* errors: no model file; a buffer too small */
    assert_int_equal(cbrnn_events_header(head, sizeof head, "/nonexistent/m.safetensors", NULL,
                                         e, &c, msg, sizeof msg),
                     CBRNN_ERR_IO);
    assert_non_null(strstr(msg, "/nonexistent/m.safetensors"));
    assert_int_equal(cbrnn_events_header(head, 100, model_path, NULL, e, &c, msg, sizeof msg),
                     CBRNN_ERR_ARG);
    assert_string_equal(head, "");
    cbrnn_engine_destroy(e);
    /* bad values and keys given twice: refused with file:line and the key */
    static const char *const bad[] = {
        "# rule=auto\n", "# rule=\n", "# model_sha256=abc\n", "# rls_prior=0\n",
        "# rls_prior=-1\n", "# rls_forget=0.5\n", "# rls_forget=1.5\n", "# bptt=0\n",
        "# bptt=4x\n", "# sample_rate=nan\n", "# surprise_frames=0\n", "# surprise_floor=0\n",
        "# surprise_max=0.5\n", "# diverge_ratio=0.5\n", "# checkpoint_frames=-3\n",
        "# model_sha256=0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n",
        "# bptt=4\n# bptt=4\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[256];
        snprintf(text, sizeof text, "%s0,learn,1\n", bad[i]);
        write_file("bad.csv", text);
        snprintf(p, sizeof p, "%s/bad.csv", dir);
        if (cbrnn_event_list_load(&l, p, msg, sizeof msg) == 0)
            fail_msg("header line accepted: %s", bad[i]);
        assert_non_null(strstr(msg, "bad.csv:"));
    }
    /* an event row past the longest read is still refused */
    char row[400];
    memset(row, ' ', 300);
    strcpy(row + 300, "0,learn,1\n");
    write_file("bad.csv", row);
    assert_int_not_equal(cbrnn_event_list_load(&l, p, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "line too long"));
}

static void schedules(void **state)
{
    char p[256], msg[1024];
    cbrnn_schedule s;
    write_file("s.txt", "repeat 2 every 1s\n0 phase base  # comment\n0.5s learn 1\n"
                        "70f mark two words\n0.5 lr 0.002\n");
    snprintf(p, sizeof p, "%s/s.txt", dir);
    assert_int_equal(cbrnn_schedule_load(&s, p, 16000, 160, 10, msg, sizeof msg), 0);
    assert_int_equal(s.trials, 2);
    assert_int_equal(s.n_marks, 6); /* trial:1, base, two words; twice */
    assert_string_equal(s.mark_names[0], "trial:1");
    assert_string_equal(s.mark_names[1], "phase:base");
    assert_string_equal(s.mark_names[2], "two words");
    assert_string_equal(s.mark_names[3], "trial:2");
    assert_int_equal(s.first_mark, 10);
    assert_int_equal(s.events.n, 10);
    /* frames: 0 0 50 50 70 | 100 100 150 150 170; same frame: file order */
    static const int64_t want[] = {0, 0, 50, 50, 70, 100, 100, 150, 150, 170};
    for (int i = 0; i < 10; i++)
        assert_int_equal(s.events.ev[i].frame, want[i]);
    assert_true(s.events.ev[2].cmd.kind == CBRNN_CMD_LEARN &&
                s.events.ev[3].cmd.kind == CBRNN_CMD_LR);
    assert_int_equal(s.events.ev[4].cmd.i, 12); /* marker id of "two words" */
    assert_true(fabs(s.mark_seconds[5] - 1.7) < 1e-9);
    cbrnn_schedule_free(&s);
    static const char *const bad[] = {"0 learn 2\n", "0 lr -1\n", "1x learn 1\n",
                                      "0 reset now\n", "0 mark\n", "repeat 2\n0 reset\n",
                                      "0 reset\nrepeat 2 every 1s\n", "# nothing\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file("bad.txt", bad[i]);
        snprintf(p, sizeof p, "%s/bad.txt", dir);
        assert_int_not_equal(cbrnn_schedule_load(&s, p, 16000, 160, 0, msg, sizeof msg), 0);
        assert_non_null(strstr(msg, "bad.txt"));
        print_message("refused '%.*s': %s\n", (int)strcspn(bad[i], "\n"), bad[i], msg);
    }
}

/* Many events far out of order (a schedule whose action lies past many
 * repeats; an events file written backwards) come out sorted by frame,
 * same-frame events in file order. The sort was an insertion sort: this
 * schedule (fuzz_control found it) took minutes to load. */
static void events_sorted_at_scale(void **state)
{
    (void)state;
    char p[256], msg[1024];
    cbrnn_schedule s;
    write_file("many.txt", "repeat 100000 every 8f\n9990f learn 1\n9990f lr 0.002\n");
    snprintf(p, sizeof p, "%s/many.txt", dir);
    assert_int_equal(cbrnn_schedule_load(&s, p, 16000, 160, 0, msg, sizeof msg), 0);
    assert_int_equal(s.events.n, 300000); /* a trial mark and two actions, each trial */
    for (size_t i = 1; i < s.events.n; i++) {
        const cbrnn_event *a = &s.events.ev[i - 1], *b = &s.events.ev[i];
        assert_true(a->frame <= b->frame);
        if (a->frame == b->frame && a->cmd.kind == CBRNN_CMD_LR)
            assert_true(b->cmd.kind != CBRNN_CMD_LEARN); /* learn, then lr, per trial */
    }
    cbrnn_schedule_free(&s);
    /* 200000 rows backwards, in pairs at the same frame: learn then lr */
    snprintf(p, sizeof p, "%s/back.csv", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "frame,event,value\n");
    for (int k = 99999; k >= 0; k--)
        fprintf(f, "%d,learn,1\n%d,lr,0.002\n", k, k);
    assert_int_equal(fclose(f), 0);
    cbrnn_event_list l;
    memset(&l, 0, sizeof l);
    assert_int_equal(cbrnn_event_list_load(&l, p, msg, sizeof msg), 0);
    assert_int_equal(l.n, 200000);
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(l.ev[i].frame, (int64_t)(i / 2));
        assert_true(l.ev[i].cmd.kind == (i % 2 ? CBRNN_CMD_LR : CBRNN_CMD_LEARN));
    }
    cbrnn_event_list_free(&l);
}

/* CBRNN_HOST_ENGINE_LONGOPTS names each option once, in the order
 * cbrnn_host_engine_option takes them, and each sets what it says. */
/* Misuse of the host API: refused, never a crash or garbage. */
static void host_api_misuse(void **state)
{
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, 16000.0);
    char msg[256];
    assert_int_equal(cbrnn_host_rule_option(&c, "rule", NULL, msg, sizeof msg), -1);
    assert_int_equal(cbrnn_host_rule_option(&c, NULL, "rls", msg, sizeof msg), 0);
    assert_int_not_equal(cbrnn_host_engine_option(&c, 0, NULL, msg, sizeof msg), 0);
    cbrnn_midi_labels s;
    cbrnn_midi_labels_init(&s, 36);
    const uint8_t on[3] = {0x90, 40, 100};
    assert_int_equal(cbrnn_midi_labels_event(&s, on, 3, NULL), 0);
    assert_int_equal(cbrnn_host_save_adapted(NULL, "x.safetensors", NULL, NULL, 0, msg, sizeof msg),
                     CBRNN_ERR_ARG);
    char row[64];
    memset(row, 'x', sizeof row);
    cbrnn_event ev = {0, {99, 0, 0}};
    assert_int_equal(cbrnn_event_csv_row(row, sizeof row, &ev), 0);
    assert_string_equal(row, "");
}

static void engine_options(void **state)
{
    (void)state;
    static const struct option lo[] = {CBRNN_HOST_ENGINE_LONGOPTS(100), {NULL, 0, NULL, 0}};
    static const struct { const char *name, *arg; } want[CBRNN_HOST_ENGINE_NOPTS] = {
        {"rule", "rls"}, {"rls-prior", "12"}, {"rls-forget", "0.99"}, {"perturb-delay", "40"},
        {"perturb-gain", "-6"}, {"perturb-pitch", "2"}, {"perturb-max-delay", "300"},
        {"feedback-to-model", NULL}};
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, 16000.0);
    char msg[256];
    for (int k = 0; k < CBRNN_HOST_ENGINE_NOPTS; k++) {
        assert_string_equal(lo[k].name, want[k].name);
        assert_int_equal(lo[k].val, 100 + k);
        assert_int_equal(lo[k].has_arg, want[k].arg ? required_argument : no_argument);
        assert_int_equal(cbrnn_host_engine_option(&c, k, want[k].arg, msg, sizeof msg), 0);
    }
    assert_null(lo[CBRNN_HOST_ENGINE_NOPTS].name);
    assert_int_equal(c.rule, CBRNN_RULE_RLS);
    assert_true(c.rls_prior == 12.0f && c.rls_forget == 0.99f);
    assert_true(c.perturb_delay_ms == 40.0f && c.perturb_gain_db == -6.0f);
    assert_true(c.perturb_pitch == 2.0f && c.perturb_max_delay_ms == 300.0f);
    assert_int_equal(c.perturb, 2);
    assert_int_equal(c.listen, 1);
    assert_int_equal(cbrnn_host_engine_option(&c, 1, "0", msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "--rls-prior '0'"));
    assert_int_equal(cbrnn_host_engine_option(&c, 5, "13", msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "--perturb-pitch '13'"));
    assert_int_equal(cbrnn_host_engine_option(&c, CBRNN_HOST_ENGINE_NOPTS, "1", msg, sizeof msg), -1);
    assert_int_equal(cbrnn_host_engine_option(&c, -1, "1", msg, sizeof msg), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(save_paths),
        cmocka_unit_test(confined_save_rechecked),
        cmocka_unit_test(save_burst),
        cmocka_unit_test(last_chance_save),
        cmocka_unit_test(confined_save_race),
        cmocka_unit_test(save_at_holds_the_folder),
        cmocka_unit_test(control_names),
        cmocka_unit_test(marker_rows),
        cmocka_unit_test(host_api_misuse),
        cmocka_unit_test(events_files),
        cmocka_unit_test(events_header),
        cmocka_unit_test(schedules),
        cmocka_unit_test(events_sorted_at_scale),
        cmocka_unit_test(engine_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
