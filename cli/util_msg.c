/* util_msg.c: see util_msg.h. */
#include "util_msg.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SHOW_MAX 160 /* characters: a path up to this is shown whole */
#define SHOW_END 70  /* else this many of its start and of its end */

/* path itself when short enough to show, else shortened into buf. */
static const char *short_path(const char *path, char *buf, size_t len)
{
    size_t l = strlen(path);
    if (l <= SHOW_MAX)
        return path;
    snprintf(buf, len, "%.*s...(%zu characters)...%s", SHOW_END, path, l, path + l - SHOW_END);
    return buf;
}

void cli_say(const char *prog, const char *msg)
{
    fprintf(stderr, "%s: ", prog);
    for (const char *p = msg; *p;) {
        size_t word = strcspn(p, " \n");
        if (word > SHOW_MAX)
            fprintf(stderr, "%.*s...(%zu characters)...%.*s", SHOW_END, p, word, SHOW_END,
                    p + word - SHOW_END);
        else
            fprintf(stderr, "%.*s", (int)word, p);
        p += word;
        size_t gap = strspn(p, " \n");
        fprintf(stderr, "%.*s", (int)gap, p);
        p += gap;
    }
    fputc('\n', stderr);
}

int cli_check_path_length(const char *path, char *msg, size_t msglen)
{
    struct stat st;
    size_t longest = 0;
    for (const char *p = path; *p; p += strspn(p, "/")) {
        size_t n = strcspn(p, "/");
        longest = n > longest ? n : longest;
        p += n;
        if (!*p)
            break;
    }
    int too_long = strlen(path) >= PATH_MAX || longest > NAME_MAX ||
                   (stat(path, &st) != 0 && errno == ENAMETOOLONG);
    if (!too_long)
        return 0;
    char buf[256];
    snprintf(msg, msglen, "%s: %s (the path has %zu characters, its longest name %zu; this "
             "system allows %d and %d)", short_path(path, buf, sizeof buf),
             strerror(ENAMETOOLONG), strlen(path), longest, PATH_MAX - 1, NAME_MAX);
    return -1;
}
