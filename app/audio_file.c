/* audio_file.c - libsndfile writer/reader with atomic replacement (see audio_file.h). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/audio_file.h"
#include "app/util.h"

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when the bytes there
 * are not one (stray continuation byte, overlong form, surrogate, > U+10FFFF,
 * cut short). */
static int utf8_seq(const unsigned char *s)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	int n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
	for (int i = 1; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
	    (c == 0xF4 && s[1] > 0x8F))
		return 0;
	return n;
}

/* A copy of s with every byte that is not part of valid UTF-8 replaced by
 * U+FFFD: FLAC's Vorbis comments must be UTF-8, and libFLAC as called by
 * libsndfile crashes on a value that is not (a prompt is the user's bytes). */
static char *utf8_clean(const char *s)
{
	size_t len = strlen(s);
	char *out = malloc(3 * len + 1), *o = out;
	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		int n = utf8_seq(p);
		if (n) {
			memcpy(o, p, (size_t)n);
			o += n;
			p += n;
		} else {
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
			p++;
		}
	}
	*o = 0;
	return out;
}

int audio_format_parse(const char *name)
{
	if (!strcasecmp(name, "wav") || !strcasecmp(name, "wav16"))
		return AUDIO_FORMAT_WAV16;
	if (!strcasecmp(name, "wav24"))
		return AUDIO_FORMAT_WAV24;
	if (!strcasecmp(name, "wavf") || !strcasecmp(name, "float"))
		return AUDIO_FORMAT_WAVF;
	if (!strcasecmp(name, "flac"))
		return AUDIO_FORMAT_FLAC;
	if (!strcasecmp(name, "ogg"))
		return AUDIO_FORMAT_OGG;
	return -1;
}

const char *audio_format_ext(int format)
{
	switch (format) {
	case AUDIO_FORMAT_FLAC:
	case AUDIO_FORMAT_FLAC24:
		return "flac";
	case AUDIO_FORMAT_OGG:
		return "ogg";
	default:
		return "wav";
	}
}

int audio_format_for_path(const char *path, int wav_format, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');
	if (!dot) {
		snprintf(err, errlen, "%s has no extension: use .wav, .flac or .ogg", path);
		return -1;
	}
	if (!strcasecmp(dot, ".wav")) {
		if (wav_format == AUDIO_FORMAT_WAV24 || wav_format == AUDIO_FORMAT_WAVF)
			return wav_format;
		return AUDIO_FORMAT_WAV16;
	}
	if (!strcasecmp(dot, ".flac"))
		return AUDIO_FORMAT_FLAC;
	if (!strcasecmp(dot, ".ogg") || !strcasecmp(dot, ".oga"))
		return AUDIO_FORMAT_OGG;
	snprintf(err, errlen, "unknown audio file extension '%s' (use .wav, .flac or .ogg)", dot);
	return -1;
}

static int sf_format(int format)
{
	switch (format) {
	case AUDIO_FORMAT_WAV24:
		return SF_FORMAT_WAV | SF_FORMAT_PCM_24;
	case AUDIO_FORMAT_WAVF:
		return SF_FORMAT_WAV | SF_FORMAT_FLOAT;
	case AUDIO_FORMAT_FLAC:
		return SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
	case AUDIO_FORMAT_FLAC24:
		return SF_FORMAT_FLAC | SF_FORMAT_PCM_24;
	case AUDIO_FORMAT_OGG:
		return SF_FORMAT_OGG | SF_FORMAT_VORBIS;
	default:
		return SF_FORMAT_WAV | SF_FORMAT_PCM_16;
	}
}

static int meta_slot(const char *key)
{
	static const struct {
		const char *key;
		int slot;
	} slots[] = {
		{"title", SF_STR_TITLE},   {"comment", SF_STR_COMMENT}, {"software", SF_STR_SOFTWARE},
		{"artist", SF_STR_ARTIST}, {"date", SF_STR_DATE},       {"album", SF_STR_ALBUM},
		{"genre", SF_STR_GENRE},
	};
	for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
		if (!strcmp(key, slots[i].key))
			return slots[i].slot;
	return -1;
}

int audio_file_write(const char *path, int format, const float *pcm, int channels, int64_t n, int rate,
                     const struct audio_meta *meta, int n_meta, char *err, size_t errlen)
{
	if (channels < 1 || channels > 8 || n < 0 || rate < 1) {
		snprintf(err, errlen, "cannot write %s: %d channels, %lld samples at %d Hz is not audio", path,
		         channels, (long long)n, rate);
		return -1;
	}
	if (format == AUDIO_FORMAT_AUTO) {
		format = audio_format_for_path(path, 0, err, errlen);
		if (format < 0)
			return -1;
	}
	SF_INFO info = {.samplerate = rate, .channels = channels, .format = sf_format(format)};
	if (!sf_format_check(&info)) {
		snprintf(err, errlen, "cannot write %s: libsndfile refuses %s with %d channels at %d Hz", path,
		         audio_format_ext(format), channels, rate);
		return -1;
	}
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a temporary file beside %s: %s", path, strerror(errno));
		return -1;
	}
	SNDFILE *sf = sf_open_fd(fd, SFM_WRITE, &info, 0);
	if (!sf) {
		snprintf(err, errlen, "cannot write %s: %s", path, sf_strerror(NULL));
		close(fd);
		unlink(tmp);
		return -1;
	}
	sf_command(sf, SFC_SET_CLIPPING, NULL, SF_TRUE);
	for (int i = 0; i < n_meta; i++) {
		int slot = meta_slot(meta[i].key);
		if (slot >= 0 && meta[i].value && *meta[i].value) {
			char *v = utf8_clean(meta[i].value);
			if (v)
				sf_set_string(sf, slot, v);
			free(v);
		}
	}
	/* Interleave in blocks. */
	enum { BLOCK = 4096 };
	float *buf = malloc(sizeof(float) * BLOCK * (size_t)channels);
	int rc = buf ? 0 : -1;
	if (!buf)
		snprintf(err, errlen, "out of memory writing %s", path);
	for (int64_t at = 0; rc == 0 && at < n; at += BLOCK) {
		int64_t len = n - at < BLOCK ? n - at : BLOCK;
		for (int64_t i = 0; i < len; i++)
			for (int c = 0; c < channels; c++)
				buf[i * channels + c] = pcm[(int64_t)c * n + at + i];
		if (sf_writef_float(sf, buf, len) != len) {
			snprintf(err, errlen, "cannot write %s: %s", path, sf_strerror(sf));
			rc = -1;
		}
	}
	free(buf);
	if (sf_close(sf) != 0 && rc == 0) {
		snprintf(err, errlen, "cannot finish %s", path);
		rc = -1;
	}
	if (rc == 0 && (fchmod(fd, 0644) != 0 || fsync(fd) != 0)) {
		snprintf(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
		rc = -1;
	}
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		rc = -1;
	}
	if (rc != 0) {
		unlink(tmp);
		return -1;
	}
	fsync_parent(path);
	return 0;
}

int audio_file_read(const char *path, float **pcm, int *channels, int64_t *n, int *rate, char *err,
                    size_t errlen)
{
	SF_INFO info;
	memset(&info, 0, sizeof info);
	SNDFILE *sf = sf_open(path, SFM_READ, &info);
	if (!sf) {
		snprintf(err, errlen, "cannot read %s: %s", path, sf_strerror(NULL));
		return -1;
	}
	int64_t frames = info.frames;
	int ch = info.channels;
	float *inter = malloc(sizeof(float) * (size_t)(frames > 0 ? frames : 1) * (size_t)ch);
	float *out = malloc(sizeof(float) * (size_t)(frames > 0 ? frames : 1) * (size_t)ch);
	if (!inter || !out) {
		free(inter);
		free(out);
		sf_close(sf);
		snprintf(err, errlen, "out of memory reading %s", path);
		return -1;
	}
	sf_count_t got = sf_readf_float(sf, inter, frames);
	sf_close(sf);
	if (got != frames) {
		free(inter);
		free(out);
		snprintf(err, errlen, "%s is shorter than its header says (%lld of %lld frames)", path,
		         (long long)got, (long long)frames);
		return -1;
	}
	for (int64_t i = 0; i < frames; i++)
		for (int c = 0; c < ch; c++)
			out[(int64_t)c * frames + i] = inter[i * ch + c];
	free(inter);
	*pcm = out;
	*channels = ch;
	*n = frames;
	*rate = info.samplerate;
	return 0;
}
