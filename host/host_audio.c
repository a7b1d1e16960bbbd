/* host_audio.c: audio files for the hosts and for training: any format
 * libsndfile reads, channels mixed to mono by their mean, optionally
 * resampled with libsamplerate, streamed through fixed-size buffers so a
 * file of any length needs bounded memory. Every failure a user can cause (missing,
 * not audio, empty, truncated, unsupported rate) comes back as one message
 * naming the file; nothing here prints or exits. Not for audio threads. */
#include "host_audio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Frames per libsndfile read and per resampler call: small enough to stay
 * in cache, large enough to amortise the calls. */
#define AUDIO_BLOCK 4096

/* A file read through libsndfile's virtual I/O with the two sizes of an
 * unfinished RIFF header (riff_check) replaced by what the file holds:
 * libsndfile then reads it as any complete WAV. */
struct vfile {
    int fd;
    sf_count_t len, pos;
    sf_count_t at[2];        /* where the two sizes are */
    unsigned char val[2][4]; /* and what they are read as */
};

struct audio_in {
    SNDFILE *sf;
    int fd;             /* ours to close after sf (sndfile_open); -1: sf's own */
    SF_INFO info;
    char *path;
    double rate;        /* rate of what audio_in_read returns */
    SRC_STATE *src;     /* NULL when not resampling */
    double ratio;       /* rate / file rate */
    float *ibuf;        /* [AUDIO_BLOCK * channels] interleaved from the file */
    float *mono;        /* [AUDIO_BLOCK] mixed at the file rate */
    long mono_n, mono_pos;
    float *obuf;        /* [AUDIO_BLOCK] resampled */
    long o_n, o_pos;
    int64_t delivered;  /* frames libsndfile has given us */
    int eof;            /* the file is exhausted */
    int done;           /* nothing more will come out (after the resampler's tail) */
    struct vfile vf;    /* an unfinished RIFF header read with its sizes completed */
    char *warning;      /* what the caller should tell the user (NULL: nothing) */
};

/* What a RIFF/WAVE file's data chunk declares against what the file
 * holds. libsndfile opens a WAV whose data chunk was cut short and quietly
 * shortens it (its log says "should be ..."), so a copy interrupted
 * half-way would pass for a complete recording: RIFF_TRUNCATED. The
 * other way round, a data chunk that declares less than what follows it
 * where what follows is not a chain of chunks (a LIST or id3 chunk after
 * the data is common and fine) is a header its writer never finished: a
 * recording whose writer was killed or crashed (cbrnn_wav rewrites its
 * sizes once a second; other recorders only at the end) and
 * libsndfile would read only the declared part, none at all of a 0:
 * RIFF_UNFINISHED, read to the end of the file with a warning. Any
 * RIFF/WAVE, not only ours: a cut recording is the same whoever wrote
 * it, and the warning says what is read. */
enum { RIFF_OK, RIFF_TRUNCATED, RIFF_UNFINISHED };
struct riff_check {
    unsigned long long declared, present; /* data bytes */
    long long riff_at, data_at;           /* offsets of the two sizes */
    unsigned long long fsize;
    int be;
};

static uint32_t get32(const unsigned char *c, int be)
{
    return be ? (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3]
              : (uint32_t)c[3] << 24 | (uint32_t)c[2] << 16 | (uint32_t)c[1] << 8 | c[0];
}

/* Do the bytes from off to the end of f form whole chunks (printable ids,
 * each ending within the file; a missing last pad byte allowed)? */
static int chunk_chain(FILE *f, unsigned long long off, unsigned long long fsize, int be)
{
    while (off + 8 <= fsize) {
        unsigned char c[8];
        if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(c, 1, 8, f) != 8)
            return 0;
        for (int i = 0; i < 4; i++)
            if (c[i] < 0x20 || c[i] > 0x7e)
                return 0;
        unsigned long long size = get32(c + 4, be);
        if (off + 8 + size > fsize)
            return 0;
        off += 8 + size + (size & 1);
    }
    return 1;
}

static int riff_check(const char *path, struct riff_check *r)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return RIFF_OK;
    unsigned char h[12];
    int result = RIFF_OK, block = 0;
    if (fread(h, 1, 12, f) != 12 || memcmp(h + 8, "WAVE", 4) != 0)
        goto out;
    if (!memcmp(h, "RIFF", 4))
        r->be = 0;
    else if (!memcmp(h, "RIFX", 4))
        r->be = 1;
    else
        goto out; /* RF64 and others: libsndfile's own checks only */
    if (fseeko(f, 0, SEEK_END) != 0)
        goto out;
    off_t fsize = ftello(f);
    if (fsize < 0)
        goto out;
    r->fsize = (unsigned long long)fsize;
    unsigned long long off = 12;
    while (off + 8 <= r->fsize) {
        unsigned char c[8];
        if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(c, 1, 8, f) != 8)
            goto out;
        unsigned long long size = get32(c + 4, r->be);
        if (!memcmp(c, "fmt ", 4) && size >= 14) {
            unsigned char fmt[14];
            if (fread(fmt, 1, 14, f) != 14)
                goto out;
            block = (int)(r->be ? fmt[12] << 8 | fmt[13] : fmt[13] << 8 | fmt[12]);
        }
        if (!memcmp(c, "data", 4)) {
            unsigned long long avail = r->fsize - (off + 8);
            r->declared = size;
            r->present = avail;
            /* Programs writing WAV to a pipe cannot seek back, so they
             * leave a placeholder near 2^31 or 2^32 (espeak-ng writes
             * 0x7ffff000); such a length means "unknown", not "cut". */
            if (size < 0x7fff0000ull && size > avail) {
                result = RIFF_TRUNCATED;
            } else if (block > 0 && size < avail) {
                unsigned long long end = off + 8 + size + (size & 1);
                /* at least one more whole frame, and not chunks */
                if (avail - size >= (unsigned long long)block &&
                    !chunk_chain(f, end, r->fsize, r->be)) {
                    r->present = avail - avail % (unsigned)block;
                    r->riff_at = 4;
                    r->data_at = (long long)off + 4;
                    result = RIFF_UNFINISHED;
                }
            }
            goto out;
        }
        off += 8 + size + (size & 1);
    }
out:
    fclose(f);
    return result;
}

/* struct vfile's callbacks (SF_VIRTUAL_IO) */

static sf_count_t vf_len(void *u) { return ((struct vfile *)u)->len; }
static sf_count_t vf_tell(void *u) { return ((struct vfile *)u)->pos; }
static sf_count_t vf_seek(sf_count_t off, int whence, void *u)
{
    struct vfile *v = u;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? v->pos : v->len;
    if (base + off < 0)
        return -1;
    return v->pos = base + off;
}
static sf_count_t vf_read(void *ptr, sf_count_t count, void *u)
{
    struct vfile *v = u;
    ssize_t got;
    do
        got = pread(v->fd, ptr, (size_t)count, (off_t)v->pos);
    while (got < 0 && errno == EINTR);
    if (got <= 0)
        return 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) {
            sf_count_t at = v->at[k] + i;
            if (at >= v->pos && at < v->pos + got)
                ((unsigned char *)ptr)[at - v->pos] = v->val[k][i];
        }
    v->pos += got;
    return got;
}
static sf_count_t vf_write(const void *ptr, sf_count_t count, void *u)
{
    (void)ptr;
    (void)count;
    (void)u;
    return 0;
}

static void put32(unsigned char *c, unsigned long long v, int be)
{
    uint32_t x = v > 0xffffffffull ? 0xffffffffu : (uint32_t)v;
    for (int i = 0; i < 4; i++)
        c[be ? 3 - i : i] = (unsigned char)(x >> (8 * i));
}

/* Opens an unfinished RIFF file (riff_check) with its sizes completed. */
static SNDFILE *open_unfinished(const char *path, const struct riff_check *r, struct vfile *v,
                                SF_INFO *info, int *fd, int *open_errno)
{
    *open_errno = 0;
    if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        *open_errno = errno;
        return NULL;
    }
    v->fd = *fd;
    v->len = (sf_count_t)r->fsize;
    v->pos = 0;
    v->at[0] = r->riff_at;
    put32(v->val[0], r->fsize - 8, r->be);
    v->at[1] = r->data_at;
    put32(v->val[1], r->present, r->be);
    static SF_VIRTUAL_IO io = {vf_len, vf_seek, vf_read, vf_write, vf_tell};
    SNDFILE *sf = sf_open_virtual(&io, SFM_READ, info, v);
    if (!sf) {
        close(*fd);
        *fd = -1;
    }
    return sf;
}

/* The problems stat() alone shows: no such file, a folder, 0 bytes. 0 or
 * -1 (msg). */
static int check_path(const char *path, char *msg, size_t msglen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(msg, msglen, "%s: %s", path,
                 errno == ENOENT ? "no such file" : strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(msg, msglen, "%s: is a directory, not an audio file", path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        /* a pipe or a device: opening one could block for ever (a FIFO
         * with no writer), and its length is unknown */
        snprintf(msg, msglen, "%s: not a regular file (%s): give an audio file", path,
                 S_ISFIFO(st.st_mode) ? "a named pipe" : S_ISCHR(st.st_mode) ? "a device"
                 : S_ISSOCK(st.st_mode) ? "a socket" : "not a plain file");
        return -1;
    }
    if (st.st_size == 0) {
        snprintf(msg, msglen, "%s: empty file (0 bytes): no audio", path);
        return -1;
    }
    return 0;
}

/* libsndfile refuses names of 1024 bytes and more ("Supplied filename too
 * long"; SF_FILENAME_LEN). Such a path is opened here and handed over as
 * a descriptor (*fd, ours to close after sf_close; -1 otherwise). Only
 * for those: libsndfile also guesses headerless formats by a file's
 * extension, which a descriptor does not carry. */
#define SNDFILE_NAME_MAX 1000
static SNDFILE *sndfile_open(const char *path, SF_INFO *info, int *fd, int *open_errno)
{
    *fd = -1;
    *open_errno = 0;
    if (strlen(path) < SNDFILE_NAME_MAX)
        return sf_open(path, SFM_READ, info);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) { /* sf_strerror(NULL) would not say why: the caller does */
        *open_errno = errno;
        return NULL;
    }
    SNDFILE *sf = sf_open_fd(*fd, SFM_READ, info, SF_FALSE);
    if (!sf) {
        close(*fd);
        *fd = -1;
    }
    return sf;
}

int audio_file_is_audio(const char *path)
{
    SF_INFO info;
    memset(&info, 0, sizeof info);
    int fd, err;
    SNDFILE *sf = sndfile_open(path, &info, &fd, &err);
    if (sf)
        sf_close(sf);
    if (fd >= 0)
        close(fd);
    return sf != NULL;
}

/* libsndfile's view of the file (a->sf, a->info), and that it holds
 * audio: frames, channels, no truncated RIFF data. 0 or -1 (msg). */
static int open_sndfile(audio_in *a, const char *path, char *msg, size_t msglen)
{
    int err;
    struct riff_check rc = {0};
    int riff = riff_check(path, &rc);
    if (riff == RIFF_UNFINISHED)
        a->sf = open_unfinished(path, &rc, &a->vf, &a->info, &a->fd, &err);
    else
        a->sf = sndfile_open(path, &a->info, &a->fd, &err);
    if (err) {
        snprintf(msg, msglen, "%s: cannot open: %s", path, strerror(err));
        return -1;
    }
    if (!a->sf) {
        int e = sf_error(NULL);
        if (e == SF_ERR_UNRECOGNISED_FORMAT)
            snprintf(msg, msglen, "%s: not an audio file (libsndfile does not recognise the format)",
                     path);
        else if (e == SF_ERR_SYSTEM)
            snprintf(msg, msglen, "%s: cannot open: %s", path, sf_strerror(NULL));
        else
            snprintf(msg, msglen, "%s: not a readable audio file (libsndfile: %s)", path,
                     sf_strerror(NULL));
        return -1;
    }
    if (a->info.frames == 0) {
        snprintf(msg, msglen, "%s: empty: the file holds no audio frames", path);
        return -1;
    }
    if (a->info.channels < 1) {
        snprintf(msg, msglen, "%s: no audio channels", path);
        return -1;
    }
    if (riff == RIFF_TRUNCATED) {
        snprintf(msg, msglen,
                 "%s: truncated: the header declares %llu bytes of audio data but the file "
                 "holds only %llu",
                 path, rc.declared, rc.present);
        return -1;
    }
    if (riff == RIFF_UNFINISHED) {
        char w[64];
        int n = snprintf(w, sizeof w, "%lld", (long long)a->info.frames);
        size_t len = strlen(path) + (size_t)n + 128;
        if ((a->warning = malloc(len)))
            snprintf(a->warning, len,
                     "%s: header not finished (a recording cut short?): reading the %s %s "
                     "present", path, w, a->info.channels > 1 ? "sample frames" : "samples");
    }
    return 0;
}

/* The rate a reads at: the file's (target_rate 0: it must be in range) or
 * target_rate through a resampler. speed != 1 reads the file as if it had
 * been recorded at speed times its rate, always through the resampler.
 * 0 or -1 (msg). */
static int set_rate(audio_in *a, const char *path, double target_rate, double speed, char *msg,
                    size_t msglen)
{
    double frate = (double)a->info.samplerate;
    if (target_rate == 0.0) {
        if (frate < CBRNN_RATE_MIN || frate > CBRNN_RATE_MAX) {
            snprintf(msg, msglen,
                     "%s: sample rate %.0f Hz is outside the supported %.0f..%.0f Hz "
                     "(resample it first, e.g. sox IN.wav -r 16000 OUT.wav)",
                     path, frate, CBRNN_RATE_MIN, CBRNN_RATE_MAX);
            return -1;
        }
        a->rate = frate;
        if (speed == 1.0)
            return 0;
        target_rate = frate;
    }
    if (!(target_rate >= CBRNN_RATE_MIN && target_rate <= CBRNN_RATE_MAX)) {
        snprintf(msg, msglen, "%s: target sample rate %g Hz is outside %.0f..%.0f Hz", path,
                 target_rate, CBRNN_RATE_MIN, CBRNN_RATE_MAX);
        return -1;
    }
    a->rate = target_rate;
    if (target_rate == frate && speed == 1.0)
        return 0;
    if (!(speed >= AUDIO_SPEED_MIN && speed <= AUDIO_SPEED_MAX)) {
        snprintf(msg, msglen, "%s: speed %g is outside %g..%g", path, speed, AUDIO_SPEED_MIN,
                 AUDIO_SPEED_MAX);
        return -1;
    }
    a->ratio = target_rate / (frate * speed);
    if (!src_is_valid_ratio(a->ratio)) {
        snprintf(msg, msglen, "%s: cannot resample %.0f Hz to %g Hz (ratio beyond 1:256)", path,
                 frate * speed, target_rate);
        return -1;
    }
    int e = 0;
    /* SINC_MEDIUM: 97 dB SNR, 90% bandwidth (libsamplerate docs); far
     * below the features' 1e-6 log floor, at a fraction of SINC_BEST's
     * cost for long training corpora. */
    a->src = src_new(SRC_SINC_MEDIUM_QUALITY, 1, &e);
    if (!a->src) {
        snprintf(msg, msglen, "%s: resampler: %s", path, src_strerror(e));
        return -1;
    }
    return 0;
}

audio_in *audio_in_open(const char *path, double target_rate, char *msg, size_t msglen)
{
    return audio_in_open_speed(path, target_rate, 1.0, msg, msglen);
}

audio_in *audio_in_open_speed(const char *path, double target_rate, double speed, char *msg,
                              size_t msglen)
{
    if (check_path(path, msg, msglen))
        return NULL;
    audio_in *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(msg, msglen, "%s: out of memory", path);
        return NULL;
    }
    a->fd = -1;
    if (open_sndfile(a, path, msg, msglen) || set_rate(a, path, target_rate, speed, msg, msglen))
        goto fail;
    a->ibuf = malloc((size_t)AUDIO_BLOCK * (size_t)a->info.channels * sizeof *a->ibuf);
    a->mono = malloc(AUDIO_BLOCK * sizeof *a->mono);
    a->obuf = malloc(AUDIO_BLOCK * sizeof *a->obuf);
    size_t pn = strlen(path) + 1;
    a->path = malloc(pn);
    if (!a->ibuf || !a->mono || !a->obuf || !a->path) {
        snprintf(msg, msglen, "%s: out of memory", path);
        goto fail;
    }
    memcpy(a->path, path, pn);
    return a;
fail:
    audio_in_close(a);
    return NULL;
}

double audio_in_rate(const audio_in *a) { return a->rate; }
double audio_in_file_rate(const audio_in *a) { return (double)a->info.samplerate; }
int64_t audio_in_file_frames(const audio_in *a) { return (int64_t)a->info.frames; }
int audio_in_channels(const audio_in *a) { return a->info.channels; }
const char *audio_in_warning(const audio_in *a) { return a->warning; }

void audio_in_close(audio_in *a)
{
    if (!a)
        return;
    if (a->sf)
        sf_close(a->sf);
    if (a->fd >= 0)
        close(a->fd);
    if (a->src)
        src_delete(a->src);
    free(a->ibuf);
    free(a->mono);
    free(a->obuf);
    free(a->path);
    free(a->warning);
    free(a);
}

/* Refills a->mono from the file; 0, or -1 with msg. Sets eof at the end. */
static int fill_mono(audio_in *a, char *msg, size_t msglen)
{
    a->mono_n = a->mono_pos = 0;
    if (a->eof)
        return 0;
    sf_count_t n = sf_readf_float(a->sf, a->ibuf, AUDIO_BLOCK);
    if (n < 0 || (n == 0 && sf_error(a->sf) != SF_ERR_NO_ERROR)) {
        snprintf(msg, msglen, "%s: read error: %s", a->path, sf_strerror(a->sf));
        return -1;
    }
    if (n == 0) {
        a->eof = 1;
        /* Fewer frames than the header promised: cut short (formats the
         * RIFF check above does not cover). Compressed streams whose
         * length is only an estimate (Ogg, MPEG) are exempt. */
        int major = a->info.format & SF_FORMAT_TYPEMASK;
        int estimated = major == SF_FORMAT_OGG || major == SF_FORMAT_MPEG;
        if (!estimated && a->info.frames != SF_COUNT_MAX &&
            a->delivered < (int64_t)a->info.frames) {
            snprintf(msg, msglen, "%s: truncated: expected %lld frames, the file holds %lld",
                     a->path, (long long)a->info.frames, (long long)a->delivered);
            return -1;
        }
        return 0;
    }
    a->delivered += n;
    int ch = a->info.channels;
    if (ch == 1) {
        memcpy(a->mono, a->ibuf, (size_t)n * sizeof *a->mono);
    } else {
        /* Mean of the channels: sum then divide, so a stereo pair of
         * 16-bit samples gives exactly (l + r) / 2. */
        for (sf_count_t i = 0; i < n; i++) {
            const float *fr = a->ibuf + i * ch;
            float acc = 0.0f;
            for (int c = 0; c < ch; c++)
                acc += fr[c];
            a->mono[i] = acc / (float)ch;
        }
    }
    a->mono_n = (long)n;
    return 0;
}

/* Copies up to room samples of src[*pos..avail) to dst, moving *pos; how many. */
static long take(float *dst, long room, const float *src, long *pos, long avail)
{
    long m = avail - *pos;
    if (m > room)
        m = room;
    memcpy(dst, src + *pos, (size_t)m * sizeof *dst);
    *pos += m;
    return m;
}

long audio_in_read(audio_in *a, float *buf, long n, char *msg, size_t msglen)
{
    long got = 0;
    while (got < n) {
        if (!a->src) {
            if (a->mono_pos == a->mono_n) {
                if (a->eof)
                    return got;
                if (fill_mono(a, msg, msglen) != 0)
                    return -1;
                continue;
            }
            got += take(buf + got, n - got, a->mono, &a->mono_pos, a->mono_n);
            continue;
        }
        if (a->o_pos == a->o_n) {
            if (a->done)
                return got;
            if (a->mono_pos == a->mono_n && !a->eof && fill_mono(a, msg, msglen) != 0)
                return -1;
            SRC_DATA d;
            memset(&d, 0, sizeof d);
            d.data_in = a->mono + a->mono_pos;
            d.input_frames = a->mono_n - a->mono_pos;
            d.data_out = a->obuf;
            d.output_frames = AUDIO_BLOCK;
            d.end_of_input = a->eof;
            d.src_ratio = a->ratio;
            int e = src_process(a->src, &d);
            if (e) {
                snprintf(msg, msglen, "%s: resampler: %s", a->path, src_strerror(e));
                return -1;
            }
            a->mono_pos += d.input_frames_used;
            a->o_n = d.output_frames_gen;
            a->o_pos = 0;
            if (a->eof && a->mono_pos == a->mono_n && d.output_frames_gen == 0)
                a->done = 1;
            continue;
        }
        got += take(buf + got, n - got, a->obuf, &a->o_pos, a->o_n);
    }
    return got;
}

int audio_features_each(const char *path, const cbrnn_feat_config *cfg, double target_rate,
                        double speed, int block, audio_frames_fn on_frames, void *ctx, char *msg,
                        size_t msglen)
{
    if (block < 1 || !cfg) {
        snprintf(msg, msglen, "%s: invalid block size %d", path, block);
        return -1;
    }
    audio_in *a = audio_in_open_speed(path, target_rate, speed, msg, msglen);
    if (!a)
        return -1;
    cbrnn_feat_config c = *cfg;
    c.sample_rate = audio_in_rate(a);
    int err = 0;
    cbrnn_feat *fx = cbrnn_feat_create(&c, &err);
    if (!fx) {
        snprintf(msg, msglen, "%s: feature configuration at %.0f Hz: %s", path, c.sample_rate,
                 cbrnn_strerror(err));
        audio_in_close(a);
        return -1;
    }
    int dim = cbrnn_feat_dim(fx);
    /* A block can complete at most block / hop + 1 frames. */
    long cap = block / cbrnn_feat_hop(fx) + 2;
    float *in = malloc((size_t)block * sizeof *in);
    float *out = malloc((size_t)cap * (size_t)dim * sizeof *out);
    int rc = -1;
    if (!in || !out) {
        snprintf(msg, msglen, "%s: out of memory", path);
        goto done;
    }
    int64_t read_so_far = 0;
    for (;;) {
        long n = audio_in_read(a, in, block, msg, msglen);
        if (n < 0)
            goto done;
        if (n == 0)
            break;
        /* A float file can hold NaN or Inf; its features would be NaN and
         * poison training statistics, so refuse it by name (found by
         * tests/fuzz/fuzz_audio). The live engine zeroes and counts such
         * samples instead, and `cbrnn run` leaves that to the engine too. */
        for (long i = 0; i < n; i++)
            if (!isfinite(in[i])) {
                snprintf(msg, msglen, "%s: sample %lld (%.3f s) is not a finite number (NaN or "
                                      "Inf): the file is damaged",
                         path, (long long)(read_so_far + i),
                         (double)(read_so_far + i) / audio_in_rate(a));
                goto done;
            }
        read_so_far += n;
        const float *x = in;
        long nout = 0;
        while (n > 0) {
            int used = 0;
            int r = cbrnn_feat_push(fx, out + nout * dim, x, (int)n, &used);
            if (r < 0) {
                snprintf(msg, msglen, "%s: %s", path, cbrnn_strerror(r));
                goto done;
            }
            nout += r;
            x += used;
            n -= used;
        }
        if (nout > 0 && on_frames(ctx, out, nout, dim) != 0) {
            rc = 1;
            goto done;
        }
    }
    rc = 0;
done:
    free(in);
    free(out);
    cbrnn_feat_destroy(fx);
    audio_in_close(a);
    return rc;
}

struct collect {
    float *data;
    long n, cap;
    int dim;
};

static int collect_frames(void *ctx, const float *frames, long n, int dim)
{
    struct collect *c = ctx;
    c->dim = dim;
    if (c->n + n > c->cap) {
        long cap = c->cap ? c->cap : 1024;
        while (cap < c->n + n)
            cap *= 2;
        float *d = realloc(c->data, (size_t)cap * (size_t)dim * sizeof *d);
        if (!d)
            return -1;
        c->data = d;
        c->cap = cap;
    }
    memcpy(c->data + c->n * dim, frames, (size_t)n * (size_t)dim * sizeof *frames);
    c->n += n;
    return 0;
}

int audio_features(const char *path, const cbrnn_feat_config *cfg, double target_rate,
                   double speed, int block, float **frames, int *n_frames, int *dim, char *msg,
                   size_t msglen)
{
    struct collect c = {NULL, 0, 0, cbrnn_feat_config_dim(cfg)};
    int rc = audio_features_each(path, cfg, target_rate, speed, block, collect_frames, &c, msg,
                                 msglen);
    if (rc != 0) {
        if (rc == 1) /* collect_frames stops only when realloc fails */
            snprintf(msg, msglen, "%s: out of memory", path);
        free(c.data);
        return -1;
    }
    if (c.n > INT_MAX) {
        snprintf(msg, msglen, "%s: too many frames", path);
        free(c.data);
        return -1;
    }
    *frames = c.data;
    *n_frames = (int)c.n;
    *dim = c.dim;
    return 0;
}
