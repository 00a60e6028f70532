/* linear.c - weight matrices and matrix products on the CPU. Large batches
 * Every output row is computed by the same loop whatever n is, so a take's
 * result never depends on what else is in the batch. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/linear.h"

const char *mg_weights_name(int fmt)
{
	switch (fmt) {
	case MG_WEIGHTS_F32: return "f32";
	case MG_WEIGHTS_F16: return "f16";
	case MG_WEIGHTS_Q8: return "q8";
	default: return "?";
	}
}

int mg_mat_from_f32(mg_mat *m, const float *w, int rows, int cols, int fmt, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	if (fmt != MG_WEIGHTS_F32) {
		snprintf(err, errlen, "weight format %s is not available in this build", mg_weights_name(fmt));
		return -1;
	}
	size_t n = (size_t)rows * (size_t)cols, bytes = (n * sizeof(float) + 63) & ~(size_t)63;
	float *d = aligned_alloc(64, bytes ? bytes : 64);
	if (!d) {
		snprintf(err, errlen, "out of memory for a %dx%d matrix", rows, cols);
		return -1;
	}
	memcpy(d, w, n * sizeof(float));
	m->fmt = fmt;
	m->rows = rows;
	m->cols = cols;
	m->data = d;
	m->bytes = n * sizeof(float);
	return 0;
}

int mg_mat_from_tensor(mg_mat *m, const st_tensor *t, int fmt, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	if (t->ndim != 2) {
		snprintf(err, errlen, "%s: tensor '%s' must be 2-D", t->file, t->name);
		return -1;
	}
	float *tmp = malloc((size_t)t->numel * sizeof(float) + 1);
	if (!tmp) {
		snprintf(err, errlen, "%s: out of memory converting '%s'", t->file, t->name);
		return -1;
	}
	int rc = st_to_f32(t, tmp, err, errlen);
	if (!rc)
		rc = mg_mat_from_f32(m, tmp, (int)t->shape[0], (int)t->shape[1], fmt, err, errlen);
	free(tmp);
	return rc;
}

void mg_mat_free(mg_mat *m)
{
	free(m->data);
	free(m->scales);
	memset(m, 0, sizeof *m);
}

struct rows_job {
	const mg_mat *W;
	const float *bias, *X;
	int n;
	float *Y;
};

static void rows_f32(void *arg, int ith, int nth)
{
	struct rows_job *j = arg;
	const float *W = j->W->data;
	int cols = j->W->cols, rows = j->W->rows, b, e;
	mg_pool_range(rows, ith, nth, 8, &b, &e);
	for (int r = b; r < e; r++) {
		const float *w = W + (size_t)r * cols;
		for (int i = 0; i < j->n; i++) {
			const float *x = j->X + (size_t)i * cols;
			float s = 0;
			for (int c = 0; c < cols; c++)
				s += w[c] * x[c];
			j->Y[(size_t)i * rows + r] = s + (j->bias ? j->bias[r] : 0.0f);
		}
	}
}

void mg_linear(mg_pool *pool, const mg_mat *W, const float *bias, const float *X, int n, float *Y)
{
	if (n <= 0)
		return;
	struct rows_job j = {W, bias, X, n, Y};
	mg_pool_run(pool, rows_f32, &j);
}
