/* common.cl - helpers shared by the kernels. OpenCL C 1.2, float32 only, no
 * subgroups. Contraction of a*b+c into fma is off so that results follow the
 * same rounding as the CPU backend's plain C loops. Work-group reductions
 * assume a power-of-two local size (the host guarantees it). */
#pragma OPENCL FP_CONTRACT OFF

#define MG_FLT_LOWEST (-3.4028234663852886e38f)

/* Sum of v over the work-group; every work-item gets the result. */
float wg_sum(float v, __local float *s)
{
	uint l = get_local_id(0), n = get_local_size(0);
	s[l] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint h = n / 2; h > 0; h >>= 1) {
		if (l < h)
			s[l] += s[l + h];
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	float r = s[0];
	barrier(CLK_LOCAL_MEM_FENCE);
	return r;
}

/* Maximum of v over the work-group. */
float wg_max(float v, __local float *s)
{
	uint l = get_local_id(0), n = get_local_size(0);
	s[l] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint h = n / 2; h > 0; h >>= 1) {
		if (l < h)
			s[l] = fmax(s[l], s[l + h]);
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	float r = s[0];
	barrier(CLK_LOCAL_MEM_FENCE);
	return r;
}

/* y[i] = v for i < n (buffers are cleared or initialised on the device). */
__kernel void fill(__global float *y, float v, int n)
{
	int i = get_global_id(0);
	if (i < n)
		y[i] = v;
}

/* y[r, c] = b[c]: the bias rows a GEMM then accumulates onto (beta = 1). */
__kernel void bias_rows(__global float *y, __global const float *b, int rows, int cols)
{
	int c = get_global_id(0), r = get_global_id(1);
	if (c < cols && r < rows)
		y[(size_t)r * cols + c] = b[c];
}

/* out[b, c, r] = in[b, r, c]. */
__kernel void transpose2d(__global const float *in, __global float *out, int R, int C)
{
	int c = get_global_id(0), r = get_global_id(1), b = get_global_id(2);
	if (c < C && r < R)
		out[((size_t)b * C + c) * R + r] = in[((size_t)b * R + r) * C + c];
}
