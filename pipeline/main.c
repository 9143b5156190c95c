/* The spinemets command: dispatches subcommands and owns the process exit code. */
#include "sm_pipeline.h"

#include <stdio.h>
#include <string.h>

int sm_exit_code_for(SmErrorCode code)
{
    switch (code) {
    case SM_ERR_NONE: return SM_EXIT_OK;
    case SM_ERR_USAGE: return SM_EXIT_USAGE;
    case SM_ERR_NO_SERIES: return SM_EXIT_NO_SERIES;
    case SM_ERR_IO:
    case SM_ERR_FORMAT:
    case SM_ERR_UNSUPPORTED:
    case SM_ERR_GEOMETRY: return SM_EXIT_BAD_INPUT;
    case SM_ERR_OUTPUT: return SM_EXIT_OUTPUT;
    case SM_ERR_NOMEM:
    case SM_ERR_INTERNAL: return SM_EXIT_INTERNAL;
    }
    return SM_EXIT_INTERNAL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: spinemets COMMAND [options]\n"
               "commands:\n"
               "  inspect INPUT... [--json]      list series, geometry and value ranges\n"
               "  run INPUT... -o OUTDIR          run the pipeline, write results per series\n"
               "  phantom [--spec FILE] -o DIR    generate a synthetic spine CT series\n"
               "  version                         print the version\n"
               "'spinemets COMMAND --help' for a command's options; exit codes in the man page.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return SM_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "inspect") == 0)
        return sm_cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return sm_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "phantom") == 0)
        return sm_cmd_phantom(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("spinemets %s\n", SM_VERSION_STRING);
        return SM_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return SM_EXIT_OK;
    }
    fprintf(stderr, "spinemets: unknown command '%s'\n", cmd);
    usage(stderr);
    return SM_EXIT_USAGE;
}
