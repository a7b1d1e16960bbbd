/* fuzz_osc.c: libFuzzer target for cbrnn-jack's OSC control: every byte
 * string a UDP packet to --osc PORT can carry goes through liblo's parser
 * (messages, bundles, type tags) into the host's own handlers, then the
 * commands they queued are applied by one engine block, as in the live
 * host. The host's source is compiled in here (main renamed) so the real
 * handlers and method table (osc_add_methods) run against the real engine
 * and the default model, not a copy. Checked: the host survives, the
 * learning rate stays finite and >= 0, outputs stay finite. Saves are
 * requested but never written: the snapshots are taken and dropped, so a
 * fuzzed path can never become a file (the save folder is an empty
 * temporary one, so the path checks run too). The guard that refuses
 * other machines is opened (packets dispatched here have no sender), so
 * every method is reached. */
#define main cbrnn_jack_main
#include "../../plugin/cbrnn_jack.c"
#undef main

#include "fuzz_util.h"

#ifndef CBRNN_FUZZ_SAMPLES
#error "CBRNN_FUZZ_SAMPLES (the samples/ folder) must be defined by the build"
#endif

#define RATE 48000
#define BLOCK 480 /* one hop at 48 kHz: every packet's commands meet a frame */

static lo_server fz_osc;
static cbrnn_model *fz_snap;

static char fz_dir[] = "/tmp/cbrnn-fuzz-osc-XXXXXX";

/* The save folder goes when libFuzzer exits (-max_total_time ends in
 * exit()); each CI run left one behind in /tmp before. Saves never reach
 * it (snapshots are taken and dropped), so it is empty. */
static void fz_remove_dir(void)
{
    rmdir(fz_dir);
}

static void fz_setup(void)
{
    char msg[1024];
    int err = 0;
    static const char path[] = CBRNN_FUZZ_SAMPLES "/default.safetensors";
    cbrnn_model *m = cbrnn_model_load(path, &err, msg, sizeof msg);
    CHECK(m != NULL, "%s", msg);
    cbrnn_engine_config ec;
    cbrnn_engine_config_default(&ec, RATE);
    ec.learn = 1;
    ec.record_capacity = 64; /* small, so full rings and drops happen too */
    ec.command_capacity = 8;
    ec.perturb = 2; /* /cbrnn/perturb/pitch, delay, gain, listen reach an engine that has them */
    cbrnn_engine *e = cbrnn_engine_create(m, &ec, &err);
    CHECK(e != NULL, "engine: %s", cbrnn_strerror(err));
    atomic_init(&H.engine, e);
    C.saves = cbrnn_host_saves_create(e, "fuzz", path, &err);
    fz_snap = cbrnn_model_clone(m, &err);
    CHECK(C.saves && fz_snap, "clone: %s", cbrnn_strerror(err));
    cbrnn_model_destroy(m);
    C.model_path = path;
    C.quiet = 1;
    C.osc_remote_ok = 1;
    CHECK(mkdtemp(fz_dir) != NULL, "mkdtemp");
    atexit(fz_remove_dir);
    C.save_dir = fz_dir;
    C.markers = out_writer_start(open("/dev/null", O_WRONLY | O_CLOEXEC), "/dev/null", 1 << 16);
    C.t0 = now_s();
    pthread_mutex_init(&H.mu, NULL);
    /* A real server (its socket is where status replies come from). */
    fz_osc = lo_server_new(NULL, osc_error);
    CHECK(fz_osc != NULL, "lo_server_new");
    osc_add_methods(fz_osc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz_osc)
        fz_setup();
    /* An exact-size copy so that any read past the packet is caught. */
    void *pkt = malloc(size ? size : 1);
    CHECK(pkt != NULL, "malloc");
    memcpy(pkt, data, size);
    lo_server_dispatch_data(fz_osc, pkt, size);
    free(pkt);
    lo_server_recv_noblock(fz_osc, 0); /* bundles that came due */

    cbrnn_engine *e = atomic_load(&H.engine);
    static float in[BLOCK], o[2][BLOCK];
    static unsigned long n;
    for (int i = 0; i < BLOCK; i++, n++) /* a 220 Hz tone, continuous across inputs */
        in[i] = 0.3f * sinf(2.0f * 3.14159265f * 220.0f * (float)(n % RATE) / (float)RATE);
    float *outs[2] = {o[0], o[1]};
    CHECK(cbrnn_engine_process(e, outs, 2, in, NULL, BLOCK) == 0, "process");
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < BLOCK; i++)
            CHECK(isfinite(o[k][i]), "output %d is %g", k, (double)o[k][i]);
    cbrnn_record r;
    while (cbrnn_engine_read_record(e, &r, NULL))
        CHECK(isfinite(r.lr) && r.lr >= 0, "learning rate %g in force", (double)r.lr);
    /* What collect_snapshots does, without the save. */
    while (cbrnn_engine_take_snapshot(e, fz_snap, NULL, NULL) == 1)
        ;
    /* The requests those snapshots answered: forgotten, never written. */
    cbrnn_host_saves_destroy(C.saves);
    int err = 0;
    C.saves = cbrnn_host_saves_create(e, "fuzz", C.model_path, &err);
    CHECK(C.saves != NULL, "saves: %s", cbrnn_strerror(err));
    return 0;
}
