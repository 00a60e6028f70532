/* t5.c - the T5 encoder (SPEC-t5): embedding lookup without scaling, blocks
 * of pre-RMS-norm self-attention with a relative position bias shared by all
 * blocks and a ReLU (or gated) feed-forward, then a final RMS norm. */
#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bind.h"
#include "engine/nn.h"
#include "engine/t5.h"

#define P "text_encoder.encoder."

int mg_t5_bucket(int rel, int num_buckets, int max_distance)
{
	/* HF T5Attention._relative_position_bucket, bidirectional. */
	int nb = num_buckets / 2, b = rel > 0 ? nb : 0, n = rel < 0 ? -rel : rel;
	int max_exact = nb / 2;
	if (n < max_exact)
		return b + n;
	/* HF evaluates log(n / max_exact) / log(max_distance / max_exact) * (nb - max_exact)
	 * in float32 and truncates. Exact boundaries (n a power of the ratio, where the
	 * true value is an integer) are exact in float32 too; evaluating in double and
	 * snapping those keeps the table of SPEC-t5 §3 free of rounding surprises. */
	double v = log((double)n / max_exact) / log((double)max_distance / max_exact) * (nb - max_exact);
	double r = floor(v + 0.5);
	long iv = fabs(v - r) < 1e-9 ? (long)r : (long)v;
	long bucket = max_exact + iv;
	if (bucket > nb - 1)
		bucket = nb - 1;
	return b + (int)bucket;
}

void mg_t5_free(mg_t5 *t)
{
	if (t->layers) {
		for (int l = 0; l < t->c.num_layers; l++) {
			mg_t5_layer *L = &t->layers[l];
			free(L->ln_attn);
			free(L->ln_ff);
			mg_mat_free(&L->q);
			mg_mat_free(&L->k);
			mg_mat_free(&L->v);
			mg_mat_free(&L->o);
			mg_mat_free(&L->wi);
			mg_mat_free(&L->wi1);
			mg_mat_free(&L->wo);
		}
		free(t->layers);
	}
	free(t->rel_bias);
	free(t->ln_final);
	memset(t, 0, sizeof *t);
}

int mg_t5_bind(mg_t5 *t, const st_set *st, const mg_t5_config *c, int fmt, char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	t->c = *c;
	t->inner = c->num_heads * c->d_kv;
	int D = c->d_model, I = t->inner, F = c->d_ff;
	int64_t eshape[2] = {c->vocab_size, D};
	/* HF de-duplicates tied tensors: either name may be the one stored. The
	 * table may hold more rows than vocab_size (padded vocabularies). */
	const char *ename = st_find(st, "text_encoder.shared.weight") ? "text_encoder.shared.weight"
	                                                              : P "embed_tokens.weight";
	eshape[0] = -1;
	t->embed = mg_bind_tensor(st, ename, 2, eshape, err, errlen);
	if (t->embed && st_check_finite(t->embed, err, errlen))
		goto fail;
	if (!t->embed) {
		if (!st_find(st, ename))
			snprintf(err, errlen, "the model weights have neither 'text_encoder.shared.weight' nor '"
			                      P "embed_tokens.weight'");
		goto fail;
	}
	if (t->embed->shape[0] < c->vocab_size) {
		snprintf(err, errlen, "%s: tensor '%s' has %lld rows, fewer than text_encoder.vocab_size %d",
		         t->embed->file, ename, (long long)t->embed->shape[0], c->vocab_size);
		goto fail;
	}
	int64_t rshape[2] = {c->num_buckets, c->num_heads};
	if (mg_bind_f32(st, &t->rel_bias, 2, rshape, err, errlen,
	                P "block.0.layer.0.SelfAttention.relative_attention_bias.weight"))
		goto fail;
	t->layers = calloc((size_t)c->num_layers, sizeof *t->layers);
	if (!t->layers) {
		snprintf(err, errlen, "out of memory binding the text encoder");
		goto fail;
	}
	for (int l = 0; l < c->num_layers; l++) {
		mg_t5_layer *L = &t->layers[l];
		if (mg_bind_vec(st, &L->ln_attn, D, err, errlen, P "block.%d.layer.0.layer_norm.weight", l) ||
		    mg_bind_vec(st, &L->ln_ff, D, err, errlen, P "block.%d.layer.1.layer_norm.weight", l) ||
		    mg_bind_mat(st, &L->q, I, D, fmt, err, errlen, P "block.%d.layer.0.SelfAttention.q.weight", l) ||
		    mg_bind_mat(st, &L->k, I, D, fmt, err, errlen, P "block.%d.layer.0.SelfAttention.k.weight", l) ||
		    mg_bind_mat(st, &L->v, I, D, fmt, err, errlen, P "block.%d.layer.0.SelfAttention.v.weight", l) ||
		    mg_bind_mat(st, &L->o, D, I, fmt, err, errlen, P "block.%d.layer.0.SelfAttention.o.weight", l) ||
		    mg_bind_mat(st, &L->wo, D, F, fmt, err, errlen, P "block.%d.layer.1.DenseReluDense.wo.weight", l))
			goto fail;
		if (c->gated) {
			if (mg_bind_mat(st, &L->wi, F, D, fmt, err, errlen, P "block.%d.layer.1.DenseReluDense.wi_0.weight",
			                l) ||
			    mg_bind_mat(st, &L->wi1, F, D, fmt, err, errlen,
			                P "block.%d.layer.1.DenseReluDense.wi_1.weight", l))
				goto fail;
		} else if (mg_bind_mat(st, &L->wi, F, D, fmt, err, errlen, P "block.%d.layer.1.DenseReluDense.wi.weight",
		                       l))
			goto fail;
	}
	if (mg_bind_vec(st, &t->ln_final, D, err, errlen, P "final_layer_norm.weight"))
		goto fail;
	return 0;
fail:
	mg_t5_free(t);
	return -1;
}

int mg_t5_encode(const mg_t5 *t, mg_pool *pool, const int32_t *ids, const int32_t *mask, int B, int S,
                 float *out, float *hidden, char *err, size_t errlen)
{
	const mg_t5_config *c = &t->c;
	int D = c->d_model, I = t->inner, F = c->d_ff, H = c->num_heads, n = B * S;
	if (B <= 0 || S <= 0) {
		snprintf(err, errlen, "text encoder: empty input (%d rows of %d tokens)", B, S);
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= c->vocab_size) {
			snprintf(err, errlen, "text encoder: token id %d is outside the vocabulary (0..%d)", ids[i],
			         c->vocab_size - 1);
			return -1;
		}
	size_t nx = (size_t)n * D, ni = (size_t)n * I, nf = (size_t)n * F;
	int nth = mg_pool_size(pool);
	float *x = malloc(nx * sizeof(float)), *h = malloc(nx * sizeof(float)), *y = malloc(nx * sizeof(float));
	float *q = malloc(ni * sizeof(float)), *k = malloc(ni * sizeof(float)), *v = malloc(ni * sizeof(float));
	float *a = malloc(ni * sizeof(float)), *f = malloc(nf * sizeof(float));
	float *g = c->gated ? malloc(nf * sizeof(float)) : NULL;
	float *pb = malloc((size_t)H * (2 * S - 1) * sizeof(float)), *scratch = malloc((size_t)nth * mg_attn_scratch(S, c->d_kv, H) * sizeof(float));
	int *imask = malloc((size_t)n * sizeof(int));
	int rc = -1;
	if (!x || !h || !y || !q || !k || !v || !a || !f || (c->gated && !g) || !pb || !scratch || !imask) {
		snprintf(err, errlen, "text encoder: out of memory for %d x %d tokens", B, S);
		goto out;
	}
	for (int i = 0; i < n; i++)
		imask[i] = mask[i] != 0;
	/* The relative position bias, by key - query offset, for every head. */
	for (int d = -(S - 1); d <= S - 1; d++) {
		int bucket = mg_t5_bucket(d, c->num_buckets, c->max_distance);
		for (int hh = 0; hh < H; hh++)
			pb[(size_t)hh * (2 * S - 1) + d + S - 1] = t->rel_bias[bucket * H + hh];
	}
	for (int i = 0; i < n; i++)
		mg_bind_row(t->embed, ids[i], x + (size_t)i * D);
	mg_attn at = {
		.n_seq = B, .q_per_seq = S, .n_heads = H, .head_dim = c->d_kv,
		.q = q, .q_stride = I, .k = k, .v = v, .kv_seq_stride = (size_t)S * I, .kv_stride = I,
		.causal = 0, .n_keys = S, .key_mask = imask, .pos_bias = pb, .scale = 1.0f,
		.out = a, .out_stride = I, .scratch = scratch, .max_keys = S,
	};
	for (int l = 0; l < c->num_layers; l++) {
		const mg_t5_layer *L = &t->layers[l];
		if (hidden)
			memcpy(hidden + (size_t)l * nx, x, nx * sizeof(float));
		mg_rms_norm(x, L->ln_attn, c->eps, n, D, h);
		mg_linear(pool, &L->q, NULL, h, n, q);
		mg_linear(pool, &L->k, NULL, h, n, k);
		mg_linear(pool, &L->v, NULL, h, n, v);
		mg_attention(pool, &at);
		mg_linear(pool, &L->o, NULL, a, n, y);
		for (size_t i = 0; i < nx; i++)
			x[i] += y[i];
		mg_rms_norm(x, L->ln_ff, c->eps, n, D, h);
		mg_linear(pool, &L->wi, NULL, h, n, f);
		if (c->gated) {
			if (c->act_gelu)
				mg_gelu_tanh(f, nf);
			else
				mg_relu(f, nf);
			mg_linear(pool, &L->wi1, NULL, h, n, g);
			for (size_t i = 0; i < nf; i++)
				f[i] *= g[i];
		} else
			mg_relu(f, nf);
		mg_linear(pool, &L->wo, NULL, f, n, y);
		for (size_t i = 0; i < nx; i++)
			x[i] += y[i];
	}
	mg_rms_norm(x, t->ln_final, c->eps, n, D, out);
	if (hidden)
		memcpy(hidden + (size_t)c->num_layers * nx, out, nx * sizeof(float));
	if (!mg_all_finite(out, nx)) {
		snprintf(err, errlen, "text encoder: the output holds NaN or infinite values (damaged weights?)");
		goto out;
	}
	rc = 0;
out:
	free(x), free(h), free(y), free(q), free(k), free(v), free(a), free(f), free(g), free(pb), free(scratch);
	free(imask);
	return rc;
}
