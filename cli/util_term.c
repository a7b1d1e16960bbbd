/* util_term.c: small terminal helpers shared by the hosts: whether to
 * show progress (only on a terminal) and a one-line progress display. */
#include "util_term.h"

#include <stdio.h>
#include <unistd.h>

int term_is_interactive(FILE *f)
{
    return isatty(fileno(f));
}

void term_progress(FILE *f, const char *what, double done, double total, double elapsed_s,
                   const char *extra)
{
    if (!term_is_interactive(f))
        return;
    double frac = total > 0 ? done / total : 0;
    if (frac > 1)
        frac = 1;
    int width = 30, filled = (int)(frac * width + 0.5);
    double eta = frac > 0 ? elapsed_s * (1 - frac) / frac : 0;
    fprintf(f, "\r%s [", what);
    for (int i = 0; i < width; i++)
        fputc(i < filled ? '#' : '.', f);
    fprintf(f, "] %3.0f%% ETA %4.0fs %s\033[K", 100 * frac, eta, extra ? extra : "");
    if (frac >= 1)
        fputc('\n', f);
    fflush(f);
}
