/* main.c - musicgen-tui's entry point: picks the subcommand. Without one (or
 * with only options) the interactive terminal interface starts. */
#include "autoconfig.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "app/commands.h"
#include "engine/mg.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"generate", cmd_generate, "generate takes from prompts without the screen"},
	{"info", cmd_info, "describe a model: type, dimensions, parameters, rates"},
	{"tokenize", cmd_tokenize, "print the T5 token ids of texts"},
	{"history", cmd_history, "list the saved takes (text or JSON)"},
	{"export", cmd_export, "write a saved take to an audio file"},
	{"models", cmd_models, "list the MusicGen models in the local cache"},
	{"download", cmd_download, "fetch a model from the Hugging Face hub into the cache"},
	{"devices", cmd_devices, "list the compute backends and OpenCL devices"},
	{"bench", cmd_bench, "measure the engine's speed against the memory-bandwidth floor"},
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: musicgen-tui [OPTIONS]            start the interactive screen\n"
	        "       musicgen-tui COMMAND [OPTIONS]    run one command\n"
	        "\nCommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'musicgen-tui COMMAND --help' for a command's options,\n"
	           "'musicgen-tui --help-screen' for the options of the interactive screen,\n"
	           "and 'man musicgen-tui' for the whole manual.\n");
}

int main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	if (argc >= 2) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
			printf("musicgen-tui %s\n", PACKAGE_VERSION);
			return 0;
		}
		if (!strcmp(argv[1], "--help-screen"))
			return cmd_tui(2, (char *[]){argv[0], "--help", NULL});
		for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
			if (!strcmp(argv[1], commands[i].name))
				return commands[i].run(argc - 1, argv + 1);
		if (argv[1][0] != '-') {
			fprintf(stderr, "musicgen-tui: unknown command '%s'\n", argv[1]);
			usage(stderr);
			return 2;
		}
	}
	return cmd_tui(argc, argv);
}
