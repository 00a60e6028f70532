/* kernels_generic.c - portable C kernels: the fallback on CPUs without
 * AVX2, and the reference the SIMD sets are tested against. Each output
 * element is one dot product with 8 partial sums in a fixed order (f32,
 * f16) or a sum of exact integer block products (q8, int8 x int16). */
#include "autoconfig.h"

#include <math.h>
#include <string.h>

#include "engine/kernels.h"
#include "engine/nn.h"
#include "engine/safetensors.h"

#define LANES 8

static float reduce8(const float *a)
{
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static float dot_f32(const float *w, const float *x, int cols)
{
	float a[LANES] = {0};
	int c = 0;
	for (; c + LANES <= cols; c += LANES)
		for (int l = 0; l < LANES; l++)
			a[l] += w[c + l] * x[c + l];
	for (int l = 0; c < cols; c++, l++)
		a[l] += w[c] * x[c];
	return reduce8(a);
}

static float dot_f16(const uint16_t *w, const float *x, int cols)
{
	float a[LANES] = {0};
	int c = 0;
	for (; c + LANES <= cols; c += LANES)
		for (int l = 0; l < LANES; l++)
			a[l] += st_f16_to_f32(w[c + l]) * x[c + l];
	for (int l = 0; c < cols; c++, l++)
		a[l] += st_f16_to_f32(w[c]) * x[c];
	return reduce8(a);
}

/* Integer dot product per block, scaled by the block's weight scale; the
 * row's activation scale is applied by the caller. */
static float dot_q8(const int8_t *w, int step, const float *sw, const int16_t *x, int ld)
{
	float a = 0;
	for (int b = 0; b < ld / MG_Q8_BLOCK; b++) {
		int32_t d = 0;
		for (int c = 0; c < MG_Q8_BLOCK; c++)
			d += (int32_t)w[(size_t)b * step + c] * x[b * MG_Q8_BLOCK + c];
		a += (float)d * sw[b];
	}
	return a;
}

static void rows_f32(const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y, int r0,
                     int r1)
{
	const float *d = W->data;
	(void)xq;
	for (int r = r0; r < r1; r++)
		for (int i = 0; i < n; i++)
			Y[(size_t)i * W->rows + r] = dot_f32(d + (size_t)r * W->ld, X + (size_t)i * W->cols, W->cols) +
			                             (bias ? bias[r] : 0.0f);
}

static void rows_f16(const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y, int r0,
                     int r1)
{
	const uint16_t *d = W->data;
	(void)xq;
	for (int r = r0; r < r1; r++)
		for (int i = 0; i < n; i++)
			Y[(size_t)i * W->rows + r] = dot_f16(d + (size_t)r * W->ld, X + (size_t)i * W->cols, W->cols) +
			                             (bias ? bias[r] : 0.0f);
}

static void rows_q8(const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y, int r0,
                    int r1)
{
	(void)X;
	const int8_t *d = W->data;
	int ld = W->ld;
	for (int r = r0; r < r1; r++) {
		size_t scale, at = mg_q8_at(W, r, 0, &scale); /* rows or pairs */
		for (int i = 0; i < n; i++)
			Y[(size_t)i * W->rows + r] = xq->s[i] * dot_q8(d + at, mg_q8_block_step(W, r), W->scales + scale,
			                                               xq->q + (size_t)i * ld, ld) +
			                             (bias ? bias[r] : 0.0f);
	}
}

static void axpy(float *y, float a, const float *x, int n)
{
	for (int i = 0; i < n; i++)
		y[i] += a * x[i];
}

/* Element i of a float32 or half block. */
static float kv_at(const void *p, int half, size_t i)
{
	return half ? st_f16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

static void kv_scores(const float *q, const void *k, int nh, size_t bs, int fmt, int nk, int hd, float *sc,
                      size_t ss, const void *pf)
{
	(void)pf; /* the portable set leaves the prefetch to the hardware */
	size_t blk = mg_kv_block_bytes(fmt, hd);
	for (int j = 0; j < nk; j++)
		for (int u = 0; u < nh; u++) {
			const char *b = mg_kv_block_at(k, bs, blk, j / MG_KV_BLOCK, u);
			const float *qu = q + (size_t)u * hd;
			int lane = j % MG_KV_BLOCK;
			float s = 0;
			if (fmt == MG_KV_Q8) {
				const int8_t *c = (const int8_t *)b;
				for (int d = 0; d < hd; d++)
					s += qu[d] * (float)c[(size_t)d * MG_KV_BLOCK + lane];
				s *= mg_kv_scale(b, hd, lane);
			} else {
				for (int d = 0; d < hd; d++)
					s += qu[d] * kv_at(b, fmt == MG_KV_F16, (size_t)d * MG_KV_BLOCK + lane);
			}
			sc[(size_t)u * ss + j] = s;
		}
}

static void kv_wsum(const float *a, size_t as, const void *v, int nh, size_t bs, int fmt, int nk, int hd,
                    float *o, const void *pf)
{
	(void)pf;
	size_t blk = mg_kv_block_bytes(fmt, hd);
	for (size_t d = 0; d < (size_t)nh * hd; d++)
		o[d] = 0.0f;
	for (int j = 0; j < nk; j++)
		for (int u = 0; u < nh; u++) {
			const char *b = mg_kv_block_at(v, bs, blk, j / MG_KV_BLOCK, u);
			float *ou = o + (size_t)u * hd, aj = a[(size_t)u * as + j];
			int lane = j % MG_KV_BLOCK;
			if (fmt == MG_KV_Q8) {
				const int8_t *c = (const int8_t *)b + (size_t)lane * hd;
				float w = mg_kv_weight(fmt, aj, b, hd, lane);
				for (int d = 0; d < hd; d++) {
					float t = w * (float)c[d];
					ou[d] = ou[d] + t;
				}
			} else {
				for (int d = 0; d < hd; d++) {
					float t = aj * kv_at(b, fmt == MG_KV_F16, (size_t)lane * hd + d);
					ou[d] = ou[d] + t;
				}
			}
		}
}

static void to_f16(const float *src, uint16_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = st_f32_to_f16(src[i]);
}

void mg_quant_x_generic(const float *X, int n, int cols, int ld, const mg_xq *xq)
{
	for (int i = 0; i < n; i++) {
		const float *x = X + (size_t)i * cols;
		int16_t *q = xq->q + (size_t)i * ld;
		float amax = 0;
		for (int c = 0; c < cols; c++)
			amax = fmaxf(amax, fabsf(x[c]));
		float inv = amax > 0 ? (float)MG_XQ_MAX / amax : 0.0f;
		for (int c = 0; c < ld; c++)
			q[c] = c < cols ? mg_xq_code(x[c], inv) : 0;
		xq->s[i] = amax / (float)MG_XQ_MAX;
	}
}

/* Softmax of sc[0..n) in place, each weight already divided by the sum
 * (accumulated in double): sc[j] = exp(sc[j] - max) / sum. */
void mg_softmax_generic(float *sc, int n)
{
	float mx = -INFINITY;
	for (int j = 0; j < n; j++)
		if (sc[j] > mx)
			mx = sc[j];
	double sum = 0;
	for (int j = 0; j < n; j++) {
		float p = expf(sc[j] - mx);
		sc[j] = p;
		sum += p;
	}
	float inv = (float)(1.0 / sum);
	for (int j = 0; j < n; j++)
		sc[j] *= inv;
}

const mg_kernels mg_kernels_generic = {
	.name = "generic",
	.rows = {NULL, rows_f32, rows_f16, rows_q8},
	.to_f16 = to_f16,
	.quant_x = mg_quant_x_generic,
	.dot = dot_f32,
	.axpy = axpy,
	.kv_scores = kv_scores,
	.kv_wsum = kv_wsum,
	.gelu = mg_gelu,
	.softmax = mg_softmax_generic,
};
