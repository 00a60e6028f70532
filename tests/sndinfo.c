/* sndinfo.c - prints what libsndfile reads in an audio file, for the shell
 * tests: "FRAMES RATE CHANNELS MAJOR SUB" (format names), or an error. */
#include "autoconfig.h"

#include <sndfile.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: sndinfo FILE\n");
		return 2;
	}
	SF_INFO info = {0};
	SNDFILE *sf = sf_open(argv[1], SFM_READ, &info);
	if (!sf) {
		fprintf(stderr, "sndinfo: %s: %s\n", argv[1], sf_strerror(NULL));
		return 1;
	}
	int major = info.format & SF_FORMAT_TYPEMASK, sub = info.format & SF_FORMAT_SUBMASK;
	printf("%lld %d %d %s %s\n", (long long)info.frames, info.samplerate, info.channels,
	       major == SF_FORMAT_WAV ? "wav" : major == SF_FORMAT_FLAC ? "flac" : major == SF_FORMAT_OGG ? "ogg" : "other",
	       sub == SF_FORMAT_PCM_16 ? "pcm16" : sub == SF_FORMAT_PCM_24 ? "pcm24" : sub == SF_FORMAT_FLOAT ? "float" : "other");
	sf_close(sf);
	return 0;
}
