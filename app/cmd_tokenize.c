/* cmd_tokenize.c - placeholder until this subcommand is written: it says so plainly. */
#include <stdio.h>
#include "app/commands.h"

int cmd_tokenize(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "musicgen-tui: 'tokenize' is not built yet\n");
	return 1;
}
