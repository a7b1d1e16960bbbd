/* util_term.h: progress display for long jobs; silent when not a terminal. */
#ifndef CBRNN_UTIL_TERM_H
#define CBRNN_UTIL_TERM_H

#include <stdio.h>

/* 1 if f is a terminal. */
int term_is_interactive(FILE *f);
/* Redraws "what [#####.....]  42% ETA 12s extra" on f when f is a
 * terminal; prints nothing otherwise. Ends the line when done >= total. */
void term_progress(FILE *f, const char *what, double done, double total, double elapsed_s,
                   const char *extra);

#endif
