/* rate_change.c: an LD_PRELOAD shim that lets a test change the sample
 * rate a JACK client sees. The dummy backend cannot change its rate while
 * running, so the client's sample-rate callback is remembered when it is
 * set, and called with RATE once the file named by $CBRNN_TEST_RATE_FILE
 * holds RATE (the file is then removed). The callback runs on a thread of
 * this shim, as libjack's own notification thread would run it. Tests
 * only (tests/jack/rate_change.sh). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <jack/jack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static JackSampleRateCallback rate_cb;
static void *rate_arg;

static void *watch_rate_file(void *arg)
{
    const char *path = arg;
    for (;;) {
        FILE *f = fopen(path, "r");
        int rate = 0;
        if (f) {
            int ok = fscanf(f, "%d", &rate) == 1;
            fclose(f);
            if (ok && rate > 0) {
                unlink(path);
                rate_cb((jack_nframes_t)rate, rate_arg);
            }
        }
        usleep(20000);
    }
    return NULL;
}

__attribute__((visibility("default"))) int
jack_set_sample_rate_callback(jack_client_t *c, JackSampleRateCallback fn, void *arg)
{
    int (*real)(jack_client_t *, JackSampleRateCallback, void *) =
        (int (*)(jack_client_t *, JackSampleRateCallback, void *))dlsym(
            RTLD_NEXT, "jack_set_sample_rate_callback");
    const char *path = getenv("CBRNN_TEST_RATE_FILE");
    if (path && fn && !rate_cb) {
        rate_cb = fn;
        rate_arg = arg;
        pthread_t th;
        if (pthread_create(&th, NULL, watch_rate_file, (void *)path) == 0)
            pthread_detach(th);
    }
    return real ? real(c, fn, arg) : -1;
}
