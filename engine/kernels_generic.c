/* kernels_generic.c - portable C kernels: the fallback on CPUs without
 * AVX2, and the reference the SIMD sets are tested against. Each output
 * element is one dot product with 8 partial sums in a fixed order. */
#include "autoconfig.h"

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

/* Weights are dequantised (q * scale) and multiplied in float, as in the
 * SIMD sets. */
static float dot_q8(const int8_t *w, const float *scales, const float *x, int cols)
{
	float a[LANES] = {0};
	for (int b = 0; b * MG_Q8_BLOCK < cols; b++) {
		float s = scales[b];
		int c0 = b * MG_Q8_BLOCK, c1 = c0 + MG_Q8_BLOCK < cols ? c0 + MG_Q8_BLOCK : cols;
		for (int c = c0; c < c1; c++)
			a[(c - c0) % LANES] += ((float)w[c] * s) * x[c];
	}
	return reduce8(a);
}

static void rows_f32(const mg_mat *W, const float *bias, const float *X, int n, float *Y, int r0, int r1)
{
	const float *d = W->data;
	for (int r = r0; r < r1; r++)
		for (int i = 0; i < n; i++)
			Y[(size_t)i * W->rows + r] = dot_f32(d + (size_t)r * W->ld, X + (size_t)i * W->cols, W->cols) +
			                             (bias ? bias[r] : 0.0f);
}

static void rows_f16(const mg_mat *W, const float *bias, const float *X, int n, float *Y, int r0, int r1)
{
	const uint16_t *d = W->data;
	for (int r = r0; r < r1; r++)
		for (int i = 0; i < n; i++)
			Y[(size_t)i * W->rows + r] = dot_f16(d + (size_t)r * W->ld, X + (size_t)i * W->cols, W->cols) +
			                             (bias ? bias[r] : 0.0f);
}

static void rows_q8(const mg_mat *W, const float *bias, const float *X, int n, float *Y, int r0, int r1)
{
	const int8_t *d = W->data;
	int nb = W->ld / MG_Q8_BLOCK;
	for (int r = r0; r < r1; r++)
		for (int i = 0; i < n; i++)
			Y[(size_t)i * W->rows + r] = dot_q8(d + (size_t)r * W->ld, W->scales + (size_t)r * nb,
			                                    X + (size_t)i * W->cols, W->cols) +
			                             (bias ? bias[r] : 0.0f);
}

static void to_f16(const float *src, uint16_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = st_f32_to_f16(src[i]);
}

const mg_kernels mg_kernels_generic = {
	.name = "generic",
	.rows = {NULL, rows_f32, rows_f16, rows_q8},
	.to_f16 = to_f16,
};
