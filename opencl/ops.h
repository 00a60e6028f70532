/* ops.h - the operations of the OpenCL backend: one host function per kernel
 * of opencl/kernels/ (argument set-up and launch) plus the CLBlast matrix
 * products. Everything is float32 in device buffers; offsets and leading
 * dimensions count floats. Calls only enqueue work on the context's in-order
 * queue; they return 0, or -1 with err naming the kernel or routine. */
#ifndef MG_OCL_OPS_H
#define MG_OCL_OPS_H

#include "opencl/ocl.h"

/* C[m, n] = A[m, k] . B[n, k]^T + beta * C (row-major; B as nn.Linear stores W). */
int ocl_gemm_nt(ocl_ctx *c, int m, int n, int k,
                cl_mem A, size_t aoff, int lda, cl_mem B, size_t boff, int ldb,
                float beta, cl_mem C, size_t coff, int ldc, char *err, size_t errlen);

/* Runs both of CLBlast's GEMM paths once on dummy data, so that its kernel
 * compilation (at first use, per process) happens at load time. */
int ocl_blas_warmup(ocl_ctx *c, char *err, size_t errlen);

/* Y[rows, out] = X[rows, in] . W[out, in]^T + bias (bias may be NULL). */
int ocl_linear(ocl_ctx *c, cl_mem X, int rows, int in, cl_mem W, int out, cl_mem bias, cl_mem Y,
               char *err, size_t errlen);
/* Y += X . W^T (residual connections). */
int ocl_linear_acc(ocl_ctx *c, cl_mem X, int rows, int in, cl_mem W, int out, cl_mem Y,
                   char *err, size_t errlen);

/* A weight matrix [rows, cols] on the device, float32 or IEEE half. */
typedef struct ocl_mat {
	cl_mem m;
	int rows, cols;
	int f16;
} ocl_mat;

/* The most rows one pass of the small-batch product handles. */
#define OCL_LINEAR_ROWS 8

/* Y[n, W.rows] (row stride ldy) = X[n, W.cols] (offset xoff, row stride ldx)
 * . W^T, or += when accumulate (else Y is only written). float32 weights
 * and several rows: CLBlast GEMM; one row, or half weights: the
 * linear_rows kernel, 8 rows per pass over the weights (CLBlast has no
 * mixed half x float product). */
int ocl_matmul(ocl_ctx *c, cl_mem X, size_t xoff, int ldx, int n, const ocl_mat *W, cl_mem Y, int ldy,
               int accumulate, char *err, size_t errlen);
/* The small-batch kernel alone (tests, bench): n <= OCL_LINEAR_ROWS. */
int ocl_linear_rows(ocl_ctx *c, cl_mem X, size_t xoff, int ldx, int n, const ocl_mat *W, cl_mem Y, size_t yoff,
                    int ldy, int accumulate, char *err, size_t errlen);

int ocl_fill(ocl_ctx *c, cl_mem y, float v, size_t n, char *err, size_t errlen);
int ocl_bias_rows(ocl_ctx *c, cl_mem y, cl_mem b, int rows, int cols, char *err, size_t errlen);
/* out[b, c, r] = in[b, r, c] */
int ocl_transpose(ocl_ctx *c, cl_mem in, cl_mem out, int B, int R, int C, char *err, size_t errlen);

int ocl_rms_norm(ocl_ctx *c, cl_mem x, cl_mem w, cl_mem y, int rows, int d, float eps, char *err, size_t errlen);
int ocl_layer_norm(ocl_ctx *c, cl_mem x, cl_mem w, cl_mem b, cl_mem y, int rows, int d, float eps,
                   char *err, size_t errlen);
/* In place; kid is OK_GELU, OK_RELU or OK_ELU. */
int ocl_activation(ocl_ctx *c, int kid, cl_mem x, size_t n, char *err, size_t errlen);
/* a = act(a) * b: act = tanh-form GELU when gelu, else ReLU (T5 gated FFN). */
int ocl_gated_act(ocl_ctx *c, cl_mem a, cl_mem b, size_t n, int gelu, char *err, size_t errlen);
/* y += x */
int ocl_add(ocl_ctx *c, cl_mem y, cl_mem x, size_t n, char *err, size_t errlen);
/* Softmax of each row in place; mask (may be NULL) is additive, row r uses
 * mask row r / mask_div. */
int ocl_softmax_rows(ocl_ctx *c, cl_mem x, cl_mem mask, int mask_div, int rows, int cols,
                     char *err, size_t errlen);

/* Attention for N batch items, H heads of hd channels, Tq query rows over nk
 * keys (see attention.cl). scores: scratch of at least N*H*Tq*nk floats. */
typedef struct ocl_attn {
	cl_mem q; int qoff, ldq;          /* offsets in floats */
	cl_mem k; int koff;
	cl_mem v; int voff;
	int ldkv, kv_rows;
	cl_mem out; int ldo;
	cl_mem scores;
	cl_mem kmask;          /* [N, nk] 1 valid / 0 masked, or NULL */
	cl_mem rel_w, bucket;  /* T5 bias: [num_buckets, H] and int [2*Tq - 1], or NULL */
	int N, H, hd, Tq, nk;
	int past;              /* causal offset (query i sees keys <= past + i), -1 none */
	float scale;
} ocl_attn;
int ocl_attention(ocl_ctx *c, const ocl_attn *a, char *err, size_t errlen);

/* dst[n, past + t, :] = src[n*Tq + t, off .. off + inner] for a cache [N, Tmax, inner]. */
int ocl_kv_append(ocl_ctx *c, cl_mem src, int lds, int off, cl_mem dst, int N, int Tmax, int past,
                  int Tq, int inner, char *err, size_t errlen);

/* out[n*Tq + t, :] = sum_k tables[k, ids[n, k, t]] + pos[past + t] (int ids). */
int ocl_embed_sum(ocl_ctx *c, cl_mem ids, cl_mem tables, cl_mem pos, cl_mem out, int N, int K, int V1, int D,
                  int Tq, int past, char *err, size_t errlen);
int ocl_embed_rows(ocl_ctx *c, cl_mem ids, cl_mem table, cl_mem out, int rows, int D, char *err, size_t errlen);
int ocl_rows_mask(ocl_ctx *c, cl_mem y, cl_mem mask, int rows, int cols, char *err, size_t errlen);
/* out[R, V] = guidance (z has 2R rows when has_cfg) then / temp when temp != 1. */
int ocl_logits_process(ocl_ctx *c, cl_mem z, cl_mem out, int R, int V, int has_cfg, float g, float temp,
                       char *err, size_t errlen);
int ocl_argmax_rows(ocl_ctx *c, cl_mem x, int rows, int cols, cl_mem out_ids, char *err, size_t errlen);

/* EnCodec pieces; tensors [B, C, L]. */
/* pad1d: reflect (torch semantics) or zeros when reflect is 0. */
int ocl_pad(ocl_ctx *c, cl_mem x, cl_mem out, int B, int C, int L, int l, int r, int reflect,
            char *err, size_t errlen);
int ocl_conv1d(ocl_ctx *c, cl_mem xp, cl_mem w, cl_mem bias, cl_mem y, int B, int Cin, int Lp, int Cout,
               int K, int stride, int dil, int Lout, char *err, size_t errlen);
int ocl_conv_transpose1d(ocl_ctx *c, cl_mem x, cl_mem w, cl_mem bias, cl_mem y, int B, int Cin, int L,
                         int Cout, int K, int stride, int pad_left, char *err, size_t errlen);
int ocl_lstm_cell(ocl_ctx *c, cl_mem g, int ldg, int goff, cl_mem cst, cl_mem h, int ldh, int hoff, int B,
                  int C, char *err, size_t errlen);
int ocl_rvq_decode(ocl_ctx *c, cl_mem codes, cl_mem embed, cl_mem z, int B, int nq, int V, int D, int F,
                   char *err, size_t errlen);

#endif
