/* cli.h - strict parsing of command-line values shared by the subcommands.
 * Each parser returns 0 on success, or -1 after printing
 * "musicgen-tui CMD: --OPT expects ..., got 'VALUE'" on stderr. */
#ifndef MG_CLI_H
#define MG_CLI_H

#include <stdint.h>
#include <stdio.h>

int cli_int(const char *cmd, const char *opt, const char *s, long min, long max, long *out);
int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_float(const char *cmd, const char *opt, const char *s, double *out);
/* "cpu", "opencl" or "auto" -> enum mg_backend. */
int cli_backend(const char *cmd, const char *s, int *out);
/* "f32", "f16" or "q8" -> enum mg_weights. */
int cli_weights(const char *cmd, const char *s, int *out);

/* arg is --help or -h (usage printed on stdout) or --version (the version
 * printed): 1, and the command exits 0; anything else: 0. */
int cli_help_or_version(const char *arg, void (*usage)(FILE *));

/* The option loop of a subcommand whose one option is --model PATH (with
 * --help and --version): -1 to go on with *model (NULL when not given) and
 * argv[optind..] as its operands, otherwise the exit status: 0 after
 * --help (usage on stdout) or --version, 2 after a missing value (the
 * message ends with value_hint) or an unknown option (ends with
 * unknown_hint). */
int cli_model_option(const char *cmd, int argc, char **argv, void (*usage)(FILE *), const char *value_hint,
                     const char *unknown_hint, const char **model);

#endif
