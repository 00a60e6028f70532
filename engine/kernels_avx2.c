/* kernels_avx2.c - AVX2 + FMA + F16C kernels: 8 floats per vector, one
 * weight row x up to 4 rows of X per pass over the columns, two
 * accumulators per output element (even / odd 8-column chunks). f16 weights
 * are widened with F16C; q8 weights are widened to int16 and multiplied
 * with vpmaddwd against int16 activations (the portable quantiser).
 * Compiled for AVX2 function by function; only called when the CPU has it. */
#include "autoconfig.h"

#include <math.h>
#include <string.h>

#include "engine/kernels.h"
#include "engine/nn.h"

#ifdef MG_KERNELS_X86

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define UNROLL _Pragma("GCC unroll 4")
#define INLINE static inline __attribute__((always_inline)) TARGET

/* 8 weights (f32 or f16) from column c as floats; cols - c >= 8. */
INLINE __m256 wload(int F, const void *w, int c)
{
	if (F == MG_WEIGHTS_F32)
		return _mm256_loadu_ps((const float *)w + c);
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + c)));
}

/* The last, partial chunk of t < 8 columns, zero beyond. */
INLINE __m256 wload_tail(int F, const void *w, int c, int t, __m256i m)
{
	if (F == MG_WEIGHTS_F32)
		return _mm256_maskload_ps((const float *)w + c, m);
	uint16_t h[8] = {0};
	memcpy(h, (const uint16_t *)w + c, (size_t)t * sizeof *h);
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

INLINE float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* Columns c .. c+15 of weight rows w[0..NW) against X rows x[0..NX): the
 * first eight into a0, the next eight into a1. */
INLINE void tile16(int F, int NW, int NX, const void *const *w, const float *const *x, int c, __m256 (*a0)[4],
                   __m256 (*a1)[4])
{
	__m256 wa[2], wb[2];
	UNROLL
	for (int k = 0; k < NW; k++) {
		wa[k] = wload(F, w[k], c);
		wb[k] = wload(F, w[k], c + 8);
	}
	UNROLL
	for (int j = 0; j < NX; j++) {
		__m256 xa = _mm256_loadu_ps(x[j] + c), xb = _mm256_loadu_ps(x[j] + c + 8);
		UNROLL
		for (int k = 0; k < NW; k++) {
			a0[k][j] = _mm256_fmadd_ps(wa[k], xa, a0[k][j]);
			a1[k][j] = _mm256_fmadd_ps(wb[k], xb, a1[k][j]);
		}
	}
}

/* Output rows r .. r+NW-1 for X rows i .. i+NX-1: each row's sums in the
 * same order whatever NW (the X loads shared by the rows). */
INLINE void tile(int F, int NW, int NX, const mg_mat *W, const float *bias, const float *X, float *Y, int r, int i,
                 mg_ahead a)
{
	const int cols = W->cols, ld = W->ld;
	const size_t esz = F == MG_WEIGHTS_F32 ? 4 : 2;
	const void *w[2];
	const float *x[4];
	__m256 a0[2][4], a1[2][4];
	UNROLL
	for (int k = 0; k < NW; k++) {
		w[k] = (const char *)W->data + (size_t)(r + k) * (size_t)ld * esz;
		UNROLL
		for (int j = 0; j < NX; j++)
			a0[k][j] = a1[k][j] = _mm256_setzero_ps();
	}
	UNROLL
	for (int j = 0; j < NX; j++)
		x[j] = X + (size_t)(i + j) * (size_t)cols;

	int c = 0;
	/* 32 columns a step (one line of f16, two of f32), then 16. */
	for (; c + 32 <= cols; c += 32) {
		UNROLL
		for (int k = 0; k < NW; k++) /* as far ahead as the tuning says */
			mg_weight_prefetch((const char *)w[k] + (size_t)c * esz, F == MG_WEIGHTS_F32 ? 2 : 1, a);
		tile16(F, NW, NX, w, x, c, a0, a1);
		tile16(F, NW, NX, w, x, c + 16, a0, a1);
	}
	for (; c + 16 <= cols; c += 16)
		tile16(F, NW, NX, w, x, c, a0, a1);
	if (c + 8 <= cols) {
		UNROLL
		for (int k = 0; k < NW; k++) {
			__m256 wa = wload(F, w[k], c);
			UNROLL
			for (int j = 0; j < NX; j++)
				a0[k][j] = _mm256_fmadd_ps(wa, _mm256_loadu_ps(x[j] + c), a0[k][j]);
		}
		c += 8;
	}
	if (c < cols) {
		int t = cols - c;
		__m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(t), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
		UNROLL
		for (int k = 0; k < NW; k++) {
			__m256 wa = wload_tail(F, w[k], c, t, m);
			UNROLL
			for (int j = 0; j < NX; j++)
				a1[k][j] = _mm256_fmadd_ps(wa, _mm256_maskload_ps(x[j] + c, m), a1[k][j]);
		}
	}
	UNROLL
	for (int k = 0; k < NW; k++)
		UNROLL
		for (int j = 0; j < NX; j++)
			Y[(size_t)(i + j) * (size_t)W->rows + (size_t)(r + k)] =
				hsum(_mm256_add_ps(a0[k][j], a1[k][j])) + (bias ? bias[r + k] : 0.0f);
}

/* q8: output rows r .. r+NW-1 for X rows i .. i+NX-1, one block per step:
 * weight bytes widened to int16, vpmaddwd against the int16 activations
 * (exact int32 sums), converted once per block and scaled by the block's
 * weight scale; the row's activation scale at the end. Each line is asked
 * for twice ahead of its load: into L1, and further ahead into L2.
 * DOT_ACC(acc, w, x) adds the pair sums of w * x (int16 lanes) to the
 * int32 lanes of acc: one body for both sets, so that the two compute the
 * same exact integer sums the same way. */
#define TILE_Q8_BODY(DOT_ACC)                                                                                       \
{                                                                                                                   \
	const int nb = W->ld / MG_Q8_BLOCK, step = mg_q8_block_step(W, r);                                          \
	const int8_t *w[2];                                                                                         \
	const float *sw[2];                                                                                         \
	const int16_t *x[4];                                                                                        \
	mg_q8_tile_at(W, xq, NW, NX, r, i, w, sw, x);                                                               \
	__m256 acc[2][4];                                                                                           \
	UNROLL                                                                                                      \
	for (int k = 0; k < NW; k++)                                                                                \
		UNROLL                                                                                              \
		for (int j = 0; j < NX; j++)                                                                        \
			acc[k][j] = _mm256_setzero_ps();                                                            \
	for (int b = 0; b < nb; b++) {                                                                              \
		const int c0 = b * MG_Q8_BLOCK;                                                                     \
		__m256i d[2][4];                                                                                    \
		const int8_t *wb[2]; /* block b of each row, indexed by column */                                   \
		UNROLL                                                                                              \
		for (int k = 0; k < NW; k++) {                                                                      \
			wb[k] = w[k] + (size_t)b * step - c0;                                                       \
			mg_weight_prefetch((const char *)(wb[k] + c0), 1, a);                                        \
			UNROLL                                                                                      \
			for (int j = 0; j < NX; j++)                                                                \
				d[k][j] = _mm256_setzero_si256();                                                   \
		}                                                                                                   \
		/* The block in pieces of 16 columns, summed exactly in int32. */                                   \
		UNROLL                                                                                              \
		for (int c = c0; c < c0 + MG_Q8_BLOCK; c += 16) {                                                   \
			__m256i wv[2];                                                                              \
			UNROLL                                                                                      \
			for (int k = 0; k < NW; k++)                                                                \
				wv[k] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wb[k] + c)));        \
			UNROLL                                                                                      \
			for (int j = 0; j < NX; j++) {                                                              \
				__m256i xv = _mm256_loadu_si256((const __m256i *)(x[j] + c));                       \
				UNROLL                                                                              \
				for (int k = 0; k < NW; k++)                                                        \
					d[k][j] = DOT_ACC(d[k][j], wv[k], xv);                                      \
			}                                                                                           \
		}                                                                                                   \
		UNROLL                                                                                              \
		for (int k = 0; k < NW; k++) {                                                                      \
			__m256 sc = _mm256_set1_ps(sw[k][b]);                                                       \
			UNROLL                                                                                      \
			for (int j = 0; j < NX; j++)                                                                \
				acc[k][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d[k][j]), sc, acc[k][j]);            \
		}                                                                                                   \
	}                                                                                                           \
	UNROLL                                                                                                      \
	for (int k = 0; k < NW; k++)                                                                                \
		UNROLL                                                                                              \
		for (int j = 0; j < NX; j++)                                                                        \
			Y[(size_t)(i + j) * (size_t)W->rows + (size_t)(r + k)] =                                    \
				xq->s[i + j] * hsum(acc[k][j]) + (bias ? bias[r + k] : 0.0f);                       \
}

#define ADD_MADD(a, w, x) _mm256_add_epi32((a), _mm256_madd_epi16((w), (x)))
INLINE void tile_q8(int NW, int NX, const mg_mat *W, const float *bias, const mg_xq *xq, float *Y, int r, int i,
                    mg_ahead a)
TILE_Q8_BODY(ADD_MADD)

#ifdef HAVE_AVXVNNI_INTRINSICS
/* The same with AVX-VNNI: vpdpwssd multiplies, sums the pairs and
 * accumulates in one instruction (the same exact int32 sums). */
#define TARGET_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define INLINE_VNNI static inline __attribute__((always_inline)) TARGET_VNNI
INLINE_VNNI void tile_q8_vnni(int NW, int NX, const mg_mat *W, const float *bias, const mg_xq *xq, float *Y, int r,
                              int i, mg_ahead a)
TILE_Q8_BODY(_mm256_dpwssd_avx_epi32)
#endif

/* Rows r .. r+NW-1 for all n rows of X, up to 4 at a time. */
INLINE void rows_tile(int F, int NW, const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n,
                      float *Y, int r, mg_ahead a)
{
#define TILE(NX, i) (F == MG_WEIGHTS_Q8 ? tile_q8(NW, NX, W, bias, xq, Y, r, i, a) : tile(F, NW, NX, W, bias, X, Y, r, i, a))
	MG_X_GROUPS(n, TILE);
#undef TILE
}

/* Two weight rows at a time for up to two rows of X (a decoder step with
 * guidance: the X loads shared, every accumulator in a register) where the
 * CPU reads two streams well (mg_tuning), else one (more accumulators
 * than the 16 registers hold). */
INLINE void rows_fmt(int F, const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y,
                     int r0, int r1)
{
	const mg_tuning *t = mg_tuning_active();
	int r = r0, two = n <= 2 && t->pass_rows[F] == 2;
	const mg_ahead a = mg_ahead_for(t, F);
	for (; two && r + 2 <= r1 && mg_rows_pass2(W, r); r += 2)
		rows_tile(F, 2, W, bias, X, xq, n, Y, r, a);
	for (; r < r1; r++)
		rows_tile(F, 1, W, bias, X, xq, n, Y, r, a);
}

#ifdef HAVE_AVXVNNI_INTRINSICS
/* rows_fmt for q8 with AVX-VNNI. */
INLINE_VNNI void rows_tile_q8_vnni(int NW, const mg_mat *W, const float *bias, const mg_xq *xq, int n, float *Y, int r,
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
	int r = r0, two = n <= 2 && t->pass_rows[MG_WEIGHTS_Q8] == 2;
	const mg_ahead a = mg_ahead_for(t, MG_WEIGHTS_Q8);
	for (; two && r + 2 <= r1 && mg_rows_pass2(W, r); r += 2)
		rows_tile_q8_vnni(2, W, bias, xq, n, Y, r, a);
	for (; r < r1; r++)
		rows_tile_q8_vnni(1, W, bias, xq, n, Y, r, a);
}
#endif

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

static TARGET float dot(const float *a, const float *b, int n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	int i = 0;
	for (; i + 16 <= n; i += 16) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
	}
	if (i + 8 <= n) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		i += 8;
	}
	if (i < n) {
		__m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - i), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
		s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
	}
	return hsum(_mm256_add_ps(s0, s1));
}

static TARGET void axpy(float *y, float a, const float *x, int n)
{
	__m256 va = _mm256_set1_ps(a);
	int i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(va, _mm256_loadu_ps(x + i))));
	for (; i < n; i++)
		y[i] += a * x[i];
}

/* 8 halves from h (n - i of them when fewer), as floats. */
INLINE __m256 load_h(const uint16_t *h, int left)
{
	if (left >= 8)
		return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
	uint16_t t[8] = {0};
	memcpy(t, h, (size_t)left * sizeof *t);
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)t));
}

/* 8 cache values (f32, halves or int8 codes) from element i as floats. */
INLINE __m256 kv_load8(const void *p, int fmt, size_t i)
{
	if (fmt == MG_KV_Q8)
		return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)p + i))));
	if (fmt == MG_KV_F16)
		return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
	return _mm256_loadu_ps((const float *)p + i);
}

/* How far ahead of the unit in use (one head's block) a pass asks the L2
 * cache for its stream (kernels.h mg_kv_walk), in bytes. */
#define KV_PREFETCH 6144

INLINE void kv_scores_fmt(int fmt, const float *q, const void *k, int nh, size_t bs, int nk, int hd, float *sc,
                          size_t ss, const void *pf)
{
	size_t blk = mg_kv_block_bytes(fmt, hd);
	int nb = (nk + MG_KV_BLOCK - 1) / MG_KV_BLOCK;
	mg_kv_walk w = mg_kv_walk_at(k, pf, nh, bs, blk, nb, mg_kv_units(KV_PREFETCH, blk));
	for (int j0 = 0; j0 < nk; j0 += MG_KV_BLOCK)
		for (int u = 0; u < nh; u++) {
			const char *kb = mg_kv_block_at(k, bs, blk, j0 / MG_KV_BLOCK, u);
			mg_kv_fetch(&w, mg_kv_next(&w), 0);
			const float *qu = q + (size_t)u * hd;
			__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(),
			       b1 = _mm256_setzero_ps();
			int d = 0;
			for (; d + 2 <= hd; d += 2) {
				__m256 q0 = _mm256_broadcast_ss(qu + d), q1 = _mm256_broadcast_ss(qu + d + 1);
				size_t e = (size_t)d * MG_KV_BLOCK;
				a0 = _mm256_fmadd_ps(q0, kv_load8(kb, fmt, e), a0);
				a1 = _mm256_fmadd_ps(q0, kv_load8(kb, fmt, e + 8), a1);
				b0 = _mm256_fmadd_ps(q1, kv_load8(kb, fmt, e + MG_KV_BLOCK), b0);
				b1 = _mm256_fmadd_ps(q1, kv_load8(kb, fmt, e + MG_KV_BLOCK + 8), b1);
			}
			if (d < hd) {
				__m256 q0 = _mm256_broadcast_ss(qu + d);
				size_t e = (size_t)d * MG_KV_BLOCK;
				a0 = _mm256_fmadd_ps(q0, kv_load8(kb, fmt, e), a0);
				a1 = _mm256_fmadd_ps(q0, kv_load8(kb, fmt, e + 8), a1);
			}
			__m256 r0 = _mm256_add_ps(a0, b0), r1 = _mm256_add_ps(a1, b1);
			if (fmt == MG_KV_Q8) {
				const float *ks = (const float *)(kb + mg_kv_scales_at(hd));
				r0 = _mm256_mul_ps(r0, _mm256_loadu_ps(ks));
				r1 = _mm256_mul_ps(r1, _mm256_loadu_ps(ks + 8));
			}
			float t[MG_KV_BLOCK];
			_mm256_storeu_ps(t, r0);
			_mm256_storeu_ps(t + 8, r1);
			memcpy(sc + (size_t)u * ss + j0, t, (size_t)mg_kv_lanes(nk, j0) * sizeof *t);
		}
}

static TARGET void kv_scores(const float *q, const void *k, int nh, size_t bs, int fmt, int nk, int hd, float *sc,
                             size_t ss, const void *pf)
{
	MG_KV_SPECIALISE(kv_scores_fmt, fmt, q, k, nh, bs, nk, hd, sc, ss, pf);
}

/* Positions j0 .. j0+n-1 of one head's block vb (weights a) added to that
 * head's output o (the running sums, in memory between blocks: the same
 * values as in registers). */
INLINE void kv_wsum_block(int fmt, const float *a, const char *vb, int j0, int n, int hd, float *o)
{
	int d0 = 0;
	for (; d0 + 32 <= hd; d0 += 32) {
		__m256 o0 = _mm256_loadu_ps(o + d0), o1 = _mm256_loadu_ps(o + d0 + 8), o2 = _mm256_loadu_ps(o + d0 + 16),
		       o3 = _mm256_loadu_ps(o + d0 + 24);
		for (int lane = 0; lane < n; lane++) {
			__m256 aj = _mm256_set1_ps(mg_kv_weight(fmt, a[j0 + lane], vb, hd, lane));
			size_t e = (size_t)lane * hd + d0;
			o0 = _mm256_add_ps(o0, _mm256_mul_ps(aj, kv_load8(vb, fmt, e)));
			o1 = _mm256_add_ps(o1, _mm256_mul_ps(aj, kv_load8(vb, fmt, e + 8)));
			o2 = _mm256_add_ps(o2, _mm256_mul_ps(aj, kv_load8(vb, fmt, e + 16)));
			o3 = _mm256_add_ps(o3, _mm256_mul_ps(aj, kv_load8(vb, fmt, e + 24)));
		}
		_mm256_storeu_ps(o + d0, o0);
		_mm256_storeu_ps(o + d0 + 8, o1);
		_mm256_storeu_ps(o + d0 + 16, o2);
		_mm256_storeu_ps(o + d0 + 24, o3);
	}
	for (; d0 + 8 <= hd; d0 += 8) {
		__m256 o0 = _mm256_loadu_ps(o + d0);
		for (int lane = 0; lane < n; lane++) {
			__m256 aj = _mm256_set1_ps(mg_kv_weight(fmt, a[j0 + lane], vb, hd, lane));
			o0 = _mm256_add_ps(o0, _mm256_mul_ps(aj, kv_load8(vb, fmt, (size_t)lane * hd + d0)));
		}
		_mm256_storeu_ps(o + d0, o0);
	}
	for (; d0 < hd; d0++) {
		float s = o[d0];
		for (int lane = 0; lane < n; lane++) {
			float w = mg_kv_weight(fmt, a[j0 + lane], vb, hd, lane);
			size_t e = (size_t)lane * hd + d0;
			float x = fmt == MG_KV_Q8   ? (float)((const int8_t *)vb)[e]
			          : fmt == MG_KV_F16 ? _cvtsh_ss(((const uint16_t *)vb)[e])
			                             : ((const float *)vb)[e];
			float t = w * x;
			s = s + t;
		}
		o[d0] = s;
	}
}

INLINE void kv_wsum_fmt(int fmt, const float *a, size_t as, const void *v, int nh, size_t bs, int nk, int hd,
                        float *o, const void *pf)
{
	size_t blk = mg_kv_block_bytes(fmt, hd);
	int nb = (nk + MG_KV_BLOCK - 1) / MG_KV_BLOCK;
	mg_kv_walk w = mg_kv_walk_at(v, pf, nh, bs, blk, nb, mg_kv_units(KV_PREFETCH, blk));
	memset(o, 0, (size_t)nh * hd * sizeof *o);
	for (int j0 = 0; j0 < nk; j0 += MG_KV_BLOCK)
		for (int u = 0; u < nh; u++) {
			mg_kv_fetch(&w, mg_kv_next(&w), 0);
			kv_wsum_block(fmt, a + (size_t)u * as, mg_kv_block_at(v, bs, blk, j0 / MG_KV_BLOCK, u), j0,
			              mg_kv_lanes(nk, j0), hd, o + (size_t)u * hd);
		}
}

static TARGET void kv_wsum(const float *a, size_t as, const void *v, int nh, size_t bs, int fmt, int nk, int hd,
                           float *o, const void *pf)
{
	MG_KV_SPECIALISE(kv_wsum_fmt, fmt, a, as, v, nh, bs, nk, hd, o, pf);
}

/* As mg_quant_x_generic, eight and sixteen columns at a time: the same
 * largest magnitude, the same rounding (the current mode, as lrintf), the
 * same clamp (mg_xq_code), zeros in the padding. */
static TARGET void quant_x(const float *X, int n, int cols, int ld, const mg_xq *xq)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	const __m256i lim = _mm256_set1_epi32(MG_XQ_MAX), nlim = _mm256_set1_epi32(-MG_XQ_MAX);
	for (int i = 0; i < n; i++) {
		const float *x = X + (size_t)i * cols;
		int16_t *q = xq->q + (size_t)i * ld;
		__m256 mx = _mm256_setzero_ps();
		int c = 0;
		for (; c + 8 <= cols; c += 8)
			mx = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + c)), mx); /* a NaN is passed over, as fmaxf */
		float amax = 0;
		for (; c < cols; c++)
			amax = fmaxf(amax, fabsf(x[c]));
		__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
		m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
		m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
		amax = fmaxf(amax, _mm_cvtss_f32(m4));
		float invs = amax > 0 ? (float)MG_XQ_MAX / amax : 0.0f;
		__m256 inv = _mm256_set1_ps(invs);
		for (c = 0; c + 16 <= cols; c += 16) {
			__m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + c), inv));
			__m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + c + 8), inv));
			a = _mm256_max_epi32(_mm256_min_epi32(a, lim), nlim);
			b = _mm256_max_epi32(_mm256_min_epi32(b, lim), nlim);
			_mm256_storeu_si256((__m256i *)(q + c), _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8));
		}
		for (; c < cols; c++)
			q[c] = mg_xq_code(x[c], invs);
		for (; c < ld; c++)
			q[c] = 0;
		xq->s[i] = amax / (float)MG_XQ_MAX;
	}
}

static TARGET void to_f16(const float *src, uint16_t *dst, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(dst + i),
		                 _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
	if (i < n) {
		float f[8] = {0};
		uint16_t h[8];
		memcpy(f, src + i, (n - i) * sizeof *f);
		_mm_storeu_si128((__m128i *)h, _mm256_cvtps_ph(_mm256_loadu_ps(f), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
		memcpy(dst + i, h, (n - i) * sizeof *h);
	}
}

#define AVX2_SHARED                                                                                \
	.to_f16 = to_f16, .quant_x = quant_x, .dot = dot, .axpy = axpy, .kv_scores = kv_scores,    \
	.kv_wsum = kv_wsum, .gelu = mg_gelu, .softmax = mg_softmax_generic

const mg_kernels mg_kernels_avx2 = {
	.name = "avx2",
	.rows = {NULL, rows_f32, rows_f16, rows_q8},
	AVX2_SHARED,
};

#ifdef HAVE_AVXVNNI_INTRINSICS
/* The AVX2 set with its q8 products on AVX-VNNI (CPUs that have it without
 * AVX-512): the same bits as the AVX2 set. */
const mg_kernels mg_kernels_avx2vnni = {
	.name = "avx2vnni",
	.rows = {NULL, rows_f32, rows_f16, rows_q8_vnni},
	AVX2_SHARED,
};
#endif

#endif
