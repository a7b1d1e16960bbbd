/* util_msg.h: messages that name a path the user gave, however long it
 * is. A path of thousands of characters would push the reason out of a
 * message (and out of the terminal's line): it is shown shortened in the
 * middle, and a path the system refuses for its length is refused here
 * first, with that reason. */
#ifndef CBRNN_UTIL_MSG_H
#define CBRNN_UTIL_MSG_H

#include <stddef.h>

/* Room for a message naming a whole path (PATH_MAX) and its reason. */
#define CLI_MSG_LEN 8192

/* Prints "prog: msg" on stderr with every run of more than 160
 * characters without a space (a long path) shortened in the middle: its
 * first and last 70 around "...(N characters)...". */
void cli_say(const char *prog, const char *msg);
/* 0, or -1 with msg "PATH (shortened): File name too long (...)" when the
 * system refuses path for its length (a name over NAME_MAX, a path over
 * PATH_MAX). Other problems are left to the command. */
int cli_check_path_length(const char *path, char *msg, size_t msglen);

#endif
