/* util_json.h: writing JSON string literals for the --json output of the
 * file host's subcommands. */
#ifndef CBRNN_UTIL_JSON_H
#define CBRNN_UTIL_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal (quotes and escapes) to f. */
void fput_json_string(FILE *f, const char *s);

#endif
