/* cli.h - strict parsing of command-line values shared by the subcommands.
 * Each parser returns 0 on success, or -1 after printing
 * "musicgen-tui CMD: --OPT expects ..., got 'VALUE'" on stderr. */
#ifndef MG_CLI_H
#define MG_CLI_H

#include <stdint.h>

int cli_int(const char *cmd, const char *opt, const char *s, long min, long max, long *out);
int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_float(const char *cmd, const char *opt, const char *s, double *out);
/* "cpu", "opencl" or "auto" -> enum mg_backend. */
int cli_backend(const char *cmd, const char *s, int *out);
/* "f32", "f16" or "q8" -> enum mg_weights. */
int cli_weights(const char *cmd, const char *s, int *out);

#endif
