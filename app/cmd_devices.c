/* cmd_devices.c - placeholder until this subcommand is written: it says so plainly. */
#include <stdio.h>
#include "app/commands.h"

int cmd_devices(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "musicgen-tui: 'devices' is not built yet\n");
	return 1;
}
