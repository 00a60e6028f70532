/* test_audio_file.c - writing and reading WAV/FLAC/OGG with libsndfile. */
#include "autoconfig.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/audio_file.h"
#include "tests/tap.h"

int main(void)
{
	char tmp[] = "/tmp/mg-audio-XXXXXX", path[512], err[512];
	if (!mkdtemp(tmp))
		return 1;
	enum { N = 12345, CH = 2, RATE = 24000 };
	float *pcm = malloc(sizeof(float) * N * CH);
	for (int c = 0; c < CH; c++)
		for (int i = 0; i < N; i++)
			pcm[c * N + i] = (c ? 0.25f : 0.5f) * sinf(2 * 3.14159265f * 440 * i / RATE);
	pcm[100] = 1.7f; /* must clip, not wrap */
	pcm[101] = -3.0f;

	tap_ok(audio_format_for_path("a/b.WAV", 0, err, sizeof err) == AUDIO_FORMAT_WAV16, "WAV default is 16-bit");
	tap_ok(audio_format_for_path("b.flac", 0, err, sizeof err) == AUDIO_FORMAT_FLAC, ".flac");
	tap_ok(audio_format_for_path("b.ogg", 0, err, sizeof err) == AUDIO_FORMAT_OGG, ".ogg");
	tap_ok(audio_format_for_path("b.wav", AUDIO_FORMAT_WAV24, err, sizeof err) == AUDIO_FORMAT_WAV24, "wav24 by choice");
	tap_ok(audio_format_for_path("b.mp3", 0, err, sizeof err) < 0 && strstr(err, ".mp3"), "mp3 refused: %s", err);
	tap_ok(audio_format_for_path("dir.x/b", 0, err, sizeof err) < 0, "no extension refused: %s", err);

	const struct audio_meta meta[] = {{"title", "a test prompt"}, {"comment", "seed 42"}};
	const char *exts[] = {"wav", "flac", "ogg"};
	for (int e = 0; e < 3; e++) {
		snprintf(path, sizeof path, "%s/t.%s", tmp, exts[e]);
		int rc = audio_file_write(path, AUDIO_FORMAT_AUTO, pcm, CH, N, RATE, meta, 2, err, sizeof err);
		tap_ok(rc == 0, "write %s%s%s", exts[e], rc ? ": " : "", rc ? err : "");
		SF_INFO info = {0};
		SNDFILE *sf = sf_open(path, SFM_READ, &info);
		tap_ok(sf && info.frames == N && info.channels == CH && info.samplerate == RATE, "%s reads back: %lld frames, %d ch, %d Hz",
		       exts[e], (long long)info.frames, info.channels, info.samplerate);
		const char *title = sf ? sf_get_string(sf, SF_STR_TITLE) : NULL;
		tap_ok(title && !strcmp(title, "a test prompt"), "%s title metadata: %s", exts[e], title ? title : "(none)");
		if (sf)
			sf_close(sf);
	}
	snprintf(path, sizeof path, "%s/t.wav", tmp);
	float *back;
	int ch, rate;
	int64_t n;
	tap_ok(audio_file_read(path, &back, &ch, &n, &rate, err, sizeof err) == 0 && n == N && ch == CH, "read planar");
	double maxerr = 0;
	for (int c = 0; c < CH; c++)
		for (int i = 200; i < N; i++)
			maxerr = fmax(maxerr, fabs(back[c * N + i] - pcm[c * N + i]));
	tap_ok(maxerr < 1.0 / 16384, "16-bit round trip within quantisation (max error %.2g)", maxerr);
	tap_ok(back[100] > 0.99f && back[100] <= 1.0f && back[101] < -0.99f, "out-of-range samples are clipped (%g, %g)",
	       back[100], back[101]);
	free(back);

	snprintf(path, sizeof path, "%s/t24.wav", tmp);
	tap_ok(audio_file_write(path, AUDIO_FORMAT_WAV24, pcm, CH, N, RATE, NULL, 0, err, sizeof err) == 0 &&
	               audio_file_read(path, &back, &ch, &n, &rate, err, sizeof err) == 0,
	       "24-bit WAV");
	maxerr = 0;
	for (int i = 200; i < N; i++)
		maxerr = fmax(maxerr, fabs(back[i] - pcm[i]));
	tap_ok(maxerr < 1e-6, "24-bit round trip (max error %.2g)", maxerr);
	free(back);

	snprintf(path, sizeof path, "%s/missing-dir/x.wav", tmp);
	tap_ok(audio_file_write(path, 0, pcm, CH, N, RATE, NULL, 0, err, sizeof err) != 0 && strstr(err, "missing-dir"),
	       "unwritable directory reported: %s", err);
	snprintf(path, sizeof path, "%s/x.wav", tmp);
	tap_ok(audio_file_write(path, 0, pcm, 0, N, RATE, NULL, 0, err, sizeof err) != 0, "zero channels refused: %s", err);
	tap_ok(audio_file_read(path, &back, &ch, &n, &rate, err, sizeof err) != 0, "reading a missing file fails: %s", err);

	char cmd[600];
	snprintf(cmd, sizeof cmd, "ls -a %s | grep -q tmp-", tmp);
	tap_ok(system(cmd) != 0, "no temporary files left behind");
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmp);
	free(pcm);
	return tap_done();
}
