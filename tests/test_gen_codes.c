/* test_gen_codes.c - the generation loop (T5 -> projection -> decoder with
 * the delay pattern, guidance and greedy choice) against Hugging Face's
 * greedy generate() on tiny-a (per-step scores and codes) and on the test
 * models of other shapes in tests/data (3 codebooks at 24 kHz; stereo). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/musicgen.h"
#include "engine/t5.h"
#include "tests/gen_fixture.h"

typedef struct model {
	mg_config cfg;
	st_set *w;
	mg_t5 t5;
	mg_decoder dec;
} model;

static int load(model *m, const char *dir)
{
	char err[512];
	memset(m, 0, sizeof *m);
	if (mg_config_load(&m->cfg, dir, err, sizeof err) || st_open(&m->w, dir, err, sizeof err) ||
	    mg_t5_bind(&m->t5, m->w, &m->cfg.t5, MG_WEIGHTS_F32, err, sizeof err) ||
	    mg_decoder_bind(&m->dec, m->w, &m->cfg, MG_WEIGHTS_F32, err, sizeof err)) {
		tap_ok(0, "load %s: %s", dir, err);
		return -1;
	}
	return 0;
}

static void unload(model *m)
{
	mg_t5_free(&m->t5);
	mg_decoder_free(&m->dec);
	st_close(m->w);
}

/* T5 + projection of ids/mask [B][S] -> enc [B][S][hidden]. */
static float *condition(model *m, mg_pool *pool, const int32_t *ids, const int32_t *mask, int B, int S)
{
	char err[512];
	float *h = malloc((size_t)B * S * m->cfg.t5.d_model * sizeof(float));
	float *enc = malloc((size_t)B * S * m->cfg.dec.hidden_size * sizeof(float));
	if (mg_t5_encode(&m->t5, pool, ids, mask, B, S, h, NULL, err, sizeof err)) {
		tap_ok(0, "encode: %s", err);
		free(h);
		free(enc);
		return NULL;
	}
	mg_decoder_project(&m->dec, pool, h, mask, B, S, enc);
	free(h);
	return enc;
}

/* Generates greedily and compares the codes with want [B][K][F]. */
static int32_t *run(model *m, mg_pool *pool, const char *what, const float *enc, const int32_t *mask, int B, int S,
                    float g, int frames, const int32_t *want, float *scores)
{
	char err[512];
	int K = m->cfg.dec.num_codebooks, ch = m->cfg.dec.audio_channels;
	mg_gen_request r = {
		.B = B, .steps = mg_steps_for_frames(frames, K, ch), .enc = enc, .mask = mask, .S = S,
		.guidance = g, .scores_out = scores,
	};
	int32_t *codes = malloc((size_t)B * K * frames * sizeof *codes);
	int rc = mg_musicgen_generate(&m->dec, pool, &r, codes, err, sizeof err);
	if (rc)
		tap_diag("%s", err);
	if (want) {
		size_t n = (size_t)B * K * frames, same = 0;
		for (size_t i = 0; i < n; i++)
			same += codes[i] == want[i];
		tap_ok(!rc && same == n, "%s: greedy codes identical to HF's (%zu of %zu)", what, same, n);
	}
	return codes;
}

static void tiny_a(const char *ref, mg_pool *pool)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/models/tiny-a", ref);
	model m;
	if (load(&m, dir))
		return;
	st_set *tx = fx_open(ref, "text");
	int32_t *ids = fx_ints(tx, "input_ids", NULL), *mask = fx_ints(tx, "attention_mask", NULL);
	if (!ids || !mask)
		return;
	int B = (int)st_find(tx, "input_ids")->shape[0], S = (int)st_find(tx, "input_ids")->shape[1];
	int K = m.cfg.dec.num_codebooks, V = m.cfg.dec.vocab_size;
	float *enc = condition(&m, pool, ids, mask, B, S);
	static const struct { const char *name; float g; int uncond; } cases[] = {
		{"gen_cfg3_greedy", 3.0f, 0}, {"gen_noguide_greedy", 1.0f, 0}, {"gen_unconditional_greedy", 1.0f, 1},
	};
	for (size_t c = 0; c < 3 && enc; c++) {
		st_set *fx = fx_open(ref, cases[c].name);
		int64_t nc, ns;
		int32_t *want = fx_ints(fx, "codes", &nc);
		float *ref_scores = fx_floats(fx, "scores", &ns);
		if (!want || !ref_scores)
			continue;
		const st_tensor *ct = st_find(fx, "codes");
		int nb = (int)ct->shape[1], F = (int)ct->shape[3];
		int steps = mg_steps_for_frames(F, K, 1);
		float *scores = malloc((size_t)steps * nb * K * V * sizeof(float));
		int32_t *codes = run(&m, pool, cases[c].name, cases[c].uncond ? NULL : enc, mask, nb, S, cases[c].g, F,
		                     want, scores);
		char what[128];
		snprintf(what, sizeof what, "%s: per-step scores", cases[c].name);
		fx_close(scores, ref_scores, (size_t)ns, what);
		free(codes), free(scores), free(want), free(ref_scores);
		st_close(fx);
	}
	/* Batch invariance: prompt 2 alone equals prompt 2 inside the batch, bit for bit. */
	if (enc) {
		int F = 9;
		float *s_all = malloc((size_t)mg_steps_for_frames(F, K, 1) * B * K * V * sizeof(float));
		float *s_one = malloc((size_t)mg_steps_for_frames(F, K, 1) * K * V * sizeof(float));
		int32_t *all = run(&m, pool, "batch", enc, mask, B, S, 3.0f, F, NULL, s_all);
		int32_t *one = run(&m, pool, "alone", enc + (size_t)2 * S * m.cfg.dec.hidden_size, mask + 2 * S, 1, S, 3.0f,
		                   F, NULL, s_one);
		int same = !memcmp(one, all + (size_t)2 * K * F, (size_t)K * F * sizeof(int32_t));
		for (int s = 0; s < mg_steps_for_frames(F, K, 1); s++)
			same &= !memcmp(s_one + (size_t)s * K * V, s_all + ((size_t)s * B + 2) * K * V, (size_t)K * V * sizeof(float));
		tap_ok(same, "a prompt alone gives the same codes and bit-identical scores as inside a batch of %d", B);
		free(all), free(one), free(s_all), free(s_one);
	}
	/* A take longer than the window is refused cleanly. */
	{
		char err[512];
		mg_gen_request r = {.B = 1, .steps = m.dec.n_pos, .guidance = 1.0f};
		int32_t dummy[1];
		int rc = mg_musicgen_generate(&m.dec, pool, &r, dummy, err, sizeof err);
		tap_ok(rc == 4 /* MG_ERR_PARAM */ && strstr(err, "window"), "a take longer than one window is refused: %s",
		       err);
	}
	free(enc), free(ids), free(mask);
	st_close(tx);
	unload(&m);
}

/* The test models of other shapes (tests/data/tinyb, tinyc). */
static void other_shape(const char *name, mg_pool *pool)
{
	const char *top = getenv("MG_TOP_SRCDIR");
	char dir[4200], refp[4300];
	snprintf(dir, sizeof dir, "%s/tests/data/%s", top && *top ? top : ".", name);
	snprintf(refp, sizeof refp, "%s/tests/data/%s-refs.safetensors", top && *top ? top : ".", name);
	model m;
	st_set *fx = NULL;
	char err[512];
	if (st_open(&fx, refp, err, sizeof err)) {
		tap_skip("%s: %s", name, err);
		return;
	}
	if (load(&m, dir)) {
		st_close(fx);
		return;
	}
	int64_t nh;
	int32_t *ids = fx_ints(fx, "input_ids", NULL), *mask = fx_ints(fx, "attention_mask", NULL);
	float *t5ref = fx_floats(fx, "t5_last_hidden_state", &nh);
	int B = (int)st_find(fx, "input_ids")->shape[0], S = (int)st_find(fx, "input_ids")->shape[1];
	float *h = malloc((size_t)nh * sizeof(float));
	char what[128];
	if (!mg_t5_encode(&m.t5, pool, ids, mask, B, S, h, NULL, err, sizeof err)) {
		snprintf(what, sizeof what, "%s: T5 output", name);
		fx_close(h, t5ref, (size_t)nh, what);
	}
	float *enc = condition(&m, pool, ids, mask, B, S);
	static const struct { const char *tag; float g; int uncond; } cases[] = {
		{"cfg3", 3.0f, 0}, {"noguide", 1.0f, 0}, {"uncond", 1.0f, 1},
	};
	for (int c = 0; c < 3 && enc; c++) {
		char key[64];
		snprintf(key, sizeof key, "%s_codes", cases[c].tag);
		int32_t *want = fx_ints(fx, key, NULL);
		if (!want)
			continue;
		const st_tensor *ct = st_find(fx, key);
		snprintf(what, sizeof what, "%s %s", name, cases[c].tag);
		free(run(&m, pool, what, cases[c].uncond ? NULL : enc, mask, (int)ct->shape[0], S, cases[c].g,
		         (int)ct->shape[2], want, NULL));
		free(want);
	}
	free(ids), free(mask), free(t5ref), free(h), free(enc);
	st_close(fx);
	unload(&m);
}

int main(void)
{
	const char *ref = tap_require_ref();
	mg_pool *pool = mg_pool_new(2);
	tiny_a(ref, pool);
	other_shape("tinyb", pool);
	other_shape("tinyc", pool);
	mg_pool_free(pool);
	return tap_done();
}
