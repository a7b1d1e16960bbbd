/* cbrnn_jackplay.c: `cbrnn-jackplay FILE --connect PORT...`: plays an audio
 * file into JACK, resampled to the server's rate (libsamplerate through
 * host/host_audio), and exits when it has been played. The live demo and
 * the JACK integration tests use it to speak into cbrnn-jack. Playback
 * starts only once the output is connected, so nothing is lost to the
 * time connections take.
 *
 * Threads: the process callback only copies from a lock-free ring
 * (jack_ringbuffer) into the port buffer, never allocates, locks or waits;
 * the main thread streams the file into the ring (bounded memory). */
#include <errno.h>
#include <getopt.h>
#include <jack/jack.h>
#include <jack/ringbuffer.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host_audio.h"

#define PROG "cbrnn-jackplay"
#define MAX_CONNECT 16
/* 2^18 floats: 5.5 s at 48 kHz of read-ahead. */
#define RING_FLOATS (1u << 18)

static jack_port_t *port;
static jack_ringbuffer_t *ring;
static atomic_int started, eof, shutdown_flag;
static atomic_llong played, underruns, tail_left;
static long long limit = -1; /* --duration in samples; -1: the whole file */

static int on_process(jack_nframes_t n, void *arg)
{
    (void)arg;
    float *out = jack_port_get_buffer(port, n);
    if (!atomic_load(&started)) {
        if (jack_port_connected(port) > 0)
            atomic_store(&started, 1);
        memset(out, 0, n * sizeof(float));
        return 0;
    }
    size_t have = jack_ringbuffer_read_space(ring) / sizeof(float);
    size_t take = have < n ? have : n;
    jack_ringbuffer_read(ring, (char *)out, take * sizeof(float));
    memset(out + take, 0, (n - take) * sizeof(float));
    atomic_fetch_add(&played, (long long)take);
    if (take < n) {
        if (atomic_load(&eof))
            atomic_fetch_sub(&tail_left, (long long)(n - take));
        else
            atomic_fetch_add(&underruns, 1);
    }
    return 0;
}

static void on_shutdown(jack_status_t code, const char *reason, void *arg)
{
    (void)code;
    (void)reason;
    (void)arg;
    atomic_store(&shutdown_flag, 1);
}

static void usage(FILE *f)
{
    fprintf(f,
"usage: cbrnn-jackplay [--name NAME] [--connect PORT]... [--duration SEC] [--tail SEC] FILE\n"
"\n"
"Plays FILE (any format libsndfile reads, mixed to mono, resampled to the\n"
"server's rate) from a JACK output port 'out', starting when the port is\n"
"connected, then plays --tail seconds of silence (default 0.5) and exits.\n"
"  --connect PORT   connect our output to PORT (repeatable)\n"
"  --duration SEC   play only the first SEC seconds of FILE\n"
"  --name NAME      client name (default cbrnn-jackplay)\n"
"Exit status: 0 played; 1 JACK failure; 2 bad options or input.\n");
}

/* Next piece of the file, at most 4096 samples and never past --duration. */
static long next_piece(audio_in *a, float *buf, long long *fed, char *msg, size_t msglen)
{
    long want = 4096;
    if (limit >= 0 && limit - *fed < want)
        want = (long)(limit - *fed);
    if (want <= 0)
        return 0;
    long r = audio_in_read(a, buf, want, msg, msglen);
    if (r > 0)
        *fed += r;
    return r;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* What the command line asked for. */
struct play_opts {
    const char *name, *path, *conn[MAX_CONNECT];
    int n_conn;
    double tail, duration; /* seconds; duration 0: the whole file */
};

/* A number of seconds for opt in (lo, hi] (lo_open) or [lo, hi]. 0 or -1
 * (said: "expected ..." names what). */
static int parse_seconds(const char *opt, const char *s, double lo, int lo_open, double hi,
                         const char *what, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || !((lo_open ? v > lo : v >= lo) && v <= hi)) {
        fprintf(stderr, PROG ": %s '%s': expected %s\n", opt, s, what);
        return -1;
    }
    *out = v;
    return 0;
}

/* The options and FILE. 0 to go on, or 1 with *status the exit status
 * (--help: 0). */
static int parse_opts(struct play_opts *o, int argc, char **argv, int *status)
{
    static const struct option lo[] = {{"name", required_argument, NULL, 'n'},
                                       {"connect", required_argument, NULL, 'c'},
                                       {"tail", required_argument, NULL, 't'},
                                       {"duration", required_argument, NULL, 'd'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c;
    o->name = "cbrnn-jackplay";
    o->n_conn = 0;
    o->tail = 0.5;
    o->duration = 0;
    *status = 2;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'n': o->name = optarg; break;
        case 'c':
            if (o->n_conn == MAX_CONNECT) {
                fprintf(stderr, PROG ": at most %d --connect\n", MAX_CONNECT);
                return 1;
            }
            o->conn[o->n_conn++] = optarg;
            break;
        case 'd':
            if (parse_seconds("--duration", optarg, 0, 1, 1e6, "seconds > 0", &o->duration))
                return 1;
            break;
        case 't':
            if (parse_seconds("--tail", optarg, 0, 0, 60, "seconds in 0..60", &o->tail))
                return 1;
            break;
        case 'h': usage(stdout); *status = 0; return 1;
        default: usage(stderr); return 1;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 1;
    }
    o->path = argv[optind];
    return 0;
}

/* A client of the running server (never starts one); NULL after saying
 * which server it looked for. */
static jack_client_t *open_client(const char *name)
{
    jack_status_t js;
    jack_client_t *client = jack_client_open(name, JackNoStartServer, &js);
    if (!client) {
        const char *srv = getenv("JACK_DEFAULT_SERVER");
        fprintf(stderr, PROG ": cannot connect to the JACK server '%s' (%s; status 0x%x)%s\n",
                srv && *srv ? srv : "default",
                srv && *srv ? "from JACK_DEFAULT_SERVER" : "JACK_DEFAULT_SERVER is not set",
                (unsigned)js, (js & JackServerFailed) ? ": none is running under that name" : "");
    }
    return client;
}

/* Streams the file into the ring while it has room for a piece; at the
 * end of the file (or of --duration) sets eof. 0, or 2 after a read error
 * (said). Main thread. */
static int fill_ring(audio_in *a, float *buf, long long *fed)
{
    char msg[1024];
    while (jack_ringbuffer_write_space(ring) / sizeof(float) >= 4096) {
        long r = next_piece(a, buf, fed, msg, sizeof msg);
        if (r <= 0) {
            int status = 0;
            if (r < 0) {
                fprintf(stderr, PROG ": %s\n", msg);
                status = 2;
            }
            atomic_store(&eof, 1);
            return status;
        }
        jack_ringbuffer_write(ring, (const char *)buf, (size_t)r * sizeof(float));
    }
    return 0;
}

/* Our output to each --connect port. 0, or 1 if one failed (said). */
static int connect_ports(jack_client_t *client, const struct play_opts *o)
{
    int status = 0;
    for (int i = 0; i < o->n_conn; i++)
        if (jack_connect(client, jack_port_name(port), o->conn[i])) {
            fprintf(stderr, PROG ": cannot connect to %s\n", o->conn[i]);
            status = 1;
        }
    if (!o->n_conn && !status)
        fprintf(stderr, PROG ": waiting for a connection to %s (no --connect given); playback "
                        "starts when something is connected\n", jack_port_name(port));
    return status;
}

/* Keeps the ring filled until the file and the tail of silence have been
 * played, or the server shuts down. 0 or the exit status (said). */
static int play(audio_in *a, float *buf, long long *fed)
{
    for (;;) {
        if (atomic_load(&shutdown_flag)) {
            fprintf(stderr, PROG ": the JACK server shut down\n");
            return 1;
        }
        if (!atomic_load(&eof)) {
            int status = fill_ring(a, buf, fed);
            if (status) {
                sleep_ms(10);
                return status;
            }
        } else if (atomic_load(&tail_left) <= 0) {
            return 0;
        }
        sleep_ms(10);
    }
}

int main(int argc, char **argv)
{
    struct play_opts o;
    int status;
    if (parse_opts(&o, argc, argv, &status))
        return status;
    jack_client_t *client = open_client(o.name);
    if (!client)
        return 1;
    double rate = jack_get_sample_rate(client);
    char msg[1024];
    audio_in *a = audio_in_open(o.path, rate, msg, sizeof msg);
    if (!a) {
        fprintf(stderr, PROG ": %s\n", msg);
        jack_client_close(client);
        return 2;
    }
    port = jack_port_register(client, "out", JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
    ring = jack_ringbuffer_create(RING_FLOATS * sizeof(float));
    if (!port || !ring) {
        fprintf(stderr, PROG ": cannot set up the JACK port\n");
        return 1;
    }
    memset(ring->buf, 0, ring->size);
    atomic_store(&tail_left, (long long)lround(o.tail * rate));
    if (o.duration > 0)
        limit = llround(o.duration * rate);
    float buf[4096];
    long long fed = 0;
    status = fill_ring(a, buf, &fed); /* prefill before going live */
    jack_set_process_callback(client, on_process, NULL);
    jack_on_info_shutdown(client, on_shutdown, NULL);
    if (status || jack_activate(client)) {
        fprintf(stderr, PROG ": %s\n", status ? "read failed" : "cannot activate the client");
        jack_client_close(client);
        audio_in_close(a);
        return status ? status : 1;
    }
    status = connect_ports(client, &o);
    if (!status)
        status = play(a, buf, &fed);
    jack_deactivate(client);
    jack_client_close(client);
    audio_in_close(a);
    jack_ringbuffer_free(ring);
    if (atomic_load(&underruns))
        fprintf(stderr, PROG ": %lld underruns (the file was read too slowly)\n",
                (long long)atomic_load(&underruns));
    return status;
}
