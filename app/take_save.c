/* take_save.c - mg_take -> history rows (see take_save.h). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/take_save.h"
#include "app/util.h"

int take_save_all(history *h, const mg_take *take, const mg_params *p, const mg_model_info *info, double duration,
                  double total_seconds, int64_t *ids, int max_ids, int *n_saved, char *err, size_t errlen)
{
	*n_saved = 0;
	struct history_take *t = calloc(1, sizeof *t);
	if (!t) {
		snprintf(err, errlen, "out of memory saving takes");
		return -1;
	}
	int count = p->count > 0 ? p->count : 1;
	size_t per_take_pcm = (size_t)take->channels * (size_t)take->n_samples;
	size_t per_take_codes = (size_t)take->n_codebooks * (size_t)take->n_frames;
	int rc = 0;
	for (int b = 0; b < take->n_takes; b++) {
		memset(t, 0, sizeof *t);
		int prompt = b / count;
		str_copy_utf8(t->prompt, sizeof t->prompt, p->n_prompts > 0 && prompt < p->n_prompts ? p->prompts[prompt] : "");
		t->duration = duration;
		t->frames = take->n_frames;
		t->guidance = p->guidance;
		t->temperature = p->temperature;
		t->top_k = p->top_k;
		t->top_p = p->top_p;
		t->seed = take->seeds ? take->seeds[b] : p->seed + (uint64_t)(b % count);
		t->greedy = p->greedy;
		t->take_index = b % count;
		t->take_count = count;
		str_copy_utf8(t->model, sizeof t->model, info->id ? info->id : "");
		str_copy_utf8(t->model_rev, sizeof t->model_rev, info->revision ? info->revision : "");
		str_copy_utf8(t->backend, sizeof t->backend, info->backend ? info->backend : "");
		t->sample_rate = take->sample_rate;
		t->channels = take->channels;
		t->n_samples = take->n_samples;
		t->n_codebooks = take->n_codebooks;
		t->t5_seconds = take->t5_seconds;
		t->decode_seconds = take->decode_seconds;
		t->encodec_seconds = take->encodec_seconds;
		t->total_seconds = total_seconds;
		if (history_add(h, t, take->pcm + (size_t)b * per_take_pcm, take->codes + (size_t)b * per_take_codes, err,
		                errlen)) {
			rc = -1;
			break;
		}
		if (ids && *n_saved < max_ids)
			ids[*n_saved] = t->id;
		(*n_saved)++;
	}
	free(t);
	return rc;
}
