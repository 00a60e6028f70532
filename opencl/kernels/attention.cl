/* attention.cl - scaled dot-product attention for the decoder (one or a few
 * new query rows over the KV cache, causal), for cross-attention (key mask;
 * a row with no valid key gives 0) and for the T5 encoder (relative position
 * bias, no scaling). One work-group per (query row, head, batch item);
 * scores go through a global scratch row so any key count works. */

/* q row (n, i): q + qoff + (n*Tq + i)*ldq + h*hd; k/v row (n, j): k + koff + (n*kv_rows + j)*ldkv
 * + h*hd (v likewise with voff): offsets let q, k, v be columns of one fused product.
 * Key j is used when: past < 0 or j <= past + i (causal), and kmask[n*nk + j] != 0
 * when has_mask. has_bias adds rel_w[bucket[j - i + Tq - 1]*H + h] (T5). */
__kernel void attention(__global const float *q, int qoff, int ldq,
                        __global const float *k, int koff, __global const float *v, int voff,
                        int ldkv, int kv_rows,
                        __global float *out, int ldo,
                        __global float *scores, int smax,
                        __global const float *kmask, int has_mask,
                        __global const float *rel_w, __global const int *bucket, int has_bias,
                        int H, int hd, int Tq, int nk, int past, float scale,
                        __local float *s)
{
	int i = get_group_id(0), h = get_group_id(1), n = get_group_id(2);
	int lid = get_local_id(0), ls = get_local_size(0);
	q += qoff;
	k += koff;
	v += voff;
	__global const float *qr = q + ((size_t)n * Tq + i) * ldq + (size_t)h * hd;
	__global float *sc = scores + (((size_t)n * H + h) * Tq + i) * smax;
	__global float *o = out + ((size_t)n * Tq + i) * ldo + (size_t)h * hd;

	float m = -INFINITY;
	for (int j = lid; j < nk; j += ls) {
		int ok = (past < 0 || j <= past + i) && (!has_mask || kmask[(size_t)n * nk + j] != 0.0f);
		float d = -INFINITY;
		if (ok) {
			__global const float *kr = k + ((size_t)n * kv_rows + j) * ldkv + (size_t)h * hd;
			d = 0.0f;
			for (int c = 0; c < hd; c++)
				d += (qr[c] * scale) * kr[c];
			if (has_bias)
				d += rel_w[bucket[j - i + Tq - 1] * H + h];
		}
		sc[j] = d;
		m = fmax(m, d);
	}
	m = wg_max(m, s);
	/* No valid key (a fully masked row) gives 0. The test is uniform over
	 * the work-group; no early return so that every item meets the barriers. */
	int none = m == -INFINITY;
	float acc = 0.0f;
	for (int j = lid; j < nk && !none; j += ls) {
		float e = exp(sc[j] - m);
		sc[j] = e;
		acc += e;
	}
	float sum = wg_sum(acc, s);
	barrier(CLK_GLOBAL_MEM_FENCE);
	/* o[c] = sum_j p_j v[j, c]: the work-group splits into g groups of hd
	 * items, group k summing keys k, k+g, ...; the partial sums are then
	 * added in group order (deterministic). With hd > ls, one pass over c. */
	int g = ls >= hd ? ls / hd : 1;
	int c0 = ls >= hd ? lid % hd : lid, grp = ls >= hd ? lid / hd : 0;
	for (int c = c0; c < hd && grp < g; c += ls >= hd ? hd : ls) {
		float a = 0.0f;
		for (int j = grp; j < nk && !none; j += g) {
			float p = sc[j];
			if (p != 0.0f)
				a += (p / sum) * v[((size_t)n * kv_rows + j) * ldkv + (size_t)h * hd + c];
		}
		if (g == 1)
			o[c] = a;
		else
			s[lid] = a;
	}
	if (g > 1) {
		barrier(CLK_LOCAL_MEM_FENCE);
		if (lid < hd) {
			float a = s[lid];
			for (int k = 1; k < g; k++)
				a += s[k * hd + lid];
			o[lid] = a;
		}
	}
}

/* Copies Tq new rows (columns off .. off+inner of src rows (n*Tq + t), row
 * stride lds) into a cache [N, Tmax, inner] at time past + t. */
__kernel void kv_append(__global const float *src, int lds, int off, __global float *dst,
                        int Tmax, int past, int Tq, int inner)
{
	int c = get_global_id(0), t = get_global_id(1), n = get_global_id(2);
	if (c < inner && t < Tq)
		dst[((size_t)n * Tmax + past + t) * inner + c] = src[((size_t)n * Tq + t) * lds + off + c];
}
