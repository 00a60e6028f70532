/* linear.h - weight matrices in the compute format and the products the
 * model needs: Y[n, rows] = X[n, cols] . W^T (+ bias), W row-major
 * [rows, cols] as PyTorch nn.Linear stores it. */
#ifndef MG_LINEAR_H
#define MG_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "engine/mg.h"
#include "engine/pool.h"
#include "engine/safetensors.h"

/* Layouts of q8 codes (kernels.h). */
enum { MG_Q8_ROWS = 0, MG_Q8_TILES = 1, MG_Q8_PAIRS = 2 };

typedef struct mg_mat {
	int fmt;        /* MG_WEIGHTS_F32 / F16 / Q8 */
	int rows, cols;
	int ld;         /* elements between rows of data: cols (f32, f16), cols
	                 * rounded up to the q8 block (q8, zero padded) */
	void *data;     /* 64-byte aligned: float (f32), uint16_t halves
	                 * (f16), int8_t (q8), rows x ld */
	float *scales;  /* q8: rows x ld / MG_Q8_BLOCK block scales, else NULL */
	int q8_layout;  /* q8: where the codes are (MG_Q8_ROWS, MG_Q8_TILES for
	                 * AMX, MG_Q8_PAIRS: kernels.h) */
	size_t bytes;   /* bytes of data + scales (what one full product reads) */
	void *chunk;    /* the weight-memory chunk data and scales were carved from */
} mg_mat;

/* From a tensor of shape [rows, cols] (any float dtype), converted to fmt.
 * Fails, naming the tensor, when it holds NaN or infinite values. */
int mg_mat_from_tensor(mg_mat *m, const st_tensor *t, int fmt, char *err, size_t errlen);
/* From n tensors of one shape [rows, cols], stacked into one matrix of n *
 * rows (the first tensor's rows first), converted to fmt. */
int mg_mat_from_tensors(mg_mat *m, const st_tensor *const *t, int n, int fmt, char *err, size_t errlen);
/* The pool that conversions started on the calling thread run on from now
 * (NULL: on the calling thread alone); returns the one before. A loader
 * sets its model's pool while it binds the weights. */
mg_pool *mg_linear_convert_pool(mg_pool *pool);
/* From row-major float32 w[rows * cols] (copied and converted); q8 in the
 * layout the active kernel set reads. */
int mg_mat_from_f32(mg_mat *m, const float *w, int rows, int cols, int fmt, char *err, size_t errlen);
/* The same with the q8 layout given (MG_Q8_ROWS, MG_Q8_TILES, MG_Q8_PAIRS). */
int mg_mat_from_f32_layout(mg_mat *m, const float *w, int rows, int cols, int fmt, int q8_layout, char *err,
                           size_t errlen);
void mg_mat_free(mg_mat *m);

/* Zeroed memory for large buffers read in full at every step (the decoder's
 * KV cache): its own mapping on 2 MiB boundaries that asks for transparent
 * huge pages, as the weights get. NULL when out of memory; mg_big_free
 * takes the same byte count. */
void *mg_big_alloc(size_t bytes);
void mg_big_free(void *p, size_t bytes);

/* Y[n, rows] = X[n, cols] W^T + bias (bias may be NULL). Multi-threaded on
 * pool; no allocation. Contract: row i of Y depends only on row i of X and
 * on W, bit for bit, whatever n is (batch invariance of takes). */
void mg_linear(mg_pool *pool, const mg_mat *W, const float *bias, const float *X, int n, float *Y);
/* The same, then act (an element-wise activation such as mg_gelu) over Y,
 * each thread over the outputs it has just computed: the same bits as
 * mg_linear then act(Y), without a second pass over the threads. */
void mg_linear_act(mg_pool *pool, const mg_mat *W, const float *bias, const float *X, int n, float *Y,
                   void (*act)(float *y, size_t n));

const char *mg_weights_name(int fmt);
/* The weight format MG_WEIGHTS_DEFAULT stands for (fmt itself otherwise). */
int mg_weights_resolve(int fmt);
/* Name of the kernel set mg_linear uses ("avx512", "avx2", "generic"). */
const char *mg_linear_kernels(void);

#endif
