/* util_audio.c: see util_audio.h. Prints only the warnings of
 * cli_audio_warn*. */
#include "util_audio.h"

#include <stdio.h>

#include "cbrnn/cbrnn_dsp.h"

audio_in *cli_audio_open_own_rate(const char *path, const char *remedy, char *msg,
                                  size_t msglen)
{
    audio_in *a = audio_in_open(path, 0, msg, msglen);
    if (a)
        return a;
    /* Read through the resampler the file opens whatever its rate: then
     * its own rate tells whether that was the reason. */
    char other[256];
    audio_in *probe = audio_in_open(path, 16000.0, other, sizeof other);
    if (!probe)
        return NULL;
    double rate = audio_in_file_rate(probe);
    audio_in_close(probe);
    if (rate < CBRNN_RATE_MIN || rate > CBRNN_RATE_MAX)
        snprintf(msg, msglen, "%s: sample rate %.0f Hz is outside the supported %.0f..%.0f Hz: %s",
                 path, rate, CBRNN_RATE_MIN, CBRNN_RATE_MAX, remedy);
    return NULL;
}

void cli_audio_warn(const char *prog, const audio_in *a)
{
    const char *w = a ? audio_in_warning(a) : NULL;
    if (w)
        fprintf(stderr, "%s: warning: %s\n", prog, w);
}

void cli_audio_warn_path(const char *prog, const char *path)
{
    char msg[256];
    audio_in *a = audio_in_open(path, 0, msg, sizeof msg);
    cli_audio_warn(prog, a);
    if (a)
        audio_in_close(a);
}
