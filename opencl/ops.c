/* ops.c - argument set-up and launches of the OpenCL kernels, and the CLBlast
 * matrix products. Argument order follows the kernel signatures in
 * the kernel sources in opencl/kernels/. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include <clblast_c.h>

#include "opencl/ops.h"

static const char *kname(int kid)
{
	static const char *names[OK_COUNT] = {
		[OK_FILL] = "fill", [OK_BIAS_ROWS] = "bias_rows", [OK_TRANSPOSE2D] = "transpose2d",
		[OK_RMS_NORM] = "rms_norm", [OK_LAYER_NORM] = "layer_norm", [OK_GELU] = "gelu",
		[OK_RELU] = "relu", [OK_GATED_ACT] = "gated_act", [OK_ELU] = "elu", [OK_ADD] = "add", [OK_SOFTMAX_ROWS] = "softmax_rows",
		[OK_ATTENTION] = "attention", [OK_KV_APPEND] = "kv_append", [OK_EMBED_SUM] = "embed_sum",
		[OK_EMBED_ROWS] = "embed_rows", [OK_ROWS_MASK] = "rows_mask",
		[OK_LOGITS_PROCESS] = "logits_process", [OK_ARGMAX_ROWS] = "argmax_rows",
		[OK_PAD_REFLECT] = "pad_reflect", [OK_CONV1D] = "conv1d",
		[OK_CONV_TRANSPOSE1D] = "conv_transpose1d", [OK_LSTM_CELL] = "lstm_cell",
		[OK_RVQ_DECODE] = "rvq_decode",
	};
	return kid >= 0 && kid < OK_COUNT && names[kid] ? names[kid] : "?";
}

/* Arguments are set in order; the first failure is kept. */
typedef struct args {
	ocl_ctx *c;
	int kid;
	cl_uint i;
	cl_int rc;
} args;

static args args_begin(ocl_ctx *c, int kid)
{
	args a = {c, kid, 0, CL_SUCCESS};
	return a;
}

static void arg_mem(args *a, cl_mem m)
{
	if (a->rc == CL_SUCCESS)
		a->rc = clSetKernelArg(a->c->k[a->kid], a->i, sizeof m, &m);
	a->i++;
}

static void arg_int(args *a, int v)
{
	cl_int x = v;
	if (a->rc == CL_SUCCESS)
		a->rc = clSetKernelArg(a->c->k[a->kid], a->i, sizeof x, &x);
	a->i++;
}

static void arg_float(args *a, float v)
{
	cl_float x = v;
	if (a->rc == CL_SUCCESS)
		a->rc = clSetKernelArg(a->c->k[a->kid], a->i, sizeof x, &x);
	a->i++;
}

static void arg_local(args *a, size_t bytes)
{
	if (a->rc == CL_SUCCESS)
		a->rc = clSetKernelArg(a->c->k[a->kid], a->i, bytes, NULL);
	a->i++;
}

/* Launches with global sizes g[0..dims) (rounded up to the local size when
 * local is given; kernels check their bounds). */
static int launch(args *a, int dims, const size_t *g, const size_t *local, char *err, size_t errlen)
{
	size_t gs[3];
	cl_int rc = a->rc;
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "kernel %s: setting argument %u: %s (%d)", kname(a->kid), a->i - 1,
		         ocl_strerror(rc), rc);
		return -1;
	}
	for (int d = 0; d < dims; d++) {
		if (g[d] == 0)
			return 0; /* nothing to do */
		gs[d] = local ? (g[d] + local[d] - 1) / local[d] * local[d] : g[d];
	}
	rc = clEnqueueNDRangeKernel(a->c->queue, a->c->k[a->kid], (cl_uint)dims, NULL, gs, local, 0, NULL, NULL);
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "kernel %s on %s: %s (%d)", kname(a->kid), a->c->dev.name, ocl_strerror(rc), rc);
		return -1;
	}
	return 0;
}

/* One work-group of c->wg items per row (rows in dimension 0). */
static int launch_rows(args *a, size_t rows, char *err, size_t errlen)
{
	size_t g = rows * a->c->wg, l = a->c->wg;
	return launch(a, 1, &g, &l, err, errlen);
}

static const char *clblast_name(CLBlastStatusCode s)
{
	switch (s) {
	case CLBlastSuccess: return "success";
	case CLBlastOpenCLOutOfResources: return "out of resources";
	case CLBlastOpenCLOutOfHostMemory: return "out of host memory";
	case CLBlastTempBufferAllocFailure: return "out of device memory (temporary buffer)";
	case CLBlastInvalidBufferSize: return "invalid buffer size";
	case CLBlastInvalidValue: return "invalid value";
	case CLBlastInsufficientMemoryA: return "matrix A buffer too small";
	case CLBlastInsufficientMemoryB: return "matrix B buffer too small";
	case CLBlastInsufficientMemoryC: return "matrix C buffer too small";
	case CLBlastInvalidLeadDimA: return "bad leading dimension of A";
	case CLBlastInvalidLeadDimB: return "bad leading dimension of B";
	case CLBlastInvalidLeadDimC: return "bad leading dimension of C";
	case CLBlastOpenCLBuildProgramFailure: return "CLBlast kernel build failure";
	case CLBlastNotImplemented: return "not implemented";
	default: return "CLBlast error";
	}
}

int ocl_gemm_nt(ocl_ctx *c, int m, int n, int k,
                cl_mem A, size_t aoff, int lda, cl_mem B, size_t boff, int ldb,
                float beta, cl_mem C, size_t coff, int ldc, char *err, size_t errlen)
{
	if (m <= 0 || n <= 0)
		return 0;
	CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes,
	                                   (size_t)m, (size_t)n, (size_t)k, 1.0f, A, aoff, (size_t)lda,
	                                   B, boff, (size_t)ldb, beta, C, coff, (size_t)ldc, &c->queue, NULL);
	if (s != CLBlastSuccess) {
		snprintf(err, errlen, "CLBlastSgemm %dx%dx%d on %s: %s (%d)", m, n, k, c->dev.name,
		         clblast_name(s), (int)s);
		return -1;
	}
	return 0;
}

int ocl_blas_warmup(ocl_ctx *c, char *err, size_t errlen)
{
	/* The single-row kernel, a small product (CLBlast's direct kernels)
	 * and a large one (its tiled kernels with pre-processing). */
	int big = 512;
	cl_mem a = ocl_buf(c, sizeof(float) * big * big, "warm-up", err, errlen);
	cl_mem b = a ? ocl_buf(c, sizeof(float) * big * big, "warm-up", err, errlen) : NULL;
	cl_mem y = b ? ocl_buf(c, sizeof(float) * big * big, "warm-up", err, errlen) : NULL;
	ocl_mat w = {b, big, big, 0};
	int rc = !y || ocl_fill(c, a, 0.0f, (size_t)big * big, err, errlen) ||
	         ocl_fill(c, b, 0.0f, (size_t)big * big, err, errlen) ||
	         ocl_matmul(c, a, 0, big, 1, &w, y, big, 0, err, errlen) ||
	         ocl_gemm_nt(c, 2, 64, 64, a, 0, 64, b, 0, 64, 0.0f, y, 0, 64, err, errlen) ||
	         ocl_gemm_nt(c, big, big, big, a, 0, big, b, 0, big, 1.0f, y, 0, big, err, errlen) ||
	         ocl_finish(c, err, errlen);
	ocl_release(&a);
	ocl_release(&b);
	ocl_release(&y);
	return rc ? -1 : 0;
}

int ocl_linear(ocl_ctx *c, cl_mem X, int rows, int in, cl_mem W, int out, cl_mem bias, cl_mem Y,
               char *err, size_t errlen)
{
	if (bias && ocl_bias_rows(c, Y, bias, rows, out, err, errlen))
		return -1;
	return ocl_gemm_nt(c, rows, out, in, X, 0, in, W, 0, in, bias ? 1.0f : 0.0f, Y, 0, out, err, errlen);
}

int ocl_linear_acc(ocl_ctx *c, cl_mem X, int rows, int in, cl_mem W, int out, cl_mem Y,
                   char *err, size_t errlen)
{
	return ocl_gemm_nt(c, rows, out, in, X, 0, in, W, 0, in, 1.0f, Y, 0, out, err, errlen);
}

int ocl_linear_rows(ocl_ctx *c, cl_mem X, size_t xoff, int ldx, int n, const ocl_mat *W, cl_mem Y, size_t yoff,
                    int ldy, int accumulate, char *err, size_t errlen)
{
	if (n > OCL_LINEAR_ROWS) {
		snprintf(err, errlen, "linear_rows: %d rows, at most %d", n, OCL_LINEAR_ROWS);
		return -1;
	}
	args a = args_begin(c, W->f16 ? OK_LINEAR_ROWS_H : OK_LINEAR_ROWS);
	size_t g = (size_t)W->rows * c->wg, l = c->wg;
	arg_mem(&a, X);
	arg_int(&a, (int)xoff);
	arg_int(&a, ldx);
	arg_mem(&a, W->m);
	arg_mem(&a, Y);
	arg_int(&a, (int)yoff);
	arg_int(&a, ldy);
	arg_int(&a, n);
	arg_int(&a, W->cols);
	arg_int(&a, accumulate);
	arg_local(&a, c->wg * sizeof(float));
	return launch(&a, 1, &g, &l, err, errlen);
}

int ocl_matmul(ocl_ctx *c, cl_mem X, size_t xoff, int ldx, int n, const ocl_mat *W, cl_mem Y, int ldy,
               int accumulate, char *err, size_t errlen)
{
	/* One row goes through linear_rows, not CLBlastSgemv: Sgemv computes
	 * beta * y even for beta = 0, so NaN left in the output buffer (fresh
	 * device memory holds anything) leaked into the result. */
	if (!W->f16 && n > 1)
		return ocl_gemm_nt(c, n, W->rows, W->cols, X, xoff, ldx, W->m, 0, W->cols, accumulate ? 1.0f : 0.0f, Y,
		                   0, ldy, err, errlen);
	for (int r = 0; r < n; r += OCL_LINEAR_ROWS) {
		int k = n - r < OCL_LINEAR_ROWS ? n - r : OCL_LINEAR_ROWS;
		if (ocl_linear_rows(c, X, xoff + (size_t)r * ldx, ldx, k, W, Y, (size_t)r * ldy, ldy, accumulate, err,
		                    errlen))
			return -1;
	}
	return 0;
}

int ocl_fill(ocl_ctx *c, cl_mem y, float v, size_t n, char *err, size_t errlen)
{
	args a = args_begin(c, OK_FILL);
	arg_mem(&a, y);
	arg_float(&a, v);
	arg_int(&a, (int)n);
	return launch(&a, 1, &n, NULL, err, errlen);
}

int ocl_bias_rows(ocl_ctx *c, cl_mem y, cl_mem b, int rows, int cols, char *err, size_t errlen)
{
	args a = args_begin(c, OK_BIAS_ROWS);
	size_t g[2] = {(size_t)cols, (size_t)rows};
	arg_mem(&a, y);
	arg_mem(&a, b);
	arg_int(&a, rows);
	arg_int(&a, cols);
	return launch(&a, 2, g, NULL, err, errlen);
}

int ocl_transpose(ocl_ctx *c, cl_mem in, cl_mem out, int B, int R, int C, char *err, size_t errlen)
{
	args a = args_begin(c, OK_TRANSPOSE2D);
	size_t g[3] = {(size_t)C, (size_t)R, (size_t)B};
	arg_mem(&a, in);
	arg_mem(&a, out);
	arg_int(&a, R);
	arg_int(&a, C);
	return launch(&a, 3, g, NULL, err, errlen);
}

int ocl_rms_norm(ocl_ctx *c, cl_mem x, cl_mem w, cl_mem y, int rows, int d, float eps, char *err, size_t errlen)
{
	args a = args_begin(c, OK_RMS_NORM);
	arg_mem(&a, x);
	arg_mem(&a, w);
	arg_mem(&a, y);
	arg_int(&a, d);
	arg_float(&a, eps);
	arg_local(&a, c->wg * sizeof(float));
	return launch_rows(&a, (size_t)rows, err, errlen);
}

int ocl_layer_norm(ocl_ctx *c, cl_mem x, cl_mem w, cl_mem b, cl_mem y, int rows, int d, float eps,
                   char *err, size_t errlen)
{
	args a = args_begin(c, OK_LAYER_NORM);
	arg_mem(&a, x);
	arg_mem(&a, w);
	arg_mem(&a, b);
	arg_mem(&a, y);
	arg_int(&a, d);
	arg_float(&a, eps);
	arg_local(&a, c->wg * sizeof(float));
	return launch_rows(&a, (size_t)rows, err, errlen);
}

int ocl_activation(ocl_ctx *c, int kid, cl_mem x, size_t n, char *err, size_t errlen)
{
	if (kid != OK_GELU && kid != OK_RELU && kid != OK_ELU) {
		snprintf(err, errlen, "ocl_activation: kernel %s is not an activation", kname(kid));
		return -1;
	}
	args a = args_begin(c, kid);
	arg_mem(&a, x);
	arg_int(&a, (int)n);
	return launch(&a, 1, &n, NULL, err, errlen);
}

int ocl_gated_act(ocl_ctx *c, cl_mem a_, cl_mem b, size_t n, int gelu, char *err, size_t errlen)
{
	args a = args_begin(c, OK_GATED_ACT);
	arg_mem(&a, a_);
	arg_mem(&a, b);
	arg_int(&a, (int)n);
	arg_int(&a, gelu);
	return launch(&a, 1, &n, NULL, err, errlen);
}

int ocl_add(ocl_ctx *c, cl_mem y, cl_mem x, size_t n, char *err, size_t errlen)
{
	args a = args_begin(c, OK_ADD);
	arg_mem(&a, y);
	arg_mem(&a, x);
	arg_int(&a, (int)n);
	return launch(&a, 1, &n, NULL, err, errlen);
}

int ocl_softmax_rows(ocl_ctx *c, cl_mem x, cl_mem mask, int mask_div, int rows, int cols,
                     char *err, size_t errlen)
{
	args a = args_begin(c, OK_SOFTMAX_ROWS);
	arg_mem(&a, x);
	arg_mem(&a, mask ? mask : x);
	arg_int(&a, mask != NULL);
	arg_int(&a, mask_div > 0 ? mask_div : 1);
	arg_int(&a, cols);
	arg_local(&a, c->wg * sizeof(float));
	return launch_rows(&a, (size_t)rows, err, errlen);
}

int ocl_attention(ocl_ctx *c, const ocl_attn *p, char *err, size_t errlen)
{
	args a = args_begin(c, OK_ATTENTION);
	size_t l[3] = {c->wg, 1, 1};
	size_t g[3] = {(size_t)p->Tq * c->wg, (size_t)p->H, (size_t)p->N};
	arg_mem(&a, p->q);
	arg_int(&a, p->qoff);
	arg_int(&a, p->ldq);
	arg_mem(&a, p->k);
	arg_int(&a, p->koff);
	arg_mem(&a, p->v);
	arg_int(&a, p->voff);
	arg_int(&a, p->ldkv);
	arg_int(&a, p->kv_rows);
	arg_mem(&a, p->out);
	arg_int(&a, p->ldo);
	arg_mem(&a, p->scores);
	arg_int(&a, p->nk);
	arg_mem(&a, p->kmask ? p->kmask : p->q);
	arg_int(&a, p->kmask != NULL);
	arg_mem(&a, p->rel_w ? p->rel_w : p->q);
	arg_mem(&a, p->bucket ? p->bucket : p->q);
	arg_int(&a, p->rel_w && p->bucket);
	arg_int(&a, p->H);
	arg_int(&a, p->hd);
	arg_int(&a, p->Tq);
	arg_int(&a, p->nk);
	arg_int(&a, p->past);
	arg_float(&a, p->scale);
	arg_local(&a, c->wg * sizeof(float));
	return launch(&a, 3, g, l, err, errlen);
}

int ocl_kv_append(ocl_ctx *c, cl_mem src, int lds, int off, cl_mem dst, int N, int Tmax, int past,
                  int Tq, int inner, char *err, size_t errlen)
{
	args a = args_begin(c, OK_KV_APPEND);
	size_t g[3] = {(size_t)inner, (size_t)Tq, (size_t)N};
	arg_mem(&a, src);
	arg_int(&a, lds);
	arg_int(&a, off);
	arg_mem(&a, dst);
	arg_int(&a, Tmax);
	arg_int(&a, past);
	arg_int(&a, Tq);
	arg_int(&a, inner);
	return launch(&a, 3, g, NULL, err, errlen);
}

int ocl_embed_sum(ocl_ctx *c, cl_mem ids, cl_mem tables, cl_mem pos, cl_mem out, int N, int K, int V1, int D,
                  int Tq, int past, char *err, size_t errlen)
{
	args a = args_begin(c, OK_EMBED_SUM);
	size_t g[3] = {(size_t)D, (size_t)Tq, (size_t)N};
	arg_mem(&a, ids);
	arg_mem(&a, tables);
	arg_mem(&a, pos);
	arg_mem(&a, out);
	arg_int(&a, K);
	arg_int(&a, V1);
	arg_int(&a, D);
	arg_int(&a, Tq);
	arg_int(&a, past);
	return launch(&a, 3, g, NULL, err, errlen);
}

int ocl_embed_rows(ocl_ctx *c, cl_mem ids, cl_mem table, cl_mem out, int rows, int D, char *err, size_t errlen)
{
	args a = args_begin(c, OK_EMBED_ROWS);
	size_t g[2] = {(size_t)D, (size_t)rows};
	arg_mem(&a, ids);
	arg_mem(&a, table);
	arg_mem(&a, out);
	arg_int(&a, D);
	return launch(&a, 2, g, NULL, err, errlen);
}

int ocl_rows_mask(ocl_ctx *c, cl_mem y, cl_mem mask, int rows, int cols, char *err, size_t errlen)
{
	args a = args_begin(c, OK_ROWS_MASK);
	size_t g[2] = {(size_t)cols, (size_t)rows};
	arg_mem(&a, y);
	arg_mem(&a, mask);
	arg_int(&a, cols);
	return launch(&a, 2, g, NULL, err, errlen);
}

int ocl_logits_process(ocl_ctx *c, cl_mem z, cl_mem out, int R, int V, int has_cfg, float g, float temp,
                       char *err, size_t errlen)
{
	args a = args_begin(c, OK_LOGITS_PROCESS);
	size_t gs[2] = {(size_t)V, (size_t)R};
	arg_mem(&a, z);
	arg_mem(&a, out);
	arg_int(&a, R);
	arg_int(&a, V);
	arg_int(&a, has_cfg);
	arg_float(&a, g);
	arg_float(&a, temp);
	return launch(&a, 2, gs, NULL, err, errlen);
}

int ocl_argmax_rows(ocl_ctx *c, cl_mem x, int rows, int cols, cl_mem out_ids, char *err, size_t errlen)
{
	args a = args_begin(c, OK_ARGMAX_ROWS);
	arg_mem(&a, x);
	arg_int(&a, cols);
	arg_mem(&a, out_ids);
	arg_local(&a, c->wg * sizeof(float));
	arg_local(&a, c->wg * sizeof(cl_int));
	return launch_rows(&a, (size_t)rows, err, errlen);
}

int ocl_pad(ocl_ctx *c, cl_mem x, cl_mem out, int B, int C, int L, int l, int r, int reflect,
            char *err, size_t errlen)
{
	args a = args_begin(c, OK_PAD_REFLECT);
	size_t g[3] = {(size_t)(L + l + r), (size_t)C, (size_t)B};
	arg_mem(&a, x);
	arg_mem(&a, out);
	arg_int(&a, L);
	arg_int(&a, l);
	arg_int(&a, r);
	arg_int(&a, reflect);
	return launch(&a, 3, g, NULL, err, errlen);
}

int ocl_conv1d(ocl_ctx *c, cl_mem xp, cl_mem w, cl_mem bias, cl_mem y, int B, int Cin, int Lp, int Cout,
               int K, int stride, int dil, int Lout, char *err, size_t errlen)
{
	args a = args_begin(c, OK_CONV1D);
	size_t g[3] = {(size_t)Lout, (size_t)Cout, (size_t)B};
	arg_mem(&a, xp);
	arg_mem(&a, w);
	arg_mem(&a, bias);
	arg_mem(&a, y);
	arg_int(&a, Cin);
	arg_int(&a, Lp);
	arg_int(&a, Cout);
	arg_int(&a, Lout);
	arg_int(&a, K);
	arg_int(&a, stride);
	arg_int(&a, dil);
	return launch(&a, 3, g, NULL, err, errlen);
}

int ocl_conv_transpose1d(ocl_ctx *c, cl_mem x, cl_mem w, cl_mem bias, cl_mem y, int B, int Cin, int L,
                         int Cout, int K, int stride, int pad_left, char *err, size_t errlen)
{
	args a = args_begin(c, OK_CONV_TRANSPOSE1D);
	size_t g[3] = {(size_t)L * (size_t)stride, (size_t)Cout, (size_t)B};
	arg_mem(&a, x);
	arg_mem(&a, w);
	arg_mem(&a, bias);
	arg_mem(&a, y);
	arg_int(&a, Cin);
	arg_int(&a, L);
	arg_int(&a, Cout);
	arg_int(&a, K);
	arg_int(&a, stride);
	arg_int(&a, pad_left);
	return launch(&a, 3, g, NULL, err, errlen);
}

int ocl_lstm_cell(ocl_ctx *c, cl_mem g, int ldg, int goff, cl_mem cst, cl_mem h, int ldh, int hoff, int B,
                  int C, char *err, size_t errlen)
{
	args a = args_begin(c, OK_LSTM_CELL);
	size_t gs[2] = {(size_t)C, (size_t)B};
	arg_mem(&a, g);
	arg_int(&a, ldg);
	arg_int(&a, goff);
	arg_mem(&a, cst);
	arg_mem(&a, h);
	arg_int(&a, ldh);
	arg_int(&a, hoff);
	arg_int(&a, C);
	return launch(&a, 2, gs, NULL, err, errlen);
}

int ocl_rvq_decode(ocl_ctx *c, cl_mem codes, cl_mem embed, cl_mem z, int B, int nq, int V, int D, int F,
                   char *err, size_t errlen)
{
	args a = args_begin(c, OK_RVQ_DECODE);
	size_t g[3] = {(size_t)F, (size_t)D, (size_t)B};
	arg_mem(&a, codes);
	arg_mem(&a, embed);
	arg_mem(&a, z);
	arg_int(&a, nq);
	arg_int(&a, V);
	arg_int(&a, D);
	arg_int(&a, F);
	return launch(&a, 3, g, NULL, err, errlen);
}
