/* bind.c - named tensors to weights, with shape and value checks. */
#include "autoconfig.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bind.h"

static void vname(char *buf, const char *fmt, va_list ap)
{
	vsnprintf(buf, MG_BIND_NAME, fmt, ap);
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
	size_t n = 0;
	n += (size_t)snprintf(buf + n, len - n, "[");
	for (int i = 0; i < ndim && n < len; i++) {
		if (shape[i] < 0)
			n += (size_t)snprintf(buf + n, len - n, "%s*", i ? ", " : "");
		else
			n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
	}
	if (n < len)
		snprintf(buf + n, len - n, "]");
}

int mg_bind_has(const st_set *st, const char *fmt, ...)
{
	char name[MG_BIND_NAME];
	va_list ap;
	va_start(ap, fmt);
	vname(name, fmt, ap);
	va_end(ap);
	return st_find(st, name) != NULL;
}

const st_tensor *mg_bind_tensor(const st_set *st, const char *name, int ndim, const int64_t *shape,
                                char *err, size_t errlen)
{
	const st_tensor *t = st_find(st, name);
	char want[160], got[160];
	if (!t) {
		snprintf(err, errlen, "the model weights have no tensor '%s'", name);
		return NULL;
	}
	int ok = t->ndim == ndim;
	for (int i = 0; ok && i < ndim; i++)
		if (shape[i] >= 0 && t->shape[i] != shape[i])
			ok = 0;
	if (!ok) {
		shape_str(want, sizeof want, ndim, shape);
		shape_str(got, sizeof got, t->ndim, t->shape);
		snprintf(err, errlen, "%s: tensor '%s' has shape %s, expected %s from config.json", t->file, name, got,
		         want);
		return NULL;
	}
	if (!st_dtype_is_float(t->dtype)) {
		snprintf(err, errlen, "%s: tensor '%s' has dtype %s, expected a floating-point type", t->file, name,
		         st_dtype_name(t->dtype));
		return NULL;
	}
	return t;
}

int mg_all_finite(const float *x, size_t n)
{
	/* An infinity or a NaN has every exponent bit set; this form, with no
	 * early exit, vectorises (the loader checks every weight). */
	uint32_t any = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t b;
		memcpy(&b, x + i, sizeof b);
		any |= (b & 0x7f800000u) == 0x7f800000u;
	}
	return !any;
}

static int to_f32_checked(const st_tensor *t, float **out, char *err, size_t errlen)
{
	float *d = malloc((size_t)t->numel * sizeof(float) + 1);
	if (!d) {
		snprintf(err, errlen, "%s: out of memory converting tensor '%s'", t->file, t->name);
		return -1;
	}
	if (st_to_f32(t, d, err, errlen)) {
		free(d);
		return -1;
	}
	if (!mg_all_finite(d, (size_t)t->numel)) {
		snprintf(err, errlen, "%s: tensor '%s' holds NaN or infinite values", t->file, t->name);
		free(d);
		return -1;
	}
	*out = d;
	return 0;
}

static int bind_f32_name(const st_set *st, float **out, int ndim, const int64_t *shape, const char *name,
                         char *err, size_t errlen)
{
	*out = NULL;
	const st_tensor *t = mg_bind_tensor(st, name, ndim, shape, err, errlen);
	if (!t || to_f32_checked(t, out, err, errlen))
		return -1;
	st_release(st, t); /* the float copy is what is used from now on */
	return 0;
}

int mg_bind_f32(const st_set *st, float **out, int ndim, const int64_t *shape, char *err, size_t errlen,
                const char *fmt, ...)
{
	char name[MG_BIND_NAME];
	va_list ap;
	va_start(ap, fmt);
	vname(name, fmt, ap);
	va_end(ap);
	return bind_f32_name(st, out, ndim, shape, name, err, errlen);
}

int mg_bind_vec(const st_set *st, float **out, int64_t n, char *err, size_t errlen, const char *fmt, ...)
{
	char name[MG_BIND_NAME];
	va_list ap;
	va_start(ap, fmt);
	vname(name, fmt, ap);
	va_end(ap);
	return bind_f32_name(st, out, 1, &n, name, err, errlen);
}

int mg_bind_mat(const st_set *st, mg_mat *m, int64_t rows, int64_t cols, int fmt, char *err, size_t errlen,
                const char *fmt_name, ...)
{
	char name[MG_BIND_NAME];
	va_list ap;
	va_start(ap, fmt_name);
	vname(name, fmt_name, ap);
	va_end(ap);
	const char *names[1] = {name};
	return mg_bind_mat_stack(st, m, 1, names, rows, cols, fmt, err, errlen);
}

int mg_bind_mat_stack(const st_set *st, mg_mat *m, int n, const char *const *names, int64_t rows, int64_t cols,
                      int fmt, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	if (n < 1 || n > MG_BIND_STACK || rows < 1 || cols < 1 || rows * n > INT32_MAX || cols > INT32_MAX ||
	    (uint64_t)(rows * n) > SIZE_MAX / sizeof(float) / (uint64_t)cols) {
		snprintf(err, errlen, "tensor '%s': %d x %lld x %lld is not a matrix this program can hold", names[0], n,
		         (long long)rows, (long long)cols);
		return -1;
	}
	int64_t shape[2] = {rows, cols};
	const st_tensor *t[MG_BIND_STACK];
	for (int i = 0; i < n; i++)
		if (!(t[i] = mg_bind_tensor(st, names[i], 2, shape, err, errlen)))
			return -1;
	if (mg_mat_from_tensors(m, t, n, fmt, err, errlen))
		return -1;
	for (int i = 0; i < n; i++)
		st_release(st, t[i]); /* the converted matrix is what is used from now on */
	return 0;
}

void mg_bind_row(const st_tensor *t, int64_t row, float *dst)
{
	int64_t cols = t->shape[1];
	size_t es = st_dtype_size(t->dtype);
	st_tensor r = *t;
	r.data = t->data + (size_t)row * (size_t)cols * es;
	r.numel = cols;
	r.nbytes = (size_t)cols * es;
	r.ndim = 1;
	r.shape[0] = cols;
	/* mg_bind_tensor has checked the dtype is a float type: cannot fail. */
	(void)st_to_f32(&r, dst, NULL, 0);
}

void mg_weight_norm_fold(const float *g, const float *v, int64_t dim0, int64_t inner, float *w)
{
	for (int64_t o = 0; o < dim0; o++) {
		const float *vo = v + o * inner;
		double ss = 0;
		for (int64_t i = 0; i < inner; i++)
			ss += (double)vo[i] * vo[i];
		float scale = (float)((double)g[o] / sqrt(ss));
		for (int64_t i = 0; i < inner; i++)
			w[o * inner + i] = vo[i] * scale;
	}
}

int mg_bind_weight_norm(const st_set *st, float **out, int ndim, const int64_t *vshape, char *err,
                        size_t errlen, const char *prefix_fmt, ...)
{
	char prefix[MG_BIND_NAME], gname[MG_BIND_NAME + 40], vname_[MG_BIND_NAME + 40];
	va_list ap;
	va_start(ap, prefix_fmt);
	vname(prefix, prefix_fmt, ap);
	va_end(ap);
	*out = NULL;
	if (ndim < 1 || ndim > ST_MAX_DIMS) {
		snprintf(err, errlen, "%s: bad weight rank %d", prefix, ndim);
		return -1;
	}
	snprintf(gname, sizeof gname, "%s.weight_g", prefix);
	snprintf(vname_, sizeof vname_, "%s.weight_v", prefix);
	if (!st_find(st, gname)) {
		snprintf(gname, sizeof gname, "%s.parametrizations.weight.original0", prefix);
		snprintf(vname_, sizeof vname_, "%s.parametrizations.weight.original1", prefix);
		if (!st_find(st, gname)) {
			snprintf(vname_, sizeof vname_, "%s.weight", prefix);
			if (st_find(st, vname_))
				return bind_f32_name(st, out, ndim, vshape, vname_, err, errlen);
			snprintf(err, errlen,
			         "the model weights have no '%s.weight_g', '%s.parametrizations.weight.original0' "
			         "or '%s.weight'",
			         prefix, prefix, prefix);
			return -1;
		}
	}
	int64_t gshape[ST_MAX_DIMS];
	gshape[0] = vshape[0];
	for (int i = 1; i < ndim; i++)
		gshape[i] = 1;
	float *g, *v;
	if (bind_f32_name(st, &g, ndim, gshape, gname, err, errlen))
		return -1;
	if (bind_f32_name(st, &v, ndim, vshape, vname_, err, errlen)) {
		free(g);
		return -1;
	}
	int64_t inner = 1;
	for (int i = 1; i < ndim; i++)
		inner *= vshape[i];
	float *w = malloc((size_t)(vshape[0] * inner) * sizeof(float) + 1);
	if (!w) {
		free(g);
		free(v);
		snprintf(err, errlen, "out of memory folding the weight norm of '%s'", prefix);
		return -1;
	}
	mg_weight_norm_fold(g, v, vshape[0], inner, w);
	free(g);
	free(v);
	if (!mg_all_finite(w, (size_t)(vshape[0] * inner))) {
		free(w);
		snprintf(err, errlen, "'%s': weight norm gives non-finite values (a zero weight_v row?)", prefix);
		return -1;
	}
	*out = w;
	return 0;
}
