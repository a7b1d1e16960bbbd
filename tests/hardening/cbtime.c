/* cbtime.c: an LD_PRELOAD library that times a JACK client's process
 * callback from the outside, for scripts/soak.sh: it wraps the callback
 * given to jack_set_process_callback, reads jack_get_time() (JACK's
 * RT-safe microsecond clock) before and after each call, and keeps the
 * count, the worst duration (with the period it ran in), the number of
 * callbacks that took longer than their period, and a histogram of
 * duration / period, in atomics. A non-RT thread of its own writes them
 * as one JSON object to $CBRNN_CBTIME_OUT every second and at exit
 * (it also reads the server's rate there, for the period).
 * It also chains behind the client's xrun and buffer-size callbacks to
 * tell which xruns our callback could have caused (it was running past
 * its period, or the last call overran) and which followed a buffer-size
 * change. The client is not modified: what is timed is what JACK runs.
 * The wrapper itself never allocates, locks, prints or waits. One process
 * callback per process (a JACK client has one). Tests only.
 * jack_client_close is wrapped too: the reporter's jack_get_sample_rate
 * must never run while libjack tears the client down (see client_mu). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <jack/jack.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BINS 12 /* duration/period in tenths: [0,0.1) ... [1.0,1.1), >= 1.1 */

static JackProcessCallback real_cb;
static void *real_arg;
static jack_client_t *client;
static atomic_ullong n_cb, n_over, sum_us, max_us, max_period_us, hist[BINS];
static atomic_ullong max_permille; /* worst duration / period, in thousandths */
/* xruns, and how many of them our callback could have caused: it was
 * running past its period when the xrun was reported, or the last one
 * took longer than its period; and how many came within 1 s after a
 * buffer-size change (JACK restarts its cycle then). */
static atomic_ullong n_xrun, n_xrun_client, n_xrun_bufsize;
static atomic_ullong cb_start, last_dt, last_period, bufsize_at;
static JackXRunCallback real_xrun;
static void *real_xrun_arg;
static JackBufferSizeCallback real_bufsize;
static void *real_bufsize_arg;
static atomic_uint rate;
static const char *out_path;
static pthread_t reporter;
static atomic_int started;
/* Held by the reporter around its jack_get_sample_rate and its writes, and
 * taken by jack_client_close before libjack starts closing: the reporter
 * then sees client == NULL and leaves libjack alone. Without it the
 * reporter, waking every second, could call in while the last client's
 * close unmapped libjack's shared engine state and before libjack cleared
 * its pointer to it: a segfault in jack_get_sample_rate after the host had
 * saved on SIGTERM (scripts/soak.sh, about 1 run in 6; reproduced at will
 * by delaying each munmap inside jack_client_close). It also keeps the
 * exit-time write from interleaving with the reporter's. Non-RT only. */
static pthread_mutex_t client_mu = PTHREAD_MUTEX_INITIALIZER;

static int timed(jack_nframes_t n, void *arg)
{
    (void)arg;
    jack_time_t t0 = jack_get_time();
    unsigned sr = atomic_load_explicit(&rate, memory_order_relaxed);
    unsigned long long period = sr ? (unsigned long long)n * 1000000ull / sr : 0;
    atomic_store_explicit(&last_period, period, memory_order_relaxed);
    atomic_store_explicit(&cb_start, (unsigned long long)t0, memory_order_relaxed);
    int r = real_cb(n, real_arg);
    unsigned long long dt = (unsigned long long)(jack_get_time() - t0);
    atomic_store_explicit(&cb_start, 0, memory_order_relaxed);
    atomic_store_explicit(&last_dt, dt, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_cb, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sum_us, dt, memory_order_relaxed);
    if (period && dt > period)
        atomic_fetch_add_explicit(&n_over, 1, memory_order_relaxed);
    unsigned long long cur = atomic_load_explicit(&max_us, memory_order_relaxed);
    while (dt > cur && !atomic_compare_exchange_weak(&max_us, &cur, dt))
        ;
    if (dt >= cur)
        atomic_store_explicit(&max_period_us, period, memory_order_relaxed);
    if (period) {
        unsigned long long pm = dt * 1000 / period, curpm = atomic_load(&max_permille);
        while (pm > curpm && !atomic_compare_exchange_weak(&max_permille, &curpm, pm))
            ;
        unsigned long long b = dt * 10 / period;
        atomic_fetch_add_explicit(&hist[b < BINS ? b : BINS - 1], 1, memory_order_relaxed);
    }
    return r;
}

static int on_xrun(void *arg)
{
    (void)arg;
    unsigned long long now = (unsigned long long)jack_get_time();
    unsigned long long start = atomic_load(&cb_start), period = atomic_load(&last_period);
    atomic_fetch_add(&n_xrun, 1);
    if ((start && now - start > period) || atomic_load(&last_dt) > period)
        atomic_fetch_add(&n_xrun_client, 1);
    unsigned long long bs = atomic_load(&bufsize_at);
    if (bs && now - bs < 1000000ull)
        atomic_fetch_add(&n_xrun_bufsize, 1);
    return real_xrun ? real_xrun(real_xrun_arg) : 0;
}

static int on_bufsize(jack_nframes_t n, void *arg)
{
    (void)arg;
    atomic_store(&bufsize_at, (unsigned long long)jack_get_time());
    return real_bufsize ? real_bufsize(n, real_bufsize_arg) : 0;
}

static void write_stats(void)
{
    if (!out_path)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    unsigned long long n = atomic_load(&n_cb);
    fprintf(f, "{\"callbacks\":%llu,\"over_period\":%llu,\"mean_us\":%.1f,\"max_us\":%llu,"
               "\"period_at_max_us\":%llu,\"max_fraction_of_period\":%.3f,\"rate\":%u,"
               "\"hist_tenths_of_period\":[",
            n, atomic_load(&n_over), n ? (double)atomic_load(&sum_us) / (double)n : 0.0,
            atomic_load(&max_us), atomic_load(&max_period_us),
            (double)atomic_load(&max_permille) / 1000.0, atomic_load(&rate));
    for (int i = 0; i < BINS; i++)
        fprintf(f, "%s%llu", i ? "," : "", atomic_load(&hist[i]));
    fprintf(f, "],\"xruns\":%llu,\"xruns_client_late\":%llu,\"xruns_after_bufsize\":%llu}\n",
            atomic_load(&n_xrun), atomic_load(&n_xrun_client), atomic_load(&n_xrun_bufsize));
    if (fclose(f) == 0)
        rename(tmp, out_path);
}

static void *report_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&client_mu);
        /* the server's rate, for the period; read here, off the RT thread,
         * and only while the client is open */
        if (client)
            atomic_store(&rate, jack_get_sample_rate(client));
        write_stats();
        pthread_mutex_unlock(&client_mu);
    }
    return NULL;
}

__attribute__((destructor)) static void at_exit_write(void)
{
    if (atomic_load(&started)) {
        pthread_mutex_lock(&client_mu);
        write_stats();
        pthread_mutex_unlock(&client_mu);
    }
}

__attribute__((visibility("default"))) int jack_client_close(jack_client_t *c)
{
    int (*real)(jack_client_t *) =
        (int (*)(jack_client_t *))dlsym(RTLD_NEXT, "jack_client_close");
    if (!real)
        return -1;
    pthread_mutex_lock(&client_mu);
    if (c == client)
        client = NULL;
    pthread_mutex_unlock(&client_mu);
    return real(c);
}

__attribute__((visibility("default"))) int jack_set_process_callback(jack_client_t *c,
                                                                  JackProcessCallback cb, void *arg)
{
    int (*real)(jack_client_t *, JackProcessCallback, void *) =
        (int (*)(jack_client_t *, JackProcessCallback, void *))dlsym(RTLD_NEXT,
                                                                     "jack_set_process_callback");
    if (!real)
        return -1;
    pthread_mutex_lock(&client_mu);
    client = c;
    pthread_mutex_unlock(&client_mu);
    real_cb = cb;
    real_arg = arg;
    atomic_store(&rate, jack_get_sample_rate(c));
    out_path = getenv("CBRNN_CBTIME_OUT");
    if (!atomic_exchange(&started, 1)) {
        /* The reporter never blocks the client: it only reads atomics. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        if (pthread_create(&reporter, NULL, report_main, NULL) == 0)
            pthread_detach(reporter);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return real(c, timed, NULL);
}

/* The client's xrun and buffer-size callbacks are chained behind ours. */
__attribute__((visibility("default"))) int jack_set_xrun_callback(jack_client_t *c,
                                                                  JackXRunCallback cb, void *arg)
{
    int (*real)(jack_client_t *, JackXRunCallback, void *) =
        (int (*)(jack_client_t *, JackXRunCallback, void *))dlsym(RTLD_NEXT,
                                                                  "jack_set_xrun_callback");
    if (!real)
        return -1;
    real_xrun = cb;
    real_xrun_arg = arg;
    return real(c, on_xrun, NULL);
}

__attribute__((visibility("default"))) int
jack_set_buffer_size_callback(jack_client_t *c, JackBufferSizeCallback cb, void *arg)
{
    int (*real)(jack_client_t *, JackBufferSizeCallback, void *) =
        (int (*)(jack_client_t *, JackBufferSizeCallback, void *))dlsym(
            RTLD_NEXT, "jack_set_buffer_size_callback");
    if (!real)
        return -1;
    real_bufsize = cb;
    real_bufsize_arg = arg;
    return real(c, on_bufsize, NULL);
}
