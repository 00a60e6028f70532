/* cmd_history.c - placeholder until this subcommand is written: it says so plainly. */
#include <stdio.h>
#include "app/commands.h"

int cmd_history(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "musicgen-tui: 'history' is not built yet\n");
	return 1;
}
