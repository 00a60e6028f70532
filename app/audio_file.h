/* audio_file.h - writing and reading audio files with libsndfile.
 *
 * Formats: WAV 16-bit PCM (samples clipped to [-1, 1], the default), WAV
 * 24-bit PCM, WAV 32-bit float, FLAC (16-bit) and Ogg Vorbis. The format
 * follows the file name's extension (.wav .flac .ogg/.oga; anything else is
 * refused) unless one is given. Files are written to a temporary name in the
 * target directory, fsynced and renamed: a crash never leaves half a file
 * under the real name. */
#ifndef MG_AUDIO_FILE_H
#define MG_AUDIO_FILE_H

#include <stddef.h>
#include <stdint.h>

enum audio_format {
	AUDIO_FORMAT_AUTO = 0, /* from the extension; .wav means WAV 16-bit */
	AUDIO_FORMAT_WAV16,
	AUDIO_FORMAT_WAV24,
	AUDIO_FORMAT_WAVF,
	AUDIO_FORMAT_FLAC,
	AUDIO_FORMAT_OGG,
	AUDIO_FORMAT_FLAC24, /* FLAC 24-bit: the history's own copies */
};

/* One metadata string. Keys: title, comment, software, artist, date, album,
 * genre (libsndfile's string slots; FLAC/OGG store them as Vorbis comments,
 * WAV in its INFO chunk). */
struct audio_meta {
	const char *key;
	const char *value;
};

/* "wav", "wav16", "wav24", "wavf", "flac" or "ogg" -> format; -1 if unknown. */
int audio_format_parse(const char *name);
/* The format a path's extension names, with wav_format for ".wav" (0: 16-bit);
 * -1 with a message naming the extension when none fits. */
int audio_format_for_path(const char *path, int wav_format, char *err, size_t errlen);
/* The usual extension of a format, without the dot. */
const char *audio_format_ext(int format);

/* Writes planar float PCM (pcm[c * n + i], channels x n) at rate to path.
 * format AUDIO_FORMAT_AUTO: by extension. */
int audio_file_write(const char *path, int format, const float *pcm, int channels, int64_t n, int rate,
                     const struct audio_meta *meta, int n_meta, char *err, size_t errlen);

/* Reads a file into newly allocated planar float PCM (free() it). */
int audio_file_read(const char *path, float **pcm, int *channels, int64_t *n, int *rate, char *err,
                    size_t errlen);

#endif
