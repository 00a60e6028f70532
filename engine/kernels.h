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

#include <stddef.h>
#include <stdint.h>

#include "engine/linear.h"

/* q8 weights: symmetric absmax int8 q in [-127, 127] with one float scale
 * per block of MG_Q8_BLOCK columns (w = q * scale). Rows are padded to a
 * multiple of the block (ld) with q = 0. When a product runs, each row of X
 * is quantised to int16 with one scale for the row (x = qx * sx; the error,
 * |x|max / 65534, is far below the weights'), so every block's dot product
 * is exact in integers and the kernels only convert once per block:
 *   y = sx * sum_b  sw_b * sum_{c in b} qw_c * qx_c. */
#define MG_Q8_BLOCK 64

/* Positions per key block of a decoder KV cache (kv_scores). */
#define MG_KV_BLOCK 16

/* Quantised activations: n rows of ld columns. q: the int16 codes in
 * [-32767, 32767] (padding 0); s: the scale of each row. */
typedef struct mg_xq {
	int16_t *q;
	float *s;
} mg_xq;

/* Bytes of scratch an mg_xq for n rows of ld columns needs. */
size_t mg_xq_bytes(int n, int ld);
/* Lays an mg_xq out in scratch (64-byte aligned, mg_xq_bytes long). */
mg_xq mg_xq_layout(void *scratch, int n, int ld);

enum mg_isa {
	MG_ISA_GENERIC = 0,
	MG_ISA_AVX2 = 1,
	MG_ISA_AVX512 = 2,
	MG_ISA_AVX512VNNI = 3, /* AVX-512 with VNNI's int16 dot products for q8 */
	MG_ISA_COUNT
};

/* X: float activations (f32, f16); xq: the quantised ones (q8). */
typedef void (*mg_rows_fn)(const mg_mat *W, const float *bias, const float *X, const mg_xq *xq, int n, float *Y,
                           int r0, int r1);

typedef struct mg_kernels {
	const char *name;
	mg_rows_fn rows[4]; /* indexed by MG_WEIGHTS_F32 / F16 / Q8 (0 unused) */
	/* dst[i] = f16(src[i]), round to nearest even. */
	void (*to_f16)(const float *src, uint16_t *dst, size_t n);
	/* X[n, cols] into xq (rows of ld >= cols, ld a multiple of the block).
	 * Every set rounds identically: scale = absmax / 32767, code =
	 * round-to-nearest-even(x * (32767 / absmax)). */
	void (*quant_x)(const float *X, int n, int cols, int ld, const mg_xq *xq);
	/* sum a[i] * b[i] for i < n, in a fixed order for a given n (attention
	 * scores). */
	float (*dot)(const float *a, const float *b, int n);
	/* y[i] += a * x[i] for i < n, rounded as the C expression (a product,
	 * then a sum: no fused multiply-add), so the same bits in every set. */
	void (*axpy)(float *y, float a, const float *x, int n);
	/* The same with b / x IEEE halves (an f16 KV cache). */
	float (*dot_h)(const float *a, const uint16_t *b, int n);
	void (*axpy_h)(float *y, float a, const uint16_t *x, int n);
	/* Attention over one head of a decoder KV cache (musicgen.h): keys in
	 * blocks of MG_KV_BLOCK positions, each block [hd][MG_KV_BLOCK], so
	 * that MG_KV_BLOCK scores come out of one pass over a contiguous
	 * block; values as rows of hd. Float32, or IEEE halves when half.
	 * kv_scores: sc[j] = sum_d q[d] * key_j[d] for j < nk.
	 * kv_wsum: o[d] = sum_j a[j] * value_j[d] over j < nk in order, each
	 * term a product then a sum (as axpy), so the same bits in every set. */
	void (*kv_scores)(const float *q, const void *k, int half, int nk, int hd, float *sc);
	void (*kv_wsum)(const float *a, const void *v, int half, int nk, int hd, float *o);
} mg_kernels;

/* The kernels of one instruction set; NULL when this build or this CPU
 * lacks it. */
const mg_kernels *mg_kernels_for(int isa);
/* The set mg_linear uses: the best the CPU supports, or the one named by the
 * environment variable MG_KERNELS (generic, avx2, avx512, avx512vnni) when
 * supported. */
const mg_kernels *mg_kernels_active(void);

/* Per-set tables (kernels_generic.c, kernels_avx2.c, kernels_avx512.c). */
extern const mg_kernels mg_kernels_generic;
void mg_quant_x_generic(const float *X, int n, int cols, int ld, const mg_xq *xq);
#if defined(__x86_64__) || defined(__i386__)
#define MG_KERNELS_X86 1
extern const mg_kernels mg_kernels_avx2;
extern const mg_kernels mg_kernels_avx512;
extern const mg_kernels mg_kernels_avx512vnni;
#endif

#endif
