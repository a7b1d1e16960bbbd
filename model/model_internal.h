/* model_internal.h: helpers shared by the files of model/ and its tests;
 * not part of the public API (nothing here is exported from the library
 * for users outside the tree). */
#ifndef CBRNN_MODEL_INTERNAL_H
#define CBRNN_MODEL_INTERNAL_H

#include <stddef.h>
#include "cbrnn/cbrnn_model.h"

/* n zeroed floats, 64-byte aligned (free with free()); NULL on failure. */
float *cbrnn_alloc_floats(size_t n);
/* 1 if the model has readout.weight/readout.bias (loop wiring or no CB). */
int cbrnn_model_has_readout(const cbrnn_model *m);
/* Where a parameter view p (pointing into m->params) lives in another
 * block of the same layout (gradients, moments). NULL when block is NULL. */
static inline float *cbrnn_same_place(float *block, const cbrnn_model *m, const float *p)
{
    return block ? block + (p - m->params) : NULL;
}

#endif
