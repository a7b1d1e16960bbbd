/* test_engine_touch.c: everything the audio thread may use is resident
 * (touched) after cbrnn_engine_create, checked with mincore. Memory
 * "zeroed" by malloc + memset(0), which GCC turns into calloc, stays
 * untouched when fresh, and the audio thread then faults it in page by
 * page: the RLS snapshot slots did (about 100 faults at each of the first
 * two live saves of the default model, 3 and 2 ms callbacks).
 * A program of its own: fresh memory must come from fresh mappings, so
 * the mmap threshold is fixed before anything is allocated (glibc raises
 * it after large frees, and reused heap memory is resident anyway); the
 * model is made without audio. A cerebellum of 512 makes each RLS buffer
 * a mapping of its own. Not under sanitizers or valgrind (their
 * allocators touch what they hand out). */
#define _GNU_SOURCE /* mincore */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine_internal.h"

/* Pages of p .. p + n not resident. */
static long untouched_pages(const void *p, size_t n)
{
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1), end = (uintptr_t)p + n;
    size_t np = (end - a + pg - 1) / pg;
    unsigned char *v = malloc(np);
    if (!v || mincore((void *)a, end - a, v)) {
        perror("mincore");
        exit(1);
    }
    long bad = 0;
    for (size_t i = 0; i < np; i++)
        bad += !(v[i] & 1);
    free(v);
    return bad;
}

int main(void)
{
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    cbrnn_model_config mc;
    cbrnn_model_config_default(&mc);
    mc.n_hidden = 32;
    mc.n_cb_hidden = 1;
    mc.cb_hidden[0] = 512;
    int err = 0;
    cbrnn_model *m = cbrnn_model_create(&mc, &err);
    if (!m || cbrnn_model_init(m, 1)) {
        fprintf(stderr, "test_engine_touch: model: %s\n", cbrnn_strerror(err));
        return 1;
    }
    cbrnn_engine_config c;
    cbrnn_engine_config_default(&c, 48000);
    c.rule = CBRNN_RULE_RLS;
    c.learn = 1;
    c.record_outputs = 1;
    cbrnn_engine *e = cbrnn_engine_create(m, &c, &err);
    if (!e) {
        fprintf(stderr, "test_engine_touch: engine: %s\n", cbrnn_strerror(err));
        return 1;
    }
    const size_t n = (size_t)e->rls_n, tri = n * (n + 1) / 2;
    const struct {
        const char *what;
        const void *p;
        size_t bytes;
    } b[] = {
        {"rls_P", e->rls_P, n * n * sizeof(double)},
        {"rls_u", e->rls_u, n * sizeof(double)},
        {"rls_pd", e->rls_pd, n * sizeof(double)},
        {"rls_nz", e->rls_nz, n * sizeof(int)},
        {"rls_snap[0]", e->rls_snap[0], tri * sizeof(float)},
        {"rls_snap[1]", e->rls_snap[1], tri * sizeof(float)},
        {"the records ring", e->recs.buf, (e->recs.mask + 1) * e->recs.elem},
        {"the commands ring", e->cmds.buf, (e->cmds.mask + 1) * e->cmds.elem},
        {"rec_buf_rt", e->rec_buf_rt, e->rec_elem},
    };
    int fails = 0;
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        long bad = untouched_pages(b[i].p, b[i].bytes);
        printf("%-18s %8zu bytes: %ld pages not resident\n", b[i].what, b[i].bytes, bad);
        fails += bad != 0;
    }
    cbrnn_engine_destroy(e);
    cbrnn_model_destroy(m);
    if (fails)
        fprintf(stderr, "FAIL: %d buffers of the audio thread not touched at create\n", fails);
    return fails != 0;
}
