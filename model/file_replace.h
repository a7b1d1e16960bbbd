/* file_replace.h: replacing a file atomically through a temporary beside
 * it, shared by model saves (model/io.c) and the experiment results
 * (experiment/). In-tree only: not installed, nothing exported.
 *
 * Temporaries are named `.BASE.HOST.PID.N.tmp` so that processes on
 * different machines writing the same target in a shared (NFS) folder
 * never pick the same name, and so that a save sweeps away only the
 * leftovers of killed processes of its own machine. */
#ifndef CBRNN_FILE_REPLACE_H
#define CBRNN_FILE_REPLACE_H

#include <limits.h>
#include <stddef.h>

/* Longest host name part of a temporary's name; longer host names are cut
 * (RFC 1123 labels go to 63, cluster node names are far shorter). */
#define CBRNN_TMP_HOST_MAX 32
/* What a temporary's name adds to BASE at most: two dots, the host, a dot,
 * the pid (pid_t is an int: 10 digits), a dot, the counter (unsigned:
 * 10 digits) and ".tmp". */
#define CBRNN_TMP_EXTRA (2 + CBRNN_TMP_HOST_MAX + 1 + 10 + 1 + 10 + 4)
/* Longest target file name cbrnn_file_replace_at accepts. */
#define CBRNN_REPLACE_NAME_MAX (NAME_MAX - CBRNN_TMP_EXTRA)

/* Writes buf[0..len) to the file base in the folder dfd: a new temporary
 * beside it (O_EXCL, O_NOFOLLOW, O_CLOEXEC), write, fsync, close, rename
 * over base, fsync of the folder. Every step is relative to dfd and follows
 * no symbolic link. On any failure before the rename the temporary is
 * removed and base is untouched. First removes this host's temporaries of
 * base whose process is gone. shown: the path for messages, which name it
 * and the failing step. Returns 0, CBRNN_ERR_ARG (base too long) or
 * CBRNN_ERR_IO, with msg. Any thread; never prints. */
int cbrnn_file_replace_at(int dfd, const char *base, const char *shown, const void *buf,
                          size_t len, char *msg, size_t msglen);

/* 1 when pid, of this machine, is a process that no longer exists (its
 * temporaries are leftovers); 0 for this process, a live one, or one that
 * is not ours to ask (it may be writing its temporary now). */
int cbrnn_file_pid_gone(long pid);

/* This machine's name as temporaries carry it: gethostname() with every
 * byte outside [A-Za-z0-9-] made '-', cut to CBRNN_TMP_HOST_MAX. out needs
 * CBRNN_TMP_HOST_MAX + 1 bytes. 0, or -1 if the name is unknown (out gets
 * "unknown-host" then, and no temporary is ever swept). */
int cbrnn_file_tmp_host(char out[CBRNN_TMP_HOST_MAX + 1]);

#endif
