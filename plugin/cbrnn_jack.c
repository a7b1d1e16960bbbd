/* cbrnn_jack.c: `cbrnn-jack`, the JACK host of the real-time engine: an
 * audio input (and a teacher input for map models, a MIDI label input for
 * classify models), the surprise and N prediction/posterior outputs, and
 * the cerebellum learning online inside the process callback.
 *
 * Threads:
 *   - JACK's process thread: cbrnn_engine_process on the port buffers,
 *     the input copied into a ring for --record. It never allocates,
 *     locks, prints or waits; everything it touches is made beforehand.
 *   - the main (control) thread: OSC (liblo, polled), signals (blocked in
 *     every thread and fetched with sigtimedwait, so no handler runs
 *     anywhere), commands to the engine, snapshots out of it and every
 *     save (cbrnn_model_save is atomic: temporary file, fsync, rename),
 *     autosave and status reports. It never waits on the server nor on a
 *     destination, so that it can always take a stop signal and save;
 *   - a log thread draining the engine's per-frame records (the report
 *     sums, --osc-out) and handing their rows to the writer threads of
 *     --log and its events and markers files (host_output.h), which alone
 *     wait on those files: a stalled destination loses rows (said), never
 *     holds up the control thread;
 *   - writer threads for stderr and stdout: every message and --report
 *     line (libjack's messages too) is queued for them (say, report), so
 *     a terminal or pipe that stopped reading loses messages (counted,
 *     said once it reads again) instead of holding up the control thread;
 *   - a latency thread asking the server to recompute the ports'
 *     latencies after a delay, listen or rate change (a call that waits
 *     forever on a stalled server);
 *   - a disk thread writing --record from its ring.
 * What every host shares (model loading and engine start, MIDI labels,
 * the snapshot/save handshake, the save-path policy, the events file)
 * lives in the host module (cbrnn_host.h, cbrnn_control.h); this file is
 * the JACK and OSC plumbing. main() reads top to bottom as named steps:
 * parse_options, start_messages, then run_host: open_model,
 * block_signals, lock_save, open_jack_client, touch_period_buffers,
 * start_engine, open_log, open_recorders, start_osc, warn_short_period,
 * register_ports, set_callbacks, the log and disk threads, the latency
 * thread, connect_ports, control_loop (which saves on a stop signal
 * before any call to the server), close_jack, close_outputs; last
 * finish_messages.
 * Output files are locked against a second instance (--save by a lock
 * file beside it, --log and --record themselves). Stopping never waits
 * more than STOP_LIMIT_S on the server (a latency recompute in flight
 * included), a log or a recording, and STOP_LIMIT_S more on stderr and
 * stdout: past it, the model already saved, the process says what it
 * gave up on (where it still can) and leaves (_exit).
 * Only the main thread talks to the user (besides libjack's own
 * messages; the writers only write what was queued). Exit status: 0 after
 * SIGINT/SIGTERM (model saved), 1 when the JACK server went away or a
 * failure while working (model saved when possible; a write that failed,
 * a log, a recording, stderr or stdout not finished), 2 bad options or
 * input (a file in use by another instance too). */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jack/jack.h>
#include <jack/midiport.h>
#include <jack/ringbuffer.h>
#include <limits.h>
#include <lo/lo.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cbrnn/cbrnn_control.h"
#include "cbrnn/cbrnn_engine.h"
#include "cbrnn/cbrnn_host.h"
#include "cbrnn/cbrnn_model.h"
#include "cbrnn/cbrnn_perturb.h"
#include "host_files.h"
#include "host_output.h"

#define PROG "cbrnn-jack"
#define MAX_OUT 128      /* prediction/posterior ports at most */
#define MAX_CONNECT 16
/* --record ring: 2^21 floats = 8 MiB, 43 s at 48 kHz; the disk thread
 * empties it every 20 ms, so it only fills if the disk stalls that long. */
#define REC_RING_FLOATS (1u << 21)
/* Control loop period: how soon signals, OSC and snapshots are noticed. */
#define POLL_MS 20
/* JACK2's largest period (BUFFER_SIZE_MAX in jack2's JackConstants.h). */
#define MAX_PERIOD 8192
/* Frames in the "mean recent loss" of /cbrnn/status: one second at a
 * 10 ms hop. */
#define RECENT 100

static const char *default_model(char *buf, size_t len);

static void usage(FILE *f)
{
    fprintf(f,
"usage: cbrnn-jack [options]\n"
"\n"
"A JACK client running a cortico-cerebellar network on its input: log-mel\n"
"features every 10 ms, a frozen recurrent cortex, and a cerebellum that\n"
"keeps learning online (with --learn) inside the audio callback.\n"
"\n"
"Ports: audio in 'input' (+ 'teacher' for map models, MIDI in 'labels' for\n"
"classify models: a held note N is class N - label base); audio out\n"
"'surprise' ((loss + 0.01) / (its running mean + 0.01), at most 1000:\n"
"about 1 when the loss is as usual; held over each 10 ms frame)\n"
"and out_1..out_N (predictions in normalised feature units, or class\n"
"posteriors).\n"
"\n"
"  --model M           model file (default: samples/default.safetensors of\n"
"                      this build, or share/cbrnn/default.safetensors of the\n"
"                      installation)\n"
"  --name NAME         JACK client name (default cbrnn)\n"
"  --outputs N         prediction/posterior ports (default: all classes of a\n"
"                      classify model, 4 otherwise; 0 for none)\n"
"  --connect-input P   connect P to our input (repeatable); nothing is\n"
"                      connected unless asked\n"
"  --connect-output P  connect our outputs in order (surprise, out_1, ...)\n"
"                      to P (repeatable)\n"
"  --connect-feedback P  connect the feedback port (perturbed feedback) to P\n"
"                      (repeatable: e.g. both playback channels)\n"
"  --learn / --no-learn  online learning on or off at start (default off)\n"
"  --lr X              learning rate (default 1e-3); --momentum X (0.9);\n"
"                      --decay X (0): pull toward the loaded weights\n"
"  --gate-db DB        level gate: frames quieter than DB dBFS (e.g. -50)\n"
"                      are not learned from nor counted in reports; flagged\n"
"                      16 in the log (default: no gate)\n"
"  --bptt K            loop wiring: truncated BPTT window (default 4)\n"
"  --label-base NOTE   classify: MIDI note of class 0 (default 60)\n"
"  --log FILE.csv      per-frame log: frame,time,loss,persistence_loss,\n"
"                      surprise,learning,lr,marker,label,flags (as 'cbrnn\n"
"                      run' writes); marker names go to FILE.csv.markers,\n"
"                      every control change with its frame to\n"
"                      FILE.csv.events ('cbrnn run --events' replays them)\n"
"  --record FILE.wav   the exact input samples the engine got (float WAV):\n"
"                      'cbrnn run' on it reproduces this run's numbers\n"
"  --record-teacher FILE.wav  map models: the same for the teacher input\n"
"                      ('cbrnn run --teacher FILE.wav' replays both)\n"
"  --save PATH         where the adapted model goes: on exit, on SIGUSR1,\n"
"                      every --autosave SEC seconds, and when the server\n"
"                      shuts down (its folder must exist; an existing file\n"
"                      there must be a cbrnn model). When nothing was\n"
"                      learned since the load (0 updates), the exit save and\n"
"                      autosave leave an existing file as it was. Locked\n"
"                      while running (PATH.lock beside it): a second\n"
"                      cbrnn-jack with the same --save, --log or --record\n"
"                      file refuses to start (exit 2)\n"
"  --save-dir DIR      the folder /cbrnn/save may write in (default: the\n"
"                      folder of --save; without either, /cbrnn/save is\n"
"                      refused)\n"
"  --autosave SEC      save to --save every SEC seconds\n"
"  --report SEC        print the mean loss every SEC seconds\n"
"  --schedule FILE     a trial schedule (docs/FORMATS.md): timed learn, lr,\n"
"                      momentum, decay, reset, mark and phase actions, and\n"
"                      the perturbation's pitch, delay, gain (with ramps)\n"
"                      and listen, with repeats, applied by the engine at\n"
"                      their exact frames (as 'cbrnn run --schedule' does);\n"
"                      its markers get ids 0.., OSC markers the ids after\n"
"                      them\n"
"  --osc PORT          OSC control on UDP PORT of 127.0.0.1 (only this\n"
"                      machine; messages from other addresses are refused):\n"
"                        /cbrnn/learn i   learning off (0) / on (1)\n"
"                        /cbrnn/lr f      learning rate (0..10)\n"
"                        /cbrnn/momentum f  momentum [0, 1); /cbrnn/decay f\n"
"                                         decay (0..1000); /cbrnn/gate f the\n"
"                                         level gate (dBFS, 0 off)\n"
"                        /cbrnn/reset     cerebellum back to the loaded model\n"
"                        /cbrnn/save s    save the adapted model to path s\n"
"                                         (inside the save folder, relative\n"
"                                         to it; never over a file that is\n"
"                                         not a cbrnn model)\n"
"                        /cbrnn/mark s    put a marker on the next frame\n"
"                        /cbrnn/status    reply /cbrnn/status h f h h: frames,\n"
"                                         mean loss of the last second, xruns,\n"
"                                         dropped records; with an int PORT\n"
"                                         argument the reply goes to that port\n"
"                                         of the sender's address (for oscdump)\n"
"  --osc-bind ADDR     listen for OSC on the local address ADDR instead of\n"
"                      127.0.0.1 (e.g. 0.0.0.0: every interface; then any\n"
"                      host that reaches the port may control this one)\n"
"  --osc-out [HOST:]PORT  stream frames out over OSC to HOST (a numeric\n"
"                      address; default 127.0.0.1) PORT, for Max, Pd or\n"
"                      SuperCollider: /cbrnn/frame h f f i [f ...] = frame,\n"
"                      loss, surprise, learning [, outputs]\n"
"  --osc-out-rate HZ   frames a second at most (default 20: every 5th frame\n"
"                      at a 10 ms hop)\n"
"  --osc-out-outputs   add the frame's outputs (predictions or posteriors)\n"
"  --perturb-delay MS, --perturb-gain DB, --perturb-pitch SEMITONES\n"
"                      perturbed feedback (Audapter-style; docs/ADAPTATION.md):\n"
"                      an output port 'feedback' carrying the input with a\n"
"                      delay (0..2000 ms), gain (-60..20 dB) and pitch shift\n"
"                      (-12..12 semitones; Rubber Band R3 in real-time mode)\n"
"                      starting at these values; changed by OSC and the\n"
"                      schedule's delay, gain and pitch actions (with ramps),\n"
"                      at frame boundaries; the changes go to the events file\n"
"                      and 'cbrnn run --events' redoes them on --record's\n"
"                      samples. --perturb-pitch (any value, 0 too) puts the\n"
"                      pitch shifter in the path: a fixed latency, said at\n"
"                      start and reported as the port's latency\n"
"  --perturb-max-delay MS  the largest delay OSC may ask for (default 500)\n"
"  --feedback-to-model the model hears the feedback instead of the input\n"
"                      (/cbrnn/perturb/listen i switches it)\n"
"                        /cbrnn/perturb/pitch f [ramp_ms], /cbrnn/perturb/delay\n"
"                                         f [ramp_ms], /cbrnn/perturb/gain f\n"
"                                         [ramp_ms], /cbrnn/perturb/listen i\n"
"  --quiet             only errors on stderr\n"
"%s"
"\n"
"Signals: SIGINT/SIGTERM pause the audio, save (to --save), then close\n"
"JACK (waiting at most 3 s for a server that does not answer) and exit 0;\n"
"a second signal gives up waiting at once; SIGUSR1 saves now. The log\n"
"gets 3 s to finish at exit, then stderr and stdout 3 s (a terminal or\n"
"pipe that stopped reading never holds up the save). With learning on, a\n"
"period too short for one learning frame (more than a quarter of it) is\n"
"warned about at start.\n"
"Exit status: 0 stopped by a signal; 1 the JACK server went away, or a\n"
"failure while working (a save, the log or a recording that could not be\n"
"written or finished, a recording that dropped samples, an exit save that\n"
"went to a rescue copy, stderr or stdout not finished); 2 bad options or\n"
"input (an output that is the model, another output, or an existing\n"
"model), or an output in use by another cbrnn-jack.\n", cbrnn_host_rule_help());
    char buf[PATH_MAX];
    fprintf(f, "\nThe default model of this binary: %s\n", default_model(buf, sizeof buf));
}

/* ---------------- state shared across threads ---------------- */

struct host {
    jack_client_t *client;
    jack_port_t *in, *teacher, *midi;
    jack_port_t *fb; /* --perturb-*: the perturbed feedback */
    /* the engine's settings as the applied events left them (drain_records,
     * under mu): what an engine rebuilt after a rate change starts with */
    cbrnn_engine_config in_force;
    /* 1 after a rate change: the new engine's frames count from 0 again,
     * which the events file cannot tell from the first engine's, so it
     * ends at the change (as the recording does) */
    int events_ended;
    jack_port_t *out[1 + MAX_OUT];
    int n_out; /* audio outputs including surprise */
    _Atomic(cbrnn_engine *) engine;
    atomic_int paused;     /* 1: the process callback leaves the engine alone */
    atomic_int in_process; /* 1 while the process callback runs */
    atomic_llong xruns, samples;
    atomic_int bufsize, rate_changed, shutdown;
    atomic_int closing; /* 1 from jack_client_close on: callbacks touch no port */
    /* the engine's rate and latency, for JACK's non-RT callbacks, which
     * must not touch an engine the control thread may be replacing */
    atomic_int engine_rate, latency;
    atomic_int fb_latency; /* the feedback's lag behind the input (shifter + delay) */
    atomic_int shifter_latency; /* the pitch shifter's part of fb_latency */
    atomic_int listening;       /* the model hears the feedback (CBRNN_CMD_LISTEN) */
    atomic_int latency_dirty;   /* a delay or listen change: JACK must recompute */
    atomic_int stop_latency;    /* latency_main: end */
    pthread_t latency_th;       /* latency_main, when latency_started */
    int latency_started;
    atomic_int delay_ms_x1000;  /* the delay in force, microseconds */
    char shutdown_reason[512];
    atomic_int rec_on;     /* 0 after a rate change: a WAV has one rate */
    cbrnn_midi_labels labels; /* audio thread only */

    /* non-RT: log thread vs control thread. mu guards the report sums and
     * the engine swap (rebuild_engine), never a file write: the files are
     * written by writer threads of their own (host_output.h), so a stalled
     * destination cannot hold up the control thread. */
    pthread_mutex_t mu;
    out_writer *log;
    out_writer *events; /* --log FILE.csv: the applied control changes, FILE.csv.events */
    /* --osc-out: frames streamed out by the log thread */
    int osc_out;         /* 1: streaming, from osc_out_fd (its own socket) */
    int osc_out_fd;
    struct sockaddr_storage osc_out_addr;
    socklen_t osc_out_len;
    char osc_out_name[300];     /* HOST:PORT, for messages */
    atomic_llong osc_out_failed; /* sends that failed (log thread) */
    atomic_int osc_out_errno;    /* errno of the first */
    int osc_out_every;  /* send frames whose index is a multiple of this */
    int osc_out_outputs; /* 1: with the frame's outputs */
    float *y;            /* a record's outputs (osc_out_outputs) */
    int n_y;
    long report_frames, report_n;
    double report_loss, report_pers;
    float recent[RECENT];
    int recent_n, recent_pos;
    int64_t last_frame;
    atomic_int stop_log, stop_disk;
    /* --record (input) and --record-teacher: a ring each, filled by the
     * audio thread and emptied by the disk thread */
    struct recorder {
        jack_ringbuffer_t *rb;
        cbrnn_wav *sf;
        const char *path;
        long written;
        atomic_int failed; /* errno of the first failed write (the disk thread's) */
        int said;          /* the failure was reported */
        int lock_fd;       /* open_locked: held until exit */
        atomic_llong dropped;
    } rec[2];
    int n_rec;
};

static struct host H;
/* Private copies of the input ports for one period. A late client (after
 * an xrun) may still be writing the buffer it shares with our input port
 * while we run; copying once and feeding both --record and the engine from
 * the copy keeps "the exact samples the engine received" exact. Static
 * storage: nothing to allocate in the callback. */
static float in_copy[MAX_PERIOD], teacher_copy[MAX_PERIOD];

/* A signal that reaches a thread which unblocked it (libjack's own threads
 * may) lands here instead of killing the process; the control loop reads
 * these flags along with the signals it fetches itself. */
static atomic_int sig_stop, sig_usr1; /* lock-free: safe in a handler */

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        atomic_store(&sig_usr1, 1);
    else
        atomic_store(&sig_stop, sig);
}

/* ---------------- messages to the user ---------------- */

/* From start_messages on (right after the options are read) stderr and
 * stdout are written by writer threads of their own (host_output.h), from
 * copies of their descriptors: say() and report() only queue, never wait.
 * A terminal or pipe that stopped reading (`cbrnn-jack 2>&1 | tee log`
 * with tee stopped, a frozen ssh session) then stalls those threads
 * alone, never the control thread, which must stay free to take a stop
 * signal and save. What does not fit in a queue is lost and counted
 * (note_lost_messages). One queue per stream keeps the order of its
 * messages. Before the writers start (usage, option errors) and after
 * they end, messages are written directly, as before. libjack's own
 * messages (its error and info functions, called from any of its
 * threads) take the same queues (jack_said). */
enum { MSG_ERR, MSG_OUT };
static out_writer *msg_w[2]; /* stderr, stdout; NULL: written directly */
/* Guards msg_w against finish_messages: a libjack thread may be queueing
 * a message while the control thread ends the writers. Held only around
 * a put (a memcpy), never across a write. */
static pthread_mutex_t msg_mu = PTHREAD_MUTEX_INITIALIZER;

static void put_message(int k, const char *s, size_t n)
{
    pthread_mutex_lock(&msg_mu);
    out_writer *w = msg_w[k];
    if (w)
        out_writer_put(w, s, n, 1);
    pthread_mutex_unlock(&msg_mu);
    if (!w) {
        FILE *f = k == MSG_OUT ? stdout : stderr;
        fwrite(s, 1, n, f);
        fflush(f);
    }
}

/* One message, formatted on the stack (8 KiB: the longest, a path and a
 * loader's message, take about 5; a longer one is cut, marked [...]). */
static void vmessage(int k, const char *fmt, va_list ap)
{
    char buf[8192];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf) {
        static const char cut[] = "[...]\n";
        memcpy(buf + sizeof buf - sizeof cut, cut, sizeof cut);
        n = (int)sizeof buf - 1;
    }
    put_message(k, buf, (size_t)n);
}

/* A message on stderr: fmt as fprintf's, newline included. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(MSG_ERR, fmt, ap);
    va_end(ap);
}

/* A --report line on stdout. */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(MSG_OUT, fmt, ap);
    va_end(ap);
}

/* libjack's messages, where its defaults put them (errors on stderr, notes
 * on stdout), in order with ours. */
static void jack_error_said(const char *msg)
{
    say("%s\n", msg);
}

static void jack_info_said(const char *msg)
{
    report("%s\n", msg);
}

/* ---------------- JACK callbacks ---------------- */

static void silence(float *const *outs, int n_out, jack_nframes_t n)
{
    for (int i = 0; i < n_out; i++)
        memset(outs[i], 0, n * sizeof(float));
}

/* MIDI note on = that class while held (cbrnn_midi_labels_event). */
static void midi_event(cbrnn_engine *e, const jack_midi_event_t *ev)
{
    int label;
    if (cbrnn_midi_labels_event(&H.labels, ev->buffer, ev->size, &label))
        cbrnn_engine_set_label(e, label);
}

static int on_process(jack_nframes_t n, void *arg)
{
    (void)arg;
    atomic_store(&H.in_process, 1);
    float *outs[1 + MAX_OUT];
    for (int i = 0; i < H.n_out; i++)
        outs[i] = jack_port_get_buffer(H.out[i], n);
    const float *in = jack_port_get_buffer(H.in, n);
    const float *teacher = H.teacher ? jack_port_get_buffer(H.teacher, n) : NULL;
    float *fb = H.fb ? jack_port_get_buffer(H.fb, n) : NULL;
    if (n <= MAX_PERIOD) {
        memcpy(in_copy, in, (size_t)n * sizeof(float));
        in = in_copy;
        if (teacher) {
            memcpy(teacher_copy, teacher, (size_t)n * sizeof(float));
            teacher = teacher_copy;
        }
    }
    cbrnn_engine *e = atomic_load(&H.engine);
    if (atomic_load(&H.paused) || !e) {
        silence(outs, H.n_out, n);
        if (fb)
            silence(&fb, 1, n);
        atomic_store(&H.in_process, 0);
        return 0;
    }
    if (atomic_load_explicit(&H.rec_on, memory_order_relaxed)) {
        const float *src[2] = {in, teacher};
        size_t bytes = (size_t)n * sizeof(float);
        for (int k = 0; k < 2; k++) {
            struct recorder *rc = &H.rec[k];
            if (!rc->rb || !src[k])
                continue;
            if (jack_ringbuffer_write_space(rc->rb) >= bytes)
                jack_ringbuffer_write(rc->rb, (const char *)src[k], bytes);
            else
                atomic_fetch_add_explicit(&rc->dropped, n, memory_order_relaxed);
        }
    }
    if (H.midi) {
        /* Split the block at each MIDI event so labels change on their
         * sample (the engine takes any block size). */
        void *mb = jack_port_get_buffer(H.midi, n);
        uint32_t ne = jack_midi_get_event_count(mb);
        jack_nframes_t pos = 0;
        float *o2[1 + MAX_OUT];
        for (uint32_t i = 0; i <= ne; i++) {
            jack_midi_event_t ev;
            jack_nframes_t at = n;
            if (i < ne) {
                if (jack_midi_event_get(&ev, mb, i))
                    continue;
                at = ev.time < n ? ev.time : n;
            }
            if (at > pos) {
                for (int k = 0; k < H.n_out; k++)
                    o2[k] = outs[k] + pos;
                cbrnn_engine_process_fb(e, o2, H.n_out, fb ? fb + pos : NULL, in + pos,
                                        teacher ? teacher + pos : NULL, (int)(at - pos));
                pos = at;
            }
            if (i < ne)
                midi_event(e, &ev);
        }
    } else {
        cbrnn_engine_process_fb(e, outs, H.n_out, fb, in, teacher, (int)n);
    }
    atomic_fetch_add_explicit(&H.samples, n, memory_order_relaxed);
    atomic_store(&H.in_process, 0);
    return 0;
}

static int on_xrun(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&H.xruns, 1, memory_order_relaxed);
    return 0;
}

static int on_bufsize(jack_nframes_t n, void *arg)
{
    (void)arg;
    /* Nothing to reallocate: the engine takes blocks of any size and
     * writes straight into JACK's port buffers. */
    atomic_store(&H.bufsize, (int)n);
    return 0;
}

static int on_rate(jack_nframes_t rate, void *arg)
{
    (void)arg;
    int have = atomic_load(&H.engine_rate);
    if (have && (int)rate != have)
        atomic_store(&H.rate_changed, (int)rate);
    return 0;
}

/* Our outputs lag our input by the engine's latency (the centre of a
 * frame's window to the first output sample carrying its value). */
static void on_latency(jack_latency_callback_mode_t mode, void *arg)
{
    (void)arg;
    /* jack_client_close unregisters our ports, and the graph change it
     * causes can call us back on ports being removed: leave them alone. */
    if (atomic_load(&H.closing))
        return;
    /* the outputs lag by the feedback's latency more when the model hears it */
    jack_nframes_t lat = (jack_nframes_t)(atomic_load(&H.latency) +
                                          (atomic_load(&H.listening) ? atomic_load(&H.fb_latency) : 0));
    jack_latency_range_t r;
    if (mode == JackCaptureLatency) {
        jack_port_get_latency_range(H.in, JackCaptureLatency, &r);
        if (H.fb) { /* the feedback lags by the perturbation's own latency */
            jack_latency_range_t f = r;
            f.min += (jack_nframes_t)atomic_load(&H.fb_latency);
            f.max += (jack_nframes_t)atomic_load(&H.fb_latency);
            jack_port_set_latency_range(H.fb, JackCaptureLatency, &f);
        }
        r.min += lat;
        r.max += lat;
        for (int i = 0; i < H.n_out; i++)
            jack_port_set_latency_range(H.out[i], JackCaptureLatency, &r);
    } else {
        jack_latency_range_t all = {UINT32_MAX, 0};
        for (int i = 0; i <= H.n_out; i++) {
            jack_port_t *p = i < H.n_out ? H.out[i] : H.fb;
            if (!p)
                continue;
            jack_nframes_t add = i < H.n_out ? lat : (jack_nframes_t)atomic_load(&H.fb_latency);
            jack_port_get_latency_range(p, JackPlaybackLatency, &r);
            if (r.min + add < all.min)
                all.min = r.min + add;
            if (r.max + add > all.max)
                all.max = r.max + add;
        }
        if (all.min > all.max)
            all.min = all.max = 0;
        jack_port_set_latency_range(H.in, JackPlaybackLatency, &all);
        if (H.teacher)
            jack_port_set_latency_range(H.teacher, JackPlaybackLatency, &all);
    }
}

static void on_shutdown(jack_status_t code, const char *reason, void *arg)
{
    (void)arg;
    snprintf(H.shutdown_reason, sizeof H.shutdown_reason, "%s (status 0x%x)",
             reason && *reason ? reason : "no reason given", (unsigned)code);
    atomic_store(&H.shutdown, 1);
}

/* ---------------- log and disk threads ---------------- */

/* --osc-out: one frame as /cbrnn/frame h f f i [f...]: frame, loss,
 * surprise (NaN when none yet), learning, then the outputs with
 * --osc-out-outputs. Log thread. */
static void stream_frame(const cbrnn_record *r)
{
    lo_message m = lo_message_new();
    if (!m)
        return;
    lo_message_add_int64(m, r->frame);
    lo_message_add_float(m, r->loss);
    lo_message_add_float(m, r->surprise);
    lo_message_add_int32(m, r->learning);
    for (int i = 0; H.osc_out_outputs && i < H.n_y; i++)
        lo_message_add_float(m, H.y[i]);
    /* from a socket of its own: liblo would send from the OSC server's
     * socket, bound to loopback (osc_open), which cannot reach another
     * machine. A packet lost on the way is no error; a send the kernel
     * refuses is counted (said by the control thread). */
    size_t len = 0;
    void *data = lo_message_serialise(m, "/cbrnn/frame", NULL, &len);
    if (!data || sendto(H.osc_out_fd, data, len, MSG_DONTWAIT,
                        (const struct sockaddr *)&H.osc_out_addr, H.osc_out_len) < 0) {
        int e = data ? errno : ENOMEM, none = 0;
        /* the reason first, then the count: whoever sees a count sees one */
        atomic_compare_exchange_strong(&H.osc_out_errno, &none, e ? e : EIO);
        atomic_fetch_add(&H.osc_out_failed, 1);
    }
    free(data);
    lo_message_free(m);
}

static void follow_perturb_latency(const cbrnn_event *ev);

/* Rows gathered for one writer and handed over in batches (a put per
 * batch, not per row). */
struct batch {
    out_writer *w;
    size_t len;
    long rows;
    char buf[16384];
};

static void batch_flush(struct batch *b)
{
    if (b->w && b->len)
        out_writer_put(b->w, b->buf, b->len, b->rows);
    b->len = 0;
    b->rows = 0;
}

static void batch_add(struct batch *b, const char *row, int n)
{
    if (!b->w || n <= 0)
        return;
    if (b->len + (size_t)n > sizeof b->buf)
        batch_flush(b);
    memcpy(b->buf + b->len, row, (size_t)n);
    b->len += (size_t)n;
    b->rows++;
}

/* Drains records of e into the log and the report sums, and its applied
 * control changes into the events file. Caller holds H.mu; no file I/O
 * here (the writers' queues take the rows). */
static void drain_records(cbrnn_engine *e)
{
    cbrnn_record r;
    cbrnn_event ev;
    char line[512];
    static struct batch logb, evb; /* the caller holds H.mu: one drain at a time */
    logb.w = H.log;
    evb.w = H.events_ended ? NULL : H.events;
    while (cbrnn_engine_read_event(e, &ev)) {
        follow_perturb_latency(&ev);
        cbrnn_config_apply_event(&H.in_force, &ev);
        batch_add(&evb, line, cbrnn_event_csv_row(line, sizeof line, &ev));
    }
    batch_flush(&evb);
    while (cbrnn_engine_read_record(e, &r, H.y)) {
        if (H.osc_out && r.frame % H.osc_out_every == 0)
            stream_frame(&r);
        batch_add(&logb, line, cbrnn_record_csv_row(line, sizeof line, &r));
        H.last_frame = r.frame;
        H.report_frames++;
        if (isfinite(r.loss) && !(r.flags & CBRNN_REC_GATED)) { /* silence does not count */
            H.report_loss += r.loss;
            H.report_n++;
            H.recent[H.recent_pos] = r.loss;
            H.recent_pos = (H.recent_pos + 1) % RECENT;
            if (H.recent_n < RECENT)
                H.recent_n++;
        }
        if (isfinite(r.persistence_loss) && !(r.flags & CBRNN_REC_GATED))
            H.report_pers += r.persistence_loss;
    }
    batch_flush(&logb);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The log thread: drains the engine every POLL_MS; the writers write
 * what it gathers as it comes (`tail -f` and the demo see it live). */
static void *log_main(void *arg)
{
    (void)arg;
    for (;;) {
        int stop = atomic_load(&H.stop_log);
        pthread_mutex_lock(&H.mu);
        cbrnn_engine *e = atomic_load(&H.engine);
        if (e)
            drain_records(e);
        pthread_mutex_unlock(&H.mu);
        if (stop)
            return NULL;
        sleep_ms(POLL_MS);
    }
}

static void *disk_main(void *arg)
{
    (void)arg;
    float buf[4096];
    for (;;) {
        int stop = atomic_load(&H.stop_disk);
        for (int k = 0; k < 2; k++) {
            struct recorder *rc = &H.rec[k];
            size_t avail;
            while (rc->rb && (avail = jack_ringbuffer_read_space(rc->rb)) >= sizeof(float)) {
                size_t want = avail / sizeof(float);
                if (want > 4096)
                    want = 4096;
                jack_ringbuffer_read(rc->rb, (char *)buf, want * sizeof(float));
                errno = 0;
                if (!atomic_load(&rc->failed) && cbrnn_wav_write(rc->sf, buf, (long)want))
                    atomic_store(&rc->failed, errno ? errno : EIO);
                rc->written += (long)want;
            }
        }
        if (stop)
            return NULL;
        sleep_ms(POLL_MS);
    }
}

/* The latency thread: has JACK recompute the ports' latencies after a
 * delay or listen change (follow_perturb_latency) or a rate change
 * (rebuild_engine), which set H.latency_dirty. jack_recompute_total_latencies
 * waits for the server, forever when it is stalled (SIGSTOP, hung), so the
 * control thread never makes the call: it must stay free to take a stop
 * signal and save. A thread for the whole run polling the flag every
 * POLL_MS, as the log and disk threads poll their work: changes that come
 * while a recompute is in flight are covered by the next one, a burst of
 * them costs one. Only the thread that closes the client joins it
 * (close_jack_main), so stopping waits on it STOP_LIMIT_S at most; stuck
 * in a stalled server, it is left there and the process leaves with
 * _exit. */
static void *latency_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&H.stop_latency)) {
        if (atomic_exchange(&H.latency_dirty, 0))
            jack_recompute_total_latencies(H.client);
        sleep_ms(POLL_MS);
    }
    return NULL;
}

/* ---------------- saving (control thread only) ---------------- */

struct control {
    const char *model_path;
    char model_sha256[65]; /* of the bytes the model was loaded from (events header) */
    const char *save_path;
    const char *save_dir; /* the folder control messages may save in (NULL: none) */
    int osc_remote_ok;    /* 1: accept OSC from any address (--osc-bind not loopback) */
    cbrnn_host_saves *saves; /* the snapshot/save handshake (cbrnn_host.h) */
    int quiet;
    out_writer *markers;
    int next_marker;
    cbrnn_schedule schedule; /* --schedule: applied by the engine itself */
    double t0;
    int learn;
    int save_lock;             /* out_lock_beside(save_path): held until exit */
    long long updates_before;  /* updates made by engines replaced at a rate change */
    long long events_dropped;  /* changes the engine of the events file could not
                                  report, once a rate change replaced it */
    int autosave_skip_said;
    int failed;                /* a failure while working (exit 1) */
};

static struct control C;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reports a finished save (cbrnn_host_saved_fn). */
static void on_saved(void *ctx, const char *path, const char *why, int64_t frame, int rc,
                     const char *msg)
{
    (void)ctx;
    if (rc)
        say(PROG ": %s\n", msg);
    else if (!C.quiet)
        say(PROG ": saved %s (%s, after %lld frames)\n", path, why, (long long)frame);
}

/* Asks the audio thread for a snapshot to be saved to path; dir (or NULL):
 * the folder a path from a control message must stay in, checked again
 * right before the write. */
static int request_save(const char *path, const char *why, const char *dir)
{
    cbrnn_engine *e = atomic_load(&H.engine);
    if (!path || !e)
        return 0;
    int rc = cbrnn_host_saves_request_in(C.saves, e, path, why, dir);
    if (rc && !dir)
        say(PROG ": %s not saved: %s\n", path,
            rc == CBRNN_ERR_FULL ? "too many saves waiting" : cbrnn_strerror(rc));
    return rc;
}

/* Saves every snapshot the audio thread has handed over. */
static void collect_snapshots(void)
{
    cbrnn_engine *e = atomic_load(&H.engine);
    if (e)
        cbrnn_host_saves_collect(C.saves, e, on_saved, NULL);
}

/* Saves still waiting for a snapshot when the audio thread has stopped
 * (e.g. /cbrnn/save just before SIGTERM): served from the weights
 * directly. Only after jack_deactivate or a server shutdown. */
static void flush_pending(void)
{
    cbrnn_engine *e = atomic_load(&H.engine);
    if (e)
        cbrnn_host_saves_flush(C.saves, e, on_saved, NULL);
}

/* Ends the stream: no callback records or processes another block after
 * this returns (paused is checked before either), so the recording, the
 * log and the saved model end at the same frame and `cbrnn run` replays the
 * recording to the same numbers. It must come before jack_deactivate,
 * which may cancel the process thread where it stands (between recording a
 * block and processing it). A callback still inside the engine finishes
 * within a period; after a server crash it may never clear the flag, so
 * wait at most a second. */
static void pause_stream(void)
{
    static int said;
    atomic_store(&H.paused, 1);
    for (int i = 0; i < 1000 && atomic_load(&H.in_process); i++)
        sleep_ms(1);
    if (atomic_load(&H.in_process) && !said) {
        say(PROG ": the audio thread did not leave the engine within 1 s: the "
            "weights are read as they are (an update may be half done)\n");
        said = 1;
    }
}

static int file_exists(const char *p);

/* 1 when the weights are still the loaded ones: no update since the load
 * (across engine rebuilds), so a save would only copy the loaded model. */
static int nothing_learned(void)
{
    cbrnn_engine *e = atomic_load(&H.engine);
    cbrnn_engine_stats st = {0};
    if (e)
        cbrnn_engine_get_stats(e, &st);
    return C.updates_before + st.updates == 0;
}

/* Direct save to --save once the audio thread can no longer run the engine.
 * After a run that learned nothing, an existing file is left alone: it
 * may be an adapted model from an earlier session, which the loaded
 * weights would replace (explicit saves, SIGUSR1 and /cbrnn/save, still
 * write whatever the weights are). */
static int save_now(const char *why)
{
    cbrnn_engine *e = atomic_load(&H.engine);
    pause_stream();
    if (!C.save_path || !e)
        return 0;
    if (nothing_learned() && file_exists(C.save_path)) {
        if (!C.quiet)
            say(PROG ": nothing learned: %s left as it was (%s)\n", C.save_path, why);
        return 0;
    }
    char msg[2048], where[PATH_MAX];
    /* the last chance to keep the session: a copy elsewhere if need be */
    int rc = cbrnn_host_saves_last_chance(C.saves, e, C.save_path, where, sizeof where, msg,
                                          sizeof msg);
    if (rc == 1) {
        say(PROG ": %s\n" PROG ": saved a rescue copy instead: %s (%s, after %lld frames)\n",
            msg, where, why, (long long)cbrnn_host_saves_frames(C.saves, e));
        return -1; /* not where asked: exit status 1 */
    }
    on_saved(NULL, C.save_path, why, cbrnn_host_saves_frames(C.saves, e), rc, msg);
    return rc ? -1 : 0;
}

/* ---------------- OSC (control thread) ---------------- */

/* Every line an OSC message makes goes through osc_say, so no sender can
 * flood the terminal: complaints (refused messages) reach stderr at most
 * once a second, the notes of messages acted on ("learning on", "marker
 * 3 = ...") at most OSC_NOTES_PER_S a second; the main loop reports how
 * many were held back (osc_errors_flush). */
#define OSC_NOTES_PER_S 10
static struct {
    double last;      /* when the last complaint was printed */
    long held;        /* complaints since then not printed */
    double note_sec;  /* the second notes are being counted in */
    int notes;        /* notes printed in it */
    long notes_held;  /* notes not printed */
} osc_err = {-1e9, 0, -1e9, 0, 0};

static void osc_vsay(int complaint, const char *fmt, va_list ap)
{
    double now = now_s();
    if (complaint) {
        if (now - osc_err.last < 1.0) {
            osc_err.held++;
            return;
        }
        osc_err.last = now;
    } else {
        if (C.quiet)
            return;
        if (now - osc_err.note_sec >= 1.0) {
            osc_err.note_sec = now;
            osc_err.notes = 0;
        }
        if (osc_err.notes++ >= OSC_NOTES_PER_S) {
            osc_err.notes_held++;
            return;
        }
    }
    char line[PATH_MAX + 1024]; /* a refused path and why */
    vsnprintf(line, sizeof line, fmt, ap);
    say(PROG ": %s\n", line);
}

static void osc_complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void osc_complain(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    osc_vsay(1, fmt, ap);
    va_end(ap);
}

static void osc_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void osc_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    osc_vsay(0, fmt, ap);
    va_end(ap);
}

/* liblo reports each malformed packet here. */
static void osc_error(int num, const char *msg, const char *where)
{
    osc_complain("OSC error %d: %s%s%s", num, msg ? msg : "", where ? " at " : "",
                 where ? where : "");
}

static void osc_errors_flush(void)
{
    double now = now_s();
    if (osc_err.held && now - osc_err.last >= 1.0) {
        say(PROG ": %ld more OSC error%s in the last %.0f s (not shown)\n",
            osc_err.held, osc_err.held == 1 ? "" : "s", now - osc_err.last);
        osc_err.held = 0;
        osc_err.last = now;
    }
    if (osc_err.notes_held && now - osc_err.note_sec >= 1.0) {
        say(PROG ": %ld more OSC message%s acted on (not shown)\n",
            osc_err.notes_held, osc_err.notes_held == 1 ? "" : "s");
        osc_err.notes_held = 0;
    }
}

/* 0 when the engine took the command; otherwise says why (rate-limited). */
static int send_cmd(int kind, int i, float f, const char *what)
{
    cbrnn_engine *e = atomic_load(&H.engine);
    cbrnn_engine_cmd c = {kind, i, f};
    int rc = e ? cbrnn_engine_send(e, &c) : CBRNN_ERR_ARG;
    if (rc)
        osc_complain("%s: %s", what, cbrnn_strerror(rc));
    return rc;
}

/* 1 when host (a numeric address as liblo reports a sender) is this
 * machine's loopback: 127.0.0.0/8, ::1 or ::ffff:127.x.x.x. */
static int is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!host)
        return 0;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

/* Whatever no method took. */
static int osc_unknown(const char *path, const char *types, lo_arg **argv, int argc,
                       lo_message m, void *u)
{
    (void)argv, (void)argc, (void)m, (void)u;
    static const char *const known[] = {"/cbrnn/learn i", "/cbrnn/lr f", "/cbrnn/momentum f",
                                        "/cbrnn/decay f", "/cbrnn/gate f", "/cbrnn/reset", "/cbrnn/save s",
                                        "/cbrnn/mark s", "/cbrnn/status [i]",
                                        "/cbrnn/perturb/pitch f [RAMP_MS]",
                                        "/cbrnn/perturb/delay f [RAMP_MS]",
                                        "/cbrnn/perturb/gain f [RAMP_MS]",
                                        "/cbrnn/perturb/listen i"};
    for (size_t k = 0; k < sizeof known / sizeof *known; k++) {
        size_t n = strcspn(known[k], " ");
        if (strlen(path) == n && !strncmp(path, known[k], n)) {
            osc_complain("OSC %s with arguments '%s' ignored: expected %s", path, types,
                         known[k]);
            return 0;
        }
    }
    osc_complain("OSC %s (arguments '%s') ignored: unknown address; cbrnn-jack takes "
                 "/cbrnn/learn, lr, momentum, decay, gate, reset, save, mark, status, "
                 "perturb/pitch, perturb/delay, perturb/gain, perturb/listen",
                 path, types);
    return 0;
}

static int osc_learn(const char *path, const char *types, lo_arg **argv, int argc,
                     lo_message m, void *u)
{
    if (argv[0]->i != 0 && argv[0]->i != 1) {
        osc_complain("OSC /cbrnn/learn %d refused: expected 0 (off) or 1 (on)", argv[0]->i);
        return 0;
    }
    if (!send_cmd(CBRNN_CMD_LEARN, argv[0]->i, 0, "/cbrnn/learn"))
        osc_note("learning %s", argv[0]->i ? "on" : "off");
    return 0;
}

/* /cbrnn/lr, /cbrnn/momentum, /cbrnn/decay, /cbrnn/gate: the command
 * line's ranges (the engine's check, cbrnn_engine_send, has the same). */
static int osc_float(const char *path, const char *types, lo_arg **argv, int argc,
                     lo_message m, void *u)
{
    (void)types, (void)argc, (void)m, (void)u;
    static const struct { const char *path; int kind; const char *range; } ranges[] = {
        {"/cbrnn/lr", CBRNN_CMD_LR, "a number in [0, 10]"},
        {"/cbrnn/momentum", CBRNN_CMD_MOMENTUM, "a number in [0, 1)"},
        {"/cbrnn/decay", CBRNN_CMD_DECAY, "a number in [0, 1000]"},
        {"/cbrnn/gate", CBRNN_CMD_GATE, "0 (off) or dBFS in [-150, 0)"}};
    int k = 0;
    while (k < 3 && strcmp(path, ranges[k].path))
        k++;
    const int kind = ranges[k].kind;
    float v = argv[0]->f;
    cbrnn_engine_cmd probe = {kind, 0, v};
    double hi = kind == CBRNN_CMD_LR ? CBRNN_LR_MAX : kind == CBRNN_CMD_DECAY ? CBRNN_DECAY_MAX : 1;
    if (!isfinite(v) || (kind != CBRNN_CMD_GATE && (v < 0 || v > hi)) ||
        cbrnn_engine_check_command(&probe)) {
        osc_complain("OSC %s %g refused: expected %s", path, (double)v, ranges[k].range);
        return 0;
    }
    if (send_cmd(kind, 0, v, path))
        return 0;
    cbrnn_engine_rule_info rule = {.rule = CBRNN_RULE_SGD};
    cbrnn_engine_get_rule(atomic_load(&H.engine), &rule);
    osc_note("%s now %g%s", path + strlen("/cbrnn/"), (double)v,
             kind != CBRNN_CMD_GATE && rule.rule == CBRNN_RULE_RLS
                 ? " (no effect while the cerebellum learns by rls: --rule sgd uses it)"
                 : "");
    return 0;
}

static int osc_reset(const char *path, const char *types, lo_arg **argv, int argc, lo_message m,
                     void *u)
{
    if (!send_cmd(CBRNN_CMD_RESET, 0, 0, "/cbrnn/reset"))
        osc_note("cerebellum reset to the loaded model");
    return 0;
}

/* A save path from the network: only inside the save folder and never
 * over a file that is not a cbrnn model (cbrnn_control_check_save). */
static int osc_save(const char *path, const char *types, lo_arg **argv, int argc, lo_message m,
                    void *u)
{
    char ok[PATH_MAX], msg[PATH_MAX + 256];
    if (cbrnn_control_check_save(ok, sizeof ok, C.save_dir, &argv[0]->s, msg, sizeof msg)) {
        osc_complain("/cbrnn/save refused: %s", msg);
        return 0;
    }
    if (cbrnn_host_same_file(ok, C.model_path)) {
        osc_complain("/cbrnn/save refused: %s is the model cbrnn-jack loaded: a control "
                     "message does not overwrite it", ok);
        return 0;
    }
    int rc = request_save(ok, "/cbrnn/save", C.save_dir);
    if (rc)
        osc_complain("/cbrnn/save %s refused: %s", ok,
                     rc == CBRNN_ERR_FULL ? "too many saves waiting" : cbrnn_strerror(rc));
    return 0;
}

static int osc_mark(const char *path, const char *types, lo_arg **argv, int argc, lo_message m,
                    void *u)
{
    const char *name = &argv[0]->s;
    if (cbrnn_control_check_name(name, CBRNN_MARKER_NAME_MAX)) {
        osc_complain("OSC /cbrnn/mark refused: a marker name is 1 to %d bytes without control "
                     "characters", CBRNN_MARKER_NAME_MAX);
        return 0;
    }
    int id = C.next_marker;
    if (send_cmd(CBRNN_CMD_MARK, id, 0, "/cbrnn/mark"))
        return 0; /* not applied: not in the markers file either */
    C.next_marker++;
    if (C.markers) {
        char row[4 * CBRNN_MARKER_NAME_MAX];
        int n = cbrnn_marker_csv_row(row, sizeof row, id, name, now_s() - C.t0);
        out_writer_put(C.markers, row, (size_t)n, 1);
    }
    osc_note("marker %d = '%s'", id, name);
    return 0;
}

/* Sends message r to host:port (numeric, as liblo reports a sender) from
 * the server's own socket, IPv4 or IPv6 alike (liblo 0.31 cannot reply
 * over the IPv6 socket osc_open gives it). */
static void osc_reply(lo_server s, const char *host, const char *port, const char *path,
                      lo_message r)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &ai))
        return;
    size_t len = 0;
    void *data = lo_message_serialise(r, path, NULL, &len);
    if (data)
        sendto(lo_server_get_socket_fd(s), data, len, 0, ai->ai_addr, ai->ai_addrlen);
    free(data);
    freeaddrinfo(ai);
}

static int osc_status(const char *path, const char *types, lo_arg **argv, int argc,
                      lo_message m, void *u)
{
    lo_server s = u;
    cbrnn_engine *e = atomic_load(&H.engine);
    cbrnn_engine_stats st = {0};
    if (e)
        cbrnn_engine_get_stats(e, &st);
    pthread_mutex_lock(&H.mu);
    double sum = 0;
    for (int i = 0; i < H.recent_n; i++)
        sum += H.recent[i];
    float recent = H.recent_n ? (float)(sum / H.recent_n) : NAN;
    pthread_mutex_unlock(&H.mu);
    lo_address src = lo_message_get_source(m);
    const char *host = src ? lo_address_get_hostname(src) : NULL;
    if (!host)
        return 0;
    char port[16];
    snprintf(port, sizeof port, "%s", lo_address_get_port(src));
    if (argc == 1) { /* "/cbrnn/status i PORT": reply to PORT of the sender's address */
        if (argv[0]->i < 1 || argv[0]->i > 65535) {
            osc_complain("OSC /cbrnn/status %d refused: expected a UDP port 1..65535",
                         argv[0]->i);
            return 0;
        }
        snprintf(port, sizeof port, "%d", argv[0]->i);
    }
    lo_message r = lo_message_new();
    if (r && !lo_message_add(r, "hfhh", (int64_t)st.frames, recent,
                             (int64_t)atomic_load(&H.xruns), (int64_t)st.dropped_records))
        osc_reply(s, host, port, "/cbrnn/status", r);
    if (r)
        lo_message_free(r);
    return 0;
}

/* /cbrnn/perturb/pitch, delay, gain: f the value (semitones, ms, dB),
 * with an optional ramp in ms (i or f); /cbrnn/perturb/listen i. Checked
 * here and again by the engine (cbrnn_engine_send), which applies them at
 * the next frame boundary and reports them to the events file. */
static int osc_perturb(const char *path, const char *types, lo_arg **argv, int argc,
                       lo_message m, void *u)
{
    (void)m, (void)u;
    static const struct { const char *name; int kind; const char *want; } k[] = {
        {"/cbrnn/perturb/delay", CBRNN_CMD_DELAY, "ms in [0, --perturb-max-delay]"},
        {"/cbrnn/perturb/gain", CBRNN_CMD_GAIN, "dB in [-60, 20]"},
        {"/cbrnn/perturb/pitch", CBRNN_CMD_PITCH, "semitones in [-12, 12]"},
        {"/cbrnn/perturb/listen", CBRNN_CMD_LISTEN, "0 or 1"}};
    int i = 0;
    while (i < 3 && strcmp(path, k[i].name))
        i++;
    cbrnn_engine_cmd c = {k[i].kind, 0, 0.0f};
    if (c.kind == CBRNN_CMD_LISTEN) {
        c.i = argv[0]->i;
        if (c.i != 0 && c.i != 1) {
            osc_complain("OSC %s %d refused: expected 0 or 1", path, c.i);
            return 0;
        }
    } else {
        c.f = argv[0]->f;
        /* The second argument sits 4 bytes into the message: lo_arg's
         * 8-byte alignment does not hold there, so it is copied out. */
        double ramp = 0;
        if (argc >= 2) {
            int32_t ri;
            float rf;
            memcpy(types[1] == 'i' ? (void *)&ri : (void *)&rf, argv[1], 4);
            ramp = types[1] == 'i' ? ri : rf;
        }
        if (!(ramp >= 0 && ramp <= CBRNN_PERTURB_RAMP_MAX_MS)) {
            osc_complain("OSC %s %g %g refused: the ramp is ms in [0, %d]", path, (double)c.f,
                         ramp, CBRNN_PERTURB_RAMP_MAX_MS);
            return 0;
        }
        c.i = (int)lround(ramp);
    }
    cbrnn_engine *e = atomic_load(&H.engine);
    int rc = e ? cbrnn_engine_send(e, &c) : CBRNN_ERR_ARG;
    if (rc == CBRNN_ERR_UNSUPPORTED)
        osc_complain("OSC %s refused: no %s (start cbrnn-jack with --perturb-%s)", path,
                     c.kind == CBRNN_CMD_PITCH ? "pitch shift" : "perturbation",
                     c.kind == CBRNN_CMD_PITCH ? "pitch 0" : "delay 0");
    else if (rc == CBRNN_ERR_ARG)
        osc_complain("OSC %s %g refused: expected %s", path,
                     c.kind == CBRNN_CMD_LISTEN ? (double)c.i : (double)c.f, k[i].want);
    else if (rc)
        osc_complain("OSC %s: %s", path, cbrnn_strerror(rc));
    else
        osc_note("%s now %g%s", path + strlen("/cbrnn/"),
                 c.kind == CBRNN_CMD_LISTEN ? (double)c.i : (double)c.f,
                 c.i && c.kind != CBRNN_CMD_LISTEN ? " (ramped)" : "");
    return 0;
}

typedef int (*osc_fn)(const char *path, const char *types, lo_arg **argv, int argc,
                      lo_message m, void *u);

/* Every OSC method, in one place: tests/fuzz/fuzz_osc.c dispatches fuzzed
 * packets through the same table. */
static const struct osc_method {
    const char *path, *types;
    osc_fn fn;
} osc_methods[] = {
    {"/cbrnn/learn", "i", osc_learn},
    {"/cbrnn/lr", "f", osc_float},
    {"/cbrnn/momentum", "f", osc_float},
    {"/cbrnn/decay", "f", osc_float},
    {"/cbrnn/gate", "f", osc_float},
    {"/cbrnn/reset", "", osc_reset},
    {"/cbrnn/save", "s", osc_save},
    {"/cbrnn/mark", "s", osc_mark},
    {"/cbrnn/status", "", osc_status},
    {"/cbrnn/status", "i", osc_status},
    {"/cbrnn/perturb/pitch", "f", osc_perturb},
    {"/cbrnn/perturb/pitch", "fi", osc_perturb},
    {"/cbrnn/perturb/pitch", "ff", osc_perturb},
    {"/cbrnn/perturb/delay", "f", osc_perturb},
    {"/cbrnn/perturb/delay", "fi", osc_perturb},
    {"/cbrnn/perturb/delay", "ff", osc_perturb},
    {"/cbrnn/perturb/gain", "f", osc_perturb},
    {"/cbrnn/perturb/gain", "fi", osc_perturb},
    {"/cbrnn/perturb/gain", "ff", osc_perturb},
    {"/cbrnn/perturb/listen", "i", osc_perturb},
};

/* 1 when the arguments of types can stand for want: the same, or numbers
 * where numbers are wanted (an integer 1 for a float, as liblo coerces);
 * the coerced values land in buf, argv in out. */
static int osc_coerce(const char *want, const char *types, lo_arg **argv, lo_arg *buf,
                      lo_arg **out)
{
    size_t n = strlen(want);
    if (strlen(types) != n)
        return 0;
    for (size_t k = 0; k < n; k++) {
        out[k] = argv[k];
        if (types[k] == want[k])
            continue;
        if (!lo_is_numerical_type((lo_type)types[k]) || !lo_is_numerical_type((lo_type)want[k]))
            return 0;
        /* argv[k] may sit 4 bytes off lo_arg's alignment: copy it out */
        lo_arg from;
        memcpy(&from, argv[k], lo_arg_size((lo_type)types[k], argv[k]));
        if (!lo_coerce((lo_type)want[k], &buf[k], (lo_type)types[k], &from))
            return 0;
        out[k] = &buf[k];
    }
    return 1;
}

/* The one method liblo knows. It refuses a message from another machine
 * (unless --osc-bind opened the port to the network) and any address
 * pattern: liblo hands a pattern to every method it matches whatever the
 * first one answers, so one message could fire save, reset and learn at
 * once; here a path must equal a method's exactly. */
static int osc_dispatch(const char *path, const char *types, lo_arg **argv, int argc,
                        lo_message m, void *u)
{
    lo_address src = lo_message_get_source(m);
    const char *host = src ? lo_address_get_hostname(src) : NULL;
    if (!C.osc_remote_ok && !is_loopback(host)) {
        osc_complain("OSC %s from %s refused: only this machine may control cbrnn-jack "
                     "(see --osc-bind)", path, host ? host : "an unknown address");
        return 0;
    }
    if (strpbrk(path, "*?[]{}")) {
        osc_complain("OSC %s refused: address patterns are not accepted", path);
        return 0;
    }
    lo_arg buf[2], *args[2];
    for (size_t k = 0; k < sizeof osc_methods / sizeof *osc_methods; k++) {
        const struct osc_method *me = &osc_methods[k];
        if (!strcmp(path, me->path) && osc_coerce(me->types, types, argv, buf, args))
            return me->fn(path, me->types, args, argc, m, u);
    }
    return osc_unknown(path, types, argv, argc, m, u);
}

static void osc_add_methods(lo_server osc)
{
    lo_server_add_method(osc, NULL, NULL, osc_dispatch, osc);
    /* Time tags are not honoured: a bundle acts when it arrives (a queue
     * of bundles timed days ahead would grow without bound). */
    lo_server_enable_queue(osc, 0, 1);
}

/* ---------------- setup helpers ---------------- */

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The default model: a binary run from its build folder takes its own
 * source tree's samples/ (an install elsewhere may hold an older model,
 * and a replay with samples/default.safetensors must match); an installed
 * one the model next to it (../share/cbrnn), then the install prefix
 * chosen at build time. */
static const char *default_model(char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            if (cbrnn_host_same_file(exe, CBRNN_BUILD_BIN)) {
                snprintf(buf, len, "%s", CBRNN_SOURCE_SAMPLES "/default.safetensors");
                return buf;
            }
            static const char rel[] = "/../share/cbrnn/default.safetensors";
            if (strlen(exe) + sizeof rel <= len) {
                memcpy(buf, exe, strlen(exe));
                memcpy(buf + strlen(exe), rel, sizeof rel);
                if (file_exists(buf))
                    return buf;
            }
        }
    }
    snprintf(buf, len, "%s", CBRNN_DATADIR "/default.safetensors");
    if (file_exists(buf))
        return buf;
    snprintf(buf, len, "%s", CBRNN_SOURCE_SAMPLES "/default.safetensors");
    return buf;
}

static int parse_float(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The events file starts with the settings in force at frame 0, so that
 * it alone gives `cbrnn run --events` the whole control history. */
static void write_initial_events(out_writer *w, const cbrnn_engine_config *ec)
{
    cbrnn_event init[16];
    char line[128];
    const char *h = cbrnn_event_csv_header();
    out_writer_put(w, h, strlen(h), 0);
    int n = cbrnn_events_from_config(init, 16, ec);
    for (int i = 0; i < n && i < 16; i++)
        out_writer_put(w, line, (size_t)cbrnn_event_csv_row(line, sizeof line, &init[i]), 1);
}

/* --save and --save-dir, checked before anything runs: a save that can
 * only fail at exit would lose the adapted model. Sets c->save_dir to the
 * folder of --save when --save-dir is not given. */
static int check_save_options(struct control *c)
{
    static char dirbuf[PATH_MAX];
    char msg[PATH_MAX + 256];
    struct stat sb;
    if (c->save_path && cbrnn_control_check_output(c->save_path, msg, sizeof msg)) {
        say(PROG ": --save %s\n", msg);
        return -1;
    }
    if (cbrnn_host_same_file(c->save_path, c->model_path))
        say(PROG ": note: --save %s is the model being loaded: the adapted model "
            "will replace it (keep a copy to go back)\n", c->save_path);
    if (c->save_dir && (stat(c->save_dir, &sb) || !S_ISDIR(sb.st_mode))) {
        say(PROG ": --save-dir %s: not a folder\n", c->save_dir);
        return -1;
    }
    if (!c->save_dir && c->save_path) {
        const char *slash = strrchr(c->save_path, '/');
        size_t n = !slash ? 0 : slash == c->save_path ? 1 : (size_t)(slash - c->save_path);
        if (n >= sizeof dirbuf)
            return -1;
        memcpy(dirbuf, c->save_path, n);
        dirbuf[n] = 0;
        c->save_dir = n ? dirbuf : ".";
    }
    return 0;
}

/* Set while liblo makes the OSC server (osc_open): bind() then puts a
 * socket meant for every interface on loopback instead. */
static atomic_int bind_loopback_only;

/* bind(2) as libc's, except while bind_loopback_only is set: liblo 0.31
 * (Debian 12) binds its server to 0.0.0.0 whatever it is asked, and even
 * the moment before osc_open swaps that socket for ours must not listen
 * beyond loopback. This definition takes the place of libc's for liblo
 * too (a symbol of the executable comes first). Control thread only
 * sets the flag; any thread may call it. */
__attribute__((visibility("default"))) /* the build hides symbols by default */
int bind(int fd, const struct sockaddr *a, socklen_t len)
{
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    if (atomic_load(&bind_loopback_only) && a && a->sa_family == AF_INET &&
        len >= (socklen_t)sizeof in4) {
        memcpy(&in4, a, sizeof in4);
        if (in4.sin_addr.s_addr == htonl(INADDR_ANY)) {
            in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a = (const struct sockaddr *)&in4;
        }
    } else if (atomic_load(&bind_loopback_only) && a && a->sa_family == AF_INET6 &&
               len >= (socklen_t)sizeof in6) {
        memcpy(&in6, a, sizeof in6);
        if (!memcmp(&in6.sin6_addr, &in6addr_any, sizeof in6addr_any)) {
            in6.sin6_addr = in6addr_loopback;
            a = (const struct sockaddr *)&in6;
        }
    }
    return (int)syscall(SYS_bind, fd, a, len);
}

/* An OSC server on UDP bind_addr:port only (the caller checked port is
 * 1..65535). liblo 0.31 (Debian 12) cannot bind a server to one address,
 * so the server is made on a port of liblo's choosing (on loopback: see
 * bind above) and its socket is then replaced (dup2) by ours, bound where
 * asked: liblo keeps polling and reading the same descriptor number. */
static lo_server osc_open(const char *port, const char *bind_addr, char *msg, size_t len)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    int rc = getaddrinfo(bind_addr, port, &hints, &ai);
    if (rc) {
        snprintf(msg, len, "--osc-bind %s: not a numeric local address (%s)", bind_addr,
                 gai_strerror(rc));
        return NULL;
    }
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen)) {
        snprintf(msg, len, "--osc %s --osc-bind %s: cannot listen there: %s", port, bind_addr,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    atomic_store(&bind_loopback_only, 1);
    lo_server s = lo_server_new(NULL, osc_error);
    atomic_store(&bind_loopback_only, 0);
    int lfd = s ? lo_server_get_socket_fd(s) : -1;
    if (lfd < 0 || dup2(fd, lfd) < 0) {
        snprintf(msg, len, "--osc %s: cannot start the OSC server", port);
        if (s)
            lo_server_free(s);
        close(fd);
        return NULL;
    }
    close(fd);
    return s;
}

/* The latencies the perturbation adds, for the latency callback: the
 * feedback port lags the input by the pitch shifter's latency plus the
 * delay; while the model hears the feedback every other output lags by
 * that much more too. Set at start, and again for each delay or listen
 * change the engine applies (OSC or schedule: follow_perturb_latency,
 * from the applied events); the latency thread then has JACK recompute
 * (latency_main). */
static void set_fb_latency(double delay_ms, int listen)
{
    int fb = atomic_load(&H.shifter_latency) +
             (int)lround(delay_ms * atomic_load(&H.engine_rate) / 1000.0);
    atomic_store(&H.fb_latency, fb);
    atomic_store(&H.listening, listen);
    atomic_store(&H.latency_dirty, 1);
}

static void set_perturb_latency(const cbrnn_engine *e, const cbrnn_engine_config *ec)
{
    const double delay = ec->perturb ? ec->perturb_delay_ms : 0.0;
    atomic_store(&H.shifter_latency, cbrnn_engine_perturb_latency(e));
    atomic_store(&H.delay_ms_x1000, (int)lround(delay * 1000.0));
    set_fb_latency(delay, ec->listen);
}

/* An applied delay or listen change moves the ports' latencies (the
 * delay's target value: a ramp ends there). */
static void follow_perturb_latency(const cbrnn_event *ev)
{
    if (ev->cmd.kind == CBRNN_CMD_DELAY) {
        set_fb_latency(ev->cmd.f, atomic_load(&H.listening));
        atomic_store(&H.delay_ms_x1000, (int)lround(ev->cmd.f * 1000.0));
    } else if (ev->cmd.kind == CBRNN_CMD_LISTEN) {
        set_fb_latency(atomic_load(&H.delay_ms_x1000) / 1000.0, ev->cmd.i != 0);
    }
}

/* A new engine for a new server rate, carrying the adapted weights over. */
static int rebuild_engine(int rate, const cbrnn_engine_config *base)
{
    cbrnn_engine *old = atomic_load(&H.engine);
    int err;
    cbrnn_model *adapted = cbrnn_model_clone(cbrnn_engine_model(old), &err);
    if (!adapted) {
        say(PROG ": the server's rate changed to %d Hz: out of memory\n", rate);
        return -1;
    }
    atomic_store(&H.paused, 1);
    while (atomic_load(&H.in_process))
        sleep_ms(1);
    /* saves asked of the old engine are written now, from the weights it
     * stopped with: its snapshot slots go with it */
    collect_snapshots();
    flush_pending();
    pthread_mutex_lock(&H.mu);
    drain_records(old);
    cbrnn_engine_copy_params(old, adapted);
    cbrnn_engine_stats ost;
    cbrnn_engine_get_stats(old, &ost);
    /* the settings in force (OSC, a schedule), not those of the start:
     * learning went off and lr back to the option's after a rate change */
    (void)base;
    cbrnn_engine_config c = H.in_force;
    c.sample_rate = rate;
    char msg[1024];
    cbrnn_engine *e = cbrnn_host_start(cbrnn_engine_model(old), C.model_path, &c, 0, &err, msg,
                                       sizeof msg);
    if (!e) {
        pthread_mutex_unlock(&H.mu);
        cbrnn_model_destroy(adapted);
        say(PROG ": the server's rate changed to %d Hz and the model cannot run at "
            "it (%s); the outputs stay silent\n", rate, msg);
        return -1;
    }
    cbrnn_engine_set_params(e, adapted);
    cbrnn_model_destroy(adapted);
    C.updates_before += ost.updates; /* the new engine counts from 0 */
    if (!H.events_ended) /* the file ends here: what it lacks is the old engine's */
        C.events_dropped = ost.dropped_events;
    cbrnn_host_saves_carry(C.saves, ost.frames); /* adapted_frames counts them all */
    atomic_store(&H.engine, e);
    atomic_store(&H.engine_rate, rate);
    atomic_store(&H.latency, cbrnn_engine_latency(e));
    /* the window is in ms, so its samples changed: set_perturb_latency
     * marks the latencies, which the latency thread has JACK recompute
     * (not this thread: see latency_main) */
    set_perturb_latency(e, &c);
    cbrnn_engine_destroy(old);
    H.events_ended = 1;
    pthread_mutex_unlock(&H.mu);
    atomic_store(&H.paused, 0);
    say(PROG ": the server's sample rate is now %d Hz: features follow it "
        "(the log's frames count from 0 again; the settings in force go on%s%s%s)\n", rate,
        H.n_rec ? "; recording stopped: a WAV file has one rate" : "",
        H.events ? "; the events file ends here: it replays the part before" : "",
        C.schedule.events.n ? "; the schedule stops" : "");
    return 0;
}

/* ---------------- main: options, then named steps ---------------- */

struct options {
    const char *model_path, *name, *log_path, *rec_path, *trec_path, *osc_port, *osc_bind;
    const char *schedule_path;
    const char *osc_out;       /* [HOST:]PORT */
    double osc_out_rate;       /* frames a second at most */
    int osc_out_outputs;
    const char *cin[MAX_CONNECT], *cout[MAX_CONNECT], *cfb[MAX_CONNECT];
    int n_cin, n_cout, n_cfb, n_outputs, label_base;
    double autosave, report;
    cbrnn_engine_config ec;
};

enum { O_MODEL = 256, O_NAME, O_OUTPUTS, O_CIN, O_COUT, O_CFB, O_LEARN, O_NOLEARN, O_LR, O_MOM,
       O_DECAY, O_BPTT, O_BASE, O_LOG, O_RECORD, O_TRECORD, O_SAVE, O_AUTOSAVE, O_REPORT, O_OSC,
       O_OSC_BIND, O_SAVE_DIR, O_SCHEDULE, O_GATE, O_OSC_OUT, O_OSC_OUT_RATE,
       O_OSC_OUT_OUTPUTS, O_QUIET, O_ENGINE_FIRST /* CBRNN_HOST_ENGINE_LONGOPTS */ };

/* An integer option within [lo, hi] (through parse_float), or -1 after
 * "PROG: OPT 'ARG': expected WHAT". */
static int int_option(const char *opt, const char *arg, double lo, double hi, const char *what,
                      int *out)
{
    double v;
    if (parse_float(arg, lo, hi, &v) || v != floor(v)) {
        say(PROG ": %s '%s': expected %s\n", opt, arg, what);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* The options that take a number (c as getopt_long returned it). 0 taken,
 * -1 bad value (said), 1 not one of them. */
static int number_option(struct options *o, int c, const char *arg)
{
    double v;
    switch (c) {
    case O_OUTPUTS: {
        char what[64];
        snprintf(what, sizeof what, "an integer in 0..%d", MAX_OUT);
        return int_option("--outputs", arg, 0, MAX_OUT, what, &o->n_outputs);
    }
    case O_BPTT: return int_option("--bptt", arg, 1, 1024, "an integer in 1..1024", &o->ec.bptt_k);
    case O_BASE:
        return int_option("--label-base", arg, 0, 127, "a MIDI note 0..127", &o->label_base);
    case O_LR:
    case O_DECAY:
        if (parse_float(arg, 0, c == O_LR ? CBRNN_LR_MAX : CBRNN_DECAY_MAX, &v)) {
            say(PROG ": --%s '%s': expected a number in [0, %g]\n",
                c == O_LR ? "lr" : "decay", arg, c == O_LR ? CBRNN_LR_MAX : CBRNN_DECAY_MAX);
            return -1;
        }
        *(c == O_LR ? &o->ec.lr : &o->ec.decay) = (float)v;
        return 0;
    case O_MOM:
        if (parse_float(arg, 0, CBRNN_MOMENTUM_MAX, &v)) {
            say(PROG ": --momentum '%s': expected a number in [0, 1)\n", arg);
            return -1;
        }
        o->ec.momentum = (float)v;
        return 0;
    case O_AUTOSAVE:
    case O_REPORT:
        if (parse_float(arg, 0.1, 1e6, &v)) {
            say(PROG ": --%s '%s': expected seconds >= 0.1\n",
                c == O_AUTOSAVE ? "autosave" : "report", arg);
            return -1;
        }
        *(c == O_AUTOSAVE ? &o->autosave : &o->report) = v;
        return 0;
    case O_OSC: {
        int port;
        if (int_option("--osc", arg, 1, 65535, "a UDP port 1..65535", &port))
            return -1;
        o->osc_port = arg;
        return 0;
    }
    case O_OSC_OUT_RATE:
        if (parse_float(arg, 0.1, 1000, &o->osc_out_rate)) {
            say(PROG ": --osc-out-rate '%s': expected frames a second in "
                "[0.1, 1000]\n", arg);
            return -1;
        }
        return 0;
    case O_GATE:
        if (parse_float(arg, CBRNN_GATE_DB_MIN, -1e-9, &v)) {
            say(PROG ": --gate-db '%s': expected dBFS in [%g, 0)\n", arg,
                CBRNN_GATE_DB_MIN);
            return -1;
        }
        o->ec.gate_db = (float)v;
        return 0;
    default:
        if (c >= O_ENGINE_FIRST && c < O_ENGINE_FIRST + CBRNN_HOST_ENGINE_NOPTS) {
            char msg[256];
            if (cbrnn_host_engine_option(&o->ec, c - O_ENGINE_FIRST, arg, msg, sizeof msg)) {
                say(PROG ": %s\n", msg);
                return -1;
            }
            return 0;
        }
        return 1;
    }
}

/* The options that need another one, and the save options. 0 or 2 (said). */
static int check_options(const struct options *o)
{
    if (o->autosave > 0 && !C.save_path) {
        say(PROG ": --autosave needs --save PATH\n");
        return 2;
    }
    if ((o->osc_out_outputs || o->osc_out_rate != 20) && !o->osc_out) {
        say(PROG ": --osc-out-rate and --osc-out-outputs need --osc-out\n");
        return 2;
    }
    if (o->osc_bind && !o->osc_port) {
        say(PROG ": --osc-bind needs --osc PORT\n");
        return 2;
    }
    C.model_path = o->model_path; /* NULL: the default, found later */
    return check_save_options(&C) ? 2 : 0;
}

/* Fills o from the command line (and C.save_path, C.save_dir, C.quiet).
 * 0 to go on, 1 after --help, 2 on a bad option (said). */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option lo[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"name", required_argument, NULL, O_NAME},
        {"outputs", required_argument, NULL, O_OUTPUTS},
        {"connect-input", required_argument, NULL, O_CIN},
        {"connect-output", required_argument, NULL, O_COUT},
        {"connect-feedback", required_argument, NULL, O_CFB},
        {"learn", no_argument, NULL, O_LEARN},
        {"no-learn", no_argument, NULL, O_NOLEARN},
        {"lr", required_argument, NULL, O_LR},
        {"momentum", required_argument, NULL, O_MOM},
        {"decay", required_argument, NULL, O_DECAY},
        {"bptt", required_argument, NULL, O_BPTT},
        {"label-base", required_argument, NULL, O_BASE},
        {"log", required_argument, NULL, O_LOG},
        {"record", required_argument, NULL, O_RECORD},
        {"record-teacher", required_argument, NULL, O_TRECORD},
        {"save", required_argument, NULL, O_SAVE},
        {"autosave", required_argument, NULL, O_AUTOSAVE},
        {"report", required_argument, NULL, O_REPORT},
        {"osc", required_argument, NULL, O_OSC},
        {"osc-bind", required_argument, NULL, O_OSC_BIND},
        {"save-dir", required_argument, NULL, O_SAVE_DIR},
        {"schedule", required_argument, NULL, O_SCHEDULE},
        {"gate-db", required_argument, NULL, O_GATE},
        {"osc-out", required_argument, NULL, O_OSC_OUT},
        {"osc-out-rate", required_argument, NULL, O_OSC_OUT_RATE},
        {"osc-out-outputs", no_argument, NULL, O_OSC_OUT_OUTPUTS},
        {"quiet", no_argument, NULL, O_QUIET},
        CBRNN_HOST_ENGINE_LONGOPTS(O_ENGINE_FIRST),
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->name = "cbrnn";
    o->n_outputs = -1;
    o->label_base = 60;
    o->osc_out_rate = 20;
    cbrnn_engine_config_default(&o->ec, 48000.0);
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int rc = number_option(o, c, optarg);
        if (rc < 0)
            return 2;
        if (rc == 0)
            continue;
        switch (c) {
        case O_MODEL: o->model_path = optarg; break;
        case O_NAME: o->name = optarg; break;
        case O_CIN:
        case O_COUT:
        case O_CFB: {
            int *n = c == O_CIN ? &o->n_cin : c == O_COUT ? &o->n_cout : &o->n_cfb;
            if (*n == MAX_CONNECT) {
                say(PROG ": at most %d --connect-input/--connect-output/"
                    "--connect-feedback each\n", MAX_CONNECT);
                return 2;
            }
            (c == O_CIN ? o->cin : c == O_COUT ? o->cout : o->cfb)[(*n)++] = optarg;
            break;
        }
        case O_LEARN: o->ec.learn = 1; break;
        case O_NOLEARN: o->ec.learn = 0; break;
        case O_LOG: o->log_path = optarg; break;
        case O_RECORD: o->rec_path = optarg; break;
        case O_TRECORD: o->trec_path = optarg; break;
        case O_SAVE: C.save_path = optarg; break;
        case O_OSC_BIND: o->osc_bind = optarg; break;
        case O_SAVE_DIR: C.save_dir = optarg; break;
        case O_SCHEDULE: o->schedule_path = optarg; break;
        case O_OSC_OUT: o->osc_out = optarg; break;
        case O_OSC_OUT_OUTPUTS: o->osc_out_outputs = 1; break;
        case O_QUIET: C.quiet = 1; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        say(PROG ": unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return check_options(o);
}

/* Loads the model and checks it against the options (NULL: said why). */
static cbrnn_model *open_model(struct options *o, char *defbuf, size_t deflen)
{
    char msg[2048];
    int err;
    if (!o->model_path)
        o->model_path = default_model(defbuf, deflen);
    C.model_path = o->model_path;
    /* hashed as loaded: the file read again later could hold another model */
    cbrnn_model *m = cbrnn_host_load_model(o->model_path, C.model_sha256, &err, msg, sizeof msg);
    if (!m) {
        say(PROG ": %s\n", msg);
        return NULL;
    }
    const int O = m->cfg.n_out;
    if (o->n_outputs < 0)
        o->n_outputs = m->target == CBRNN_TARGET_CLASSIFY ? O : (O < 4 ? O : 4);
    const char *bad = m->target == CBRNN_TARGET_TASK ? "is a sequence-task model (target task), "
                                                       "not an audio model"
                      : o->n_outputs > O             ? "has fewer outputs than --outputs"
                      : o->n_cout > 1 + o->n_outputs ? "has fewer output ports than "
                                                       "--connect-output"
                      : o->trec_path && m->target != CBRNN_TARGET_MAP
                          ? "has no teacher input (--record-teacher is for map models)"
                          : NULL;
    if (bad) {
        say(PROG ": %s %s (outputs: %d model, %d asked, %d connections)\n",
            o->model_path, bad, O, o->n_outputs, o->n_cout);
        cbrnn_model_destroy(m);
        return NULL;
    }
    return m;
}

/* The output files through the guard every cbrnn command uses
 * (host_files.h), before anything is opened: --log (and its .markers and
 * .events), --record and --record-teacher may not be the model, the
 * schedule, each other or --save, nor an existing model or other
 * safetensors file, nor (--log) an audio file: they are truncated at
 * start. A FIFO or a device, or a link to one (a live reader of the log,
 * /dev/null), is taken as it is.
 * --save is checked first, so that it may be the model (a note says so).
 * 0 or 2. */
static int check_outputs(const struct options *o)
{
    char marks[PATH_MAX], events[PATH_MAX], msg[PATH_MAX + 512];
    const char *log = o->log_path;
    if (log && (snprintf(marks, sizeof marks, "%s.markers", log) >= (int)sizeof marks ||
                snprintf(events, sizeof events, "%s.events", log) >= (int)sizeof events)) {
        say(PROG ": --log %s: path too long\n", log);
        return 2;
    }
    const struct {
        const char *opt, *path;
        enum host_out_kind kind;
    } outs[] = {{"--log", log, HOST_OUT_DATA},
                {"--log (its markers)", log ? marks : NULL, HOST_OUT_DATA},
                {"--log (its events)", log ? events : NULL, HOST_OUT_DATA},
                {"--record", o->rec_path, HOST_OUT_AUDIO},
                {"--record-teacher", o->trec_path, HOST_OUT_AUDIO}};
    host_files f = {0};
    int rc = (C.save_path && host_files_output(&f, "--save", C.save_path, HOST_OUT_MODEL, msg,
                                               sizeof msg)) ||
             host_files_input(&f, o->model_path) ||
             (o->schedule_path && host_files_input(&f, o->schedule_path));
    for (size_t i = 0; !rc && i < sizeof outs / sizeof outs[0]; i++) {
        struct stat st;
        if (!outs[i].path ||
            (stat(outs[i].path, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))))
            continue;
        rc = host_files_output(&f, outs[i].opt, outs[i].path, outs[i].kind, msg, sizeof msg);
    }
    host_files_free(&f);
    if (rc)
        say(PROG ": %s\n", msg);
    return rc ? 2 : 0;
}

/* What a later `cbrnn run --events` could not replay, said at start. */
static void warn_unreplayable(const cbrnn_model *m, const struct options *o)
{
    if (o->rec_path && m->target == CBRNN_TARGET_MAP && !o->trec_path)
        say(PROG ": note: --record without --record-teacher: the teacher input is not kept, so "
            "this run cannot be replayed exactly\n");
    if (o->rec_path && !o->log_path && (o->osc_port || m->target == CBRNN_TARGET_CLASSIFY ||
                                        o->schedule_path))
        say(PROG ": note: --record without --log: the control changes (OSC, MIDI labels, the "
            "schedule) are kept nowhere, so this run cannot be replayed exactly\n");
}

/* Blocks the signals in this thread before JACK and our threads exist, so
 * every thread inherits the mask and only sigtimedwait in the control
 * loop takes them: no handler ever interrupts the audio thread. */
static void block_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGUSR1);
    sigaddset(sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int open_jack_client(const char *name)
{
    jack_status_t js;
    H.client = jack_client_open(name, JackNoStartServer, &js);
    if (H.client)
        return 0;
    const char *srv = getenv("JACK_DEFAULT_SERVER");
    say(PROG ": cannot connect to the JACK server '%s' (%s; status 0x%x)%s\n",
        srv && *srv ? srv : "default",
        srv && *srv ? "from JACK_DEFAULT_SERVER" : "JACK_DEFAULT_SERVER is not set",
        (unsigned)js,
        (js & JackServerFailed) ? ": none is running under that name (start one, e.g. "
                                  "'jackd -d dummy' or 'jackd -d alsa')"
                                : "");
    return -1;
}

/* The engine at the server's rate and the save handshake for it. 0, 1
 * (failure) or 2 (the model cannot run here). */
static int start_engine(const cbrnn_model *m, struct options *o)
{
    char msg[2048];
    int err;
    o->ec.sample_rate = jack_get_sample_rate(H.client);
    o->ec.record_capacity = 1 << 14; /* 164 s of frames: the log thread never lags that far */
    o->ec.record_outputs = o->osc_out_outputs;
    cbrnn_engine *e = cbrnn_host_start(m, o->model_path, &o->ec, 0, &err, msg, sizeof msg);
    if (!e) {
        say(PROG ": %s\n", msg);
        return 2;
    }
    if (o->schedule_path) {
        /* Its markers take ids 0.. ; OSC markers follow them. */
        if (cbrnn_schedule_load(&C.schedule, o->schedule_path, o->ec.sample_rate,
                                cbrnn_engine_hop(e), 0, msg, sizeof msg)) {
            say(PROG ": --schedule %s\n", msg);
            cbrnn_engine_destroy(e);
            return 2;
        }
        C.next_marker = C.schedule.n_marks;
        int had = o->ec.perturb, had_ring = o->ec.event_capacity;
        cbrnn_host_perturb_for_events(&o->ec, C.schedule.events.ev, C.schedule.events.n);
        cbrnn_host_size_event_ring(&o->ec, C.schedule.events.n);
        /* the schedule perturbs, or holds many changes: an engine that can */
        if (o->ec.perturb != had || o->ec.event_capacity != had_ring) {
            cbrnn_engine_destroy(e);
            if (!(e = cbrnn_host_start(m, o->model_path, &o->ec, 0, &err, msg, sizeof msg))) {
                say(PROG ": %s\n", msg);
                return 2;
            }
        }
        if (cbrnn_engine_set_schedule(e, C.schedule.events.ev, C.schedule.events.n)) {
            say(PROG ": --schedule %s: refused by the engine\n", o->schedule_path);
            cbrnn_engine_destroy(e);
            return 2;
        }
    }
    H.in_force = o->ec;
    atomic_init(&H.engine, e);
    atomic_store(&H.engine_rate, (int)o->ec.sample_rate);
    atomic_store(&H.latency, cbrnn_engine_latency(e));
    set_perturb_latency(e, &o->ec);
    cbrnn_midi_labels_init(&H.labels, o->label_base);
    if (!(C.saves = cbrnn_host_saves_create(e, PROG, o->model_path, &err))) {
        say(PROG ": out of memory\n");
        return 1;
    }
    C.learn = o->ec.learn;
    return 0;
}

static int register_ports(const cbrnn_model *m, int n_outputs, int perturb)
{
    if (perturb && !(H.fb = jack_port_register(H.client, "feedback", JACK_DEFAULT_AUDIO_TYPE,
                                               JackPortIsOutput, 0))) {
        say(PROG ": cannot register the JACK ports\n");
        return -1;
    }
    H.in = jack_port_register(H.client, "input", JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
    if (m->target == CBRNN_TARGET_MAP)
        H.teacher = jack_port_register(H.client, "teacher", JACK_DEFAULT_AUDIO_TYPE,
                                       JackPortIsInput, 0);
    if (m->target == CBRNN_TARGET_CLASSIFY)
        H.midi = jack_port_register(H.client, "labels", JACK_DEFAULT_MIDI_TYPE, JackPortIsInput,
                                    0);
    H.n_out = 1 + n_outputs;
    H.out[0] = jack_port_register(H.client, "surprise", JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput,
                                  0);
    for (int i = 1; i < H.n_out; i++) {
        char pn[32];
        snprintf(pn, sizeof pn, "out_%d", i);
        H.out[i] = jack_port_register(H.client, pn, JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
    }
    int ok = H.in != NULL;
    for (int i = 0; i < H.n_out; i++)
        ok &= H.out[i] != NULL;
    if (!ok || (m->target == CBRNN_TARGET_MAP && !H.teacher) ||
        (m->target == CBRNN_TARGET_CLASSIFY && !H.midi)) {
        say(PROG ": cannot register the JACK ports\n");
        return -1;
    }
    return 0;
}

/* Opens path for writing without truncating it, locked for this process
 * (out_lock_fd) when it is a regular file: devices and FIFOs are shared
 * as their owner wishes. *regular: 1 for a regular file. The descriptor,
 * or -1 after saying why (another process holds the file: exit 2). */
static int open_locked(const char *opt, const char *path, int *regular)
{
    struct stat sb;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || fstat(fd, &sb)) {
        say(PROG ": %s %s: cannot create: %s\n", opt, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *regular = S_ISREG(sb.st_mode);
    long pid;
    if (*regular && out_lock_fd(fd, &pid)) {
        if (pid >= 0)
            say(PROG ": %s %s: in use by process %ld (another cbrnn-jack writing "
                "it?): left as it is; give another name\n", opt, path, pid);
        else
            say(PROG ": %s %s: cannot lock: %s\n", opt, path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* The bytes a writer's queue holds while its destination takes nothing:
 * dflt, or the environment variable var (bytes, at least 4096), which the
 * tests of stalled outputs set to see losses within seconds. */
static size_t queue_bytes(const char *var, size_t dflt)
{
    const char *v = getenv(var);
    double b;
    if (v && !parse_float(v, 4096, 1 << 30, &b))
        return (size_t)b;
    return dflt;
}

/* Log rows: 1 MiB, about 150 s of rows (~70 bytes each, 100 a second). */
static size_t log_buffer_bytes(void)
{
    return queue_bytes("CBRNN_JACK_LOG_BUFFER", 1u << 20);
}

/* Messages and report lines: 64 KiB each, about 600 report lines (10 min
 * at --report 1) or 500 messages; CBRNN_JACK_MSG_BUFFER changes it. */
#define MSG_QUEUE_BYTES (1u << 16)

/* Starts the writers of stderr and stdout (see say()) on copies of the
 * descriptors, and hands libjack's messages to them. A writer that cannot
 * start leaves its stream written directly, as before (said). */
static void start_messages(void)
{
    size_t cap = queue_bytes("CBRNN_JACK_MSG_BUFFER", MSG_QUEUE_BYTES);
    /* started before block_signals: their threads take no signal either */
    sigset_t all, was;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &was);
    for (int k = MSG_ERR; k <= MSG_OUT; k++) {
        const char *name = k == MSG_OUT ? "stdout" : "stderr";
        int fd = fcntl(k == MSG_OUT ? STDOUT_FILENO : STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) /* closed by the caller (2>&-): nothing to write to anyway */
            continue;
        out_writer *w = out_writer_start(fd, name, cap);
        if (!w)
            say(PROG ": cannot start the writer thread of %s: written directly (a stalled "
                "terminal could hold up saving)\n", name);
        pthread_mutex_lock(&msg_mu);
        msg_w[k] = w;
        pthread_mutex_unlock(&msg_mu);
    }
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    jack_set_error_function(jack_error_said);
    jack_set_info_function(jack_info_said);
}

/* Messages lost while stderr or stdout took nothing (a queue full), said
 * on stderr with the count so far once that stream has taken everything
 * queued again (so the note itself gets through), or at exit. A failed
 * write of stdout (its reader gone: `cbrnn-jack --report 1 | head`) is
 * said once; of stderr, nowhere to say it. */
static void note_lost_messages(int at_exit)
{
    static long long said[2];
    static int said_error;
    for (int k = MSG_ERR; k <= MSG_OUT; k++) {
        if (!msg_w[k])
            continue;
        out_writer_stats st;
        out_writer_get_stats(msg_w[k], &st);
        if (k == MSG_OUT && st.error && !said_error) {
            say(PROG ": stdout: write failed: %s; report lines from here are dropped\n",
                strerror(st.error));
            said_error = 1;
        }
        if (st.error || st.lost <= said[k] || (st.pending && !at_exit))
            continue;
        said[k] = st.lost;
        say(PROG ": %s: %lld %s lost so far: it took nothing for a while (a stalled terminal "
            "or pipe?)\n", out_writer_name(msg_w[k]), st.lost,
            k == MSG_OUT ? (st.lost == 1 ? "report line" : "report lines")
                         : (st.lost == 1 ? "message" : "messages"));
    }
}

/* --log FILE.csv with FILE.csv.markers and FILE.csv.events, each written
 * by a writer thread; FILE.csv is locked against a second instance (which
 * covers the other two) before anything is truncated. 0 or 2. */
static int open_log(const struct options *o)
{
    if (!o->log_path)
        return 0;
    char path[PATH_MAX];
    out_writer **w[3] = {&H.log, &C.markers, &H.events};
    static const char *const suffix[3] = {"", ".markers", ".events"};
    static const size_t cap[3] = {0, 1u << 16, 1u << 18};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s%s", o->log_path, suffix[k]);
        int regular = 1, fd;
        if (k == 0)
            fd = open_locked("--log", path, &regular);
        else if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
            say(PROG ": %s: cannot create: %s\n", path, strerror(errno));
        if (fd < 0)
            return 2;
        if (k == 0 && regular && ftruncate(fd, 0)) {
            say(PROG ": %s: cannot truncate: %s\n", path, strerror(errno));
            close(fd);
            return 2;
        }
        if (!(*w[k] = out_writer_start(fd, path, k ? cap[k] : log_buffer_bytes()))) {
            say(PROG ": %s: cannot start its writer thread\n", path);
            return 2;
        }
    }
    const char *h = cbrnn_record_csv_header();
    out_writer_put(H.log, h, strlen(h), 0);
    h = cbrnn_marker_csv_header();
    out_writer_put(C.markers, h, strlen(h), 0);
    for (int i = 0; i < C.schedule.n_marks; i++) { /* the schedule's, at their times */
        char row[1024];
        int n = cbrnn_marker_csv_row(row, sizeof row, C.schedule.first_mark + i,
                                     C.schedule.mark_names[i], C.schedule.mark_seconds[i]);
        out_writer_put(C.markers, row, (size_t)n, 1);
    }
    /* the model (SHA-256) and engine options the replay needs, first */
    char head[CBRNN_EVENTS_HEADER_MAX], msg[1024];
    int hn = cbrnn_events_header(head, sizeof head, o->model_path, C.model_sha256,
                                 atomic_load(&H.engine), &o->ec, msg, sizeof msg);
    if (hn < 0) {
        say(PROG ": %s.events: %s\n", o->log_path, msg);
        return 2;
    }
    out_writer_put(H.events, head, (size_t)hn, 0);
    write_initial_events(H.events, &o->ec);
    return 0;
}

/* --record and --record-teacher: float WAV files and the rings the audio
 * thread fills for them. 0, 1 or 2. */
static int open_recorders(const struct options *o)
{
    const char *paths[2] = {o->rec_path, o->trec_path};
    for (int k = 0; k < 2; k++) {
        if (!paths[k])
            continue;
        /* Float samples, exactly as JACK delivered them, so that a replay
         * through `cbrnn run` sees bit-identical input. */
        struct recorder *rc = &H.rec[k];
        int err, regular;
        /* locked first (kept open for the lock), then truncated by create */
        if ((rc->lock_fd = open_locked(k ? "--record-teacher" : "--record", paths[k],
                                       &regular)) < 0)
            return 2;
        if (!(rc->sf = cbrnn_wav_create(paths[k], (int)o->ec.sample_rate, &err))) {
            say(PROG ": %s: cannot create: %s\n", paths[k], strerror(errno));
            return 2;
        }
        rc->path = paths[k];
        rc->rb = jack_ringbuffer_create(REC_RING_FLOATS * sizeof(float));
        if (!rc->rb) {
            say(PROG ": out of memory\n");
            return 1;
        }
        /* mlock may be refused (RLIMIT_MEMLOCK); the ring works without,
         * only a page fault becomes possible. Touched either way. */
        jack_ringbuffer_mlock(rc->rb);
        memset(rc->rb->buf, 0, rc->rb->size);
        H.n_rec++;
    }
    atomic_store(&H.rec_on, H.n_rec > 0);
    return 0;
}

static lo_server start_osc(const struct options *o)
{
    char msg[1024];
    lo_server osc = osc_open(o->osc_port, o->osc_bind ? o->osc_bind : "127.0.0.1", msg,
                             sizeof msg);
    if (!osc) {
        say(PROG ": %s\n", msg);
        return NULL;
    }
    C.osc_remote_ok = o->osc_bind && !is_loopback(o->osc_bind);
    osc_add_methods(osc);
    return osc;
}

/* The socket --osc-out sends from (its own, unbound: the kernel picks
 * the source address for the destination) and the destination, numeric
 * host and port, into H. 0, or -1 with errno. */
static int osc_out_socket(const char *host, const char *port)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &ai) || ai->ai_addrlen > sizeof H.osc_out_addr) {
        if (ai)
            freeaddrinfo(ai);
        errno = EINVAL;
        return -1;
    }
    H.osc_out_fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    memcpy(&H.osc_out_addr, ai->ai_addr, ai->ai_addrlen);
    H.osc_out_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    if (H.osc_out_fd < 0)
        return -1;
    snprintf(H.osc_out_name, sizeof H.osc_out_name, "%s:%s", host, port);
    H.osc_out = 1;
    return 0;
}

/* --osc-out [HOST:]PORT: the address frames are streamed to (HOST
 * numeric; 127.0.0.1 when left out), every how many frames, and the
 * outputs buffer. 0 or 2 (said). */
static int open_osc_out(struct options *o)
{
    if (!o->osc_out)
        return 0;
    char host[256] = "127.0.0.1", port[16];
    const char *colon = strrchr(o->osc_out, ':');
    double v;
    if (colon && (size_t)(colon - o->osc_out) < sizeof host) {
        memcpy(host, o->osc_out, (size_t)(colon - o->osc_out));
        host[colon - o->osc_out] = 0;
    }
    const char *p = colon ? colon + 1 : o->osc_out;
    struct in_addr a4;
    struct in6_addr a6;
    if (parse_float(p, 1, 65535, &v) || v != floor(v) ||
        (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)) {
        say(PROG ": --osc-out '%s': expected PORT or HOST:PORT (HOST a numeric "
            "address, PORT 1..65535)\n", o->osc_out);
        return 2;
    }
    snprintf(port, sizeof port, "%d", (int)v);
    if (osc_out_socket(host, port)) {
        say(PROG ": --osc-out %s: cannot make a socket for it: %s\n", o->osc_out,
            strerror(errno));
        return 2;
    }
    cbrnn_engine *e = atomic_load(&H.engine);
    double fps = cbrnn_engine_rate(e) / cbrnn_engine_hop(e);
    H.osc_out_every = (int)ceil(fps / o->osc_out_rate - 1e-9);
    if (H.osc_out_every < 1)
        H.osc_out_every = 1;
    H.osc_out_outputs = o->osc_out_outputs;
    H.n_y = cbrnn_engine_n_outputs(e) - 1;
    if (!(H.y = calloc((size_t)H.n_y + 1, sizeof *H.y))) {
        say(PROG ": out of memory\n");
        return 1;
    }
    if (!C.quiet)
        say(PROG ": OSC out to %s:%s: /cbrnn/frame every %d frame%s (frame, loss, "
            "surprise, learning%s)%s\n", host, port, H.osc_out_every,
            H.osc_out_every == 1 ? "" : "s", H.osc_out_outputs ? ", outputs" : "",
            is_loopback(host) ? "" : "; to another machine");
    return 0;
}

static void set_callbacks(void)
{
    jack_set_process_callback(H.client, on_process, NULL);
    jack_set_xrun_callback(H.client, on_xrun, NULL);
    jack_set_buffer_size_callback(H.client, on_bufsize, NULL);
    jack_set_sample_rate_callback(H.client, on_rate, NULL);
    jack_set_latency_callback(H.client, on_latency, NULL);
    jack_on_info_shutdown(H.client, on_shutdown, NULL);
    atomic_store(&H.bufsize, (int)jack_get_buffer_size(H.client));
}

/* The period copies (in_copy, teacher_copy) are static and zero-filled:
 * their pages are mapped only when first written, which would happen in
 * the process callback on the first period longer than any before (after
 * `jack_bufsize 4096`: 4 page faults). Written here, nonzero then zero,
 * through a volatile pointer so the compiler keeps every store. */
static void touch_period_buffers(void)
{
    volatile float *b[2] = {in_copy, teacher_copy};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < MAX_PERIOD; i++) {
            b[k][i] = 1.0f;
            b[k][i] = 0.0f;
        }
}

/* Frames timed by warn_short_period: the first WARM ones (caches, first
 * touches) are not counted; the median of the next TIMED is the cost. */
#define COST_WARM 20
#define COST_TIMED 41

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The time one learning frame takes here (features, cortex, cerebellum,
 * the update): the median over COST_TIMED frames of noise through a
 * scratch engine made like ours (the real one is left untouched), off the
 * audio thread, before activation. -1 if it cannot be measured. */
static double frame_cost_s(const cbrnn_model *m, const struct options *o)
{
    cbrnn_engine_config c = o->ec;
    c.learn = 1;
    int err;
    char msg[256];
    cbrnn_engine *e = cbrnn_host_start(m, o->model_path, &c, 0, &err, msg, sizeof msg);
    if (!e)
        return -1;
    const int hop = cbrnn_engine_hop(e);
    float *x = malloc((size_t)hop * sizeof *x);
    double t[COST_TIMED];
    unsigned seed = 1;
    for (int f = 0; x && f < COST_WARM + COST_TIMED; f++) {
        for (int i = 0; i < hop; i++) { /* white noise at -20 dBFS */
            seed = seed * 1664525u + 1013904223u;
            x[i] = 0.1f * ((float)(seed >> 8) / 8388608.0f - 1.0f);
        }
        double t0 = now_s();
        /* one frame each; a map model hears the noise as its teacher too */
        cbrnn_engine_process(e, NULL, 0, x, m->target == CBRNN_TARGET_MAP ? x : NULL, hop);
        if (f >= COST_WARM)
            t[f - COST_WARM] = now_s() - t0;
    }
    cbrnn_engine_destroy(e);
    if (!x)
        return -1;
    free(x);
    qsort(t, COST_TIMED, sizeof *t, cmp_double);
    return t[COST_TIMED / 2];
}

/* A learning frame may take this fraction of a period at most. The
 * callback that computes a frame (all of it at once, every hop) shares
 * its period with the server, the other clients and the wake-up latency
 * of the process thread. Measured on the development machine (2 shared
 * cores, jackd -d dummy, 48 kHz): a learning frame of the default model
 * takes 0.18 ms (median), 27% of a 32-sample period, at which 98 of 9221
 * callbacks overran; 13% of a 64-sample one. */
#define FRAME_SHARE_MAX 0.25

/* With learning on, a period too short for the callback that computes a
 * frame (FRAME_SHARE_MAX) makes those callbacks overrun. Said once at
 * start, with the period that would fit. */
static void warn_short_period(const cbrnn_model *m, const struct options *o)
{
    if (!o->ec.learn || C.quiet)
        return;
    double cost = frame_cost_s(m, o);
    int period = atomic_load(&H.bufsize) ? atomic_load(&H.bufsize)
                                          : (int)jack_get_buffer_size(H.client);
    double period_s = period / o->ec.sample_rate;
    if (cost <= 0 || cost <= FRAME_SHARE_MAX * period_s)
        return;
    int fit = 16;
    while (fit < MAX_PERIOD && FRAME_SHARE_MAX * fit / o->ec.sample_rate < cost)
        fit *= 2;
    say(PROG ": warning: the period (%d samples, %.2f ms) is too short for learning: "
        "a frame takes %.2f ms here, more than %.0f%% of it, so the callbacks that "
        "compute a frame will overrun (xruns); use a period of %d samples or more, "
        "or --no-learn\n",
        period, 1e3 * period_s, 1e3 * cost, 100 * FRAME_SHARE_MAX, fit);
}

static void connect_ports(const struct options *o)
{
    const char *cname = jack_get_client_name(H.client);
    for (int i = 0; i < o->n_cin; i++)
        if (jack_connect(H.client, o->cin[i], jack_port_name(H.in)))
            say(PROG ": cannot connect %s to %s:input\n", o->cin[i], cname);
    for (int i = 0; i < o->n_cout; i++)
        if (jack_connect(H.client, jack_port_name(H.out[i]), o->cout[i]))
            say(PROG ": cannot connect %s to %s\n", jack_port_name(H.out[i]),
                o->cout[i]);
    if (o->n_cfb && !H.fb)
        say(PROG ": --connect-feedback: no feedback port (the perturbation is off: "
            "give a --perturb-* option or a schedule that perturbs)\n");
    for (int i = 0; H.fb && i < o->n_cfb; i++)
        if (jack_connect(H.client, jack_port_name(H.fb), o->cfb[i]))
            say(PROG ": cannot connect %s to %s\n", jack_port_name(H.fb), o->cfb[i]);
}

static void say_started(const struct options *o, int osc)
{
    cbrnn_engine *e = atomic_load(&H.engine);
    if (C.quiet)
        return;
    char rule[96];
    cbrnn_host_rule_describe(e, rule, sizeof rule);
    say(PROG ": %s running at %u Hz (hop %d samples, latency %d samples, period %d): "
        "model %s, learning %s (rule %s)\n",
        jack_get_client_name(H.client), (unsigned)o->ec.sample_rate, cbrnn_engine_hop(e),
        cbrnn_engine_latency(e), atomic_load(&H.bufsize), o->model_path,
        o->ec.learn ? "on" : "off", rule);
    if (o->ec.perturb)
        say(PROG ": perturbed feedback on %s:feedback (delay %g ms, gain %g dB%s%s): "
            "latency %d samples (%.1f ms) plus the delay%s; the model hears %s\n",
            jack_get_client_name(H.client), (double)o->ec.perturb_delay_ms,
            (double)o->ec.perturb_gain_db, o->ec.perturb == 2 ? ", pitch " : "",
            o->ec.perturb == 2 ? "on" : "", cbrnn_engine_perturb_latency(e),
            1000.0 * cbrnn_engine_perturb_latency(e) / o->ec.sample_rate,
            o->ec.perturb == 2 ? " (the pitch shifter's, at any shift)" : "",
            o->ec.listen ? "the feedback" : "the input");
    if (osc)
        say(PROG ": OSC on UDP %s:%s (%s); /cbrnn/save writes only in %s\n",
            o->osc_bind ? o->osc_bind : "127.0.0.1", o->osc_port,
            C.osc_remote_ok ? "open to the network: any host that reaches this port "
                              "controls learning"
                            : "this machine only",
            C.save_dir ? C.save_dir : "(nowhere: no --save or --save-dir)");
}

/* --report: the mean loss since the last line, on stdout. */
static void report_line(double t, long long xruns)
{
    pthread_mutex_lock(&H.mu);
    long nl = H.report_n, nf = H.report_frames;
    double ml = nl ? H.report_loss / (double)nl : NAN;
    double mp = nl ? H.report_pers / (double)nl : NAN;
    H.report_loss = H.report_pers = 0;
    H.report_n = H.report_frames = 0;
    int64_t frame = H.last_frame;
    pthread_mutex_unlock(&H.mu);
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(atomic_load(&H.engine), &st);
    report("t=%7.1fs frames=%-7lld loss=%.5f persistence=%.5f frames_in_window=%ld "
           "updates=%lld xruns=%lld\n",
           t - C.t0, (long long)frame + 1, ml, mp, nf, (long long)st.updates, xruns);
}

/* Autosave to --save: not while nothing has been learned over an existing
 * file (the loaded weights would replace an earlier session's adapted
 * model, as at exit: save_now). */
static void autosave(void)
{
    if (nothing_learned() && file_exists(C.save_path)) {
        if (!C.autosave_skip_said && !C.quiet)
            say(PROG ": autosave: nothing learned yet: %s left as it was\n",
                C.save_path);
        C.autosave_skip_said = 1;
        return;
    }
    request_save(C.save_path, "autosave", NULL);
}

/* "N xruns so far": only when the count changed, first within 5 s, then
 * at intervals doubling up to 5 min while xruns keep coming (steady
 * xruns would otherwise fill the terminal); an interval without any
 * brings the next note back within 5 s. */
#define XRUN_NOTE_MIN_S 5.0
#define XRUN_NOTE_MAX_S 320.0
static void xrun_note(double t, long long xr)
{
    static long long said;
    static double next, gap = XRUN_NOTE_MIN_S;
    if (t < next)
        return;
    if (xr == said) { /* quiet for a whole interval */
        gap = XRUN_NOTE_MIN_S;
        return;
    }
    if (!C.quiet)
        say(PROG ": %lld xrun%s so far\n", xr, xr == 1 ? "" : "s");
    said = xr;
    next = t + gap;
    gap = gap * 2 < XRUN_NOTE_MAX_S ? gap * 2 : XRUN_NOTE_MAX_S;
}

/* Log rows lost (the log's queue full: its destination stalled; or
 * records the engine could not hand over), said at most every 10 s. */
#define LOST_NOTE_S 10.0

/* What went wrong with the output files while running, said as it
 * happens: a failed write of the log, its events or markers file, or a
 * recording, once each (the file is incomplete from there; exit status
 * 1); log rows and recorded samples lost, at most every LOST_NOTE_S. */
/* --osc-out: says once that sends fail (the first failure's reason);
 * the count comes in the final summary. */
static void watch_osc_out(void)
{
    static int said;
    long long n = atomic_load(&H.osc_out_failed);
    if (!H.osc_out || said || !n)
        return;
    say(PROG ": --osc-out %s: sending failed: %s (frames not sent are counted: see the "
        "summary at exit)\n", H.osc_out_name, strerror(atomic_load(&H.osc_out_errno)));
    said = 1;
}

static void watch_outputs(double t)
{
    watch_osc_out();
    static int said_err[3];
    static long long said_lost[3];
    static double next_lost[3];
    out_writer *w[3] = {H.log, H.events, C.markers};
    for (int k = 0; k < 3; k++) {
        if (!w[k])
            continue;
        out_writer_stats st;
        out_writer_get_stats(w[k], &st);
        if (st.error && !said_err[k]) {
            say(PROG ": %s: write failed: %s; the file is incomplete from here\n",
                out_writer_name(w[k]), strerror(st.error));
            said_err[k] = 1;
            C.failed = 1;
        }
        if (!st.error && st.lost > said_lost[k] && t >= next_lost[k]) {
            say(PROG ": %s: %lld row%s lost so far: the file does not take them as "
                "fast as they come (a stalled reader or disk?)\n",
                out_writer_name(w[k]), st.lost, st.lost == 1 ? "" : "s");
            said_lost[k] = st.lost;
            next_lost[k] = t + LOST_NOTE_S;
        }
    }
    static long long said_records;
    static double next_records;
    cbrnn_engine *e = atomic_load(&H.engine);
    if (e && H.log) { /* the engine's ring was full: the log thread fell behind */
        cbrnn_engine_stats st;
        cbrnn_engine_get_stats(e, &st);
        if (st.dropped_records > said_records && t >= next_records) {
            say(PROG ": %lld frame records dropped so far (the log thread fell "
                "behind): missing from %s\n", (long long)st.dropped_records,
                out_writer_name(H.log));
            said_records = st.dropped_records;
            next_records = t + LOST_NOTE_S;
        }
    }
    static long long said_dropped[2];
    static double next_dropped[2];
    for (int k = 0; k < 2; k++) {
        struct recorder *rc = &H.rec[k];
        if (!rc->sf)
            continue;
        int err = atomic_load(&rc->failed);
        if (err && !rc->said) {
            say(PROG ": %s: write failed: %s; the recording is incomplete from here\n",
                rc->path, strerror(err));
            rc->said = 1;
            C.failed = 1;
        }
        long long d = atomic_load(&rc->dropped);
        if (d > said_dropped[k] && t >= next_dropped[k]) {
            say(PROG ": %s: %lld samples dropped so far (the disk does not keep up)\n",
                rc->path, d);
            said_dropped[k] = d;
            next_dropped[k] = t + LOST_NOTE_S;
        }
    }
}

/* Signals fetched since the last call: *usr1 set for SIGUSR1; returns the
 * stopping signal (SIGINT, SIGTERM, SIGHUP) or 0. */
static int take_signals(const sigset_t *sigs, int *usr1)
{
    struct timespec zero = {0, 0};
    /* Both flags are taken, not only read: a stop that came through the
     * handler must not count again as "another stop signal" later. */
    int sig, stop_sig = atomic_exchange(&sig_stop, 0);
    *usr1 = atomic_exchange(&sig_usr1, 0);
    while ((sig = sigtimedwait(sigs, NULL, &zero)) > 0) {
        if (sig == SIGUSR1)
            *usr1 = 1;
        else
            stop_sig = sig;
    }
    return stop_sig;
}

/* The control thread's loop: OSC, signals, saves, rate changes, notes.
 * Returns the exit status when a signal or the server stops the run. */
static int control_loop(const struct options *o, const sigset_t *sigs, lo_server osc)
{
    C.t0 = now_s();
    double next_autosave = C.t0 + o->autosave, next_report = C.t0 + o->report;
    int last_bufsize = atomic_load(&H.bufsize);
    for (;;) {
        if (osc) {
            lo_server_recv_noblock(osc, POLL_MS);
            osc_errors_flush();
        } else {
            sleep_ms(POLL_MS);
        }
        int usr1, stop_sig = take_signals(sigs, &usr1);
        if (usr1) {
            if (C.save_path)
                request_save(C.save_path, "SIGUSR1", NULL);
            else
                say(PROG ": SIGUSR1: no --save PATH to save to\n");
        }
        if (stop_sig) {
            /* Saved before any call to the server: a stalled server (or
             * one that never answers) would hold jack_deactivate forever.
             * Once paused, the process callback no longer enters the
             * engine, so the weights can be read directly; JACK is closed
             * afterwards with a time limit (close_jack). */
            pause_stream();
            collect_snapshots();
            flush_pending();
            return save_now(stop_sig == SIGINT    ? "SIGINT"
                            : stop_sig == SIGTERM ? "SIGTERM"
                                                  : "SIGHUP")
                       ? 1
                       : 0;
        }
        if (atomic_load(&H.shutdown)) {
            say(PROG ": the JACK server shut down: %s\n", H.shutdown_reason);
            collect_snapshots();
            pause_stream();
            flush_pending();
            save_now("server shutdown");
            return 1;
        }
        int nr = atomic_exchange(&H.rate_changed, 0);
        if (nr) {
            atomic_store(&H.rec_on, 0); /* a WAV has one rate: keep what we have */
            rebuild_engine(nr, &o->ec);
        }
        collect_snapshots();
        double t = now_s();
        if (o->autosave > 0 && t >= next_autosave) {
            autosave();
            next_autosave += o->autosave;
        }
        int bs = atomic_load(&H.bufsize);
        if (bs != last_bufsize && !C.quiet)
            say(PROG ": buffer size now %d samples\n", bs);
        last_bufsize = bs;
        long long xr = atomic_load(&H.xruns);
        xrun_note(t, xr);
        watch_outputs(t);
        note_lost_messages(0);
        if (o->report > 0 && t >= next_report) {
            report_line(t, xr);
            next_report += o->report;
        }
    }
}

/* ---------------- stopping ---------------- */

/* How long each step of stopping may wait for a server or a destination
 * that does not answer: closing the JACK client, finishing the log files,
 * finishing the recordings. A healthy one takes milliseconds. */
#define STOP_LIMIT_S 3.0

/* The latency thread ends first (no recompute in flight while the client
 * closes): stuck in a stalled server, it holds this thread up with it,
 * which close_jack gives up on after STOP_LIMIT_S. */
static void *close_jack_main(void *arg)
{
    (void)arg;
    if (H.latency_started) {
        atomic_store(&H.stop_latency, 1);
        pthread_join(H.latency_th, NULL);
    }
    jack_client_close(H.client);
    return NULL;
}

/* Closes the JACK client from a thread of its own, waiting STOP_LIMIT_S
 * at most (a stalled server never answers; a further stop signal gives up
 * at once). 0 closed; 1 given up on: the client is left open. */
static int close_jack(const sigset_t *sigs)
{
    pthread_t th;
    atomic_store(&H.closing, 1);
    if (pthread_create(&th, NULL, close_jack_main, NULL)) {
        close_jack_main(NULL);
        return 0;
    }
    for (double t0 = now_s(); now_s() - t0 < STOP_LIMIT_S;) {
        if (!pthread_tryjoin_np(th, NULL))
            return 0;
        int usr1;
        if (take_signals(sigs, &usr1)) {
            say(PROG ": another stop signal: leaving without closing the JACK "
                "client\n");
            return 1;
        }
        sleep_ms(POLL_MS);
    }
    if (!pthread_tryjoin_np(th, NULL))
        return 0;
    say(PROG ": the JACK server did not answer for %.0f s (stopped or hung?): "
        "leaving without closing the client\n", STOP_LIMIT_S);
    return 1;
}

/* Ends a writer within the time left until deadline. 0 finished; 1 a
 * write failed (said); 2 given up on (said; its thread is left blocked). */
static int finish_writer(out_writer *w, double deadline)
{
    char name[PATH_MAX];
    snprintf(name, sizeof name, "%s", out_writer_name(w));
    double left = deadline - now_s();
    out_writer_stats st;
    int rc = out_writer_finish(w, left > 0.05 ? left : 0.05, &st);
    if (rc == 1) {
        say(PROG ": %s: not finished: the destination took nothing for %.0f s (a "
            "stalled reader or disk?); %lld bytes not written\n", name, STOP_LIMIT_S,
            st.pending);
        return 2;
    }
    if (rc)
        say(PROG ": %s: write failed: %s; the file is incomplete\n", name,
            strerror(st.error));
    return rc ? 1 : 0;
}

/* Queues the line for w, waiting (control thread, at exit) until its
 * queue has room or deadline passes. 0 queued, -1 not. */
static int put_waiting(out_writer *w, const char *line, double deadline)
{
    out_writer_stats st;
    while (!out_writer_put(w, line, strlen(line), 0)) {
        out_writer_get_stats(w, &st);
        if (st.error || now_s() > deadline)
            return -1;
        sleep_ms(10);
    }
    return 0;
}

/* Says what the events file lacks, if anything: changes the engine could
 * not report (its ring was full) or the file's queue could not take
 * (lost), and samples the recordings dropped; and marks the file so
 * (changes_lost= / samples_dropped= lines at its end, which `cbrnn run
 * --events` refuses). 1 when something is lacking: a replay would differ. */
static int events_incomplete(out_writer *w, long long lost, double deadline)
{
    cbrnn_engine *e = atomic_load(&H.engine);
    cbrnn_engine_stats es = {0};
    if (e)
        cbrnn_engine_get_stats(e, &es);
    /* after a rate change the file covers the first engine only */
    long long n[2] = {H.events_ended ? C.events_dropped : es.dropped_events, lost}, gap = 0;
    for (int k = 0; k < 2; k++)
        if (H.rec[k].sf)
            gap += atomic_load(&H.rec[k].dropped);
    static const char *const why[2] = {"never reported (too many in one moment)",
                                       "lost (its queue was full)"};
    for (int i = 0; i < 2; i++)
        if (n[i])
            say(PROG ": %s: %lld control change%s %s: `cbrnn run --events` cannot replay "
                "this run exactly\n", out_writer_name(w), n[i], n[i] == 1 ? "" : "s", why[i]);
    if (!n[0] && !n[1] && !gap)
        return 0;
    char line[256];
    snprintf(line, sizeof line, "# incomplete: this run cannot be replayed exactly "
             "(docs/FORMATS.md, Events file)\n%s%lld\n%s%lld\n", "# changes_lost=",
             n[0] + n[1], "# samples_dropped=", gap);
    if (put_waiting(w, line, deadline))
        say(PROG ": %s: could not mark it incomplete (its writer is stuck)\n",
            out_writer_name(w));
    return n[0] || n[1];
}

/* Stops the log thread and finishes the log files, the disk thread and
 * the recordings, each within STOP_LIMIT_S. Returns 1 when any of them
 * failed or was given up on; *abandon set when a thread is left blocked
 * (the caller must leave with _exit: that thread holds a file). */
static int close_outputs(pthread_t *log_th, pthread_t *disk_th,
                         long long *log_lost, int *abandon)
{
    int failed = 0;
    if (log_th) { /* the log thread does no file I/O: it ends within a period */
        atomic_store(&H.stop_log, 1);
        pthread_join(*log_th, NULL);
    }
    double deadline = now_s() + STOP_LIMIT_S;
    out_writer **w[3] = {&H.log, &H.events, &C.markers};
    for (int k = 0; k < 3; k++) {
        if (!*w[k])
            continue;
        out_writer_stats st;
        out_writer_get_stats(*w[k], &st);
        if (k == 0)
            *log_lost = st.lost;
        if (*w[k] == H.events)
            failed |= events_incomplete(H.events, st.lost, deadline);
        int rc = finish_writer(*w[k], deadline);
        failed |= rc != 0;
        *abandon |= rc == 2;
        *w[k] = NULL;
    }
    if (disk_th) {
        atomic_store(&H.stop_disk, 1);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)STOP_LIMIT_S;
        if (pthread_timedjoin_np(*disk_th, NULL, &until)) {
            say(PROG ": the recording%s not finished: writing blocked for %.0f s (a "
                "stalled reader or disk?)\n", H.n_rec > 1 ? "s were" : " was",
                STOP_LIMIT_S);
            *abandon = 1;
            return 1;
        }
    }
    for (int k = 0; k < 2; k++) {
        struct recorder *rc = &H.rec[k];
        if (!rc->sf)
            continue;
        long long dropped = atomic_load(&rc->dropped);
        int e = atomic_load(&rc->failed);
        /* samples dropped leave a gap the file does not show (the events
         * file says it: samples_dropped=): its replay would differ from
         * the live run from there, so it is a failure */
        if (dropped || e)
            say(PROG ": %s: incomplete (%lld samples dropped%s%s): `cbrnn run` replays it "
                "exactly only up to the first gap\n", rc->path, dropped,
                e ? ", write error: " : "", e ? strerror(e) : "");
        failed |= e != 0 || dropped != 0;
        if (cbrnn_wav_close(rc->sf)) {
            if (!e) /* after a write error the close fails too: said once */
                say(PROG ": %s: close failed\n", rc->path);
            failed = 1;
        } else if (!C.quiet) {
            say(PROG ": recorded %ld samples to %s\n", rc->written, rc->path);
        }
        rc->sf = NULL;
        close(rc->lock_fd);
    }
    return failed;
}

/* Ends the writers of stdout and stderr at exit, within STOP_LIMIT_S
 * together: stdout's first, so that stderr can still say it stalled. A
 * stream that does not finish in time (its reader stopped) makes the
 * status 1 (2 stays 2): the messages or reports queued are lost. Returns
 * the status, or leaves with _exit when a thread is left blocked (one of
 * these writers, or one that abandon says of): exit() would flush stdio
 * streams that thread may hold locked. The model is saved by now. */
static int finish_messages(int status, int abandon)
{
    note_lost_messages(1);
    double deadline = now_s() + STOP_LIMIT_S;
    for (int k = MSG_OUT; k >= MSG_ERR; k--) {
        pthread_mutex_lock(&msg_mu);
        out_writer *w = msg_w[k];
        msg_w[k] = NULL; /* from here on written directly (libjack's too) */
        pthread_mutex_unlock(&msg_mu);
        if (!w)
            continue;
        double left = deadline - now_s();
        out_writer_stats st;
        if (out_writer_finish(w, left > 0.05 ? left : 0.05, &st) != 1)
            continue; /* a failed write of our own output is not a failure of the run */
        if (k == MSG_OUT)
            say(PROG ": stdout: not finished: it took nothing for %.0f s (a stalled terminal "
                "or pipe?); %lld bytes of report lines not written\n", STOP_LIMIT_S,
                st.pending);
        status = status ? status : 1;
        abandon = 1;
    }
    if (abandon)
        _exit(status);
    return status;
}

static void say_final(int log_started, long long log_lost)
{
    long long unsent = atomic_load(&H.osc_out_failed);
    if (unsent) /* said even with --quiet: what went missing */
        say(PROG ": --osc-out %s: %lld frame%s not sent (%s)\n", H.osc_out_name, unsent,
            unsent == 1 ? "" : "s", strerror(atomic_load(&H.osc_out_errno)));
    cbrnn_engine *fin = atomic_load(&H.engine);
    if (!fin || C.quiet || !log_started)
        return;
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(fin, &st);
    char lost[64] = "";
    if (log_lost)
        snprintf(lost, sizeof lost, ", %lld log rows lost", log_lost);
    say(PROG ": %lld frames, %lld updates, %lld restores, %lld xruns, %lld "
        "dropped records%s%s\n",
        (long long)cbrnn_host_saves_frames(C.saves, fin), C.updates_before + (long long)st.updates,
        (long long)st.restores, (long long)atomic_load(&H.xruns),
        (long long)st.dropped_records, lost,
        (C.learn && !C.save_path) ? "; adapted weights not saved (use --save PATH)" : "");
}

/* --save: locked against a second instance before anything is written
 * (a lock file beside it: a save replaces the file, and with it any lock
 * on the file itself). 0 or 2 (said). */
static int lock_save(void)
{
    C.save_lock = -1;
    if (!C.save_path)
        return 0;
    char msg[PATH_MAX + 256];
    if ((C.save_lock = out_lock_output("--save", C.save_path, msg, sizeof msg)) >= 0)
        return 0;
    say(PROG ": %s\n", msg);
    return 2;
}

/* Everything after the options: the named steps, the control loop, then
 * stopping. Returns the exit status; *abandon set when a thread is left
 * blocked in the server or on a file (the caller must leave with _exit). */
static int run_host(struct options *o, int *abandon)
{
    char defbuf[PATH_MAX];
    cbrnn_model *m = open_model(o, defbuf, sizeof defbuf);
    if (!m)
        return 2;
    if (check_outputs(o)) {
        cbrnn_model_destroy(m);
        return 2;
    }
    warn_unreplayable(m, o);
    sigset_t sigs;
    block_signals(&sigs);
    if (lock_save()) {
        cbrnn_model_destroy(m);
        return 2;
    }
    if (open_jack_client(o->name)) {
        cbrnn_model_destroy(m);
        out_unlock_beside(C.save_path, C.save_lock);
        return 1;
    }
    touch_period_buffers();
    int status = start_engine(m, o);
    pthread_mutex_init(&H.mu, NULL);
    pthread_t log_th, disk_th;
    int log_started = 0, disk_started = 0;
    lo_server osc = NULL;
    if (!status)
        status = open_log(o);
    if (!status)
        status = open_recorders(o);
    if (!status && o->osc_port && !(osc = start_osc(o)))
        status = 2;
    if (!status)
        status = open_osc_out(o);
    if (!status)
        warn_short_period(m, o);
    /* The ports last: once they exist (what scripts wait for), OSC
     * already listens and every file is open. */
    if (!status && register_ports(m, o->n_outputs, o->ec.perturb))
        status = 1;
    cbrnn_model_destroy(m);
    if (status)
        goto close;
    status = 1;
    set_callbacks();
    if (pthread_create(&log_th, NULL, log_main, NULL)) {
        say(PROG ": cannot start the log thread\n");
        goto close;
    }
    log_started = 1;
    if (H.n_rec) {
        if (pthread_create(&disk_th, NULL, disk_main, NULL)) {
            say(PROG ": cannot start the disk thread\n");
            goto close;
        }
        disk_started = 1;
    }
    if (jack_activate(H.client)) {
        say(PROG ": cannot activate the JACK client\n");
        goto close;
    }
    if (pthread_create(&H.latency_th, NULL, latency_main, NULL)) {
        say(PROG ": cannot start the latency thread\n");
        goto close;
    }
    H.latency_started = 1;
    connect_ports(o);
    say_started(o, osc != NULL);
    status = control_loop(o, &sigs, osc);

close:;
    /* The model is saved by now (control_loop); what remains may wait on
     * others (the server, a log's reader, a disk), each for STOP_LIMIT_S
     * at most. */
    *abandon = close_jack(&sigs);
    long long log_lost = 0;
    if (close_outputs(log_started ? &log_th : NULL, disk_started ? &disk_th : NULL,
                      &log_lost, abandon) ||
        C.failed)
        status = status ? status : 1;
    if (osc)
        lo_server_free(osc);
    say_final(log_started, log_lost);
    out_unlock_beside(C.save_path, C.save_lock);
    if (*abandon) /* a blocked thread may still use what is left */
        return status;
    cbrnn_engine_destroy(atomic_load(&H.engine));
    cbrnn_host_saves_destroy(C.saves);
    cbrnn_schedule_free(&C.schedule);
    if (H.osc_out)
        close(H.osc_out_fd);
    free(H.y);
    for (int k = 0; k < 2; k++)
        if (H.rec[k].rb)
            jack_ringbuffer_free(H.rec[k].rb);
    return status;
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse_options(argc, argv, &o);
    if (status)
        return status == 1 ? 0 : status;
    start_messages();
    int abandon = 0;
    status = run_host(&o, &abandon);
    return finish_messages(status, abandon);
}
