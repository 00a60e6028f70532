/* musicgen.c - the MusicGen decoder, delay pattern, guidance and generation
 * loop (SPEC-decoder). Nothing is allocated inside the step loop: the cache
 * and every scratch buffer come from mg_dec_state_init. */
#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bind.h"
#include "engine/mg.h"
#include "engine/kernels.h"
#include "engine/musicgen.h"
#include "engine/nn.h"

#define P "decoder.model.decoder."
#define LN_EPS 1e-5f

void mg_sinusoids(int n_pos, int dim, float *pe)
{
	int half = dim / 2;
	float c = (float)(-log(10000.0) / (half - 1));
	for (int i = 0; i < half; i++) {
		float f = (float)exp((double)((float)i * c));
		for (int p = 0; p < n_pos; p++) {
			float a = (float)p * f;
			pe[(size_t)p * dim + i] = (float)cos((double)a);
			pe[(size_t)p * dim + half + i] = (float)sin((double)a);
		}
	}
	if (dim % 2)
		for (int p = 0; p < n_pos; p++)
			pe[(size_t)p * dim + dim - 1] = 0.0f;
}

void mg_decoder_free(mg_decoder *d)
{
	if (d->layers) {
		for (int l = 0; l < d->c.num_layers; l++) {
			mg_dec_layer *L = &d->layers[l];
			free(L->ln_self_w), free(L->ln_self_b), free(L->ln_cross_w), free(L->ln_cross_b);
			free(L->ln_ff_w), free(L->ln_ff_b);
			mg_mat *m[] = {&L->qkv, &L->o, &L->cq, &L->ck, &L->cv, &L->co, &L->fc1, &L->fc2};
			for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
				mg_mat_free(m[i]);
		}
		free(d->layers);
	}
	if (d->heads) {
		for (int k = 0; k < d->c.num_codebooks; k++)
			mg_mat_free(&d->heads[k]);
		free(d->heads);
	}
	free(d->embed);
	free(d->pos);
	free(d->ln_w);
	free(d->ln_b);
	mg_mat_free(&d->proj);
	free(d->proj_b);
	memset(d, 0, sizeof *d);
}

static int bind_ln(const st_set *st, float **w, float **b, int D, char *err, size_t errlen, const char *name, int l)
{
	char n[MG_BIND_NAME];
	if (l >= 0)
		snprintf(n, sizeof n, P "layers.%d.%s", l, name);
	else
		snprintf(n, sizeof n, P "%s", name);
	return mg_bind_vec(st, w, D, err, errlen, "%s.weight", n) || mg_bind_vec(st, b, D, err, errlen, "%s.bias", n);
}

/* Layer l's self-attention q, k and v projections stacked into one matrix. */
static int bind_qkv(const st_set *st, mg_mat *m, int D, int fmt, char *err, size_t errlen, int l)
{
	char names[3][MG_BIND_NAME];
	const char *const parts[3] = {names[0], names[1], names[2]}, *proj = "qkv";
	for (int i = 0; i < 3; i++)
		snprintf(names[i], sizeof names[i], P "layers.%d.self_attn.%c_proj.weight", l, proj[i]);
	return mg_bind_mat_stack(st, m, 3, parts, D, D, fmt, err, errlen);
}

int mg_decoder_init_config(mg_decoder *d, const st_set *st, const mg_config *cfg, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	d->c = cfg->dec;
	int V = d->c.vocab_size;
	d->text_dim = cfg->t5.d_model;
	/* HF starts every row with generation_config.decoder_start_token_id and
	 * pads the delay pattern with its pad_token_id; both index the extra
	 * embedding row(s), so they must lie in 0..vocab_size. */
	d->start_id = cfg->gen.decoder_start_token_id;
	d->pad_id = cfg->gen.pad_token_id;
	if (d->start_id < 0 || d->start_id > V || d->pad_id < 0 || d->pad_id > V) {
		snprintf(err, errlen,
		         "generation_config.json: decoder_start_token_id %d / pad_token_id %d must be in 0..%d "
		         "(decoder.vocab_size)",
		         d->start_id, d->pad_id, V);
		return -1;
	}
	/* The window: max_position_embeddings, or a shorter stored table. */
	d->n_pos = d->c.max_positions;
	const st_tensor *pt = st_find(st, P "embed_positions.weights");
	if (pt && pt->ndim == 2 && pt->shape[0] < d->n_pos)
		d->n_pos = (int)pt->shape[0];
	return 0;
}

int mg_decoder_bind(mg_decoder *d, const st_set *st, const mg_config *cfg, int fmt, char *err, size_t errlen)
{
	if (mg_decoder_init_config(d, st, cfg, err, errlen))
		return -1;
	const mg_decoder_config *c = &d->c;
	int D = c->hidden_size, F = c->ffn_dim, K = c->num_codebooks, V = c->vocab_size;
	/* Reduced-precision weights get a reduced-precision KV cache too (half
	 * way through a 10 s take it is a fifth of what a step reads in halves):
	 * f16 with f16 weights, q8 with q8 weights. f32 keeps a float32 cache
	 * (exact parity). */
	d->kv_fmt = fmt == MG_WEIGHTS_Q8 ? MG_KV_Q8 : fmt == MG_WEIGHTS_F16 ? MG_KV_F16 : MG_KV_F32;
	/* The text's keys and values: halves with either (1% of a q8 step in
	 * q8; its greedy agreement on small-shaped random weights fell by
	 * 0.9 points with them). */
	d->xkv_fmt = d->kv_fmt == MG_KV_F32 ? MG_KV_F32 : MG_KV_F16;
	d->has_proj = cfg->has_enc_to_dec_proj || st_find(st, "enc_to_dec_proj.weight") != NULL;
	if (d->has_proj) {
		if (mg_bind_mat(st, &d->proj, D, d->text_dim, fmt, err, errlen, "enc_to_dec_proj.weight") ||
		    mg_bind_vec(st, &d->proj_b, D, err, errlen, "enc_to_dec_proj.bias"))
			goto fail;
	}
	d->embed = calloc((size_t)K, sizeof *d->embed);
	d->heads = calloc((size_t)K, sizeof *d->heads);
	d->layers = calloc((size_t)c->num_layers, sizeof *d->layers);
	if (!d->embed || !d->heads || !d->layers) {
		snprintf(err, errlen, "out of memory binding the decoder");
		goto fail;
	}
	for (int k = 0; k < K; k++) {
		char n[MG_BIND_NAME];
		int64_t es[2] = {V + 1, D};
		snprintf(n, sizeof n, P "embed_tokens.%d.weight", k);
		if (!(d->embed[k] = mg_bind_tensor(st, n, 2, es, err, errlen)) || st_check_finite(d->embed[k], err, errlen))
			goto fail;
		/* With q8 the heads stay f16: their rounding goes straight into the
		 * logits, and they are 2% of the bytes of a step (docs/PERFORMANCE.md). */
		if (mg_bind_mat(st, &d->heads[k], V, D, fmt == MG_WEIGHTS_Q8 ? MG_WEIGHTS_F16 : fmt, err, errlen,
		                "decoder.lm_heads.%d.weight", k))
			goto fail;
	}
	/* Positions: the stored table when the checkpoint has one (bit-identical
	 * to what HF computes), else computed as SPEC-decoder §3 says. */
	if (st_find(st, P "embed_positions.weights")) {
		int64_t ps[2] = {-1, D};
		if (mg_bind_f32(st, &d->pos, 2, ps, err, errlen, P "embed_positions.weights"))
			goto fail;
	} else {
		d->pos = malloc((size_t)d->n_pos * D * sizeof(float));
		if (!d->pos) {
			snprintf(err, errlen, "out of memory for the position table");
			goto fail;
		}
		mg_sinusoids(d->n_pos, D, d->pos);
	}
	for (int l = 0; l < c->num_layers; l++) {
		mg_dec_layer *L = &d->layers[l];
		if (bind_ln(st, &L->ln_self_w, &L->ln_self_b, D, err, errlen, "self_attn_layer_norm", l) ||
		    bind_ln(st, &L->ln_cross_w, &L->ln_cross_b, D, err, errlen, "encoder_attn_layer_norm", l) ||
		    bind_ln(st, &L->ln_ff_w, &L->ln_ff_b, D, err, errlen, "final_layer_norm", l) ||
		    bind_qkv(st, &L->qkv, D, fmt, err, errlen, l) ||
		    mg_bind_mat(st, &L->o, D, D, fmt, err, errlen, P "layers.%d.self_attn.out_proj.weight", l) ||
		    mg_bind_mat(st, &L->cq, D, D, fmt, err, errlen, P "layers.%d.encoder_attn.q_proj.weight", l) ||
		    mg_bind_mat(st, &L->ck, D, D, fmt, err, errlen, P "layers.%d.encoder_attn.k_proj.weight", l) ||
		    mg_bind_mat(st, &L->cv, D, D, fmt, err, errlen, P "layers.%d.encoder_attn.v_proj.weight", l) ||
		    mg_bind_mat(st, &L->co, D, D, fmt, err, errlen, P "layers.%d.encoder_attn.out_proj.weight", l) ||
		    mg_bind_mat(st, &L->fc1, F, D, fmt, err, errlen, P "layers.%d.fc1.weight", l) ||
		    mg_bind_mat(st, &L->fc2, D, F, fmt, err, errlen, P "layers.%d.fc2.weight", l))
			goto fail;
	}
	if (bind_ln(st, &d->ln_w, &d->ln_b, D, err, errlen, "layer_norm", -1))
		goto fail;
	return 0;
fail:
	mg_decoder_free(d);
	return -1;
}

void mg_decoder_project(const mg_decoder *d, mg_pool *pool, const float *h, const int32_t *mask, int N, int S,
                        float *enc)
{
	int D = d->c.hidden_size, n = N * S;
	if (d->has_proj)
		mg_linear(pool, &d->proj, d->proj_b, h, n, enc);
	else
		memcpy(enc, h, (size_t)n * D * sizeof(float));
	/* Multiplied, not skipped: 0 * (0 + bias) is what HF feeds for masked rows. */
	for (int i = 0; i < n; i++) {
		float m = (float)mask[i];
		for (int j = 0; j < D; j++)
			enc[(size_t)i * D + j] *= m;
	}
}

void mg_dec_state_free(mg_dec_state *s)
{
	mg_big_free(s->kc, s->cache_bytes), mg_big_free(s->vc, s->cache_bytes);
	free(s->row16), free(s->xk), free(s->xv), free(s->xn), free(s->xt);
	free(s->x), free(s->h), free(s->q), free(s->qkv), free(s->a), free(s->y), free(s->f), free(s->lt);
	free(s->scratch);
	memset(s, 0, sizeof *s);
}

static float *falloc(size_t n, int *bad)
{
	float *p = malloc((n ? n : 1) * sizeof(float));
	if (!p)
		*bad = 1;
	return p;
}

int mg_dec_state_init(mg_dec_state *s, const mg_decoder *d, int nth, int N, int S, int max_len, int max_cols,
                      char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	const mg_decoder_config *c = &d->c;
	size_t D = (size_t)c->hidden_size, Lyr = (size_t)c->num_layers;
	if (N < 1 || S < 1 || max_len < 1 || max_cols < 1 || max_cols > max_len || nth < 1) {
		snprintf(err, errlen, "decoder: invalid state size (%d rows, %d text positions, %d positions)", N, S,
		         max_len);
		return -1;
	}
	if (max_len > d->n_pos) {
		snprintf(err, errlen, "decoder: %d positions exceed the model's window of %d", max_len, d->n_pos);
		return -1;
	}
	s->N = N, s->S = S, s->max_len = max_len, s->max_cols = max_cols, s->nth = nth;
	size_t rows = (size_t)N * max_cols;
	int bad = 0;
	s->cap = (max_len + MG_KV_BLOCK - 1) / MG_KV_BLOCK * MG_KV_BLOCK;
	/* Zeroed: a block's positions past the keys in use are read (and
	 * their scores dropped), so they must hold numbers. */
	s->cache_bytes = (size_t)Lyr * N * c->num_heads * mg_kv_head_bytes(d->kv_fmt, s->cap, c->head_dim);
	s->kc = mg_big_alloc(s->cache_bytes);
	s->vc = mg_big_alloc(s->cache_bytes);
	s->row16 = malloc((size_t)c->head_dim * sizeof(uint16_t));
	bad |= !s->kc || !s->vc || !s->row16;
	s->xcap = (S + MG_KV_BLOCK - 1) / MG_KV_BLOCK * MG_KV_BLOCK;
	s->xbytes = (size_t)Lyr * N * c->num_heads * mg_kv_head_bytes(d->xkv_fmt, s->xcap, c->head_dim);
	s->xk = malloc(s->xbytes);
	s->xv = malloc(s->xbytes);
	bad |= !s->xk || !s->xv;
	s->xt = falloc((size_t)2 * N * S * D, &bad);
	s->xn = malloc((size_t)N * sizeof(int));
	bad |= !s->xn;
	s->x = falloc(rows * D, &bad);
	s->h = falloc(rows * D, &bad);
	s->q = falloc(rows * D, &bad);
	s->qkv = falloc(rows * 3 * D, &bad);
	s->a = falloc(rows * D, &bad);
	s->y = falloc(rows * D, &bad);
	s->f = falloc(rows * (size_t)c->ffn_dim, &bad);
	s->lt = falloc(rows * (size_t)c->vocab_size, &bad);
	s->scratch = falloc((size_t)nth * mg_attn_scratch(max_len > S ? max_len : S, c->head_dim, c->num_heads), &bad);
	if (bad) {
		mg_dec_state_free(s);
		snprintf(err, errlen, "decoder: out of memory for the KV cache of %d rows x %d positions", N, max_len);
		return -1;
	}
	return 0;
}

/* One row's key k and value v (hidden = H heads of hd) at position p of
 * its cache, which starts at kc / vc (nn.h: the H heads side by side in
 * each block). */
static void store_row(void *kc, void *vc, int fmt, int H, int hd, int p, const float *k, const float *v, uint16_t *tmp)
{
	size_t blk = mg_kv_block_bytes(fmt, hd);
	for (int h = 0; h < H; h++)
		mg_kv_store((char *)kc + (size_t)h * blk, (char *)vc + (size_t)h * blk, (size_t)H * blk, fmt, p, hd,
		            k + (size_t)h * hd, v + (size_t)h * hd, tmp);
}

void mg_dec_set_cross(const mg_decoder *d, mg_pool *pool, mg_dec_state *s, const float *enc, const int32_t *mask)
{
	int D = d->c.hidden_size, H = d->c.num_heads, hd = d->c.head_dim, N = s->N, S = s->S, n = N * S;
	size_t head = mg_kv_head_bytes(d->xkv_fmt, s->xcap, hd), layer = (size_t)N * H * head;
	float *kt = s->xt, *vt = s->xt + (size_t)n * D;
	for (int nn = 0; nn < N; nn++) {
		s->xn[nn] = 0;
		for (int j = 0; j < S; j++)
			s->xn[nn] += mask[(size_t)nn * S + j] != 0;
	}
	/* Zeroed first: a key block's lanes past xn are read (their scores
	 * dropped), so they must hold numbers. */
	memset(s->xk, 0, s->xbytes);
	memset(s->xv, 0, s->xbytes);
	for (int l = 0; l < d->c.num_layers; l++) {
		mg_linear(pool, &d->layers[l].ck, NULL, enc, n, kt);
		mg_linear(pool, &d->layers[l].cv, NULL, enc, n, vt);
		for (int nn = 0; nn < N; nn++)
			for (int j = 0, p = 0; j < S; j++) {
				if (!mask[(size_t)nn * S + j])
					continue;
				size_t row = ((size_t)nn * S + j) * D, at = l * layer + (size_t)nn * H * head;
				store_row((char *)s->xk + at, (char *)s->xv + at, d->xkv_fmt, H, hd, p++, kt + row, vt + row, s->row16);
			}
	}
	s->past = 0;
}

static void add(float *x, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] += y[i];
}

/* The keys and values of T new positions (in s->qkv: N * T rows) into
 * layer l's cache. */
static void store_kv(const mg_decoder *d, mg_dec_state *s, int l, int T)
{
	int D = d->c.hidden_size, H = d->c.num_heads, hd = d->c.head_dim;
	size_t head = mg_kv_head_bytes(d->kv_fmt, s->cap, hd), layer = (size_t)s->N * H * head;
	for (int nn = 0; nn < s->N; nn++)
		for (int t = 0; t < T; t++) {
			size_t row = ((size_t)nn * T + t) * 3 * D, at = l * layer + (size_t)nn * H * head;
			store_row((char *)s->kc + at, (char *)s->vc + at, d->kv_fmt, H, hd, s->past + t,
			          s->qkv + row + D, s->qkv + row + 2 * D, s->row16);
		}
}

int mg_dec_forward(const mg_decoder *d, mg_pool *pool, mg_dec_state *s, const int32_t *ids, int T, float *logits,
                   float *hidden, char *err, size_t errlen)
{
	const mg_decoder_config *c = &d->c;
	int D = c->hidden_size, K = c->num_codebooks, V = c->vocab_size, N = s->N, H = c->num_heads;
	int n = N * T;
	size_t nx = (size_t)n * D;
	if (T < 1 || T > s->max_cols || s->past + T > s->max_len) {
		snprintf(err, errlen, "decoder: %d new positions after %d do not fit the window of %d", T, s->past,
		         s->max_len);
		return -1;
	}
	for (int i = 0; i < N * K * T; i++)
		if (ids[i] < 0 || ids[i] > V) {
			snprintf(err, errlen, "decoder: code %d is outside 0..%d", ids[i], V);
			return -1;
		}
	/* Embeddings: the K codebook rows summed left to right, then the position. */
	float *row = s->y;
	for (int nn = 0; nn < N; nn++)
		for (int t = 0; t < T; t++) {
			float *x = s->x + ((size_t)nn * T + t) * D;
			for (int k = 0; k < K; k++) {
				int id = ids[((size_t)nn * K + k) * T + t];
				if (k == 0) {
					mg_bind_row(d->embed[0], id, x);
					continue;
				}
				mg_bind_row(d->embed[k], id, row);
				add(x, row, (size_t)D);
			}
			add(x, d->pos + (size_t)(s->past + t) * D, (size_t)D);
		}
	int hd = c->head_dim;
	size_t layer = (size_t)N * H * mg_kv_head_bytes(d->kv_fmt, s->cap, hd);
	mg_attn self = {
		.n_seq = N, .q_per_seq = T, .n_heads = H, .head_dim = hd,
		.q = s->qkv, .q_stride = 3 * D, .kv_cap = s->cap,
		.causal = 1, .past = s->past, .scale = (float)pow((double)hd, -0.5),
		.out = s->a, .out_stride = D, .scratch = s->scratch, .max_keys = s->max_len > s->S ? s->max_len : s->S,
		.kv_fmt = d->kv_fmt,
	};
	mg_attn cross = self;
	cross.q = s->q;
	cross.q_stride = D;
	cross.kv_cap = s->xcap;
	cross.kv_fmt = d->xkv_fmt;
	cross.new_k = cross.new_v = NULL;
	cross.causal = 0;
	cross.past = 0;
	cross.n_keys = s->S;
	cross.seq_keys = s->xn;
	size_t xlayer = (size_t)N * H * mg_kv_head_bytes(d->xkv_fmt, s->xcap, hd);
	for (int l = 0; l < c->num_layers; l++) {
		const mg_dec_layer *L = &d->layers[l];
		if (hidden)
			memcpy(hidden + (size_t)l * nx, s->x, nx * sizeof(float));
		/* Causal self-attention; the new keys/values join the cache first. */
		mg_layer_norm(s->x, L->ln_self_w, L->ln_self_b, LN_EPS, n, D, s->h);
		mg_linear(pool, &L->qkv, NULL, s->h, n, s->qkv);
		/* One new position: each (row, head) of the attention stores its
		 * key and value itself, just before it reads that cache block.
		 * Several: stored here first (they see each other's keys). */
		if (T > 1)
			store_kv(d, s, l, T);
		self.cache_k = (char *)s->kc + l * layer;
		self.cache_v = (char *)s->vc + l * layer;
		if (T == 1) {
			self.new_k = s->qkv + D;
			self.new_v = s->qkv + 2 * D;
			self.new_stride = 3 * D;
		}
		mg_attention(pool, &self);
		mg_linear(pool, &L->o, NULL, s->a, n, s->y);
		add(s->x, s->y, nx);
		/* Cross-attention over the text states. */
		mg_layer_norm(s->x, L->ln_cross_w, L->ln_cross_b, LN_EPS, n, D, s->h);
		mg_linear(pool, &L->cq, NULL, s->h, n, s->q);
		cross.cache_k = (char *)s->xk + l * xlayer;
		cross.cache_v = (char *)s->xv + l * xlayer;
		mg_attention(pool, &cross);
		mg_linear(pool, &L->co, NULL, s->a, n, s->y);
		add(s->x, s->y, nx);
		/* Feed-forward. */
		mg_layer_norm(s->x, L->ln_ff_w, L->ln_ff_b, LN_EPS, n, D, s->h);
		mg_linear_act(pool, &L->fc1, NULL, s->h, n, s->f, mg_kernels_active()->gelu);
		mg_linear(pool, &L->fc2, NULL, s->f, n, s->y);
		add(s->x, s->y, nx);
	}
	mg_layer_norm(s->x, d->ln_w, d->ln_b, LN_EPS, n, D, s->h);
	if (hidden)
		memcpy(hidden + (size_t)c->num_layers * nx, s->h, nx * sizeof(float));
	for (int k = 0; k < K; k++) {
		mg_linear(pool, &d->heads[k], NULL, s->h, n, s->lt);
		for (int nn = 0; nn < N; nn++)
			memcpy(logits + (((size_t)nn * K + k) * T) * V, s->lt + (size_t)nn * T * V,
			       (size_t)T * V * sizeof(float));
	}
	s->past += T;
	if (!mg_all_finite(logits, (size_t)N * K * T * V)) {
		snprintf(err, errlen, "decoder: the logits hold NaN or infinite values (damaged weights?)");
		return -1;
	}
	return 0;
}

void mg_delay_pattern(const int32_t *seq0, int B, int K, int channels, int L0, int L, int pad, int32_t *pattern,
                      int *first)
{
	int Kc = K / channels;
	size_t n = (size_t)B * K * L;
	for (size_t i = 0; i < n; i++)
		pattern[i] = -1;
	if (L < 2 * Kc - 1) { /* too short for a delay: nothing forced */
		*first = L0;
		return;
	}
	int fst = L;
	for (int b = 0; b < B; b++)
		for (int k = 0; k < K; k++) {
			int c = k / channels; /* stereo: rows 2c and 2c+1 share delay c */
			int32_t *p = pattern + ((size_t)b * K + k) * L;
			for (int j = 0; j < L0 && c + j < L; j++)
				p[c + j] = seq0[((size_t)b * K + k) * L0 + j];
			for (int j = 0; j < L; j++)
				if (j <= c || j >= L - Kc + 1 + c)
					p[j] = pad;
			if (k == 0) {
				int j = 0;
				while (j < L && p[j] != -1)
					j++;
				if (j < fst)
					fst = j;
			}
		}
	*first = fst < L ? fst : L0;
}

int mg_frames_for_steps(int steps, int K, int channels)
{
	int Kc = K / channels, L = steps + 1;
	return L < 2 * Kc - 1 ? L - 1 : L - Kc;
}

int mg_steps_for_frames(int frames, int K, int channels)
{
	return frames + K / channels - 1;
}

/* Column of the de-delayed frame f of codebook k (delay pattern in use or not). */
static int frame_col(int f, int k, int channels, int delayed)
{
	return delayed ? f + k / channels + 1 : f + 1;
}

/* The CPU decoder as a stepper: rows doubled for guidance, forward, combine. */
struct cpu_stepper {
	const mg_decoder *d;
	mg_pool *pool;
	mg_dec_state st;
	int B, cfg;
	float guidance;
	int32_t *feed;               /* [N][K][max T] */
	float *logits;               /* [N*K][max T][V] */
};

static int cpu_step(void *ctx, const int32_t *ids, int T, float *scores, char *err, size_t errlen)
{
	struct cpu_stepper *c = ctx;
	int K = c->d->c.num_codebooks, V = c->d->c.vocab_size, B = c->B;
	size_t per = (size_t)B * K * T;
	memcpy(c->feed, ids, per * sizeof *ids);
	if (c->cfg)
		memcpy(c->feed + per, ids, per * sizeof *ids);
	if (mg_dec_forward(c->d, c->pool, &c->st, c->feed, T, c->logits, NULL, err, errlen))
		return -1;
	for (int r = 0; r < B * K; r++) {
		const float *cz = c->logits + ((size_t)r * T + T - 1) * V;
		if (c->cfg)
			mg_cfg_combine(cz, c->logits + ((size_t)(B * K + r) * T + T - 1) * V, c->guidance, (size_t)V,
			               scores + (size_t)r * V);
		else
			memcpy(scores + (size_t)r * V, cz, (size_t)V * sizeof(float));
	}
	return 0;
}

static void cpu_stepper_free(struct cpu_stepper *c)
{
	mg_dec_state_free(&c->st);
	free(c->feed);
	free(c->logits);
}

/* Conditioning: the takes' states, then (guidance) as many null rows of
 * zeros with a zero mask; unconditional: one zero position, zero mask. */
static int cpu_stepper_init(struct cpu_stepper *c, const mg_decoder *d, mg_pool *pool, const mg_gen_request *r,
                            int L, int first, char *err, size_t errlen)
{
	int K = d->c.num_codebooks, V = d->c.vocab_size, D = d->c.hidden_size, B = r->B;
	memset(c, 0, sizeof *c);
	c->d = d;
	c->pool = pool;
	c->B = B;
	c->cfg = r->enc && r->guidance > 1.0f;
	c->guidance = r->guidance;
	int N = c->cfg ? 2 * B : B, S = r->enc ? r->S : 1;
	float *enc = calloc((size_t)N * S * D, sizeof *enc);
	int32_t *xmask = calloc((size_t)N * S, sizeof *xmask);
	c->feed = malloc((size_t)N * K * first * sizeof *c->feed);
	c->logits = malloc((size_t)N * K * first * V * sizeof *c->logits);
	if (!enc || !xmask || !c->feed || !c->logits) {
		free(enc), free(xmask);
		cpu_stepper_free(c);
		snprintf(err, errlen, "out of memory for %d takes", B);
		return -1;
	}
	if (r->enc) {
		memcpy(enc, r->enc, (size_t)B * S * D * sizeof(float));
		for (int i = 0; i < B * S; i++)
			xmask[i] = r->mask[i] != 0;
	}
	if (mg_dec_state_init(&c->st, d, mg_pool_size(pool), N, S, L, first, err, errlen)) {
		free(enc), free(xmask);
		cpu_stepper_free(c);
		return -1;
	}
	mg_dec_set_cross(d, pool, &c->st, enc, xmask);
	free(enc), free(xmask);
	return 0;
}

int mg_musicgen_generate(const mg_decoder *d, mg_pool *pool, const mg_gen_request *r, int32_t *codes,
                         char *err, size_t errlen)
{
	const mg_decoder_config *c = &d->c;
	int K = c->num_codebooks, V = c->vocab_size, ch = c->audio_channels, Kc = K / ch;
	int B = r->B, steps = r->steps, L = steps + 1;
	if (B < 1 || steps < 1) {
		snprintf(err, errlen, "nothing to generate (%d takes, %d steps)", B, steps);
		return MG_ERR_PARAM;
	}
	if (L > d->n_pos) {
		snprintf(err, errlen, "%d decoder positions exceed the model's window of %d (max_position_embeddings)", L,
		         d->n_pos);
		return MG_ERR_PARAM;
	}
	int delayed = L >= 2 * Kc - 1, F = mg_frames_for_steps(steps, K, ch);
	int32_t *seq0 = malloc((size_t)B * K * sizeof *seq0), *pattern = malloc((size_t)B * K * L * sizeof *pattern);
	int32_t *seq = malloc((size_t)B * K * L * sizeof *seq), *next = malloc((size_t)K * sizeof *next);
	int32_t *frame = malloc((size_t)B * K * sizeof *frame), *feed = NULL;
	float *scores = malloc((size_t)B * K * V * sizeof *scores);
	struct cpu_stepper cpu;
	int have_cpu = 0, rc = MG_ERR_NOMEM, first = 1;
	if (!seq0 || !pattern || !seq || !next || !frame || !scores) {
		snprintf(err, errlen, "out of memory for %d takes of %d steps", B, steps);
		goto out;
	}
	for (int i = 0; i < B * K; i++)
		seq0[i] = d->start_id;
	mg_delay_pattern(seq0, B, K, ch, 1, L, d->pad_id, pattern, &first);
	feed = malloc((size_t)B * K * first * sizeof *feed);
	if (!feed) {
		snprintf(err, errlen, "out of memory for %d takes of %d steps", B, steps);
		goto out;
	}
	mg_stepper stepper;
	if (r->stepper)
		stepper = *r->stepper;
	else {
		if (cpu_stepper_init(&cpu, d, pool, r, L, first, err, errlen))
			goto out;
		have_cpu = 1;
		stepper.ctx = &cpu;
		stepper.step = cpu_step;
	}
	for (int b = 0; b < B; b++)
		for (int k = 0; k < K; k++)
			for (int j = 0; j < first; j++) {
				int32_t pv = pattern[((size_t)b * K + k) * L + j];
				seq[((size_t)b * K + k) * L + j] = pv == -1 ? seq0[b * K + k] : pv;
			}
	int len = first, emitted = 0;
	for (int step = 0; step < steps && len < L; step++) {
		if (r->should_abort && r->should_abort(r->user_data)) {
			snprintf(err, errlen, "generation aborted at step %d of %d", step, steps);
			rc = MG_ERR_ABORTED;
			goto out;
		}
		/* The first call feeds every initial column, later ones the newest. */
		int T = step == 0 ? first : 1, col0 = len - T;
		for (int rr = 0; rr < B * K; rr++)
			for (int t = 0; t < T; t++)
				feed[(size_t)rr * T + t] = seq[(size_t)rr * L + col0 + t];
		if (stepper.step(stepper.ctx, feed, T, scores, err, errlen)) {
			rc = MG_ERR_BACKEND;
			goto out;
		}
		if (r->scores_out)
			memcpy(r->scores_out + (size_t)step * B * K * V, scores, (size_t)B * K * V * sizeof(float));
		for (int b = 0; b < B; b++) {
			float *sc = scores + (size_t)b * K * V;
			if (r->choose) {
				if (r->choose(r->choose_ctx, b, sc, K, V, next)) {
					snprintf(err, errlen, "token choice failed at step %d", step);
					rc = MG_ERR_BACKEND;
					goto out;
				}
			} else
				for (int k = 0; k < K; k++)
					next[k] = mg_argmax(sc + (size_t)k * V, V);
			for (int k = 0; k < K; k++) {
				int32_t pv = pattern[((size_t)b * K + k) * L + len];
				seq[((size_t)b * K + k) * L + len] = pv == -1 ? next[k] : pv;
			}
		}
		len++;
		if (r->on_progress)
			r->on_progress(step + 1, steps, r->user_data);
		/* Frames whose last column is now known, for every take at once. */
		for (; emitted < F && frame_col(emitted, K - 1, ch, delayed) <= len - 1; emitted++) {
			for (int b = 0; b < B; b++)
				for (int k = 0; k < K; k++)
					frame[b * K + k] = seq[((size_t)b * K + k) * L + frame_col(emitted, k, ch, delayed)];
			if (r->on_frame)
				r->on_frame(emitted, frame, B, K, r->user_data);
		}
	}
	for (int b = 0; b < B; b++)
		for (int k = 0; k < K; k++)
			for (int f = 0; f < F; f++)
				codes[((size_t)b * K + k) * F + f] = seq[((size_t)b * K + k) * L + frame_col(f, k, ch, delayed)];
	rc = MG_OK;
out:
	if (have_cpu)
		cpu_stepper_free(&cpu);
	free(seq0), free(pattern), free(seq), free(next), free(frame), free(scores), free(feed);
	return rc;
}
