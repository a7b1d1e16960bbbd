/* fuzz_audio.c: libFuzzer target for the CLI's audio-reading path
 * (host/host_audio.c: libsndfile open, truncation checks, channel mixing,
 * libsamplerate resampling) and the feature extraction that follows it
 * (audio_features_each through the dsp front end), as `cbrnn features`,
 * `train`, `eval` and `run` use them. The first byte chooses the reading:
 * bits 0-1 the target rate (file rate, 16, 44.1 or 96 kHz), bit 2 MFCC
 * with deltas instead of log-mel, bits 3-4 the block size; the rest is
 * the file, written to the scratch folder since the reader takes a path.
 * A file must either be refused with a message naming it or give finite
 * features of the promised dimension. Reading stops after 2 s of frames
 * so a tiny compressed file that expands to hours cannot time out. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "host_audio.h"

#define MAX_FRAMES 200 /* 2 s at the 10 ms hop */

struct sink {
    long frames;
    int dim;
};

static int on_frames(void *ctx, const float *frames, long n, int dim)
{
    struct sink *s = ctx;
    CHECK(dim == s->dim, "frames of %d floats, the configuration gives %d", dim, s->dim);
    for (long i = 0; i < n * dim; i++)
        CHECK(isfinite(frames[i]), "feature %ld of frame %ld is %g", i % dim, s->frames + i / dim,
              (double)frames[i]);
    s->frames += n;
    return s->frames >= MAX_FRAMES;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const double rates[4] = {0.0, 16000.0, 44100.0, 96000.0};
    static const int blocks[4] = {4096, 1, 160, 1000};
    const double rate = rates[data[0] & 3];
    const int block = blocks[(data[0] >> 3) & 3];
    cbrnn_feat_config fc;
    cbrnn_feat_config_default(&fc, 16000.0);
    if (data[0] & 4) {
        fc.n_mfcc = 13;
        fc.deltas = 1;
    }
    const char *path = fz_write("input", data + 1, size - 1);
    char msg[1024] = "";
    struct sink s = {0, cbrnn_feat_config_dim(&fc)};
    int rc = audio_features_each(path, &fc, rate, 1.0, block, on_frames, &s, msg, sizeof msg);
    if (rc < 0) {
        CHECK(strncmp(msg, path, strlen(path)) == 0, "message does not name the file: %s", msg);
        return 0;
    }
    CHECK(rc == 0 || s.frames >= MAX_FRAMES, "stopped (%d) after %ld frames", rc, s.frames);

    /* The plain reader, as `cbrnn run` uses it (which hands samples to the
     * engine; the engine zeroes and counts non-finite ones itself). */
    audio_in *a = audio_in_open(path, rate, msg, sizeof msg);
    CHECK(a != NULL, "opened once, refused the second time: %s", msg);
    CHECK(audio_in_channels(a) >= 1, "%d channels", audio_in_channels(a));
    float buf[1024];
    long total = 0, limit = (long)(audio_in_rate(a) * 2.0);
    for (;;) {
        long n = audio_in_read(a, buf, 1024, msg, sizeof msg);
        if (n <= 0)
            break;
        total += n;
        if (total > limit)
            break;
    }
    audio_in_close(a);
    return 0;
}
