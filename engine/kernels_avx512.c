/* kernels_avx512.c - AVX-512 kernels: 16 floats per vector, a tile of 2
 * weight rows x up to 4 rows of X per pass over the columns, two
 * accumulators per output element (even / odd 16-column chunks); f16
 * weights are widened with F16C's 512-bit form; q8 weights are widened to
 * int16 and multiplied with vpmaddwd against int16 activations. Compiled
 * for AVX-512 (F, BW, VL, DQ) function by function; only called when the
 * CPU has it. */
#include "autoconfig.h"

#include "engine/kernels.h"

#ifdef MG_KERNELS_X86

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define TARGET_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define INLINE_VNNI static inline __attribute__((always_inline)) TARGET_VNNI
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
INLINE void tile(int F, int NW, int NX, const mg_mat *W, const float *bias, const float *X, float *Y, int r, int i,
                 mg_ahead a)
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
			/* Every line ahead of its loads, as far as the tuning says
			 * (docs/PERFORMANCE.md, items 32, 34, 47 and 54). */
			mg_weight_prefetch((const char *)w[k] + (size_t)c * esz, F == MG_WEIGHTS_F32 ? 2 : 1, a);
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

/* The body of a q8 tile: DOT_ACC(acc, w, x) adds the pair sums of w * x
 * (int16 lanes) to the int32 lanes of acc. One body for both sets, so the
 * two compute the same exact integer sums the same way. */
#define TILE_Q8_BODY(DOT_ACC)                                                                                       \
{                                                                                                                   \
	const int nb = W->ld / MG_Q8_BLOCK, step = mg_q8_block_step(W, r);                                          \
	const int8_t *w[2];                                                                                         \
	const float *sw[2];                                                                                         \
	const int16_t *x[4];                                                                                        \
	mg_q8_tile_at(W, xq, NW, NX, r, i, w, sw, x);                                                               \
	__m512 acc[2][4];                                                                                           \
	UNROLL                                                                                                      \
	for (int k = 0; k < NW; k++)                                                                                \
		UNROLL                                                                                              \
		for (int j = 0; j < NX; j++)                                                                        \
			acc[k][j] = _mm512_setzero_ps();                                                            \
                                                                                                                    \
	for (int b = 0; b < nb; b++) {                                                                              \
		const int c0 = b * MG_Q8_BLOCK;                                                                     \
		__m512i d[2][4];                                                                                    \
		const int8_t *wb[2]; /* block b of each row, indexed by column */                                   \
		UNROLL                                                                                              \
		for (int k = 0; k < NW; k++) {                                                                      \
			wb[k] = w[k] + (size_t)b * step - c0;                                                       \
			mg_weight_prefetch((const char *)(wb[k] + c0), 1, a);                                        \
		}                                                                                                   \
		/* The block in pieces of 32 columns, summed exactly in int32. */                                   \
		UNROLL                                                                                              \
		for (int c = c0; c < c0 + MG_Q8_BLOCK; c += 32) {                                                   \
			__m512i wv[2];                                                                              \
			UNROLL                                                                                      \
			for (int k = 0; k < NW; k++)                                                                \
				wv[k] = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(wb[k] + c)));     \
			UNROLL                                                                                      \
			for (int j = 0; j < NX; j++) {                                                              \
				__m512i xv = _mm512_loadu_si512(x[j] + c);                                          \
				UNROLL                                                                              \
				for (int k = 0; k < NW; k++) /* the first piece starts the sums */                \
					d[k][j] = c == c0 ? _mm512_madd_epi16(wv[k], xv) : DOT_ACC(d[k][j], wv[k], xv); \
			}                                                                                           \
		}                                                                                                   \
		UNROLL                                                                                              \
		for (int k = 0; k < NW; k++) {                                                                      \
			__m512 sc = _mm512_set1_ps(sw[k][b]);                                                       \
			UNROLL                                                                                      \
			for (int j = 0; j < NX; j++)                                                                \
				acc[k][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d[k][j]), sc, acc[k][j]);            \
		}                                                                                                   \
	}                                                                                                           \
	UNROLL                                                                                                      \
	for (int k = 0; k < NW; k++)                                                                                \
		UNROLL                                                                                              \
		for (int j = 0; j < NX; j++) {                                                                      \
			float s = xq->s[i + j] * _mm512_reduce_add_ps(acc[k][j]);                                   \
			Y[(size_t)(i + j) * (size_t)W->rows + (size_t)(r + k)] = s + (bias ? bias[r + k] : 0.0f);   \
		}                                                                                                   \
}

/* q8: output rows r .. r+NW-1 for X rows i .. i+NX-1, one block per step:
 * the weight bytes widened to int16 (shared by the X rows), vpmaddwd
 * against the int16 activations (pairs summed into 16 int32 lanes, exact),
 * converted once per block and scaled by the block's weight scale. The
 * row's activation scale multiplies the sum at the end. */
#define ADD_MADD(a, w, x) _mm512_add_epi32((a), _mm512_madd_epi16((w), (x)))
INLINE void tile_q8(int NW, int NX, const mg_mat *W, const float *bias, const mg_xq *xq, float *Y, int r, int i,
                    mg_ahead a)
TILE_Q8_BODY(ADD_MADD)

/* The same with AVX-512 VNNI: vpdpwssd multiplies, sums the pairs and
 * accumulates in one instruction (the same exact int32 sums). */
INLINE_VNNI void tile_q8_vnni(int NW, int NX, const mg_mat *W, const float *bias, const mg_xq *xq, float *Y, int r,
                              int i, mg_ahead a)
TILE_Q8_BODY(_mm512_dpwssd_epi32)

/* All X rows against weight rows r .. r+NW-1 (q8, VNNI). */
INLINE_VNNI void rows_of_q8_vnni(int NW, const mg_mat *W, const float *bias, const mg_xq *xq, int n, float *Y, int r,
                                 mg_ahead a)
{
#define TILE(NX, i) tile_q8_vnni(NW, NX, W, bias, xq, Y, r, i, a)
	MG_X_GROUPS(n, TILE);
#undef TILE
}

static TARGET_VNNI void rows_q8_vnni(const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n,
                                     float *Y, int r0, int r1)
{
	(void)X;
	const mg_tuning *t = mg_tuning_active();
	int r = r0, two = t->pass_rows[MG_WEIGHTS_Q8] == 2;
	const mg_ahead a = mg_ahead_for(t, MG_WEIGHTS_Q8);
	for (; two && r + 2 <= r1 && mg_rows_pass2(W, r); r += 2)
		rows_of_q8_vnni(2, W, bias, xq, n, Y, r, a);
	for (; r < r1; r++)
		rows_of_q8_vnni(1, W, bias, xq, n, Y, r, a);
}

/* All X rows against weight rows r .. r+NW-1: groups of 4, then the rest. */
INLINE void rows_of(int F, int NW, const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n,
                    float *Y, int r, mg_ahead a)
{
#define TILE(NX, i) (F == MG_WEIGHTS_Q8 ? tile_q8(NW, NX, W, bias, xq, Y, r, i, a) : tile(F, NW, NX, W, bias, X, Y, r, i, a))
	MG_X_GROUPS(n, TILE);
#undef TILE
}

INLINE void rows_fmt(int F, const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y,
                     int r0, int r1)
{
	const mg_tuning *t = mg_tuning_active();
	int r = r0, two = t->pass_rows[F] == 2;
	const mg_ahead a = mg_ahead_for(t, F);
	for (; two && r + 2 <= r1 && mg_rows_pass2(W, r); r += 2)
		rows_of(F, 2, W, bias, X, xq, n, Y, r, a);
	for (; r < r1; r++)
		rows_of(F, 1, W, bias, X, xq, n, Y, r, a);
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
	const __m512 sign = _mm512_set1_ps(-0.0f);
	const __m512i lim = _mm512_set1_epi32(MG_XQ_MAX), nlim = _mm512_set1_epi32(-MG_XQ_MAX);
	for (int i = 0; i < n; i++) {
		const float *x = X + (size_t)i * cols;
		int16_t *q = xq->q + (size_t)i * ld;
		__m512 mx = _mm512_setzero_ps();
		for (int c = 0; c < cols; c += 16) {
			__mmask16 m = cols - c >= 16 ? 0xffff : (__mmask16)((1u << (cols - c)) - 1);
			mx = _mm512_max_ps(mx, _mm512_andnot_ps(sign, _mm512_maskz_loadu_ps(m, x + c)));
		}
		float amax = _mm512_reduce_max_ps(mx);
		__m512 inv = _mm512_set1_ps(amax > 0 ? (float)MG_XQ_MAX / amax : 0.0f);
		for (int c = 0; c < ld; c += 16) {
			int left = cols - c;
			__mmask16 m = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
			__m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + c), inv));
			/* Padding 0 even when inv overflowed (0 * inf). */
			v = _mm512_maskz_mov_epi32(m, _mm512_max_epi32(_mm512_min_epi32(v, lim), nlim));
			_mm256_storeu_si256((__m256i *)(q + c), _mm512_cvtepi32_epi16(v));
		}
		xq->s[i] = amax / (float)MG_XQ_MAX;
	}
}

static TARGET float dot(const float *a, const float *b, int n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	int i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
	}
	if (i + 16 <= n) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		i += 16;
	}
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static TARGET void axpy(float *y, float a, const float *x, int n)
{
	__m512 va = _mm512_set1_ps(a);
	int i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_mul_ps(va, _mm512_loadu_ps(x + i))));
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		_mm512_mask_storeu_ps(y + i, m,
		                      _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + i))));
	}
}

/* 16 cache values (f32, halves or int8 codes) from element i as floats;
 * the lanes of m. */
INLINE __m512 kv_load16(const void *p, int fmt, size_t i, __mmask16 m)
{
	if (fmt == MG_KV_Q8)
		return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, (const int8_t *)p + i)));
	if (fmt == MG_KV_F16)
		return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
	return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}

/* Four dimensions d .. d+3 of one key block into the accumulators a[0..3]
 * (a[0] alone for a single d: the head's last dimensions). */
INLINE void kv_score4(int fmt, __m512 *a, const float *q, const char *kb, int d)
{
	size_t e = (size_t)d * MG_KV_BLOCK;
	a[0] = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), kv_load16(kb, fmt, e, 0xffff), a[0]);
	a[1] = _mm512_fmadd_ps(_mm512_set1_ps(q[d + 1]), kv_load16(kb, fmt, e + MG_KV_BLOCK, 0xffff), a[1]);
	a[2] = _mm512_fmadd_ps(_mm512_set1_ps(q[d + 2]), kv_load16(kb, fmt, e + 2 * MG_KV_BLOCK, 0xffff), a[2]);
	a[3] = _mm512_fmadd_ps(_mm512_set1_ps(q[d + 3]), kv_load16(kb, fmt, e + 3 * MG_KV_BLOCK, 0xffff), a[3]);
}

INLINE void kv_score1(int fmt, __m512 *a, const float *q, const char *kb, int d)
{
	a[0] = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), kv_load16(kb, fmt, (size_t)d * MG_KV_BLOCK, 0xffff), a[0]);
}

/* The block's scores from its accumulators, stored for the keys in use. */
INLINE void kv_score_store(int fmt, const __m512 *a, const char *kb, int hd, float *sc, __mmask16 m)
{
	__m512 r = _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3]));
	if (fmt == MG_KV_Q8)
		r = _mm512_mul_ps(r, _mm512_loadu_ps(kb + mg_kv_scales_at(hd)));
	_mm512_mask_storeu_ps(sc, m, r);
}

/* The attention's loops start on 32-byte boundaries: without it, where
 * the linker put them moved the half-precision attention by 20% from one
 * build to the next (docs/PERFORMANCE.md, item 39). */
#pragma GCC push_options
#pragma GCC optimize("align-loops=32")

/* How far ahead of the unit in use (one head's block, kernels.h
 * mg_kv_walk) a pass asks for its stream: into L1 about 2 KiB ahead, into
 * L2 4 KiB beyond that (the stream's lines touched twice before use, as
 * the weights': docs/PERFORMANCE.md, item 39). */
#define KV_PREFETCH_L1 2048
#define KV_PREFETCH_L2 4096

/* The two walks ahead of a pass (mg_kv_walk): w[0] KV_PREFETCH_L1 bytes
 * ahead, into L1; w[1] KV_PREFETCH_L2 beyond that, into L2. */
INLINE void kv_walks(mg_kv_walk *w, const void *k, const void *pf, int nh, size_t bs, size_t blk, int nb)
{
	int d1 = mg_kv_units(KV_PREFETCH_L1, blk);
	w[0] = mg_kv_walk_at(k, pf, nh, bs, blk, nb, d1);
	w[1] = mg_kv_walk_at(k, pf, nh, bs, blk, nb, d1 + mg_kv_units(KV_PREFETCH_L2, blk));
}

/* The prefetches for the next unit of a pass (both addresses first: in
 * the other order the q8 attention ran 6% slower). */
INLINE void kv_ahead(mg_kv_walk *w, int l1)
{
	const char *p1 = mg_kv_next(&w[0]), *p2 = mg_kv_next(&w[1]);
	if (l1) /* the tuning's kv_l1: not on AMD */
		mg_kv_fetch(&w[0], p1, 1);
	mg_kv_fetch(&w[1], p2, 0);
}

INLINE void kv_scores_fmt(int fmt, const float *q, const void *k, int nh, size_t bs, int nk, int hd, float *sc,
                          size_t ss, const void *pf)
{
	size_t blk = mg_kv_block_bytes(fmt, hd);
	int nb = (nk + MG_KV_BLOCK - 1) / MG_KV_BLOCK;
	mg_kv_walk w[2];
	kv_walks(w, k, pf, nh, bs, blk, nb);
	const int l1 = mg_tuning_active()->kv_l1;
	for (int j0 = 0; j0 < nk; j0 += MG_KV_BLOCK)
		for (int u = 0; u < nh; u++) {
			const char *kb = mg_kv_block_at(k, bs, blk, j0 / MG_KV_BLOCK, u);
			const float *qu = q + (size_t)u * hd;
			kv_ahead(w, l1);
			__m512 a[4];
			UNROLL
			for (int c = 0; c < 4; c++)
				a[c] = _mm512_setzero_ps();
			int d = 0;
			for (; d + 4 <= hd; d += 4)
				kv_score4(fmt, a, qu, kb, d);
			for (; d < hd; d++)
				kv_score1(fmt, a, qu, kb, d);
			__mmask16 m = (__mmask16)((1u << mg_kv_lanes(nk, j0)) - 1);
			kv_score_store(fmt, a, kb, hd, sc + (size_t)u * ss + j0, m);
		}
}

static TARGET void kv_scores(const float *q, const void *k, int nh, size_t bs, int fmt, int nk, int hd, float *sc,
                             size_t ss, const void *pf)
{
	MG_KV_SPECIALISE(kv_scores_fmt, fmt, q, k, nh, bs, nk, hd, sc, ss, pf);
}

/* Position j's term (weight w, its value row at vb, dimensions d0 ..
 * d0+63, lanes m) added to the accumulators o[0..3]: a product, then a
 * sum. */
INLINE void kv_wterm(int fmt, __m512 *o, float w, const char *vb, size_t e, const __mmask16 *m)
{
	__m512 aj = _mm512_set1_ps(w);
	o[0] = _mm512_add_ps(o[0], _mm512_mul_ps(aj, kv_load16(vb, fmt, e, m[0])));
	o[1] = _mm512_add_ps(o[1], _mm512_mul_ps(aj, kv_load16(vb, fmt, e + 16, m[1])));
	o[2] = _mm512_add_ps(o[2], _mm512_mul_ps(aj, kv_load16(vb, fmt, e + 32, m[2])));
	o[3] = _mm512_add_ps(o[3], _mm512_mul_ps(aj, kv_load16(vb, fmt, e + 48, m[3])));
}

/* One head's block vb, positions j0 .. j0+n-1 (weights a), added to its
 * output o: the running sums live in o between blocks (the same values as
 * in registers), 64 dimensions at a time. */
INLINE void kv_wsum_block(int fmt, const float *a, const char *vb, int j0, int n, int hd, float *o)
{
	for (int d0 = 0; d0 < hd; d0 += 64) {
		__mmask16 m[4];
		__m512 acc[4];
		UNROLL
		for (int c = 0; c < 4; c++) {
			int left = hd - d0 - 16 * c;
			m[c] = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
			acc[c] = _mm512_maskz_loadu_ps(m[c], o + d0 + 16 * c);
		}
		for (int lane = 0; lane < n; lane++)
			kv_wterm(fmt, acc, mg_kv_weight(fmt, a[j0 + lane], vb, hd, lane), vb, (size_t)lane * hd + d0, m);
		UNROLL
		for (int c = 0; c < 4; c++)
			_mm512_mask_storeu_ps(o + d0 + 16 * c, m[c], acc[c]);
	}
}

INLINE void kv_wsum_fmt(int fmt, const float *a, size_t as, const void *v, int nh, size_t bs, int nk, int hd,
                        float *o, const void *pf)
{
	size_t blk = mg_kv_block_bytes(fmt, hd);
	int nb = (nk + MG_KV_BLOCK - 1) / MG_KV_BLOCK;
	mg_kv_walk w[2];
	kv_walks(w, v, pf, nh, bs, blk, nb);
	const int l1 = mg_tuning_active()->kv_l1;
	memset(o, 0, (size_t)nh * hd * sizeof *o);
	for (int j0 = 0; j0 < nk; j0 += MG_KV_BLOCK)
		for (int u = 0; u < nh; u++) {
			kv_ahead(w, l1);
			kv_wsum_block(fmt, a + (size_t)u * as, mg_kv_block_at(v, bs, blk, j0 / MG_KV_BLOCK, u), j0,
			              mg_kv_lanes(nk, j0), hd, o + (size_t)u * hd);
		}
}

static TARGET void kv_wsum(const float *a, size_t as, const void *v, int nh, size_t bs, int fmt, int nk, int hd,
                           float *o, const void *pf)
{
	MG_KV_SPECIALISE(kv_wsum_fmt, fmt, a, as, v, nh, bs, nk, hd, o, pf);
}

#pragma GCC pop_options

/* exp(x) for -104 <= x <= 0, 16 at a time: x = k ln2 + r, |r| <= ln2 / 2
 * (ln2 in two parts, k ln2_hi exact), a degree-7 Taylor polynomial for
 * e^r (truncation below 5e-9 relative), times 2^k by scalef. */
INLINE __m512 exp16(__m512 x)
{
	x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
	__m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
	                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
	static const float c[] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
	__m512 p = _mm512_set1_ps(c[0]);
	for (int i = 1; i < 8; i++)
		p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[i]));
	return _mm512_scalef_ps(p, k);
}

/* GELU, 16 at a time. With u = |x| / sqrt 2: for u <= 1, erf(u) = u P(u^2)
 * (P: degree 6, least squares in relative error, 1.4e-9); above,
 * erfc(u) = exp(Q(z) - u^2) with z = (u - 3) / 2 over [1, 5] (Q: degree 9
 * fit of log erfc(u) + u^2, 1.3e-8; u is held at 5 in Q beyond, where
 * erfc < 2e-12). 1 + erf(x / sqrt 2) is then 1 +- u P or,
 * in the tails, 2 - erfc or erfc itself, so negative x keep their
 * relative accuracy. */
static TARGET void gelu(float *x, size_t n)
{
	static const float P[] = {7.898209878e-05f, -8.024353883e-04f, 5.190053489e-03f, -2.685480937e-02f,
	                          1.128361225e-01f, -3.761262894e-01f, 1.128379226e+00f};
	static const float Q[] = {-5.645094643e-05f, 2.880526008e-04f, -9.276569472e-04f, 2.749865875e-03f,
	                          -7.853926159e-03f, 2.165459841e-02f,  -5.929669738e-02f, 1.704230011e-01f,
	                          -6.075072885e-01f, -1.720363021e+00f};
	const __m512 sign = _mm512_set1_ps(-0.0f), one = _mm512_set1_ps(1.0f);
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m512 v = _mm512_maskz_loadu_ps(m, x + i);
		__m512 u = _mm512_andnot_ps(sign, _mm512_mul_ps(v, _mm512_set1_ps((float)M_SQRT1_2)));
		__m512 s = _mm512_mul_ps(u, u);
		__m512 p = _mm512_set1_ps(P[0]);
		for (int k = 1; k < 7; k++)
			p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(P[k]));
		__m512 e = _mm512_mul_ps(u, p); /* erf(u), u <= 1 */
		__m512 z = _mm512_mul_ps(_mm512_sub_ps(_mm512_min_ps(u, _mm512_set1_ps(5.0f)), _mm512_set1_ps(3.0f)),
		                         _mm512_set1_ps(0.5f));
		__m512 q = _mm512_set1_ps(Q[0]);
		for (int k = 1; k < 10; k++)
			q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(Q[k]));
		__m512 c = exp16(_mm512_sub_ps(q, s)); /* erfc(u), u > 1 */
		__mmask16 big = _mm512_cmp_ps_mask(u, one, _CMP_GT_OQ);
		__mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
		/* 1 + erf(x / sqrt 2) */
		__m512 small_pos = _mm512_add_ps(one, e), small_neg = _mm512_sub_ps(one, e);
		__m512 big_pos = _mm512_sub_ps(_mm512_set1_ps(2.0f), c);
		__m512 t = _mm512_mask_blend_ps(neg, small_pos, small_neg);
		t = _mm512_mask_blend_ps(big, t, _mm512_mask_blend_ps(neg, big_pos, c));
		_mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), t));
	}
}

static TARGET void softmax(float *sc, int n)
{
	__m512 mx = _mm512_set1_ps(-INFINITY);
	for (int j = 0; j < n; j += 16) {
		__mmask16 m = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
		mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, sc + j));
	}
	__m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
	__m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
	for (int j = 0; j < n; j += 16) {
		__mmask16 m = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
		__m512 p = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, sc + j), vmax)));
		_mm512_mask_storeu_ps(sc + j, m, p);
		s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
		s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1))));
	}
	__m512 inv = _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(s0, s1))));
	for (int j = 0; j < n; j += 16) {
		__mmask16 m = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
		_mm512_mask_storeu_ps(sc + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, sc + j), inv));
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

/* What the AVX-512 sets share: all but the q8 product and its quantiser. */
#define AVX512_SHARED                                                                              \
	.to_f16 = to_f16, .dot = dot, .axpy = axpy, .kv_scores = kv_scores, \
	.kv_wsum = kv_wsum, .gelu = gelu, .softmax = softmax

const mg_kernels mg_kernels_avx512 = {
	.name = "avx512",
	.rows = {NULL, rows_f32, rows_f16, rows_q8},
	.quant_x = quant_x,
	AVX512_SHARED,
};
const mg_kernels mg_kernels_avx512vnni = {
	.name = "avx512vnni",
	.rows = {NULL, rows_f32, rows_f16, rows_q8_vnni},
	.quant_x = quant_x,
	AVX512_SHARED,
};

#ifdef HAVE_AMX_INTRINSICS
/* ---- AMX: q8 products on int8 tiles ----
 * A q8 matrix in tile order (kernels.h) is a run of 1024-byte blocks, each
 * the B operand of one tile product: 16 output rows x 64 columns. The A
 * operand is the block's 64 activation codes of up to 8 rows of X, each
 * code split into two signed bytes (hi * 256 + lo), so one TDPBSSD gives,
 * for every X row and every one of the 16 output rows, the exact integer
 * sums over the block of qw * hi and qw * lo. The vector unit then does
 * per block and X row: (hi << 8) + lo, to float, times the 16 rows' block
 * scales, added to one accumulator per X row in block order: the same
 * arithmetic for an output element whatever else is in the batch. */
#define TARGET_AMX \
	__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c,amx-tile,amx-int8")))

/* Tile 0-3: C (2m rows of 16 int32), 4-5: A (2m rows of 64 bytes), 6-7: B
 * (16 rows of 64 bytes). */
struct amx_cfg {
	uint8_t palette, start_row, reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

static TARGET_AMX void amx_config(int m2)
{
	_Alignas(64) struct amx_cfg c;
	memset(&c, 0, sizeof c);
	c.palette = 1;
	for (int t = 0; t < 8; t++) {
		c.colsb[t] = 64;
		c.rows[t] = (uint8_t)(t < 6 ? m2 : 16);
	}
	/* The compiler does not know ldtilecfg reads c: make the stores happen. */
	__asm__ volatile("" : : "r"(&c) : "memory");
	_tile_loadconfig(&c);
}

/* The activation split of kernels.h, after the int16 codes. */
static TARGET_AMX void quant_x_amx(const float *X, int n, int cols, int ld, const mg_xq *xq)
{
	quant_x(X, n, cols, ld, xq);
	const __m512i lo_off = _mm512_set1_epi16(128), lo_mask = _mm512_set1_epi16(255);
	int nb = ld / MG_Q8_BLOCK;
	for (int i = 0; i < n; i++)
		for (int b = 0; b < nb; b++) {
			const int16_t *q = xq->q + (size_t)i * ld + (size_t)b * MG_Q8_BLOCK;
			int8_t *a = xq->a + ((size_t)b * n + i) * 2 * MG_Q8_BLOCK;
			for (int h = 0; h < MG_Q8_BLOCK; h += 32) {
				__m512i v = _mm512_loadu_si512(q + h);
				__m512i lo = _mm512_sub_epi16(_mm512_and_si512(_mm512_add_epi16(v, lo_off), lo_mask), lo_off);
				__m512i hi = _mm512_srai_epi16(_mm512_sub_epi16(v, lo), 8);
				_mm256_storeu_si256((__m256i *)(a + h), _mm512_cvtepi16_epi8(hi));
				_mm256_storeu_si256((__m256i *)(a + MG_Q8_BLOCK + h), _mm512_cvtepi16_epi8(lo));
			}
		}
}

/* Block bb into C tile T, through A tile TA and B tile TB. */
#define AMX_BLOCK(T, TA, TB, bb)                                                                   \
	do {                                                                                       \
		_tile_zero(T);                                                                     \
		_tile_loadd(TA, xa + (size_t)(bb) * (size_t)n * 2 * MG_Q8_BLOCK, MG_Q8_BLOCK);           \
		_tile_loadd(TB, wg + (size_t)(bb) * MG_Q8_GROUP * MG_Q8_BLOCK, MG_Q8_BLOCK);       \
		_tile_dpbssd(T, TA, TB);                                                           \
	} while (0)

/* C results of one block (cb: 2m rows of 16 int32) into the accumulators. */
static inline __attribute__((always_inline)) TARGET_AMX void amx_post(const int32_t *cb, const float *sc, int m,
                                                                       __m512 *acc)
{
	__m512 s = _mm512_loadu_ps(sc);
	for (int i = 0; i < m; i++) {
		__m512i hi = _mm512_load_si512(cb + 32 * i), lo = _mm512_load_si512(cb + 32 * i + 16);
		__m512i d = _mm512_add_epi32(_mm512_slli_epi32(hi, 8), lo);
		acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), s, acc[i]);
	}
}

/* How far ahead of the block in use the weights are prefetched (bytes):
 * each line into L1, and once more, further ahead, into L2 (a second
 * touch per line keeps more of the stream in flight: docs/PERFORMANCE.md,
 * item 34: 8 KiB beyond it; 6 and 10 KiB were slower than 4, 8 and 12). */
#define AMX_PREFETCH 2048
#define AMX_PREFETCH_L2 (AMX_PREFETCH + 8192)

static TARGET_AMX void rows_q8_amx(const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n,
                                   float *Y, int r0, int r1)
{
	(void)X;
	const int ld = W->ld, nb = ld / MG_Q8_BLOCK, rows = W->rows;
	const int g0 = r0 / MG_Q8_GROUP, g1 = (r1 + MG_Q8_GROUP - 1) / MG_Q8_GROUP;
	_Alignas(64) int32_t cb[4][16 * 16];
	for (int i0 = 0; i0 < n; i0 += 8) {
		const int m = n - i0 < 8 ? n - i0 : 8;
		const int8_t *xa = xq->a + (size_t)i0 * 2 * MG_Q8_BLOCK;
		amx_config(2 * m);
		for (int g = g0; g < g1; g++) {
			const int8_t *wg = (const int8_t *)W->data + (size_t)g * MG_Q8_GROUP * (size_t)ld;
			const float *sg = W->scales + (size_t)g * MG_Q8_GROUP * (size_t)nb;
			__m512 acc[8];
			for (int i = 0; i < m; i++)
				acc[i] = _mm512_setzero_ps();
			for (int b = 0; b < nb; b += 4) {
				const int k = nb - b < 4 ? nb - b : 4;
				const char *at = (const char *)(wg + (size_t)b * MG_Q8_GROUP * MG_Q8_BLOCK);
				for (int l = 0; l < k * MG_Q8_GROUP; l++) {
					_mm_prefetch(at + AMX_PREFETCH + 64 * l, _MM_HINT_T0);
					_mm_prefetch(at + AMX_PREFETCH_L2 + 64 * l, _MM_HINT_T1);
				}
				AMX_BLOCK(0, 4, 6, b);
				if (k > 1)
					AMX_BLOCK(1, 5, 7, b + 1);
				if (k > 2)
					AMX_BLOCK(2, 4, 6, b + 2);
				if (k > 3)
					AMX_BLOCK(3, 5, 7, b + 3);
				_tile_stored(0, cb[0], 64);
				if (k > 1)
					_tile_stored(1, cb[1], 64);
				if (k > 2)
					_tile_stored(2, cb[2], 64);
				if (k > 3)
					_tile_stored(3, cb[3], 64);
				for (int t = 0; t < k; t++)
					amx_post(cb[t], sg + (size_t)(b + t) * MG_Q8_GROUP, m, acc);
			}
			/* The rows of this group inside [r0, r1) and the matrix. */
			int lo = g * MG_Q8_GROUP < r0 ? r0 - g * MG_Q8_GROUP : 0;
			int hi = (g + 1) * MG_Q8_GROUP > r1 ? r1 - g * MG_Q8_GROUP : MG_Q8_GROUP;
			if (g * MG_Q8_GROUP + hi > rows)
				hi = rows - g * MG_Q8_GROUP;
			__mmask16 keep = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
			__m512 bv = bias ? _mm512_maskz_loadu_ps(keep, bias + g * MG_Q8_GROUP) : _mm512_setzero_ps();
			for (int i = 0; i < m; i++) {
				__m512 y = _mm512_add_ps(_mm512_mul_ps(acc[i], _mm512_set1_ps(xq->s[i0 + i])), bv);
				_mm512_mask_storeu_ps(Y + (size_t)(i0 + i) * (size_t)rows + (size_t)g * MG_Q8_GROUP, keep, y);
			}
		}
	}
	_tile_release();
}
#undef AMX_BLOCK

const mg_kernels mg_kernels_amx = {
	.name = "amx",
	.rows = {NULL, rows_f32, rows_f16, rows_q8_amx},
	.q8_tiles = 1,
	.quant_x = quant_x_amx,
	AVX512_SHARED,
};
#endif

#endif
