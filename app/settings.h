/* settings.h - the user's settings ($XDG_CONFIG_HOME/musicgen-tui/config) and
 * the remembered compose state ($XDG_STATE_HOME/musicgen-tui/state): both are
 * "key = value" text files, one setting per line, '#' starts a comment. */
#ifndef MG_SETTINGS_H
#define MG_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#define SETTINGS_PATH_MAX 1024
#define PROMPT_MAX 2048 /* bytes of UTF-8, including the terminating NUL */

/* The generation knobs of one request, as the user sets them. */
struct knobs {
	double duration;    /* seconds of audio */
	double guidance;    /* classifier-free guidance scale; <= 1 disables it */
	double temperature; /* > 0 */
	int top_k;          /* 0 = off */
	double top_p;       /* (0, 1]; 1 = off */
	uint64_t seed;      /* used when seed_random is 0; the last seed otherwise */
	int seed_random;    /* draw a new seed for each generation */
	int count;          /* takes per generation */
};

void knobs_default(struct knobs *k);

/* Checks one knob's value; -1 with the reason (e.g. "top-p must be in (0, 1]")
 * when it is refused. name is one of duration, guidance, temperature, top_k,
 * top_p, seed, count. */
int knobs_check_value(const char *name, double v, char *err, size_t errlen);
/* Checks every knob. */
int knobs_check(const struct knobs *k, char *err, size_t errlen);

struct settings {
	char model[SETTINGS_PATH_MAX];       /* path or hub id; "" = search the cache */
	char backend[16];                    /* auto, cpu or opencl */
	int device;                          /* OpenCL device index (mg_list_devices); -1 = auto */
	char model_dirs[SETTINGS_PATH_MAX];  /* ':'-separated model directories for the picker */
	int threads;                         /* <= 0: all cores */
	char audio_device[256];              /* PortAudio device name; "" = default */
	int autoplay;                        /* play a finished take at once */
	char export_dir[SETTINGS_PATH_MAX];  /* "" = $XDG_MUSIC_DIR or ~/Music */
	char export_format[16];              /* wav, wav24, wavf, flac or ogg */
	char theme[64];                      /* name of a theme in the themes directory */
};

void settings_default(struct settings *s);

/* Reads path over the values already in s. A missing file is not an error.
 * Unknown keys and bad values are errors naming the line. */
int settings_load(struct settings *s, const char *path, char *err, size_t errlen);
/* Writes s to path atomically (temporary file, fsync, rename). */
int settings_save(const struct settings *s, const char *path, char *err, size_t errlen);
/* The settings file path, creating its directory (0700). */
int settings_path(char *out, size_t outlen, char *err, size_t errlen);

/* The compose pane between runs: last prompt and knobs. */
struct compose_state {
	char prompt[PROMPT_MAX];
	struct knobs knobs;
};

int state_load(struct compose_state *st, const char *path, char *err, size_t errlen);
int state_save(const struct compose_state *st, const char *path, char *err, size_t errlen);
int state_path(char *out, size_t outlen, char *err, size_t errlen);

/* Writes data to path via a temporary file in the same directory, fsync and
 * rename, then fsyncs the directory: readers see the old or the new file,
 * never half of one. */
int write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

#endif
