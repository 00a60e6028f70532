/* history_fill.c - adds takes with synthetic audio to a history directory,
 * for the shell tests of the history screen:
 * history_fill DIR PROMPT... (one 1-second 32 kHz take per prompt, seeds 101, 102, ...). */
#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/history.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: history_fill DIR PROMPT...\n");
		return 2;
	}
	char err[1024];
	history *h;
	if (history_open(&h, argv[1], err, sizeof err)) {
		fprintf(stderr, "history_fill: %s\n", err);
		return 1;
	}
	enum { RATE = 32000, FRAMES = 50, K = 4 };
	float *pcm = malloc(sizeof(float) * RATE);
	int32_t *codes = calloc(K * FRAMES, sizeof(int32_t));
	int rc = 0;
	for (int i = 2; i < argc && rc == 0; i++) {
		struct history_take *t = calloc(1, sizeof *t);
		for (int s = 0; s < RATE; s++)
			pcm[s] = 0.4f * sinf(2 * 3.14159265f * (220.0f * (float)(i - 1)) * (float)s / RATE);
		snprintf(t->prompt, sizeof t->prompt, "%s", argv[i]);
		t->duration = 1.0;
		t->frames = FRAMES;
		t->guidance = 3;
		t->temperature = 1;
		t->top_k = 250;
		t->top_p = 1;
		t->seed = 100 + (uint64_t)(i - 1);
		t->take_count = 1;
		snprintf(t->model, sizeof t->model, "test/fill");
		snprintf(t->backend, sizeof t->backend, "cpu");
		t->sample_rate = RATE;
		t->channels = 1;
		t->n_samples = RATE;
		t->n_codebooks = K;
		if (history_add(h, t, pcm, codes, err, sizeof err)) {
			fprintf(stderr, "history_fill: %s\n", err);
			rc = 1;
		}
		free(t);
	}
	free(pcm);
	free(codes);
	history_close(h);
	return rc;
}
