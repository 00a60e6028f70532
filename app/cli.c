/* cli.c - strict parsing of command-line values (see cli.h). */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli.h"
#include "engine/mg.h"

int cli_int(const char *cmd, const char *opt, const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno) {
		fprintf(stderr, "musicgen-tui %s: %s expects a whole number, got '%s'\n", cmd, opt, s);
		return -1;
	}
	if (v < min || v > max) {
		fprintf(stderr, "musicgen-tui %s: %s must be between %ld and %ld, got %ld\n", cmd, opt, min, max, v);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-') {
		fprintf(stderr, "musicgen-tui %s: %s expects a non-negative whole number, got '%s'\n", cmd, opt, s);
		return -1;
	}
	unsigned long long v = strtoull(s, &end, 0);
	if (*end || errno) {
		fprintf(stderr, "musicgen-tui %s: %s expects a non-negative whole number, got '%s'\n", cmd, opt, s);
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

int cli_float(const char *cmd, const char *opt, const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v)) {
		fprintf(stderr, "musicgen-tui %s: %s expects a number, got '%s'\n", cmd, opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_backend(const char *cmd, const char *s, int *out)
{
	if (!strcmp(s, "cpu"))
		*out = MG_BACKEND_CPU;
	else if (!strcmp(s, "opencl"))
		*out = MG_BACKEND_OPENCL;
	else if (!strcmp(s, "auto"))
		*out = MG_BACKEND_AUTO;
	else {
		fprintf(stderr, "musicgen-tui %s: --backend expects cpu, opencl or auto, got '%s'\n", cmd, s);
		return -1;
	}
	return 0;
}

int cli_weights(const char *cmd, const char *s, int *out)
{
	if (!strcmp(s, "f32"))
		*out = MG_WEIGHTS_F32;
	else if (!strcmp(s, "f16"))
		*out = MG_WEIGHTS_F16;
	else if (!strcmp(s, "q8"))
		*out = MG_WEIGHTS_Q8;
	else {
		fprintf(stderr, "musicgen-tui %s: --weights expects f32, f16 or q8, got '%s'\n", cmd, s);
		return -1;
	}
	return 0;
}

int cli_model_option(const char *cmd, int argc, char **argv, void (*usage)(FILE *), const char *value_hint,
                     const char *unknown_hint, const char **model)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;
	*model = NULL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":m:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			*model = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("musicgen-tui %s\n", PACKAGE_VERSION);
			return 0;
		case ':':
			fprintf(stderr, "musicgen-tui %s: %s expects a value%s\n", cmd, argv[optind - 1], value_hint);
			return 2;
		default:
			fprintf(stderr, "musicgen-tui %s: unknown option '%s'%s\n", cmd, argv[optind - 1], unknown_hint);
			return 2;
		}
	}
	return -1;
}

int cli_help_or_version(const char *arg, void (*usage)(FILE *))
{
	if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
		usage(stdout);
		return 1;
	}
	if (!strcmp(arg, "--version")) {
		printf("musicgen-tui %s\n", PACKAGE_VERSION);
		return 1;
	}
	return 0;
}
