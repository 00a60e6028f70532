/* nn.c - norms, activations and attention for the CPU path. Reductions are
 * accumulated in double and rounded once, which keeps the results within
 * float32 rounding of PyTorch's whatever its summation order. */
#include "autoconfig.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/kernels.h"
#include "engine/nn.h"

/* Eight lanes at a time through GCC/Clang vector types (SSE2 at least on
 * x86-64, whatever the CPU): reductions in double over 8 interleaved
 * partial sums, combined at the end (the same value as one running double
 * sum to within double rounding, far below the float result's); the
 * element-wise passes compute exactly the scalar expression per element. */
#define LANES 8
typedef float v8f __attribute__((vector_size(LANES * sizeof(float))));
typedef double v8d __attribute__((vector_size(LANES * sizeof(double))));

/* (Vectors stay inside the functions: none is passed or returned, which
 * would tie the ABI to the vector width.) */
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(v))

/* The norms run on the calling thread between a decoder step's products
 * (72 of them a step for the small model), so they get copies for AVX2 and
 * AVX-512, picked when the program loads: the same lanes in the same order
 * (the eight doubles one or two registers instead of four), so the same
 * bits; a norm of two rows of 1024 about four times as fast. The helpers
 * are inlined into each copy. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define NORM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef NORM_CLONES
#define NORM_CLONES
#endif
#define NORM_INLINE static inline __attribute__((always_inline))

NORM_INLINE double hsum(const v8d *v)
{
	double s = 0;
	for (int k = 0; k < LANES; k++)
		s += (*v)[k];
	return s;
}

/* sum of (x[i] - shift)^2 in double */
NORM_INLINE double sum_sq(const float *x, int d, double shift)
{
	v8d acc = {0};
	int i = 0;
	for (; i + LANES <= d; i += LANES) {
		v8f xv;
		LOAD8(xv, x + i);
		v8d c = __builtin_convertvector(xv, v8d) - shift;
		acc += c * c;
	}
	double s = hsum(&acc);
	for (; i < d; i++) {
		double c = (double)x[i] - shift;
		s += c * c;
	}
	return s;
}

NORM_INLINE double sum(const float *x, int d)
{
	v8d acc = {0};
	int i = 0;
	for (; i + LANES <= d; i += LANES) {
		v8f xv;
		LOAD8(xv, x + i);
		acc += __builtin_convertvector(xv, v8d);
	}
	double s = hsum(&acc);
	for (; i < d; i++)
		s += (double)x[i];
	return s;
}

NORM_CLONES void mg_rms_norm(const float *x, const float *w, float eps, int n, int d, float *y)
{
	for (int r = 0; r < n; r++) {
		const float *xr = x + (size_t)r * d;
		float *yr = y + (size_t)r * d;
		float var = (float)(sum_sq(xr, d, 0.0) / d);
		float inv = 1.0f / sqrtf(var + eps);
		int i = 0;
		for (; i + LANES <= d; i += LANES) {
			v8f xv, wv;
			LOAD8(xv, xr + i);
			LOAD8(wv, w + i);
			v8f o = wv * (xv * inv);
			memcpy(yr + i, &o, sizeof o);
		}
		for (; i < d; i++)
			yr[i] = w[i] * (xr[i] * inv);
	}
}

NORM_CLONES void mg_layer_norm(const float *x, const float *w, const float *b, float eps, int n, int d, float *y)
{
	for (int r = 0; r < n; r++) {
		const float *xr = x + (size_t)r * d;
		float *yr = y + (size_t)r * d;
		double mean = sum(xr, d) / d;
		double ss = sum_sq(xr, d, mean);
		float m = (float)mean, inv = (float)(1.0 / sqrt(ss / d + (double)eps));
		int i = 0;
		for (; i + LANES <= d; i += LANES) {
			v8f xv, wv, bv;
			LOAD8(xv, xr + i);
			LOAD8(wv, w + i);
			LOAD8(bv, b + i);
			v8f o = (xv - m) * inv * wv + bv;
			memcpy(yr + i, &o, sizeof o);
		}
		for (; i < d; i++)
			yr[i] = (xr[i] - m) * inv * w[i] + b[i];
	}
}

void mg_gelu(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void mg_gelu_tanh(float *x, size_t n)
{
	const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
	for (size_t i = 0; i < n; i++)
		x[i] = 0.5f * x[i] * (1.0f + tanhf(c * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
}

void mg_relu(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = x[i] > 0 ? x[i] : 0.0f;
}

size_t mg_kv_head_bytes(int fmt, int cap, int hd)
{
	return (size_t)(cap / MG_KV_BLOCK) * mg_kv_block_bytes(fmt, hd);
}

/* x[hd] as int8 codes c[d * stride] and their scale (max |x| / 127, 0 for
 * a zero row); a non-finite x gives a NaN scale, so that it still shows
 * in the logits. Four lanes at a time: the same scale and codes as the
 * scalar expressions (the tail's). */
static float q8_codes(const float *x, int hd, int8_t *c, size_t stride)
{
	mg_v4f vmax = {0, 0, 0, 0};
	mg_v4i fin = {-1, -1, -1, -1};
	float amax = 0;
	int finite = 1, d = 0;
	for (; d + 4 <= hd; d += 4) {
		mg_v4f m = mg_abs4(x + d);
		fin &= m <= FLT_MAX; /* false for inf and NaN */
		vmax = mg_max4(vmax, m);
	}
	for (int k = 0; k < 4; k++) {
		finite &= fin[k] != 0;
		amax = vmax[k] > amax ? vmax[k] : amax;
	}
	for (; d < hd; d++) {
		float m = fabsf(x[d]);
		finite &= isfinite(m) != 0;
		amax = m > amax ? m : amax;
	}
	if (!finite || amax == 0) {
		for (d = 0; d < hd; d++)
			c[(size_t)d * stride] = 0;
		return finite ? 0.0f : NAN;
	}
	float inv = 127.0f / amax;
	for (d = 0; d + 4 <= hd; d += 4) {
		mg_v4i q = mg_q8_code4(x + d, inv);
		for (int k = 0; k < 4; k++)
			c[(size_t)(d + k) * stride] = (int8_t)q[k];
	}
	for (; d < hd; d++)
		c[(size_t)d * stride] = (int8_t)mg_q8_code1(x[d], inv);
	return amax / 127.0f;
}

void mg_kv_store(void *hk, void *hv, size_t bs, int fmt, int p, int hd, const float *k, const float *v,
                 uint16_t *tmp)
{
	char *kb = (char *)hk + (size_t)(p / MG_KV_BLOCK) * bs, *vb = (char *)hv + (size_t)(p / MG_KV_BLOCK) * bs;
	int lane = p % MG_KV_BLOCK;
	if (fmt == MG_KV_Q8) {
		/* Keys: lane `lane` of each of the hd rows; values: row `lane`;
		 * the scales after the codes. */
		mg_kv_set_scale(kb, hd, lane, q8_codes(k, hd, (int8_t *)kb + lane, MG_KV_BLOCK));
		mg_kv_set_scale(vb, hd, lane, q8_codes(v, hd, (int8_t *)vb + (size_t)lane * hd, 1));
	} else if (fmt == MG_KV_F16) {
		const mg_kernels *kern = mg_kernels_active();
		uint16_t *kd = (uint16_t *)kb + lane;
		kern->to_f16(k, tmp, (size_t)hd);
		for (int d = 0; d < hd; d++)
			kd[(size_t)d * MG_KV_BLOCK] = tmp[d];
		kern->to_f16(v, (uint16_t *)vb + (size_t)lane * hd, (size_t)hd);
	} else {
		float *kd = (float *)kb + lane;
		for (int d = 0; d < hd; d++)
			kd[(size_t)d * MG_KV_BLOCK] = k[d];
		memcpy((float *)vb + (size_t)lane * hd, v, (size_t)hd * sizeof(float));
	}
}

/* Keys row r of an attention over a blocked cache reads. */
static int cache_keys(const mg_attn *a, int r)
{
	int s = r / a->q_per_seq, t = r % a->q_per_seq;
	return a->causal ? a->past + t + 1 : a->seq_keys ? a->seq_keys[s] : a->n_keys;
}

/* Thread ith's items [b, e) of an attention over a blocked cache: the
 * items split by the keys they read (each item counted as its row's keys
 * plus one), not by their number. A row without keys (the unconditional
 * row of guidance has no text) costs next to nothing, so the text's
 * attention of one prompt goes to both threads, not to one. */
static void cache_range(const mg_attn *a, int ith, int nth, int *b, int *e)
{
	int H = a->n_heads, rows = a->n_seq * a->q_per_seq;
	long long total = 0;
	for (int r = 0; r < rows; r++)
		total += (long long)H * ((long long)cache_keys(a, r) + 1);
	/* Item it goes to the thread its first unit of work falls in. */
	long long at = 0;
	*b = *e = rows * H;
	int found = 0;
	for (int r = 0, it = 0; r < rows; r++) {
		long long w = (long long)cache_keys(a, r) + 1;
		for (int h = 0; h < H; h++, it++, at += w) {
			int owner = (int)(at * nth / total);
			if (owner >= ith && !found) {
				*b = it;
				found = 1;
			}
			if (owner > ith) {
				*e = it;
				return;
			}
		}
	}
}

/* Items b..e of an attention over a blocked cache: the decoder's own
 * (causal) or the text's keys and values (seq_keys). The heads of one row
 * among the items go to the kernels together, so that they read the row's
 * cache as one stream (kernels.h). */
static void cache_rows(const mg_attn *a, float *sc, float *qs, int b, int e)
{
	const mg_kernels *k = mg_kernels_active();
	int H = a->n_heads, hd = a->head_dim, fmt = a->kv_fmt;
	size_t blk = mg_kv_block_bytes(fmt, hd), bs = (size_t)H * blk, ss = (size_t)a->max_keys;
	size_t row = (size_t)H * mg_kv_head_bytes(fmt, a->kv_cap, hd);
	char *kb = a->cache_k, *vb = a->cache_v;
	uint16_t *tmp = (uint16_t *)(qs + (size_t)H * hd); /* hd halves (mg_kv_store) */
	for (int it = b, nh; it < e; it += nh) {
		int h = it % H, r = it / H;
		int s = r / a->q_per_seq, nk = cache_keys(a, r);
		nh = e - it < H - h ? e - it : H - h; /* heads h .. h+nh-1 of row r */
		const float *q = a->q + (size_t)r * a->q_stride + (size_t)h * hd;
		float *o = a->out + (size_t)r * a->out_stride + (size_t)h * hd;
		if (nk <= 0) {
			memset(o, 0, (size_t)nh * hd * sizeof(float));
			continue;
		}
		char *kr = kb + (size_t)s * row + (size_t)h * blk, *vr = vb + (size_t)s * row + (size_t)h * blk;
		if (a->new_k)
			for (int u = 0; u < nh; u++)
				mg_kv_store(kr + (size_t)u * blk, vr + (size_t)u * blk, bs, fmt, a->past, hd,
				            a->new_k + (size_t)s * a->new_stride + (size_t)(h + u) * hd,
				            a->new_v + (size_t)s * a->new_stride + (size_t)(h + u) * hd, tmp);
		for (int c = 0; c < nh * hd; c++)
			qs[c] = q[c] * a->scale;
		/* While the keys are read, the values are fetched; while the
		 * values are read, the next row's keys. */
		const char *next_k = NULL;
		if (it + nh < e)
			next_k = kb + (size_t)((it + nh) / H / a->q_per_seq) * row;
		k->kv_scores(qs, kr, nh, bs, fmt, nk, hd, sc, ss, vr);
		for (int u = 0; u < nh; u++)
			k->softmax(sc + (size_t)u * ss, nk);
		k->kv_wsum(sc, ss, vr, nh, bs, fmt, nk, hd, o, next_k);
	}
}

static void attn_rows(void *arg, int ith, int nth)
{
	const mg_attn *a = arg;
	/* The SIMD dot product and axpy of the CPU's kernel set (kernels.h). */
	float (*dot)(const float *, const float *, int) = mg_kernels_active()->dot;
	void (*axpy)(float *, float, const float *, int) = mg_kernels_active()->axpy;
	int n_items = a->n_seq * a->q_per_seq * a->n_heads, hd = a->head_dim, b, e;
	float *sc = a->scratch + (size_t)ith * mg_attn_scratch(a->max_keys, hd, a->n_heads);
	float *qs = sc + (size_t)a->n_heads * a->max_keys; /* the scaled queries of a row's heads */
	if (a->kv_cap > 0) {
		cache_range(a, ith, nth, &b, &e);
		cache_rows(a, sc, qs, b, e);
		return;
	}
	mg_pool_range(n_items, ith, nth, 1, &b, &e);
	for (int it = b; it < e; it++) {
		int h = it % a->n_heads, r = it / a->n_heads;
		int s = r / a->q_per_seq, t = r % a->q_per_seq;
		int nk = a->causal ? a->past + t + 1 : a->n_keys;
		const float *q = a->q + (size_t)r * a->q_stride + (size_t)h * hd;
		size_t kvo = (size_t)s * a->kv_seq_stride + (size_t)h * hd;
		const float *kb = a->k + kvo, *vb = a->v + kvo;
		const int *mask = a->key_mask ? a->key_mask + (size_t)s * a->n_keys : NULL;
		const float *pb = a->pos_bias ? a->pos_bias + (size_t)h * (2 * a->n_keys - 1) + a->n_keys - 1 - t : NULL;
		float *o = a->out + (size_t)r * a->out_stride + (size_t)h * hd;
		/* HF scales the query before the product (q_proj(h) * scaling). */
		for (int c = 0; c < hd; c++)
			qs[c] = q[c] * a->scale;
		float mx = -INFINITY;
		int any = 0;
		for (int j = 0; j < nk; j++) {
			if (mask && !mask[j]) {
				sc[j] = -INFINITY;
				continue;
			}
			float d = dot(qs, kb + (size_t)j * a->kv_stride, hd);
			if (pb)
				d += pb[j];
			sc[j] = d;
			if (d > mx)
				mx = d;
			any = 1;
		}
		memset(o, 0, (size_t)hd * sizeof(float));
		if (!any)
			continue;
		double sum = 0;
		for (int j = 0; j < nk; j++) {
			float p = sc[j] == -INFINITY ? 0.0f : expf(sc[j] - mx);
			sc[j] = p;
			sum += p;
		}
		float inv = (float)(1.0 / sum);
		for (int j = 0; j < nk; j++) {
			if (sc[j] == 0.0f)
				continue;
			axpy(o, sc[j] * inv, vb + (size_t)j * a->kv_stride, hd);
		}
	}
}

size_t mg_attn_scratch(int max_keys, int head_dim, int n_heads)
{
	/* scores and scaled queries of a row's heads, hd halves */
	return (size_t)n_heads * ((size_t)max_keys + (size_t)head_dim) + (size_t)head_dim;
}

void mg_attention(mg_pool *pool, const mg_attn *a)
{
	mg_pool_run(pool, attn_rows, (void *)a);
}
