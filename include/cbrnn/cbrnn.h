/* cbrnn.h: common definitions of the cbrnn public API: error codes, the
 * export macro, version. Every other public header includes this one.
 * Library code never prints or exits; it returns these codes and the hosts
 * (cli/, plugin/) turn them into messages with cbrnn_strerror(). */
#ifndef CBRNN_H
#define CBRNN_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CBRNN_API __attribute__((visibility("default")))
#else
#define CBRNN_API
#endif

#define CBRNN_VERSION_STRING "0.1.0"

/* Return codes: 0 is success, errors are negative. */
enum {
    CBRNN_OK = 0,
    CBRNN_ERR_ARG = -1,        /* an argument is out of range or NULL */
    CBRNN_ERR_NOMEM = -2,      /* allocation failed */
    CBRNN_ERR_IO = -3,         /* a file could not be opened, read or written */
    CBRNN_ERR_FORMAT = -4,     /* a file's contents are malformed */
    CBRNN_ERR_RATE = -5,       /* sample rate outside 8 kHz..192 kHz */
    CBRNN_ERR_SHAPE = -6,      /* sizes do not agree with the configuration */
    CBRNN_ERR_NONFINITE = -7,  /* NaN or Inf where a finite value is needed */
    CBRNN_ERR_FULL = -8,       /* a queue or buffer is full (dropped) */
    CBRNN_ERR_UNSUPPORTED = -9 /* a valid request this build cannot honour */
};

/* Text for a return code; never NULL; static storage. Any thread. */
CBRNN_API const char *cbrnn_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
