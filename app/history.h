/* history.h - the store of takes: $XDG_DATA_HOME/musicgen-tui/history.db
 * (SQLite, WAL, busy timeout, so several instances may share it) with one row
 * per take, and the take's audio and codes beside it as takes/ID.flac and
 * takes/ID.codes.
 *
 * Saving a take: the files are written under temporary names (fsync), then in
 * one write transaction the row is inserted and the files are renamed to the
 * row's id; the row commits last. A crash at any point leaves either no row
 * (and at most files that no row names, removed by a later open) or a row
 * whose files are complete.
 *
 * The codes file: the 8 bytes "MGCODES1", then little-endian int32 K (code-
 * books) and F (frames), then K*F int32 codes, codebook-major ([K][F]). */
#ifndef MG_HISTORY_H
#define MG_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "app/settings.h"

typedef struct history history;

/* One take as stored. Strings are fixed-size, NUL-terminated. */
struct history_take {
	int64_t id;
	int64_t created;      /* Unix time, seconds */
	char prompt[PROMPT_MAX];
	char name[128];
	char note[512];
	int favourite;
	/* generation parameters */
	double duration;      /* seconds asked for */
	int frames;           /* audio frames generated */
	double guidance, temperature, top_p;
	int top_k;
	uint64_t seed;
	int greedy;
	int take_index;       /* which take of a multi-take generation (0-based) */
	int take_count;       /* how many takes that generation made */
	/* where it came from */
	char model[256];      /* hub id or directory name */
	char model_rev[64];   /* snapshot revision or "" */
	char backend[128];
	/* the audio */
	int sample_rate, channels;
	int64_t n_samples;    /* per channel */
	int n_codebooks;
	/* timings, seconds */
	double t5_seconds, decode_seconds, encodec_seconds, total_seconds;
	/* absolute path of the audio file (filled by list/get) */
	char file[1400];
};

enum { HISTORY_NOT_FOUND = -2 };

/* dir: the directory holding history.db and takes/; NULL = the default
 * $XDG_DATA_HOME/musicgen-tui (created 0700). */
int history_open(history **out, const char *dir, char *err, size_t errlen);
void history_close(history *h);
const char *history_dir(const history *h);

/* Stores a take. t supplies every field but id/created/file (filled in on
 * success); pcm is planar [channels][n_samples]; codes are [n_codebooks][frames]
 * (may be NULL when n_codebooks or frames is 0). */
int history_add(history *h, struct history_take *t, const float *pcm, const int32_t *codes, char *err,
                size_t errlen);

/* Takes, newest first. filter: case-insensitive substring of prompt, name or
 * note (NULL or "" = all); favourites_only. *out is malloc'ed (free()). */
int history_list(history *h, const char *filter, int favourites_only, struct history_take **out, int *n,
                 char *err, size_t errlen);

/* HISTORY_NOT_FOUND when no take has that id. */
int history_get(history *h, int64_t id, struct history_take *out, char *err, size_t errlen);
int history_delete(history *h, int64_t id, char *err, size_t errlen);
int history_set_favourite(history *h, int64_t id, int favourite, char *err, size_t errlen);
int history_set_name(history *h, int64_t id, const char *name, const char *note, char *err, size_t errlen);

/* 1 when another connection (another instance) committed a change since the
 * last call, else 0; the first call returns 1. */
int history_changed(history *h);

/* The audio of a take as planar float (free()). */
int history_load_audio(history *h, const struct history_take *t, float **pcm, int *channels, int64_t *n,
                       int *rate, char *err, size_t errlen);
/* The codes of a take, [K][F] (free()). */
int history_load_codes(history *h, int64_t id, int32_t **codes, int *n_codebooks, int *frames, char *err,
                       size_t errlen);

/* Writes a take to an audio file (format by extension or given), with the
 * prompt and parameters in the metadata. */
int history_export(history *h, const struct history_take *t, const char *path, int format, char *err,
                   size_t errlen);

#endif
