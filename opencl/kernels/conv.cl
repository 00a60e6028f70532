/* conv.cl - EnCodec's SEANet pieces: reflect padding, direct 1-D convolution
 * and transposed convolution (weights already weight-norm folded), the LSTM
 * cell and the RVQ codebook sum. Tensors are [B, C, T]. */

/* out[b, c, :] = pad1d(x[b, c, :], l, r, reflect) as torch does it, with the
 * zero-extension for inputs not longer than the padding; reflect 0 pads with
 * zeros instead (pad_mode "constant"). */
__kernel void pad_reflect(__global const float *x, __global float *out, int L, int l, int r, int reflect)
{
	int p = get_global_id(0), c = get_global_id(1), b = get_global_id(2);
	int C = get_global_size(1);
	int Lo = L + l + r;
	if (p >= Lo)
		return;
	int mx = l > r ? l : r;
	int e = L <= mx ? mx - L + 1 : 0;
	int Le = L + e;
	int j = p - l;
	__global const float *xr = x + ((size_t)b * C + c) * L;
	if (!reflect) {
		out[((size_t)b * C + c) * Lo + p] = j >= 0 && j < L ? xr[j] : 0.0f;
		return;
	}
	if (j < 0)
		j = -j;
	if (j >= Le)
		j = 2 * (Le - 1) - j;
	out[((size_t)b * C + c) * Lo + p] = j < L ? xr[j] : 0.0f;
}

/* y[b, o, t] = bias[o] + sum_{i,k} w[o, i, k] * xp[b, i, t*stride + k*dil] on a padded input. */
__kernel void conv1d(__global const float *xp, __global const float *w, __global const float *bias,
                     __global float *y, int Cin, int Lp, int Cout, int Lout, int K, int stride, int dil)
{
	int t = get_global_id(0), o = get_global_id(1), b = get_global_id(2);
	if (t >= Lout || o >= Cout)
		return;
	__global const float *xb = xp + (size_t)b * Cin * Lp + (size_t)t * stride;
	__global const float *wo = w + (size_t)o * Cin * K;
	float acc = 0.0f;
	for (int i = 0; i < Cin; i++)
		for (int k = 0; k < K; k++)
			acc += wo[i * K + k] * xb[(size_t)i * Lp + k * dil];
	y[((size_t)b * Cout + o) * Lout + t] = bias[o] + acc;
}

/* Transposed convolution with the non-causal trim: output t of length L*stride
 * is full position t + pad_left, full[o, p] = bias[o] + sum_{i, m*stride + k == p} x[i, m] w[i, o, k]. */
__kernel void conv_transpose1d(__global const float *x, __global const float *w, __global const float *bias,
                               __global float *y, int Cin, int L, int Cout, int K, int stride, int pad_left)
{
	int t = get_global_id(0), o = get_global_id(1), b = get_global_id(2);
	int Lout = L * stride;
	if (t >= Lout || o >= Cout)
		return;
	int p = t + pad_left;
	__global const float *xb = x + (size_t)b * Cin * L;
	float acc = 0.0f;
	for (int k = p % stride; k < K; k += stride) {
		int m = (p - k) / stride;
		if (m < 0 || m >= L)
			continue;
		for (int i = 0; i < Cin; i++)
			acc += xb[(size_t)i * L + m] * w[((size_t)i * Cout + o) * K + k];
	}
	y[((size_t)b * Cout + o) * Lout + t] = bias[o] + acc;
}

/* One LSTM time step for every batch item: gates (PyTorch order i, f, g, o)
 * at g + b*ldg + goff, cell state c [B, C], hidden output at h + b*ldh + hoff. */
__kernel void lstm_cell(__global const float *g, int ldg, int goff, __global float *cst,
                        __global float *h, int ldh, int hoff, int C)
{
	int j = get_global_id(0), b = get_global_id(1);
	if (j >= C)
		return;
	__global const float *gb = g + (size_t)b * ldg + goff;
	float ig = 1.0f / (1.0f + exp(-gb[j]));
	float fg = 1.0f / (1.0f + exp(-gb[C + j]));
	float gg = tanh(gb[2 * C + j]);
	float og = 1.0f / (1.0f + exp(-gb[3 * C + j]));
	float c = fg * cst[(size_t)b * C + j] + ig * gg;
	cst[(size_t)b * C + j] = c;
	h[(size_t)b * ldh + hoff + j] = og * tanh(c);
}

/* z[b, :, t] = sum_q embed[q, codes[b, q, t], :] for q = 0..nq-1, in order.
 * embed [nq, V, D], codes [B, nq, F], z [B, D, F]. */
__kernel void rvq_decode(__global const int *codes, __global const float *embed, __global float *z,
                         int nq, int V, int D, int F)
{
	int t = get_global_id(0), d = get_global_id(1), b = get_global_id(2);
	if (t >= F || d >= D)
		return;
	float acc = 0.0f;
	for (int q = 0; q < nq; q++)
		acc = acc + embed[((size_t)q * V + codes[((size_t)b * nq + q) * F + t]) * D + d];
	z[((size_t)b * D + d) * F + t] = acc;
}
