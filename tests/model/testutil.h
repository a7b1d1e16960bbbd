/* testutil.h: helpers shared by the model tests: random fills from the
 * project RNG and a closeness check that reports what, where, expected and
 * got. Header-only so each test program stays one file plus this. */
#ifndef CBRNN_TEST_MODEL_UTIL_H
#define CBRNN_TEST_MODEL_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cbrnn/cbrnn_model.h"

static inline void fill_u(float *p, size_t n, float lo, float hi, cbrnn_rng *r)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(lo + (hi - lo) * cbrnn_rng_uniform(r));
}

/* |got - want| <= tol * max(|want|, floor): a relative error that does not
 * explode for entries near zero, whose size is judged against `floor`
 * (usually a fraction of the tensor's largest magnitude). Prints the failing
 * entry; returns 1 if close. */
static inline int close_rel(const char *what, const char *where, size_t i, double want, double got,
                            double tol, double floor_)
{
    double lim = tol * fmax(fabs(want), floor_);
    if (fabs(got - want) <= lim && isfinite(got))
        return 1;
    print_error("%s: %s[%zu]: expected %.9g, got %.9g (|diff| %.3g > %.3g)\n", what, where, i,
                want, got, fabs(got - want), lim);
    return 0;
}

/* Checks arrays element by element with close_rel, floor = frac * max|want|;
 * reports at most 5 failures; returns the number of failing entries. */
static inline int check_array(const char *what, const char *where, const double *want,
                              const float *got, size_t n, double tol, double frac)
{
    double mx = 0.0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(want[i]));
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double lim = tol * fmax(fabs(want[i]), frac * mx + 1e-30);
        if (!(fabs(got[i] - want[i]) <= lim)) {
            if (bad < 5)
                close_rel(what, where, i, want[i], got[i], tol, frac * mx + 1e-30);
            bad++;
        }
    }
    return bad;
}

#endif
