/* util_parse.h: the number parsers the CLI commands share: a whole
 * decimal string within [lo, hi], nothing else accepted (no trailing
 * text, no NaN or infinity). The caller words the message, since it knows
 * the option. */
#ifndef CBRNN_UTIL_PARSE_H
#define CBRNN_UTIL_PARSE_H

/* 0 and *out set, or -1 (not an integer, trailing text, out of range). */
int cli_parse_int(const char *s, long lo, long hi, int *out);
/* 0 and *out set, or -1 (not a finite number, trailing text, out of range). */
int cli_parse_double(const char *s, double lo, double hi, double *out);

#endif
