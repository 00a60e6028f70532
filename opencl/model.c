/* model.c - MusicGen on an OpenCL device: weight binding and upload, T5 +
 * projection, decoder step with KV caches, logits path, EnCodec decoder.
 * The maths follows SPEC-t5, SPEC-decoder and SPEC-encodec; each forward pass
 * below reads like the spec's pseudo-code, one device operation per line. */
#include "autoconfig.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opencl/model.h"
#include "opencl/ops.h"

#define MAX_LSTM 8

typedef struct t5_block {
	cl_mem ln0, qkv, o;       /* qkv: q, k, v stacked [3*inner, d_model] */
	cl_mem ln1, wi, wi1, wo;  /* wi1: gated FFN only */
} t5_block;

typedef struct dec_layer {
	cl_mem sa_ln_w, sa_ln_b, ca_ln_w, ca_ln_b, ff_ln_w, ff_ln_b;
	ocl_mat qkv, sa_o;                         /* qkv [3*D, D] */
	ocl_mat ca_q, ca_k, ca_v, ca_o;
	ocl_mat fc1, fc2;
	cl_mem kc, vc;                             /* self-attention cache [N, max_len, D] */
	cl_mem xk, xv;                             /* cross-attention keys/values [N, S, D] */
} dec_layer;

enum codec_kind { C_CONV, C_CONVT, C_ELU, C_RES, C_LSTM };

typedef struct conv_w {
	cl_mem w, b;
	int cin, cout, k, stride, dil;
} conv_w;

typedef struct codec_op {
	int kind;
	conv_w conv;             /* C_CONV, C_CONVT; C_RES: the first conv */
	conv_w conv2;            /* C_RES: the second conv */
	conv_w shortcut;         /* C_RES with use_conv_shortcut: a K1 conv on the skip path */
	int has_shortcut;
	int lstm_layers, dim;    /* C_LSTM */
	cl_mem wih[MAX_LSTM], whh[MAX_LSTM], bias[MAX_LSTM];
} codec_op;

struct ocl_model {
	ocl_ctx *c;
	mg_config cfg;
	size_t wbytes;
	ocl_traffic traffic;

	/* T5 and projection */
	cl_mem t5_embed, t5_rel, t5_final;
	t5_block *t5;
	cl_mem proj_w, proj_b;

	/* decoder */
	cl_mem emb, pos, final_w, final_b;
	ocl_mat heads;                             /* the K heads stacked [K*V, D] */
	int f16;                                   /* decoder matrices stored as half */
	int n_pos;
	dec_layer *dec;

	/* EnCodec decoder */
	cl_mem rvq;
	int rvq_n;
	codec_op *ops;
	int n_ops;

	/* conditioning and sequence state */
	int B, N, S, has_cfg;
	cl_mem enc, encmask;
	int max_len, past;

	/* decoder scratch, sized for rows = N * Tq */
	int cap_rows, cap_keys;
	cl_mem x, h, qkv, att, ff, scores, ids_in;
	cl_mem logits, proc, ids_out;
};

/* ---- weight binding ---------------------------------------------------- */

/* A float copy of tensor `name` with the expected shape (-1 = any), or NULL. */
static float *get_f32(const st_set *w, const char *name, int ndim, const int64_t *shape, int64_t *got_shape,
                      char *err, size_t errlen)
{
	const st_tensor *t = st_find(w, name);
	if (!t) {
		snprintf(err, errlen, "tensor '%s' is missing from the checkpoint", name);
		return NULL;
	}
	if (t->ndim != ndim) {
		snprintf(err, errlen, "%s: tensor '%s' has %d dimensions, expected %d", t->file, name, t->ndim, ndim);
		return NULL;
	}
	for (int i = 0; i < ndim; i++) {
		if (shape && shape[i] >= 0 && t->shape[i] != shape[i]) {
			snprintf(err, errlen, "%s: tensor '%s' dimension %d is %lld, expected %lld (from config.json)",
			         t->file, name, i, (long long)t->shape[i], (long long)shape[i]);
			return NULL;
		}
		if (got_shape)
			got_shape[i] = t->shape[i];
	}
	float *p = malloc((size_t)t->numel * sizeof(float) + 4);
	if (!p) {
		snprintf(err, errlen, "out of memory reading '%s'", name);
		return NULL;
	}
	if (st_to_f32(t, p, err, errlen)) {
		free(p);
		return NULL;
	}
	return p;
}

static cl_mem upload(ocl_model *m, const float *p, size_t n, const char *what, char *err, size_t errlen)
{
	cl_mem b = ocl_buf_from(m->c, p, n * sizeof(float), what, err, errlen);
	if (b) {
		m->wbytes += n * sizeof(float);
		m->traffic.writes++;
		m->traffic.write_bytes += (long long)(n * sizeof(float));
	}
	return b;
}

/* Uploads tensor `fmt...` of shape [d0] or [d0, d1]. */
static cl_mem bind(ocl_model *m, const st_set *w, int64_t d0, int64_t d1, char *err, size_t errlen,
                   const char *fmt, ...)
{
	char name[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	int64_t shape[2] = {d0, d1};
	float *p = get_f32(w, name, d1 < 0 ? 1 : 2, shape, NULL, err, errlen);
	if (!p)
		return NULL;
	cl_mem b = upload(m, p, (size_t)d0 * (size_t)(d1 < 0 ? 1 : d1), name, err, errlen);
	free(p);
	return b;
}

/* Uploads several [rows_i, cols] tensors stacked along rows as one matrix. */
static cl_mem bind_stacked(ocl_model *m, const st_set *w, int n, const char *const *names, int64_t rows,
                           int64_t cols, char *err, size_t errlen)
{
	size_t one = (size_t)rows * (size_t)cols;
	float *all = malloc(one * (size_t)n * sizeof(float) + 4);
	if (!all) {
		snprintf(err, errlen, "out of memory stacking '%s'", names[0]);
		return NULL;
	}
	int64_t shape[2] = {rows, cols};
	for (int i = 0; i < n; i++) {
		float *p = get_f32(w, names[i], 2, shape, NULL, err, errlen);
		if (!p) {
			free(all);
			return NULL;
		}
		memcpy(all + one * (size_t)i, p, one * sizeof(float));
		free(p);
	}
	cl_mem b = upload(m, all, one * (size_t)n, names[0], err, errlen);
	free(all);
	return b;
}

/* A decoder matrix: n tensors [rows, cols] stacked, float32 or half. */
static int bind_mat(ocl_model *m, const st_set *w, int n, const char *const *names, int64_t rows, int64_t cols,
                    ocl_mat *out, char *err, size_t errlen)
{
	size_t one = (size_t)rows * (size_t)cols;
	float *all = malloc(one * (size_t)n * sizeof(float) + 4);
	int64_t shape[2] = {rows, cols};
	out->rows = (int)rows * n;
	out->cols = (int)cols;
	out->f16 = m->f16;
	if (!all) {
		snprintf(err, errlen, "out of memory reading '%s'", names[0]);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		float *p = get_f32(w, names[i], 2, shape, NULL, err, errlen);
		if (!p) {
			free(all);
			return -1;
		}
		memcpy(all + one * (size_t)i, p, one * sizeof(float));
		free(p);
	}
	if (m->f16) {
		uint16_t *h = malloc(one * (size_t)n * sizeof *h + 2);
		if (!h) {
			free(all);
			snprintf(err, errlen, "out of memory converting '%s' to half", names[0]);
			return -1;
		}
		for (size_t i = 0; i < one * (size_t)n; i++)
			h[i] = st_f32_to_f16(all[i]);
		out->m = ocl_buf_from(m->c, h, one * (size_t)n * 2, names[0], err, errlen);
		free(h);
		if (out->m) {
			m->wbytes += one * (size_t)n * 2;
			m->traffic.writes++;
			m->traffic.write_bytes += (long long)(one * (size_t)n * 2);
		}
	} else
		out->m = upload(m, all, one * (size_t)n, names[0], err, errlen);
	free(all);
	return out->m ? 0 : -1;
}

/* bind_mat of one tensor named by fmt. */
static int bind_mat1(ocl_model *m, const st_set *w, int64_t rows, int64_t cols, ocl_mat *out, char *err,
                     size_t errlen, const char *fmt, ...)
{
	char name[256];
	const char *names[1] = {name};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	return bind_mat(m, w, 1, names, rows, cols, out, err, errlen);
}

static int load_t5(ocl_model *m, const st_set *w, char *err, size_t errlen)
{
	const mg_t5_config *t = &m->cfg.t5;
	int D = t->d_model, inner = t->num_heads * t->d_kv;
	char n0[256], n1[256], n2[256];

	m->t5_embed = bind(m, w, t->vocab_size, D, err, errlen, "text_encoder.shared.weight");
	if (!m->t5_embed && st_find(w, "text_encoder.encoder.embed_tokens.weight"))
		m->t5_embed = bind(m, w, t->vocab_size, D, err, errlen, "text_encoder.encoder.embed_tokens.weight");
	if (!m->t5_embed)
		return -1;
	m->t5_rel = bind(m, w, t->num_buckets, t->num_heads, err, errlen,
	                 "text_encoder.encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
	m->t5_final = bind(m, w, D, -1, err, errlen, "text_encoder.encoder.final_layer_norm.weight");
	if (!m->t5_rel || !m->t5_final)
		return -1;
	m->t5 = calloc((size_t)t->num_layers, sizeof *m->t5);
	if (!m->t5) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int l = 0; l < t->num_layers; l++) {
		t5_block *b = &m->t5[l];
		const char *p = "text_encoder.encoder.block";
		snprintf(n0, sizeof n0, "%s.%d.layer.0.SelfAttention.q.weight", p, l);
		snprintf(n1, sizeof n1, "%s.%d.layer.0.SelfAttention.k.weight", p, l);
		snprintf(n2, sizeof n2, "%s.%d.layer.0.SelfAttention.v.weight", p, l);
		const char *qkv[3] = {n0, n1, n2};
		if (!(b->qkv = bind_stacked(m, w, 3, qkv, inner, D, err, errlen)))
			return -1;
		if (!(b->o = bind(m, w, D, inner, err, errlen, "%s.%d.layer.0.SelfAttention.o.weight", p, l)) ||
		    !(b->ln0 = bind(m, w, D, -1, err, errlen, "%s.%d.layer.0.layer_norm.weight", p, l)) ||
		    !(b->ln1 = bind(m, w, D, -1, err, errlen, "%s.%d.layer.1.layer_norm.weight", p, l)) ||
		    !(b->wo = bind(m, w, D, t->d_ff, err, errlen, "%s.%d.layer.1.DenseReluDense.wo.weight", p, l)))
			return -1;
		if (t->gated) {
			if (!(b->wi = bind(m, w, t->d_ff, D, err, errlen, "%s.%d.layer.1.DenseReluDense.wi_0.weight", p, l)) ||
			    !(b->wi1 = bind(m, w, t->d_ff, D, err, errlen, "%s.%d.layer.1.DenseReluDense.wi_1.weight", p, l)))
				return -1;
		} else if (!(b->wi = bind(m, w, t->d_ff, D, err, errlen, "%s.%d.layer.1.DenseReluDense.wi.weight", p, l)))
			return -1;
	}
	if (m->cfg.has_enc_to_dec_proj) {
		m->proj_w = bind(m, w, m->cfg.dec.hidden_size, D, err, errlen, "enc_to_dec_proj.weight");
		m->proj_b = m->proj_w ? bind(m, w, m->cfg.dec.hidden_size, -1, err, errlen, "enc_to_dec_proj.bias") : NULL;
		if (!m->proj_b)
			return -1;
	}
	return 0;
}

/* The sinusoidal table of SPEC-decoder §3, computed in float32 as HF does. */
static float *sinusoids(int P, int D)
{
	float *t = calloc((size_t)P * (size_t)D, sizeof(float));
	int half = D / 2;
	if (!t)
		return NULL;
	float c = (float)(-log(10000.0) / (double)(half - 1));
	for (int i = 0; i < half; i++) {
		float f = (float)exp((double)((float)i * c));
		for (int p = 0; p < P; p++) {
			float a = (float)p * f;
			t[(size_t)p * D + i] = (float)cos((double)a);
			t[(size_t)p * D + half + i] = (float)sin((double)a);
		}
	}
	return t;
}

static int load_decoder(ocl_model *m, const st_set *w, char *err, size_t errlen)
{
	const mg_decoder_config *d = &m->cfg.dec;
	int D = d->hidden_size, K = d->num_codebooks, V = d->vocab_size;
	char names[16][256] = {{0}};
	const char *list[16] = {0};

	if (K > 16) {
		snprintf(err, errlen, "decoder.num_codebooks %d is more than the OpenCL backend supports (16)", K);
		return -1;
	}
	if (!d->cross_attention) {
		snprintf(err, errlen, "this checkpoint conditions by prefix (melody); the OpenCL backend supports "
		                      "cross-attention models only");
		return -1;
	}
	for (int k = 0; k < K; k++) {
		snprintf(names[k], sizeof names[k], "decoder.model.decoder.embed_tokens.%d.weight", k);
		list[k] = names[k];
	}
	if (!(m->emb = bind_stacked(m, w, K, list, V + 1, D, err, errlen)))
		return -1;
	for (int k = 0; k < K; k++) {
		snprintf(names[k], sizeof names[k], "decoder.lm_heads.%d.weight", k);
		list[k] = names[k];
	}
	if (bind_mat(m, w, K, list, V, D, &m->heads, err, errlen))
		return -1;

	m->n_pos = d->max_positions;
	const char *pname = "decoder.model.decoder.embed_positions.weights";
	if (st_find(w, pname)) {
		m->pos = bind(m, w, d->max_positions, D, err, errlen, "%s", pname);
	} else {
		float *t = sinusoids(m->n_pos, D);
		if (!t) {
			snprintf(err, errlen, "out of memory for the position table");
			return -1;
		}
		m->pos = upload(m, t, (size_t)m->n_pos * D, "positions", err, errlen);
		free(t);
	}
	if (!m->pos)
		return -1;
	if (!(m->final_w = bind(m, w, D, -1, err, errlen, "decoder.model.decoder.layer_norm.weight")) ||
	    !(m->final_b = bind(m, w, D, -1, err, errlen, "decoder.model.decoder.layer_norm.bias")))
		return -1;

	m->dec = calloc((size_t)d->num_layers, sizeof *m->dec);
	if (!m->dec) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int l = 0; l < d->num_layers; l++) {
		dec_layer *L = &m->dec[l];
		const char *p = "decoder.model.decoder.layers";
		snprintf(names[0], sizeof names[0], "%s.%d.self_attn.q_proj.weight", p, l);
		snprintf(names[1], sizeof names[1], "%s.%d.self_attn.k_proj.weight", p, l);
		snprintf(names[2], sizeof names[2], "%s.%d.self_attn.v_proj.weight", p, l);
		const char *qkv[3] = {names[0], names[1], names[2]};
		if (bind_mat(m, w, 3, qkv, D, D, &L->qkv, err, errlen) ||
		    bind_mat1(m, w, D, D, &L->sa_o, err, errlen, "%s.%d.self_attn.out_proj.weight", p, l) ||
		    !(L->sa_ln_w = bind(m, w, D, -1, err, errlen, "%s.%d.self_attn_layer_norm.weight", p, l)) ||
		    !(L->sa_ln_b = bind(m, w, D, -1, err, errlen, "%s.%d.self_attn_layer_norm.bias", p, l)) ||
		    bind_mat1(m, w, D, D, &L->ca_q, err, errlen, "%s.%d.encoder_attn.q_proj.weight", p, l) ||
		    bind_mat1(m, w, D, D, &L->ca_k, err, errlen, "%s.%d.encoder_attn.k_proj.weight", p, l) ||
		    bind_mat1(m, w, D, D, &L->ca_v, err, errlen, "%s.%d.encoder_attn.v_proj.weight", p, l) ||
		    bind_mat1(m, w, D, D, &L->ca_o, err, errlen, "%s.%d.encoder_attn.out_proj.weight", p, l) ||
		    !(L->ca_ln_w = bind(m, w, D, -1, err, errlen, "%s.%d.encoder_attn_layer_norm.weight", p, l)) ||
		    !(L->ca_ln_b = bind(m, w, D, -1, err, errlen, "%s.%d.encoder_attn_layer_norm.bias", p, l)) ||
		    bind_mat1(m, w, d->ffn_dim, D, &L->fc1, err, errlen, "%s.%d.fc1.weight", p, l) ||
		    bind_mat1(m, w, D, d->ffn_dim, &L->fc2, err, errlen, "%s.%d.fc2.weight", p, l) ||
		    !(L->ff_ln_w = bind(m, w, D, -1, err, errlen, "%s.%d.final_layer_norm.weight", p, l)) ||
		    !(L->ff_ln_b = bind(m, w, D, -1, err, errlen, "%s.%d.final_layer_norm.bias", p, l)))
			return -1;
	}
	return 0;
}

/* A weight-normed (or plain) convolution `prefix`.weight folded to one
 * tensor: w = g * v / ||v|| with the norm over all dims but 0 (SPEC-format §3.5). */
static int bind_conv(ocl_model *m, const st_set *w, const char *prefix, int transposed, int cin, int cout,
                     int k, int stride, int dil, conv_w *out, char *err, size_t errlen)
{
	char gname[300], vname[300], bname[300];
	int64_t d0 = transposed ? cin : cout, d1 = transposed ? cout : cin;
	int64_t vshape[3] = {d0, d1, k}, gshape[3] = {d0, 1, 1};
	float *v, *g = NULL;

	snprintf(gname, sizeof gname, "%s.weight_g", prefix);
	snprintf(vname, sizeof vname, "%s.weight_v", prefix);
	if (!st_find(w, gname)) {
		snprintf(gname, sizeof gname, "%s.parametrizations.weight.original0", prefix);
		snprintf(vname, sizeof vname, "%s.parametrizations.weight.original1", prefix);
	}
	if (!st_find(w, gname)) /* no weight norm: a plain weight */
		snprintf(vname, sizeof vname, "%s.weight", prefix);
	if (!(v = get_f32(w, vname, 3, vshape, NULL, err, errlen)))
		return -1;
	if (st_find(w, gname)) {
		if (!(g = get_f32(w, gname, 3, gshape, NULL, err, errlen))) {
			free(v);
			return -1;
		}
		size_t per = (size_t)d1 * (size_t)k;
		for (int64_t i = 0; i < d0; i++) {
			double ss = 0;
			for (size_t j = 0; j < per; j++)
				ss += (double)v[i * per + j] * v[i * per + j];
			float scale = g[i] / (float)sqrt(ss);
			for (size_t j = 0; j < per; j++)
				v[i * per + j] = v[i * per + j] * scale;
		}
		free(g);
	}
	out->w = upload(m, v, (size_t)d0 * d1 * k, vname, err, errlen);
	free(v);
	if (!out->w)
		return -1;
	snprintf(bname, sizeof bname, "%s.bias", prefix);
	if (!(out->b = bind(m, w, cout, -1, err, errlen, "%s", bname)))
		return -1;
	out->cin = cin;
	out->cout = cout;
	out->k = k;
	out->stride = stride;
	out->dil = dil;
	return 0;
}

static codec_op *add_op(ocl_model *m, int kind, char *err, size_t errlen)
{
	codec_op *p = realloc(m->ops, (size_t)(m->n_ops + 1) * sizeof *p);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->ops = p;
	memset(&p[m->n_ops], 0, sizeof *p);
	p[m->n_ops].kind = kind;
	return &p[m->n_ops++];
}

/* The SEANet decoder of SPEC-encodec §4, generic construction. */
static int load_codec(ocl_model *m, const st_set *w, char *err, size_t errlen)
{
	const mg_encodec_config *e = &m->cfg.codec;
	char pre[256], nm[4][256];
	int n = 0, scale = 1;
	codec_op *op;
	const char *dp = "audio_encoder.decoder.layers";

	if (e->num_lstm_layers > MAX_LSTM) {
		snprintf(err, errlen, "audio_encoder.num_lstm_layers %d is more than %d", e->num_lstm_layers, MAX_LSTM);
		return -1;
	}
	/* every codebook the checkpoint stores (at least the config's count) */
	for (m->rvq_n = 0;; m->rvq_n++) {
		snprintf(pre, sizeof pre, "audio_encoder.quantizer.layers.%d.codebook.embed", m->rvq_n);
		if (!st_find(w, pre))
			break;
	}
	if (m->rvq_n < e->num_quantizers) {
		snprintf(err, errlen, "the checkpoint has %d quantizer codebooks, config.json implies %d", m->rvq_n,
		         e->num_quantizers);
		return -1;
	}
	{
		float *all = malloc((size_t)m->rvq_n * e->codebook_size * e->codebook_dim * sizeof(float) + 4);
		if (!all) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		int64_t shape[2] = {e->codebook_size, e->codebook_dim};
		size_t one = (size_t)e->codebook_size * e->codebook_dim;
		for (int q = 0; q < m->rvq_n; q++) {
			snprintf(pre, sizeof pre, "audio_encoder.quantizer.layers.%d.codebook.embed", q);
			float *p = get_f32(w, pre, 2, shape, NULL, err, errlen);
			if (!p) {
				free(all);
				return -1;
			}
			memcpy(all + one * q, p, one * sizeof(float));
			free(p);
		}
		m->rvq = upload(m, all, one * m->rvq_n, "codebooks", err, errlen);
		free(all);
		if (!m->rvq)
			return -1;
	}
	for (int i = 0; i < e->num_ratios; i++)
		scale *= 2;
	int dim = scale * e->num_filters;

	if (!(op = add_op(m, C_CONV, err, errlen)))
		return -1;
	snprintf(pre, sizeof pre, "%s.%d.conv", dp, n++);
	if (bind_conv(m, w, pre, 0, e->hidden_size, dim, e->kernel_size, 1, 1, &op->conv, err, errlen))
		return -1;
	if (e->num_lstm_layers > 0) {
		if (!(op = add_op(m, C_LSTM, err, errlen)))
			return -1;
		op->lstm_layers = e->num_lstm_layers;
		op->dim = dim;
		for (int l = 0; l < e->num_lstm_layers; l++) {
			snprintf(nm[0], sizeof nm[0], "%s.%d.lstm.weight_ih_l%d", dp, n, l);
			snprintf(nm[1], sizeof nm[1], "%s.%d.lstm.weight_hh_l%d", dp, n, l);
			snprintf(nm[2], sizeof nm[2], "%s.%d.lstm.bias_ih_l%d", dp, n, l);
			snprintf(nm[3], sizeof nm[3], "%s.%d.lstm.bias_hh_l%d", dp, n, l);
			int64_t ws[2] = {4 * (int64_t)dim, dim}, bs[1] = {4 * (int64_t)dim};
			if (!(op->wih[l] = bind(m, w, 4 * dim, dim, err, errlen, "%s", nm[0])) ||
			    !(op->whh[l] = bind(m, w, 4 * dim, dim, err, errlen, "%s", nm[1])))
				return -1;
			(void)ws;
			float *bi = get_f32(w, nm[2], 1, bs, NULL, err, errlen);
			float *bh = bi ? get_f32(w, nm[3], 1, bs, NULL, err, errlen) : NULL;
			if (!bh) {
				free(bi);
				return -1;
			}
			for (int i = 0; i < 4 * dim; i++)
				bi[i] = bi[i] + bh[i];
			op->bias[l] = upload(m, bi, (size_t)4 * dim, nm[2], err, errlen);
			free(bi);
			free(bh);
			if (!op->bias[l])
				return -1;
		}
		n++;
	}
	for (int r = 0; r < e->num_ratios; r++) {
		int ratio = e->ratios[r];
		if (!add_op(m, C_ELU, err, errlen))
			return -1;
		n++;
		if (!(op = add_op(m, C_CONVT, err, errlen)))
			return -1;
		snprintf(pre, sizeof pre, "%s.%d.conv", dp, n++);
		if (bind_conv(m, w, pre, 1, dim, dim / 2, 2 * ratio, ratio, 1, &op->conv, err, errlen))
			return -1;
		dim /= 2;
		int dil = 1;
		for (int j = 0; j < e->num_residual_layers; j++) {
			int hidden = dim / e->compress;
			if (!(op = add_op(m, C_RES, err, errlen)))
				return -1;
			snprintf(pre, sizeof pre, "%s.%d.block.1.conv", dp, n);
			if (bind_conv(m, w, pre, 0, dim, hidden, e->residual_kernel_size, 1, dil, &op->conv, err, errlen))
				return -1;
			snprintf(pre, sizeof pre, "%s.%d.block.3.conv", dp, n);
			if (bind_conv(m, w, pre, 0, hidden, dim, 1, 1, 1, &op->conv2, err, errlen))
				return -1;
			if (e->use_conv_shortcut) {
				snprintf(pre, sizeof pre, "%s.%d.shortcut.conv", dp, n);
				if (bind_conv(m, w, pre, 0, dim, dim, 1, 1, 1, &op->shortcut, err, errlen))
					return -1;
				op->has_shortcut = 1;
			}
			n++;
			dil *= e->dilation_growth_rate;
		}
	}
	if (!add_op(m, C_ELU, err, errlen))
		return -1;
	n++;
	if (!(op = add_op(m, C_CONV, err, errlen)))
		return -1;
	snprintf(pre, sizeof pre, "%s.%d.conv", dp, n);
	return bind_conv(m, w, pre, 0, dim, e->audio_channels, e->last_kernel_size, 1, 1, &op->conv, err, errlen);
}

int ocl_model_load(ocl_model **out, ocl_ctx *ctx, const st_set *w, const mg_config *cfg, int f16,
                   char *err, size_t errlen)
{
	ocl_model *m = calloc(1, sizeof *m);
	*out = NULL;
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->c = ctx;
	m->cfg = *cfg;
	m->f16 = f16;
	if (load_t5(m, w, err, errlen) || load_decoder(m, w, err, errlen) || load_codec(m, w, err, errlen) ||
	    ocl_finish(ctx, err, errlen)) {
		ocl_model_free(m);
		return -1;
	}
	*out = m;
	return 0;
}

size_t ocl_model_weight_bytes(const ocl_model *m)
{
	return m->wbytes;
}

void ocl_model_traffic(const ocl_model *m, ocl_traffic *t)
{
	*t = m->traffic;
}

static void free_state(ocl_model *m)
{
	if (m->dec)
		for (int l = 0; l < m->cfg.dec.num_layers; l++) {
			ocl_release(&m->dec[l].kc);
			ocl_release(&m->dec[l].vc);
			ocl_release(&m->dec[l].xk);
			ocl_release(&m->dec[l].xv);
		}
	ocl_release(&m->enc);
	ocl_release(&m->encmask);
	ocl_release(&m->x);
	ocl_release(&m->h);
	ocl_release(&m->qkv);
	ocl_release(&m->att);
	ocl_release(&m->ff);
	ocl_release(&m->scores);
	ocl_release(&m->ids_in);
	ocl_release(&m->logits);
	ocl_release(&m->proc);
	ocl_release(&m->ids_out);
	m->cap_rows = m->cap_keys = 0;
	m->N = m->max_len = m->past = 0;
}

void ocl_model_free(ocl_model *m)
{
	if (!m)
		return;
	if (m->c)
		clFinish(m->c->queue);
	free_state(m);
	ocl_release(&m->t5_embed);
	ocl_release(&m->t5_rel);
	ocl_release(&m->t5_final);
	ocl_release(&m->proj_w);
	ocl_release(&m->proj_b);
	if (m->t5)
		for (int l = 0; l < m->cfg.t5.num_layers; l++) {
			t5_block *b = &m->t5[l];
			ocl_release(&b->ln0); ocl_release(&b->qkv); ocl_release(&b->o);
			ocl_release(&b->ln1); ocl_release(&b->wi); ocl_release(&b->wi1); ocl_release(&b->wo);
		}
	free(m->t5);
	ocl_release(&m->emb);
	ocl_release(&m->pos);
	ocl_release(&m->final_w);
	ocl_release(&m->final_b);
	ocl_release(&m->heads.m);
	if (m->dec)
		for (int l = 0; l < m->cfg.dec.num_layers; l++) {
			dec_layer *L = &m->dec[l];
			ocl_release(&L->sa_ln_w); ocl_release(&L->sa_ln_b); ocl_release(&L->qkv.m); ocl_release(&L->sa_o.m);
			ocl_release(&L->ca_ln_w); ocl_release(&L->ca_ln_b); ocl_release(&L->ca_q.m); ocl_release(&L->ca_k.m);
			ocl_release(&L->ca_v.m); ocl_release(&L->ca_o.m); ocl_release(&L->ff_ln_w); ocl_release(&L->ff_ln_b);
			ocl_release(&L->fc1.m); ocl_release(&L->fc2.m);
		}
	free(m->dec);
	ocl_release(&m->rvq);
	for (int i = 0; i < m->n_ops; i++) {
		codec_op *o = &m->ops[i];
		ocl_release(&o->conv.w); ocl_release(&o->conv.b);
		ocl_release(&o->conv2.w); ocl_release(&o->conv2.b);
		ocl_release(&o->shortcut.w); ocl_release(&o->shortcut.b);
		for (int l = 0; l < MAX_LSTM; l++) {
			ocl_release(&o->wih[l]); ocl_release(&o->whh[l]); ocl_release(&o->bias[l]);
		}
	}
	free(m->ops);
	free(m);
}

/* ---- transfers (counted) ---------------------------------------------- */

static int put(ocl_model *m, cl_mem b, const void *src, size_t bytes, char *err, size_t errlen)
{
	m->traffic.writes++;
	m->traffic.write_bytes += (long long)bytes;
	return ocl_write(m->c, b, 0, src, bytes, err, errlen);
}

static int get(ocl_model *m, cl_mem b, size_t off, void *dst, size_t bytes, char *err, size_t errlen)
{
	m->traffic.reads++;
	m->traffic.read_bytes += (long long)bytes;
	return ocl_read(m->c, b, off, dst, bytes, err, errlen);
}

/* ---- T5 + projection ---------------------------------------------------- */

/* SPEC-t5 §3: bidirectional bucket of relative position r = j - i, with the
 * logarithm evaluated in float32 as HF does. */
static int t5_bucket(int r, int num_buckets, int max_distance)
{
	int nb = num_buckets / 2, b = r > 0 ? nb : 0, n = r < 0 ? -r : r, exact = nb / 2;
	if (n < exact)
		return b + n;
	float v = logf((float)n / (float)exact) / (float)log((double)max_distance / exact) * (float)(nb - exact);
	int large = exact + (int)v;
	return b + (large < nb - 1 ? large : nb - 1);
}

/* T5 + projection + mask for np prompts: dst[np*S, hidden] (SPEC-t5). */
static int t5_forward(ocl_model *m, const int32_t *ids, const float *maskf, int np, int S, cl_mem dst,
                      char *err, size_t errlen)
{
	const mg_t5_config *t = &m->cfg.t5;
	ocl_ctx *c = m->c;
	int Dt = t->d_model, inner = t->num_heads * t->d_kv, D = m->cfg.dec.hidden_size, ffw = t->d_ff;
	int rows = np * S, rc = -1;
	cl_mem ids_b = NULL, mask_b = NULL, bucket_b = NULL, x = NULL, h = NULL, qkv = NULL, att = NULL;
	cl_mem ff = NULL, ff1 = NULL, scores = NULL;
	int32_t *bucket = malloc(sizeof(int32_t) * (size_t)(2 * S - 1));

	if (!bucket) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < rows; i++)
		if (ids[i] < 0 || ids[i] >= t->vocab_size) {
			snprintf(err, errlen, "token id %d at %d is outside the T5 vocabulary (%d)", ids[i], i, t->vocab_size);
			goto out;
		}
	for (int r = -(S - 1); r <= S - 1; r++)
		bucket[r + S - 1] = t5_bucket(r, t->num_buckets, t->max_distance);
	if (!(ids_b = ocl_buf(c, sizeof(int32_t) * rows, "token ids", err, errlen)) ||
	    !(mask_b = ocl_buf(c, sizeof(float) * rows, "mask", err, errlen)) ||
	    !(bucket_b = ocl_buf(c, sizeof(int32_t) * (2 * S - 1), "buckets", err, errlen)) ||
	    !(x = ocl_buf(c, sizeof(float) * rows * Dt, "T5 x", err, errlen)) ||
	    !(h = ocl_buf(c, sizeof(float) * rows * Dt, "T5 h", err, errlen)) ||
	    !(qkv = ocl_buf(c, sizeof(float) * rows * 3 * inner, "T5 qkv", err, errlen)) ||
	    !(att = ocl_buf(c, sizeof(float) * rows * inner, "T5 attention", err, errlen)) ||
	    !(ff = ocl_buf(c, sizeof(float) * rows * ffw, "T5 ffn", err, errlen)) ||
	    (t->gated && !(ff1 = ocl_buf(c, sizeof(float) * rows * ffw, "T5 ffn", err, errlen))) ||
	    !(scores = ocl_buf(c, sizeof(float) * (size_t)np * t->num_heads * S * S, "T5 scores", err, errlen)) ||
	    put(m, ids_b, ids, sizeof(int32_t) * rows, err, errlen) ||
	    put(m, mask_b, maskf, sizeof(float) * rows, err, errlen) ||
	    put(m, bucket_b, bucket, sizeof(int32_t) * (2 * S - 1), err, errlen))
		goto out;

	/* x = shared[ids] (no scaling, no positions) */
	if (ocl_embed_rows(c, ids_b, m->t5_embed, x, rows, Dt, err, errlen))
		goto out;
	for (int l = 0; l < t->num_layers; l++) {
		t5_block *b = &m->t5[l];
		ocl_attn a = {.q = qkv, .ldq = 3 * inner, .k = qkv, .koff = inner, .v = qkv, .voff = 2 * inner,
		              .ldkv = 3 * inner, .kv_rows = S, .out = att, .ldo = inner, .scores = scores,
		              .kmask = mask_b, .rel_w = m->t5_rel, .bucket = bucket_b, .N = np,
		              .H = t->num_heads, .hd = t->d_kv, .Tq = S, .nk = S, .past = -1, .scale = 1.0f};
		/* self-attention with the block-0 relative position bias, no 1/sqrt(d) */
		if (ocl_rms_norm(c, x, b->ln0, h, rows, Dt, t->eps, err, errlen) ||
		    ocl_linear(c, h, rows, Dt, b->qkv, 3 * inner, NULL, qkv, err, errlen) ||
		    ocl_attention(c, &a, err, errlen) ||
		    ocl_linear_acc(c, att, rows, inner, b->o, Dt, x, err, errlen))
			goto out;
		/* feed-forward: relu (or gated) */
		if (ocl_rms_norm(c, x, b->ln1, h, rows, Dt, t->eps, err, errlen) ||
		    ocl_linear(c, h, rows, Dt, b->wi, ffw, NULL, ff, err, errlen))
			goto out;
		if (t->gated) {
			if (ocl_linear(c, h, rows, Dt, b->wi1, ffw, NULL, ff1, err, errlen) ||
			    ocl_gated_act(c, ff, ff1, (size_t)rows * ffw, t->act_gelu, err, errlen))
				goto out;
		} else if (ocl_activation(c, t->act_gelu ? OK_GELU : OK_RELU, ff, (size_t)rows * ffw, err, errlen))
			goto out;
		if (ocl_linear_acc(c, ff, rows, ffw, b->wo, Dt, x, err, errlen))
			goto out;
	}
	if (ocl_rms_norm(c, x, m->t5_final, h, rows, Dt, t->eps, err, errlen))
		goto out;
	/* dst = (h @ Wp^T + bp) * mask */
	if (m->proj_w) {
		if (ocl_linear(c, h, rows, Dt, m->proj_w, D, m->proj_b, dst, err, errlen))
			goto out;
	} else {
		cl_int e = clEnqueueCopyBuffer(c->queue, h, dst, 0, 0, sizeof(float) * rows * D, 0, NULL, NULL);
		if (e != CL_SUCCESS) {
			snprintf(err, errlen, "copying the text states: %s (%d)", ocl_strerror(e), e);
			goto out;
		}
	}
	if (ocl_rows_mask(c, dst, mask_b, rows, D, err, errlen))
		goto out;
	rc = 0;
out:
	ocl_release(&ids_b); ocl_release(&mask_b); ocl_release(&bucket_b); ocl_release(&x); ocl_release(&h);
	ocl_release(&qkv); ocl_release(&att); ocl_release(&ff); ocl_release(&ff1); ocl_release(&scores);
	free(bucket);
	return rc;
}

/* Conditioning buffers for B takes of S positions (N rows, null rows zero). */
static int alloc_conditioning(ocl_model *m, int B, int S, int cfg, char *err, size_t errlen)
{
	int D = m->cfg.dec.hidden_size;
	free_state(m);
	m->B = B;
	m->has_cfg = cfg;
	m->N = cfg ? 2 * B : B;
	m->S = S;
	if (!(m->enc = ocl_buf(m->c, sizeof(float) * (size_t)m->N * S * D, "text states", err, errlen)) ||
	    !(m->encmask = ocl_buf(m->c, sizeof(float) * (size_t)m->N * S, "text mask", err, errlen)) ||
	    ocl_fill(m->c, m->enc, 0.0f, (size_t)m->N * S * D, err, errlen) ||
	    ocl_fill(m->c, m->encmask, 0.0f, (size_t)m->N * S, err, errlen))
		return -1;
	return 0;
}

/* Cross-attention keys and values of every layer, once per generation. */
static int set_cross(ocl_model *m, char *err, size_t errlen)
{
	int D = m->cfg.dec.hidden_size, rows = m->N * m->S;
	for (int l = 0; l < m->cfg.dec.num_layers; l++) {
		dec_layer *L = &m->dec[l];
		if (!(L->xk = ocl_buf(m->c, sizeof(float) * (size_t)rows * D, "cross keys", err, errlen)) ||
		    !(L->xv = ocl_buf(m->c, sizeof(float) * (size_t)rows * D, "cross values", err, errlen)) ||
		    ocl_matmul(m->c, m->enc, 0, D, rows, &L->ca_k, L->xk, D, 0, err, errlen) ||
		    ocl_matmul(m->c, m->enc, 0, D, rows, &L->ca_v, L->xv, D, 0, err, errlen))
			return -1;
	}
	return 0;
}

int ocl_model_condition(ocl_model *m, const int32_t *ids, const int32_t *mask, int np, int S, int count, int cfg,
                        int n_uncond, float *enc_out, char *err, size_t errlen)
{
	int D = m->cfg.dec.hidden_size, B = np > 0 ? np * count : n_uncond, rc = -1;
	cl_mem encp = NULL;
	float *maskf = NULL, *pmask = NULL;

	if (np < 0 || count < 1 || (np == 0 && n_uncond <= 0) || (np > 0 && S <= 0)) {
		snprintf(err, errlen, "text conditioning: bad batch (%d prompts x %d takes, %d positions)", np, count, S);
		return -1;
	}
	if (alloc_conditioning(m, B, np > 0 ? S : 1, np > 0 && cfg, err, errlen))
		return -1;
	if (np > 0) {
		maskf = malloc(sizeof(float) * (size_t)B * S);
		pmask = malloc(sizeof(float) * (size_t)np * S);
		if (!maskf || !pmask) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		for (int i = 0; i < np * S; i++)
			pmask[i] = mask[i] ? 1.0f : 0.0f;
		/* take i is prompt i / count (each prompt's takes together) */
		for (int i = 0; i < B; i++)
			memcpy(maskf + (size_t)i * S, pmask + (size_t)(i / count) * S, sizeof(float) * S);
		if (!(encp = ocl_buf(m->c, sizeof(float) * (size_t)np * S * D, "prompt states", err, errlen)) ||
		    t5_forward(m, ids, pmask, np, S, encp, err, errlen))
			goto out;
		for (int i = 0; i < B; i++) {
			size_t bytes = sizeof(float) * (size_t)S * D;
			cl_int e = clEnqueueCopyBuffer(m->c->queue, encp, m->enc, (size_t)(i / count) * bytes, (size_t)i * bytes,
			                               bytes, 0, NULL, NULL);
			if (e != CL_SUCCESS) {
				snprintf(err, errlen, "copying the text states: %s (%d)", ocl_strerror(e), e);
				goto out;
			}
		}
		if (put(m, m->encmask, maskf, sizeof(float) * (size_t)B * S, err, errlen))
			goto out;
	}
	if (set_cross(m, err, errlen) ||
	    (enc_out && get(m, m->enc, 0, enc_out, sizeof(float) * (size_t)m->N * m->S * D, err, errlen)))
		goto out;
	rc = ocl_finish(m->c, err, errlen);
out:
	ocl_release(&encp);
	free(maskf);
	free(pmask);
	return rc;
}

int ocl_model_set_states(ocl_model *m, const float *enc, const int32_t *mask, int B, int S, int cfg,
                         char *err, size_t errlen)
{
	int D = m->cfg.dec.hidden_size;
	if (B < 1 || S < 1) {
		snprintf(err, errlen, "conditioning states: bad batch %d x %d", B, S);
		return -1;
	}
	float *maskf = malloc(sizeof(float) * (size_t)B * S);
	if (!maskf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < B * S; i++)
		maskf[i] = mask[i] ? 1.0f : 0.0f;
	int rc = alloc_conditioning(m, B, S, cfg, err, errlen) ||
	         put(m, m->enc, enc, sizeof(float) * (size_t)B * S * D, err, errlen) ||
	         put(m, m->encmask, maskf, sizeof(float) * (size_t)B * S, err, errlen) ||
	         ocl_rows_mask(m->c, m->enc, m->encmask, m->N * S, D, err, errlen) ||
	         set_cross(m, err, errlen) || ocl_finish(m->c, err, errlen);
	free(maskf);
	return rc ? -1 : 0;
}

/* ---- decoder ------------------------------------------------------------ */

int ocl_model_begin(ocl_model *m, int max_len, char *err, size_t errlen)
{
	int D = m->cfg.dec.hidden_size, N = m->N;
	if (!m->enc) {
		snprintf(err, errlen, "decoder started before the text conditioning");
		return -1;
	}
	if (max_len <= 0 || max_len > m->n_pos) {
		snprintf(err, errlen, "sequence length %d is outside 1..%d (max_position_embeddings)", max_len, m->n_pos);
		return -1;
	}
	for (int l = 0; l < m->cfg.dec.num_layers; l++) {
		ocl_release(&m->dec[l].kc);
		ocl_release(&m->dec[l].vc);
		if (!(m->dec[l].kc = ocl_buf(m->c, sizeof(float) * (size_t)N * max_len * D, "key cache", err, errlen)) ||
		    !(m->dec[l].vc = ocl_buf(m->c, sizeof(float) * (size_t)N * max_len * D, "value cache", err, errlen)))
			return -1;
	}
	m->max_len = max_len;
	m->past = 0;
	return 0;
}

/* Scratch for rows = N*Tq query rows over up to `keys` keys. */
static int ensure_scratch(ocl_model *m, int rows, int keys, char *err, size_t errlen)
{
	const mg_decoder_config *d = &m->cfg.dec;
	ocl_ctx *c = m->c;
	int D = d->hidden_size;
	if (rows <= m->cap_rows && keys <= m->cap_keys && m->logits)
		return 0;
	if (rows < m->cap_rows)
		rows = m->cap_rows;
	if (keys < m->cap_keys)
		keys = m->cap_keys;
	ocl_release(&m->x); ocl_release(&m->h); ocl_release(&m->qkv); ocl_release(&m->att); ocl_release(&m->ff);
	ocl_release(&m->scores); ocl_release(&m->ids_in); ocl_release(&m->logits); ocl_release(&m->proc);
	ocl_release(&m->ids_out);
	size_t R = (size_t)m->N * d->num_codebooks;
	if (!(m->x = ocl_buf(c, sizeof(float) * rows * D, "decoder x", err, errlen)) ||
	    !(m->h = ocl_buf(c, sizeof(float) * rows * D, "decoder h", err, errlen)) ||
	    !(m->qkv = ocl_buf(c, sizeof(float) * rows * 3 * D, "decoder qkv", err, errlen)) ||
	    !(m->att = ocl_buf(c, sizeof(float) * rows * D, "decoder attention", err, errlen)) ||
	    !(m->ff = ocl_buf(c, sizeof(float) * rows * d->ffn_dim, "decoder ffn", err, errlen)) ||
	    !(m->scores = ocl_buf(c, sizeof(float) * rows * d->num_heads * keys, "decoder scores", err, errlen)) ||
	    !(m->ids_in = ocl_buf(c, sizeof(int32_t) * rows * d->num_codebooks, "decoder ids", err, errlen)) ||
	    !(m->logits = ocl_buf(c, sizeof(float) * R * d->vocab_size, "logits", err, errlen)) ||
	    !(m->proc = ocl_buf(c, sizeof(float) * R * d->vocab_size, "scores", err, errlen)) ||
	    !(m->ids_out = ocl_buf(c, sizeof(int32_t) * R, "next ids", err, errlen)))
		return -1;
	m->cap_rows = rows;
	m->cap_keys = keys;
	return 0;
}

int ocl_model_step(ocl_model *m, const int32_t *ids, int Tq, float *logits_out, char *err, size_t errlen)
{
	const mg_decoder_config *d = &m->cfg.dec;
	ocl_ctx *c = m->c;
	int N = m->N, K = d->num_codebooks, V = d->vocab_size, D = d->hidden_size, H = d->num_heads;
	int hd = d->head_dim, rows = N * Tq, past = m->past;
	float scale = (float)pow((double)hd, -0.5);

	if (!m->max_len) {
		snprintf(err, errlen, "decoder step before ocl_model_begin");
		return -1;
	}
	if (Tq <= 0 || past + Tq > m->max_len) {
		snprintf(err, errlen, "decoder step of %d columns after %d overflows the sequence length %d", Tq, past,
		         m->max_len);
		return -1;
	}
	for (int i = 0; i < rows * K; i++)
		if (ids[i] < 0 || ids[i] > V) {
			snprintf(err, errlen, "decoder id %d at %d is outside 0..%d", ids[i], i, V);
			return -1;
		}
	int keys = past + Tq > m->S ? past + Tq : m->S;
	if (ensure_scratch(m, rows, keys > m->max_len ? keys : m->max_len, err, errlen) ||
	    put(m, m->ids_in, ids, sizeof(int32_t) * rows * K, err, errlen))
		return -1;

	/* x = sum_k E_k[ids] + PE[past + t] */
	if (ocl_embed_sum(c, m->ids_in, m->emb, m->pos, m->x, N, K, V + 1, D, Tq, past, err, errlen))
		return -1;
	for (int l = 0; l < d->num_layers; l++) {
		dec_layer *L = &m->dec[l];
		ocl_attn sa = {.q = m->qkv, .ldq = 3 * D, .k = L->kc, .v = L->vc, .ldkv = D, .kv_rows = m->max_len,
		               .out = m->att, .ldo = D, .scores = m->scores, .N = N, .H = H, .hd = hd, .Tq = Tq,
		               .nk = past + Tq, .past = past, .scale = scale};
		ocl_attn ca = {.q = m->h, .ldq = D, .k = L->xk, .v = L->xv, .ldkv = D, .kv_rows = m->S,
		               .out = m->att, .ldo = D, .scores = m->scores, .kmask = m->encmask, .N = N, .H = H,
		               .hd = hd, .Tq = Tq, .nk = m->S, .past = -1, .scale = scale};
		/* self-attention over the cache */
		if (ocl_layer_norm(c, m->x, L->sa_ln_w, L->sa_ln_b, m->h, rows, D, 1e-5f, err, errlen) ||
		    ocl_matmul(c, m->h, 0, D, rows, &L->qkv, m->qkv, 3 * D, 0, err, errlen) ||
		    ocl_kv_append(c, m->qkv, 3 * D, D, L->kc, N, m->max_len, past, Tq, D, err, errlen) ||
		    ocl_kv_append(c, m->qkv, 3 * D, 2 * D, L->vc, N, m->max_len, past, Tq, D, err, errlen) ||
		    ocl_attention(c, &sa, err, errlen) ||
		    ocl_matmul(c, m->att, 0, D, rows, &L->sa_o, m->x, D, 1, err, errlen))
			return -1;
		/* cross-attention over the text */
		if (ocl_layer_norm(c, m->x, L->ca_ln_w, L->ca_ln_b, m->qkv, rows, D, 1e-5f, err, errlen) ||
		    ocl_matmul(c, m->qkv, 0, D, rows, &L->ca_q, m->h, D, 0, err, errlen) ||
		    ocl_attention(c, &ca, err, errlen) ||
		    ocl_matmul(c, m->att, 0, D, rows, &L->ca_o, m->x, D, 1, err, errlen))
			return -1;
		/* feed-forward */
		if (ocl_layer_norm(c, m->x, L->ff_ln_w, L->ff_ln_b, m->h, rows, D, 1e-5f, err, errlen) ||
		    ocl_matmul(c, m->h, 0, D, rows, &L->fc1, m->ff, d->ffn_dim, 0, err, errlen) ||
		    ocl_activation(c, OK_GELU, m->ff, (size_t)rows * d->ffn_dim, err, errlen) ||
		    ocl_matmul(c, m->ff, 0, d->ffn_dim, rows, &L->fc2, m->x, D, 1, err, errlen))
			return -1;
	}
	/* final norm, then the K heads on the last column of each row n:
	 * logits[n, k*V + v] = row n*K + k of [N*K, V] */
	if (ocl_layer_norm(c, m->x, m->final_w, m->final_b, m->h, rows, D, 1e-5f, err, errlen) ||
	    ocl_matmul(c, m->h, (size_t)(Tq - 1) * D, Tq * D, N, &m->heads, m->logits, K * V, 0, err, errlen))
		return -1;
	m->past += Tq;
	if (logits_out && get(m, m->logits, 0, logits_out, sizeof(float) * (size_t)N * K * V, err, errlen))
		return -1;
	return 0;
}

int ocl_model_logits(ocl_model *m, float guidance, float temperature, float *scores, int32_t *ids,
                     char *err, size_t errlen)
{
	const mg_decoder_config *d = &m->cfg.dec;
	int K = d->num_codebooks, V = d->vocab_size;
	int R = (m->has_cfg ? m->N / 2 : m->N) * K;
	if (!m->logits || !m->past) {
		snprintf(err, errlen, "no logits yet: run a decoder step first");
		return -1;
	}
	if (ocl_logits_process(m->c, m->logits, m->proc, R, V, m->has_cfg, guidance, temperature, err, errlen))
		return -1;
	if (scores && get(m, m->proc, 0, scores, sizeof(float) * (size_t)R * V, err, errlen))
		return -1;
	if (ids && (ocl_argmax_rows(m->c, m->proc, R, V, m->ids_out, err, errlen) ||
	            get(m, m->ids_out, 0, ids, sizeof(int32_t) * (size_t)R, err, errlen)))
		return -1;
	return 0;
}

int ocl_model_step_takes(ocl_model *m, const int32_t *ids, int T, float guidance, float *scores,
                         char *err, size_t errlen)
{
	int K = m->cfg.dec.num_codebooks;
	size_t per = (size_t)m->B * K * T;
	const int32_t *feed = ids;
	int32_t *both = NULL;
	if (m->has_cfg) {
		both = malloc(2 * per * sizeof *both);
		if (!both) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		memcpy(both, ids, per * sizeof *both);
		memcpy(both + per, ids, per * sizeof *both);
		feed = both;
	}
	int rc = ocl_model_step(m, feed, T, NULL, err, errlen) ||
	         ocl_model_logits(m, guidance, 1.0f, scores, NULL, err, errlen);
	free(both);
	return rc ? -1 : 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int ocl_model_time_steps(ocl_model *m, int n_takes, int guidance, int text_len, int past, int steps,
                         double *seconds, char *err, size_t errlen)
{
	const mg_decoder_config *d = &m->cfg.dec;
	int K = d->num_codebooks, D = d->hidden_size, L = past + steps, rc = -1;
	int N = guidance ? 2 * n_takes : n_takes;
	*seconds = 0;
	if (n_takes < 1 || text_len < 1 || past < 0 || steps < 1 || L > m->n_pos) {
		snprintf(err, errlen, "bench: invalid sizes (%d takes, %d text positions, %d + %d positions of %d)", n_takes,
		         text_len, past, steps, m->n_pos);
		return -1;
	}
	float *enc = malloc(sizeof(float) * (size_t)n_takes * text_len * D);
	int32_t *mask = malloc(sizeof(int32_t) * (size_t)n_takes * text_len);
	int32_t *ids = malloc(sizeof(int32_t) * (size_t)N * K), *next = malloc(sizeof(int32_t) * (size_t)N * K);
	if (!enc || !mask || !ids || !next) {
		snprintf(err, errlen, "bench: out of memory");
		goto out;
	}
	for (int n = 0; n < n_takes; n++)
		for (int s = 0; s < text_len; s++) {
			mask[n * text_len + s] = 1;
			for (int c = 0; c < D; c++)
				enc[((size_t)n * text_len + s) * D + c] = 0.01f * (float)((s + c) % 7);
		}
	for (int i = 0; i < N * K; i++)
		ids[i] = d->bos_token_id;
	if (ocl_model_set_states(m, enc, mask, n_takes, text_len, guidance, err, errlen) ||
	    ocl_model_begin(m, L, err, errlen))
		goto out;
	/* the past positions are filled by running them; the timed steps each
	 * send the ids and read back the chosen ones, as generation does */
	double t0 = 0;
	int R = n_takes * K;
	for (int i = 0; i < L; i++) {
		if (i == past)
			t0 = now_s();
		if (ocl_model_step(m, ids, 1, NULL, err, errlen) ||
		    ocl_model_logits(m, guidance ? 3.0f : 1.0f, 1.0f, NULL, next, err, errlen))
			goto out;
		for (int r = 0; r < N * K; r++)
			ids[r] = next[r % R];
	}
	*seconds = (now_s() - t0) / steps;
	rc = 0;
out:
	free(enc);
	free(mask);
	free(ids);
	free(next);
	return rc;
}

/* ---- EnCodec decoder ---------------------------------------------------- */

/* Conv1d with SEANet's non-causal padding (SPEC-encodec §3.1); *L in/out. */
static int run_conv(ocl_model *m, const conv_w *cw, cl_mem x, int B, int *L, cl_mem *y, char *err, size_t errlen)
{
	ocl_ctx *c = m->c;
	int Lin = *L, keff = (cw->k - 1) * cw->dil + 1, pad_total = keff - cw->stride;
	double nf = (double)(Lin - keff + pad_total) / cw->stride + 1.0;
	int extra = ((int)ceil(nf) - 1) * cw->stride + (keff - pad_total) - Lin;
	int pr = pad_total / 2, pl = pad_total - pr;
	if (extra < 0)
		extra = 0;
	int Lp = Lin + pl + pr + extra, Lout = (Lp - keff) / cw->stride + 1;
	cl_mem xp = ocl_buf(c, sizeof(float) * (size_t)B * cw->cin * Lp, "padded input", err, errlen);
	if (!xp)
		return -1;
	*y = ocl_buf(c, sizeof(float) * (size_t)B * cw->cout * Lout, "conv output", err, errlen);
	int rc = !*y || ocl_pad(c, x, xp, B, cw->cin, Lin, pl, pr + extra, m->cfg.codec.pad_reflect, err, errlen) ||
	         ocl_conv1d(c, xp, cw->w, cw->b, *y, B, cw->cin, Lp, cw->cout, cw->k, cw->stride, cw->dil, Lout, err,
	                    errlen);
	ocl_release(&xp);
	if (rc) {
		ocl_release(y);
		return -1;
	}
	*L = Lout;
	return 0;
}

/* LSTM block with skip (SPEC-encodec §3.4): x [B, C, L] -> y [B, C, L]. */
static int run_lstm(ocl_model *m, const codec_op *op, cl_mem x, int B, int L, cl_mem *y, char *err, size_t errlen)
{
	ocl_ctx *c = m->c;
	int C = op->dim, G = 4 * C, rc = -1;
	cl_mem xt = NULL, u = NULL, hbuf = NULL, gx = NULL, cs = NULL;
	*y = NULL;
	if (!(xt = ocl_buf(c, sizeof(float) * (size_t)B * L * C, "lstm input", err, errlen)) ||
	    !(gx = ocl_buf(c, sizeof(float) * (size_t)B * L * G, "lstm gates", err, errlen)) ||
	    !(cs = ocl_buf(c, sizeof(float) * (size_t)B * C, "lstm cell", err, errlen)) ||
	    ocl_transpose(c, x, xt, B, C, L, err, errlen))
		goto out;
	u = xt;
	for (int l = 0; l < op->lstm_layers; l++) {
		if (!(hbuf = ocl_buf(c, sizeof(float) * (size_t)B * L * C, "lstm hidden", err, errlen)) ||
		    ocl_fill(c, cs, 0.0f, (size_t)B * C, err, errlen) ||
		    ocl_linear(c, u, B * L, C, op->wih[l], G, op->bias[l], gx, err, errlen))
			goto out;
		for (int t = 0; t < L; t++) {
			if (t > 0 && ocl_gemm_nt(c, B, G, C, hbuf, (size_t)(t - 1) * C, L * C, op->whh[l], 0, C, 1.0f, gx,
			                         (size_t)t * G, L * G, err, errlen))
				goto out;
			if (ocl_lstm_cell(c, gx, L * G, t * G, cs, hbuf, L * C, t * C, B, C, err, errlen))
				goto out;
		}
		if (u != xt)
			ocl_release(&u);
		u = hbuf;
		hbuf = NULL;
	}
	/* y = h + x, back to [B, C, L] */
	if (ocl_add(c, u, xt, (size_t)B * L * C, err, errlen) ||
	    !(*y = ocl_buf(c, sizeof(float) * (size_t)B * C * L, "lstm output", err, errlen)) ||
	    ocl_transpose(c, u, *y, B, L, C, err, errlen))
		goto out;
	rc = 0;
out:
	if (u != xt)
		ocl_release(&u);
	ocl_release(&xt);
	ocl_release(&hbuf);
	ocl_release(&gx);
	ocl_release(&cs);
	if (rc)
		ocl_release(y);
	return rc;
}

/* The largest activation of one take through the SEANet decoder, in floats
 * (a padded copy included), for F frames. */
static size_t codec_peak_floats(const ocl_model *m, int F)
{
	size_t C = (size_t)m->cfg.codec.codebook_dim, L = (size_t)F, peak = C * L;
	for (int i = 0; i < m->n_ops; i++) {
		const codec_op *op = &m->ops[i];
		if (op->kind == C_CONV || op->kind == C_RES)
			C = op->kind == C_CONV ? (size_t)op->conv.cout : C;
		else if (op->kind == C_CONVT) {
			L *= (size_t)op->conv.stride;
			C = (size_t)op->conv.cout;
		} else if (op->kind == C_LSTM)
			C = (size_t)op->dim;
		size_t pad = (size_t)(op->conv.k > 0 ? op->conv.k : 1) * op->conv.dil;
		if ((C + 1) * (L + pad) > peak)
			peak = (C + 1) * (L + pad);
		if (op->kind == C_LSTM && 4 * C * L > peak)
			peak = 4 * C * L;
	}
	return peak;
}

static int decode_chunk(ocl_model *m, const int32_t *codes, int B, int nq, int F, float *pcm, char *err,
                        size_t errlen);

int ocl_model_decode_audio(ocl_model *m, const int32_t *codes, int B, int nq, int F, float *pcm,
                           char *err, size_t errlen)
{
	if (B <= 0 || F <= 0 || nq <= 0 || nq > m->rvq_n) {
		snprintf(err, errlen, "EnCodec decode: bad codes shape [%d, %d, %d] (the codec has %d quantizers)", B, nq,
		         F, m->rvq_n);
		return -1;
	}
	/* Takes in groups small enough that every buffer fits the device's
	 * largest allocation (long takes of a large batch would not). */
	/* (kernels index elements with int: a group also stays under 2^31 bytes) */
	size_t per_take = codec_peak_floats(m, F) * sizeof(float), limit = m->c->dev.max_alloc;
	if (!limit || limit > ((size_t)1 << 31))
		limit = (size_t)1 << 31;
	int group = B;
	if (limit && per_take * (size_t)B > limit)
		group = per_take > limit ? 1 : (int)(limit / per_take);
	size_t out_per_take = (size_t)m->cfg.codec.audio_channels * F * m->cfg.codec.hop_length;
	for (int b = 0; b < B; b += group) {
		int n = B - b < group ? B - b : group;
		if (decode_chunk(m, codes + (size_t)b * nq * F, n, nq, F, pcm + (size_t)b * out_per_take, err, errlen))
			return -1;
	}
	return 0;
}

static int decode_chunk(ocl_model *m, const int32_t *codes, int B, int nq, int F, float *pcm, char *err,
                        size_t errlen)
{
	const mg_encodec_config *e = &m->cfg.codec;
	ocl_ctx *c = m->c;
	int C = e->codebook_dim, L = F, rc = -1;
	cl_mem cb = NULL, x = NULL, y = NULL, h = NULL;

	for (size_t i = 0; i < (size_t)B * nq * F; i++)
		if (codes[i] < 0 || codes[i] >= e->codebook_size) {
			snprintf(err, errlen, "EnCodec decode: code %d at %zu is outside 0..%d", codes[i], i,
			         e->codebook_size - 1);
			return -1;
		}
	if (!(cb = ocl_buf(c, sizeof(int32_t) * (size_t)B * nq * F, "codes", err, errlen)) ||
	    put(m, cb, codes, sizeof(int32_t) * (size_t)B * nq * F, err, errlen) ||
	    !(x = ocl_buf(c, sizeof(float) * (size_t)B * C * F, "latent", err, errlen)) ||
	    ocl_rvq_decode(c, cb, m->rvq, x, B, nq, e->codebook_size, C, F, err, errlen))
		goto out;
	for (int i = 0; i < m->n_ops; i++) {
		const codec_op *op = &m->ops[i];
		switch (op->kind) {
		case C_ELU:
			if (ocl_activation(c, OK_ELU, x, (size_t)B * C * L, err, errlen))
				goto out;
			continue;
		case C_CONV:
			if (run_conv(m, &op->conv, x, B, &L, &y, err, errlen))
				goto out;
			C = op->conv.cout;
			break;
		case C_CONVT: {
			const conv_w *cw = &op->conv;
			int pt = cw->k - cw->stride, pr = pt / 2, pl = pt - pr;
			if (!(y = ocl_buf(c, sizeof(float) * (size_t)B * cw->cout * L * cw->stride, "upsampled", err,
			                  errlen)) ||
			    ocl_conv_transpose1d(c, x, cw->w, cw->b, y, B, cw->cin, L, cw->cout, cw->k, cw->stride, pl, err,
			                         errlen))
				goto out;
			L *= cw->stride;
			C = cw->cout;
			break;
		}
		case C_RES: {
			/* shortcut(x) + conv2(elu(conv1(elu(x)))), shortcut = identity or a K1 conv */
			int L1 = L;
			cl_mem h1 = NULL, h2 = NULL;
			if (!(h = ocl_buf(c, sizeof(float) * (size_t)B * C * L, "residual", err, errlen)))
				goto out;
			cl_int ce = clEnqueueCopyBuffer(c->queue, x, h, 0, 0, sizeof(float) * (size_t)B * C * L, 0, NULL, NULL);
			if (ce != CL_SUCCESS) {
				snprintf(err, errlen, "copy in the residual block: %s (%d)", ocl_strerror(ce), ce);
				goto out;
			}
			if (ocl_activation(c, OK_ELU, h, (size_t)B * C * L, err, errlen) ||
			    run_conv(m, &op->conv, h, B, &L1, &h1, err, errlen))
				goto out;
			L1 = L;
			if (ocl_activation(c, OK_ELU, h1, (size_t)B * op->conv.cout * L, err, errlen) ||
			    run_conv(m, &op->conv2, h1, B, &L1, &h2, err, errlen)) {
				ocl_release(&h1);
				ocl_release(&h2);
				goto out;
			}
			if (op->has_shortcut) {
				cl_mem sc = NULL;
				L1 = L;
				if (run_conv(m, &op->shortcut, x, B, &L1, &sc, err, errlen)) {
					ocl_release(&h1);
					ocl_release(&h2);
					goto out;
				}
				ocl_release(&x);
				x = sc;
			}
			if (ocl_add(c, x, h2, (size_t)B * C * L, err, errlen)) {
				ocl_release(&h1);
				ocl_release(&h2);
				goto out;
			}
			ocl_release(&h1);
			ocl_release(&h2);
			ocl_release(&h);
			continue;
		}
		case C_LSTM:
			if (run_lstm(m, op, x, B, L, &y, err, errlen))
				goto out;
			break;
		}
		ocl_release(&x);
		x = y;
		y = NULL;
	}
	if (get(m, x, 0, pcm, sizeof(float) * (size_t)B * C * L, err, errlen))
		goto out;
	rc = 0;
out:
	ocl_release(&cb);
	ocl_release(&x);
	ocl_release(&y);
	ocl_release(&h);
	return rc;
}

int ocl_model_decode_takes(ocl_model *m, const int32_t *codes, int B, int F, float *pcm, char *err, size_t errlen)
{
	int K = m->cfg.dec.num_codebooks, ch = m->cfg.dec.audio_channels, nq = K / ch;
	size_t T = (size_t)F * m->cfg.codec.hop_length;
	int32_t *part = malloc(sizeof(int32_t) * (size_t)B * nq * F);
	float *one = ch > 1 ? malloc(sizeof(float) * (size_t)B * T) : NULL;
	int rc = -1;
	if (!part || (ch > 1 && !one)) {
		snprintf(err, errlen, "out of memory decoding audio");
		goto out;
	}
	for (int c = 0; c < ch; c++) {
		/* stereo codebooks interleave L0, R0, L1, R1, ... */
		for (int b = 0; b < B; b++)
			for (int q = 0; q < nq; q++)
				memcpy(part + ((size_t)b * nq + q) * F, codes + ((size_t)b * K + (size_t)q * ch + c) * F,
				       sizeof(int32_t) * F);
		if (ocl_model_decode_audio(m, part, B, nq, F, ch > 1 ? one : pcm, err, errlen))
			goto out;
		if (ch > 1)
			for (int b = 0; b < B; b++)
				memcpy(pcm + ((size_t)b * ch + c) * T, one + (size_t)b * T, sizeof(float) * T);
	}
	rc = 0;
out:
	free(part);
	free(one);
	return rc;
}
