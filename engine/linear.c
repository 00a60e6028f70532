/* linear.c - weight matrices in the compute formats (f32, f16, q8) and the
 * multi-threaded product Y = X W^T + b. The work is split over output rows;
 * each thread runs the kernel set chosen once for this CPU (kernels.h).
 * Every output element is computed by the same instruction sequence whatever
 * n is, so a take's result never depends on what else is in the batch. */
#include "autoconfig.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kernels.h"
#include "engine/linear.h"

/* The fastest format whose greedy tokens agree with f32 on >= 99% of the
 * steps (docs/PERFORMANCE.md). */
#define MG_WEIGHTS_DEFAULT_FORMAT MG_WEIGHTS_Q8

const char *mg_weights_name(int fmt)
{
	switch (mg_weights_resolve(fmt)) {
	case MG_WEIGHTS_F32: return "f32";
	case MG_WEIGHTS_F16: return "f16";
	case MG_WEIGHTS_Q8: return "q8";
	default: return "?";
	}
}

int mg_weights_resolve(int fmt)
{
	return fmt == MG_WEIGHTS_DEFAULT ? MG_WEIGHTS_DEFAULT_FORMAT : fmt;
}

/* ---- kernel selection ---- */

static const mg_kernels *active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

const mg_kernels *mg_kernels_for(int isa)
{
	switch (isa) {
	case MG_ISA_GENERIC:
		return &mg_kernels_generic;
#ifdef MG_KERNELS_X86
	case MG_ISA_AVX2:
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
			return &mg_kernels_avx2;
		return NULL;
	case MG_ISA_AVX512:
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
		    __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
			return &mg_kernels_avx512;
		return NULL;
#endif
	default:
		return NULL;
	}
}

static void choose_active(void)
{
	const char *want = getenv("MG_KERNELS");
	for (int isa = MG_ISA_COUNT - 1; isa >= 0; isa--) {
		const mg_kernels *k = mg_kernels_for(isa);
		if (!k)
			continue;
		if (want && *want && strcmp(want, k->name))
			continue;
		active = k;
		return;
	}
	active = &mg_kernels_generic; /* an unknown or unsupported name */
}

const mg_kernels *mg_kernels_active(void)
{
	pthread_once(&active_once, choose_active);
	return active;
}

const char *mg_linear_kernels(void)
{
	return mg_kernels_active()->name;
}

/* ---- conversion ---- */

static void *alloc64(size_t bytes)
{
	bytes = (bytes + 63) & ~(size_t)63;
	return aligned_alloc(64, bytes ? bytes : 64);
}

/* One row to q8: per block, scale = absmax / 127, q = round(w / scale). */
static void quantize_row(const float *w, int cols, int ld, int8_t *q, float *scales)
{
	for (int b = 0; b * MG_Q8_BLOCK < ld; b++) {
		int c0 = b * MG_Q8_BLOCK;
		float amax = 0;
		for (int c = c0; c < c0 + MG_Q8_BLOCK && c < cols; c++)
			amax = fmaxf(amax, fabsf(w[c]));
		float s = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
		scales[b] = s;
		for (int c = c0; c < c0 + MG_Q8_BLOCK; c++) {
			long v = c < cols ? lrintf(w[c] * inv) : 0;
			q[c] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
		}
	}
}

int mg_mat_from_f32(mg_mat *m, const float *w, int rows, int cols, int fmt, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	fmt = mg_weights_resolve(fmt);
	if (rows <= 0 || cols <= 0) {
		snprintf(err, errlen, "a weight matrix must not be empty (%dx%d)", rows, cols);
		return -1;
	}
	if (fmt != MG_WEIGHTS_F32 && fmt != MG_WEIGHTS_F16 && fmt != MG_WEIGHTS_Q8) {
		snprintf(err, errlen, "unknown weight format %d", fmt);
		return -1;
	}
	int ld = fmt == MG_WEIGHTS_Q8 ? (cols + MG_Q8_BLOCK - 1) / MG_Q8_BLOCK * MG_Q8_BLOCK : cols;
	size_t n = (size_t)rows * (size_t)ld;
	size_t esz = fmt == MG_WEIGHTS_F32 ? 4 : fmt == MG_WEIGHTS_F16 ? 2 : 1;
	m->data = alloc64(n * esz);
	if (fmt == MG_WEIGHTS_Q8)
		m->scales = alloc64(n / MG_Q8_BLOCK * sizeof(float));
	if (!m->data || (fmt == MG_WEIGHTS_Q8 && !m->scales)) {
		mg_mat_free(m);
		snprintf(err, errlen, "out of memory for a %dx%d %s matrix", rows, cols, mg_weights_name(fmt));
		return -1;
	}
	m->fmt = fmt;
	m->rows = rows;
	m->cols = cols;
	m->ld = ld;
	m->bytes = n * esz + (fmt == MG_WEIGHTS_Q8 ? n / MG_Q8_BLOCK * sizeof(float) : 0);
	/* Every byte is written here, so no page of the matrix faults later. */
	if (fmt == MG_WEIGHTS_F32)
		memcpy(m->data, w, n * sizeof(float));
	else if (fmt == MG_WEIGHTS_F16)
		mg_kernels_active()->to_f16(w, m->data, n);
	else
		for (int r = 0; r < rows; r++)
			quantize_row(w + (size_t)r * cols, cols, ld, (int8_t *)m->data + (size_t)r * ld,
			             m->scales + (size_t)r * (ld / MG_Q8_BLOCK));
	return 0;
}

int mg_mat_from_tensor(mg_mat *m, const st_tensor *t, int fmt, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0 || t->shape[0] > INT32_MAX ||
	    t->shape[1] > INT32_MAX) {
		snprintf(err, errlen, "%s: tensor '%s' must be a non-empty 2-D matrix", t->file, t->name);
		return -1;
	}
	float *tmp = malloc((size_t)t->numel * sizeof(float));
	if (!tmp) {
		snprintf(err, errlen, "%s: out of memory converting '%s'", t->file, t->name);
		return -1;
	}
	int rc = st_to_f32(t, tmp, err, errlen);
	if (!rc && mg_mat_from_f32(m, tmp, (int)t->shape[0], (int)t->shape[1], fmt, err, errlen)) {
		char why[256];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "%s: tensor '%s': %s", t->file, t->name, why);
		rc = -1;
	}
	free(tmp);
	return rc;
}

void mg_mat_free(mg_mat *m)
{
	free(m->data);
	free(m->scales);
	memset(m, 0, sizeof *m);
}

/* ---- the product ---- */

struct rows_job {
	mg_rows_fn fn;
	const mg_mat *W;
	const float *bias, *X;
	int n;
	float *Y;
};

static void rows_task(void *arg, int ith, int nth)
{
	struct rows_job *j = arg;
	int b, e;
	/* Chunks of 16 rows: whole cache lines of Y for every format. */
	mg_pool_range(j->W->rows, ith, nth, 16, &b, &e);
	if (b < e)
		j->fn(j->W, j->bias, j->X, j->n, j->Y, b, e);
}

void mg_linear(mg_pool *pool, const mg_mat *W, const float *bias, const float *X, int n, float *Y)
{
	if (n <= 0)
		return;
	struct rows_job j = {mg_kernels_active()->rows[W->fmt], W, bias, X, n, Y};
	mg_pool_run(pool, rows_task, &j);
}
