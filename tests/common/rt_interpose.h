/* rt_interpose.h: the counters of tests/common/rt_interpose.c (see there).
 * Arm around an audio-path call: rt_armed = 1; process(); rt_armed = 0;
 * then rt_calls must be 0. */
#ifndef CBRNN_RT_INTERPOSE_H
#define CBRNN_RT_INTERPOSE_H

#include <stdatomic.h>

extern _Thread_local int rt_armed;        /* this thread is on the audio path */
extern atomic_long rt_calls;              /* calls seen while armed */
extern const char *_Atomic rt_first_call; /* the first one's name */

#endif
