/* cmd_export.c - `musicgen-tui export ID FILE`: writes a saved take to an
 * audio file, the format following the extension (WAV 16-bit by default). */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "app/audio_file.h"
#include "app/cli.h"
#include "app/commands.h"
#include "app/history.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: musicgen-tui export [--format F] ID FILE\n"
	           "\nWrites take ID of the history to FILE. The extension picks the format:\n"
	           ".wav (16-bit PCM, clipped), .flac, .ogg (Vorbis). --format wav24 or wavf\n"
	           "writes 24-bit or 32-bit float WAV instead. The prompt and parameters go\n"
	           "into the file's metadata. 'musicgen-tui history' lists the ids.\n");
}

int cmd_export(int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	int npos = 0, wav = 0;
	for (int i = 1; i < argc; i++) {
		if (cli_help_or_version(argv[i], usage)) {
			return 0;
		} else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
			wav = audio_format_parse(argv[++i]);
			if (wav < 0) {
				fprintf(stderr, "musicgen-tui export: --format expects wav, wav24, wavf, flac or ogg, got '%s'\n",
				        argv[i]);
				return 2;
			}
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "musicgen-tui export: unknown or incomplete option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (npos < 2) {
			pos[npos++] = argv[i];
		} else {
			fprintf(stderr, "musicgen-tui export: too many arguments\n");
			usage(stderr);
			return 2;
		}
	}
	if (npos != 2) {
		usage(stderr);
		return 2;
	}
	long id;
	if (cli_int("export", "ID", pos[0], 1, 0x7fffffffL, &id))
		return 2;
	char err[1024];
	int format;
	if (wav == AUDIO_FORMAT_FLAC || wav == AUDIO_FORMAT_OGG)
		format = wav;
	else if ((format = audio_format_for_path(pos[1], wav, err, sizeof err)) < 0) {
		fprintf(stderr, "musicgen-tui export: %s\n", err);
		return 2;
	}
	history *h;
	if (history_open(&h, NULL, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui export: %s\n", err);
		return 1;
	}
	struct history_take t;
	int rc = history_get(h, id, &t, err, sizeof err);
	if (rc == 0)
		rc = history_export(h, &t, pos[1], format, err, sizeof err);
	history_close(h);
	if (rc) {
		fprintf(stderr, "musicgen-tui export: %s\n", err);
		return 1;
	}
	printf("%s\n", pos[1]);
	return 0;
}
