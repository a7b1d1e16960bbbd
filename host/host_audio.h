/* host_audio.h: reading audio files for the hosts (cbrnn run, eval and
 * features, cbrnn-jackplay) and for training: any format libsndfile reads,
 * channels mixed to mono (mean), optionally resampled with libsamplerate,
 * streamed in bounded memory; and a file's features through the dsp front
 * end. Errors come back as a message that names the file and the problem
 * (the caller prints it). An in-tree header of the host module (not
 * installed; its names are not cbrnn_-prefixed API). */
#ifndef CBRNN_HOST_AUDIO_H
#define CBRNN_HOST_AUDIO_H

#include <stddef.h>
#include <stdint.h>
#include "cbrnn/cbrnn_dsp.h"

typedef struct audio_in audio_in;

/* Opens path. target_rate 0 keeps the file's rate; otherwise the stream is
 * resampled to it. Refuses rates outside 8..192 kHz, empty or unreadable
 * files. NULL on failure with msg filled ("FILE: what is wrong"). */
audio_in *audio_in_open(const char *path, double target_rate, char *msg, size_t msglen);
/* The same, the file read as if recorded at speed times its rate: pitch,
 * formants and tempo all scale by speed (speed perturbation, a training
 * augmentation; 1 = as recorded). With target_rate 0 the stream keeps the
 * file's rate. speed within AUDIO_SPEED_MIN..MAX. */
#define AUDIO_SPEED_MIN 0.5
#define AUDIO_SPEED_MAX 2.0
audio_in *audio_in_open_speed(const char *path, double target_rate, double speed, char *msg,
                              size_t msglen);
/* Rate of the samples audio_in_read returns. */
double audio_in_rate(const audio_in *a);
/* The file's own rate and its length in frames at that rate. */
double audio_in_file_rate(const audio_in *a);
int64_t audio_in_file_frames(const audio_in *a);
/* Reads up to n mono samples into buf; returns how many (0 at the end),
 * or -1 on a read error (msg filled). */
long audio_in_read(audio_in *a, float *buf, long n, char *msg, size_t msglen);
void audio_in_close(audio_in *a);
/* What the caller should tell the user about the file it opened, though
 * it reads (a RIFF header never finished: a recording cut short, read to
 * the end of the file), as "FILE: what"; NULL when nothing. Valid until
 * audio_in_close. */
const char *audio_in_warning(const audio_in *a);
/* Channels in the file (they are mixed to one by their mean). */
int audio_in_channels(const audio_in *a);
/* 1 when libsndfile reads path as audio (any format it knows), else 0:
 * what an output must never silently replace. Any path length. */
int audio_file_is_audio(const char *path);

/* Features of a whole file, computed by streaming it through the dsp
 * front end in blocks of `block` samples. cfg gives everything but the
 * sample rate (taken from the file, or resampled to target_rate if > 0);
 * speed as audio_in_open_speed (1 = as recorded).
 * *frames: malloc'ed [*n_frames, *dim]; caller frees. 0 or -1 (msg). */
int audio_features(const char *path, const cbrnn_feat_config *cfg, double target_rate,
                   double speed, int block, float **frames, int *n_frames, int *dim, char *msg,
                   size_t msglen);

/* Receives n frames of dim floats each (valid only during the call);
 * returns 0 to go on, nonzero to stop. */
typedef int (*audio_frames_fn)(void *ctx, const float *frames, long n, int dim);
/* Streams a file's features to on_frames as they complete, in bounded
 * memory, pushing `block` samples at a time into the extractor (block >= 1;
 * frames do not depend on it); the file is read at speed (as
 * audio_in_open_speed; 1 = as recorded). Returns 0 at the end of the file, 1 when
 * on_frames stopped it, -1 on an error (msg: "FILE: what is wrong"). */
int audio_features_each(const char *path, const cbrnn_feat_config *cfg, double target_rate,
                        double speed, int block, audio_frames_fn on_frames, void *ctx, char *msg,
                        size_t msglen);

#endif
