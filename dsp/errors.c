/* errors.c: text for the CBRNN_ERR_* codes shared by every module. */
#include "cbrnn/cbrnn.h"

const char *cbrnn_strerror(int code)
{
    switch (code) {
    case CBRNN_OK: return "success";
    case CBRNN_ERR_ARG: return "invalid argument";
    case CBRNN_ERR_NOMEM: return "out of memory";
    case CBRNN_ERR_IO: return "input/output error";
    case CBRNN_ERR_FORMAT: return "malformed file";
    case CBRNN_ERR_RATE: return "sample rate outside 8000..192000 Hz";
    case CBRNN_ERR_SHAPE: return "sizes do not match the configuration";
    case CBRNN_ERR_NONFINITE: return "non-finite value";
    case CBRNN_ERR_FULL: return "queue full";
    case CBRNN_ERR_UNSUPPORTED: return "not supported by this build";
    default: return "unknown error";
    }
}
