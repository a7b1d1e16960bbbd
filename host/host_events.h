/* host_events.h: what host_events.c shares with the other host modules
 * (the schedule compiler). In-tree only: not installed, nothing exported.
 * Must never: be called from the audio thread (it allocates). */
#ifndef CBRNN_HOST_EVENTS_H
#define CBRNN_HOST_EVENTS_H

#include <stddef.h>

#include "cbrnn/cbrnn_engine.h"

/* Sorts ev[0..n) by frame, keeping events of the same frame in their
 * order (a replay applies them in the order they were written). A merge
 * sort, O(n log n) whatever the order: the insertion sort it replaces took
 * minutes on a schedule whose actions interleave its repeats. 0, or
 * CBRNN_ERR_NOMEM (ev untouched). */
int cbrnn_events_sort(cbrnn_event *ev, size_t n);

#endif
