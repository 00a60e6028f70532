/* test_linear.c - weight formats and matrix kernels: every kernel set this
 * CPU supports, every format, against a double-precision product of the
 * stored (dequantised) weights; the quantisation error of f16 and q8; batch
 * invariance (a row of Y is bit-identical whatever n and the thread count);
 * conversion from tensors and errors. */
#include "autoconfig.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels.h"
#include "engine/linear.h"
#include "engine/nn.h"
#include "engine/pool.h"
#include "engine/safetensors.h"
#include "tests/tap.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_vec(size_t n, float scale)
{
	float *v = malloc(n * sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = frand() * scale;
	return v;
}

/* The weight the kernels multiply with: W[r, c] as stored. */
static double stored(const mg_mat *m, int r, int c)
{
	size_t k = (size_t)r * m->ld + c;
	switch (m->fmt) {
	case MG_WEIGHTS_F32: return ((const float *)m->data)[k];
	case MG_WEIGHTS_F16: return st_f16_to_f32(((const uint16_t *)m->data)[k]);
	default: {
		size_t si, at = mg_q8_at(m, r, c, &si);
		return (double)((const int8_t *)m->data)[at] * m->scales[si];
	}
	}
}

/* The activation a q8 product multiplies with: the row quantised to int16
 * as kernels.h says, computed here independently. */
static double x_used(const mg_mat *m, const float *X, int i, int c)
{
	const float *x = X + (size_t)i * m->cols;
	if (m->fmt != MG_WEIGHTS_Q8)
		return x[c];
	float amax = 0;
	for (int k = 0; k < m->cols; k++)
		amax = fmaxf(amax, fabsf(x[k]));
	if (amax == 0)
		return 0;
	return (double)rintf(x[c] * ((float)MG_XQ_MAX / amax)) * (double)(amax / (float)MG_XQ_MAX);
}

/* Largest |Y - ref| / (sum |w x| + tiny) over all elements. */
static double rel_err(const mg_mat *m, const float *bias, const float *X, int n, const float *Y)
{
	double worst = 0;
	for (int i = 0; i < n; i++)
		for (int r = 0; r < m->rows; r++) {
			double s = bias ? bias[r] : 0, mag = fabs(s);
			for (int c = 0; c < m->cols; c++) {
				double p = stored(m, r, c) * x_used(m, X, i, c);
				s += p;
				mag += fabs(p);
			}
			double e = fabs(Y[(size_t)i * m->rows + r] - s) / (mag + 1e-30);
			if (e > worst)
				worst = e;
		}
	return worst;
}

static const int fmts[] = {MG_WEIGHTS_F32, MG_WEIGHTS_F16, MG_WEIGHTS_Q8};

static void test_conversion(void)
{
	int rows = 5, cols = 77;
	float *w = rand_vec((size_t)rows * cols, 3.0f);
	w[3] = 0;
	for (int c = 0; c < cols; c++)
		w[2 * cols + c] = 0; /* an all-zero row: scale 0, no NaN */
	char err[256];
	/* q8 three times: in rows, tiles and pairs (the layouts of kernels.h;
	 * 5 rows: two pairs and a last row alone). */
	for (size_t ft = 0; ft < 5; ft++) {
		size_t f = ft < 3 ? ft : 2;
		int layout = ft == 3 ? MG_Q8_TILES : ft == 4 ? MG_Q8_PAIRS : MG_Q8_ROWS, tiles = layout == MG_Q8_TILES;
		const char *ln = ft == 3 ? " tiles" : ft == 4 ? " pairs" : "";
		mg_mat m;
		int rc = mg_mat_from_f32_layout(&m, w, rows, cols, fmts[f], layout, err, sizeof err);
		tap_ok(rc == 0 && m.rows == rows && m.cols == cols && m.fmt == fmts[f] && m.q8_layout == layout,
		       "%s%s: converted %dx%d", mg_weights_name(fmts[f]), ln, rows, cols);
		if (rc)
			continue;
		double worst = 0, bound = 0;
		for (int r = 0; r < rows; r++)
			for (int c = 0; c < cols; c++) {
				double d = fabs(stored(&m, r, c) - w[(size_t)r * cols + c]);
				double lim;
				if (fmts[f] == MG_WEIGHTS_F32)
					lim = 0;
				else if (fmts[f] == MG_WEIGHTS_F16)
					lim = fabs(w[(size_t)r * cols + c]) * 0x1p-11;
				else {
					size_t si;
					mg_q8_at(&m, r, c, &si);
					lim = m.scales[si] * 0.5 * (1 + 1e-6);
				}
				if (d - lim > worst)
					worst = d - lim;
				if (d > bound)
					bound = d;
			}
		tap_ok(worst <= 0, "%s%s: every stored weight within its rounding bound (max error %.3g)",
		       mg_weights_name(fmts[f]), ln, bound);
		if (fmts[f] == MG_WEIGHTS_Q8) {
			/* Tiles store whole groups of 16 rows: the padding rows are zero too. */
			int srows = tiles ? (rows + MG_Q8_GROUP - 1) / MG_Q8_GROUP * MG_Q8_GROUP : rows;
			int ok = m.ld % MG_Q8_BLOCK == 0 && m.ld >= cols;
			for (int r = 0; r < srows && ok; r++)
				for (int c = r < rows ? cols : 0; c < m.ld; c++) {
					size_t si, at = mg_q8_at(&m, r, c, &si);
					ok &= ((const int8_t *)m.data)[at] == 0 && (r < rows || m.scales[si] == 0);
				}
			size_t si;
			mg_q8_at(&m, 2, 0, &si);
			ok &= m.scales[si] == 0;
			tap_ok(ok, "q8%s: rows padded with zeros to the block, zero row has scale 0", ln);
			tap_ok(m.bytes == (size_t)srows * m.ld + (size_t)srows * m.ld / MG_Q8_BLOCK * 4,
			       "q8%s: bytes counts codes and scales", ln);
		}
		mg_mat_free(&m);
	}
	mg_mat m;
	tap_ok(mg_mat_from_f32(&m, w, 0, cols, MG_WEIGHTS_F32, err, sizeof err) != 0 && strstr(err, "empty"),
	       "empty matrix rejected: %s", err);
	tap_ok(mg_mat_from_f32(&m, w, rows, cols, 42, err, sizeof err) != 0 && strstr(err, "format"),
	       "unknown format rejected: %s", err);
	tap_ok(mg_weights_resolve(MG_WEIGHTS_DEFAULT) != MG_WEIGHTS_DEFAULT &&
	       strcmp(mg_weights_name(MG_WEIGHTS_DEFAULT), "?"),
	       "default format maps to %s", mg_weights_name(MG_WEIGHTS_DEFAULT));

	/* From a tensor (f16 dtype in memory) and a wrong-rank tensor. */
	st_set *s = st_new_memory();
	uint16_t *h = malloc((size_t)rows * cols * sizeof *h);
	for (int i = 0; i < rows * cols; i++)
		h[i] = st_f32_to_f16(w[i]);
	int64_t shape[2] = {rows, cols};
	float *v = malloc(4 * sizeof *v);
	int64_t vshape[1] = {4};
	tap_ok(s && !st_add_owned(s, "m", ST_F16, 2, shape, h) && !st_add_owned(s, "v", ST_F32, 1, vshape, v),
	       "in-memory tensors");
	int rc = mg_mat_from_tensor(&m, st_find(s, "m"), MG_WEIGHTS_F32, err, sizeof err);
	int same = rc == 0;
	for (int i = 0; same && i < rows * cols; i++)
		same = ((const float *)m.data)[i] == st_f16_to_f32(h[i]);
	tap_ok(same, "f16 tensor to f32 matrix is exact");
	if (!rc)
		mg_mat_free(&m);
	tap_ok(mg_mat_from_tensor(&m, st_find(s, "v"), MG_WEIGHTS_Q8, err, sizeof err) != 0 && strstr(err, "'v'"),
	       "1-D tensor rejected, named: %s", err);
	st_close(s);
	free(w);
}

/* Runs kernel set k over rows [r0, r1) of m, quantising X first for q8. */
static void run_rows(const mg_kernels *k, const mg_mat *m, const float *bias, const float *X, int n, float *Y, int r0,
                     int r1)
{
	void *buf = NULL;
	mg_xq xq = {0};
	if (m->fmt == MG_WEIGHTS_Q8) {
		buf = aligned_alloc(64, (mg_xq_bytes(n, m->ld) + 63) / 64 * 64);
		xq = mg_xq_layout(buf, n, m->ld);
		k->quant_x(X, n, m->cols, m->ld, &xq);
	}
	k->rows[m->fmt](m, bias, X, &xq, n, Y, r0, r1);
	free(buf);
}

/* One kernel set, one format, one shape: accuracy and batch invariance. */
static void test_kernel(const mg_kernels *k, int fmt, int layout, int rows, int cols, int with_bias)
{
	char err[256];
	int nmax = 9;
	float *w = rand_vec((size_t)rows * cols, 1.0f);
	float *X = rand_vec((size_t)nmax * cols, 1.0f);
	float *bias = with_bias ? rand_vec((size_t)rows, 1.0f) : NULL;
	float *Y = calloc((size_t)nmax * rows, sizeof *Y), *Y1 = calloc((size_t)rows, sizeof *Y1);
	mg_mat m;
	if (mg_mat_from_f32_layout(&m, w, rows, cols, fmt, layout, err, sizeof err)) {
		tap_ok(0, "%s %s %dx%d: %s", k->name, mg_weights_name(fmt), rows, cols, err);
		goto out;
	}
	const char *fname = fmt == MG_WEIGHTS_Q8 && layout == MG_Q8_PAIRS ? "q8 pairs" : fname;
	/* In two uneven halves, as two threads would. */
	int split = rows / 3;
	run_rows(k, &m, bias, X, nmax, Y, 0, split);
	run_rows(k, &m, bias, X, nmax, Y, split, rows);
	double e = rel_err(&m, bias, X, nmax, Y);
	tap_ok(e < 2e-5, "%s %s %dx%d%s n=%d: relative error %.2g vs double", k->name, fname, rows,
	       cols, bias ? " +bias" : "", nmax, e);
	int inv = 1;
	for (int n = 1; n <= nmax && inv; n++) {
		/* X rows [nmax - n, nmax) as a batch of n: each must equal the full batch's row. */
		float *Yn = calloc((size_t)n * rows, sizeof *Yn);
		run_rows(k, &m, bias, X + (size_t)(nmax - n) * cols, n, Yn, 0, rows);
		inv = !memcmp(Yn, Y + (size_t)(nmax - n) * rows, (size_t)n * rows * sizeof *Y);
		free(Yn);
	}
	for (int i = 0; i < nmax && inv; i++) {
		run_rows(k, &m, bias, X + (size_t)i * cols, 1, Y1, 0, rows);
		inv = !memcmp(Y1, Y + (size_t)i * rows, (size_t)rows * sizeof *Y);
	}
	tap_ok(inv, "%s %s %dx%d: rows bit-identical for every batch size 1..%d", k->name, fname,
	       rows, cols, nmax);
	/* Every tuning (rows per pass, prefetches): the same bits. */
	const mg_tuning *was = mg_tuning_active();
	static const char *const tunings[] = {"default", "amd", "zen5"};
	float *Yt = calloc((size_t)nmax * rows, sizeof *Yt);
	for (size_t t = 0; t < sizeof tunings / sizeof tunings[0]; t++) {
		int same = 1;
		mg_tuning_set(mg_tuning_named(tunings[t]));
		for (int n = 1; n <= nmax && same; n++) {
			run_rows(k, &m, bias, X, n, Yt, 0, split);
			run_rows(k, &m, bias, X, n, Yt, split, rows);
			same = !memcmp(Yt, Y, (size_t)n * rows * sizeof *Y);
		}
		tap_ok(mg_tuning_named(tunings[t]) && same, "%s %s %dx%d: the same bits with the %s tuning (%s in use)",
		       k->name, fname, rows, cols, tunings[t], was->name);
	}
	mg_tuning_set(was);
	free(Yt);
	mg_mat_free(&m);
out:
	free(w);
	free(X);
	free(bias);
	free(Y);
	free(Y1);
}

/* q8 in rows and in pairs: the same bits from the same set, every batch
 * size, any split of the rows. */
static void test_layouts_agree(const mg_kernels *k, int rows, int cols)
{
	char err[256];
	int nmax = 5;
	float *w = rand_vec((size_t)rows * cols, 1.0f), *X = rand_vec((size_t)nmax * cols, 1.0f);
	float *Ya = calloc((size_t)nmax * rows, sizeof *Ya), *Yb = calloc((size_t)nmax * rows, sizeof *Yb);
	mg_mat a, b;
	int ha = !mg_mat_from_f32_layout(&a, w, rows, cols, MG_WEIGHTS_Q8, MG_Q8_ROWS, err, sizeof err);
	int hb = !mg_mat_from_f32_layout(&b, w, rows, cols, MG_WEIGHTS_Q8, MG_Q8_PAIRS, err, sizeof err);
	int ok = ha && hb;
	for (int n = 1; n <= nmax && ok; n++)
		for (int split = 0; split <= rows && split < 4 && ok; split++) {
			run_rows(k, &a, NULL, X, n, Ya, 0, rows);
			run_rows(k, &b, NULL, X, n, Yb, 0, split);
			run_rows(k, &b, NULL, X, n, Yb, split, rows);
			ok = !memcmp(Ya, Yb, (size_t)n * rows * sizeof *Ya);
		}
	tap_ok(ok, "%s q8 %dx%d: the same bits from rows and pairs", k->name, rows, cols);
	if (ha)
		mg_mat_free(&a);
	if (hb)
		mg_mat_free(&b);
	free(w);
	free(X);
	free(Ya);
	free(Yb);
}

/* Every set's activation quantiser writes the same codes and scales as the
 * portable one, including a zero row, a row of denormals (whose inverse
 * scale overflows) and the padding up to ld. */
static void test_quant_x(const mg_kernels *k)
{
	int n = 4, cols = 75, ld = 128;
	float *X = rand_vec((size_t)n * cols, 4.0f);
	for (int c = 0; c < cols; c++) {
		X[cols + c] = 0;                                               /* a zero row */
		X[3 * cols + c] = c == 40 ? 0.0f : (c % 2 ? 1e-41f : -3e-41f); /* denormals and a zero */
	}
	X[5] = 1e-30f;
	X[7] = -4.5f; /* the row's absmax, negative */
	size_t bytes = mg_xq_bytes(n, ld);
	void *a = aligned_alloc(64, (bytes + 63) / 64 * 64), *b = aligned_alloc(64, (bytes + 63) / 64 * 64);
	memset(a, 0x55, bytes);
	memset(b, 0x55, bytes);
	mg_xq qa = mg_xq_layout(a, n, ld), qb = mg_xq_layout(b, n, ld);
	mg_quant_x_generic(X, n, cols, ld, &qa);
	k->quant_x(X, n, cols, ld, &qb);
	int same = !memcmp(qa.q, qb.q, (size_t)n * ld * sizeof *qa.q) && !memcmp(qa.s, qb.s, (size_t)n * sizeof *qa.s);
	int ok = qa.q[7] == -MG_XQ_MAX && qa.s[1] == 0 && fabsf(qa.s[0] * (float)MG_XQ_MAX - 4.5f) < 1e-5f;
	for (int i = 0; i < n; i++)
		for (int c = 0; c < ld; c++) {
			int16_t q = qa.q[(size_t)i * ld + c];
			ok &= q >= -MG_XQ_MAX && q <= MG_XQ_MAX && (c < cols || q == 0) && (i != 1 || q == 0);
		}
	tap_ok(same && ok, "%s: activation quantiser matches the portable one (int16 codes, row scale, padding 0)",
	       k->name);
	if (k->q8_tiles) {
		/* The byte split of the tile kernels: [block][row][hi 64 | lo 64], hi * 256 + lo = code. */
		int split = 1;
		for (int i = 0; i < n; i++)
			for (int c = 0; c < ld; c++) {
				const int8_t *p = qb.a + ((size_t)(c / MG_Q8_BLOCK) * n + i) * 2 * MG_Q8_BLOCK + c % MG_Q8_BLOCK;
				split &= p[0] * 256 + p[MG_Q8_BLOCK] == qb.q[(size_t)i * ld + c];
			}
		tap_ok(split, "%s: activation codes split into hi * 256 + lo bytes, tile rows per block", k->name);
	}
	free(X);
	free(a);
	free(b);
}

/* The dot product of attention scores: accurate for every length, and the
 * same bits for the same inputs. */
static void test_dot(const mg_kernels *k)
{
	float *a = rand_vec(300, 1.0f), *b = rand_vec(300, 1.0f);
	double worst = 0;
	int same = 1;
	for (int n = 0; n <= 300; n += (n < 70 ? 1 : 23)) {
		double ref = 0, mag = 1e-30;
		for (int i = 0; i < n; i++)
			ref += (double)a[i] * b[i], mag += fabs((double)a[i] * b[i]);
		float d = k->dot(a, b, n);
		same &= d == k->dot(a, b, n);
		if (fabs(d - ref) / mag > worst)
			worst = fabs(d - ref) / mag;
	}
	tap_ok(worst < 1e-6 && same, "%s: dot products of length 0..300 (relative error %.2g)", k->name, worst);
	/* axpy rounds exactly as y += a * x in C, whatever the length. */
	int exact = 1;
	for (int n = 0; n <= 40 && exact; n++) {
		float y1[40], y2[40], al = a[n] * 3.0f;
		for (int i = 0; i < n; i++)
			y1[i] = y2[i] = b[i + 100];
		k->axpy(y1, al, a + 50, n);
		for (int i = 0; i < n; i++) {
			volatile float p = al * a[50 + i];
			y2[i] = y2[i] + p;
		}
		exact = !memcmp(y1, y2, (size_t)n * sizeof *y1);
	}
	tap_ok(exact, "%s: axpy of length 0..40 rounds as the C expression", k->name);
	free(a);
	free(b);
}

/* Key (is_key) or value element (j, d) of a head's cache in format fmt, as
 * the kernels read it. */
static float kv_elem(const void *head, int fmt, int hd, int j, int d, int is_key)
{
	const char *b = (const char *)head + (size_t)(j / MG_KV_BLOCK) * mg_kv_block_bytes(fmt, hd);
	int lane = j % MG_KV_BLOCK;
	size_t i = is_key ? (size_t)d * MG_KV_BLOCK + lane : (size_t)lane * hd + d;
	if (fmt == MG_KV_Q8)
		return mg_kv_scale(b, hd, lane) * (float)((const int8_t *)b)[i];
	if (fmt == MG_KV_F16)
		return st_f16_to_f32(((const uint16_t *)b)[i]);
	return ((const float *)b)[i];
}

/* kv_scores / kv_wsum over the blocked cache layouts of kernels.h (f32,
 * halves, q8), filled by mg_kv_store, head sizes that do and do not fill
 * vectors, key counts that do not fill the last block: scores against a
 * double reference, the weighted sum bit for bit against the C expression,
 * term by term; mg_kv_store within each format's rounding. */
static void test_kv(const mg_kernels *k)
{
	static const int hds[] = {1, 5, 8, 16, 24, 64, 72, 100, 128};
	int nk_max = 53, cap = (nk_max + MG_KV_BLOCK - 1) / MG_KV_BLOCK * MG_KV_BLOCK;
	double worst = 0, store_err[3] = {0};
	int exact = 1;
	for (int fmt = MG_KV_F32; fmt <= MG_KV_Q8; fmt++)
		for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
			int hd = hds[hi];
			float *keys = rand_vec((size_t)cap * hd, 1.0f), *vals = rand_vec((size_t)cap * hd, 1.0f);
			float *q = rand_vec((size_t)hd, 1.0f), *a = rand_vec((size_t)cap, 0.5f);
			float *sc = calloc((size_t)cap, sizeof(float)), *o = calloc((size_t)hd, sizeof(float));
			size_t bytes = mg_kv_head_bytes(fmt, cap, hd);
			void *kc = calloc(bytes, 1), *vc = calloc(bytes, 1);
			uint16_t *tmp = calloc((size_t)hd, sizeof(uint16_t));
			for (int j = 0; j < cap; j++)
				mg_kv_store(kc, vc, mg_kv_block_bytes(fmt, hd), fmt, j, hd, keys + (size_t)j * hd,
				            vals + (size_t)j * hd, tmp);
			/* What was stored, relative to each position's largest element. */
			for (int j = 0; j < cap; j++) {
				double mk = 1e-30, mv = 1e-30, ek = 0, ev = 0;
				for (int d = 0; d < hd; d++) {
					mk = fmax(mk, fabs(keys[(size_t)j * hd + d])), mv = fmax(mv, fabs(vals[(size_t)j * hd + d]));
					ek = fmax(ek, fabs(kv_elem(kc, fmt, hd, j, d, 1) - keys[(size_t)j * hd + d]));
					ev = fmax(ev, fabs(kv_elem(vc, fmt, hd, j, d, 0) - vals[(size_t)j * hd + d]));
				}
				store_err[fmt] = fmax(store_err[fmt], fmax(ek / mk, ev / mv));
			}
			for (int nk = 1; nk <= nk_max; nk += (nk < 20 ? 1 : 11)) {
				sc[nk - 1 < cap - 1 ? nk : 0] = 12345.0f; /* must survive: past the keys asked for */
				k->kv_scores(q, kc, 1, mg_kv_block_bytes(fmt, hd), fmt, nk, hd, sc, (size_t)cap, vc);
				for (int j = 0; j < nk; j++) {
					double ref = 0, mag = 1e-30;
					for (int d = 0; d < hd; d++) {
						double t = (double)q[d] * kv_elem(kc, fmt, hd, j, d, 1);
						ref += t, mag += fabs(t);
					}
					if (fabs(sc[j] - ref) / mag > worst)
						worst = fabs(sc[j] - ref) / mag;
				}
				if (nk < cap && sc[nk] != 12345.0f)
					exact = 0;
				k->kv_wsum(a, (size_t)cap, vc, 1, mg_kv_block_bytes(fmt, hd), fmt, nk, hd, o, kc);
				for (int d = 0; d < hd; d++) {
					float r = 0;
					for (int j = 0; j < nk; j++) {
						/* q8: the weight times the scale first, then the code. */
						const char *b = (const char *)vc + (size_t)(j / MG_KV_BLOCK) * mg_kv_block_bytes(fmt, hd);
						volatile float w = a[j], x = kv_elem(vc, fmt, hd, j, d, 0);
						if (fmt == MG_KV_Q8) {
							w = a[j] * mg_kv_scale(b, hd, j % MG_KV_BLOCK);
							x = (float)((const int8_t *)b)[(size_t)(j % MG_KV_BLOCK) * hd + d];
						}
						volatile float t = w * x;
						r = r + t;
					}
					exact &= memcmp(&r, &o[d], sizeof r) == 0;
				}
			}
			free(keys), free(vals), free(q), free(a), free(sc), free(o), free(kc), free(vc), free(tmp);
		}
	tap_ok(worst < 1e-6, "%s: kv_scores over the blocked cache, f32, halves and q8 (relative error %.2g)", k->name,
	       worst);
	tap_ok(exact, "%s: kv_wsum rounds as the C expression; nothing written past the keys", k->name);
	tap_ok(store_err[MG_KV_F32] == 0 && store_err[MG_KV_F16] <= 1.0 / 2048 && store_err[MG_KV_Q8] <= 0.5 / 127 + 1e-6,
	       "%s: mg_kv_store: f32 exact, halves within %.2g, q8 within %.2g of each position's largest element",
	       k->name, store_err[MG_KV_F16], store_err[MG_KV_Q8]);
}

/* kv_scores / kv_wsum over several heads of a row at once (the layout of
 * a decoder cache: heads side by side in each block, H of them, the
 * kernels given nh of them from head h0): bit for bit what each head
 * alone gives, nothing written past the keys asked for (scores) or the
 * heads' outputs. */
static void test_kv_heads(const mg_kernels *k)
{
	static const int hds[] = {1, 5, 16, 24, 64, 72, 128};
	enum { H = 5, H0 = 1, NH = 3 };
	int nk_max = 53, cap = (nk_max + MG_KV_BLOCK - 1) / MG_KV_BLOCK * MG_KV_BLOCK, same = 1, kept = 1;
	for (int fmt = MG_KV_F32; fmt <= MG_KV_Q8; fmt++)
		for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
			int hd = hds[hi];
			size_t blk = mg_kv_block_bytes(fmt, hd), bs = H * blk, bytes = H * mg_kv_head_bytes(fmt, cap, hd);
			size_t ss = (size_t)cap + 3;
			char *kc = calloc(bytes, 1), *vc = calloc(bytes, 1);
			float *q = rand_vec(NH * (size_t)hd, 1.0f), *a = rand_vec(NH * ss, 0.5f);
			float *sc1 = calloc(NH * ss, sizeof(float)), *sc2 = calloc(NH * ss, sizeof(float));
			float *o1 = calloc(NH * (size_t)hd + 1, sizeof(float)), *o2 = calloc(NH * (size_t)hd + 1, sizeof(float));
			uint16_t *tmp = calloc((size_t)hd, sizeof(uint16_t));
			for (int u = 0; u < H; u++)
				for (int j = 0; j < cap; j++) {
					float *kx = rand_vec((size_t)hd, 1.0f), *vx = rand_vec((size_t)hd, 1.0f);
					mg_kv_store(kc + u * blk, vc + u * blk, bs, fmt, j, hd, kx, vx, tmp);
					free(kx), free(vx);
				}
			const char *kh = kc + H0 * blk, *vh = vc + H0 * blk;
			for (int nk = 1; nk <= nk_max; nk += (nk < 20 ? 1 : 11)) {
				for (size_t i = 0; i < NH * ss; i++)
					sc1[i] = sc2[i] = 777.0f;
				o2[NH * hd] = 777.0f;
				for (int u = 0; u < NH; u++)
					k->kv_scores(q + (size_t)u * hd, kh + u * blk, 1, bs, fmt, nk, hd, sc1 + u * ss, ss, vh);
				k->kv_scores(q, kh, NH, bs, fmt, nk, hd, sc2, ss, vh);
				same &= memcmp(sc1, sc2, NH * ss * sizeof(float)) == 0; /* incl. the untouched tails */
				for (int u = 0; u < NH; u++)
					k->kv_wsum(a + u * ss, ss, vh + u * blk, 1, bs, fmt, nk, hd, o1 + (size_t)u * hd, kh);
				k->kv_wsum(a, ss, vh, NH, bs, fmt, nk, hd, o2, kh);
				same &= memcmp(o1, o2, NH * (size_t)hd * sizeof(float)) == 0;
				kept &= o2[NH * hd] == 777.0f;
				for (int u = 0; u < NH; u++)
					kept &= sc2[u * ss + nk] == 777.0f;
			}
			free(kc), free(vc), free(q), free(a), free(sc1), free(sc2), free(o1), free(o2), free(tmp);
		}
	tap_ok(same, "%s: kv_scores / kv_wsum over several heads give each head's bits alone (f32, halves, q8)",
	       k->name);
	tap_ok(kept, "%s: kv_scores / kv_wsum over several heads write nothing past the keys or the outputs", k->name);
}

/* GELU against double erf / erfc over [-12, 12] and beyond: relative
 * error where 1 + erf(x / sqrt 2) > 0.01, and everywhere the error of that
 * factor within 2^-21 (libm's erff itself is off by ulp(1) near -1, where
 * 1 + erf cancels); never NaN; x = 0 gives 0. */
static void test_gelu(const mg_kernels *k)
{
	int n = 48011;
	float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
	for (int i = 0; i < n - 11; i++)
		x[i] = -12.0f + 24.0f * (float)i / (float)(n - 12);
	static const float extra[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 0.70710677f, -1.4142135f,
	                              40.0f, -40.0f, 3e38f, -3e38f, 1.0f};
	for (int i = 0; i < 11; i++)
		x[n - 11 + i] = extra[i];
	memcpy(y, x, (size_t)n * sizeof *x);
	k->gelu(y, (size_t)n);
	double rel = 0, fac = 0;
	int finite = 1;
	for (int i = 0; i < n; i++) {
		double v = x[i], u = v * (double)(float)M_SQRT1_2;
		double t = v >= 0 ? 1.0 + erf(u) : erfc(-u), ref = 0.5 * v * t;
		finite &= isfinite(y[i]) && (x[i] != 0 || y[i] == 0);
		if (v == 0 || !isfinite(ref))
			continue;
		double d = fabs(y[i] - ref);
		if (t > 0.01 && d / fabs(ref) > rel)
			rel = d / fabs(ref);
		if (d / (0.5 * fabs(v)) > fac)
			fac = d / (0.5 * fabs(v));
	}
	tap_ok(finite && rel < 1e-5 && fac < 0x1p-21,
	       "%s: gelu within %.2g relative of double erf over [-12, 12] (%.2g in 1 + erf)", k->name, rel, fac);
	free(x);
	free(y);
}

/* Attention softmax against double exp for lengths 1..300, scores spread
 * from a few units to a hundred (weights that underflow stay >= 0). */
static void test_softmax(const mg_kernels *k)
{
	float *x = rand_vec(300, 1.0f), *y = malloc(300 * sizeof *y);
	double worst = 0;
	int ok = 1;
	for (int n = 1; n <= 300; n += (n < 40 ? 1 : 13)) {
		float spread = n % 3 == 0 ? 100.0f : 4.0f;
		for (int j = 0; j < n; j++)
			y[j] = x[j] * spread;
		/* The differences to the max as the kernels form them: in float. */
		float mx = -INFINITY;
		double sum = 0;
		for (int j = 0; j < n; j++)
			mx = y[j] > mx ? y[j] : mx;
		for (int j = 0; j < n; j++)
			sum += exp((double)(y[j] - mx));
		float in[300];
		memcpy(in, y, (size_t)n * sizeof *y);
		k->softmax(y, n);
		for (int j = 0; j < n; j++) {
			double ref = exp((double)(in[j] - mx)) / sum;
			ok &= y[j] >= 0 && isfinite(y[j]);
			if (ref > 1e-30) {
				double e = fabs(y[j] - ref) / ref;
				if (e > worst)
					worst = e;
			}
		}
	}
	tap_ok(ok && worst < 2e-6, "%s: softmax of 1..300 scores within %.2g relative of double exp", k->name, worst);
	free(x);
	free(y);
}

/* mg_linear through pools of 1..3 threads gives the same bits. */
static void test_threads(void)
{
	int rows = 301, cols = 200, n = 6;
	float *w = rand_vec((size_t)rows * cols, 1.0f), *X = rand_vec((size_t)n * cols, 1.0f);
	float *b = rand_vec((size_t)rows, 1.0f);
	char err[256];
	for (size_t f = 0; f < 3; f++) {
		mg_mat m;
		if (mg_mat_from_f32(&m, w, rows, cols, fmts[f], err, sizeof err)) {
			tap_ok(0, "%s", err);
			continue;
		}
		float *Y[4];
		int same = 1;
		for (int t = 0; t < 4; t++) {
			Y[t] = calloc((size_t)n * rows, sizeof(float));
			mg_pool *p = t ? mg_pool_new(t) : NULL;
			mg_linear(p, &m, b, X, n, Y[t]);
			mg_pool_free(p);
			if (t)
				same &= !memcmp(Y[t], Y[0], (size_t)n * rows * sizeof(float));
		}
		double e = rel_err(&m, b, X, n, Y[0]);
		tap_ok(same && e < 2e-5, "mg_linear %s (%s): no pool and pools of 1-3 threads agree bit for bit (err %.2g)",
		       mg_weights_name(fmts[f]), mg_linear_kernels(), e);
		for (int t = 0; t < 4; t++)
			free(Y[t]);
		mg_mat_free(&m);
	}
	free(w);
	free(X);
	free(b);
}

/* The q8 rounding as the loader has always done it, with libm: per block
 * of 64, scale = absmax / 127, code = lrintf(w * 127 / absmax) within
 * +-127. */
static void ref_quantize(const float *w, int cols, int ld, int8_t *q, float *sc)
{
	for (int b = 0; b * MG_Q8_BLOCK < ld; b++) {
		int c0 = b * MG_Q8_BLOCK;
		float amax = 0;
		for (int c = c0; c < c0 + MG_Q8_BLOCK && c < cols; c++)
			amax = fmaxf(amax, fabsf(w[c]));
		float inv = amax > 0 ? 127.0f / amax : 0.0f;
		sc[b] = amax / 127.0f;
		for (int c = c0; c < c0 + MG_Q8_BLOCK; c++) {
			long v = c < cols ? lrintf(w[c] * inv) : 0;
			q[c] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
		}
	}
}

/* Matrices converted on pools of 2 and 3 threads hold the bytes converted
 * on the calling thread alone, in every format and q8 layout, for shapes
 * that do and do not fill a tile group or a block; the q8 codes and
 * scales are the libm rounding's (ref_quantize), rows of zeros, denormals
 * (whose inverse scale overflows), ties and infinities included; stacked
 * half-precision tensors convert as their floats stacked, and a NaN in
 * the second of them is reported with its name. */
static void test_convert(void)
{
	static const int shapes[][2] = {{37, 100}, {64, 1024}, {300, 130}, {16, 64}};
	int same = 1, as_libm = 1;
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
		int rows = shapes[si][0], cols = shapes[si][1];
		float *w = rand_vec((size_t)rows * cols, 2.0f);
		for (int c = 0; c < cols; c++) {
			w[c] = 0.0f;                                     /* a zero row */
			w[(size_t)cols + c] = c % 3 ? 1e-41f : -2e-42f;   /* denormals */
			if (rows > 2)
				w[2 * (size_t)cols + c] = (float)(c % 9) - 4.0f + 0.5f * (c % 2); /* ties */
		}
		if (rows > 3) {
			w[3 * (size_t)cols + 5] = INFINITY;
			w[3 * (size_t)cols + 70 % cols] = NAN;
		}
		for (int v = 0; v < 5; v++) {
			int fmt = v == 0 ? MG_WEIGHTS_F32 : v == 1 ? MG_WEIGHTS_F16 : MG_WEIGHTS_Q8;
			int layout = v == 2 ? MG_Q8_ROWS : v == 3 ? MG_Q8_TILES : MG_Q8_PAIRS;
			char err[256];
			mg_mat a;
			if (mg_mat_from_f32_layout(&a, w, rows, cols, fmt, layout, err, sizeof err)) {
				same = 0;
				continue;
			}
			for (int t = 2; t <= 3; t++) {
				mg_pool *p = mg_pool_new(t);
				mg_pool *was = mg_linear_convert_pool(p);
				mg_mat b;
				int rc = mg_mat_from_f32_layout(&b, w, rows, cols, fmt, layout, err, sizeof err);
				mg_linear_convert_pool(was);
				same &= rc == 0 && b.bytes == a.bytes && memcmp(a.data, b.data, a.bytes) == 0;
				if (!rc)
					mg_mat_free(&b);
				mg_pool_free(p);
			}
			if (fmt == MG_WEIGHTS_Q8 && layout == MG_Q8_ROWS) {
				int8_t *q = malloc((size_t)a.ld);
				float *sc = malloc((size_t)a.ld / MG_Q8_BLOCK * sizeof *sc);
				for (int r = 0; r < rows; r++) {
					ref_quantize(w + (size_t)r * cols, cols, a.ld, q, sc);
					as_libm &= memcmp(q, (int8_t *)a.data + (size_t)r * a.ld, (size_t)a.ld) == 0;
					as_libm &= memcmp(sc, a.scales + (size_t)r * (a.ld / MG_Q8_BLOCK),
					                  (size_t)a.ld / MG_Q8_BLOCK * sizeof *sc) == 0;
				}
				free(q), free(sc);
			}
			mg_mat_free(&a);
		}
		free(w);
	}
	tap_ok(same, "weights converted on pools of 2 and 3 threads: the bytes of one thread (f32, halves, q8 rows, "
	             "tiles, pairs)");
	tap_ok(as_libm, "q8 codes and scales as lrintf / fmaxf give them (zeros, denormals, ties, infinities, NaN)");

	/* Three stacked half-precision tensors, on a pool and not. */
	enum { R = 40, C = 192 };
	st_set *s = st_new_memory();
	int64_t shape[2] = {R, C};
	float *all = malloc(3 * R * C * sizeof *all);
	const char *names[3] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++) {
		uint16_t *h = malloc(R * C * sizeof *h);
		for (int k = 0; k < R * C; k++) {
			h[k] = st_f32_to_f16(frand());
			all[i * R * C + k] = st_f16_to_f32(h[k]);
		}
		st_add_owned(s, names[i], ST_F16, 2, shape, h);
	}
	const st_tensor *t[3] = {st_find(s, "a"), st_find(s, "b"), st_find(s, "c")};
	int stacked = 1;
	char err[256];
	for (int fmt = MG_WEIGHTS_F32; fmt <= MG_WEIGHTS_Q8; fmt++) {
		mg_mat ref, m;
		mg_pool *p = mg_pool_new(2);
		mg_pool *was = mg_linear_convert_pool(p);
		int rc = mg_mat_from_tensors(&m, t, 3, fmt, err, sizeof err);
		mg_linear_convert_pool(was);
		mg_pool_free(p);
		int rc2 = mg_mat_from_f32(&ref, all, 3 * R, C, fmt, err, sizeof err);
		stacked &= rc == 0 && rc2 == 0 && m.rows == 3 * R && m.bytes == ref.bytes &&
		           memcmp(m.data, ref.data, ref.bytes) == 0;
		if (!rc)
			mg_mat_free(&m);
		if (!rc2)
			mg_mat_free(&ref);
	}
	tap_ok(stacked, "three stacked f16 tensors convert as their floats stacked (f32, halves, q8)");
	uint16_t *hb = (uint16_t *)t[1]->data;
	hb[R * C - 7] = 0x7e00; /* a NaN near the end of "b" */
	mg_mat m;
	int rc = mg_mat_from_tensors(&m, t, 3, MG_WEIGHTS_Q8, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "'b'") && strstr(err, "NaN"), "a NaN in a stacked tensor is reported by name: %s",
	       err);
	if (!rc)
		mg_mat_free(&m);
	free(all);
	st_close(s);
}

/* The norms' arithmetic, one lane at a time: sums of doubles over eight
 * interleaved lanes (element i in lane i % 8), the lanes added in order, the
 * tail after them; then the element-wise float expression. */
static double lanes_sum(const float *x, int d, double shift, int squares)
{
	double lane[8] = {0};
	int i = 0;
	for (; i + 8 <= d; i += 8)
		for (int k = 0; k < 8; k++) {
			double c = (double)x[i + k] - shift;
			lane[k] += squares ? c * c : c;
		}
	double s = 0;
	for (int k = 0; k < 8; k++)
		s += lane[k];
	for (; i < d; i++) {
		double c = (double)x[i] - shift;
		s += squares ? c * c : c;
	}
	return s;
}

/* mg_layer_norm and mg_rms_norm (whichever copy the CPU got: nn.c) give
 * exactly the bits of that arithmetic. */
static void test_norms(void)
{
	static const int dims[] = {1, 7, 8, 9, 768, 1024, 1027};
	int same_ln = 1, same_rms = 1;
	for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
		int d = dims[t], n = 3;
		float *x = malloc((size_t)n * d * sizeof *x), *w = malloc((size_t)d * sizeof *w),
		      *b = malloc((size_t)d * sizeof *b), *y = malloc((size_t)n * d * sizeof *y);
		for (int i = 0; i < n * d; i++)
			x[i] = 4.0f * frand() + 0.5f;
		for (int i = 0; i < d; i++)
			w[i] = 1.0f + 0.1f * frand(), b[i] = 0.1f * frand();
		const float eps = 1e-5f;
		mg_layer_norm(x, w, b, eps, n, d, y);
		for (int r = 0; r < n; r++) {
			const float *xr = x + (size_t)r * d;
			double mean = lanes_sum(xr, d, 0.0, 0) / d, ss = lanes_sum(xr, d, mean, 1);
			volatile float m = (float)mean, inv = (float)(1.0 / sqrt(ss / d + (double)eps));
			for (int i = 0; i < d; i++) {
				volatile float c = xr[i] - m, e = c * inv, f = e * w[i], g = f + b[i];
				same_ln &= memcmp((const void *)&g, &y[(size_t)r * d + i], sizeof g) == 0;
			}
		}
		mg_rms_norm(x, w, eps, n, d, y);
		for (int r = 0; r < n; r++) {
			const float *xr = x + (size_t)r * d;
			volatile float var = (float)(lanes_sum(xr, d, 0.0, 1) / d), inv = 1.0f / sqrtf(var + eps);
			for (int i = 0; i < d; i++) {
				volatile float e = xr[i] * inv, f = w[i] * e;
				same_rms &= memcmp((const void *)&f, &y[(size_t)r * d + i], sizeof f) == 0;
			}
		}
		free(x), free(w), free(b), free(y);
	}
	tap_ok(same_ln, "mg_layer_norm: the bits of eight double lanes then the float expression, d = 1 .. 1027");
	tap_ok(same_rms, "mg_rms_norm: the same, d = 1 .. 1027");
}

/* mg_attention over a blocked cache through pools of 1..3 threads gives
 * what it gives without a pool, bit for bit, every output written: the
 * text's attention of guidance (a row with keys, a row with none, which
 * the threads split by keys, not by rows) and a causal one of several
 * positions per sequence. */
static void test_attention_threads(void)
{
	enum { H = 4, HD = 24, S = 3, CAP = 48 };
	int seq_keys[S] = {37, 0, 5}, same = 1, written = 1;
	for (int fmt = MG_KV_F32; fmt <= MG_KV_Q8; fmt++)
		for (int causal = 0; causal < 2; causal++) {
			int T = causal ? 3 : 1, past = 20, rows = S * T;
			size_t blk = mg_kv_block_bytes(fmt, HD), bs = H * blk, row = H * mg_kv_head_bytes(fmt, CAP, HD);
			char *kc = calloc(S * row, 1), *vc = calloc(S * row, 1);
			uint16_t tmp[HD];
			for (int s = 0; s < S; s++)
				for (int u = 0; u < H; u++)
					for (int j = 0; j < CAP; j++) {
						float *kx = rand_vec(HD, 1.0f), *vx = rand_vec(HD, 1.0f);
						mg_kv_store(kc + s * row + u * blk, vc + s * row + u * blk, bs, fmt, j, HD, kx, vx,
						            tmp);
						free(kx), free(vx);
					}
			float *q = rand_vec((size_t)rows * H * HD, 1.0f);
			float *scratch = malloc(3 * mg_attn_scratch(CAP, HD, H) * sizeof(float));
			float *ref = malloc((size_t)rows * H * HD * sizeof(float));
			float *out = malloc((size_t)rows * H * HD * sizeof(float));
			mg_attn a = {
				.n_seq = S, .q_per_seq = T, .n_heads = H, .head_dim = HD, .q = q, .q_stride = H * HD,
				.kv_cap = CAP, .causal = causal, .past = past, .n_keys = CAP,
				.seq_keys = causal ? NULL : seq_keys, .scale = 0.2f, .out = ref, .out_stride = H * HD,
				.scratch = scratch, .max_keys = CAP, .cache_k = kc, .cache_v = vc, .kv_fmt = fmt,
			};
			mg_attention(NULL, &a);
			for (int t = 1; t <= 3; t++) {
				mg_pool *p = mg_pool_new(t);
				for (size_t i = 0; i < (size_t)rows * H * HD; i++)
					out[i] = NAN;
				a.out = out;
				mg_attention(p, &a);
				for (size_t i = 0; i < (size_t)rows * H * HD; i++)
					written &= !isnan(out[i]);
				same &= memcmp(ref, out, (size_t)rows * H * HD * sizeof(float)) == 0;
				mg_pool_free(p);
			}
			free(kc), free(vc), free(q), free(scratch), free(ref), free(out);
		}
	tap_ok(same && written,
	       "mg_attention over a cache (text with an empty row, causal of 3 positions): pools of 1-3 threads "
	       "agree bit for bit with no pool, every output written");
}

int main(void)
{
	test_conversion();
	static const int shapes[][2] = {{1, 1}, {3, 7}, {5, 16}, {17, 33}, {9, 47}, {64, 96}, {33, 768}, {16, 1027}};
	int n_sets = 0;
	for (int isa = 0; isa < MG_ISA_COUNT; isa++) {
		const mg_kernels *k = mg_kernels_for(isa);
		if (!k) {
			tap_skip("kernel set %d not supported by this CPU or build", isa);
			continue;
		}
		n_sets++;
		test_quant_x(k);
		test_dot(k);
		test_kv(k);
		test_kv_heads(k);
		test_gelu(k);
		test_softmax(k);
		for (size_t f = 0; f < 3; f++)
			for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
				test_kernel(k, fmts[f], k->q8_tiles ? MG_Q8_TILES : MG_Q8_ROWS, shapes[s][0], shapes[s][1],
				            (int)(s & 1));
		/* The sets that read rows read pairs too: the same bits. */
		for (size_t s = 0; !k->q8_tiles && s < sizeof shapes / sizeof shapes[0]; s++) {
			test_kernel(k, MG_WEIGHTS_Q8, MG_Q8_PAIRS, shapes[s][0], shapes[s][1], (int)(s & 1));
			test_layouts_agree(k, shapes[s][0], shapes[s][1]);
		}
	}
	tap_ok(n_sets >= 1 && mg_kernels_active() != NULL, "%d kernel sets tested, active: %s", n_sets,
	       mg_linear_kernels());
	test_threads();
	test_attention_threads();
	test_norms();
	test_convert();
	return tap_done();
}
