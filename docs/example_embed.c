/* example_embed.c: embedding the cbrnn engine in a program of your own.
 * Loads a model, feeds it two seconds of audio in blocks as a host's audio
 * callback would (here a synthetic tone that changes pitch halfway, so the
 * surprise has something to report), reads the per-frame records and
 * prints a summary. Build against an installed cbrnn:
 *
 *   cc example_embed.c $(pkg-config --cflags --libs cbrnn) -lm -o embed
 *   ./embed $(pkg-config --variable=datadir cbrnn)/default.safetensors
 *
 * In a real-time host, cbrnn_engine_process runs on the audio thread and
 * the records are read on another (see cbrnn_engine.h for which call
 * belongs to which thread); here one thread does both. */
#include <math.h>
#include <stdio.h>

#include <cbrnn/cbrnn_engine.h>
#include <cbrnn/cbrnn_host.h>

#define RATE 16000.0
#define BLOCK 256
#define PI 3.14159265358979323846

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.safetensors\n", argv[0]);
        return 2;
    }
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, RATE);
    c.learn = 1; /* adapt online */
    char msg[1024];
    cbrnn_engine *e = cbrnn_host_open(argv[1], &c, BLOCK, NULL, msg, sizeof msg);
    if (!e) {
        fprintf(stderr, "%s\n", msg);
        return 1;
    }
    float in[BLOCK], surprise[BLOCK];
    float *out[1] = {surprise};
    double phase = 0.0, loss_sum = 0.0, peak = 0.0, peak_time = 0.0;
    long frames = 0, scored = 0;
    for (long pos = 0; pos < (long)(2 * RATE); pos += BLOCK) {
        for (int i = 0; i < BLOCK; i++) {
            double f = pos + i < RATE ? 220.0 : 330.0; /* the tone jumps at 1 s */
            phase += 2.0 * PI * f / RATE;
            in[i] = (float)(0.3 * sin(phase));
        }
        int rc = cbrnn_engine_process(e, out, 1, in, NULL, BLOCK);
        if (rc) {
            fprintf(stderr, "process: %s\n", cbrnn_strerror(rc));
            cbrnn_engine_destroy(e);
            return 1;
        }
        cbrnn_record r;
        while (cbrnn_engine_read_record(e, &r, NULL)) {
            frames++;
            if (isfinite(r.loss)) {
                loss_sum += r.loss;
                scored++;
            }
            if (isfinite(r.surprise) && r.surprise > peak) {
                peak = r.surprise;
                peak_time = r.time;
            }
        }
    }
    cbrnn_engine_stats st;
    cbrnn_engine_get_stats(e, &st);
    printf("%ld frames (hop %d samples, latency %d samples), mean loss %.4f, "
           "%lld updates, largest surprise %.2f at %.2f s\n",
           frames, cbrnn_engine_hop(e), cbrnn_engine_latency(e),
           scored ? loss_sum / (double)scored : NAN, (long long)st.updates, peak, peak_time);
    cbrnn_engine_destroy(e);
    return 0;
}
