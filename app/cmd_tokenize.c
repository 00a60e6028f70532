/* cmd_tokenize.c - `musicgen-tui tokenize`: the T5 token ids of texts, one
 * line each, exactly as the model's tokenizer gives them to the encoder. */
#include "autoconfig.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/cli.h"
#include "app/commands.h"
#include "engine/hub.h"
#include "engine/tokenizer.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: musicgen-tui tokenize --model PATH [TEXT]...\n"
	           "\n"
	           "Prints the T5 token ids of each TEXT (end-of-sequence id included), one line\n"
	           "per text; without TEXT, one line per line of standard input. Put -- before\n"
	           "a TEXT that starts with '-'.\n"
	           "\n"
	           "  -m, --model PATH   a model directory, a hub id (ORG/NAME) in the local\n"
	           "                     Hugging Face cache, or a spiece.model file\n"
	           "  -h, --help         this help\n"
	           "  -V, --version      the program's version\n");
}

static int print_ids(const mg_tokenizer *t, const char *text)
{
	int32_t *ids;
	int n;
	char err[256];
	if (mg_tokenize(t, text, &ids, &n, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui tokenize: %s\n", err);
		return -1;
	}
	for (int i = 0; i < n; i++)
		printf(i ? " %d" : "%d", ids[i]);
	printf("\n");
	free(ids);
	return 0;
}

int cmd_tokenize(int argc, char **argv)
{
	const char *model;
	int status = cli_model_option("tokenize", argc, argv, usage, "", " (expected --model PATH [TEXT]...)", &model);
	if (status >= 0)
		return status;
	if (!model) {
		fprintf(stderr, "musicgen-tui tokenize: --model PATH is required (a model directory, hub id or spiece.model)\n");
		return 2;
	}

	char dir[PATH_MAX], err[512], spiece[PATH_MAX + 32];
	if (mg_resolve_model(model, 1, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui tokenize: %s\n", err);
		return 1;
	}
	struct stat st;
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(spiece, sizeof spiece, "%s/spiece.model", dir);
	else
		snprintf(spiece, sizeof spiece, "%s", dir);
	mg_tokenizer *t;
	if (mg_tokenizer_load(&t, spiece, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui tokenize: %s\n", err);
		return 1;
	}
	int rc = 0;
	if (optind < argc) {
		for (int i = optind; i < argc && !rc; i++)
			rc = print_ids(t, argv[i]) ? 1 : 0;
	} else {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		while (!rc && (n = getline(&line, &cap, stdin)) >= 0) {
			if (n > 0 && line[n - 1] == '\n')
				line[n - 1] = 0;
			rc = print_ids(t, line) ? 1 : 0;
		}
		free(line);
	}
	mg_tokenizer_free(t);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "musicgen-tui tokenize: cannot write the output\n");
		rc = 1;
	}
	return rc;
}
