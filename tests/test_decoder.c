/* test_decoder.c - the MusicGen decoder against Hugging Face's teacher-forced
 * run of tiny-a (fixtures/tiny-a/decoder_tf): per-layer states, logits in one
 * pass and step by step through the KV cache, the conditional/null pair and
 * the guided logits; the delay pattern against HF's masks and SPEC examples. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/musicgen.h"
#include "tests/gen_fixture.h"

static void test_pattern_examples(void)
{
	/* SPEC-decoder §5: K=4, L=8, no prompt. */
	static const char *want[4] = {"P----PPP", "PP----PP", "PPP----P", "PPPP----"};
	int32_t seq0[4] = {9, 9, 9, 9}, pat[4 * 8];
	int first, ok = 1;
	mg_delay_pattern(seq0, 1, 4, 1, 1, 8, 9, pat, &first);
	for (int k = 0; k < 4; k++)
		for (int j = 0; j < 8; j++)
			ok &= (want[k][j] == 'P') == (pat[k * 8 + j] == 9) && (want[k][j] == '-') == (pat[k * 8 + j] == -1);
	tap_ok(ok && first == 1, "delay pattern K=4 L=8 matches SPEC-decoder's example (first = %d)", first);
	/* L < 2K - 1: no delay at all. */
	mg_delay_pattern(seq0, 1, 4, 1, 1, 6, 9, pat, &first);
	ok = first == 1;
	for (int i = 0; i < 4 * 6; i++)
		ok &= pat[i] == -1;
	tap_ok(ok, "L < 2K-1 builds no delay pattern (everything free)");
	tap_ok(mg_frames_for_steps(5, 4, 1) == 5 && mg_frames_for_steps(20, 4, 1) == 17 &&
	           mg_frames_for_steps(12, 8, 2) == 9 && mg_steps_for_frames(17, 4, 1) == 20,
	       "frame arithmetic: 5 steps -> 5 frames, 20 -> 17, stereo 12 -> 9");
	/* Stereo: codebook pairs share a delay. */
	int32_t s8[8], p8[8 * 10];
	for (int i = 0; i < 8; i++)
		s8[i] = 5;
	mg_delay_pattern(s8, 1, 8, 2, 1, 10, 5, p8, &first);
	ok = 1;
	for (int k = 0; k < 8; k += 2)
		ok &= !memcmp(p8 + k * 10, p8 + (k + 1) * 10, 10 * sizeof(int32_t));
	ok &= p8[2 * 10 + 1] == 5 && p8[2 * 10 + 2] == -1 && p8[6 * 10 + 9] == -1 && p8[6 * 10 + 3] == 5;
	tap_ok(ok, "stereo delay pattern: rows 2c and 2c+1 delayed by c");
}

static void test_pattern_fixture(const char *ref, const char *name)
{
	st_set *fx = fx_open(ref, name);
	int64_t n;
	int32_t *want = fx_ints(fx, "delay_pattern_mask", &n);
	if (!want) {
		st_close(fx);
		return;
	}
	const st_tensor *t = st_find(fx, "delay_pattern_mask");
	int rows = (int)t->shape[0], L = (int)t->shape[1], K = 4, B = rows / K, first;
	int32_t *seq0 = malloc((size_t)rows * sizeof *seq0), *pat = malloc((size_t)n * sizeof *pat);
	for (int i = 0; i < rows; i++)
		seq0[i] = 64;
	mg_delay_pattern(seq0, B, K, 1, 1, L, 64, pat, &first);
	tap_ok(!memcmp(pat, want, (size_t)n * sizeof *pat) && first == 1, "%s: delay pattern identical to HF's", name);
	free(seq0), free(pat), free(want);
	st_close(fx);
}

int main(void)
{
	const char *ref = tap_require_ref();
	char dir[4200], err[512];
	test_pattern_examples();
	test_pattern_fixture(ref, "gen_cfg3_greedy");
	test_pattern_fixture(ref, "gen_unconditional_greedy");
	snprintf(dir, sizeof dir, "%s/models/tiny-a", ref);
	mg_config cfg;
	st_set *w = NULL;
	mg_decoder dec;
	if (!tap_ok(!mg_config_load(&cfg, dir, err, sizeof err), "config of tiny-a") ||
	    !tap_ok(!st_open(&w, dir, err, sizeof err), "weights of tiny-a") ||
	    !tap_ok(!mg_decoder_bind(&dec, w, &cfg, MG_WEIGHTS_F32, err, sizeof err), "bind the decoder")) {
		tap_diag("%s", err);
		return tap_done();
	}
	/* The stored position table equals the computed one to ~1 ulp. */
	float *pe = malloc((size_t)dec.n_pos * cfg.dec.hidden_size * sizeof(float));
	mg_sinusoids(dec.n_pos, cfg.dec.hidden_size, pe);
	double pe_err = 0;
	for (size_t i = 0; i < (size_t)dec.n_pos * cfg.dec.hidden_size; i++)
		if (fabs(pe[i] - dec.pos[i]) > pe_err)
			pe_err = fabs(pe[i] - dec.pos[i]);
	tap_diag("computed vs stored sinusoid table: max abs difference %.3g", pe_err);
	tap_ok(pe_err < 2e-4, "computed sinusoids agree with the stored table");
	free(pe);

	mg_pool *pool = mg_pool_new(2);
	st_set *tx = fx_open(ref, "text"), *fx = fx_open(ref, "decoder_tf");
	int64_t n_logits, n_hid, n_pair;
	int32_t *mask = fx_ints(tx, "attention_mask", NULL), *ids = fx_ints(fx, "decoder_input_ids", NULL);
	float *enc = fx_floats(tx, "encoder_hidden_states_projected", NULL);
	float *ref_logits = fx_floats(fx, "logits", &n_logits), *ref_hid = fx_floats(fx, "decoder_hidden_states", &n_hid);
	float *ref_pair = fx_floats(fx, "logits_cfg_pair", &n_pair), *ref_guided = fx_floats(fx, "logits_guided", NULL);
	if (!mask || !ids || !enc || !ref_logits || !ref_hid || !ref_pair || !ref_guided)
		return tap_done();
	int B = (int)st_find(tx, "attention_mask")->shape[0], S = (int)st_find(tx, "attention_mask")->shape[1];
	int K = cfg.dec.num_codebooks, V = cfg.dec.vocab_size, D = cfg.dec.hidden_size, NL = cfg.dec.num_layers;
	int T = (int)st_find(fx, "decoder_input_ids")->shape[1];
	size_t nl = (size_t)B * K * T * V;
	float *logits = malloc(nl * 2 * sizeof(float)), *hid = malloc((size_t)(NL + 1) * B * T * D * sizeof(float));
	float *step_logits = malloc(nl * sizeof(float)), *one = malloc((size_t)2 * B * K * T * V * sizeof(float));
	int32_t *col = malloc((size_t)2 * B * K * sizeof *col);

	/* All columns in one causal pass. */
	mg_dec_state st;
	if (mg_dec_state_init(&st, &dec, mg_pool_size(pool), B, S, T, T, err, sizeof err)) {
		tap_ok(0, "decoder state: %s", err);
		return tap_done();
	}
	mg_dec_set_cross(&dec, pool, &st, enc, mask);
	if (!tap_ok(!mg_dec_forward(&dec, pool, &st, ids, T, logits, hid, err, sizeof err), "teacher-forced pass"))
		tap_diag("%s", err);
	size_t nh = (size_t)B * T * D;
	for (int l = 0; l <= NL; l++) {
		char what[64];
		snprintf(what, sizeof what, l < NL ? "decoder input of layer %d" : "decoder final norm output", l);
		fx_close(hid + l * nh, ref_hid + l * nh, nh, what);
	}
	fx_close(logits, ref_logits, nl, "teacher-forced logits (one pass)");
	float *tf = malloc(nl * sizeof(float));
	memcpy(tf, logits, nl * sizeof(float));
	mg_dec_state_free(&st);

	/* Step by step through the KV cache, one column at a time. */
	mg_dec_state_init(&st, &dec, mg_pool_size(pool), B, S, T, 1, err, sizeof err);
	mg_dec_set_cross(&dec, pool, &st, enc, mask);
	int ok = 1;
	for (int t = 0; t < T && ok; t++) {
		for (int r = 0; r < B * K; r++)
			col[r] = ids[r * T + t];
		ok = !mg_dec_forward(&dec, pool, &st, col, 1, one, NULL, err, sizeof err);
		for (int r = 0; r < B * K; r++)
			memcpy(step_logits + ((size_t)r * T + t) * V, one + (size_t)r * V, (size_t)V * sizeof(float));
	}
	tap_ok(ok, "twelve cached steps");
	fx_close(step_logits, ref_logits, nl, "teacher-forced logits (cached steps)");
	tap_ok(fx_rel_err(step_logits, tf, nl) < 1e-6, "cached steps agree with the single pass (rel %.3g)",
	       fx_rel_err(step_logits, tf, nl));
	mg_dec_state_free(&st);

	/* The conditional and null rows in one batch: null = zero states, zero mask. */
	float *enc2 = calloc((size_t)2 * B * S * D, sizeof(float));
	int32_t *mask2 = calloc((size_t)2 * B * S, sizeof(int32_t)), *ids2 = malloc((size_t)2 * B * K * T * sizeof(int32_t));
	memcpy(enc2, enc, (size_t)B * S * D * sizeof(float));
	memcpy(mask2, mask, (size_t)B * S * sizeof(int32_t));
	memcpy(ids2, ids, (size_t)B * K * T * sizeof(int32_t));
	memcpy(ids2 + (size_t)B * K * T, ids, (size_t)B * K * T * sizeof(int32_t));
	mg_dec_state_init(&st, &dec, mg_pool_size(pool), 2 * B, S, T, T, err, sizeof err);
	mg_dec_set_cross(&dec, pool, &st, enc2, mask2);
	tap_ok(!mg_dec_forward(&dec, pool, &st, ids2, T, logits, NULL, err, sizeof err), "conditional + null pass");
	fx_close(logits, ref_pair, (size_t)n_pair, "conditional/null logits pair");
	tap_ok(!memcmp(logits, tf, nl * sizeof(float)), "the conditional half is bit-identical to the plain conditional pass");
	float *guided = malloc(nl * sizeof(float));
	for (size_t i = 0; i < nl; i++) {
		float c = logits[i], u = logits[nl + i];
		guided[i] = u + (c - u) * 3.0f;
	}
	fx_close(guided, ref_guided, nl, "guided logits uncond + (cond - uncond) * 3");
	mg_dec_state_free(&st);

	/* Batch invariance: a row alone gives bit-identical logits. */
	mg_dec_state_init(&st, &dec, mg_pool_size(pool), 1, S, T, T, err, sizeof err);
	mg_dec_set_cross(&dec, pool, &st, enc + (size_t)1 * S * D, mask + S);
	mg_dec_forward(&dec, pool, &st, ids + (size_t)1 * K * T, T, one, NULL, err, sizeof err);
	tap_ok(!memcmp(one, tf + (size_t)1 * K * T * V, (size_t)K * T * V * sizeof(float)),
	       "a row alone gives bit-identical logits to the same row inside a batch");
	mg_dec_state_free(&st);

	/* Out-of-range codes are refused, not read. */
	mg_dec_state_init(&st, &dec, mg_pool_size(pool), 1, S, T, 1, err, sizeof err);
	mg_dec_set_cross(&dec, pool, &st, enc, mask);
	for (int k = 0; k < K; k++)
		col[k] = V + 1;
	tap_ok(mg_dec_forward(&dec, pool, &st, col, 1, one, NULL, err, sizeof err) != 0, "code %d refused: %s", V + 1, err);
	mg_dec_state_free(&st);

	free(mask), free(ids), free(enc), free(ref_logits), free(ref_hid), free(ref_pair), free(ref_guided);
	free(logits), free(hid), free(step_logits), free(one), free(col), free(enc2), free(mask2), free(ids2), free(guided), free(tf);
	st_close(tx);
	st_close(fx);
	mg_decoder_free(&dec);
	mg_pool_free(pool);
	st_close(w);
	return tap_done();
}
