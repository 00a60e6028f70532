/* sampler.c - logits processors (guidance, temperature, top-k, top-p), softmax,
 * argmax and seeded draws. See sampler.h for the exact rules. */
#include "autoconfig.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/sampler.h"

/* ---- PRNG: splitmix64 seeding, xoshiro256** ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void mg_rng_seed(mg_rng *r, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t mg_rng_next(mg_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double mg_rng_uniform(mg_rng *r)
{
	return (double)(mg_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ---- processors ---- */

void mg_cfg_combine(const float *cond, const float *uncond, float g, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++) {
		float d = cond[i] - uncond[i];
		float scaled = d * g;
		out[i] = uncond[i] + scaled;
	}
}

size_t mg_sampler_scratch_size(int V)
{
	/* top-k: V floats; top-p: V (value, index) pairs; draw: V doubles. */
	return (size_t)(V > 0 ? V : 1) * 8 + 64;
}

void mg_apply_temperature(float *scores, int V, float temperature)
{
	float max = -INFINITY;
	int overflow = 0;
	for (int i = 0; i < V; i++) {
		if (isfinite(scores[i]) && scores[i] > max)
			max = scores[i];
		overflow |= isfinite(scores[i]) && !isfinite(scores[i] / temperature);
	}
	if (overflow) {
		/* A temperature so small that a score overflows float (inf - inf
		 * would make NaNs): any two distinct scores then differ by more
		 * than 1e30 after scaling, so the distribution is its limit, all
		 * the mass on the largest score(s). */
		for (int i = 0; i < V; i++)
			if (!isnan(scores[i]))
				scores[i] = scores[i] == max ? 0.0f : -INFINITY;
		return;
	}
	for (int i = 0; i < V; i++)
		scores[i] = scores[i] / temperature;
}

/* The m-th smallest (0-based) of a[0..n-1], reordering a; no NaNs in a. */
static float select_nth(float *a, int n, int m)
{
	int lo = 0, hi = n - 1;
	while (lo < hi) {
		float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
		float pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
		int i = lo, j = hi;
		while (i <= j) {
			while (a[i] < pivot)
				i++;
			while (a[j] > pivot)
				j--;
			if (i <= j) {
				float t = a[i];
				a[i] = a[j];
				a[j] = t;
				i++;
				j--;
			}
		}
		if (m <= j)
			hi = j;
		else if (m >= i)
			lo = i;
		else
			return a[m];
	}
	return a[m];
}

void mg_apply_top_k(float *scores, int V, int k, void *scratch)
{
	if (k <= 0 || V <= 0)
		return;
	int kk = k < V ? k : V;
	float *a = scratch;
	for (int i = 0; i < V; i++)
		a[i] = isnan(scores[i]) ? -INFINITY : scores[i];
	float thr = select_nth(a, V, V - kk);
	for (int i = 0; i < V; i++)
		if (scores[i] < thr)
			scores[i] = -INFINITY;
}

struct vi {
	float v;
	int i;
};

static int vi_less(const struct vi *a, const struct vi *b)
{
	return a->v < b->v || (a->v == b->v && a->i < b->i);
}

static void sift_down(struct vi *h, int root, int n)
{
	for (;;) {
		int c = 2 * root + 1;
		if (c >= n)
			return;
		if (c + 1 < n && vi_less(&h[c], &h[c + 1]))
			c++;
		if (!vi_less(&h[root], &h[c]))
			return;
		struct vi t = h[root];
		h[root] = h[c];
		h[c] = t;
		root = c;
	}
}

/* Ascending by value, ties by index (what a stable sort of the row gives). */
static void sort_vi(struct vi *a, int n)
{
	for (int i = n / 2 - 1; i >= 0; i--)
		sift_down(a, i, n);
	for (int end = n - 1; end > 0; end--) {
		struct vi t = a[0];
		a[0] = a[end];
		a[end] = t;
		sift_down(a, 0, end);
	}
}

void mg_apply_top_p(float *scores, int V, double top_p, void *scratch)
{
	if (!(top_p < 1.0) || V <= 0)
		return;
	/* Entries already at -inf have probability 0 and stay removed; sorting
	 * only the finite ones gives the same cumulative sums. */
	struct vi *a = scratch;
	int n = 0;
	for (int i = 0; i < V; i++)
		if (isfinite(scores[i]))
			a[n++] = (struct vi){scores[i], i};
	if (n == 0)
		return;
	sort_vi(a, n);
	double max = a[n - 1].v, sum = 0;
	for (int j = 0; j < n; j++)
		sum += exp((double)a[j].v - max);
	float thr = (float)(1.0 - top_p);
	double cum = 0;
	for (int j = 0; j < n - 1; j++) {
		float p = (float)(exp((double)a[j].v - max) / sum);
		cum += p;
		if ((float)cum <= thr)
			scores[a[j].i] = -INFINITY;
		else
			break; /* cumulative sums only grow */
	}
}

void mg_logits_process(float *scores, int V, const mg_sampling *s, void *scratch)
{
	if (s->temperature != 1.0f && s->temperature > 0)
		mg_apply_temperature(scores, V, s->temperature);
	if (s->top_k > 0)
		mg_apply_top_k(scores, V, s->top_k, scratch);
	if (s->top_p < 1.0)
		mg_apply_top_p(scores, V, s->top_p, scratch);
}

/* Largest non-NaN score; -inf when there is none. */
static float row_max(const float *scores, int V)
{
	float m = -INFINITY;
	for (int i = 0; i < V; i++)
		if (scores[i] > m)
			m = scores[i];
	return m;
}

void mg_softmax(const float *scores, int V, float *probs)
{
	float m = row_max(scores, V);
	if (!isfinite(m)) {
		for (int i = 0; i < V; i++)
			probs[i] = (m > 0 && scores[i] == m) ? 1.0f : 0.0f;
		return;
	}
	double sum = 0;
	for (int i = 0; i < V; i++)
		if (!isnan(scores[i]))
			sum += exp((double)scores[i] - m);
	for (int i = 0; i < V; i++)
		probs[i] = isnan(scores[i]) ? 0.0f : (float)(exp((double)scores[i] - m) / sum);
}

int mg_argmax(const float *scores, int V)
{
	int best = -1;
	for (int i = 0; i < V; i++)
		if (!isnan(scores[i]) && (best < 0 || scores[i] > scores[best]))
			best = i;
	return best < 0 ? 0 : best;
}

int mg_sample_row(const float *scores, int V, const mg_sampling *s, mg_rng *rng, void *scratch)
{
	if (s->greedy || V <= 1)
		return mg_argmax(scores, V);
	double u = mg_rng_uniform(rng); /* drawn first: one uniform per row, always */
	float m = row_max(scores, V);
	if (!isfinite(m))
		return mg_argmax(scores, V);
	double *e = scratch, sum = 0;
	for (int i = 0; i < V; i++) {
		/* filtered entries (-inf) weigh exactly 0; skip their exp() */
		e[i] = isnan(scores[i]) || scores[i] == -INFINITY ? 0.0 : exp((double)scores[i] - m);
		sum += e[i];
	}
	double target = u * sum, cum = 0;
	int last = -1;
	for (int i = 0; i < V; i++) {
		if (e[i] <= 0)
			continue;
		cum += e[i];
		last = i;
		if (cum > target)
			return i;
	}
	return last;
}
