/* pool.c: cbrnn_exp_run_pool: a comparison's units over forked worker
 * processes, a few at a time, with progress and a way to stop.
 *
 * Must never: print, install signal handlers in the calling process (the
 * host decides what a signal means and answers through report->stop), or
 * let a worker share OpenBLAS threads (cbrnn_exp_run_unit runs BLAS on one
 * thread: the units are the parallelism). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exp_internal.h"

static double since(const struct timespec *t0)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)(ts.tv_sec - t0->tv_sec) + 1e-9 * (double)(ts.tv_nsec - t0->tv_nsec);
}

/* Forks a worker for unit k; its pid, or -1. */
static pid_t start_worker(cbrnn_exp *e, int k, const cbrnn_exp_report *r)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t c = fork();
    if (c == 0) {
        /* A worker stops at once on SIGINT/SIGTERM: its checkpoint stays usable. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        /* ... and dies with its parent (SIGKILL, SIGHUP of a closed
         * terminal): an orphan would go on writing the folder, which the
         * parent's lock no longer guards, and race a rerun. The parent may
         * have died before prctl: then we are already someone else's. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) || getppid() != parent)
            _exit(1);
        int rc = cbrnn_exp_run_unit(e, k, r);
        fflush(NULL);
        _exit(rc ? 1 : 0);
    }
    return c;
}

int cbrnn_exp_run_pool(cbrnn_exp *e, int jobs, const cbrnn_exp_report *r)
{
    if (!e || jobs < 1)
        return CBRNN_ERR_ARG;
    int n = e->n_units;
    pid_t *pid = calloc((size_t)(n > 0 ? n : 1), sizeof *pid);
    if (!pid)
        return CBRNN_ERR_NOMEM;
    /* A failed unit does not stop the others (each is independent; the
     * host names the failed ones at the end); a failed fork does. */
    int next = 0, running = 0, failed = 0, broken = 0, done_units = 0, stopped = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((next < n && !stopped && !broken) || running > 0) {
        while (next < n && running < jobs && !stopped && !broken) {
            pid_t c = start_worker(e, next, r);
            if (c < 0) {
                exp_say(r, "fork: %s", strerror(errno));
                failed = broken = 1;
                break;
            }
            pid[next++] = c;
            running++;
        }
        if (!stopped && r && r->stop && r->stop(r->user)) {
            /* A signal to the host alone (kill PID) must reach the workers. */
            for (int k = 0; k < next; k++)
                if (pid[k] > 0)
                    kill(pid[k], SIGTERM);
            stopped = 1;
        }
        int status;
        pid_t w = waitpid(-1, &status, WNOHANG);
        if (w > 0) {
            running--;
            done_units++;
            int k = 0;
            while (k < next && pid[k] != w)
                k++;
            if (k < next)
                pid[k] = -pid[k]; /* reaped */
            if (k < next && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
                if (!stopped)
                    exp_say(r, "run %s failed (%s %d)", e->units[k].name,
                            WIFEXITED(status) ? "exit status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                failed = 1;
            }
            continue;
        }
        if (w < 0 && errno != EINTR && errno != ECHILD)
            break;
        if (r && r->progress) {
            long done = 0;
            for (int k = 0; k < n; k++)
                done += e->ops->progress(e, k);
            r->progress(r->user, (double)done, (double)n * (double)e->work_per_unit, done_units,
                        n, since(&t0));
        }
        struct timespec nap = {0, 200 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    free(pid);
    if (stopped)
        return 1;
    return failed ? CBRNN_ERR_IO : 0;
}
