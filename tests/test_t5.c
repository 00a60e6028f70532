/* test_t5.c - the T5 encoder and the encoder->decoder projection against the
 * Hugging Face states of tiny-a (fixtures/tiny-a/text), the relative
 * position buckets against SPEC-t5's table, and row independence. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/musicgen.h"
#include "engine/t5.h"
#include "tests/gen_fixture.h"

static void test_buckets(void)
{
	/* SPEC-t5 §3: the non-directional part for 32 buckets, max distance 128. */
	static const struct { int lo, hi, b; } tab[] = {
		{0, 7, -1}, {8, 11, 8}, {12, 15, 9}, {16, 22, 10}, {23, 31, 11},
		{32, 45, 12}, {46, 63, 13}, {64, 90, 14}, {91, 500, 15},
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		for (int n = tab[i].lo; n <= tab[i].hi; n++) {
			int want = tab[i].b < 0 ? n : tab[i].b;
			if (mg_t5_bucket(-n, 32, 128) != want || mg_t5_bucket(n, 32, 128) != (n ? want + 16 : 0)) {
				if (!bad)
					tap_diag("bucket mismatch at distance %d: %d / %d, want %d", n, mg_t5_bucket(-n, 32, 128),
					         mg_t5_bucket(n, 32, 128), want);
				bad++;
			}
		}
	tap_ok(!bad, "relative position buckets follow SPEC-t5's table (both directions)");
}

int main(void)
{
	const char *ref = tap_require_ref();
	char dir[4200], err[512];
	test_buckets();
	snprintf(dir, sizeof dir, "%s/models/tiny-a", ref);
	mg_config cfg;
	st_set *w = NULL;
	if (!tap_ok(!mg_config_load(&cfg, dir, err, sizeof err), "config of tiny-a") ||
	    !tap_ok(!st_open(&w, dir, err, sizeof err), "weights of tiny-a")) {
		tap_diag("%s", err);
		return tap_done();
	}
	mg_t5 t5;
	mg_decoder dec;
	if (!tap_ok(!mg_t5_bind(&t5, w, &cfg.t5, MG_WEIGHTS_F32, err, sizeof err), "bind the text encoder") ||
	    !tap_ok(!mg_decoder_bind(&dec, w, &cfg, MG_WEIGHTS_F32, err, sizeof err), "bind the decoder")) {
		tap_diag("%s", err);
		return tap_done();
	}
	mg_pool *pool = mg_pool_new(2);
	st_set *fx = fx_open(ref, "text");
	int64_t n_ids, n_h, n_p;
	int32_t *ids = fx_ints(fx, "input_ids", &n_ids), *mask = fx_ints(fx, "attention_mask", NULL);
	float *hs = fx_floats(fx, "t5_hidden_states", &n_h), *proj = fx_floats(fx, "encoder_hidden_states_projected", &n_p);
	float *last = fx_floats(fx, "t5_last_hidden_state", NULL);
	if (!ids || !mask || !hs || !proj || !last)
		return tap_done();
	const st_tensor *it = st_find(fx, "input_ids");
	int B = (int)it->shape[0], S = (int)it->shape[1], D = cfg.t5.d_model, Dd = cfg.dec.hidden_size;
	int NL = cfg.t5.num_layers;
	size_t nx = (size_t)B * S * D;
	tap_ok(n_h == (int64_t)(NL + 1) * (int64_t)nx, "fixture holds %d hidden-state sets", NL + 1);
	float *out = malloc(nx * sizeof(float)), *hid = malloc((NL + 1) * nx * sizeof(float));
	float *enc = malloc((size_t)B * S * Dd * sizeof(float));
	if (!tap_ok(!mg_t5_encode(&t5, pool, ids, mask, B, S, out, hid, err, sizeof err), "encode %d prompts", B))
		tap_diag("%s", err);
	for (int l = 0; l <= NL; l++) {
		char what[64];
		snprintf(what, sizeof what, l < NL ? "T5 input of block %d" : "T5 final output (after block %d)", l);
		fx_close(hid + (size_t)l * nx, hs + (size_t)l * nx, nx, what);
	}
	fx_close(out, last, nx, "T5 last_hidden_state");
	mg_decoder_project(&dec, pool, out, mask, B, S, enc);
	fx_close(enc, proj, (size_t)n_p, "projected and masked encoder states");
	int zero = 1;
	for (int b = 0; b < B; b++)
		for (int s = 0; s < S; s++)
			if (!mask[b * S + s])
				for (int j = 0; j < Dd; j++)
					zero &= enc[((size_t)b * S + s) * Dd + j] == 0.0f;
	tap_ok(zero, "padded positions project to exactly 0");

	/* Each prompt alone, unpadded, gives bit-identical states on its tokens. */
	int same = 1;
	for (int b = 0; b < B; b++) {
		int len = 0;
		while (len < S && mask[b * S + len])
			len++;
		float *o1 = malloc((size_t)len * D * sizeof(float));
		if (mg_t5_encode(&t5, pool, ids + b * S, mask + b * S, 1, len, o1, NULL, err, sizeof err) ||
		    memcmp(o1, out + (size_t)b * S * D, (size_t)len * D * sizeof(float)))
			same = 0;
		free(o1);
	}
	tap_ok(same, "a prompt alone encodes bit-identically to the same prompt in a padded batch");

	int32_t bad_id = cfg.t5.vocab_size, one = 1;
	tap_ok(mg_t5_encode(&t5, pool, &bad_id, &one, 1, 1, out, NULL, err, sizeof err) != 0 &&
	           strstr(err, "vocabulary"),
	       "a token id outside the vocabulary is refused: %s", err);

	free(ids), free(mask), free(hs), free(proj), free(last), free(out), free(hid), free(enc);
	st_close(fx);
	mg_t5_free(&t5);
	mg_decoder_free(&dec);
	mg_pool_free(pool);
	st_close(w);
	return tap_done();
}
