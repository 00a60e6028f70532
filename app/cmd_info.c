/* cmd_info.c - placeholder until this subcommand is written: it says so plainly. */
#include <stdio.h>
#include "app/commands.h"

int cmd_info(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "musicgen-tui: 'info' is not built yet\n");
	return 1;
}
