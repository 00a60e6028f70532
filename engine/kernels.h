/* kernels.h - the matrix-product kernels behind mg_linear, one set per
 * instruction set (portable C, AVX2 + FMA + F16C, AVX-512), chosen at run
 * time. Internal to the engine (linear.c, tests, bench).
 *
 * Every kernel computes Y[i, r] = X[i, :] . W[r, :] (+ bias[r]) for the
 * output rows r in [r0, r1) and all n rows of X. It walks the weight rows
 * once and reuses each weight row for a group of X rows, but the arithmetic
 * of one output element (its accumulators, their order, the final
 * reduction) is the same whatever group it falls in, so a row of Y never
 * depends on n (batch invariance). Kernels of different instruction sets
 * may round differently; one process always uses one set. */
#ifndef MG_KERNELS_H
#define MG_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/linear.h"

/* q8 weights: symmetric absmax int8 q in [-127, 127] with one float scale
 * per block of MG_Q8_BLOCK columns (w = q * scale). Rows are padded to a
 * multiple of the block (ld) with q = 0. When a product runs, each row of X
 * is quantised to int16 with one scale for the row (x = qx * sx, |qx| <=
 * MG_XQ_MAX; the error, |x|max / 65278, is far below the weights'), so every
 * block's dot product is exact in integers and the kernels only convert once
 * per block:
 *   y = sx * sum_b  sw_b * sum_{c in b} qw_c * qx_c.
 *
 * Three layouts of the codes (mg_mat.q8_layout): rows (row r's codes at
 * r * ld, its block scales at r * ld / MG_Q8_BLOCK); pairs, where the
 * tuning asks (mg_tuning; every set but AMX reads both): rows 2p and 2p+1
 * side by side block by block (pair p at 2p * ld: block b of row 2p, then
 * block b of row 2p+1, then block b+1, ...; an odd last row stored as in
 * rows, the scales as in rows), so that a pass over two rows reads one
 * sequential stream; or tiles for AMX: the
 * rows in groups of 16 (padded with zero rows), each group a run of blocks,
 * each block 1024 bytes as 16 quads of columns x 16 rows x 4 codes (the
 * B operand of an AMX int8 tile product), the scales [group][block][16].
 * mg_q8_at says where a code and its scale are. */
#define MG_Q8_BLOCK 64
#define MG_Q8_GROUP 16

/* The largest activation code: 127 * 256 + 127, so that a code splits into
 * two signed bytes hi * 256 + lo (the AMX kernels multiply int8 by int8). */
#define MG_XQ_MAX 32639

/* Asks the L2 cache for the n bytes at p, a line at a time (a hint: never
 * faults, results never depend on it). */
static inline void mg_prefetch_l2(const void *p, size_t n)
{
	for (size_t c = 0; c < n; c += 64)
		__builtin_prefetch((const char *)p + c, 0, 2);
}

/* How far ahead of its loads a product asks for its weight lines, in
 * bytes (mg_tuning): into L1 l1 ahead, into L2 l1 + l2 ahead; 0 leaves
 * that level to the hardware prefetchers. */
typedef struct mg_ahead {
	int l1, l2;
} mg_ahead;

/* The prefetches of one weight row for one step of a tile that reads the
 * `lines` lines at p. */
static inline void mg_weight_prefetch(const char *p, int lines, mg_ahead a)
{
	for (int i = 0; a.l1 && i < lines; i++)
		__builtin_prefetch(p + a.l1 + 64 * i, 0, 3);
	for (int i = 0; a.l2 && i < lines; i++)
		__builtin_prefetch(p + a.l1 + a.l2 + 64 * i, 0, 2);
}

/* Round to the nearest integer, ties to even (lrintf in the default mode),
 * exact for |v| < 2^22: adding and subtracting 1.5 * 2^23 leaves the
 * rounded value (the q8 weight and cache codes, without a library call). */
#define MG_RNE_MAGIC 12582912.0f

/* The q8 codes of weights (linear.c) and of the cache (nn.c), in portable
 * code four lanes at a time: SSE2's width, where eight lanes of GCC
 * vectors spill to the stack at each lane read. */
typedef float mg_v4f __attribute__((vector_size(4 * sizeof(float))));
typedef int32_t mg_v4i __attribute__((vector_size(4 * sizeof(int32_t))));

/* |x[0..3]| (x at any alignment). */
static inline mg_v4f mg_abs4(const float *x)
{
	const mg_v4i abs_mask = {0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff};
	mg_v4i b;
	memcpy(&b, x, sizeof b);
	return (mg_v4f)(b & abs_mask);
}

/* The lanes' larger of m and a, a NaN in a passed over (as by fmaxf). */
static inline mg_v4f mg_max4(mg_v4f m, mg_v4f a)
{
	mg_v4i gt = a > m;
	return (mg_v4f)((gt & (mg_v4i)a) | (~gt & (mg_v4i)m));
}

/* The q8 code of x: x * inv rounded to nearest even (as lrintf), within
 * +-127; a NaN or infinite x * inv (an infinite x, or an inverse scale
 * that overflowed) gives -127, as lrintf's out-of-range value does. */
static inline int mg_q8_code1(float x, float inv)
{
	float r = (x * inv + MG_RNE_MAGIC) - MG_RNE_MAGIC;
	int v = fabsf(r) <= 128.0f ? (int)r : -127;
	return v > 127 ? 127 : v < -127 ? -127 : v;
}

/* mg_q8_code1 of x[0..3] (x at any alignment). */
static inline mg_v4i mg_q8_code4(const float *x, float inv)
{
	const mg_v4i abs_mask = {0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff}, top = {127, 127, 127, 127};
	const mg_v4f magic = {MG_RNE_MAGIC, MG_RNE_MAGIC, MG_RNE_MAGIC, MG_RNE_MAGIC},
	             lim = {128, 128, 128, 128}, out = {-127, -127, -127, -127};
	mg_v4f v;
	memcpy(&v, x, sizeof v);
	mg_v4f r = (v * inv + magic) - magic;
	mg_v4i ok = (mg_v4f)((mg_v4i)r & abs_mask) <= lim; /* false for NaN */
	r = (mg_v4f)((ok & (mg_v4i)r) | (~ok & (mg_v4i)out));
	mg_v4i q = __builtin_convertvector(r, mg_v4i);
	mg_v4i hi = q > top, lo = q < -top;
	return (hi & top) | (lo & -top) | (~(hi | lo) & q);
}

/* Positions per key block of a decoder KV cache (kv_scores). */
#define MG_KV_BLOCK 16

/* Element formats of a KV cache. A head's cache is a run of blocks of
 * MG_KV_BLOCK positions: keys [hd][MG_KV_BLOCK] (lane = position in the
 * block), values [MG_KV_BLOCK][hd]. MG_KV_Q8: int8 codes, then the
 * MG_KV_BLOCK float scales of the block's positions (a position's key or
 * value is scale * code; scale = max |x| / 127 of that position's hd
 * elements, code = round(x / scale)). */
enum { MG_KV_F32 = 0, MG_KV_F16 = 1, MG_KV_Q8 = 2 };

/* Where a q8 block of hd elements per position keeps its MG_KV_BLOCK
 * float scales: bytes from its start, after the codes. */
static inline size_t mg_kv_scales_at(int hd)
{
	return (size_t)MG_KV_BLOCK * (size_t)hd;
}

/* The scale of position `lane` of a q8 block, and setting it. */
static inline float mg_kv_scale(const void *block, int hd, int lane)
{
	float s;
	memcpy(&s, (const char *)block + mg_kv_scales_at(hd) + (size_t)lane * sizeof s, sizeof s);
	return s;
}

static inline void mg_kv_set_scale(void *block, int hd, int lane, float s)
{
	memcpy((char *)block + mg_kv_scales_at(hd) + (size_t)lane * sizeof s, &s, sizeof s);
}

/* What kv_wsum multiplies position `lane`'s stored values by, for attention
 * weight a: a itself, or with q8 a times the position's scale (that product
 * rounded first, then times each code). */
static inline float mg_kv_weight(int fmt, float a, const void *block, int hd, int lane)
{
	return fmt == MG_KV_Q8 ? a * mg_kv_scale(block, hd, lane) : a;
}

/* Bytes of one block of keys (or values) of hd elements per position. */
static inline size_t mg_kv_block_bytes(int fmt, int hd)
{
	size_t n = (size_t)MG_KV_BLOCK * (size_t)hd;
	return fmt == MG_KV_Q8 ? n + MG_KV_BLOCK * sizeof(float) : n * (fmt == MG_KV_F16 ? 2 : 4);
}

/* Block b of head u of a cache at k, in the layout of kv_scores (a row's
 * heads side by side in each block: bs bytes from one block to the next,
 * blk from one head to the next). */
static inline const char *mg_kv_block_at(const void *k, size_t bs, size_t blk, int b, int u)
{
	return (const char *)k + (size_t)b * bs + (size_t)u * blk;
}

/* Positions in use of the block that starts at position j0 of nk. */
static inline int mg_kv_lanes(int nk, int j0)
{
	return nk - j0 < MG_KV_BLOCK ? nk - j0 : MG_KV_BLOCK;
}

/* A walk over the units of a pass (a unit: one head's block; the order:
 * block by block, the heads within each, as kernels' kv_scores) over the
 * first nb blocks of nh heads at k, continuing into the same units of pf,
 * starting `ahead` units in: mg_kv_next gives the unit's address (NULL
 * past them, or past the pass without pf) and steps on. For prefetching
 * a fixed distance ahead of the unit in use. */
typedef struct mg_kv_walk {
	const char *k, *pf;
	size_t bs, blk;
	int nh, nb, b, u;
} mg_kv_walk;

static inline mg_kv_walk mg_kv_walk_at(const void *k, const void *pf, int nh, size_t bs, size_t blk, int nb,
                                       int ahead)
{
	mg_kv_walk w = {(const char *)k, (const char *)pf, bs, blk, nh, nb, ahead / nh, ahead % nh};
	return w;
}

static inline const char *mg_kv_next(mg_kv_walk *w)
{
	const char *p = NULL;
	if (w->b < w->nb)
		p = mg_kv_block_at(w->k, w->bs, w->blk, w->b, w->u);
	else if (w->pf && w->b < 2 * w->nb)
		p = mg_kv_block_at(w->pf, w->bs, w->blk, w->b - w->nb, w->u);
	if (++w->u == w->nh) {
		w->u = 0;
		w->b++;
	}
	return p;
}

/* The units a prefetch distance of `bytes` spans (whole blocks of blk,
 * rounded up). */
static inline int mg_kv_units(size_t bytes, size_t blk)
{
	return (int)((bytes + blk - 1) / blk);
}

/* Asks the caches for the unit at p (NULL: none; from mg_kv_next) of a
 * walk w: into L1 when l1, else into L2. */
static inline void mg_kv_fetch(const mg_kv_walk *w, const char *p, int l1)
{
	if (!p)
		return;
	if (!l1) {
		mg_prefetch_l2(p, w->blk);
		return;
	}
	for (size_t c = 0; c < w->blk; c += 64)
		__builtin_prefetch(p + c, 0, 3);
}

/* A kernel's pass over all n rows of X: TILE(NX, i) for rows i .. i+NX-1,
 * in groups of four, then the rest (NX a constant at each use, so that a
 * tile is compiled for each count). */
#define MG_X_GROUPS(n, TILE)                   \
	do {                                   \
		int i_ = 0;                    \
		for (; i_ + 4 <= (n); i_ += 4) \
			TILE(4, i_);           \
		switch ((n) - i_) {            \
		case 3: TILE(3, i_); break;    \
		case 2: TILE(2, i_); break;    \
		case 1: TILE(1, i_); break;    \
		default: break;                \
		}                              \
	} while (0)

/* f(fmt, ...) with fmt as a constant of each format, so that a kernel set's
 * inline body is compiled once per format (f returns void). */
#define MG_KV_SPECIALISE(f, fmt, ...)                                                              \
	((fmt) == MG_KV_Q8 ? f(MG_KV_Q8, __VA_ARGS__) : (fmt) == MG_KV_F16 ? f(MG_KV_F16, __VA_ARGS__) \
	                                                : f(MG_KV_F32, __VA_ARGS__))

/* The activation code of x for the inverse scale inv (MG_XQ_MAX / the
 * row's largest magnitude): rounded to nearest even (the current mode, as
 * lrintf), clamped to +-MG_XQ_MAX. What every set's quant_x computes. */
static inline int16_t mg_xq_code(float x, float inv)
{
	long v = lrintf(x * inv);
	return (int16_t)(v > MG_XQ_MAX ? MG_XQ_MAX : v < -MG_XQ_MAX ? -MG_XQ_MAX : v);
}

/* Quantised activations: n rows of ld columns. q: the int16 codes in
 * [-MG_XQ_MAX, MG_XQ_MAX] (padding 0); s: the scale of each row; a (kernel
 * sets with q8_tiles only): the codes split into bytes, hi = (q - lo) / 256
 * and lo = ((q + 128) mod 256) - 128, laid out [block][row][hi 64 | lo 64],
 * so that the rows i .. i+m-1 of one block are 2m tile rows of 64 bytes. */
typedef struct mg_xq {
	int16_t *q;
	float *s;
	int8_t *a;
} mg_xq;

/* Where the code of W[r, c] of a q8 matrix is (an index into data) and the
 * index of its block's scale, in either layout. */
static inline size_t mg_q8_at(const mg_mat *W, int r, int c, size_t *scale)
{
	size_t nb = (size_t)W->ld / MG_Q8_BLOCK, b = (size_t)c / MG_Q8_BLOCK;
	if (W->q8_layout != MG_Q8_TILES) {
		*scale = (size_t)r * nb + b;
		if (W->q8_layout == MG_Q8_PAIRS && r < (W->rows & ~1))
			return (size_t)(r & ~1) * (size_t)W->ld + b * 2 * MG_Q8_BLOCK + (size_t)(r & 1) * MG_Q8_BLOCK +
			       (size_t)c % MG_Q8_BLOCK;
		return (size_t)r * (size_t)W->ld + (size_t)c;
	}
	size_t g = (size_t)r / MG_Q8_GROUP, n = (size_t)r % MG_Q8_GROUP, cb = (size_t)c % MG_Q8_BLOCK;
	*scale = (g * nb + b) * MG_Q8_GROUP + n;
	return (g * nb + b) * MG_Q8_GROUP * MG_Q8_BLOCK + cb / 4 * 4 * MG_Q8_GROUP + n * 4 + cb % 4;
}

/* Bytes of scratch an mg_xq for n rows of ld columns needs. */
size_t mg_xq_bytes(int n, int ld);
/* Lays an mg_xq out in scratch (64-byte aligned, mg_xq_bytes long). */
mg_xq mg_xq_layout(void *scratch, int n, int ld);

/* Bytes from one block of row r's codes to its next (rows or pairs). */
static inline int mg_q8_block_step(const mg_mat *W, int r)
{
	return W->q8_layout == MG_Q8_PAIRS && r < (W->rows & ~1) ? 2 * MG_Q8_BLOCK : MG_Q8_BLOCK;
}

/* Whether a pass may take rows r and r+1 together: their blocks are the
 * same distance apart (not so for the last pair's second row and an odd
 * last row of the pair layout). */
static inline int mg_rows_pass2(const mg_mat *W, int r)
{
	return W->fmt != MG_WEIGHTS_Q8 || mg_q8_block_step(W, r) == mg_q8_block_step(W, r + 1);
}

/* Where a q8 tile (rows or pairs) reads: the codes w[k] (block b at w[k]
 * + b * mg_q8_block_step, the same for the NW rows: with pairs, two rows
 * are the two of one pair) and block scales sw[k] of weight rows r ..
 * r+NW-1, the activation codes x[j] of X rows i .. i+NX-1. */
static inline void mg_q8_tile_at(const mg_mat *W, const mg_xq *xq, int NW, int NX, int r, int i, const int8_t **w,
                                 const float **sw, const int16_t **x)
{
	size_t ld = (size_t)W->ld, scale;
	for (int k = 0; k < NW; k++) {
		w[k] = (const int8_t *)W->data + mg_q8_at(W, r + k, 0, &scale);
		sw[k] = W->scales + scale;
	}
	for (int j = 0; j < NX; j++)
		x[j] = xq->q + (size_t)(i + j) * ld;
}

enum mg_isa {
	MG_ISA_GENERIC = 0,
	MG_ISA_AVX2 = 1,
	MG_ISA_AVX2VNNI = 2,   /* AVX2 with AVX-VNNI's int16 dot products for q8 */
	MG_ISA_AVX512 = 3,
	MG_ISA_AVX512VNNI = 4, /* AVX-512 with VNNI's int16 dot products for q8 */
	MG_ISA_AMX = 5,        /* AVX-512 VNNI, q8 products on AMX int8 tiles */
	MG_ISA_COUNT
};

/* X: float activations (f32, f16); xq: the quantised ones (q8). */
typedef void (*mg_rows_fn)(const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y,
                           int r0, int r1);

typedef struct mg_kernels {
	const char *name;
	mg_rows_fn rows[4]; /* indexed by MG_WEIGHTS_F32 / F16 / Q8 (0 unused) */
	int q8_tiles;       /* rows[MG_WEIGHTS_Q8] reads the tile layout (mg_mat),
	                     * else rows and pairs */
	/* dst[i] = f16(src[i]), round to nearest even. */
	void (*to_f16)(const float *src, uint16_t *dst, size_t n);
	/* X[n, cols] into xq (rows of ld >= cols, ld a multiple of the block).
	 * Every set rounds identically: scale = absmax / MG_XQ_MAX, code =
	 * round-to-nearest-even(x * (MG_XQ_MAX / absmax)). Sets with q8_tiles
	 * also fill xq->a. */
	void (*quant_x)(const float *X, int n, int cols, int ld, const mg_xq *xq);
	/* sum a[i] * b[i] for i < n, in a fixed order for a given n (attention
	 * scores). */
	float (*dot)(const float *a, const float *b, int n);
	/* y[i] += a * x[i] for i < n, rounded as the C expression (a product,
	 * then a sum: no fused multiply-add), so the same bits in every set. */
	void (*axpy)(float *y, float a, const float *x, int n);
	/* Attention over nh heads of one row of a decoder KV cache (musicgen.h)
	 * in format fmt (MG_KV_*). A cache is a run of blocks of MG_KV_BLOCK
	 * positions, the heads of a row side by side in each: block b of head
	 * u at k (or v) + b * bs + u * mg_kv_block_bytes(fmt, hd), so that a
	 * thread that takes all of a row's heads (bs = their bytes) reads one
	 * contiguous stream. Keys are [hd][MG_KV_BLOCK] per block, so that
	 * MG_KV_BLOCK scores come out of one pass over it; values are rows of
	 * hd. Both passes walk the blocks in memory order (block by block, the
	 * heads within each).
	 * kv_scores: sc[u * ss + j] = sum_d q[u * hd + d] * key_uj[d] for j <
	 * nk (q8: the code sum times the position's scale).
	 * kv_wsum: o[u * hd + d] = sum_j a[u * as + j] * value_uj[d] over j <
	 * nk in order, each term a product then a sum (as axpy), so the same
	 * bits in every set and whatever nh (q8: the term is (a * scale_j) *
	 * code, the weight rounded first).
	 * pf (may be NULL): the stream the next pass reads (the values after
	 * the keys), laid out as this one; a pass asks the caches for its own
	 * blocks ahead of use and, near its end, for pf's first ones. Only a
	 * hint: the results never depend on it. */
	void (*kv_scores)(const float *q, const void *k, int nh, size_t bs, int fmt, int nk, int hd, float *sc,
	                  size_t ss, const void *pf);
	void (*kv_wsum)(const float *a, size_t as, const void *v, int nh, size_t bs, int fmt, int nk, int hd,
	                float *o, const void *pf);
	/* Exact (erf) GELU in place, x = 0.5 x (1 + erf(x / sqrt 2)); the
	 * portable set is mg_gelu (libm's erff), the others are within a few
	 * ulp of it (test_linear). */
	void (*gelu)(float *x, size_t n);
	/* sc[j] = exp(sc[j] - max) / sum over j < n (n >= 1; the sum in
	 * double): attention weights. */
	void (*softmax)(float *sc, int n);
} mg_kernels;

/* The kernels of one instruction set; NULL when this build or this CPU
 * lacks it. */
const mg_kernels *mg_kernels_for(int isa);
/* The set mg_linear uses: the best the CPU supports, or the one named by the
 * environment variable MG_KERNELS (generic, avx2, avx2vnni, avx512, avx512vnni,
 * amx) when supported. */
const mg_kernels *mg_kernels_active(void);

/* How the SIMD sets' products walk the weights, by weight format
 * (MG_WEIGHTS_*), and the attention its cache, chosen once for the CPU
 * (docs/PERFORMANCE.md, items 46-52). The results never depend on it: a
 * row's sums do not depend on its neighbour, and a prefetch is only a
 * hint. */
typedef struct mg_tuning {
	const char *name;
	/* Weight rows per pass, 1 or 2: two share each load of X; one makes
	 * each thread's read of the weights a single sequential stream. */
	int pass_rows[4];
	/* How far ahead of its loads each weight line is asked for (the
	 * AVX2 and AVX-512 sets' row tiles, mg_ahead): into L1 l1_ahead
	 * bytes ahead, and a second time, into L2, l2_ahead bytes beyond
	 * that (0: not at that level). */
	int l1_ahead[4];
	int l2_ahead[4];
	/* q8 in the pair layout for the sets that read it (1), else rows. */
	int q8_pairs;
	/* The AVX-512 attention asks for its cache into L1 ahead of use as
	 * well as into L2 (1), or into L2 only (0, as the AVX2 set). */
	int kv_l1;
} mg_tuning;

/* The q8 layout a matrix gets for set k under the tuning in use. */
int mg_q8_layout_for(const mg_kernels *k);

/* The tuning in use: "zen5" on AMD CPUs of family 0x1a, "amd" on other AMD
 * CPUs, else "default"; the environment variable MG_TUNING (default, amd,
 * zen5) names one. */
const mg_tuning *mg_tuning_active(void);
/* Tuning t's prefetch distances for weight format fmt. */
static inline mg_ahead mg_ahead_for(const mg_tuning *t, int fmt)
{
	return (mg_ahead){t->l1_ahead[fmt], t->l2_ahead[fmt]};
}
/* A tuning by name, NULL if unknown. */
const mg_tuning *mg_tuning_named(const char *name);
/* Makes t the one in use (tests compare them; not while products run). */
void mg_tuning_set(const mg_tuning *t);

/* Per-set tables (kernels_generic.c, kernels_avx2.c, kernels_avx512.c). */
extern const mg_kernels mg_kernels_generic;
void mg_quant_x_generic(const float *X, int n, int cols, int ld, const mg_xq *xq);
void mg_softmax_generic(float *sc, int n);
#if defined(__x86_64__) || defined(__i386__)
#define MG_KERNELS_X86 1
extern const mg_kernels mg_kernels_avx2;
extern const mg_kernels mg_kernels_avx2vnni;
extern const mg_kernels mg_kernels_avx512;
extern const mg_kernels mg_kernels_avx512vnni;
#ifdef HAVE_AMX_INTRINSICS
extern const mg_kernels mg_kernels_amx;
#endif
#endif

#endif
