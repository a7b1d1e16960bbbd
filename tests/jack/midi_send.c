/* midi_send.c: a JACK MIDI test client for tests/jack/classify_live.sh:
 * `midi_send --connect PORT T:on:NOTE T:off:NOTE ...` sends each note-on
 * (velocity 100) or note-off at T seconds after its output got connected,
 * on the exact frame, then exits. Each note-off is sent again 2 and 4
 * periods later: a cycle lost to an xrun loses its MIDI events, and a lost
 * note-off would hold its label until the next note-on (a note-off for a
 * note not held changes nothing). The process callback only writes events
 * from a fixed schedule: no allocation, lock or wait. */
#include <jack/jack.h>
#include <jack/midiport.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EV 192

struct ev {
    jack_nframes_t at; /* frames after the start */
    unsigned char msg[3];
};

static struct ev evs[MAX_EV];
static int n_ev;
static jack_port_t *port;
static atomic_int next_ev, started;
static jack_nframes_t elapsed;

static int on_process(jack_nframes_t n, void *arg)
{
    (void)arg;
    void *buf = jack_port_get_buffer(port, n);
    jack_midi_clear_buffer(buf);
    if (!atomic_load(&started)) {
        if (jack_port_connected(port) > 0)
            atomic_store(&started, 1);
        return 0;
    }
    int i = atomic_load(&next_ev);
    while (i < n_ev && evs[i].at < elapsed + n) {
        jack_nframes_t off = evs[i].at > elapsed ? evs[i].at - elapsed : 0;
        jack_midi_event_write(buf, off, evs[i].msg, 3);
        i++;
    }
    atomic_store(&next_ev, i);
    elapsed += n;
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;
    return (x->at > y->at) - (x->at < y->at);
}

/* The repeats of each note-off, then every event in time order. */
static void sort_events(jack_nframes_t period)
{
    int n = n_ev;
    for (int i = 0; i < n; i++)
        for (int k = 1; k <= 2 && evs[i].msg[0] == 0x80; k++) {
            evs[n_ev] = evs[i];
            evs[n_ev++].at += 2 * k * period;
        }
    qsort(evs, n_ev, sizeof evs[0], by_time);
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[1], "--connect")) {
        fprintf(stderr, "usage: midi_send --connect PORT T:on|off:NOTE...\n");
        return 2;
    }
    jack_client_t *c = jack_client_open("midi_send", JackNoStartServer, NULL);
    if (!c) {
        fprintf(stderr, "midi_send: no JACK server\n");
        return 1;
    }
    double rate = jack_get_sample_rate(c);
    for (int i = 3; i < argc && n_ev < MAX_EV / 3; i++) {
        double t;
        char kind[8];
        int note;
        if (sscanf(argv[i], "%lf:%7[a-z]:%d", &t, kind, &note) != 3 || note < 0 || note > 127) {
            fprintf(stderr, "midi_send: bad event '%s'\n", argv[i]);
            return 2;
        }
        evs[n_ev].at = (jack_nframes_t)(t * rate + 0.5);
        evs[n_ev].msg[0] = strcmp(kind, "on") ? 0x80 : 0x90;
        evs[n_ev].msg[1] = (unsigned char)note;
        evs[n_ev].msg[2] = strcmp(kind, "on") ? 0 : 100;
        n_ev++;
    }
    sort_events(jack_get_buffer_size(c));
    port = jack_port_register(c, "out", JACK_DEFAULT_MIDI_TYPE, JackPortIsOutput, 0);
    jack_set_process_callback(c, on_process, NULL);
    if (!port || jack_activate(c) || jack_connect(c, jack_port_name(port), argv[2])) {
        fprintf(stderr, "midi_send: cannot set up or connect to %s\n", argv[2]);
        return 1;
    }
    struct timespec ts = {0, 10000000};
    for (int k = 0; k < 6000 && atomic_load(&next_ev) < n_ev; k++)
        nanosleep(&ts, NULL);
    nanosleep(&ts, NULL);
    jack_deactivate(c);
    jack_client_close(c);
    return atomic_load(&next_ev) == n_ev ? 0 : 1;
}
