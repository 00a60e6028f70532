/* bind.h - binding named tensors of a safetensors set to the engine's
 * weights: every lookup checks the tensor's presence, shape and values
 * (finite) and fails with a message naming the file and tensor. Shared by the
 * T5 encoder, the MusicGen decoder and EnCodec (weight-norm folding). */
#ifndef MG_BIND_H
#define MG_BIND_H

#include <stddef.h>
#include <stdint.h>

#include "engine/linear.h"
#include "engine/safetensors.h"

/* Bounded name building: the tensor names of a checkpoint are formatted from
 * a printf pattern (e.g. "decoder.model.decoder.layers.%d.fc1.weight"). */
#define MG_BIND_NAME 256

/* Non-zero when the formatted name exists in st. */
int mg_bind_has(const st_set *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The tensor called `name`, which must have ndim dimensions equal to shape
 * (an entry < 0 accepts any size there). NULL with a message otherwise. */
const st_tensor *mg_bind_tensor(const st_set *st, const char *name, int ndim, const int64_t *shape,
                                char *err, size_t errlen);

/* A float tensor of the given shape converted to a new float32 array
 * (malloc'd, owned by the caller); rejects non-finite values. */
int mg_bind_f32(const st_set *st, float **out, int ndim, const int64_t *shape, char *err, size_t errlen,
                const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* A vector [n] as float32 (shorthand for mg_bind_f32 with one dimension). */
int mg_bind_vec(const st_set *st, float **out, int64_t n, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* A [rows, cols] weight matrix converted once to the compute format fmt;
 * the mapped file pages of the tensor are released afterwards (st_release). */
int mg_bind_mat(const st_set *st, mg_mat *m, int64_t rows, int64_t cols, int fmt, char *err, size_t errlen,
                const char *fmt_name, ...) __attribute__((format(printf, 8, 9)));

/* The n tensors names[0..n-1] (n <= MG_BIND_STACK), each [rows, cols],
 * stacked in that order into one [n * rows, cols] matrix in format fmt
 * (products that share their input read them in one pass: the decoder's q,
 * k and v). */
#define MG_BIND_STACK 8
int mg_bind_mat_stack(const st_set *st, mg_mat *m, int n, const char *const *names, int64_t rows, int64_t cols,
                      int fmt, char *err, size_t errlen);

/* Row `row` of the 2-D float tensor t converted to float32 into dst[cols]
 * (embedding lookups read the mapped file directly; no copy of the table). */
void mg_bind_row(const st_tensor *t, int64_t row, float *dst);

/* Non-zero when every value of x[n] is finite. */
int mg_all_finite(const float *x, size_t n);

/* Weight norm (PyTorch weight_norm / parametrizations.weight_norm, dim 0):
 * w[o, :] = v[o, :] * (g[o] / ||v[o, :]||), the norm over all dims but the
 * first, computed in double and rounded once. v and w are [dim0, inner]. */
void mg_weight_norm_fold(const float *g, const float *v, int64_t dim0, int64_t inner, float *w);

/* Binds a weight-normed convolution weight `prefix`.weight_g / .weight_v, or
 * the newer `prefix`.parametrizations.weight.original0 / .original1, with v
 * of shape vshape[ndim] and g of shape [vshape[0], 1, ...]. A plain
 * `prefix`.weight of that shape is accepted as already folded. *out is a
 * malloc'd float32 array of prod(vshape) folded values. */
int mg_bind_weight_norm(const st_set *st, float **out, int ndim, const int64_t *vshape, char *err,
                        size_t errlen, const char *prefix_fmt, ...) __attribute__((format(printf, 7, 8)));

#endif
