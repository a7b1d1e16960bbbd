/* util_parse.h: the one integer parser the CLI commands share: a whole
 * decimal string within [lo, hi], nothing else accepted. The caller words
 * the message, since it knows the option. */
#ifndef CBRNN_UTIL_PARSE_H
#define CBRNN_UTIL_PARSE_H

/* 0 and *out set, or -1 (not an integer, trailing text, out of range). */
int cli_parse_int(const char *s, long lo, long hi, int *out);

#endif
