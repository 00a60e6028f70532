/* test_opencl_kernels.c - every OpenCL kernel and CLBlast product of the
 * backend against a plain C reference loop on random data: max abs error
 * <= 1e-5 x the reference's max abs value. Skips when no OpenCL device exists.
 * One program build per run (PoCL caches it in POCL_CACHE_DIR), small sizes. */
#include "autoconfig.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opencl/ocl.h"
#include "engine/mg.h"
#include "engine/safetensors.h"
#include "opencl/ops.h"
#include "tests/tap.h"

static ocl_ctx *ctx;
static char err[1024];
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static float frand(float lo, float hi)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return lo + (hi - lo) * (float)((rng >> 40) & 0xffffff) / 16777216.0f;
}

static float *rnd(size_t n, float lo, float hi)
{
	float *p = malloc(n * sizeof *p + 4);
	for (size_t i = 0; i < n; i++)
		p[i] = frand(lo, hi);
	return p;
}

static cl_mem up(const void *p, size_t bytes)
{
	cl_mem b = ocl_buf_from(ctx, p, bytes, "test", err, sizeof err);
	if (!b) {
		tap_diag("%s", err);
		exit(1);
	}
	return b;
}

static cl_mem dev(size_t bytes)
{
	cl_mem b = ocl_buf(ctx, bytes, "test", err, sizeof err);
	if (!b) {
		tap_diag("%s", err);
		exit(1);
	}
	return b;
}

static float *down(cl_mem b, size_t n)
{
	float *p = malloc(n * sizeof *p + 4);
	if (ocl_read(ctx, b, 0, p, n * sizeof *p, err, sizeof err)) {
		tap_diag("%s", err);
		exit(1);
	}
	return p;
}

/* max |got - ref| <= 1e-5 * max |ref| (and no NaN). */
static int close_to(const char *name, const float *got, const float *ref, size_t n)
{
	double maxref = 0, maxerr = 0;
	int nan = 0;
	for (size_t i = 0; i < n; i++) {
		if (isnan(got[i]) != isnan(ref[i]))
			nan = 1;
		if (fabs(ref[i]) > maxref)
			maxref = fabs(ref[i]);
		double e = fabs((double)got[i] - ref[i]);
		if (e > maxerr)
			maxerr = e;
	}
	int ok = !nan && maxerr <= 1e-5 * (maxref > 0 ? maxref : 1);
	tap_ok(ok, "%s (n=%zu, max abs err %.3g, max ref %.3g)", name, n, maxerr, maxref);
	return ok;
}

static int run_ok(int rc)
{
	if (rc) {
		tap_diag("%s", err);
		exit(1);
	}
	return rc;
}

static void test_norms(void)
{
	int rows = 5, d = 37;
	float *x = rnd((size_t)rows * d, -3, 3), *w = rnd(d, 0.5f, 1.5f), *b = rnd(d, -1, 1);
	float *ref = malloc(sizeof(float) * rows * d);
	cl_mem X = up(x, sizeof(float) * rows * d), W = up(w, sizeof(float) * d), Bb = up(b, sizeof(float) * d);
	cl_mem Y = dev(sizeof(float) * rows * d);

	for (int r = 0; r < rows; r++) {
		float ss = 0;
		for (int i = 0; i < d; i++)
			ss += x[r * d + i] * x[r * d + i];
		float s = 1.0f / sqrtf(ss / d + 1e-6f);
		for (int i = 0; i < d; i++)
			ref[r * d + i] = w[i] * (x[r * d + i] * s);
	}
	run_ok(ocl_rms_norm(ctx, X, W, Y, rows, d, 1e-6f, err, sizeof err));
	float *got = down(Y, (size_t)rows * d);
	close_to("rms_norm", got, ref, (size_t)rows * d);
	free(got);

	for (int r = 0; r < rows; r++) {
		float m = 0, v = 0;
		for (int i = 0; i < d; i++)
			m += x[r * d + i];
		m /= d;
		for (int i = 0; i < d; i++)
			v += (x[r * d + i] - m) * (x[r * d + i] - m);
		v /= d;
		for (int i = 0; i < d; i++)
			ref[r * d + i] = (x[r * d + i] - m) / sqrtf(v + 1e-5f) * w[i] + b[i];
	}
	run_ok(ocl_layer_norm(ctx, X, W, Bb, Y, rows, d, 1e-5f, err, sizeof err));
	got = down(Y, (size_t)rows * d);
	close_to("layer_norm", got, ref, (size_t)rows * d);
	free(got);
	ocl_release(&X); ocl_release(&W); ocl_release(&Bb); ocl_release(&Y);
	free(x); free(w); free(b); free(ref);
}

static void test_elementwise(void)
{
	size_t n = 1000;
	float *x = rnd(n, -4, 4), *y = rnd(n, -2, 2), *ref = malloc(n * sizeof *ref);
	static const int kids[3] = {OK_GELU, OK_RELU, OK_ELU};
	static const char *names[3] = {"gelu (exact erf)", "relu", "elu"};
	for (int a = 0; a < 3; a++) {
		cl_mem X = up(x, n * sizeof *x);
		for (size_t i = 0; i < n; i++) {
			float v = x[i];
			ref[i] = a == 0 ? 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2)) : a == 1 ? (v > 0 ? v : 0)
			                                                                  : (v > 0 ? v : expm1f(v));
		}
		run_ok(ocl_activation(ctx, kids[a], X, n, err, sizeof err));
		float *got = down(X, n);
		close_to(names[a], got, ref, n);
		free(got);
		ocl_release(&X);
	}
	for (int gelu = 0; gelu < 2; gelu++) {
		cl_mem A = up(x, n * sizeof *x), Bm = up(y, n * sizeof *y);
		for (size_t i = 0; i < n; i++) {
			float v = x[i];
			v = gelu ? 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * (v * v * v))))
			         : (v > 0 ? v : 0);
			ref[i] = v * y[i];
		}
		run_ok(ocl_gated_act(ctx, A, Bm, n, gelu, err, sizeof err));
		float *got = down(A, n);
		close_to(gelu ? "gated gelu_new" : "gated relu", got, ref, n);
		free(got);
		ocl_release(&A); ocl_release(&Bm);
	}
	cl_mem X = up(x, n * sizeof *x), Y = up(y, n * sizeof *y);
	for (size_t i = 0; i < n; i++)
		ref[i] = y[i] + x[i];
	run_ok(ocl_add(ctx, Y, X, n, err, sizeof err));
	float *got = down(Y, n);
	close_to("add", got, ref, n);
	free(got);
	ocl_release(&X); ocl_release(&Y);
	free(x); free(y); free(ref);
}

static void test_softmax(void)
{
	int rows = 6, cols = 50, div = 2;
	float *x = rnd((size_t)rows * cols, -5, 5), *mask = malloc(sizeof(float) * (rows / div) * cols);
	float *ref = malloc(sizeof(float) * rows * cols);
	for (int i = 0; i < rows / div * cols; i++)
		mask[i] = (i % 7 == 3) ? -FLT_MAX : 0.0f;
	for (int r = 0; r < rows; r++) {
		float m = -INFINITY, s = 0;
		for (int j = 0; j < cols; j++) {
			ref[r * cols + j] = x[r * cols + j] + mask[(r / div) * cols + j];
			m = fmaxf(m, ref[r * cols + j]);
		}
		for (int j = 0; j < cols; j++) {
			ref[r * cols + j] = expf(ref[r * cols + j] - m);
			s += ref[r * cols + j];
		}
		for (int j = 0; j < cols; j++)
			ref[r * cols + j] /= s;
	}
	cl_mem X = up(x, sizeof(float) * rows * cols), M = up(mask, sizeof(float) * (rows / div) * cols);
	run_ok(ocl_softmax_rows(ctx, X, M, div, rows, cols, err, sizeof err));
	float *got = down(X, (size_t)rows * cols);
	close_to("softmax_rows with additive mask", got, ref, (size_t)rows * cols);
	free(got);
	ocl_release(&X); ocl_release(&M);
	free(x); free(mask); free(ref);
}

/* Reference attention with the same conventions as attention.cl. */
static void attn_ref(const float *q, int ldq, const float *k, const float *v, int ldkv, int kv_rows, float *out,
                     int ldo, const float *kmask, const float *rel_w, const int *bucket, int N, int H, int hd,
                     int Tq, int nk, int past, float scale)
{
	float *s = malloc(sizeof(float) * (size_t)nk);
	for (int n = 0; n < N; n++)
		for (int h = 0; h < H; h++)
			for (int i = 0; i < Tq; i++) {
				const float *qr = q + ((size_t)n * Tq + i) * ldq + h * hd;
				float *o = out + ((size_t)n * Tq + i) * ldo + h * hd;
				float m = -INFINITY;
				for (int j = 0; j < nk; j++) {
					int ok = (past < 0 || j <= past + i) && (!kmask || kmask[n * nk + j] != 0);
					s[j] = -INFINITY;
					if (!ok)
						continue;
					const float *kr = k + ((size_t)n * kv_rows + j) * ldkv + h * hd;
					float d = 0;
					for (int c = 0; c < hd; c++)
						d += (qr[c] * scale) * kr[c];
					if (rel_w)
						d += rel_w[bucket[j - i + Tq - 1] * H + h];
					s[j] = d;
					m = fmaxf(m, d);
				}
				if (m == -INFINITY) {
					for (int c = 0; c < hd; c++)
						o[c] = 0;
					continue;
				}
				float sum = 0;
				for (int j = 0; j < nk; j++) {
					s[j] = expf(s[j] - m);
					sum += s[j];
				}
				for (int c = 0; c < hd; c++) {
					float a = 0;
					for (int j = 0; j < nk; j++)
						a += s[j] / sum * v[((size_t)n * kv_rows + j) * ldkv + h * hd + c];
					o[c] = a;
				}
			}
	free(s);
}

static void test_attention(void)
{
	/* decoder self-attention: N=2, H=3, hd=8, cache of 10 rows, 4 past + Tq new */
	int N = 2, H = 3, hd = 8, inner = H * hd, Tmax = 10;
	/* work-group sizes above, equal to and below the head size */
	size_t wg0 = ctx->wg, wgs[3] = {wg0, (size_t)hd, 4};
	for (int Tq = 1; Tq <= 3; Tq += 2)
	for (int wi = 0; wi < 3; wi++) {
		size_t wg = wgs[wi];
		ctx->wg = wg;
		int past = 4, nk = past + Tq;
		float *q = rnd((size_t)N * Tq * inner, -1, 1), *kc = rnd((size_t)N * Tmax * inner, -1, 1);
		float *vc = rnd((size_t)N * Tmax * inner, -1, 1), *ref = calloc((size_t)N * Tq * inner, sizeof(float));
		cl_mem Q = up(q, sizeof(float) * N * Tq * inner), K = up(kc, sizeof(float) * N * Tmax * inner);
		cl_mem V = up(vc, sizeof(float) * N * Tmax * inner), O = dev(sizeof(float) * N * Tq * inner);
		cl_mem S = dev(sizeof(float) * N * H * Tq * nk);
		ocl_attn a = {.q = Q, .ldq = inner, .k = K, .v = V, .ldkv = inner, .kv_rows = Tmax, .out = O,
		              .ldo = inner, .scores = S, .N = N, .H = H, .hd = hd, .Tq = Tq, .nk = nk,
		              .past = past, .scale = 0.125f};
		attn_ref(q, inner, kc, vc, inner, Tmax, ref, inner, NULL, NULL, NULL, N, H, hd, Tq, nk, past, 0.125f);
		run_ok(ocl_attention(ctx, &a, err, sizeof err));
		float *got = down(O, (size_t)N * Tq * inner);
		char name[160];
		snprintf(name, sizeof name, "attention over the KV cache, causal, %d new row(s), work-group %zu", Tq, wg);
		close_to(name, got, ref, (size_t)N * Tq * inner);
		free(got);
		ocl_release(&Q); ocl_release(&K); ocl_release(&V); ocl_release(&O); ocl_release(&S);
		free(q); free(kc); free(vc); free(ref);
		ctx->wg = wg0;
	}

	/* cross-attention: N=3, S=6 keys, batch item 1 fully masked (gives 0), item 2 partly */
	{
		int S = 6, Tq = 1;
		float *q = rnd((size_t)N * 3 * inner, -1, 1), *k = rnd((size_t)3 * S * inner, -1, 1);
		float *v = rnd((size_t)3 * S * inner, -1, 1), *ref = calloc((size_t)3 * inner, sizeof(float));
		float mask[18] = {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0};
		cl_mem Q = up(q, sizeof(float) * 3 * inner), K = up(k, sizeof(float) * 3 * S * inner);
		cl_mem V = up(v, sizeof(float) * 3 * S * inner), O = dev(sizeof(float) * 3 * inner);
		cl_mem Sc = dev(sizeof(float) * 3 * H * S), M = up(mask, sizeof mask);
		ocl_attn a = {.q = Q, .ldq = inner, .k = K, .v = V, .ldkv = inner, .kv_rows = S, .out = O,
		              .ldo = inner, .scores = Sc, .kmask = M, .N = 3, .H = H, .hd = hd, .Tq = Tq, .nk = S,
		              .past = -1, .scale = 0.125f};
		attn_ref(q, inner, k, v, inner, S, ref, inner, mask, NULL, NULL, 3, H, hd, Tq, S, -1, 0.125f);
		run_ok(ocl_attention(ctx, &a, err, sizeof err));
		float *got = down(O, (size_t)3 * inner);
		close_to("cross-attention with key mask", got, ref, (size_t)3 * inner);
		int zero = 1;
		for (int c = 0; c < inner; c++)
			zero &= got[inner + c] == 0.0f;
		tap_ok(zero, "cross-attention: a fully masked row gives exactly 0");
		free(got);
		ocl_release(&Q); ocl_release(&K); ocl_release(&V); ocl_release(&O); ocl_release(&Sc);
		ocl_release(&M);
		free(q); free(k); free(v); free(ref);
	}

	/* T5: fused QKV rows (ld 3*inner), relative position bias, pad mask, no scaling */
	{
		int B = 2, S = 7, nb = 32, ld = 3 * inner;
		float *qkv = rnd((size_t)B * S * ld, -1, 1), *rel = rnd((size_t)nb * H, -2, 2);
		float *ref = calloc((size_t)B * S * inner, sizeof(float));
		float mask[14] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
		int bucket[13];
		for (int r = 0; r < 2 * S - 1; r++)
			bucket[r] = (r * 5 + 3) % nb;
		cl_mem QKV = up(qkv, sizeof(float) * B * S * ld), O = dev(sizeof(float) * B * S * inner);
		cl_mem Sc = dev(sizeof(float) * B * H * S * S), M = up(mask, sizeof mask);
		cl_mem R = up(rel, sizeof(float) * nb * H), Bk = up(bucket, sizeof bucket);
		ocl_attn a = {.q = QKV, .ldq = ld, .k = QKV, .koff = inner, .v = QKV, .voff = 2 * inner, .ldkv = ld, .kv_rows = S, .out = O,
		              .ldo = inner, .scores = Sc, .kmask = M, .rel_w = R, .bucket = Bk, .N = B, .H = H,
		              .hd = hd, .Tq = S, .nk = S, .past = -1, .scale = 1.0f};
		attn_ref(qkv, ld, qkv + inner, qkv + 2 * inner, ld, S, ref, inner, mask, rel, bucket, B, H, hd, S, S,
		         -1, 1.0f);
		run_ok(ocl_attention(ctx, &a, err, sizeof err));
		float *got = down(O, (size_t)B * S * inner);
		close_to("T5 attention (fused QKV columns) with relative position bias and pad mask", got, ref, (size_t)B * S * inner);
		free(got);
		ocl_release(&QKV); ocl_release(&O); ocl_release(&Sc); ocl_release(&M); ocl_release(&R);
		ocl_release(&Bk);
		free(qkv); free(rel); free(ref);
	}
}

static void test_kv_append(void)
{
	int N = 2, Tq = 2, inner = 12, lds = 36, off = 12, Tmax = 5, past = 3;
	float *src = rnd((size_t)N * Tq * lds, -1, 1), *cache = rnd((size_t)N * Tmax * inner, -1, 1);
	float *ref = malloc(sizeof(float) * N * Tmax * inner);
	memcpy(ref, cache, sizeof(float) * N * Tmax * inner);
	for (int n = 0; n < N; n++)
		for (int t = 0; t < Tq; t++)
			for (int c = 0; c < inner; c++)
				ref[((size_t)n * Tmax + past + t) * inner + c] = src[((size_t)n * Tq + t) * lds + off + c];
	cl_mem S = up(src, sizeof(float) * N * Tq * lds), C = up(cache, sizeof(float) * N * Tmax * inner);
	run_ok(ocl_kv_append(ctx, S, lds, off, C, N, Tmax, past, Tq, inner, err, sizeof err));
	float *got = down(C, (size_t)N * Tmax * inner);
	close_to("kv_append", got, ref, (size_t)N * Tmax * inner);
	free(got);
	ocl_release(&S); ocl_release(&C);
	free(src); free(cache); free(ref);
}

static void test_embed(void)
{
	int N = 2, K = 4, V1 = 9, D = 16, Tq = 2, P = 12, past = 5;
	float *tab = rnd((size_t)K * V1 * D, -1, 1), *pos = rnd((size_t)P * D, -1, 1);
	int ids[16];
	for (int i = 0; i < N * K * Tq; i++)
		ids[i] = (i * 7 + 2) % V1;
	float *ref = malloc(sizeof(float) * 8 * D); /* N*Tq rows, then 5 */
	for (int n = 0; n < N; n++)
		for (int t = 0; t < Tq; t++)
			for (int d = 0; d < D; d++) {
				float e = tab[(size_t)ids[(n * K) * Tq + t] * D + d];
				for (int k = 1; k < K; k++)
					e = e + tab[((size_t)k * V1 + ids[(n * K + k) * Tq + t]) * D + d];
				ref[(n * Tq + t) * D + d] = e + pos[(past + t) * D + d];
			}
	cl_mem T = up(tab, sizeof(float) * K * V1 * D), Pp = up(pos, sizeof(float) * P * D);
	cl_mem I = up(ids, sizeof ids), O = dev(sizeof(float) * N * Tq * D);
	run_ok(ocl_embed_sum(ctx, I, T, Pp, O, N, K, V1, D, Tq, past, err, sizeof err));
	float *got = down(O, (size_t)N * Tq * D);
	close_to("embed_sum (codebook embeddings + positions)", got, ref, (size_t)N * Tq * D);
	free(got);

	/* embed_rows + rows_mask */
	int rows = 5;
	float mask[5] = {1, 0, 1, 1, 0};
	for (int r = 0; r < rows; r++)
		for (int d = 0; d < D; d++)
			ref[r * D + d] = tab[(size_t)ids[r] * D + d] * mask[r];
	cl_mem M = up(mask, sizeof mask), O2 = dev(sizeof(float) * rows * D);
	run_ok(ocl_embed_rows(ctx, I, T, O2, rows, D, err, sizeof err));
	run_ok(ocl_rows_mask(ctx, O2, M, rows, D, err, sizeof err));
	got = down(O2, (size_t)rows * D);
	close_to("embed_rows + rows_mask", got, ref, (size_t)rows * D);
	free(got);
	ocl_release(&T); ocl_release(&Pp); ocl_release(&I); ocl_release(&O); ocl_release(&M); ocl_release(&O2);
	free(tab); free(pos); free(ref);
}

static void test_logits(void)
{
	int R = 4, V = 300;
	float *z = rnd((size_t)2 * R * V, -5, 5), *ref = malloc(sizeof(float) * R * V);
	float g = 3.0f, temp = 0.7f;
	for (int r = 0; r < R; r++)
		for (int c = 0; c < V; c++) {
			float u = z[(R + r) * V + c], val = z[r * V + c];
			ref[r * V + c] = (u + (val - u) * g) / temp;
		}
	cl_mem Z = up(z, sizeof(float) * 2 * R * V), O = dev(sizeof(float) * R * V);
	run_ok(ocl_logits_process(ctx, Z, O, R, V, 1, g, temp, err, sizeof err));
	float *got = down(O, (size_t)R * V);
	close_to("logits_process (guidance 3, temperature 0.7)", got, ref, (size_t)R * V);

	/* argmax with ties: the lowest index wins */
	for (int r = 0; r < R; r++) {
		got[r * V + 17 + r] = 100.0f;
		got[r * V + 250 - r] = 100.0f;
	}
	got[3 * V + 0] = 100.0f;
	if (ocl_write(ctx, O, 0, got, sizeof(float) * R * V, err, sizeof err))
		tap_diag("%s", err);
	cl_mem I = dev(sizeof(cl_int) * R);
	run_ok(ocl_argmax_rows(ctx, O, R, V, I, err, sizeof err));
	cl_int ids[4];
	ocl_read(ctx, I, 0, ids, sizeof ids, err, sizeof err);
	tap_ok(ids[0] == 17 && ids[1] == 18 && ids[2] == 19 && ids[3] == 0,
	       "argmax_rows picks the lowest index among ties (%d %d %d %d)", ids[0], ids[1], ids[2], ids[3]);
	free(got);
	ocl_release(&Z); ocl_release(&O); ocl_release(&I);
	free(z); free(ref);
}

static void test_gemm(void)
{
	int m = 3, in = 45, out = 29;
	float *x = rnd((size_t)m * in, -1, 1), *w = rnd((size_t)out * in, -1, 1), *b = rnd(out, -1, 1);
	float *y0 = rnd((size_t)m * out, -1, 1), *ref = malloc(sizeof(float) * m * out);
	for (int r = 0; r < m; r++)
		for (int o = 0; o < out; o++) {
			double acc = 0;
			for (int i = 0; i < in; i++)
				acc += (double)x[r * in + i] * w[o * in + i];
			ref[r * out + o] = (float)acc + b[o];
		}
	cl_mem X = up(x, sizeof(float) * m * in), W = up(w, sizeof(float) * out * in), Bb = up(b, sizeof(float) * out);
	cl_mem Y = dev(sizeof(float) * m * out);
	run_ok(ocl_linear(ctx, X, m, in, W, out, Bb, Y, err, sizeof err));
	float *got = down(Y, (size_t)m * out);
	close_to("linear with bias (CLBlast GEMM)", got, ref, (size_t)m * out);
	free(got);
	for (int r = 0; r < m; r++)
		for (int o = 0; o < out; o++)
			ref[r * out + o] += y0[r * out + o] - b[o];
	run_ok(ocl_write(ctx, Y, 0, y0, sizeof(float) * m * out, err, sizeof err));
	run_ok(ocl_linear_acc(ctx, X, m, in, W, out, Y, err, sizeof err));
	got = down(Y, (size_t)m * out);
	close_to("linear accumulate into residual (GEMM beta 1)", got, ref, (size_t)m * out);
	free(got);
	/* a product that does not accumulate must not read its output: with NaN
	 * there beforehand (uninitialised device memory can hold anything), one
	 * row and several rows must come out clean */
	for (int rows = 1; rows <= m; rows += m - 1) {
		float *nan = malloc(sizeof(float) * m * out);
		for (int i = 0; i < m * out; i++)
			nan[i] = NAN;
		for (int r = 0; r < rows; r++)
			for (int o = 0; o < out; o++) {
				double acc = 0;
				for (int i = 0; i < in; i++)
					acc += (double)x[r * in + i] * w[o * in + i];
				ref[r * out + o] = (float)acc;
			}
		ocl_mat M = {W, out, in, 0};
		run_ok(ocl_write(ctx, Y, 0, nan, sizeof(float) * m * out, err, sizeof err));
		run_ok(ocl_matmul(ctx, X, 0, in, rows, &M, Y, out, 0, err, sizeof err));
		float *got = down(Y, (size_t)rows * out);
		char name[96];
		snprintf(name, sizeof name, "matmul of %d row(s) ignores NaN left in its output", rows);
		close_to(name, got, ref, (size_t)rows * out);
		free(got);
		free(nan);
	}
	ocl_release(&X); ocl_release(&W); ocl_release(&Bb); ocl_release(&Y);
	free(x); free(w); free(b); free(y0); free(ref);

	/* a product large enough for CLBlast's indirect (pre-processing) path,
	 * with NaN in the output beforehand */
	int big = 512;
	float *bx = rnd((size_t)big * big, -1, 1), *bw = rnd((size_t)big * big, -1, 1);
	float *bref = malloc(sizeof(float) * big * big), *bnan = malloc(sizeof(float) * big * big);
	for (int r = 0; r < big; r++)
		for (int o = 0; o < big; o++) {
			double acc = 0;
			for (int i = 0; i < big; i++)
				acc += (double)bx[r * big + i] * bw[o * big + i];
			bref[r * big + o] = (float)acc;
		}
	for (int i = 0; i < big * big; i++)
		bnan[i] = NAN;
	cl_mem BX = up(bx, sizeof(float) * big * big), BW = up(bw, sizeof(float) * big * big);
	cl_mem BY = up(bnan, sizeof(float) * big * big);
	ocl_mat BM = {BW, big, big, 0};
	run_ok(ocl_matmul(ctx, BX, 0, big, big, &BM, BY, big, 0, err, sizeof err));
	float *bgot = down(BY, (size_t)big * big);
	close_to("matmul 512x512x512 (CLBlast indirect GEMM) ignores NaN left in its output", bgot, bref,
	         (size_t)big * big);
	ocl_release(&BX); ocl_release(&BW); ocl_release(&BY);
	free(bx); free(bw); free(bref); free(bnan); free(bgot);
}

/* The small-batch product with float32 and half weights, 1..8 rows at an
 * offset, plain and accumulating; and ocl_matmul's chunking past 8 rows. */
static void test_linear_rows(void)
{
	int in = 70, out = 33, maxr = 11;
	float *x = rnd((size_t)(maxr + 1) * in, -1, 1), *w = rnd((size_t)out * in, -1, 1);
	float *y0 = rnd((size_t)maxr * out, -1, 1), *ref = malloc(sizeof(float) * maxr * out);
	uint16_t *wh = malloc(sizeof(uint16_t) * out * in);
	float *wr = malloc(sizeof(float) * out * in);
	for (int i = 0; i < out * in; i++) {
		wh[i] = st_f32_to_f16(w[i]);
		wr[i] = st_f16_to_f32(wh[i]);
	}
	cl_mem X = up(x, sizeof(float) * (maxr + 1) * in), W = up(w, sizeof(float) * out * in);
	cl_mem WH = up(wh, sizeof(uint16_t) * out * in), Y = dev(sizeof(float) * maxr * out);
	for (int half = 0; half < 2; half++)
		for (int acc = 0; acc < 2; acc++) {
			int rows = half ? maxr : 3 + acc * 5; /* 3, 8 rows (kernel); 11 rows half (chunked) */
			const float *wu = half ? wr : w;
			for (int r = 0; r < rows; r++)
				for (int o = 0; o < out; o++) {
					double a = 0;
					for (int i = 0; i < in; i++)
						a += (double)x[(r + 1) * in + i] * wu[o * in + i];
					ref[r * out + o] = (float)a + (acc ? y0[r * out + o] : 0.0f);
				}
			ocl_mat M = {half ? WH : W, out, in, half};
			run_ok(ocl_write(ctx, Y, 0, y0, sizeof(float) * maxr * out, err, sizeof err));
			if (half)
				run_ok(ocl_matmul(ctx, X, (size_t)in, in, rows, &M, Y, out, acc, err, sizeof err));
			else
				run_ok(ocl_linear_rows(ctx, X, (size_t)in, in, rows, &M, Y, 0, out, acc, err, sizeof err));
			float *got = down(Y, (size_t)rows * out);
			char name[120];
			snprintf(name, sizeof name, "%s, %s weights, %d rows at an offset%s",
			         half ? "matmul (8-row passes)" : "linear_rows kernel", half ? "half" : "float32", rows,
			         acc ? ", accumulating" : "");
			close_to(name, got, ref, (size_t)rows * out);
			free(got);
		}
	ocl_release(&X); ocl_release(&W); ocl_release(&WH); ocl_release(&Y);
	free(x); free(w); free(y0); free(ref); free(wh); free(wr);
}

static void pad_ref(const float *x, int L, int l, int r, float *out)
{
	int mx = l > r ? l : r, e = L <= mx ? mx - L + 1 : 0, Le = L + e;
	for (int p = 0; p < L + l + r; p++) {
		int j = p - l;
		if (j < 0)
			j = -j;
		if (j >= Le)
			j = 2 * (Le - 1) - j;
		out[p] = j < L ? x[j] : 0.0f;
	}
}

static void test_pad(void)
{
	static const int cases[][3] = {{10, 3, 3}, {9, 2, 5}, {2, 3, 4}, {1, 3, 3}};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int B = 2, C = 3, L = cases[c][0], l = cases[c][1], r = cases[c][2], Lo = L + l + r;
		float *x = rnd((size_t)B * C * L, -1, 1), *ref = malloc(sizeof(float) * B * C * Lo);
		for (int i = 0; i < B * C; i++)
			pad_ref(x + i * L, L, l, r, ref + i * Lo);
		cl_mem X = up(x, sizeof(float) * B * C * L), O = dev(sizeof(float) * B * C * Lo);
		run_ok(ocl_pad(ctx, X, O, B, C, L, l, r, 1, err, sizeof err));
		float *got = down(O, (size_t)B * C * Lo);
		char name[80];
		snprintf(name, sizeof name, "reflect padding L=%d (%d, %d)", L, l, r);
		close_to(name, got, ref, (size_t)B * C * Lo);
		free(got);
		ocl_release(&X); ocl_release(&O);
		free(x); free(ref);
	}
	{
		float x[3] = {1, 2, 3}, want[7] = {0, 0, 1, 2, 3, 0, 0};
		cl_mem X = up(x, sizeof x), O = dev(sizeof want);
		run_ok(ocl_pad(ctx, X, O, 1, 1, 3, 2, 2, 0, err, sizeof err));
		float *got = down(O, 7);
		tap_ok(!memcmp(got, want, sizeof want), "constant (zero) padding of [1 2 3] by (2, 2)");
		free(got);
		ocl_release(&X); ocl_release(&O);
	}
	/* a known vector: [1 2 3 4] padded (2, 3) -> [3 2 1 2 3 4 3 2 1] */
	float x[4] = {1, 2, 3, 4}, want[9] = {3, 2, 1, 2, 3, 4, 3, 2, 1};
	cl_mem X = up(x, sizeof x), O = dev(sizeof want);
	run_ok(ocl_pad(ctx, X, O, 1, 1, 4, 2, 3, 1, err, sizeof err));
	float *got = down(O, 9);
	tap_ok(!memcmp(got, want, sizeof want), "reflect padding of [1 2 3 4] by (2, 3) is [3 2 1 2 3 4 3 2 1]");
	free(got);
	ocl_release(&X); ocl_release(&O);
}

static void test_conv(void)
{
	/* Cin, Cout, K, stride, dil, L (padded input length) */
	static const int cases[][6] = {{5, 4, 7, 1, 1, 20}, {3, 6, 8, 4, 1, 26}, {4, 3, 3, 1, 2, 15}, {6, 5, 1, 1, 1, 9}};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int B = 2, Cin = cases[c][0], Cout = cases[c][1], K = cases[c][2], s = cases[c][3], d = cases[c][4];
		int Lp = cases[c][5], Lout = (Lp - ((K - 1) * d + 1)) / s + 1;
		float *x = rnd((size_t)B * Cin * Lp, -1, 1), *w = rnd((size_t)Cout * Cin * K, -1, 1);
		float *b = rnd(Cout, -1, 1), *ref = malloc(sizeof(float) * B * Cout * Lout);
		for (int bb = 0; bb < B; bb++)
			for (int o = 0; o < Cout; o++)
				for (int t = 0; t < Lout; t++) {
					float acc = 0;
					for (int i = 0; i < Cin; i++)
						for (int k = 0; k < K; k++)
							acc += w[(o * Cin + i) * K + k] * x[(bb * Cin + i) * Lp + t * s + k * d];
					ref[(bb * Cout + o) * Lout + t] = b[o] + acc;
				}
		cl_mem X = up(x, sizeof(float) * B * Cin * Lp), W = up(w, sizeof(float) * Cout * Cin * K);
		cl_mem Bb = up(b, sizeof(float) * Cout), Y = dev(sizeof(float) * B * Cout * Lout);
		run_ok(ocl_conv1d(ctx, X, W, Bb, Y, B, Cin, Lp, Cout, K, s, d, Lout, err, sizeof err));
		float *got = down(Y, (size_t)B * Cout * Lout);
		char name[80];
		snprintf(name, sizeof name, "conv1d K%d stride %d dilation %d", K, s, d);
		close_to(name, got, ref, (size_t)B * Cout * Lout);
		free(got);
		ocl_release(&X); ocl_release(&W); ocl_release(&Bb); ocl_release(&Y);
		free(x); free(w); free(b); free(ref);
	}

	/* transposed: Cin, Cout, stride (K = 2 stride), L */
	static const int tcases[][4] = {{4, 3, 8, 5}, {3, 2, 5, 6}, {2, 4, 4, 3}};
	for (size_t c = 0; c < sizeof tcases / sizeof tcases[0]; c++) {
		int B = 2, Cin = tcases[c][0], Cout = tcases[c][1], s = tcases[c][2], K = 2 * s, L = tcases[c][3];
		int pr = (K - s) / 2, pl = (K - s) - pr, full = (L - 1) * s + K, Lout = L * s;
		float *x = rnd((size_t)B * Cin * L, -1, 1), *w = rnd((size_t)Cin * Cout * K, -1, 1);
		float *b = rnd(Cout, -1, 1), *f = calloc((size_t)full, sizeof(float));
		float *ref = malloc(sizeof(float) * B * Cout * Lout);
		for (int bb = 0; bb < B; bb++)
			for (int o = 0; o < Cout; o++) {
				for (int p = 0; p < full; p++)
					f[p] = 0;
				for (int i = 0; i < Cin; i++)
					for (int m = 0; m < L; m++)
						for (int k = 0; k < K; k++)
							f[m * s + k] += x[(bb * Cin + i) * L + m] * w[(i * Cout + o) * K + k];
				for (int t = 0; t < Lout; t++)
					ref[(bb * Cout + o) * Lout + t] = b[o] + f[t + pl];
			}
		cl_mem X = up(x, sizeof(float) * B * Cin * L), W = up(w, sizeof(float) * Cin * Cout * K);
		cl_mem Bb = up(b, sizeof(float) * Cout), Y = dev(sizeof(float) * B * Cout * Lout);
		run_ok(ocl_conv_transpose1d(ctx, X, W, Bb, Y, B, Cin, L, Cout, K, s, pl, err, sizeof err));
		float *got = down(Y, (size_t)B * Cout * Lout);
		char name[80];
		snprintf(name, sizeof name, "transposed conv1d K%d stride %d (trim %d, %d)", K, s, pl, pr);
		close_to(name, got, ref, (size_t)B * Cout * Lout);
		free(got);
		ocl_release(&X); ocl_release(&W); ocl_release(&Bb); ocl_release(&Y);
		free(x); free(w); free(b); free(f); free(ref);
	}
}

static float sigm(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* One LSTM layer over T steps for B items the way the model runs it: the
 * input part of the gates for every step in one GEMM, then per step a GEMM
 * with W_hh accumulating into that step's gates and the cell kernel. */
static void test_lstm(void)
{
	int B = 2, C = 6, T = 5, G = 4 * C;
	float *u = rnd((size_t)B * T * C, -1, 1), *wih = rnd((size_t)G * C, -0.5f, 0.5f);
	float *whh = rnd((size_t)G * C, -0.5f, 0.5f), *bias = rnd(G, -0.5f, 0.5f);
	float *ref = malloc(sizeof(float) * B * T * C), *gates = malloc(sizeof(float) * G);
	for (int b = 0; b < B; b++) {
		float c[6] = {0}, h[6] = {0};
		for (int t = 0; t < T; t++) {
			for (int g = 0; g < G; g++) {
				float a = bias[g];
				for (int i = 0; i < C; i++)
					a += wih[g * C + i] * u[(b * T + t) * C + i] + whh[g * C + i] * h[i];
				gates[g] = a;
			}
			for (int j = 0; j < C; j++) {
				c[j] = sigm(gates[C + j]) * c[j] + sigm(gates[j]) * tanhf(gates[2 * C + j]);
				h[j] = sigm(gates[3 * C + j]) * tanhf(c[j]);
				ref[(b * T + t) * C + j] = h[j];
			}
		}
	}
	cl_mem U = up(u, sizeof(float) * B * T * C), Wih = up(wih, sizeof(float) * G * C);
	cl_mem Whh = up(whh, sizeof(float) * G * C), Bi = up(bias, sizeof(float) * G);
	cl_mem Gx = dev(sizeof(float) * B * T * G), H = dev(sizeof(float) * B * T * C), Cs = dev(sizeof(float) * B * C);
	run_ok(ocl_fill(ctx, Cs, 0.0f, (size_t)B * C, err, sizeof err));
	run_ok(ocl_linear(ctx, U, B * T, C, Wih, G, Bi, Gx, err, sizeof err));
	for (int t = 0; t < T; t++) {
		if (t > 0)
			run_ok(ocl_gemm_nt(ctx, B, G, C, H, (size_t)(t - 1) * C, T * C, Whh, 0, C, 1.0f, Gx, (size_t)t * G,
			                   T * G, err, sizeof err));
		run_ok(ocl_lstm_cell(ctx, Gx, T * G, t * G, Cs, H, T * C, t * C, B, C, err, sizeof err));
	}
	float *got = down(H, (size_t)B * T * C);
	close_to("LSTM layer (GEMM gates + cell kernel), 5 steps", got, ref, (size_t)B * T * C);
	free(got);
	ocl_release(&U); ocl_release(&Wih); ocl_release(&Whh); ocl_release(&Bi); ocl_release(&Gx);
	ocl_release(&H); ocl_release(&Cs);
	free(u); free(wih); free(whh); free(bias); free(ref); free(gates);
}

static void test_rvq_transpose(void)
{
	int B = 2, nq = 3, V = 11, D = 8, F = 5;
	float *emb = rnd((size_t)nq * V * D, -1, 1), *ref = malloc(sizeof(float) * B * D * F);
	int codes[30];
	for (int i = 0; i < B * nq * F; i++)
		codes[i] = (i * 5 + 1) % V;
	for (int b = 0; b < B; b++)
		for (int d = 0; d < D; d++)
			for (int t = 0; t < F; t++) {
				float a = 0;
				for (int q = 0; q < nq; q++)
					a = a + emb[((size_t)q * V + codes[(b * nq + q) * F + t]) * D + d];
				ref[(b * D + d) * F + t] = a;
			}
	cl_mem E = up(emb, sizeof(float) * nq * V * D), Cc = up(codes, sizeof codes), Z = dev(sizeof(float) * B * D * F);
	run_ok(ocl_rvq_decode(ctx, Cc, E, Z, B, nq, V, D, F, err, sizeof err));
	float *got = down(Z, (size_t)B * D * F);
	close_to("rvq_decode", got, ref, (size_t)B * D * F);
	free(got);

	float *tr = malloc(sizeof(float) * B * D * F);
	for (int b = 0; b < B; b++)
		for (int d = 0; d < D; d++)
			for (int t = 0; t < F; t++)
				tr[(b * F + t) * D + d] = ref[(b * D + d) * F + t];
	cl_mem Tt = dev(sizeof(float) * B * D * F);
	run_ok(ocl_transpose(ctx, Z, Tt, B, D, F, err, sizeof err));
	got = down(Tt, (size_t)B * D * F);
	close_to("transpose [B, C, T] -> [B, T, C]", got, tr, (size_t)B * D * F);
	free(got);
	ocl_release(&E); ocl_release(&Cc); ocl_release(&Z); ocl_release(&Tt);
	free(emb); free(ref); free(tr);
}

static void notice(const char *msg, void *ud)
{
	(*(int *)ud)++;
	tap_diag("notice: %s", msg);
}

int main(void)
{
	ocl_device_desc *devs = NULL;
	int n = 0;
	if (ocl_list_devices(&devs, &n, err, sizeof err))
		tap_skip_all(err);
	int pick = ocl_default_device(devs, n);
	if (pick < 0) {
		free(devs);
		tap_skip_all("no OpenCL platform or device found");
	}
	{
		/* the choice rules on made-up device lists */
		ocl_device_desc f[4];
		memset(f, 0, sizeof f);
		for (int i = 0; i < 4; i++)
			f[i].available = 1;
		f[0].type = CL_DEVICE_TYPE_CPU, f[0].global_mem = 64ULL << 30;
		f[1].type = CL_DEVICE_TYPE_GPU, f[1].global_mem = 2ULL << 30;   /* integrated */
		f[2].type = CL_DEVICE_TYPE_GPU, f[2].global_mem = 24ULL << 30;  /* discrete */
		f[3].type = CL_DEVICE_TYPE_ACCELERATOR, f[3].global_mem = 24ULL << 30;
		int a1 = ocl_auto_device(f, 4), a2 = ocl_auto_device(f, 1), d2 = ocl_default_device(f, 1);
		f[2].available = 0;
		int a3 = ocl_auto_device(f, 4);
		tap_ok(a1 == 2 && a2 == -1 && d2 == 0 && a3 == 3,
		       "auto: the GPU/accelerator with the most memory, never a CPU device (%d %d %d %d)", a1, a2, d2, a3);
	}
	{
		mg_device list[16];
		int m = mg_list_devices(list, 16, err, sizeof err), same = m == n;
		for (int i = 0; same && i < m && i < 16; i++)
			same = !strcmp(list[i].name, devs[i].name) && list[i].index == i &&
			       list[i].is_auto == (i == ocl_auto_device(devs, n)) && list[i].memory == devs[i].global_mem;
		tap_ok(same, "mg_list_devices lists the %d device(s) as 'devices' does", n);
	}

	/* A private cache directory: the first context compiles and stores the
	 * program binary, the second must load it from there. */
	char tmpl[] = "/tmp/mg-ocl-cache-XXXXXX";
	char *dir = mkdtemp(tmpl);
	if (dir)
		setenv("XDG_CACHE_HOME", dir, 1);
	int notices = 0;
	if (ocl_ctx_create(&ctx, &devs[pick], notice, &notices, err, sizeof err)) {
		tap_ok(0, "context on %s: %s", devs[pick].name, err);
		free(devs);
		return tap_done();
	}
	tap_ok(1, "context, queue and program on device %d: %s (work-group %zu)", pick, ctx->dev.name, ctx->wg);
	tap_ok(notices == 1 && !ctx->from_cache, "first build says 'compiling kernels' once");
	tap_ok(access(ctx->cache_file, R_OK) == 0, "program binary cached");
	ocl_ctx *again = NULL;
	notices = 0;
	if (ocl_ctx_create(&again, &devs[pick], notice, &notices, err, sizeof err) == 0) {
		tap_ok(again->from_cache && notices == 0, "second context loads the cached binary silently");
		ocl_ctx_free(again);
	} else
		tap_ok(0, "second context: %s", err);
	/* a damaged cache file is rebuilt from source, not trusted */
	{
		FILE *f = fopen(ctx->cache_file, "wb");
		if (f) {
			fputs("not a program binary", f);
			fclose(f);
		}
		notices = 0;
		if (ocl_ctx_create(&again, &devs[pick], notice, &notices, err, sizeof err) == 0) {
			tap_ok(!again->from_cache && notices == 1, "a damaged cached binary is rebuilt from source");
			ocl_ctx_free(again);
		} else
			tap_ok(0, "context after a damaged cache file: %s", err);
	}
	/* a program that does not build: a clear error, the log in the cache dir */
	{
		static const char bad[] = "__kernel void broken(__global float *x) { x[0] = undefined_name; }\n";
		ocl_ctx *b = NULL;
		char logpath[1100] = "";
		int rc = ocl_ctx_create_src(&b, &devs[pick], bad, sizeof bad - 1, NULL, NULL, err, sizeof err);
		const char *at = strstr(err, "build log in ");
		if (at)
			snprintf(logpath, sizeof logpath, "%s", at + strlen("build log in "));
		FILE *f = logpath[0] ? fopen(logpath, "r") : NULL;
		char line[256] = "";
		int has_text = f && fgets(line, sizeof line, f) != NULL;
		tap_ok(rc != 0 && !b && has_text, "a program that does not build fails with its log kept: %s", err);
		if (f)
			fclose(f);
		if (logpath[0])
			unlink(logpath);
		ocl_ctx_free(b);
	}
	/* a buffer larger than the device allows is refused with a message */
	{
		char e2[512] = "";
		cl_mem big = ocl_buf(ctx, (size_t)ctx->dev.max_alloc + 4096, "a huge tensor", e2, sizeof e2);
		tap_ok(!big && strstr(e2, "a huge tensor") && strstr(e2, "at most"), "over-large buffer refused: %s", e2);
		ocl_release(&big);
	}
	if (ctx->cache_file[0])
		unlink(ctx->cache_file);
	if (dir) {
		char sub[600];
		snprintf(sub, sizeof sub, "%s/musicgen-tui", dir);
		rmdir(sub);
		rmdir(dir);
	}
	free(devs);

	test_norms();
	test_elementwise();
	test_softmax();
	test_attention();
	test_kv_append();
	test_embed();
	test_logits();
	test_gemm();
	test_linear_rows();
	test_pad();
	test_conv();
	test_lstm();
	test_rvq_transpose();
	ocl_ctx_free(ctx);
	return tap_done();
}
