/* replay_main.c: a main() for the fuzz targets in builds without libFuzzer
 * (gcc, the normal and sanitizer test builds): feeds every file named on
 * the command line, or found in a folder named there, to the same
 * LLVMFuzzerTestOneInput, in name order. The seed corpora and the
 * regression inputs (crashers found and fixed) are replayed this way by
 * ctest, so a fixed crash that comes back fails the ordinary test suite.
 * A target reports a broken invariant by aborting; this driver fails if
 * an argument cannot be read or holds no input. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        return -1;
    }
    /* exact-size copy: a read past the input is then a sanitizer error */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    long done = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]))
                return 1;
            done++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            perror(argv[i]);
            return 1;
        }
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char **p = realloc(names, (n + 1) * sizeof *p);
            if (!p || !(p[n] = strdup(de->d_name))) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            names = p;
            n++;
        }
        closedir(d);
        if (n)
            qsort(names, n, sizeof *names, by_name);
        for (size_t k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (replay_file(path))
                    return 1;
                done++;
            }
            free(names[k]);
        }
        free(names);
    }
    if (done == 0) {
        fprintf(stderr, "replay: no input files in the arguments\n");
        return 1;
    }
    printf("replay: %ld inputs, no crash\n", done);
    return 0;
}
