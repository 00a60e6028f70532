/* test_generate.c - the engine API end to end (mg_model_load,
 * mg_generate_tokens, callbacks, parameter checks) against Hugging Face's
 * greedy generate() on tiny-a and the test models of other shapes: codes
 * identical, audio within 1e-4 relative L2. */
#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "tests/gen_fixture.h"

struct cbs {
	int steps, total, frames, frames_ok, abort_at;
	const int32_t *want; /* [B][K][F] */
	int B, K, F;
};

static void on_progress(int step, int total, void *u)
{
	struct cbs *c = u;
	if (step == c->steps + 1)
		c->steps = step;
	c->total = total;
}

static void on_frame(int frame, const int32_t *codes, int n_takes, int n_codebooks, void *u)
{
	struct cbs *c = u;
	if (frame != c->frames || n_takes != c->B || n_codebooks != c->K)
		c->frames_ok = 0;
	else if (c->want)
		for (int b = 0; b < c->B; b++)
			for (int k = 0; k < c->K; k++)
				if (codes[b * c->K + k] != c->want[((size_t)b * c->K + k) * c->F + frame])
					c->frames_ok = 0;
	c->frames++;
}

static int should_abort(void *u)
{
	struct cbs *c = u;
	return c->abort_at >= 0 && c->steps >= c->abort_at;
}

/* One greedy case against codes/audio of the reference. */
static void check_case(mg_model *m, const char *what, const int32_t *ids, const int32_t *mask, int np, int S,
                       float g, const int32_t *want, const float *audio, int B, int F)
{
	char err[MG_ERR_LEN];
	mg_params p = mg_params_default(m);
	p.prompts = NULL;
	p.n_prompts = np;
	p.count = np ? 1 : B;
	p.frames = F;
	p.guidance = g;
	p.greedy = 1;
	p.seed = 42;
	const char *dummy[16] = {0};
	for (int i = 0; i < np && i < 16; i++)
		dummy[i] = "(tokenized)";
	p.prompts = np ? dummy : NULL;
	int K = m->cfg.dec.num_codebooks;
	struct cbs c = {.frames_ok = 1, .abort_at = -1, .want = want, .B = B, .K = K, .F = F};
	mg_callbacks cb = {on_progress, on_frame, should_abort, &c};
	mg_take *t = NULL;
	int rc = mg_generate_tokens(m, &p, ids, mask, S, &cb, &t, err, sizeof err);
	if (!tap_ok(rc == MG_OK && t, "%s: generate", what)) {
		tap_diag("%s", err);
		return;
	}
	size_t n = (size_t)B * K * F, same = 0;
	for (size_t i = 0; i < n; i++)
		same += t->codes[i] == want[i];
	tap_ok(t->n_takes == B && t->n_frames == F && same == n, "%s: codes identical to HF's (%zu of %zu)", what, same,
	       n);
	tap_ok(c.steps == t->steps && c.total == t->steps && t->steps == F + K / t->channels - 1,
	       "%s: progress once per step (%d of %d)", what, c.steps, t->steps);
	tap_ok(c.frames == F && c.frames_ok, "%s: on_frame once per de-delayed frame with its codes (%d)", what,
	       c.frames);
	int seeds_ok = 1;
	for (int i = 0; i < B; i++)
		seeds_ok &= t->seeds[i] == 42 + (uint64_t)i;
	tap_ok(seeds_ok, "%s: take i reports seed + i", what);
	if (audio) {
		size_t na = (size_t)B * t->channels * t->n_samples;
		double e = fx_rel_l2(t->pcm, audio, na);
		tap_diag("%s: audio relative L2 error %.3g", what, e);
		tap_ok(e <= 1e-4, "%s: audio within 1e-4 relative L2", what);
	}
	mg_take_free(t);
}

static void tiny_a(const char *ref)
{
	char dir[4200], err[MG_ERR_LEN];
	snprintf(dir, sizeof dir, "%s/models/tiny-a", ref);
	mg_load_params lp = mg_load_params_default();
	lp.threads = 2;
	mg_model *m = NULL;
	if (!tap_ok(mg_model_load(&m, dir, &lp, err, sizeof err) == MG_OK, "load tiny-a")) {
		tap_diag("%s", err);
		return;
	}
	mg_model_info info;
	mg_model_get_info(m, &info);
	tap_ok(info.sample_rate == 32000 && info.frame_rate == 50 && info.num_codebooks == 4 &&
	           info.max_frames == 2048 - 4 && !strcmp(info.backend, "cpu") && !strcmp(info.weights, "f32"),
	       "model info: %d Hz, %g frames/s, %d codebooks, at most %d frames, %s, %s", info.sample_rate,
	       info.frame_rate, info.num_codebooks, info.max_frames, info.backend, info.weights);
	mg_params d = mg_params_default(m);
	tap_ok(d.frames == 500 && d.guidance == 3.0f && d.top_k == 250 && d.temperature == 1.0f && d.top_p == 1.0f &&
	           !d.greedy,
	       "defaults: 10 s = %d frames, guidance %g, top-k %d (absent from generation_config), T %g, top-p %g, "
	       "sampling",
	       d.frames, d.guidance, d.top_k, d.temperature, d.top_p);

	st_set *tx = fx_open(ref, "text");
	int32_t *ids = fx_ints(tx, "input_ids", NULL), *mask = fx_ints(tx, "attention_mask", NULL);
	int B = (int)st_find(tx, "input_ids")->shape[0], S = (int)st_find(tx, "input_ids")->shape[1];
	static const struct { const char *name; float g; int uncond; } cases[] = {
		{"gen_cfg3_greedy", 3.0f, 0}, {"gen_noguide_greedy", 1.0f, 0}, {"gen_unconditional_greedy", 3.0f, 1},
	};
	for (int c = 0; c < 3; c++) {
		st_set *fx = fx_open(ref, cases[c].name);
		int32_t *want = fx_ints(fx, "codes", NULL);
		float *audio = fx_floats(fx, "audio_values", NULL);
		if (want && audio) {
			const st_tensor *ct = st_find(fx, "codes");
			check_case(m, cases[c].name, ids, mask, cases[c].uncond ? 0 : B, S, cases[c].g, want, audio,
			           (int)ct->shape[1], (int)ct->shape[3]);
		}
		free(want), free(audio);
		st_close(fx);
	}

	/* Sampling: a seed reproduces; take i of a batch equals its prompt alone
	 * with seed + i; top-k 1 equals greedy. */
	{
		const char *pr[3] = {"a", "b", "c"};
		mg_params q = mg_params_default(m);
		q.prompts = pr;
		q.n_prompts = B;
		q.count = 2;
		q.frames = 12;
		q.greedy = 0;
		q.top_k = 20;
		q.temperature = 1.5f;
		q.seed = 1234;
		mg_take *t1 = NULL, *t2 = NULL, *t3 = NULL, *one = NULL;
		int r1 = mg_generate_tokens(m, &q, ids, mask, S, NULL, &t1, err, sizeof err);
		int r2 = mg_generate_tokens(m, &q, ids, mask, S, NULL, &t2, err, sizeof err);
		size_t nc = (size_t)2 * B * 4 * 12;
		tap_ok(!r1 && !r2 && !memcmp(t1->codes, t2->codes, nc * sizeof(int32_t)) &&
		           !memcmp(t1->pcm, t2->pcm, (size_t)2 * B * t1->n_samples * sizeof(float)),
		       "sampling: the same seed gives the same codes and audio, bit for bit");
		q.seed = 999;
		int r3 = mg_generate_tokens(m, &q, ids, mask, S, NULL, &t3, err, sizeof err);
		tap_ok(!r3 && memcmp(t1->codes, t3->codes, nc * sizeof(int32_t)), "sampling: another seed gives other codes");
		int differ = !r1 && memcmp(t1->codes, t1->codes + 48, 48 * sizeof(int32_t));
		tap_ok(differ, "sampling: the two takes of one prompt differ (seeds s and s + 1)");
		/* Take 3 of the run (prompt 1, second take) alone: prompt 1 with seed 1234 + 3. */
		q.seed = 1234 + 3;
		q.n_prompts = 1;
		q.count = 1;
		int r4 = mg_generate_tokens(m, &q, ids + S, mask + S, S, NULL, &one, err, sizeof err);
		tap_ok(!r1 && !r4 && !memcmp(one->codes, t1->codes + 3 * 48, 48 * sizeof(int32_t)) &&
		           !memcmp(one->pcm, t1->pcm + 3 * t1->n_samples, (size_t)t1->n_samples * sizeof(float)),
		       "sampling: a take alone (seed + i) equals take i inside a batch of %d", 2 * B);
		mg_take_free(t1), mg_take_free(t2), mg_take_free(t3), mg_take_free(one);
		t1 = t2 = NULL;
		q = mg_params_default(m);
		q.prompts = pr;
		q.n_prompts = B;
		q.frames = 30;
		q.top_k = 1;
		q.greedy = 0;
		q.seed = 77;
		r1 = mg_generate_tokens(m, &q, ids, mask, S, NULL, &t1, err, sizeof err);
		q.top_k = 250;
		q.greedy = 1;
		r2 = mg_generate_tokens(m, &q, ids, mask, S, NULL, &t2, err, sizeof err);
		tap_ok(!r1 && !r2 && !memcmp(t1->codes, t2->codes, (size_t)B * 4 * 30 * sizeof(int32_t)),
		       "top-k 1 gives the greedy codes");
		mg_take_free(t1), mg_take_free(t2);
	}

	/* Abort: MG_ERR_ABORTED, nothing returned. */
	mg_params p = mg_params_default(m);
	p.greedy = 1;
	p.frames = 20;
	struct cbs c = {.frames_ok = 1, .abort_at = 5, .B = 1, .K = 4, .F = 20};
	mg_callbacks cb = {on_progress, NULL, should_abort, &c};
	mg_take *t = (mg_take *)&c;
	int rc = mg_generate_tokens(m, &p, NULL, NULL, 0, &cb, &t, err, sizeof err);
	tap_ok(rc == MG_ERR_ABORTED && t == NULL && c.steps == 5, "abort after step 5: MG_ERR_ABORTED, no take (%s)",
	       err);

	/* Parameter checks. */
	static const struct { const char *what; int frames; float g, temp, top_p; int top_k, count; } bad[] = {
		{"frames beyond one window", 2048 - 3, 3, 1, 1, 0, 1},
		{"frames below K - 1", 2, 3, 1, 1, 0, 1},
		{"negative guidance", 50, -1, 1, 1, 0, 1},
		{"zero temperature", 50, 3, 0, 1, 0, 1},
		{"top-p 0", 50, 3, 1, 0, 0, 1},
		{"top-p above 1", 50, 3, 1, 1.5f, 0, 1},
		{"negative top-k", 50, 3, 1, 1, -1, 1},
		{"count 0", 50, 3, 1, 1, 0, 0},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		p = mg_params_default(m);
		p.frames = bad[i].frames, p.guidance = bad[i].g, p.temperature = bad[i].temp, p.top_p = bad[i].top_p;
		p.top_k = bad[i].top_k, p.count = bad[i].count;
		err[0] = 0;
		rc = mg_generate_tokens(m, &p, NULL, NULL, 0, NULL, &t, err, sizeof err);
		tap_ok(rc == MG_ERR_PARAM && t == NULL && err[0], "refused: %s (%s)", bad[i].what, err);
	}
	p = mg_params_default(m);
	p.frames = info.max_frames;
	tap_ok(mg_params_check(m, &p, err, sizeof err) == MG_OK, "exactly one window (%d frames) is accepted",
	       info.max_frames);
	/* The bench hook: time per decoder step (1 take with guidance = 2 rows). */
	double sec = 0;
	rc = mg_model_time_steps(m, 1, 1, S, 100, 50, &sec, err, sizeof err);
	tap_ok(rc == MG_OK && sec > 0, "time per decoder step on tiny-a (1 take, guidance, after 100 positions)");
	tap_diag("tiny-a decoder step: %.1f us (%d threads)", sec * 1e6, m->threads);
	free(ids), free(mask);
	st_close(tx);
	mg_model_free(m);

	/* Load errors come back with a message, never a crash. */
	rc = mg_model_load(&m, "/nonexistent/model", &lp, err, sizeof err);
	tap_ok(rc != MG_OK && m == NULL && err[0], "a missing model is refused: %s", err);
#ifndef MG_HAVE_OPENCL
	lp.backend = MG_BACKEND_OPENCL;
	rc = mg_model_load(&m, dir, &lp, err, sizeof err);
	tap_ok(rc == MG_ERR_BACKEND && m == NULL && strstr(err, "OpenCL"), "backend opencl in a build without it: %s",
	       err);
#endif
}

static void other_shape(const char *name)
{
	const char *top = getenv("MG_TOP_SRCDIR");
	char dir[4200], refp[4300], err[MG_ERR_LEN];
	snprintf(dir, sizeof dir, "%s/tests/data/%s", top && *top ? top : ".", name);
	snprintf(refp, sizeof refp, "%s/tests/data/%s-refs.safetensors", top && *top ? top : ".", name);
	st_set *fx = NULL;
	if (st_open(&fx, refp, err, sizeof err)) {
		tap_skip("%s: %s", name, err);
		return;
	}
	mg_load_params lp = mg_load_params_default();
	lp.threads = 2;
	mg_model *m = NULL;
	if (!tap_ok(mg_model_load(&m, dir, &lp, err, sizeof err) == MG_OK, "load %s", name)) {
		tap_diag("%s", err);
		st_close(fx);
		return;
	}
	int32_t *ids = fx_ints(fx, "input_ids", NULL), *mask = fx_ints(fx, "attention_mask", NULL);
	int B = (int)st_find(fx, "input_ids")->shape[0], S = (int)st_find(fx, "input_ids")->shape[1];
	static const struct { const char *tag; float g; int uncond; } cases[] = {
		{"cfg3", 3.0f, 0}, {"noguide", 1.0f, 0}, {"uncond", 3.0f, 1},
	};
	for (int c = 0; c < 3; c++) {
		char kc[64], ka[64], what[64];
		snprintf(kc, sizeof kc, "%s_codes", cases[c].tag);
		snprintf(ka, sizeof ka, "%s_audio", cases[c].tag);
		snprintf(what, sizeof what, "%s %s", name, cases[c].tag);
		int32_t *want = fx_ints(fx, kc, NULL);
		float *audio = fx_floats(fx, ka, NULL);
		if (want && audio) {
			const st_tensor *ct = st_find(fx, kc);
			check_case(m, what, ids, mask, cases[c].uncond ? 0 : B, S, cases[c].g, want, audio,
			           (int)ct->shape[0], (int)ct->shape[2]);
		}
		free(want), free(audio);
	}
	free(ids), free(mask);
	st_close(fx);
	mg_model_free(m);
}

int main(void)
{
	const char *ref = tap_require_ref();
	tiny_a(ref);
	other_shape("tinyb");
	other_shape("tinyc");
	return tap_done();
}
