/* util_audio.h: opening an input at its own sample rate for the commands
 * that stream at it (run, eval). The host's reader refuses a rate outside
 * 8..192 kHz without knowing the command; here the refusal names the
 * remedy the command has. And the one place the commands say what the
 * reader warns of (audio_in_warning: a recording whose header was never
 * finished). */
#ifndef CBRNN_UTIL_AUDIO_H
#define CBRNN_UTIL_AUDIO_H

#include <stddef.h>

#include "host_audio.h"

/* audio_in_open(path, 0, ...); when that fails because the file's rate is
 * out of range, msg says so and then `remedy` (what this command's user
 * can do). NULL on failure with msg filled ("FILE: what is wrong"). */
audio_in *cli_audio_open_own_rate(const char *path, const char *remedy, char *msg,
                                  size_t msglen);

/* Says on stderr "PROG: warning: FILE: ..." what audio_in_warning has
 * for a, if anything. */
void cli_audio_warn(const char *prog, const audio_in *a);
/* The same for the file at path, opened here only to ask: for commands
 * that read it through audio_features, which does not pass the warning
 * on. Says nothing when the file does not open (reading it says why). */
void cli_audio_warn_path(const char *prog, const char *path);

#endif
