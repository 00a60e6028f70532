/* test_opencl_model.c - the whole model on OpenCL against what Hugging Face
 * computed: the projected text states and teacher-forced decoder logits of
 * tiny-a (reference data), greedy generation (codes identical, audio within
 * 1e-4 x the reference's max abs value) for tiny-a and for the test models of
 * other shapes in tests/data, and EnCodec decoding. The generation loop here
 * is the plain HF loop of SPEC-decoder §5-§8 (delay pattern, CFG rows, argmax),
 * so that the device path is checked on its own. Skips without OpenCL. */
#include "autoconfig.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/safetensors.h"
#include "opencl/model.h"
#include "opencl/ocl.h"
#include "tests/tap.h"

static char err[1024];
static ocl_ctx *ctx;

/* A tensor of a fixture file as float (any float dtype) or int32 (I64). */
static float *fx_f32(const st_set *s, const char *name, size_t *n)
{
	const st_tensor *t = st_find(s, name);
	if (!t)
		return NULL;
	float *p = malloc((size_t)t->numel * sizeof(float) + 4);
	if (st_to_f32(t, p, err, sizeof err)) {
		free(p);
		return NULL;
	}
	if (n)
		*n = (size_t)t->numel;
	return p;
}

static int32_t *fx_i32(const st_set *s, const char *name, size_t *n)
{
	const st_tensor *t = st_find(s, name);
	if (!t || t->dtype != ST_I64)
		return NULL;
	int32_t *p = malloc((size_t)t->numel * sizeof(int32_t) + 4);
	for (int64_t i = 0; i < t->numel; i++) {
		int64_t v;
		memcpy(&v, t->data + i * 8, 8);
		p[i] = (int32_t)v;
	}
	if (n)
		*n = (size_t)t->numel;
	return p;
}

static double max_abs(const float *a, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		if (fabs(a[i]) > m)
			m = fabs(a[i]);
	return m;
}

static double max_err(const float *a, const float *b, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - b[i]);
		if (!(e <= m))
			m = isnan(e) ? INFINITY : e;
	}
	return m;
}

/* max abs error <= 1e-4 x the reference's max abs value */
static void check_close(const char *what, const float *got, const float *ref, size_t n)
{
	double e = max_err(got, ref, n), r = max_abs(ref, n);
	tap_ok(e <= 1e-4 * (r > 0 ? r : 1), "%s: max abs err %.3g (ref max %.3g)", what, e, r);
}

typedef struct model {
	mg_config cfg;
	st_set *w;
	ocl_model *m;
} model;

static int open_model_f(model *md, const char *dir, const char *label, int f16)
{
	memset(md, 0, sizeof *md);
	if (mg_config_load(&md->cfg, dir, err, sizeof err) || st_open(&md->w, dir, err, sizeof err) ||
	    ocl_model_load(&md->m, ctx, md->w, &md->cfg, f16, err, sizeof err)) {
		tap_ok(0, "load %s on OpenCL: %s", label, err);
		return -1;
	}
	tap_ok(1, "load %s on OpenCL (%.1f MB of weights on the device)", label, ocl_model_weight_bytes(md->m) / 1e6);
	return 0;
}

static int open_model(model *md, const char *dir, const char *label)
{
	return open_model_f(md, dir, label, 0);
}

static void close_model(model *md)
{
	ocl_model_free(md->m);
	st_close(md->w);
}

/* Greedy generation as HF does it (no audio prompt), through the calls the
 * engine's loop makes: ocl_model_step_takes returns the guided scores and
 * the argmax is taken here. ids/mask [B, S] or B = 0 with n_uncond rows.
 * Returns de-delayed codes [B', K, F] (malloc). */
static int32_t *generate(model *md, const int32_t *ids, const int32_t *mask, int B, int S, int cfg, float g,
                         int n_uncond, int max_new, int *F_out)
{
	const mg_decoder_config *d = &md->cfg.dec;
	int K = d->num_codebooks, V = d->vocab_size, P = d->bos_token_id, Kc = d->audio_channels == 2 ? K / 2 : K;
	int Bn = B > 0 ? B : n_uncond, L = max_new + 1;
	int32_t *pattern = malloc(sizeof(int32_t) * Bn * K * L), *seq = calloc((size_t)Bn * K * L, sizeof(int32_t));
	int32_t *feed = malloc(sizeof(int32_t) * Bn * K);
	float *scores = malloc(sizeof(float) * Bn * K * V);
	int32_t *codes = NULL;
	int delay = L >= 2 * Kc - 1;

	for (int b = 0; b < Bn; b++)
		for (int k = 0; k < K; k++) {
			int c = d->audio_channels == 2 ? k / 2 : k;
			for (int j = 0; j < L; j++)
				pattern[(b * K + k) * L + j] =
					delay && (j <= c || j >= L - Kc + 1 + c) ? P : -1;
			seq[(b * K + k) * L] = P;
		}
	if (ocl_model_condition(md->m, ids, mask, B, S, 1, cfg, n_uncond, NULL, err, sizeof err) ||
	    ocl_model_begin(md->m, L, err, sizeof err))
		goto fail;
	for (int t = 1; t < L; t++) {
		for (int r = 0; r < Bn * K; r++) {
			int i = r * L + t - 1;
			feed[r] = pattern[i] == -1 ? seq[i] : pattern[i];
		}
		if (ocl_model_step_takes(md->m, feed, 1, g, scores, err, sizeof err))
			goto fail;
		for (int r = 0; r < Bn * K; r++) {
			int best = 0;
			for (int v = 1; v < V; v++)
				if (scores[r * V + v] > scores[r * V + best])
					best = v;
			seq[r * L + t] = best;
		}
	}
	/* apply the pattern, drop the pad id: F per row */
	int F = 0;
	for (int j = 0; j < L; j++)
		F += (pattern[j] == -1 ? seq[j] : pattern[j]) != P;
	codes = malloc(sizeof(int32_t) * Bn * K * (F > 0 ? F : 1));
	for (int r = 0; r < Bn * K; r++) {
		int f = 0;
		for (int j = 0; j < L; j++) {
			int v = pattern[r * L + j] == -1 ? seq[r * L + j] : pattern[r * L + j];
			if (v != P && f < F)
				codes[r * F + f++] = v;
		}
	}
	*F_out = F;
fail:
	free(pattern);
	free(seq);
	free(feed);
	free(scores);
	return codes;
}

/* Audio [B, channels, F*hop] of codes [B, K, F] (stereo split inside). */
static float *decode(model *md, const int32_t *codes, int B, int F, int *T_out)
{
	int ch = md->cfg.dec.audio_channels, T = F * md->cfg.codec.hop_length;
	float *pcm = malloc(sizeof(float) * B * ch * T);
	if (ocl_model_decode_takes(md->m, codes, B, F, pcm, err, sizeof err)) {
		free(pcm);
		pcm = NULL;
	}
	*T_out = T;
	return pcm;
}

/* One greedy case: codes identical and audio close to the reference. */
static void greedy_case(model *md, const char *name, const int32_t *ids, const int32_t *mask, int B, int S,
                        int cfg, float g, int n_uncond, const int32_t *ref_codes, size_t n_codes,
                        const float *ref_audio, size_t n_audio)
{
	int K = md->cfg.dec.num_codebooks, Bn = B > 0 ? B : n_uncond;
	int F_ref = (int)(n_codes / (size_t)(Bn * K));
	int Kc = md->cfg.dec.audio_channels == 2 ? K / 2 : K;
	int max_new = F_ref + Kc - 1, F = 0, T = 0;
	int32_t *codes = generate(md, ids, mask, B, S, cfg, g, n_uncond, max_new, &F);
	if (!codes) {
		tap_ok(0, "%s: generation failed: %s", name, err);
		return;
	}
	int same = F == F_ref && !memcmp(codes, ref_codes, sizeof(int32_t) * n_codes);
	tap_ok(same, "%s: greedy codes identical to Hugging Face's (%d x %d x %d)", name, Bn, K, F);
	float *pcm = decode(md, ref_codes, Bn, F_ref, &T);
	if (!pcm || (size_t)Bn * md->cfg.dec.audio_channels * T != n_audio)
		tap_ok(0, "%s: decoding audio: %s", name, pcm ? "length differs" : err);
	else {
		char what[160];
		snprintf(what, sizeof what, "%s: EnCodec audio of the codes", name);
		check_close(what, pcm, ref_audio, n_audio);
	}
	free(pcm);
	free(codes);
}

static void test_tiny_a(const char *ref)
{
	char dir[4096], path[4200];
	model md;
	snprintf(dir, sizeof dir, "%s/models/tiny-a", ref);
	if (open_model(&md, dir, "tiny-a"))
		return;
	const mg_decoder_config *d = &md.cfg.dec;
	int K = d->num_codebooks, V = d->vocab_size, D = d->hidden_size;
	st_set *fx = NULL;

	/* text: projected and masked states */
	snprintf(path, sizeof path, "%s/fixtures/tiny-a/text.safetensors", ref);
	if (st_open(&fx, path, err, sizeof err)) {
		tap_ok(0, "%s", err);
		close_model(&md);
		return;
	}
	size_t n_ids = 0, n_enc = 0;
	int32_t *ids = fx_i32(fx, "input_ids", &n_ids), *mask = fx_i32(fx, "attention_mask", NULL);
	float *enc_ref = fx_f32(fx, "encoder_hidden_states_projected", &n_enc);
	int B = (int)st_find(fx, "input_ids")->shape[0], S = (int)st_find(fx, "input_ids")->shape[1];
	float *enc = malloc(sizeof(float) * 2 * n_enc);
	if (ocl_model_condition(md.m, ids, mask, B, S, 1, 0, 0, enc, err, sizeof err))
		tap_ok(0, "T5 + projection: %s", err);
	else
		check_close("tiny-a: T5 + projection x mask [3, 17, 64]", enc, enc_ref, n_enc);
	if (ocl_model_condition(md.m, ids, mask, B, S, 1, 1, 0, enc, err, sizeof err))
		tap_ok(0, "T5 with CFG rows: %s", err);
	else {
		int zero = max_abs(enc + n_enc, n_enc) == 0.0;
		check_close("tiny-a: conditional rows with CFG", enc, enc_ref, n_enc);
		tap_ok(zero, "tiny-a: the null-condition rows are exactly 0");
	}
	/* two takes per prompt: each prompt's states twice, in order */
	float *enc2 = malloc(sizeof(float) * 2 * n_enc);
	if (ocl_model_condition(md.m, ids, mask, B, S, 2, 0, 0, enc2, err, sizeof err))
		tap_ok(0, "T5 with 2 takes per prompt: %s", err);
	else {
		size_t per = n_enc / (size_t)B;
		int same = 1;
		for (int i = 0; i < 2 * B; i++)
			same &= !memcmp(enc2 + per * i, enc + per * (i / 2), per * sizeof(float));
		tap_ok(same, "tiny-a: 2 takes per prompt get their prompt's states");
	}
	/* states given by the caller: the same logits as T5 on the device */
	{
		int N = 2 * B;
		float *l1 = malloc(sizeof(float) * N * K * V), *l2 = malloc(sizeof(float) * N * K * V);
		int32_t *feed = malloc(sizeof(int32_t) * N * K);
		for (int i = 0; i < N * K; i++)
			feed[i] = d->bos_token_id;
		int ok = !ocl_model_condition(md.m, ids, mask, B, S, 1, 1, 0, NULL, err, sizeof err) &&
		         !ocl_model_begin(md.m, 2, err, sizeof err) && !ocl_model_step(md.m, feed, 1, l1, err, sizeof err) &&
		         !ocl_model_set_states(md.m, enc_ref, mask, B, S, 1, err, sizeof err) &&
		         !ocl_model_begin(md.m, 2, err, sizeof err) && !ocl_model_step(md.m, feed, 1, l2, err, sizeof err);
		if (!ok)
			tap_ok(0, "conditioning from given states: %s", err);
		else
			check_close("tiny-a: conditioning from the reference states, first-step logits", l2, l1,
			            (size_t)N * K * V);
		free(l1); free(l2); free(feed);
	}
	free(enc2);
	free(enc);
	free(enc_ref);

	/* teacher-forced decoder, one column per step through the KV cache */
	st_set *tf = NULL;
	snprintf(path, sizeof path, "%s/fixtures/tiny-a/decoder_tf.safetensors", ref);
	if (st_open(&tf, path, err, sizeof err) == 0) {
		int32_t *din = fx_i32(tf, "decoder_input_ids", NULL);
		float *pair = fx_f32(tf, "logits_cfg_pair", NULL), *guided = fx_f32(tf, "logits_guided", NULL);
		int T = (int)st_find(tf, "decoder_input_ids")->shape[1], N = 2 * B;
		float *lg = malloc(sizeof(float) * N * K * V), *want = malloc(sizeof(float) * N * K * V);
		float *sc = malloc(sizeof(float) * B * K * V), *wsc = malloc(sizeof(float) * B * K * V);
		int32_t *feed = malloc(sizeof(int32_t) * N * K * T);
		double e1 = 0, r1 = 0, e2 = 0, r2 = 0;
		int ok = !ocl_model_condition(md.m, ids, mask, B, S, 1, 1, 0, NULL, err, sizeof err) &&
		         !ocl_model_begin(md.m, T, err, sizeof err);
		for (int s = 0; ok && s < T; s++) {
			for (int n = 0; n < N; n++)
				for (int k = 0; k < K; k++)
					feed[n * K + k] = din[((n % B) * K + k) * T + s];
			ok = !ocl_model_step(md.m, feed, 1, lg, err, sizeof err) &&
			     !ocl_model_logits(md.m, 3.0f, 1.0f, sc, NULL, err, sizeof err);
			for (int r = 0; r < N * K; r++)
				memcpy(want + r * V, pair + ((size_t)r * T + s) * V, sizeof(float) * V);
			for (int r = 0; r < B * K; r++)
				memcpy(wsc + r * V, guided + ((size_t)r * T + s) * V, sizeof(float) * V);
			double e = max_err(lg, want, (size_t)N * K * V), r = max_abs(want, (size_t)N * K * V);
			e1 = e > e1 ? e : e1;
			r1 = r > r1 ? r : r1;
			e = max_err(sc, wsc, (size_t)B * K * V);
			r = max_abs(wsc, (size_t)B * K * V);
			e2 = e > e2 ? e : e2;
			r2 = r > r2 ? r : r2;
		}
		if (!ok)
			tap_ok(0, "teacher-forced decoding: %s", err);
		tap_ok(ok && e1 <= 1e-4 * r1, "tiny-a: %d cached steps, conditional + null logits: max abs err %.3g (ref max %.3g)",
		       T, e1, r1);
		tap_ok(ok && e2 <= 1e-4 * r2, "tiny-a: guided logits (g = 3) on the device: max abs err %.3g (ref max %.3g)",
		       e2, r2);

		/* all columns in one call (causal mask inside the step) */
		for (int n = 0; n < N; n++)
			for (int k = 0; k < K; k++)
				for (int s = 0; s < T; s++)
					feed[(n * K + k) * T + s] = din[((n % B) * K + k) * T + s];
		for (int r = 0; r < N * K; r++)
			memcpy(want + r * V, pair + ((size_t)r * T + T - 1) * V, sizeof(float) * V);
		ok = !ocl_model_begin(md.m, T, err, sizeof err) && !ocl_model_step(md.m, feed, T, lg, err, sizeof err);
		if (!ok)
			tap_ok(0, "multi-column step: %s", err);
		else
			check_close("tiny-a: 12 columns in one step, last-column logits", lg, want, (size_t)N * K * V);
		free(din); free(pair); free(guided); free(lg); free(want); free(sc); free(wsc); free(feed);
		st_close(tf);
	} else
		tap_ok(0, "%s", err);

	/* greedy generation: with guidance 3, without, unconditional */
	static const char *const cases[3] = {"gen_cfg3_greedy", "gen_noguide_greedy", "gen_unconditional_greedy"};
	for (int i = 0; i < 3; i++) {
		st_set *g = NULL;
		snprintf(path, sizeof path, "%s/fixtures/tiny-a/%s.safetensors", ref, cases[i]);
		if (st_open(&g, path, err, sizeof err)) {
			tap_ok(0, "%s", err);
			continue;
		}
		size_t nc = 0, na = 0;
		int32_t *codes = fx_i32(g, "codes", &nc);
		float *audio = fx_f32(g, "audio_values", &na);
		char name[80];
		snprintf(name, sizeof name, "tiny-a %s", cases[i]);
		if (i < 2)
			greedy_case(&md, name, ids, mask, B, S, i == 0, 3.0f, 0, codes, nc, audio, na);
		else
			greedy_case(&md, name, NULL, NULL, 0, 0, 0, 1.0f, 2, codes, nc, audio, na);
		free(codes);
		free(audio);
		st_close(g);
	}

	/* EnCodec in groups of takes when the device's largest buffer is small:
	 * the same audio as all takes at once */
	{
		st_set *g = NULL;
		snprintf(path, sizeof path, "%s/fixtures/tiny-a/gen_cfg3_greedy.safetensors", ref);
		if (!st_open(&g, path, err, sizeof err)) {
			size_t nc = 0;
			int32_t *codes = fx_i32(g, "codes", &nc);
			int F = (int)st_find(g, "codes")->shape[3], nb = (int)st_find(g, "codes")->shape[1];
			size_t na = (size_t)nb * F * md.cfg.codec.hop_length;
			float *all = malloc(sizeof(float) * na), *grouped = malloc(sizeof(float) * na);
			uint64_t keep = ctx->dev.max_alloc;
			int ok = !ocl_model_decode_audio(md.m, codes, nb, K, F, all, err, sizeof err);
			ctx->dev.max_alloc = (uint64_t)(na / nb) * 4 * 6; /* room for one take, not two */
			ok = ok && !ocl_model_decode_audio(md.m, codes, nb, K, F, grouped, err, sizeof err);
			ctx->dev.max_alloc = keep;
			if (!ok)
				tap_ok(0, "EnCodec decode in groups: %s", err);
			else
				check_close("tiny-a: EnCodec decode of 3 takes one group at a time", grouped, all, na);
			free(codes); free(all); free(grouped);
			st_close(g);
		} else
			tap_ok(0, "%s", err);
	}

	/* EnCodec alone: fixed random codes */
	st_set *ec = NULL;
	snprintf(path, sizeof path, "%s/fixtures/tiny-a/encodec.safetensors", ref);
	if (st_open(&ec, path, err, sizeof err) == 0) {
		size_t nc = 0, na = 0;
		int32_t *codes = fx_i32(ec, "decode_codes", &nc);
		float *audio = fx_f32(ec, "decode_audio", &na), *pcm = malloc(sizeof(float) * na);
		int F = (int)st_find(ec, "decode_codes")->shape[3], nq = (int)st_find(ec, "decode_codes")->shape[2];
		if (ocl_model_decode_audio(md.m, codes, 1, nq, F, pcm, err, sizeof err))
			tap_ok(0, "EnCodec decode: %s", err);
		else
			check_close("tiny-a: EnCodec decode of 25 random frames", pcm, audio, na);
		free(codes); free(audio); free(pcm);
		st_close(ec);
	} else
		tap_ok(0, "%s", err);

	/* residency: one greedy step = the new ids up, the chosen ids down */
	{
		int N = 2 * B, steps = 5;
		int32_t *feed = malloc(sizeof(int32_t) * N * K), *next = malloc(sizeof(int32_t) * B * K);
		for (int i = 0; i < N * K; i++)
			feed[i] = d->bos_token_id;
		ocl_traffic t0, t1;
		int ok = !ocl_model_condition(md.m, ids, mask, B, S, 1, 1, 0, NULL, err, sizeof err) &&
		         !ocl_model_begin(md.m, steps, err, sizeof err);
		ocl_model_traffic(md.m, &t0);
		for (int s = 0; ok && s < steps; s++)
			ok = !ocl_model_step(md.m, feed, 1, NULL, err, sizeof err) &&
			     !ocl_model_logits(md.m, 3.0f, 1.0f, NULL, next, err, sizeof err);
		ocl_model_traffic(md.m, &t1);
		long long w = t1.writes - t0.writes, wb = t1.write_bytes - t0.write_bytes;
		long long r = t1.reads - t0.reads, rb = t1.read_bytes - t0.read_bytes;
		tap_diag("per greedy step: %lld write(s) of %lld bytes, %lld read(s) of %lld bytes", w / steps, wb / steps,
		         r / steps, rb / steps);
		tap_ok(ok && w == steps && r == steps && wb == (long long)steps * N * K * 4 &&
		           rb == (long long)steps * B * K * 4,
		       "a greedy step moves only the new ids (%d bytes) up and the chosen ids (%d bytes) down", N * K * 4,
		       B * K * 4);
		/* the engine's step: the takes' ids up, the guided scores down */
		float *sc = malloc(sizeof(float) * B * K * V);
		ok = ok && !ocl_model_begin(md.m, steps, err, sizeof err);
		ocl_model_traffic(md.m, &t0);
		for (int s = 0; ok && s < steps; s++)
			ok = !ocl_model_step_takes(md.m, feed, 1, 3.0f, sc, err, sizeof err);
		ocl_model_traffic(md.m, &t1);
		w = t1.writes - t0.writes, wb = t1.write_bytes - t0.write_bytes;
		r = t1.reads - t0.reads, rb = t1.read_bytes - t0.read_bytes;
		tap_diag("per engine step: %lld write(s) of %lld bytes, %lld read(s) of %lld bytes", w / steps, wb / steps,
		         r / steps, rb / steps);
		tap_ok(ok && w == steps && r == steps && wb == (long long)steps * N * K * 4 &&
		           rb == (long long)steps * B * K * V * 4,
		       "an engine step moves the ids (%d bytes) up and the guided scores (%d bytes) down", N * K * 4,
		       B * K * V * 4);
		free(sc);
		free(feed);
		free(next);
	}

	/* bad input is refused with a message, never a crash */
	int32_t bad[1] = {V + 1};
	tap_ok(ocl_model_begin(md.m, 4, err, sizeof err) == 0 && ocl_model_step(md.m, bad, 1, NULL, err, sizeof err) != 0,
	       "an id outside the vocabulary is refused: %s", err);
	tap_ok(ocl_model_begin(md.m, d->max_positions + 1, err, sizeof err) != 0,
	       "a sequence longer than max_position_embeddings is refused: %s", err);
	(void)D;
	free(ids);
	free(mask);
	st_close(fx);
	close_model(&md);
}

/* Half-precision decoder matrices: teacher-forced logits within 1e-2 x the
 * reference's max abs value (weights rounded to 11 significant bits). */
static void test_f16(const char *ref)
{
	char dir[4096], path[4200];
	model md;
	st_set *fx = NULL, *tf = NULL;
	snprintf(dir, sizeof dir, "%s/models/tiny-a", ref);
	if (open_model_f(&md, dir, "tiny-a with half decoder weights", 1))
		return;
	snprintf(path, sizeof path, "%s/fixtures/tiny-a/text.safetensors", ref);
	int ok = !st_open(&fx, path, err, sizeof err);
	snprintf(path, sizeof path, "%s/fixtures/tiny-a/decoder_tf.safetensors", ref);
	ok = ok && !st_open(&tf, path, err, sizeof err);
	if (ok) {
		const mg_decoder_config *d = &md.cfg.dec;
		int K = d->num_codebooks, V = d->vocab_size;
		int32_t *ids = fx_i32(fx, "input_ids", NULL), *mask = fx_i32(fx, "attention_mask", NULL);
		int B = (int)st_find(fx, "input_ids")->shape[0], S = (int)st_find(fx, "input_ids")->shape[1];
		int32_t *din = fx_i32(tf, "decoder_input_ids", NULL);
		float *want = fx_f32(tf, "logits", NULL);
		int T = (int)st_find(tf, "decoder_input_ids")->shape[1];
		float *lg = malloc(sizeof(float) * B * K * V), *w1 = malloc(sizeof(float) * B * K * V);
		int32_t *feed = malloc(sizeof(int32_t) * B * K);
		double e = 0, r = 0;
		ok = !ocl_model_condition(md.m, ids, mask, B, S, 1, 0, 0, NULL, err, sizeof err) &&
		     !ocl_model_begin(md.m, T, err, sizeof err);
		for (int s = 0; ok && s < T; s++) {
			for (int i = 0; i < B * K; i++)
				feed[i] = din[i * T + s];
			ok = !ocl_model_step(md.m, feed, 1, lg, err, sizeof err);
			for (int i = 0; i < B * K; i++)
				memcpy(w1 + i * V, want + ((size_t)i * T + s) * V, sizeof(float) * V);
			double ee = max_err(lg, w1, (size_t)B * K * V), rr = max_abs(w1, (size_t)B * K * V);
			e = ee > e ? ee : e;
			r = rr > r ? rr : r;
		}
		tap_ok(ok && e <= 1e-2 * r, "tiny-a, half decoder weights: %d cached steps, max abs err %.3g (ref max %.3g)%s%s",
		       T, e, r, ok ? "" : ": ", ok ? "" : err);
		free(ids); free(mask); free(din); free(want); free(lg); free(w1); free(feed);
	} else
		tap_ok(0, "%s", err);
	st_close(fx);
	st_close(tf);
	close_model(&md);
}

/* The test models of other shapes shipped in tests/data. */
static void test_shape(const char *top, const char *name)
{
	char dir[4096], path[4200];
	model md;
	snprintf(dir, sizeof dir, "%s/tests/data/%s", top, name);
	snprintf(path, sizeof path, "%s/tests/data/%s-refs.safetensors", top, name);
	st_set *fx = NULL;
	if (st_open(&fx, path, err, sizeof err)) {
		tap_skip("%s: %s", name, err);
		return;
	}
	if (open_model(&md, dir, name)) {
		st_close(fx);
		return;
	}
	int32_t *ids = fx_i32(fx, "input_ids", NULL), *mask = fx_i32(fx, "attention_mask", NULL);
	int B = (int)st_find(fx, "input_ids")->shape[0], S = (int)st_find(fx, "input_ids")->shape[1];
	static const char *const pre[3] = {"cfg3", "noguide", "uncond"};
	for (int i = 0; i < 3; i++) {
		char cn[64], an[64], label[96];
		size_t nc = 0, na = 0;
		snprintf(cn, sizeof cn, "%s_codes", pre[i]);
		snprintf(an, sizeof an, "%s_audio", pre[i]);
		snprintf(label, sizeof label, "%s %s", name, pre[i]);
		int32_t *codes = fx_i32(fx, cn, &nc);
		float *audio = fx_f32(fx, an, &na);
		if (!codes || !audio) {
			tap_ok(0, "%s: fixture tensors missing", label);
		} else if (i < 2)
			greedy_case(&md, label, ids, mask, B, S, i == 0, 3.0f, 0, codes, nc, audio, na);
		else
			greedy_case(&md, label, NULL, NULL, 0, 0, 0, 1.0f, (int)st_find(fx, cn)->shape[0], codes, nc, audio,
			            na);
		free(codes);
		free(audio);
	}
	free(ids);
	free(mask);
	st_close(fx);
	close_model(&md);
}

int main(void)
{
	ocl_device_desc *devs = NULL;
	int n = 0;
	if (ocl_list_devices(&devs, &n, err, sizeof err))
		tap_skip_all(err);
	int pick = ocl_default_device(devs, n);
	if (pick < 0) {
		free(devs);
		tap_skip_all("no OpenCL platform or device found");
	}
	if (ocl_ctx_create(&ctx, &devs[pick], NULL, NULL, err, sizeof err)) {
		free(devs);
		tap_ok(0, "OpenCL context: %s", err);
		return tap_done();
	}
	free(devs);
	const char *top = getenv("MG_TOP_SRCDIR");
	test_shape(top && *top ? top : ".", "tinyb");
	test_shape(top && *top ? top : ".", "tinyc");
	const char *ref = tap_ref_dir();
	if (ref) {
		test_tiny_a(ref);
		test_f16(ref);
	} else
		tap_skip("tiny-a: reference data not found (set MUSICGEN_REF_DIR)");
	ocl_ctx_free(ctx);
	return tap_done();
}
