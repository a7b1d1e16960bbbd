/* main.c: the `cbrnn` command: dispatches to one subcommand per file
 * (cmd_<name>.c). Only cli/ and plugin/ talk to the user. Exit status:
 * 0 success, 1 a failure while working, 2 bad usage or bad input. A
 * failed write to stdout is a failure of every command (cli_finish_stdout). */
#include <stdio.h>
#include <string.h>
#include "cbrnn/cbrnn.h"
#include "util_output.h"

#define CBRNN_CMD(n) int cmd_##n(int argc, char **argv); extern const char cmd_##n##_summary[];
#include "cmd_table.h"
#undef CBRNN_CMD

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
};

static const struct command commands[] = {
#define CBRNN_CMD(n) {#n, cmd_##n, cmd_##n##_summary},
#include "cmd_table.h"
#undef CBRNN_CMD
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cbrnn <command> [options] [args]\n"
            "\n"
            "cbrnn " CBRNN_VERSION_STRING ": a cortico-cerebellar recurrent network for audio.\n"
            "Features are log-mel frames (25 ms Hann window, 10 ms hop) computed the\n"
            "same way offline and live.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'cbrnn <command> --help' (or 'cbrnn help <command>') explains a command.\n"
                 "Exit status: 0 success, 1 failure while working, 2 bad usage or input.\n");
}

/* `cbrnn help CMD`: what `cbrnn CMD --help` prints. */
static int help_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name)) {
            char *args[] = {(char *)name, "--help", NULL};
            return cli_finish_stdout(name, commands[i].fn(2, args));
        }
    fprintf(stderr, "cbrnn help: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") && argc > 2) /* help CMD: CMD's own --help */
        return help_command(argv[2]);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return cli_finish_stdout("help", 0);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("cbrnn %s\n", CBRNN_VERSION_STRING);
        return cli_finish_stdout("--version", 0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return cli_finish_stdout(argv[1], commands[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "cbrnn: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
