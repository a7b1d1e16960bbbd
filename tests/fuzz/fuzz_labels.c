/* fuzz_labels.c: libFuzzer target for the text files `cbrnn train/eval`
 * read besides audio (train/corpus.c): Audacity label files
 * (labels_read, then labels_collect and labels_to_frames as classify
 * training uses them) and map pairs lists (corpus_read_pairs). The first
 * byte picks the parser (even: labels, odd: pairs); the rest is the file.
 * A bad file must give a message naming the file; a good one must give
 * frame classes inside the class list. Only the scratch folder is touched
 * (pairs lists are read, never their paths). */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "corpus.h"

/* Frames labels_to_frames fills: 10 s at a 10 ms hop. */
#define N_FRAMES 1000

static void fuzz_labels(const char *path)
{
    char msg[1024] = "";
    label_file lf;
    if (labels_read(path, &lf, msg, sizeof msg) != 0) {
        CHECK(strncmp(msg, path, strlen(path)) == 0, "message does not name the file: %s", msg);
        return;
    }
    char **names = NULL;
    int n_names = 0;
    if (labels_collect(&names, &n_names, 128, &lf, msg, sizeof msg) == 0) {
        CHECK(n_names <= 128 && (n_names > 0) == (lf.n > 0), "%d classes from %d labels", n_names,
              lf.n);
        static int frames[N_FRAMES];
        /* 16 kHz, hop 160, window 400: the default front end */
        int rc = labels_to_frames(frames, &lf, (const char *const *)names, n_names, 16000.0, 160,
                                  400, N_FRAMES, msg, sizeof msg);
        CHECK(rc == 0, "every label is a class, yet: %s", msg);
        for (int t = 0; t < N_FRAMES; t++)
            CHECK(frames[t] >= -1 && frames[t] < n_names, "frame %d has class %d of %d", t,
                  frames[t], n_names);
        /* Without the last class, a file using it must be refused by name. */
        if (n_names > 1) {
            rc = labels_to_frames(frames, &lf, (const char *const *)names, n_names - 1, 16000.0,
                                  160, 400, N_FRAMES, msg, sizeof msg);
            CHECK(rc != 0 && strstr(msg, "is not one of"), "missing class accepted (%s)", msg);
        }
    }
    for (int i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    labels_free(&lf);
}

static void fuzz_pairs(const char *path)
{
    char msg[1024] = "";
    corpus in = {0}, te = {0};
    int rc = corpus_read_pairs(path, &in, &te, msg, sizeof msg);
    CHECK(in.n == te.n, "%d inputs but %d teachers", in.n, te.n);
    if (rc != 0)
        CHECK(strncmp(msg, path, strlen(path)) == 0, "message does not name the file: %s", msg);
    for (int i = 0; i < in.n; i++)
        CHECK(in.paths[i][0] && te.paths[i][0], "empty path in pair %d", i);
    corpus_free(&in);
    corpus_free(&te);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_pairs(fz_write("pairs.txt", data + 1, size - 1));
    else
        fuzz_labels(fz_write("labels.txt", data + 1, size - 1));
    return 0;
}
