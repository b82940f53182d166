/* nesim.c — the command line: parses a subcommand and hands over. Thin by
 * design: every subcommand calls library functions the tests also call. */
#include <stdio.h>
#include <string.h>

#include "base/comm.h"
#include "cli/cli.h"

static const char usage[] =
    "nesim — neuromorphic event-driven simulator\n"
    "\n"
    "usage: nesim <command> [options]   (nesim <command> --help for details)\n"
    "\n"
    "commands:\n"
    "  run SPEC       run a model spec (JSON): coded layers on input samples, or a network;\n"
    "                 or a language model: a checkpoint folder or its spec (nesim spec);\n"
    "                 or a NIR graph (MODEL.nir, from snnTorch, Norse, Sinabs, ...) or its spec\n"
    "  spec DIR|NIR   print a checkpoint folder's or a NIR graph's spec (JSON) to edit and run\n"
    "  chips [NAME]   list chip profiles with their sources, or show one profile\n"
    "  example NAME   run a built-in classic network (b4, cuba) and print firing statistics\n"
    "  trace CMD DB   inspect a trace database: runs, show, spikes, raster, activity, export,\n"
    "                 diff, upgrade\n"
    "  replay DB      drive the layers after a recorded layer again (--run N --from-layer L)\n"
    "  serve DB       browse a trace database in a web browser (JSON API, paced replay)\n"
    "  version        print the version\n";

int main(int argc, char **argv)
{
    nesim_init();
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_BAD : CLI_OK;
    }
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    /* under mpirun only `run` is split over the ranks; every other command
     * runs once, on rank 0 (K servers on one port, K replays into one trace
     * would only collide) */
    if (nesim_comm_launched() && nesim_comm_launch_rank() != 0)
        return CLI_OK;
    if (strcmp(argv[1], "chips") == 0)
        return cmd_chips(argc - 1, argv + 1);
    if (!strcmp(argv[1], "spec"))
        return cmd_spec(argc - 1, argv + 1);
    if (strcmp(argv[1], "example") == 0)
        return cmd_example(argc - 1, argv + 1);
    if (strcmp(argv[1], "replay") == 0)
        return cmd_replay(argc - 1, argv + 1);
    if (strcmp(argv[1], "trace") == 0)
        return cmd_trace(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        const char *mpi = nesim_comm_library();
        printf("nesim %s\n", nesim_version());
        printf("mpi: %s\n", mpi ? mpi : "not built in (no mpicc at build time): runs on one process");
        return CLI_OK;
    }
    fprintf(stderr, "nesim: unknown command '%s' (see nesim --help)\n", argv[1]);
    return CLI_BAD;
}
