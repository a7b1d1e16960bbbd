/* stall_recompute.c: an LD_PRELOAD shim for tests/jack/latency_stall.sh.
 * It wraps jack_recompute_total_latencies: when the file named by
 * CBRNN_TEST_STALL_SERVER exists, the next call reads the server's pid
 * from it, stops the server (SIGSTOP), removes the file (the test's sign
 * that a recompute was asked) and only then makes the real call, which
 * waits for the stopped server forever. So the server is stalled exactly
 * while a recompute is in flight, every run: stopping it from the test
 * instead would race the 20 ms between a delay change being applied and
 * the recompute it asks for. Anything else passes straight through. Test
 * code only: never built into cbrnn. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <jack/jack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

/* exported: the build hides symbols by default */
__attribute__((visibility("default"))) int jack_recompute_total_latencies(jack_client_t *client)
{
    int (*real)(jack_client_t *);
    *(void **)&real = dlsym(RTLD_NEXT, "jack_recompute_total_latencies");
    const char *flag = getenv("CBRNN_TEST_STALL_SERVER");
    FILE *f = flag ? fopen(flag, "r") : NULL;
    if (f) {
        long pid = 0;
        int got = fscanf(f, "%ld", &pid);
        fclose(f);
        if (got == 1 && pid > 0)
            kill((pid_t)pid, SIGSTOP);
        remove(flag);
    }
    return real ? real(client) : -1;
}
