/* norm.cl - row normalisations and element-wise activations. One work-group
 * per row for the norms. */

/* T5LayerNorm: y = w * (x * rsqrt(mean(x^2) + eps)); no mean, no bias. */
__kernel void rms_norm(__global const float *x, __global const float *w, __global float *y,
                       int d, float eps, __local float *s)
{
	size_t row = get_group_id(0);
	__global const float *xr = x + row * d;
	__global float *yr = y + row * d;
	float acc = 0.0f;
	for (int i = get_local_id(0); i < d; i += get_local_size(0))
		acc += xr[i] * xr[i];
	float var = wg_sum(acc, s) / (float)d;
	float r = 1.0f / sqrt(var + eps);
	for (int i = get_local_id(0); i < d; i += get_local_size(0))
		yr[i] = w[i] * (xr[i] * r);
}

/* LayerNorm with biased variance: y = (x - mean) / sqrt(var + eps) * w + b. */
__kernel void layer_norm(__global const float *x, __global const float *w, __global const float *b,
                         __global float *y, int d, float eps, __local float *s)
{
	size_t row = get_group_id(0);
	__global const float *xr = x + row * d;
	__global float *yr = y + row * d;
	float acc = 0.0f;
	for (int i = get_local_id(0); i < d; i += get_local_size(0))
		acc += xr[i];
	float mean = wg_sum(acc, s) / (float)d;
	acc = 0.0f;
	for (int i = get_local_id(0); i < d; i += get_local_size(0)) {
		float t = xr[i] - mean;
		acc += t * t;
	}
	float var = wg_sum(acc, s) / (float)d;
	float den = sqrt(var + eps);
	for (int i = get_local_id(0); i < d; i += get_local_size(0))
		yr[i] = (xr[i] - mean) / den * w[i] + b[i];
}

/* Exact GELU: 0.5 x (1 + erf(x / sqrt 2)). */
__kernel void gelu(__global float *x, int n)
{
	int i = get_global_id(0);
	if (i < n) {
		float v = x[i];
		x[i] = 0.5f * v * (1.0f + erf(v * 0.70710678118654752f));
	}
}

__kernel void relu(__global float *x, int n)
{
	int i = get_global_id(0);
	if (i < n)
		x[i] = fmax(x[i], 0.0f);
}

/* ELU with alpha 1: x > 0 ? x : expm1(x). */
__kernel void elu(__global float *x, int n)
{
	int i = get_global_id(0);
	if (i < n) {
		float v = x[i];
		x[i] = v > 0.0f ? v : expm1(v);
	}
}

/* Gated feed-forward (T5 gated-gelu / gated-relu): a = act(a) * b, act the
 * tanh-form GELU ("gelu_new") when gelu, else ReLU. */
__kernel void gated_act(__global float *a, __global const float *b, int n, int gelu)
{
	int i = get_global_id(0);
	if (i < n) {
		float v = a[i];
		if (gelu)
			v = 0.5f * v * (1.0f + tanh(0.7978845608028654f * (v + 0.044715f * (v * v * v))));
		else
			v = fmax(v, 0.0f);
		a[i] = v * b[i];
	}
}

/* y += x */
__kernel void add(__global float *y, __global const float *x, int n)
{
	int i = get_global_id(0);
	if (i < n)
		y[i] = y[i] + x[i];
}

/* Row softmax in place with an optional additive mask: row r uses mask row
 * r / mask_div (mask [rows / mask_div, cols]). Max-subtracted, float32. */
__kernel void softmax_rows(__global float *x, __global const float *mask, int has_mask, int mask_div,
                           int cols, __local float *s)
{
	size_t row = get_group_id(0);
	__global float *xr = x + row * cols;
	__global const float *mr = mask + (row / mask_div) * cols;
	float m = -INFINITY;
	for (int j = get_local_id(0); j < cols; j += get_local_size(0)) {
		float v = has_mask ? xr[j] + mr[j] : xr[j];
		xr[j] = v;
		m = fmax(m, v);
	}
	m = wg_max(m, s);
	float acc = 0.0f;
	for (int j = get_local_id(0); j < cols; j += get_local_size(0)) {
		float e = exp(xr[j] - m);
		xr[j] = e;
		acc += e;
	}
	float sum = wg_sum(acc, s);
	for (int j = get_local_id(0); j < cols; j += get_local_size(0))
		xr[j] = xr[j] / sum;
}

/* Matrix products for a few rows (the decode step): y[r, o] = sum_i x[r, i] *
 * W[o, i] (+ y[r, o] when acc) for r < rows <= LINEAR_ROWS. One work-group
 * per output o reads row o of W once for all rows, so the step streams the
 * weights exactly once; consecutive work-items read consecutive weights. */
#define LINEAR_ROWS 8

void linear_rows_finish(float *acc, int rows, __global float *y, int ldy, int o, int accumulate,
                        __local float *s)
{
	for (int r = 0; r < LINEAR_ROWS; r++) {
		if (r >= rows)
			break;
		float v = wg_sum(acc[r], s);
		if (get_local_id(0) == 0)
			y[(size_t)r * ldy + o] = accumulate ? y[(size_t)r * ldy + o] + v : v;
	}
}

/* acc[r] += x[r, i] * w for the four weights w4 at columns 4*i4 .. 4*i4+3. */
void linear_rows_acc4(float *acc, int rows, __global const float *x, int ldx, int i4, float4 w4)
{
	for (int r = 0; r < LINEAR_ROWS; r++)
		if (r < rows) {
			float4 x4 = vload4(i4, x + (size_t)r * ldx);
			acc[r] += x4.s0 * w4.s0 + x4.s1 * w4.s1 + x4.s2 * w4.s2 + x4.s3 * w4.s3;
		}
}

__kernel void linear_rows(__global const float *x, int xoff, int ldx, __global const float *w, __global float *y,
                          int yoff, int ldy, int rows, int in, int accumulate, __local float *s)
{
	int o = get_group_id(0), lid = get_local_id(0), ls = get_local_size(0);
	x += xoff;
	__global const float *wr = w + (size_t)o * in;
	float acc[LINEAR_ROWS];
	for (int r = 0; r < LINEAR_ROWS; r++)
		acc[r] = 0.0f;
	for (int i = lid; i < in / 4; i += ls)
		linear_rows_acc4(acc, rows, x, ldx, i, vload4(i, wr));
	for (int i = in / 4 * 4 + lid; i < in; i += ls)
		for (int r = 0; r < LINEAR_ROWS; r++)
			if (r < rows)
				acc[r] += x[(size_t)r * ldx + i] * wr[i];
	linear_rows_finish(acc, rows, y + yoff, ldy, o, accumulate, s);
}

/* The same with weights stored as IEEE half (vload_half is core OpenCL 1.2,
 * no cl_khr_fp16 needed); arithmetic stays float32. */
__kernel void linear_rows_h(__global const float *x, int xoff, int ldx, __global const half *w, __global float *y,
                            int yoff, int ldy, int rows, int in, int accumulate, __local float *s)
{
	int o = get_group_id(0), lid = get_local_id(0), ls = get_local_size(0);
	x += xoff;
	__global const half *wr = w + (size_t)o * in;
	float acc[LINEAR_ROWS];
	for (int r = 0; r < LINEAR_ROWS; r++)
		acc[r] = 0.0f;
	for (int i = lid; i < in / 4; i += ls)
		linear_rows_acc4(acc, rows, x, ldx, i, vload_half4(i, wr));
	for (int i = in / 4 * 4 + lid; i < in; i += ls)
		for (int r = 0; r < LINEAR_ROWS; r++)
			if (r < rows)
				acc[r] += x[(size_t)r * ldx + i] * vload_half(i, wr);
	linear_rows_finish(acc, rows, y + yoff, ldy, o, accumulate, s);
}
