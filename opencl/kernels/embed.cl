/* embed.cl - token embeddings, masks and the logits path of one decoder step. */

/* Decoder input: out[n*Tq + t, :] = sum_k E_k[ids[n, k, t]] + pos[past + t].
 * tables [K, V1, D] (the K embedding matrices stacked), pos [P, D]. */
__kernel void embed_sum(__global const int *ids, __global const float *tables, __global const float *pos,
                        __global float *out, int K, int V1, int D, int Tq, int past)
{
	int d = get_global_id(0), t = get_global_id(1), n = get_global_id(2);
	if (d >= D || t >= Tq)
		return;
	float e = tables[(size_t)ids[((size_t)n * K) * Tq + t] * D + d];
	for (int k = 1; k < K; k++)
		e = e + tables[((size_t)k * V1 + ids[((size_t)n * K + k) * Tq + t]) * D + d];
	out[((size_t)n * Tq + t) * D + d] = e + pos[(size_t)(past + t) * D + d];
}

/* out[r, :] = table[ids[r], :] */
__kernel void embed_rows(__global const int *ids, __global const float *table, __global float *out, int D)
{
	int d = get_global_id(0), r = get_global_id(1);
	if (d < D)
		out[(size_t)r * D + d] = table[(size_t)ids[r] * D + d];
}

/* y[r, :] *= mask[r] (the projected text states of padded positions become 0). */
__kernel void rows_mask(__global float *y, __global const float *mask, int cols)
{
	int c = get_global_id(0), r = get_global_id(1);
	if (c < cols)
		y[(size_t)r * cols + c] = y[(size_t)r * cols + c] * mask[r];
}

/* Guidance and temperature on the last-position logits z [R or 2R, V]:
 * out = uncond + (cond - uncond) * g (rows r and R + r) when has_cfg, then
 * divided by temp when temp != 1. */
__kernel void logits_process(__global const float *z, __global float *out, int R, int V, int has_cfg,
                             float g, float temp)
{
	int c = get_global_id(0), r = get_global_id(1);
	if (c >= V)
		return;
	float val = z[(size_t)r * V + c];
	if (has_cfg) {
		float u = z[((size_t)R + r) * V + c];
		val = u + (val - u) * g;
	}
	if (temp != 1.0f)
		val = val / temp;
	out[(size_t)r * V + c] = val;
}

/* Greedy choice: out[r] = argmax_c x[r, c], the lowest index among ties. */
__kernel void argmax_rows(__global const float *x, int cols, __global int *out,
                          __local float *sv, __local int *si)
{
	size_t row = get_group_id(0);
	uint l = get_local_id(0), n = get_local_size(0);
	__global const float *xr = x + row * cols;
	float best = -INFINITY;
	int bi = cols;
	for (int j = l; j < cols; j += n) {
		float v = xr[j];
		if (v > best || (bi == cols && v == best)) {
			best = v;
			bi = j;
		}
	}
	sv[l] = best;
	si[l] = bi;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint h = n / 2; h > 0; h >>= 1) {
		if (l < h) {
			float v = sv[l + h];
			int vi = si[l + h];
			if (v > sv[l] || (v == sv[l] && vi < si[l])) {
				sv[l] = v;
				si[l] = vi;
			}
		}
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (l == 0)
		out[row] = si[0] < cols ? si[0] : 0;
}
