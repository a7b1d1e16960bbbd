/* host_output.h: the files a live host writes while it runs (cbrnn-jack's
 * --log, its events and markers files), made safe against slow or stalled
 * destinations and against a second instance writing the same files.
 *
 *  - out_writer: a file written by a thread of its own from a byte queue.
 *    Putting never blocks and never does I/O: a stalled destination (a
 *    FIFO whose reader stopped, a hung network disk) stalls only the
 *    writer thread; what does not fit is counted as lost, a failed write
 *    is kept (errno) for the caller to report. No lock is ever held
 *    across a write, so the threads that put and ask stay responsive.
 *  - out_lock: an advisory lock (fcntl, whole file, write) that a second
 *    process taking the same lock is refused, with the process holding it.
 *
 * Never the audio thread (a put takes a mutex). An in-tree header of the
 * host module (not installed; its names are not cbrnn_-prefixed API). */
#ifndef CBRNN_HOST_OUTPUT_H
#define CBRNN_HOST_OUTPUT_H

#include <stddef.h>

typedef struct out_writer out_writer;

/* Starts a writer thread for fd (the writer owns it from now on and closes
 * it), with a queue of cap bytes. name: how messages call the file
 * (copied). NULL when out of memory or no thread could start (fd closed). */
out_writer *out_writer_start(int fd, const char *name, size_t cap);

/* Queues n bytes holding `items` items (rows, say) to be written. Never
 * blocks on the file. 1 queued; 0 not (no room, or an earlier write
 * failed): the items are counted as lost. Any thread but the audio one. */
int out_writer_put(out_writer *w, const char *buf, size_t n, long items);

typedef struct out_writer_stats {
    long long lost;    /* items not queued (no room or after a failed write) */
    long long pending; /* bytes queued, not yet written */
    int error;         /* errno of the first failed write, 0 if none */
} out_writer_stats;
void out_writer_get_stats(out_writer *w, out_writer_stats *st);
const char *out_writer_name(const out_writer *w);

/* Writes what is queued and ends the writer, waiting at most limit_s
 * seconds. 0: all written, file closed and w freed. -1: a write failed
 * (said by the stats; closed and freed). 1: still writing when the time
 * ran out (blocked on a stalled destination): w and its thread are left
 * as they are, st says how much was pending; the caller should exit soon
 * (with _exit: the thread may still hold the descriptor). st may be NULL. */
int out_writer_finish(out_writer *w, double limit_s, out_writer_stats *st);

/* Locks fd (open for writing) for this process: an fcntl write lock on the
 * whole file, which other processes that take it are refused until this
 * one exits or closes any descriptor of the file. 0 locked; -1 another
 * process holds it (*pid: that process, 0 when unknown) or locks are not
 * supported (errno, *pid -1). */
int out_lock_fd(int fd, long *pid);

/* A lock beside path for outputs that are replaced rather than rewritten
 * (a model saved by renaming a temporary file over it): the file
 * path.lock, created if missing, locked with out_lock_fd, holding our pid.
 * Returns its descriptor (keep it open while writing path), or -1 with
 * *pid as out_lock_fd gives and errno; *pid -2 when path.lock exists and
 * is not a lock file (its content not a pid line): it is left untouched.
 * A lock file left by a dead process is taken over. out_unlock_beside
 * removes it. */
int out_lock_beside(const char *path, long *pid);
void out_unlock_beside(const char *path, int fd);
/* The process holding path's lock file (out_lock_beside) when it is
 * another live process (-1: one whose pid cannot be seen, another pid
 * namespace), 0 when none does or the lock is this process's own. Opens
 * no lock file this process holds (closing one would drop its lock). */
long out_lock_holder(const char *path);
/* out_lock_beside for an output named by option opt (e.g. "--save"), with
 * the message for a person when it cannot be taken ("OPT PATH: in use by
 * process N ..."). Every cbrnn program that saves a model takes it, so
 * two never write one file. Its descriptor, or -1 with msg. */
int out_lock_output(const char *opt, const char *path, char *msg, size_t msglen);

#endif
