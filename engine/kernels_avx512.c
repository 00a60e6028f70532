/* kernels_avx512.c - AVX-512 kernels: 16 floats per vector, a tile of 2
 * weight rows x up to 4 rows of X per pass over the columns, two
 * accumulators per output element (even / odd 16-column chunks); f16
 * weights are widened with F16C's 512-bit form. q8 multiplies bytes with
 * VNNI (vpdpbusd) against the activations quantised per block. Compiled for
 * AVX-512 (F, BW, VL, DQ, VNNI) function by function; only called when the
 * CPU has it. */
#include "autoconfig.h"

#include "engine/kernels.h"

#ifdef MG_KERNELS_X86

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define UNROLL _Pragma("GCC unroll 4")
#define INLINE static inline __attribute__((always_inline)) TARGET

/* 16 weights of row w (f32 or f16) from column c as floats; cols - c >= 16. */
INLINE __m512 wload(int F, const void *w, int c)
{
	if (F == MG_WEIGHTS_F32)
		return _mm512_loadu_ps((const float *)w + c);
	return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + c)));
}

/* The same for the last, partial chunk: the lanes of m only. */
INLINE __m512 wload_tail(int F, const void *w, int c, __mmask16 m)
{
	if (F == MG_WEIGHTS_F32)
		return _mm512_maskz_loadu_ps(m, (const float *)w + c);
	return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + c));
}

/* Output rows r .. r+NW-1 for X rows i .. i+NX-1. */
INLINE void tile(int F, int NW, int NX, const mg_mat *W, const float *bias, const float *X, float *Y, int r, int i)
{
	const int cols = W->cols, ld = W->ld;
	const size_t esz = F == MG_WEIGHTS_F32 ? 4 : 2;
	const void *w[2];
	const float *x[4];
	__m512 a0[2][4], a1[2][4];
	UNROLL
	for (int k = 0; k < NW; k++) {
		w[k] = (const char *)W->data + (size_t)(r + k) * (size_t)ld * esz;
		UNROLL
		for (int j = 0; j < NX; j++)
			a0[k][j] = a1[k][j] = _mm512_setzero_ps();
	}
	UNROLL
	for (int j = 0; j < NX; j++)
		x[j] = X + (size_t)(i + j) * (size_t)cols;

	int c = 0;
	for (; c + 32 <= cols; c += 32) {
		__m512 wa[2], wb[2];
		UNROLL
		for (int k = 0; k < NW; k++) {
			/* The same columns of the next tile's rows: the hardware
			 * prefetcher alone keeps too few lines in flight when the
			 * arithmetic per byte is high (q8). */
			_mm_prefetch((const char *)w[k] + (size_t)c * esz + 4096, _MM_HINT_T0);
			wa[k] = wload(F, w[k], c);
			wb[k] = wload(F, w[k], c + 16);
		}
		UNROLL
		for (int j = 0; j < NX; j++) {
			__m512 xa = _mm512_loadu_ps(x[j] + c), xb = _mm512_loadu_ps(x[j] + c + 16);
			UNROLL
			for (int k = 0; k < NW; k++) {
				a0[k][j] = _mm512_fmadd_ps(wa[k], xa, a0[k][j]);
				a1[k][j] = _mm512_fmadd_ps(wb[k], xb, a1[k][j]);
			}
		}
	}
	if (c + 16 <= cols) {
		__m512 wa[2];
		UNROLL
		for (int k = 0; k < NW; k++)
			wa[k] = wload(F, w[k], c);
		UNROLL
		for (int j = 0; j < NX; j++) {
			__m512 xa = _mm512_loadu_ps(x[j] + c);
			UNROLL
			for (int k = 0; k < NW; k++)
				a0[k][j] = _mm512_fmadd_ps(wa[k], xa, a0[k][j]);
		}
		c += 16;
	}
	if (c < cols) {
		__mmask16 m = (__mmask16)((1u << (cols - c)) - 1);
		__m512 wa[2];
		UNROLL
		for (int k = 0; k < NW; k++)
			wa[k] = wload_tail(F, w[k], c, m);
		UNROLL
		for (int j = 0; j < NX; j++) {
			__m512 xa = _mm512_maskz_loadu_ps(m, x[j] + c);
			UNROLL
			for (int k = 0; k < NW; k++)
				a1[k][j] = _mm512_fmadd_ps(wa[k], xa, a1[k][j]);
		}
	}
	UNROLL
	for (int k = 0; k < NW; k++)
		UNROLL
		for (int j = 0; j < NX; j++) {
			float s = _mm512_reduce_add_ps(_mm512_add_ps(a0[k][j], a1[k][j]));
			Y[(size_t)(i + j) * (size_t)W->rows + (size_t)(r + k)] = s + (bias ? bias[r + k] : 0.0f);
		}
}

/* One step of tile_q8: 64 columns from c (full) or the last 32 (the upper
 * lanes then stay 0). */
INLINE void q8_step(int full, int NW, int NX, const uint8_t *const *w, const float *const *sw,
                    const int8_t *const *x, const float *const *s8, int c, __m512 acc[2][4])
{
	const __m512i pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
	const __mmask64 mb = full ? ~(__mmask64)0 : (__mmask64)0xffffffffu;
	const int b = c / MG_Q8_BLOCK;
	__m512i wv[2];
	__m512 wsc[2];
	UNROLL
	for (int k = 0; k < NW; k++) {
		_mm_prefetch((const char *)w[k] + c + 16384, _MM_HINT_T1);
		wv[k] = full ? _mm512_loadu_si512(w[k] + c) : _mm512_maskz_loadu_epi8(mb, w[k] + c);
		__m128 s2 = full ? _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(sw[k] + b)))
		                 : _mm_load_ss(sw[k] + b);
		wsc[k] = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(s2));
	}
	UNROLL
	for (int j = 0; j < NX; j++) {
		__m512i xv = full ? _mm512_loadu_si512(x[j] + c) : _mm512_maskz_loadu_epi8(mb, x[j] + c);
		__m512 xs = full ? _mm512_loadu_ps(s8[j] + (size_t)b * 8)
		                 : _mm512_maskz_loadu_ps(0xff, s8[j] + (size_t)b * 8);
		UNROLL
		for (int k = 0; k < NW; k++) {
			__m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[k], xv);
			acc[k][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(wsc[k], xs), acc[k][j]);
		}
	}
}

/* q8: output rows r .. r+NW-1 for X rows i .. i+NX-1, 64 columns (two
 * blocks) per step. vpdpbusd multiplies the weight bytes (q + 128, unsigned)
 * by the activation codes (signed) and sums groups of four into 16 int32
 * lanes, 8 per block: exact. Converted to float, each lane is scaled by its
 * block's sw * sx and accumulated. The +128 offset adds 128 * sum(qx) per
 * block, removed at the end through sum_b sw_b * corr_b. */
INLINE void tile_q8(int NW, int NX, const mg_mat *W, const float *bias, const mg_xq *xq, float *Y, int r, int i)
{
	const int ld = W->ld, nb = ld / MG_Q8_BLOCK;
	const uint8_t *w[2];
	const float *sw[2];
	const int8_t *x[4];
	const float *s8[4], *corr[4];
	__m512 acc[2][4], cor[2][4];
	UNROLL
	for (int k = 0; k < NW; k++) {
		w[k] = (const uint8_t *)W->data + (size_t)(r + k) * (size_t)ld;
		sw[k] = W->scales + (size_t)(r + k) * (size_t)nb;
		UNROLL
		for (int j = 0; j < NX; j++)
			acc[k][j] = cor[k][j] = _mm512_setzero_ps();
	}
	UNROLL
	for (int j = 0; j < NX; j++) {
		x[j] = xq->q + (size_t)(i + j) * (size_t)ld;
		s8[j] = xq->s8 + (size_t)(i + j) * (size_t)nb * 8;
		corr[j] = xq->corr + (size_t)(i + j) * (size_t)nb;
	}

	int c = 0;
	for (; c + 64 <= ld; c += 64)
		q8_step(1, NW, NX, w, sw, x, s8, c, acc);
	if (c < ld) /* a last single block */
		q8_step(0, NW, NX, w, sw, x, s8, c, acc);
	for (int b = 0; b < nb; b += 16) {
		__mmask16 m = nb - b >= 16 ? 0xffff : (__mmask16)((1u << (nb - b)) - 1);
		UNROLL
		for (int j = 0; j < NX; j++) {
			__m512 cj = _mm512_maskz_loadu_ps(m, corr[j] + b);
			UNROLL
			for (int k = 0; k < NW; k++)
				cor[k][j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, sw[k] + b), cj, cor[k][j]);
		}
	}
	UNROLL
	for (int k = 0; k < NW; k++)
		UNROLL
		for (int j = 0; j < NX; j++) {
			float s = _mm512_reduce_add_ps(acc[k][j]) - _mm512_reduce_add_ps(cor[k][j]);
			Y[(size_t)(i + j) * (size_t)W->rows + (size_t)(r + k)] = s + (bias ? bias[r + k] : 0.0f);
		}
}

/* All X rows against weight rows r .. r+NW-1: groups of 4, then the rest. */
INLINE void rows_of(int F, int NW, const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n,
                    float *Y, int r)
{
	int i = 0;
	for (; i + 4 <= n; i += 4)
		F == MG_WEIGHTS_Q8 ? tile_q8(NW, 4, W, bias, xq, Y, r, i) : tile(F, NW, 4, W, bias, X, Y, r, i);
	switch (n - i) {
	case 3: F == MG_WEIGHTS_Q8 ? tile_q8(NW, 3, W, bias, xq, Y, r, i) : tile(F, NW, 3, W, bias, X, Y, r, i); break;
	case 2: F == MG_WEIGHTS_Q8 ? tile_q8(NW, 2, W, bias, xq, Y, r, i) : tile(F, NW, 2, W, bias, X, Y, r, i); break;
	case 1: F == MG_WEIGHTS_Q8 ? tile_q8(NW, 1, W, bias, xq, Y, r, i) : tile(F, NW, 1, W, bias, X, Y, r, i); break;
	default: break;
	}
}

INLINE void rows_fmt(int F, const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y,
                     int r0, int r1)
{
	int r = r0;
	for (; r + 2 <= r1; r += 2)
		rows_of(F, 2, W, bias, X, xq, n, Y, r);
	if (r < r1)
		rows_of(F, 1, W, bias, X, xq, n, Y, r);
}

static TARGET void rows_f32(const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y,
                            int r0, int r1)
{
	rows_fmt(MG_WEIGHTS_F32, W, bias, X, xq, n, Y, r0, r1);
}

static TARGET void rows_f16(const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y,
                            int r0, int r1)
{
	rows_fmt(MG_WEIGHTS_F16, W, bias, X, xq, n, Y, r0, r1);
}

static TARGET void rows_q8(const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y,
                           int r0, int r1)
{
	rows_fmt(MG_WEIGHTS_Q8, W, bias, X, xq, n, Y, r0, r1);
}

/* As mg_quant_x_generic, 16 columns at a time (same rounding). */
static TARGET void quant_x(const float *X, int n, int cols, int ld, const mg_xq *xq)
{
	const int nb = ld / MG_Q8_BLOCK;
	const __m512 sign = _mm512_set1_ps(-0.0f);
	for (int i = 0; i < n; i++) {
		const float *x = X + (size_t)i * cols;
		int8_t *q = xq->q + (size_t)i * ld;
		for (int b = 0; b < nb; b++) {
			int c0 = b * MG_Q8_BLOCK;
			int left = cols - c0;
			__mmask16 m0 = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
			__mmask16 m1 = left >= 32 ? 0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
			__m512 v0 = _mm512_maskz_loadu_ps(m0, x + c0), v1 = _mm512_maskz_loadu_ps(m1, x + c0 + 16);
			float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
			float inv = amax > 0 ? 127.0f / amax : 0.0f;
			__m512 vi = _mm512_set1_ps(inv);
			const __m512i lim = _mm512_set1_epi32(127);
			__m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vi)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vi));
			q0 = _mm512_max_epi32(_mm512_min_epi32(q0, lim), _mm512_sub_epi32(_mm512_setzero_si512(), lim));
			q1 = _mm512_max_epi32(_mm512_min_epi32(q1, lim), _mm512_sub_epi32(_mm512_setzero_si512(), lim));
			_mm_storeu_si128((__m128i *)(q + c0), _mm512_cvtepi32_epi8(q0));
			_mm_storeu_si128((__m128i *)(q + c0 + 16), _mm512_cvtepi32_epi8(q1));
			int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
			float s = amax / 127.0f;
			_mm256_storeu_ps(xq->s8 + ((size_t)i * nb + b) * 8, _mm256_set1_ps(s));
			xq->corr[(size_t)i * nb + b] = 128.0f * s * (float)sum;
		}
	}
}

static TARGET void to_f16(const float *src, uint16_t *dst, size_t n)
{
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm256_storeu_si256((__m256i *)(dst + i),
		                    _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		__m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
		_mm256_mask_storeu_epi16(dst + i, m, h);
	}
}

const mg_kernels mg_kernels_avx512 = {
	.name = "avx512",
	.rows = {NULL, rows_f32, rows_f16, rows_q8},
	.to_f16 = to_f16,
	.quant_x = quant_x,
};

#endif
