/* kernels_generic.c - portable C kernels: the fallback on CPUs without
 * AVX2, and the reference the SIMD sets are tested against. Each output
 * element is one dot product with 8 partial sums in a fixed order (f32,
 * f16) or a sum of exact integer block products (q8). */
#include "autoconfig.h"

#include <math.h>

#include "engine/kernels.h"
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

/* Integer dot product per block, scaled by both block scales. */
static float dot_q8(const uint8_t *w, const float *sw, const int8_t *x, const float *s8, int ld)
{
	float a = 0;
	for (int b = 0; b < ld / MG_Q8_BLOCK; b++) {
		int32_t d = 0;
		for (int c = b * MG_Q8_BLOCK; c < (b + 1) * MG_Q8_BLOCK; c++)
			d += ((int32_t)w[c] - 128) * x[c];
		a += (float)d * (sw[b] * s8[b * 8]);
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
	const uint8_t *d = W->data;
	int ld = W->ld, nb = ld / MG_Q8_BLOCK;
	for (int r = r0; r < r1; r++)
		for (int i = 0; i < n; i++)
			Y[(size_t)i * W->rows + r] = dot_q8(d + (size_t)r * ld, W->scales + (size_t)r * nb,
			                                    xq->q + (size_t)i * ld, xq->s8 + (size_t)i * nb * 8, ld) +
			                             (bias ? bias[r] : 0.0f);
}

static void to_f16(const float *src, uint16_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = st_f32_to_f16(src[i]);
}

void mg_quant_x_generic(const float *X, int n, int cols, int ld, const mg_xq *xq)
{
	int nb = ld / MG_Q8_BLOCK;
	for (int i = 0; i < n; i++) {
		const float *x = X + (size_t)i * cols;
		int8_t *q = xq->q + (size_t)i * ld;
		for (int b = 0; b < nb; b++) {
			int c0 = b * MG_Q8_BLOCK, c1 = c0 + MG_Q8_BLOCK < cols ? c0 + MG_Q8_BLOCK : cols;
			float amax = 0;
			for (int c = c0; c < c1; c++)
				amax = fmaxf(amax, fabsf(x[c]));
			float inv = amax > 0 ? 127.0f / amax : 0.0f;
			int32_t sum = 0;
			for (int c = c0; c < c0 + MG_Q8_BLOCK; c++) {
				long v = c < c1 ? lrintf(x[c] * inv) : 0;
				v = v > 127 ? 127 : v < -127 ? -127 : v;
				q[c] = (int8_t)v;
				sum += (int32_t)v;
			}
			float s = amax / 127.0f;
			for (int l = 0; l < 8; l++)
				xq->s8[((size_t)i * nb + b) * 8 + l] = s;
			xq->corr[(size_t)i * nb + b] = 128.0f * s * (float)sum;
		}
	}
}

const mg_kernels mg_kernels_generic = {
	.name = "generic",
	.rows = {NULL, rows_f32, rows_f16, rows_q8},
	.to_f16 = to_f16,
	.quant_x = mg_quant_x_generic,
};
