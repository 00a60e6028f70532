/* test_sampler.c - the logits processors against Hugging Face's outputs
 * (fixtures/logits_processors), greedy ties, the PRNG, seeded draws and
 * their distribution. */
#include "autoconfig.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/safetensors.h"
#include "engine/sampler.h"
#include "tests/tap.h"

static st_set *open_case(const char *ref, const char *name)
{
	char path[4200], err[512];
	st_set *s;
	snprintf(path, sizeof path, "%s/fixtures/logits_processors/%s.safetensors", ref, name);
	if (st_open(&s, path, err, sizeof err)) {
		tap_diag("%s", err);
		return NULL;
	}
	return s;
}

/* A float32 tensor of `rows` x `cols` as a malloc'd array, or NULL. */
static float *get_f32(st_set *s, const char *name, int rows, int cols)
{
	const st_tensor *t = st_find(s, name);
	if (!t || t->dtype != ST_F32 || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
		tap_diag("tensor %s missing or not F32 [%d, %d]", name, rows, cols);
		return NULL;
	}
	float *a = malloc((size_t)rows * cols * sizeof *a);
	memcpy(a, t->data, t->nbytes);
	return a;
}

/* Same filtered (-inf) positions and finite values within rel relative error. */
static int same_scores(const float *got, const float *want, int n, double rel, double *worst)
{
	*worst = 0;
	for (int i = 0; i < n; i++) {
		int gi = isinf(got[i]) && got[i] < 0, wi = isinf(want[i]) && want[i] < 0;
		if (gi != wi)
			return 0;
		if (gi)
			continue;
		double d = fabs((double)got[i] - want[i]), m = fabs((double)want[i]);
		double e = m > 0 ? d / m : d;
		if (e > *worst)
			*worst = e;
	}
	return *worst <= rel;
}

/* Probabilities: within rel relative error, or 1e-9 absolute for tiny ones. */
static int same_probs(const float *got, const float *want, int n, double rel, double *worst)
{
	*worst = 0;
	for (int i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);
		if (d <= 1e-9)
			continue;
		double e = d / fabs((double)want[i]);
		if (e > *worst)
			*worst = e;
	}
	return *worst <= rel;
}

static int count_finite(const float *a, int n)
{
	int c = 0;
	for (int i = 0; i < n; i++)
		c += isfinite(a[i]) != 0;
	return c;
}

enum { V = 2048, ROWS = 8 };

static void test_case_a(st_set *a, void *scratch)
{
	float *in = get_f32(a, "scores_in", 2 * ROWS, V), *cfg = get_f32(a, "after_cfg", ROWS, V),
	      *temp = get_f32(a, "after_temperature", ROWS, V), *topk = get_f32(a, "after_top_k", ROWS, V),
	      *topp = get_f32(a, "after_top_p", ROWS, V), *probs = get_f32(a, "probs", ROWS, V);
	const st_tensor *nk = st_find(a, "num_kept");
	if (!in || !cfg || !temp || !topk || !topp || !probs || !nk || nk->dtype != ST_I64 || nk->numel != ROWS) {
		tap_ok(0, "caseA tensors present");
		goto out;
	}
	float row[V], p[V];
	int ok_cfg = 1, ok_t = 1, ok_k = 1, ok_p = 1, ok_pr = 1, ok_n = 1, ok_all = 1, bitwise_cfg = 1;
	double w, w_t = 0, w_k = 0, w_p = 0, w_pr = 0;
	mg_sampling s = {.guidance = 3.0f, .temperature = 0.7f, .top_k = 5, .top_p = 0.9, .greedy = 0};
	for (int r = 0; r < ROWS; r++) {
		mg_cfg_combine(in + (size_t)r * V, in + (size_t)(ROWS + r) * V, 3.0f, V, row);
		ok_cfg &= same_scores(row, cfg + (size_t)r * V, V, 1e-6, &w);
		bitwise_cfg &= !memcmp(row, cfg + (size_t)r * V, sizeof row);
		mg_apply_temperature(row, V, 0.7f);
		ok_t &= same_scores(row, temp + (size_t)r * V, V, 1e-6, &w);
		w_t = fmax(w_t, w);
		mg_apply_top_k(row, V, 5, scratch);
		ok_k &= same_scores(row, topk + (size_t)r * V, V, 1e-6, &w);
		w_k = fmax(w_k, w);
		mg_apply_top_p(row, V, 0.9, scratch);
		ok_p &= same_scores(row, topp + (size_t)r * V, V, 1e-6, &w);
		w_p = fmax(w_p, w);
		mg_softmax(row, V, p);
		ok_pr &= same_probs(p, probs + (size_t)r * V, V, 1e-6, &w);
		w_pr = fmax(w_pr, w);
		int64_t kept;
		memcpy(&kept, nk->data + 8 * r, 8);
		ok_n &= count_finite(row, V) == kept;
		/* The whole pipeline in one call gives the same row. */
		float row2[V];
		mg_cfg_combine(in + (size_t)r * V, in + (size_t)(ROWS + r) * V, 3.0f, V, row2);
		mg_logits_process(row2, V, &s, scratch);
		ok_all &= !memcmp(row, row2, sizeof row);
	}
	tap_ok(ok_cfg, "caseA: CFG 3.0 matches after_cfg (%s)", bitwise_cfg ? "bit for bit" : "within 1e-6");
	tap_ok(ok_t, "caseA: temperature 0.7 matches (worst rel %.3g)", w_t);
	tap_ok(ok_k, "caseA: top-k 5 keeps the same positions, values within 1e-6 (worst %.3g)", w_k);
	tap_ok(ok_p, "caseA: top-p 0.9 keeps the same positions, values within 1e-6 (worst %.3g)", w_p);
	tap_ok(ok_pr, "caseA: softmax probs within 1e-6 relative (worst %.3g)", w_pr);
	tap_ok(ok_n, "caseA: num_kept per row");
	tap_ok(ok_all, "caseA: mg_logits_process equals the staged warpers");
out:
	free(in), free(cfg), free(temp), free(topk), free(topp), free(probs);
}

static void test_case_bc(st_set *a, st_set *b, st_set *c, void *scratch)
{
	float *in = get_f32(a, "scores_in", 2 * ROWS, V), *bb = get_f32(b, "after_all", ROWS, V),
	      *bp = get_f32(b, "probs", ROWS, V), *cc = get_f32(c, "after_all", ROWS, V);
	if (!in || !bb || !bp || !cc) {
		tap_ok(0, "caseB/caseC tensors present");
		goto out;
	}
	float row[V], p[V];
	int ok_b = 1, ok_bp = 1, ok_c = 1;
	double w, wb = 0, wbp = 0, wc = 0;
	mg_sampling sb = {.guidance = 3.0f, .temperature = 1.0f, .top_k = 250, .top_p = 1.0};
	mg_sampling sc = {.guidance = 3.0f, .temperature = 1.0f, .top_k = 50, .top_p = 1.0};
	for (int r = 0; r < ROWS; r++) {
		mg_cfg_combine(in + (size_t)r * V, in + (size_t)(ROWS + r) * V, 3.0f, V, row);
		mg_logits_process(row, V, &sb, scratch);
		ok_b &= same_scores(row, bb + (size_t)r * V, V, 1e-6, &w);
		wb = fmax(wb, w);
		mg_softmax(row, V, p);
		ok_bp &= same_probs(p, bp + (size_t)r * V, V, 1e-6, &w);
		wbp = fmax(wbp, w);
		mg_cfg_combine(in + (size_t)r * V, in + (size_t)(ROWS + r) * V, 3.0f, V, row);
		mg_logits_process(row, V, &sc, scratch);
		ok_c &= same_scores(row, cc + (size_t)r * V, V, 1e-6, &w);
		wc = fmax(wc, w);
	}
	tap_ok(ok_b, "caseB: CFG + top-k 250 matches (worst rel %.3g)", wb);
	tap_ok(ok_bp, "caseB: probs within 1e-6 relative (worst %.3g)", wbp);
	tap_ok(ok_c, "caseC: CFG + top-k 50 matches (worst rel %.3g)", wc);
out:
	free(in), free(bb), free(bp), free(cc);
}

static void test_case_d(st_set *d, void *scratch)
{
	float *in = get_f32(d, "scores_in", 1, 12), *k2 = get_f32(d, "after_top_k2", 1, 12),
	      *pin = get_f32(d, "scores_in_topp", 1, 8), *p8 = get_f32(d, "after_top_p08", 1, 8);
	if (!in || !k2 || !pin || !p8) {
		tap_ok(0, "caseD tensors present");
		goto out;
	}
	double w;
	mg_apply_top_k(in, 12, 2, scratch);
	tap_ok(same_scores(in, k2, 12, 0, &w) && count_finite(in, 12) == count_finite(k2, 12),
	       "caseD: top-k 2 keeps every tie at the 2nd largest value (%d kept)", count_finite(in, 12));
	mg_apply_top_p(pin, 8, 0.8, scratch);
	tap_ok(same_scores(pin, p8, 8, 0, &w), "caseD: top-p 0.8 alone (%d kept)", count_finite(pin, 8));
out:
	free(in), free(k2), free(pin), free(p8);
}

static void test_fixtures(void *scratch)
{
	const char *ref = tap_ref_dir();
	if (!ref) {
		tap_skip("logits_processors fixtures: reference data not found (set MUSICGEN_REF_DIR)");
		return;
	}
	st_set *a = open_case(ref, "caseA"), *b = open_case(ref, "caseB"), *c = open_case(ref, "caseC"),
	       *d = open_case(ref, "caseD");
	if (!a || !b || !c || !d)
		tap_ok(0, "logits_processors fixtures open");
	else {
		test_case_a(a, scratch);
		test_case_bc(a, b, c, scratch);
		test_case_d(d, scratch);

		/* top-k 1 then a draw always gives the argmax (HF's greedy). */
		float *in = get_f32(a, "scores_in", 2 * ROWS, V);
		int ok = in != NULL;
		mg_sampling s1 = {.guidance = 3.0f, .temperature = 1.0f, .top_k = 1, .top_p = 1.0};
		mg_sampling g = {.greedy = 1, .temperature = 1.0f, .top_p = 1.0};
		for (int r = 0; ok && r < ROWS; r++) {
			float row[V];
			mg_cfg_combine(in + (size_t)r * V, in + (size_t)(ROWS + r) * V, 3.0f, V, row);
			int want = mg_sample_row(row, V, &g, NULL, scratch);
			mg_logits_process(row, V, &s1, scratch);
			for (uint64_t seed = 0; seed < 50; seed++) {
				mg_rng rng;
				mg_rng_seed(&rng, seed);
				ok &= mg_sample_row(row, V, &s1, &rng, scratch) == want;
			}
		}
		tap_ok(ok, "top-k 1 with a draw equals greedy on every caseA row, 50 seeds");
		free(in);
	}
	st_close(a), st_close(b), st_close(c), st_close(d);
}

static void test_rng(void)
{
	/* Known answers: splitmix64(0) and xoshiro256** seeded from it. */
	mg_rng r;
	mg_rng_seed(&r, 0);
	tap_ok(r.s[0] == 0xe220a8397b1dcdafULL && r.s[1] == 0x6e789e6aa1b965f4ULL && r.s[2] == 0x06c45d188009454fULL &&
	           r.s[3] == 0xf88bb8a8724c81ecULL,
	       "seed 0: splitmix64 state words");
	uint64_t a = mg_rng_next(&r), b = mg_rng_next(&r), c = mg_rng_next(&r);
	tap_ok(a == 0x99ec5f36cb75f2b4ULL && b == 0xbf6e1f784956452aULL && c == 0x1a5f849d4933e6e0ULL,
	       "seed 0: first xoshiro256** outputs");
	mg_rng_seed(&r, 42);
	a = mg_rng_next(&r);
	tap_ok(a == 0x15780b2e0c2ec716ULL, "seed 42: first output");
	int in_range = 1;
	for (int i = 0; i < 100000; i++) {
		double u = mg_rng_uniform(&r);
		in_range &= u >= 0 && u < 1;
	}
	tap_ok(in_range, "uniform draws lie in [0, 1)");
}

/* Synthetic rows: ties, NaN, -inf. */
static void test_greedy_and_edges(void *scratch)
{
	float t[6] = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f, 3.0f};
	mg_sampling g = {.greedy = 1, .temperature = 1.0f, .top_p = 1.0};
	tap_ok(mg_sample_row(t, 6, &g, NULL, scratch) == 1, "greedy: lowest index among exact ties");
	float n[4] = {NAN, 2.0f, NAN, 5.0f};
	tap_ok(mg_argmax(n, 4) == 3, "argmax skips NaN");
	float allinf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
	mg_sampling s = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0};
	mg_rng r;
	mg_rng_seed(&r, 7);
	tap_ok(mg_sample_row(allinf, 4, &s, &r, scratch) == 0, "a row of -inf gives index 0, no crash");
	float one[5] = {-INFINITY, -INFINITY, 0.25f, -INFINITY, -INFINITY};
	int ok = 1;
	for (int i = 0; i < 1000; i++)
		ok &= mg_sample_row(one, 5, &s, &r, scratch) == 2;
	tap_ok(ok, "a row with one finite entry always draws it");

	/* top-k with k >= V keeps everything; k 0 is off. */
	float k[5] = {1, 2, 3, 4, 5}, k0[5];
	memcpy(k0, k, sizeof k);
	mg_apply_top_k(k, 5, 99, scratch);
	mg_sampling off = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0};
	mg_logits_process(k0, 5, &off, scratch);
	tap_ok(count_finite(k, 5) == 5 && count_finite(k0, 5) == 5, "top-k >= V and top-k 0 keep every entry");
	/* top-p never removes the largest, however small p is. */
	float p[5] = {0.1f, 0.2f, 9.0f, 0.3f, 0.4f};
	mg_apply_top_p(p, 5, 1e-6, scratch);
	tap_ok(count_finite(p, 5) == 1 && isfinite(p[2]), "top-p keeps at least the largest entry");
	/* Temperature divides. */
	float tt[2] = {1.4f, -0.7f};
	mg_apply_temperature(tt, 2, 0.7f);
	tap_ok(tt[0] == 1.4f / 0.7f && tt[1] == -0.7f / 0.7f, "temperature divides in float32");
}

/* Many draws from a known distribution: chi-square against the probs. */
static void test_distribution(void *scratch)
{
	enum { N = 6, DRAWS = 60000 };
	float sc[N] = {0.0f, 1.0f, -1.0f, 2.0f, 0.5f, -INFINITY};
	float pr[N];
	mg_softmax(sc, N, pr);
	mg_sampling s = {.temperature = 1.0f, .top_p = 1.0};
	mg_rng r;
	mg_rng_seed(&r, 1234);
	long cnt[N] = {0};
	for (int i = 0; i < DRAWS; i++) {
		int t = mg_sample_row(sc, N, &s, &r, scratch);
		if (t >= 0 && t < N)
			cnt[t]++;
	}
	double chi = 0;
	for (int i = 0; i < N - 1; i++) {
		double e = pr[i] * (double)DRAWS;
		chi += (cnt[i] - e) * (cnt[i] - e) / e;
	}
	/* 4 degrees of freedom: P(chi2 > 23.5) < 1e-4. */
	tap_ok(chi < 23.5 && cnt[N - 1] == 0, "draws follow softmax (chi-square %.2f over 4 dof, filtered entry never drawn)",
	       chi);

	/* The same seed gives the same tokens; another seed does not. */
	mg_rng r1, r2, r3;
	mg_rng_seed(&r1, 99);
	mg_rng_seed(&r2, 99);
	mg_rng_seed(&r3, 100);
	int same = 1, differ = 0;
	for (int i = 0; i < 200; i++) {
		int a = mg_sample_row(sc, N, &s, &r1, scratch), b = mg_sample_row(sc, N, &s, &r2, scratch),
		    c = mg_sample_row(sc, N, &s, &r3, scratch);
		same &= a == b;
		differ |= a != c;
	}
	tap_ok(same && differ, "a seed reproduces its draws; another seed differs");
}

static void test_distribution_fixture(void *scratch)
{
	const char *ref = tap_ref_dir();
	if (!ref) {
		tap_skip("caseA distribution: reference data not found");
		return;
	}
	st_set *a = open_case(ref, "caseA");
	float *topp = a ? get_f32(a, "after_top_p", ROWS, V) : NULL, *probs = a ? get_f32(a, "probs", ROWS, V) : NULL;
	if (!topp || !probs) {
		tap_ok(0, "caseA after_top_p / probs present");
		goto out;
	}
	enum { DRAWS = 40000 };
	static long cnt[V];
	mg_sampling s = {.temperature = 1.0f, .top_p = 1.0};
	mg_rng r;
	mg_rng_seed(&r, 2024);
	int ok = 1;
	double worst = 0;
	for (int row = 0; row < ROWS; row++) {
		memset(cnt, 0, sizeof cnt);
		for (int i = 0; i < DRAWS; i++)
			cnt[mg_sample_row(topp + (size_t)row * V, V, &s, &r, scratch)]++;
		double chi = 0;
		int dof = -1;
		for (int i = 0; i < V; i++) {
			double e = probs[(size_t)row * V + i] * (double)DRAWS;
			if (e == 0) {
				ok &= cnt[i] == 0;
				continue;
			}
			chi += (cnt[i] - e) * (cnt[i] - e) / e;
			dof++;
		}
		/* At most 4 dof here (top-k 5); 25 is beyond the 1e-4 tail for 4. */
		if (dof > 0)
			ok &= chi < 25;
		if (chi > worst)
			worst = chi;
	}
	tap_ok(ok, "caseA: %d draws per row match HF's probs (worst chi-square %.2f), filtered never drawn", DRAWS, worst);
out:
	free(topp), free(probs);
	st_close(a);
}

int main(void)
{
	void *scratch = malloc(mg_sampler_scratch_size(V));
	test_rng();
	test_greedy_and_edges(scratch);
	test_distribution(scratch);
	test_fixtures(scratch);
	test_distribution_fixture(scratch);
	free(scratch);
	return tap_done();
}
