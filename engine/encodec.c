/* encodec.c - EnCodec on the CPU: residual vector quantizer, SEANet decoder
 * and encoder, as Hugging Face's EncodecModel computes them
 * (../spec/SPEC-encodec.md, tensor names in SPEC-format §3.4).
 *
 * Layout: activations are [channels][time]. A convolution is a sum over its
 * taps of products W_k[cout][cin] . X[cin][time shifted by the tap]; strided
 * convolutions first split their padded input into `stride` phases so every
 * tap reads a contiguous window, and transposed convolutions compute each
 * output phase as its own sum of taps. Time is split across the pool's
 * threads, each calling single-threaded OpenBLAS on tiles that stay in cache.
 * The LSTM projects all time steps' inputs with one product and runs only the
 * recurrent product step by step. */
#include "autoconfig.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/encodec.h"
#include "engine/errf.h"
#include "engine/kernels.h"

#define PREFIX "audio_encoder."

/* ---------------------------------------------------------------- binding */

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
	size_t o = 0;
	o += (size_t)snprintf(buf + o, n - o, "[");
	for (int i = 0; i < ndim && o < n; i++)
		o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
	if (o < n)
		snprintf(buf + o, n - o, "]");
}

/* The tensor `name` with exactly this shape, else NULL and an error naming it. */
static const st_tensor *need(const st_set *st, const char *name, int ndim, const int64_t *shape,
                             char *err, size_t errlen)
{
	const st_tensor *t = st_find(st, name);
	if (!t) {
		mg_errf(err, errlen, "tensor '%s' is missing", name);
		return NULL;
	}
	int ok = t->ndim == ndim;
	for (int i = 0; ok && i < ndim; i++)
		ok = t->shape[i] == shape[i];
	if (!ok) {
		char want[128], got[128];
		shape_str(want, sizeof want, ndim, shape);
		shape_str(got, sizeof got, t->ndim, t->shape);
		mg_errf(err, errlen, "%s: tensor '%s' has shape %s; expected %s", t->file, name, got, want);
		return NULL;
	}
	return t;
}

/* Where weights come from: a set, or (make != NULL) random weights added to
 * `make` as they are asked for, for benchmarks of a given shape. */
struct wsrc {
	const st_set *st;
	st_set *make;
	uint64_t rng;
};

static float rand_uniform(uint64_t *s)
{
	/* splitmix64 -> [-1, 1) */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return (float)((double)(z >> 40) / (double)(1ull << 23) - 1.0);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* A random tensor of this shape with values that keep activations O(1). */
static int make_random(struct wsrc *src, const char *name, int ndim, const int64_t *shape, char *err,
                       size_t errlen)
{
	int64_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= shape[i];
	float *d = malloc((size_t)n * sizeof(float) + 1);
	if (!d)
		return mg_errf(err, errlen, "out of memory making '%s'", name);
	float scale = 1.0f;
	if (ends_with(name, "bias") || strstr(name, ".bias_"))
		scale = 0.01f;
	else if (strstr(name, ".weight_ih_") || strstr(name, ".weight_hh_"))
		scale = 1.0f / sqrtf((float)shape[1]);
	int constant = ends_with(name, ".weight_g");
	for (int64_t i = 0; i < n; i++)
		d[i] = constant ? 1.0f : scale * rand_uniform(&src->rng);
	/* On failure the set may already own d, so it is not freed here. */
	if (st_add_owned(src->make, name, ST_F32, ndim, shape, d))
		return mg_errf(err, errlen, "cannot add '%s' to the in-memory set", name);
	return 0;
}

/* A malloc'd float32 copy of a checked tensor. */
static float *load(struct wsrc *src, const char *name, int ndim, const int64_t *shape, size_t *n_params,
                   char *err, size_t errlen)
{
	if (src->make && make_random(src, name, ndim, shape, err, errlen))
		return NULL;
	const st_set *st = src->make ? src->make : src->st;
	const st_tensor *t = need(st, name, ndim, shape, err, errlen);
	if (!t || st_check_finite(t, err, errlen))
		return NULL;
	float *d = malloc((size_t)t->numel * sizeof(float) + 1);
	if (!d) {
		mg_errf(err, errlen, "out of memory loading '%s'", name);
		return NULL;
	}
	if (st_to_f32(t, d, err, errlen)) {
		free(d);
		return NULL;
	}
	/* The converted copy is the only one kept: the mapped pages go. */
	st_release(st, t);
	*n_params += (size_t)t->numel;
	return d;
}

/* Loads `base`.{weight_g, weight_v, bias} (or the parametrizations spelling),
 * folds the weight norm (over every dim but dim 0, as torch's weight_norm)
 * and stores the weight per tap as w[k][cout][cin]. */
static int bind_conv(mg_encodec_conv *cv, struct wsrc *src, const char *base, int cin, int cout, int kernel,
                     int stride, int dilation, int transposed, size_t *n_params, char *err, size_t errlen)
{
	char gname[256], vname[256], bname[256];
	memset(cv, 0, sizeof *cv);
	cv->cin = cin;
	cv->cout = cout;
	cv->kernel = kernel;
	cv->stride = stride;
	cv->dilation = dilation;
	cv->transposed = transposed;

	snprintf(gname, sizeof gname, "%s.weight_g", base);
	snprintf(vname, sizeof vname, "%s.weight_v", base);
	if (!src->make && !st_find(src->st, gname) && !st_find(src->st, vname)) {
		snprintf(gname, sizeof gname, "%s.parametrizations.weight.original0", base);
		snprintf(vname, sizeof vname, "%s.parametrizations.weight.original1", base);
		if (!st_find(src->st, gname) && !st_find(src->st, vname))
			return mg_errf(err, errlen, "tensor '%s.weight_g' is missing (nor is there '%s')", base, gname);
	}
	snprintf(bname, sizeof bname, "%s.bias", base);

	int d0 = transposed ? cin : cout, d1 = transposed ? cout : cin;
	int64_t vshape[3] = {d0, d1, kernel}, gshape[3] = {d0, 1, 1}, bshape[1] = {cout};
	float *g = load(src, gname, 3, gshape, n_params, err, errlen);
	float *v = g ? load(src, vname, 3, vshape, n_params, err, errlen) : NULL;
	cv->bias = v ? load(src, bname, 1, bshape, n_params, err, errlen) : NULL;
	size_t per = (size_t)d1 * (size_t)kernel;
	cv->w = cv->bias ? malloc((size_t)d0 * per * sizeof(float) + 1) : NULL;
	if (!cv->w) {
		if (cv->bias)
			mg_errf(err, errlen, "out of memory folding '%s'", vname);
		free(g);
		free(v);
		free(cv->bias);
		cv->bias = NULL;
		return -1;
	}
	for (int a = 0; a < d0; a++) {
		const float *va = v + (size_t)a * per;
		double ss = 0;
		for (size_t j = 0; j < per; j++)
			ss += (double)va[j] * va[j];
		/* HF: v * (g / ||v||), in float32. */
		float scale = g[a] / (float)sqrt(ss);
		for (int b = 0; b < d1; b++)
			for (int k = 0; k < kernel; k++) {
				int o = transposed ? b : a, i = transposed ? a : b;
				cv->w[((size_t)k * cout + o) * cin + i] = va[(size_t)b * kernel + k] * scale;
			}
	}
	free(g);
	free(v);
	return 0;
}

static void free_conv(mg_encodec_conv *cv)
{
	free(cv->w);
	free(cv->bias);
	memset(cv, 0, sizeof *cv);
}

static int bind_lstm(mg_encodec_lstm *l, struct wsrc *src, const char *base, int dim, int layers,
                     size_t *n_params, char *err, size_t errlen)
{
	memset(l, 0, sizeof *l);
	l->dim = dim;
	l->w_ih = calloc((size_t)layers, sizeof *l->w_ih);
	l->w_hh = calloc((size_t)layers, sizeof *l->w_hh);
	l->bias = calloc((size_t)layers, sizeof *l->bias);
	if (!l->w_ih || !l->w_hh || !l->bias)
		return mg_errf(err, errlen, "out of memory for '%s'", base);
	l->layers = layers;
	int64_t wshape[2] = {4 * (int64_t)dim, dim}, bshape[1] = {4 * (int64_t)dim};
	for (int n = 0; n < layers; n++) {
		char name[4][256];
		snprintf(name[0], sizeof name[0], "%s.weight_ih_l%d", base, n);
		snprintf(name[1], sizeof name[1], "%s.weight_hh_l%d", base, n);
		snprintf(name[2], sizeof name[2], "%s.bias_ih_l%d", base, n);
		snprintf(name[3], sizeof name[3], "%s.bias_hh_l%d", base, n);
		float *wi = load(src, name[0], 2, wshape, n_params, err, errlen);
		float *wh = wi ? load(src, name[1], 2, wshape, n_params, err, errlen) : NULL;
		float *bi = wh ? load(src, name[2], 1, bshape, n_params, err, errlen) : NULL;
		float *bh = bi ? load(src, name[3], 1, bshape, n_params, err, errlen) : NULL;
		l->w_ih[n] = bh ? malloc((size_t)wshape[0] * dim * sizeof(float)) : NULL;
		l->w_hh[n] = l->w_ih[n] ? malloc((size_t)wshape[0] * dim * sizeof(float)) : NULL;
		l->bias[n] = l->w_hh[n] ? malloc((size_t)wshape[0] * sizeof(float)) : NULL;
		if (l->bias[n]) {
			/* PyTorch rows are [gate][unit]; ours are [unit][gate]. */
			for (int gate = 0; gate < 4; gate++)
				for (int j = 0; j < dim; j++) {
					size_t from = (size_t)gate * dim + j, to = (size_t)j * 4 + gate;
					memcpy(l->w_ih[n] + to * dim, wi + from * dim, (size_t)dim * sizeof(float));
					memcpy(l->w_hh[n] + to * dim, wh + from * dim, (size_t)dim * sizeof(float));
					l->bias[n][to] = bi[from] + bh[from];
				}
		} else if (bh) {
			mg_errf(err, errlen, "out of memory for '%s'", base);
		}
		free(wi);
		free(wh);
		free(bi);
		free(bh);
		if (!l->bias[n])
			return -1;
	}
	return 0;
}

static void free_lstm(mg_encodec_lstm *l)
{
	for (int n = 0; n < l->layers; n++) {
		if (l->w_ih)
			free(l->w_ih[n]);
		if (l->w_hh)
			free(l->w_hh[n]);
		if (l->bias)
			free(l->bias[n]);
	}
	for (int n = 0; l->w_hh16 && n < l->layers; n++)
		free(l->w_hh16[n]);
	for (int n = 0; l->w_hh8 && n < l->layers; n++)
		mg_mat_free(&l->w_hh8[n]);
	free(l->w_ih);
	free(l->w_hh);
	free(l->w_hh16);
	free(l->w_hh8);
	free(l->bias);
	memset(l, 0, sizeof *l);
}

static void free_layer(mg_encodec_layer *L)
{
	free_conv(&L->conv);
	free_conv(&L->block[0]);
	free_conv(&L->block[1]);
	free_conv(&L->shortcut);
	free_lstm(&L->lstm);
}

/* The layer list under construction. */
struct builder {
	struct wsrc *src;
	const mg_encodec_config *c;
	const char *side;        /* "encoder" / "decoder" */
	mg_encodec_layer *layers;
	int n, cap;
	size_t *n_params;
	char *err;
	size_t errlen;
};

static mg_encodec_layer *add_layer(struct builder *b, int op, int cin, int cout)
{
	if (b->n == b->cap) {
		int cap = b->cap ? 2 * b->cap : 32;
		mg_encodec_layer *l = realloc(b->layers, (size_t)cap * sizeof *l);
		if (!l) {
			mg_errf(b->err, b->errlen, "out of memory for the EnCodec %s", b->side);
			return NULL;
		}
		b->layers = l;
		b->cap = cap;
	}
	mg_encodec_layer *L = &b->layers[b->n++];
	memset(L, 0, sizeof *L);
	L->op = op;
	L->cin = cin;
	L->cout = cout;
	return L;
}

static int add_conv(struct builder *b, int transposed, int cin, int cout, int kernel, int stride)
{
	int idx = b->n;
	mg_encodec_layer *L = add_layer(b, transposed ? MG_ENCODEC_CONVT : MG_ENCODEC_CONV, cin, cout);
	if (!L)
		return -1;
	char base[160];
	snprintf(base, sizeof base, PREFIX "%s.layers.%d.conv", b->side, idx);
	return bind_conv(&L->conv, b->src, base, cin, cout, kernel, stride, 1, transposed, b->n_params, b->err,
	                 b->errlen);
}

static int add_elu(struct builder *b, int dim)
{
	return add_layer(b, MG_ENCODEC_ELU, dim, dim) ? 0 : -1;
}

static int add_lstm(struct builder *b, int dim)
{
	int idx = b->n;
	mg_encodec_layer *L = add_layer(b, MG_ENCODEC_LSTM, dim, dim);
	if (!L)
		return -1;
	char base[160];
	snprintf(base, sizeof base, PREFIX "%s.layers.%d.lstm", b->side, idx);
	return bind_lstm(&L->lstm, b->src, base, dim, b->c->num_lstm_layers, b->n_params, b->err, b->errlen);
}

/* EncodecResnetBlock(dim, dilations (growth^j, 1)). */
static int add_resblock(struct builder *b, int dim, int j)
{
	const mg_encodec_config *c = b->c;
	int idx = b->n, hidden = dim / c->compress;
	mg_encodec_layer *L = add_layer(b, MG_ENCODEC_RESBLOCK, dim, dim);
	if (!L)
		return -1;
	if (hidden < 1)
		return mg_errf(b->err, b->errlen, "EnCodec %s layer %d: %d channels / compress %d leaves none", b->side,
		            idx, dim, c->compress);
	int dilation = 1;
	for (int i = 0; i < j; i++)
		dilation *= c->dilation_growth_rate;
	char base[160];
	snprintf(base, sizeof base, PREFIX "%s.layers.%d.block.1.conv", b->side, idx);
	if (bind_conv(&L->block[0], b->src, base, dim, hidden, c->residual_kernel_size, 1, dilation, 0, b->n_params,
	              b->err, b->errlen))
		return -1;
	snprintf(base, sizeof base, PREFIX "%s.layers.%d.block.3.conv", b->side, idx);
	if (bind_conv(&L->block[1], b->src, base, hidden, dim, 1, 1, 1, 0, b->n_params, b->err, b->errlen))
		return -1;
	if (c->use_conv_shortcut) {
		L->has_shortcut = 1;
		snprintf(base, sizeof base, PREFIX "%s.layers.%d.shortcut.conv", b->side, idx);
		if (bind_conv(&L->shortcut, b->src, base, dim, dim, 1, 1, 1, 0, b->n_params, b->err, b->errlen))
			return -1;
	}
	return 0;
}

/* HF EncodecDecoder.__init__. */
static int build_decoder(struct builder *b)
{
	const mg_encodec_config *c = b->c;
	int scale = 1 << c->num_ratios, nf = c->num_filters;
	if (add_conv(b, 0, c->hidden_size, scale * nf, c->kernel_size, 1) || add_lstm(b, scale * nf))
		return -1;
	for (int r = 0; r < c->num_ratios; r++) {
		int cur = scale * nf, ratio = c->ratios[r];
		if (add_elu(b, cur) || add_conv(b, 1, cur, cur / 2, 2 * ratio, ratio))
			return -1;
		for (int j = 0; j < c->num_residual_layers; j++)
			if (add_resblock(b, cur / 2, j))
				return -1;
		scale /= 2;
	}
	if (add_elu(b, nf) || add_conv(b, 0, nf, c->audio_channels, c->last_kernel_size, 1))
		return -1;
	return 0;
}

/* HF EncodecEncoder.__init__. */
static int build_encoder(struct builder *b)
{
	const mg_encodec_config *c = b->c;
	int scale = 1, nf = c->num_filters;
	if (add_conv(b, 0, c->audio_channels, nf, c->kernel_size, 1))
		return -1;
	for (int r = c->num_ratios - 1; r >= 0; r--) {
		int cur = scale * nf, ratio = c->ratios[r];
		for (int j = 0; j < c->num_residual_layers; j++)
			if (add_resblock(b, cur, j))
				return -1;
		if (add_elu(b, cur) || add_conv(b, 0, cur, 2 * cur, 2 * ratio, ratio))
			return -1;
		scale *= 2;
	}
	if (add_lstm(b, scale * nf) || add_elu(b, scale * nf) ||
	    add_conv(b, 0, scale * nf, c->hidden_size, c->last_kernel_size, 1))
		return -1;
	return 0;
}

static int build(struct builder *b, mg_encodec_layer **out, int *n, int (*fn)(struct builder *))
{
	int rc = fn(b);
	*out = b->layers;
	*n = b->n;
	return rc;
}

static int bind_from(mg_encodec *e, struct wsrc *src, const mg_encodec_config *c, int with_encoder, char *err,
                     size_t errlen)
{
	memset(e, 0, sizeof *e);
	e->c = *c;
	if (c->num_lstm_layers < 1)
		return mg_errf(err, errlen, "audio_encoder.num_lstm_layers is %d; EnCodec needs at least 1",
		            c->num_lstm_layers);
	if (c->codebook_size < 1 || c->codebook_dim != c->hidden_size)
		return mg_errf(err, errlen, "audio_encoder: codebooks of %d x %d do not fit hidden size %d", c->codebook_size,
		            c->codebook_dim, c->hidden_size);

	struct builder b = {src, c, "decoder", NULL, 0, 0, &e->n_params, err, errlen};
	int rc = build(&b, &e->dec, &e->n_dec, build_decoder);
	if (!rc && with_encoder) {
		struct builder be = {src, c, "encoder", NULL, 0, 0, &e->n_params, err, errlen};
		rc = build(&be, &e->enc, &e->n_enc, build_encoder);
	}
	if (rc) {
		mg_encodec_free(e);
		return -1;
	}

	/* The quantizer layers the checkpoint stores decide how many there are
	 * (transformers versions derive the count from target_bandwidths
	 * differently); they must be numbered 0..n-1 without gaps. */
	if (src->make) {
		e->n_q_stored = c->num_quantizers;
	} else {
		const char *qp = PREFIX "quantizer.layers.";
		size_t qn = strlen(qp);
		for (size_t i = 0; i < st_count(src->st); i++) {
			const char *name = st_at(src->st, i)->name;
			if (strncmp(name, qp, qn) || name[qn] < '0' || name[qn] > '9')
				continue;
			long q = strtol(name + qn, NULL, 10);
			if (q >= 0 && q < 4096 && q + 1 > e->n_q_stored)
				e->n_q_stored = (int)q + 1;
		}
		if (e->n_q_stored < 1) {
			mg_encodec_free(e);
			return mg_errf(err, errlen, "tensor '" PREFIX "quantizer.layers.0.codebook.embed' is missing");
		}
	}
	size_t rows = (size_t)c->codebook_size, dim = (size_t)c->codebook_dim;
	e->codebook = malloc((size_t)e->n_q_stored * rows * dim * sizeof(float));
	e->codebook_sq = malloc((size_t)e->n_q_stored * rows * sizeof(float));
	if (!e->codebook || !e->codebook_sq) {
		mg_encodec_free(e);
		return mg_errf(err, errlen, "out of memory for the EnCodec codebooks");
	}
	for (int q = 0; q < e->n_q_stored; q++) {
		char name[160];
		int64_t shape[2] = {c->codebook_size, c->codebook_dim};
		snprintf(name, sizeof name, PREFIX "quantizer.layers.%d.codebook.embed", q);
		float *d = load(src, name, 2, shape, &e->n_params, err, errlen);
		if (!d) {
			mg_encodec_free(e);
			return -1;
		}
		float *cb = e->codebook + (size_t)q * rows * dim;
		memcpy(cb, d, rows * dim * sizeof(float));
		free(d);
		/* HF: embed.pow(2).sum(0), float32. */
		for (size_t r = 0; r < rows; r++) {
			float s = 0;
			for (size_t i = 0; i < dim; i++)
				s += cb[r * dim + i] * cb[r * dim + i];
			e->codebook_sq[(size_t)q * rows + r] = s;
		}
	}

	/* What decode uses by default: the config's count (transformers 4.x's
	 * formula), or every stored layer when the config asks for more. */
	e->n_q = c->num_quantizers >= 1 && c->num_quantizers <= e->n_q_stored ? c->num_quantizers : e->n_q_stored;

	/* HF get_num_quantizers_for_bandwidth(target_bandwidths[0]), capped by the
	 * quantizer layers that exist. */
	e->n_q_encode = e->n_q_stored;
	if (c->encode_bandwidth > 0) {
		double per_q = log2((double)c->codebook_size) * c->frame_rate;
		double nq = floor(c->encode_bandwidth * 1000.0 / per_q);
		if (nq < 1)
			nq = 1;
		if (nq < e->n_q_stored)
			e->n_q_encode = (int)nq;
	}
	return 0;
}

int mg_encodec_bind(mg_encodec *e, const st_set *st, const mg_encodec_config *c, char *err, size_t errlen)
{
	struct wsrc src = {st, NULL, 0};
	return bind_from(e, &src, c, 1, err, errlen);
}

/* The float32 recurrent matrices, once a reduced copy replaces them. */
static void drop_w_hh(mg_encodec_lstm *l)
{
	for (int k = 0; k < l->layers; k++) {
		free(l->w_hh[k]);
		l->w_hh[k] = NULL;
	}
}

static int lstm_half(mg_encodec_lstm *l, char *err, size_t errlen)
{
	if (l->w_hh16 || l->w_hh8 || l->layers < 1)
		return 0;
	size_t n = (size_t)4 * l->dim * l->dim;
	l->w_hh16 = calloc((size_t)l->layers, sizeof *l->w_hh16);
	for (int k = 0; l->w_hh16 && k < l->layers; k++) {
		if (!(l->w_hh16[k] = malloc(n * sizeof(uint16_t)))) {
			for (int i = 0; i < k; i++)
				free(l->w_hh16[i]);
			free(l->w_hh16);
			l->w_hh16 = NULL;
			break;
		}
		mg_kernels_active()->to_f16(l->w_hh[k], l->w_hh16[k], n);
	}
	if (!l->w_hh16)
		return mg_errf(err, errlen, "out of memory for the EnCodec LSTM in half precision");
	drop_w_hh(l);
	return 0;
}

static int lstm_q8(mg_encodec_lstm *l, char *err, size_t errlen)
{
	if (l->w_hh16 || l->w_hh8 || l->layers < 1)
		return 0;
	if (!(l->w_hh8 = calloc((size_t)l->layers, sizeof *l->w_hh8)))
		return mg_errf(err, errlen, "out of memory for the EnCodec LSTM in q8");
	for (int k = 0; k < l->layers; k++)
		if (mg_mat_from_f32(&l->w_hh8[k], l->w_hh[k], 4 * l->dim, l->dim, MG_WEIGHTS_Q8, err, errlen)) {
			for (int i = 0; i < k; i++)
				mg_mat_free(&l->w_hh8[i]);
			free(l->w_hh8);
			l->w_hh8 = NULL;
			return -1;
		}
	drop_w_hh(l);
	return 0;
}

static int lstm_reduce(mg_encodec *e, int (*to)(mg_encodec_lstm *, char *, size_t), char *err, size_t errlen)
{
	for (int i = 0; i < e->n_dec; i++)
		if (e->dec[i].op == MG_ENCODEC_LSTM && to(&e->dec[i].lstm, err, errlen))
			return -1;
	for (int i = 0; i < e->n_enc; i++)
		if (e->enc[i].op == MG_ENCODEC_LSTM && to(&e->enc[i].lstm, err, errlen))
			return -1;
	return 0;
}

int mg_encodec_lstm_half(mg_encodec *e, char *err, size_t errlen)
{
	return lstm_reduce(e, lstm_half, err, errlen);
}

int mg_encodec_lstm_q8(mg_encodec *e, char *err, size_t errlen)
{
	return lstm_reduce(e, lstm_q8, err, errlen);
}

int mg_encodec_bind_decoder(mg_encodec *e, const st_set *st, const mg_encodec_config *c, char *err, size_t errlen)
{
	struct wsrc src = {st, NULL, 0};
	return bind_from(e, &src, c, 0, err, errlen);
}

int mg_encodec_random_weights(st_set *out, const mg_encodec_config *c, uint64_t seed, char *err, size_t errlen)
{
	struct wsrc src = {NULL, out, seed};
	mg_encodec e;
	if (bind_from(&e, &src, c, 1, err, errlen))
		return -1;
	mg_encodec_free(&e);
	return 0;
}

void mg_encodec_free(mg_encodec *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->n_dec; i++)
		free_layer(&e->dec[i]);
	for (int i = 0; i < e->n_enc; i++)
		free_layer(&e->enc[i]);
	free(e->dec);
	free(e->enc);
	free(e->codebook);
	free(e->codebook_sq);
	memset(e, 0, sizeof *e);
}

int64_t mg_encodec_decoded_length(const mg_encodec *e, int F)
{
	return (int64_t)F * e->c.hop_length;
}

int mg_encodec_quantizers(const mg_encodec *e)
{
	return e->n_q_stored;
}

int mg_encodec_encode_quantizers(const mg_encodec *e)
{
	return e->n_q_encode;
}

size_t mg_encodec_param_count(const mg_encodec *e)
{
	return e->n_params;
}

/* ------------------------------------------------------------- primitives */

static int64_t ceil_div(int64_t a, int64_t b)
{
	return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/* [begin, end) of n items for thread ith of nth. */
static void split(int64_t n, int ith, int nth, int64_t *begin, int64_t *end)
{
	*begin = n * ith / nth;
	*end = n * (ith + 1) / nth;
}

/* ELU(alpha 1): x for x > 0, else expm1(x). expm1 by range reduction
 * x = n ln2 + r, |r| <= ln2 / 2, and a degree-8 polynomial for expm1(r):
 * expm1(x) = 2^n expm1(r) + (2^n - 1), within a few ulp of expm1f. The AVX2
 * path computes the same formula eight samples at a time. */
#define ELU_LN2_HI 0.693145751953125f
#define ELU_LN2_LO 1.428606765330187e-06f
#define ELU_INV_LN2 1.44269504088896341f

static inline float elu(float x)
{
	if (x > 0 || isnan(x))
		return x;
	float xc = x < -87.0f ? -87.0f : x;
	float n = nearbyintf(xc * ELU_INV_LN2);
	float r = (xc - n * ELU_LN2_HI) - n * ELU_LN2_LO;
	float p = 1.0f / 40320;
	p = p * r + 1.0f / 5040;
	p = p * r + 1.0f / 720;
	p = p * r + 1.0f / 120;
	p = p * r + 1.0f / 24;
	p = p * r + 1.0f / 6;
	p = p * r + 0.5f;
	p = p * (r * r) + r;
	float two_n = ldexpf(1.0f, (int)n);
	return two_n * p + (two_n - 1.0f);
}

/* x86 kernels, chosen at run time; -DMG_NO_SIMD builds the portable path
 * alone (how it is tested on x86). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(MG_NO_SIMD)
#include <immintrin.h>
#define ELU_HAVE_AVX2 1

__attribute__((target("avx2,fma"))) static void elu_span_avx2(float *dst, const float *src, int64_t n)
{
	const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), lo = _mm256_set1_ps(-87.0f);
	const __m256 inv_ln2 = _mm256_set1_ps(ELU_INV_LN2), ln2_hi = _mm256_set1_ps(ELU_LN2_HI),
	             ln2_lo = _mm256_set1_ps(ELU_LN2_LO);
	const __m256 c8 = _mm256_set1_ps(1.0f / 40320), c7 = _mm256_set1_ps(1.0f / 5040),
	             c6 = _mm256_set1_ps(1.0f / 720), c5 = _mm256_set1_ps(1.0f / 120), c4 = _mm256_set1_ps(1.0f / 24),
	             c3 = _mm256_set1_ps(1.0f / 6), c2 = _mm256_set1_ps(0.5f);
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 x = _mm256_loadu_ps(src + i);
		__m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), zero);
		__m256 nf = _mm256_round_ps(_mm256_mul_ps(xc, inv_ln2), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
		__m256 r = _mm256_fnmadd_ps(nf, ln2_lo, _mm256_fnmadd_ps(nf, ln2_hi, xc));
		__m256 p = _mm256_fmadd_ps(c8, r, c7);
		p = _mm256_fmadd_ps(p, r, c6);
		p = _mm256_fmadd_ps(p, r, c5);
		p = _mm256_fmadd_ps(p, r, c4);
		p = _mm256_fmadd_ps(p, r, c3);
		p = _mm256_fmadd_ps(p, r, c2);
		p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
		__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nf), _mm256_set1_epi32(127)), 23);
		__m256 two_n = _mm256_castsi256_ps(e);
		__m256 y = _mm256_fmadd_ps(two_n, p, _mm256_sub_ps(two_n, one));
		/* x itself where x > 0 or x is NaN. */
		__m256 keep = _mm256_cmp_ps(x, zero, _CMP_NLE_UQ);
		_mm256_storeu_ps(dst + i, _mm256_blendv_ps(y, x, keep));
	}
	for (; i < n; i++)
		dst[i] = elu(src[i]);
}
#endif

/* dst[i] = ELU(src[i]); dst may be src. */
static void elu_span(float *dst, const float *src, int64_t n)
{
#ifdef ELU_HAVE_AVX2
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
		elu_span_avx2(dst, src, n);
		return;
	}
#endif
	for (int64_t i = 0; i < n; i++)
		dst[i] = elu(src[i]);
}

/* Direct multi-tap products for layers with few output channels (the last
 * convolution has one), where BLAS spends most of its time packing operands:
 *   y[o][t] = init[o] + sum_k sum_i w[k][o][i] * x[k][i * ldx + t]
 * for o < cout, t < n; w[k] is [cout][cin], x[k] points at tap k's first
 * column. 8 output rows x 32 columns per block, 16 accumulators. Measured on
 * musicgen-small's shapes, OpenBLAS is as fast or faster from 16 rows up. */
#define TAPS_MAX 32
#define TAPS_DIRECT_ROWS 16
#define TAPS_DIRECT_BYTES (512 * 1024)

#ifdef ELU_HAVE_AVX2
#define TAPS_HAVE_AVX512 1

__attribute__((target("avx512f"))) static void taps_avx512(int cout, int cin, int ntaps, const float *const *w,
                                                           const float *const *x, int64_t ldx, const float *init,
                                                           float *y, int64_t ldy, int64_t n)
{
	for (int64_t t = 0; t < n; t += 32) {
		int64_t m = n - t;
		__mmask16 k0 = m >= 16 ? 0xFFFF : (__mmask16)((1u << m) - 1);
		__mmask16 k1 = m >= 32 ? 0xFFFF : m > 16 ? (__mmask16)((1u << (m - 16)) - 1) : 0;
		int o = 0;
		for (; o + 8 <= cout; o += 8) {
			__m512 a[8][2];
#pragma GCC unroll 8
			for (int r = 0; r < 8; r++)
				a[r][0] = a[r][1] = init ? _mm512_set1_ps(init[o + r]) : _mm512_setzero_ps();
			for (int k = 0; k < ntaps; k++) {
				const float *wk = w[k] + (int64_t)o * cin, *xk = x[k] + t;
				for (int i = 0; i < cin; i++) {
					const float *xi = xk + (int64_t)i * ldx;
					__m512 x0 = _mm512_maskz_loadu_ps(k0, xi), x1 = _mm512_maskz_loadu_ps(k1, xi + 16);
#pragma GCC unroll 8
					for (int r = 0; r < 8; r++) {
						__m512 wr = _mm512_set1_ps(wk[(int64_t)r * cin + i]);
						a[r][0] = _mm512_fmadd_ps(wr, x0, a[r][0]);
						a[r][1] = _mm512_fmadd_ps(wr, x1, a[r][1]);
					}
				}
			}
#pragma GCC unroll 8
			for (int r = 0; r < 8; r++) {
				float *yr = y + (int64_t)(o + r) * ldy + t;
				_mm512_mask_storeu_ps(yr, k0, a[r][0]);
				_mm512_mask_storeu_ps(yr + 16, k1, a[r][1]);
			}
		}
		for (; o < cout; o++) {
			__m512 a0 = init ? _mm512_set1_ps(init[o]) : _mm512_setzero_ps(), a1 = a0;
			for (int k = 0; k < ntaps; k++) {
				const float *wk = w[k] + (int64_t)o * cin, *xk = x[k] + t;
				for (int i = 0; i < cin; i++) {
					const float *xi = xk + (int64_t)i * ldx;
					__m512 wr = _mm512_set1_ps(wk[i]);
					a0 = _mm512_fmadd_ps(wr, _mm512_maskz_loadu_ps(k0, xi), a0);
					a1 = _mm512_fmadd_ps(wr, _mm512_maskz_loadu_ps(k1, xi + 16), a1);
				}
			}
			float *yr = y + (int64_t)o * ldy + t;
			_mm512_mask_storeu_ps(yr, k0, a0);
			_mm512_mask_storeu_ps(yr + 16, k1, a1);
		}
	}
}
#endif

/* Whether the direct product suits this layer on this machine: few output
 * rows, few enough taps, weights that stay in the core's cache. */
static int taps_direct(int cout, int cin, int ntaps)
{
#ifdef TAPS_HAVE_AVX512
	return cout < TAPS_DIRECT_ROWS && ntaps <= TAPS_MAX && (int64_t)ntaps * cout * cin * 4 <= TAPS_DIRECT_BYTES &&
	       __builtin_cpu_supports("avx512f");
#else
	(void)cout;
	(void)cin;
	(void)ntaps;
	return 0;
#endif
}

static void taps_product(int cout, int cin, int ntaps, const float *const *w, const float *const *x, int64_t ldx,
                         const float *init, float *y, int64_t ldy, int64_t n)
{
#ifdef TAPS_HAVE_AVX512
	taps_avx512(cout, cin, ntaps, w, x, ldx, init, y, ldy, n);
#else
	(void)cout, (void)cin, (void)ntaps, (void)w, (void)x, (void)ldx, (void)init, (void)y, (void)ldy, (void)n;
#endif
}

/* EncodecConv1d padding (non-causal): left, right (with the extra right
 * padding that makes the last window complete) and the output length. */
struct conv_geom {
	int64_t keff, pad_left, pad_right, out_len, padded_len;
	int64_t plen;        /* length of one input phase: ceil(padded_len / stride) */
	int direct;          /* stride 1, no padding: the input is read in place */
};

static struct conv_geom conv_geometry(const mg_encodec_conv *cv, int64_t L)
{
	struct conv_geom g;
	int64_t s = cv->stride;
	g.keff = (int64_t)(cv->kernel - 1) * cv->dilation + 1;
	int64_t pad_total = g.keff - s;
	/* n_frames = (L - keff + pad_total) / s + 1 (real division), rounded up. */
	int64_t n_frames = ceil_div(L - g.keff + pad_total, s) + 1;
	int64_t extra = (n_frames - 1) * s + (g.keff - pad_total) - L;
	g.pad_right = pad_total / 2;
	g.pad_left = pad_total - g.pad_right;
	g.pad_right += extra;
	g.padded_len = L + g.pad_left + g.pad_right;
	g.out_len = (g.padded_len - g.keff) / s + 1;
	g.plen = ceil_div(g.padded_len, s);
	g.direct = s == 1 && g.pad_left == 0 && g.pad_right == 0;
	return g;
}

/* Sample p (in [-left, n + right)) of HF's _pad1d(x, (left, right)): reflect
 * without repeating the edge; when n <= max(left, right) torch needs the input
 * zero-extended on the right first (and the extension dropped again). */
static inline float pad_sample(const float *x, int64_t n, int64_t p, int64_t maxpad, int reflect)
{
	if (p >= 0 && p < n)
		return x[p];
	if (!reflect)
		return 0.0f;
	int64_t ne = n <= maxpad ? maxpad + 1 : n;
	if (p < 0)
		p = -p;
	if (p >= ne)
		p = 2 * (ne - 1) - p;
	return p < n ? x[p] : 0.0f;
}

/* Columns per BLAS call: the output tile [cout][cols] stays near 256 KB. */
static int64_t tile_cols(int cout)
{
	int64_t t = (65536 / (cout > 0 ? cout : 1)) & ~(int64_t)15;
	return t < 64 ? 64 : t;
}

/* Three activation buffers, each large enough for any layer's input, output
 * or padded input; layers pass their output on by swapping. */
struct work {
	float *buf[3];
	int64_t cap;         /* floats per buffer */
};

struct conv_job {
	const mg_encodec_conv *cv;
	struct conv_geom g;
	const float *x;      /* [cin][L] */
	int64_t L;
	int elu_in;          /* apply ELU to the input first */
	int reflect;
	const float *ph;     /* phases [stride][cin][plen] (or x when direct) */
	float *ph_out;
	float *y;            /* [cout][out_len] */
};

/* Padded input split into `stride` phases: ph[r][i][m] = xp[i][m * s + r]. */
static void conv_pad_job(void *arg, int ith, int nth)
{
	struct conv_job *j = arg;
	const mg_encodec_conv *cv = j->cv;
	int64_t s = cv->stride, b, e, pl = j->g.pad_left, L = j->L;
	int64_t maxpad = pl > j->g.pad_right ? pl : j->g.pad_right;
	split((int64_t)cv->cin * s, ith, nth, &b, &e);
	for (int64_t row = b; row < e; row++) {
		int64_t r = row / cv->cin, i = row % cv->cin;
		const float *x = j->x + i * L;
		float *dst = j->ph_out + row * j->g.plen;
		if (s == 1) {
			/* Edges one by one, the body as one span. */
			for (int64_t m = 0; m < pl; m++)
				dst[m] = pad_sample(x, L, m - pl, maxpad, j->reflect);
			for (int64_t m = pl + L; m < j->g.padded_len; m++)
				dst[m] = pad_sample(x, L, m - pl, maxpad, j->reflect);
			if (j->elu_in) {
				elu_span(dst, dst, pl);
				elu_span(dst + pl, x, L);
				elu_span(dst + pl + L, dst + pl + L, j->g.padded_len - pl - L);
			} else {
				memcpy(dst + pl, x, (size_t)L * sizeof(float));
			}
			continue;
		}
		for (int64_t m = 0; m < j->g.plen; m++) {
			int64_t p = m * s + r;
			float v = p < j->g.padded_len ? pad_sample(x, L, p - pl, maxpad, j->reflect) : 0.0f;
			dst[m] = j->elu_in ? elu(v) : v;
		}
	}
}

static void conv_gemm_job(void *arg, int ith, int nth)
{
	struct conv_job *j = arg;
	const mg_encodec_conv *cv = j->cv;
	int64_t T = j->g.out_len, b, e, tile = tile_cols(cv->cout), s = cv->stride;
	split(T, ith, nth, &b, &e);
	if (taps_direct(cv->cout, cv->cin, cv->kernel)) {
		const float *w[TAPS_MAX], *x[TAPS_MAX];
		for (int k = 0; k < cv->kernel; k++) {
			int64_t off = (int64_t)k * cv->dilation, q = off / s, r = off % s;
			w[k] = cv->w + (size_t)k * cv->cout * cv->cin;
			x[k] = j->ph + r * cv->cin * j->g.plen + q + b;
		}
		taps_product(cv->cout, cv->cin, cv->kernel, w, x, j->g.plen, cv->bias, j->y + b, T, e - b);
		return;
	}
	for (int64_t t0 = b; t0 < e; t0 += tile) {
		int64_t n = e - t0 < tile ? e - t0 : tile;
		for (int o = 0; o < cv->cout; o++) {
			float *yo = j->y + o * T + t0;
			for (int64_t t = 0; t < n; t++)
				yo[t] = cv->bias[o];
		}
		for (int k = 0; k < cv->kernel; k++) {
			int64_t off = (int64_t)k * cv->dilation, q = off / s, r = off % s;
			const float *B = j->ph + r * cv->cin * j->g.plen + q + t0;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cv->cout, (int)n, cv->cin, 1.0f,
			            cv->w + (size_t)k * cv->cout * cv->cin, cv->cin, B, (int)j->g.plen, 1.0f, j->y + t0,
			            (int)T);
		}
	}
}

/* Floats conv_forward needs in its phase buffer (0 when it reads x in place)
 * and in its output. */
static void conv_need(const mg_encodec_conv *cv, int64_t L, int elu_in, int64_t *ph, int64_t *y, int64_t *out_len)
{
	struct conv_geom g = conv_geometry(cv, L);
	*ph = g.direct && !elu_in ? 0 : (int64_t)cv->stride * cv->cin * g.plen;
	*y = (int64_t)cv->cout * g.out_len;
	*out_len = g.out_len;
}

/* y[cout][out_len] = conv(elu_in ? ELU(x) : x), HF's EncodecConv1d; ph is
 * scratch for the padded input. */
static int conv_forward(mg_pool *pool, const mg_encodec_conv *cv, const float *x, int64_t L, int elu_in,
                        int reflect, float *ph, float *y, int64_t *out_len, char *err, size_t errlen)
{
	struct conv_job j = {0};
	j.cv = cv;
	j.g = conv_geometry(cv, L);
	j.x = x;
	j.L = L;
	j.elu_in = elu_in;
	j.reflect = reflect;
	j.y = y;
	if (j.g.out_len < 1 || j.g.pad_left < 0)
		return mg_errf(err, errlen, "EnCodec convolution (kernel %d, stride %d) on %lld samples gives no output",
		            cv->kernel, cv->stride, (long long)L);
	if (j.g.direct && !elu_in) {
		j.ph = x;
	} else {
		j.ph_out = ph;
		mg_pool_run(pool, conv_pad_job, &j);
		j.ph = ph;
	}
	mg_pool_run(pool, conv_gemm_job, &j);
	*out_len = j.g.out_len;
	return 0;
}

struct convt_job {
	const mg_encodec_conv *cv;
	const float *x;      /* [cin][L] */
	float *xz;           /* [cin][L + 2 J]: input with J zero columns each side */
	int64_t L, J, lz;
	int64_t pad_left, out_len;
	int elu_in;          /* ELU the input as it is copied */
	float *scratch;      /* [nth][cout][tile] */
	int64_t tile;
	float *y;            /* [cout][out_len] */
};

static void convt_pad_job(void *arg, int ith, int nth)
{
	struct convt_job *j = arg;
	int64_t b, e;
	split(j->cv->cin, ith, nth, &b, &e);
	for (int64_t i = b; i < e; i++) {
		float *d = j->xz + i * j->lz;
		memset(d, 0, (size_t)j->J * sizeof(float));
		if (j->elu_in)
			elu_span(d + j->J, j->x + i * j->L, j->L);
		else
			memcpy(d + j->J, j->x + i * j->L, (size_t)j->L * sizeof(float));
		memset(d + j->J + j->L, 0, (size_t)j->J * sizeof(float));
	}
}

/* Output phase r of frame m (full index u = m s + r) sums the taps
 * k = r + j s over input columns m - j. */
static void convt_gemm_job(void *arg, int ith, int nth)
{
	struct convt_job *j = arg;
	const mg_encodec_conv *cv = j->cv;
	int64_t s = cv->stride, M = j->L + j->J, b, e;
	float *tmp = j->scratch + (size_t)ith * cv->cout * j->tile;
	split(M, ith, nth, &b, &e);
	for (int64_t m0 = b; m0 < e; m0 += j->tile) {
		int64_t n = e - m0 < j->tile ? e - m0 : j->tile;
		for (int64_t r = 0; r < s; r++) {
			int ntaps = (int)ceil_div(cv->kernel - r, s);
			if (taps_direct(cv->cout, cv->cin, ntaps)) {
				const float *w[TAPS_MAX], *x[TAPS_MAX];
				for (int64_t k = r, jj = 0; k < cv->kernel; k += s, jj++) {
					w[jj] = cv->w + (size_t)k * cv->cout * cv->cin;
					x[jj] = j->xz + (m0 - jj + j->J);
				}
				taps_product(cv->cout, cv->cin, ntaps, w, x, j->lz, NULL, tmp, n, n);
			} else {
				memset(tmp, 0, (size_t)cv->cout * n * sizeof(float));
				for (int64_t k = r, jj = 0; k < cv->kernel; k += s, jj++) {
					const float *B = j->xz + (m0 - jj + j->J);
					cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cv->cout, (int)n, cv->cin, 1.0f,
					            cv->w + (size_t)k * cv->cout * cv->cin, cv->cin, B, (int)j->lz, 1.0f, tmp,
					            (int)n);
				}
			}
			for (int o = 0; o < cv->cout; o++) {
				float *yo = j->y + o * j->out_len;
				const float *to = tmp + (size_t)o * n;
				for (int64_t c = 0; c < n; c++) {
					int64_t t = (m0 + c) * s + r - j->pad_left;
					if (t >= 0 && t < j->out_len)
						yo[t] = to[c] + cv->bias[o];
				}
			}
		}
	}
}

static void convt_need(const mg_encodec_conv *cv, int64_t L, int64_t *xz, int64_t *y, int64_t *out_len)
{
	int64_t J = ceil_div(cv->kernel, cv->stride) - 1;
	*xz = (int64_t)cv->cin * (L + 2 * J);
	*out_len = (L - 1) * cv->stride + cv->kernel - (cv->kernel - cv->stride);
	*y = (int64_t)cv->cout * *out_len;
}

/* HF's EncodecConvTranspose1d (non-causal): full transposed convolution,
 * then pad_total = K - s trimmed, pad_total / 2 of it on the right. */
static int convt_forward(mg_pool *pool, const mg_encodec_conv *cv, const float *x, int64_t L, int elu_in, float *xz,
                         float *y, int64_t *out_len, char *err, size_t errlen)
{
	struct convt_job j = {0};
	int64_t s = cv->stride, K = cv->kernel, full = (L - 1) * s + K;
	int64_t pad_total = K - s, pad_right = pad_total / 2;
	j.cv = cv;
	j.x = x;
	j.elu_in = elu_in;
	j.xz = xz;
	j.y = y;
	j.L = L;
	j.J = ceil_div(K, s) - 1;
	j.lz = L + 2 * j.J;
	j.pad_left = pad_total - pad_right;
	j.out_len = full - pad_total;
	if (j.out_len < 1 || pad_total < 0)
		return mg_errf(err, errlen, "EnCodec transposed convolution (kernel %d, stride %d) on %lld frames gives no output",
		            cv->kernel, cv->stride, (long long)L);
	j.tile = tile_cols(cv->cout);
	j.scratch = malloc((size_t)mg_pool_size(pool) * cv->cout * j.tile * sizeof(float));
	if (!j.scratch)
		return mg_errf(err, errlen, "out of memory for an EnCodec transposed convolution");
	mg_pool_run(pool, convt_pad_job, &j);
	mg_pool_run(pool, convt_gemm_job, &j);
	free(j.scratch);
	*out_len = j.out_len;
	return 0;
}

struct elu_job {
	float *x;
	int64_t n;
};

static void elu_job_fn(void *arg, int ith, int nth)
{
	struct elu_job *j = arg;
	int64_t b, e;
	split(j->n, ith, nth, &b, &e);
	elu_span(j->x + b, j->x + b, e - b);
}

static void elu_inplace(mg_pool *pool, float *x, int64_t n)
{
	struct elu_job j = {x, n};
	mg_pool_run(pool, elu_job_fn, &j);
}

/* ------------------------------------------------------------------- LSTM */

/* S sequences of the same length go through the LSTM together, so each step
 * reads the recurrent weights once for all of them. */
struct lstm_job {
	const mg_encodec_lstm *l;
	int layer;
	float *const *x;     /* [S] -> [dim][T]: the block input (layer 0) and output */
	int S;
	int64_t T;
	float *gates;        /* [T][S][4 dim] */
	float *h_in;         /* previous layer's output [T][S][dim] (layers > 0) */
	float *h;            /* this layer's output [T][S][dim] */
	float *c;            /* [S][dim] cell state */
	float *rec;          /* q8: W_hh h_{t-1} of this step, [S][4 dim] */
	int64_t t;           /* current step */
};

/* gates[t][s] = W_ih u_t + b_ih + b_hh for all t; threads split the gate rows. */
static void lstm_input_job(void *arg, int ith, int nth)
{
	struct lstm_job *j = arg;
	int dim = j->l->dim, S = j->S, b, e;
	mg_pool_range(dim, ith, nth, 4, &b, &e);
	if (b >= e)
		return;
	int rows = 4 * (e - b);
	const float *W = j->l->w_ih[j->layer] + (size_t)4 * b * dim, *bias = j->l->bias[j->layer] + 4 * b;
	for (int64_t t = 0; t < j->T * S; t++)
		memcpy(j->gates + t * 4 * dim + 4 * b, bias, (size_t)rows * sizeof(float));
	for (int s = 0; s < S; s++) {
		float *G = j->gates + (size_t)s * 4 * dim + 4 * b;
		if (j->layer > 0)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->T, rows, dim, 1.0f,
			            j->h_in + (size_t)s * dim, S * dim, W, dim, 1.0f, G, S * 4 * dim);
		else
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)j->T, rows, dim, 1.0f, j->x[s], (int)j->T, W,
			            dim, 1.0f, G, S * 4 * dim);
	}
}

static inline float sigmoid(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* G[s][r] += W[r] . h[s] for rows r < rows and S sequences, each weight row
 * read once for all sequences (a BLAS product of so few columns would pack
 * the whole matrix on every step). */
#ifdef TAPS_HAVE_AVX512
__attribute__((target("avx512f"))) static void matvecs_avx512(const float *W, int rows, int dim, const float *h,
                                                              int S, float *G, int ldg)
{
	__mmask16 tail = (__mmask16)((1u << (dim % 16)) - 1);
	int full = dim - dim % 16;
	for (int s0 = 0; s0 < S; s0 += 4) {
		int ns = S - s0 < 4 ? S - s0 : 4;
		const float *h0 = h + (size_t)s0 * dim, *h1 = h0 + (ns > 1 ? dim : 0), *h2 = h0 + (ns > 2 ? 2 * dim : 0),
		            *h3 = h0 + (ns > 3 ? 3 * dim : 0);
		for (int r = 0; r < rows; r++) {
			const float *w = W + (size_t)r * dim;
			__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
			for (int i = 0; i < full; i += 16) {
				__m512 wv = _mm512_loadu_ps(w + i);
				a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(h0 + i), a0);
				a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(h1 + i), a1);
				a2 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(h2 + i), a2);
				a3 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(h3 + i), a3);
			}
			if (tail) {
				__m512 wv = _mm512_maskz_loadu_ps(tail, w + full);
				a0 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, h0 + full), a0);
				a1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, h1 + full), a1);
				a2 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, h2 + full), a2);
				a3 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, h3 + full), a3);
			}
			float *g = G + (size_t)s0 * ldg + r;
			g[0] += _mm512_reduce_add_ps(a0);
			if (ns > 1)
				g[ldg] += _mm512_reduce_add_ps(a1);
			if (ns > 2)
				g[2 * ldg] += _mm512_reduce_add_ps(a2);
			if (ns > 3)
				g[3 * ldg] += _mm512_reduce_add_ps(a3);
		}
	}
}
#endif

/* The same with W as IEEE halves. */
#ifdef TAPS_HAVE_AVX512
__attribute__((target("avx512f,avx512bw,avx512vl,f16c"))) static void
matvecs_h_avx512(const uint16_t *W, int rows, int dim, const float *h, int S, float *G, int ldg)
{
	__mmask16 tail = (__mmask16)((1u << (dim % 16)) - 1);
	int full = dim - dim % 16;
	for (int s0 = 0; s0 < S; s0 += 2) {
		const float *h0 = h + (size_t)s0 * dim, *h1 = h0 + (S - s0 > 1 ? dim : 0);
		for (int r = 0; r < rows; r++) {
			const uint16_t *w = W + (size_t)r * dim;
			__m512 a0 = _mm512_setzero_ps(), a1 = a0;
			for (int i = 0; i < full; i += 16) {
				__m512 wv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i)));
				a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(h0 + i), a0);
				a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(h1 + i), a1);
			}
			if (tail) {
				__m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, w + full));
				a0 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, h0 + full), a0);
				a1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, h1 + full), a1);
			}
			float *g = G + (size_t)s0 * ldg + r;
			g[0] += _mm512_reduce_add_ps(a0);
			if (S - s0 > 1)
				g[ldg] += _mm512_reduce_add_ps(a1);
		}
	}
}
#endif

static void matvecs_h(const uint16_t *W, int rows, int dim, const float *h, int S, float *G, int ldg)
{
#ifdef TAPS_HAVE_AVX512
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
		matvecs_h_avx512(W, rows, dim, h, S, G, ldg);
		return;
	}
#endif
	for (int s = 0; s < S; s++)
		for (int r = 0; r < rows; r++) {
			const uint16_t *w = W + (size_t)r * dim;
			const float *x = h + (size_t)s * dim;
			float acc = 0;
			for (int i = 0; i < dim; i++)
				acc += st_f16_to_f32(w[i]) * x[i];
			G[(size_t)s * ldg + r] += acc;
		}
}

static void matvecs(const float *W, int rows, int dim, const float *h, int S, float *G, int ldg)
{
#ifdef TAPS_HAVE_AVX512
	if (S > 1 && __builtin_cpu_supports("avx512f")) {
		matvecs_avx512(W, rows, dim, h, S, G, ldg);
		return;
	}
#endif
	for (int s = 0; s < S; s++)
		cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, dim, 1.0f, W, dim, h + (size_t)s * dim, 1, 1.0f,
		            G + (size_t)s * ldg, 1);
}

/* One time step for this thread's units: gates += W_hh h_{t-1}, then the
 * cell (PyTorch gate order i, f, g, o). */
static void lstm_step_job(void *arg, int ith, int nth)
{
	struct lstm_job *j = arg;
	int dim = j->l->dim, S = j->S, b, e;
	mg_pool_range(dim, ith, nth, 4, &b, &e);
	if (b >= e)
		return;
	int rows = 4 * (e - b);
	float *G = j->gates + j->t * S * 4 * dim + 4 * b;
	const float *hp = j->h + (j->t - 1) * S * dim;
	if (j->t > 0 && j->l->w_hh8) {
		for (int s = 0; s < S; s++)
			for (int r = 0; r < rows; r++)
				G[(size_t)s * 4 * dim + r] += j->rec[(size_t)s * 4 * dim + 4 * b + r];
	} else if (j->t > 0 && j->l->w_hh16)
		matvecs_h(j->l->w_hh16[j->layer] + (size_t)4 * b * dim, rows, dim, hp, S, G, 4 * dim);
	else if (j->t > 0)
		matvecs(j->l->w_hh[j->layer] + (size_t)4 * b * dim, rows, dim, hp, S, G, 4 * dim);
	for (int s = 0; s < S; s++) {
		const float *g = G + (size_t)s * 4 * dim;
		float *h = j->h + (j->t * S + s) * dim, *cs = j->c + (size_t)s * dim;
		for (int u = b; u < e; u++, g += 4) {
			float ig = sigmoid(g[0]), fg = sigmoid(g[1]), gg = tanhf(g[2]), og = sigmoid(g[3]);
			float c = j->t > 0 ? fg * cs[u] + ig * gg : ig * gg;
			cs[u] = c;
			h[u] = og * tanhf(c);
		}
	}
}

/* The skip connection: x += h of the last layer. */
static void lstm_out_job(void *arg, int ith, int nth)
{
	struct lstm_job *j = arg;
	int dim = j->l->dim;
	int64_t b, e;
	split((int64_t)dim * j->S, ith, nth, &b, &e);
	for (int64_t r = b; r < e; r++) {
		int64_t s = r / dim, u = r % dim;
		float *x = j->x[s] + u * j->T;
		for (int64_t t = 0; t < j->T; t++)
			x[t] = j->h[(t * j->S + s) * dim + u] + x[t];
	}
}

/* x[s] [dim][T] -> LSTM(x[s]) + x[s], written over x[s], for S sequences. */
static int lstm_forward(mg_pool *pool, const mg_encodec_lstm *l, float *const *x, int S, int64_t T, char *err,
                        size_t errlen)
{
	int dim = l->dim;
	size_t n = (size_t)T * S * dim;
	float *gates = malloc(4 * n * sizeof(float));
	float *h[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
	float *c = malloc((size_t)S * dim * sizeof(float));
	float *rec = l->w_hh8 ? malloc((size_t)S * 4 * dim * sizeof(float)) : NULL;
	if (!gates || !h[0] || !h[1] || !c || (l->w_hh8 && !rec)) {
		free(gates);
		free(h[0]);
		free(h[1]);
		free(c);
		free(rec);
		return mg_errf(err, errlen, "out of memory for the EnCodec LSTM over %d x %lld frames", S, (long long)T);
	}
	struct lstm_job j = {0};
	j.l = l;
	j.x = x;
	j.S = S;
	j.T = T;
	j.gates = gates;
	j.c = c;
	j.rec = rec;
	for (int k = 0; k < l->layers; k++) {
		j.layer = k;
		j.h_in = h[(k + 1) & 1];
		j.h = h[k & 1];
		mg_pool_run(pool, lstm_input_job, &j);
		for (j.t = 0; j.t < T; j.t++) {
			/* q8: the recurrent product as one of the decoder's (its own
			 * threads), then the cells. */
			if (rec && j.t > 0)
				mg_linear(pool, &l->w_hh8[k], NULL, j.h + (j.t - 1) * S * dim, S, rec);
			mg_pool_run(pool, lstm_step_job, &j);
		}
	}
	mg_pool_run(pool, lstm_out_job, &j);
	free(gates);
	free(h[0]);
	free(h[1]);
	free(c);
	free(rec);
	return 0;
}

/* ------------------------------------------------------------ the network */

struct add_job {
	float *y;
	const float *a;
	int64_t n;
};

static void add_job_fn(void *arg, int ith, int nth)
{
	struct add_job *j = arg;
	int64_t b, e;
	split(j->n, ith, nth, &b, &e);
	for (int64_t i = b; i < e; i++)
		j->y[i] = j->a[i] + j->y[i];
}

static void swap_buf(struct work *w, int a, int b)
{
	float *t = w->buf[a];
	w->buf[a] = w->buf[b];
	w->buf[b] = t;
}

/* EncodecResnetBlock: shortcut(x) + conv(ELU(conv(ELU(x)))), x in buf[0];
 * the result replaces it. The second convolution and the shortcut have
 * kernel 1, so they read their input in place. */
static int resblock_forward(mg_pool *pool, const mg_encodec_layer *Ly, int reflect, struct work *w, int64_t T,
                            char *err, size_t errlen)
{
	float *x = w->buf[0], *ph = w->buf[1], *h = w->buf[2], *o = w->buf[1];
	int64_t n1, n2, ns;
	if (conv_forward(pool, &Ly->block[0], x, T, 1, reflect, ph, h, &n1, err, errlen))
		return -1;
	elu_inplace(pool, h, (int64_t)Ly->block[0].cout * n1);
	if (conv_forward(pool, &Ly->block[1], h, n1, 0, reflect, NULL, o, &n2, err, errlen))
		return -1;
	if (n2 != T)
		return mg_errf(err, errlen, "EnCodec residual block changed the length %lld to %lld", (long long)T,
		            (long long)n2);
	struct add_job aj = {o, x, (int64_t)Ly->cout * T};
	if (Ly->has_shortcut) {
		if (conv_forward(pool, &Ly->shortcut, x, T, 0, reflect, NULL, h, &ns, err, errlen))
			return -1;
		aj.a = h;
	}
	mg_pool_run(pool, add_job_fn, &aj);
	swap_buf(w, 0, 1);
	return 0;
}

static int64_t max3(int64_t a, int64_t b, int64_t c)
{
	int64_t m = a > b ? a : b;
	return m > c ? m : c;
}

/* Floats each work buffer needs to run layers over T samples. */
static int64_t plan_layers(const mg_encodec_layer *layers, int n, int64_t T)
{
	int64_t need = (n > 0 ? layers[0].cin : 1) * T;
	for (int i = 0; i < n; i++) {
		const mg_encodec_layer *Ly = &layers[i];
		int64_t a = 0, b = 0, out = T;
		switch (Ly->op) {
		case MG_ENCODEC_CONV:
			conv_need(&Ly->conv, T, 0, &a, &b, &out);
			break;
		case MG_ENCODEC_CONVT:
			convt_need(&Ly->conv, T, &a, &b, &out);
			break;
		case MG_ENCODEC_RESBLOCK:
			conv_need(&Ly->block[0], T, 1, &a, &b, &out);
			out = T;
			break;
		default:
			break;
		}
		need = max3(need, max3(a, b, (int64_t)Ly->cin * T), (int64_t)Ly->cout * out);
		T = out;
	}
	return need;
}

static void work_free(struct work *w)
{
	for (int i = 0; i < 3; i++)
		free(w->buf[i]);
	memset(w, 0, sizeof *w);
}

static int work_alloc(struct work *w, int64_t cap, char *err, size_t errlen)
{
	memset(w, 0, sizeof *w);
	w->cap = cap;
	for (int i = 0; i < 3; i++) {
		w->buf[i] = malloc((size_t)cap * sizeof(float) + 1);
		if (!w->buf[i]) {
			work_free(w);
			return mg_errf(err, errlen, "out of memory for EnCodec activations (3 x %lld floats)", (long long)cap);
		}
	}
	return 0;
}

/* Runs layers [from, to) over buf[0] ([cin][*T]); the output ends in buf[0]. */
static int run_layers(const mg_encodec *e, mg_pool *pool, const mg_encodec_layer *layers, int from, int to,
                      struct work *w, int64_t *T, mg_encodec_tap tap, void *user, char *err, size_t errlen)
{
	int reflect = e->c.pad_reflect, elu_in = 0;
	for (int i = from; i < to; i++) {
		const mg_encodec_layer *Ly = &layers[i];
		int64_t Ty = *T;
		int rc = 0;
		switch (Ly->op) {
		case MG_ENCODEC_CONV:
			rc = conv_forward(pool, &Ly->conv, w->buf[0], *T, elu_in, reflect, w->buf[1], w->buf[2], &Ty, err,
			                  errlen);
			swap_buf(w, 0, 2);
			elu_in = 0;
			break;
		case MG_ENCODEC_CONVT:
			rc = convt_forward(pool, &Ly->conv, w->buf[0], *T, elu_in, w->buf[1], w->buf[2], &Ty, err, errlen);
			swap_buf(w, 0, 2);
			elu_in = 0;
			break;
		case MG_ENCODEC_LSTM:
			rc = lstm_forward(pool, &Ly->lstm, &w->buf[0], 1, *T, err, errlen);
			break;
		case MG_ENCODEC_ELU:
			/* Unless someone looks at it, an ELU before a convolution is
			 * applied as that convolution copies its input. */
			if (!tap && i + 1 < to && (layers[i + 1].op == MG_ENCODEC_CONV || layers[i + 1].op == MG_ENCODEC_CONVT))
				elu_in = 1;
			else
				elu_inplace(pool, w->buf[0], (int64_t)Ly->cin * *T);
			break;
		case MG_ENCODEC_RESBLOCK:
			rc = resblock_forward(pool, Ly, reflect, w, *T, err, errlen);
			break;
		}
		if (rc)
			return -1;
		*T = Ty;
		if (tap)
			tap(user, i, w->buf[0], Ly->cout, *T);
	}
	return 0;
}

/* BLAS runs single-threaded inside the pool's jobs; the caller's setting is
 * put back afterwards. */
static int blas_single(void)
{
	int prev = openblas_get_num_threads();
	openblas_set_num_threads(1);
	return prev;
}

static int check_codes(const mg_encodec *e, const int32_t *codes, int S, int n_q, int F, char *err, size_t errlen)
{
	if (F < 1)
		return mg_errf(err, errlen, "EnCodec decode needs at least 1 frame (got %d)", F);
	if (S < 1)
		return mg_errf(err, errlen, "EnCodec decode needs at least 1 sequence (got %d)", S);
	if (n_q < 1 || n_q > e->n_q_stored)
		return mg_errf(err, errlen, "EnCodec decode of %d codebooks: the checkpoint has %d quantizers", n_q,
		            e->n_q_stored);
	for (int s = 0; s < S; s++)
		for (int q = 0; q < n_q; q++)
			for (int t = 0; t < F; t++) {
				int32_t v = codes[((size_t)s * n_q + q) * F + t];
				if (v < 0 || v >= e->c.codebook_size)
					return mg_errf(err, errlen, "EnCodec code %d at quantizer %d, frame %d is outside [0, %d)", v,
					            q, t, e->c.codebook_size);
			}
	return 0;
}

/* RVQ decode: x [dim][F] = the sum over quantizers, in order, of the
 * codebook rows the codes pick. */
static void rvq_decode(const mg_encodec *e, const int32_t *codes, int n_q, int F, float *x)
{
	int dim = e->c.codebook_dim;
	memset(x, 0, (size_t)dim * F * sizeof(float));
	for (int q = 0; q < n_q; q++) {
		const float *cb = e->codebook + (size_t)q * e->c.codebook_size * dim;
		for (int t = 0; t < F; t++) {
			const float *row = cb + (size_t)codes[(size_t)q * F + t] * dim;
			for (int i = 0; i < dim; i++)
				x[(size_t)i * F + t] += row[i];
		}
	}
}

int mg_encodec_decode_tap(const mg_encodec *e, mg_pool *pool, const int32_t *codes, int n_q, int F, float *audio,
                          mg_encodec_tap tap, void *user, char *err, size_t errlen)
{
	const mg_encodec_config *c = &e->c;
	if (check_codes(e, codes, 1, n_q, F, err, errlen))
		return -1;
	struct work w;
	if (work_alloc(&w, plan_layers(e->dec, e->n_dec, F), err, errlen))
		return -1;
	rvq_decode(e, codes, n_q, F, w.buf[0]);
	if (tap)
		tap(user, -1, w.buf[0], c->codebook_dim, F);
	int prev = blas_single();
	int64_t T = F;
	int rc = run_layers(e, pool, e->dec, 0, e->n_dec, &w, &T, tap, user, err, errlen);
	openblas_set_num_threads(prev);
	if (!rc && T != mg_encodec_decoded_length(e, F))
		rc = mg_errf(err, errlen, "EnCodec decoder produced %lld samples for %d frames; expected %lld", (long long)T,
		          F, (long long)mg_encodec_decoded_length(e, F));
	if (!rc)
		memcpy(audio, w.buf[0], (size_t)c->audio_channels * T * sizeof(float));
	work_free(&w);
	return rc;
}

int mg_encodec_decode_batch(const mg_encodec *e, mg_pool *pool, const int32_t *codes, int S, int n_q, int F,
                            float *audio, char *err, size_t errlen)
{
	const mg_encodec_config *c = &e->c;
	if (check_codes(e, codes, S, n_q, F, err, errlen))
		return -1;
	int li = 0;
	while (li < e->n_dec && e->dec[li].op != MG_ENCODEC_LSTM)
		li++;
	if (li == e->n_dec)
		return mg_errf(err, errlen, "EnCodec decoder has no LSTM");
	int64_t len = mg_encodec_decoded_length(e, F), out = (int64_t)c->audio_channels * len, T1 = F;
	for (int i = 0; i < li; i++)
		if (e->dec[i].op == MG_ENCODEC_CONV)
			T1 = conv_geometry(&e->dec[i].conv, T1).out_len;
	size_t mid_n = (size_t)e->dec[li].cin * T1;
	struct work w;
	float *mid = malloc((size_t)S * mid_n * sizeof(float));
	float **xs = malloc((size_t)S * sizeof *xs);
	if (!mid || !xs || work_alloc(&w, plan_layers(e->dec, e->n_dec, F), err, errlen)) {
		if (!mid || !xs)
			mg_errf(err, errlen, "out of memory decoding %d x %d frames", S, F);
		free(mid);
		free(xs);
		return -1;
	}
	int prev = blas_single(), rc = 0;
	/* The layers before the LSTM one sequence at a time, the LSTM for all,
	 * then the rest one at a time. */
	for (int s = 0; s < S && !rc; s++) {
		int64_t T = F;
		rvq_decode(e, codes + (size_t)s * n_q * F, n_q, F, w.buf[0]);
		rc = run_layers(e, pool, e->dec, 0, li, &w, &T, NULL, NULL, err, errlen);
		xs[s] = mid + (size_t)s * mid_n;
		if (!rc)
			memcpy(xs[s], w.buf[0], mid_n * sizeof(float));
	}
	if (!rc)
		rc = lstm_forward(pool, &e->dec[li].lstm, xs, S, T1, err, errlen);
	for (int s = 0; s < S && !rc; s++) {
		int64_t T = T1;
		memcpy(w.buf[0], xs[s], mid_n * sizeof(float));
		rc = run_layers(e, pool, e->dec, li + 1, e->n_dec, &w, &T, NULL, NULL, err, errlen);
		if (!rc && T != len)
			rc = mg_errf(err, errlen, "EnCodec decoder produced %lld samples for %d frames; expected %lld",
			          (long long)T, F, (long long)len);
		if (!rc)
			memcpy(audio + (size_t)s * out, w.buf[0], (size_t)out * sizeof(float));
	}
	openblas_set_num_threads(prev);
	work_free(&w);
	free(mid);
	free(xs);
	return rc;
}

int mg_encodec_decode_n(const mg_encodec *e, mg_pool *pool, const int32_t *codes, int n_q, int F, float *audio,
                        char *err, size_t errlen)
{
	return mg_encodec_decode_tap(e, pool, codes, n_q, F, audio, NULL, NULL, err, errlen);
}

int mg_encodec_decode(const mg_encodec *e, mg_pool *pool, const int32_t *codes, int F, float *audio, char *err,
                      size_t errlen)
{
	return mg_encodec_decode_tap(e, pool, codes, e->n_q, F, audio, NULL, NULL, err, errlen);
}

int mg_encodec_encoded_frames(const mg_encodec *e, int64_t n_samples)
{
	if (e->n_enc == 0)
		return 0;
	int64_t T = n_samples;
	for (int i = 0; i < e->n_enc; i++)
		if (e->enc[i].op == MG_ENCODEC_CONV)
			T = conv_geometry(&e->enc[i].conv, T).out_len;
	return T > 0 && T < INT32_MAX ? (int)T : 0;
}

struct rvq_job {
	const mg_encodec *e;
	float *r;            /* residuals [F][dim] */
	int F;
	float *dots;         /* [nth][tile][codebook_size] */
	int tile;
	int32_t *codes;      /* [n_q_encode][F] */
};

/* Nearest codebook row per frame and quantizer, as HF's
 * EncodecEuclideanCodebook.quantize: dist = -(|r|^2 - 2 r.E + |E|^2) in
 * float32, argmax with the first index winning ties. */
static void rvq_job_fn(void *arg, int ith, int nth)
{
	struct rvq_job *j = arg;
	const mg_encodec_config *c = &j->e->c;
	int dim = c->codebook_dim, cb = c->codebook_size, b, e;
	float *dots = j->dots + (size_t)ith * j->tile * cb;
	mg_pool_range(j->F, ith, nth, 1, &b, &e);
	for (int t0 = b; t0 < e; t0 += j->tile) {
		int n = e - t0 < j->tile ? e - t0 : j->tile;
		float *r = j->r + (size_t)t0 * dim;
		for (int q = 0; q < j->e->n_q_encode; q++) {
			const float *E = j->e->codebook + (size_t)q * cb * dim, *esq = j->e->codebook_sq + (size_t)q * cb;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, cb, dim, 1.0f, r, dim, E, dim, 0.0f, dots,
			            cb);
			for (int t = 0; t < n; t++) {
				float *rt = r + (size_t)t * dim, ss = 0;
				for (int i = 0; i < dim; i++)
					ss += rt[i] * rt[i];
				int best = 0;
				float bestd = 0;
				for (int k = 0; k < cb; k++) {
					float d = -((ss - 2.0f * dots[(size_t)t * cb + k]) + esq[k]);
					if (k == 0 || d > bestd) {
						bestd = d;
						best = k;
					}
				}
				j->codes[(size_t)q * j->F + t0 + t] = best;
				const float *row = E + (size_t)best * dim;
				for (int i = 0; i < dim; i++)
					rt[i] -= row[i];
			}
		}
	}
}

int mg_encodec_encode_tap(const mg_encodec *e, mg_pool *pool, const float *audio, int64_t n_samples,
                          int32_t **codes, int *F, mg_encodec_tap tap, void *user, char *err, size_t errlen)
{
	const mg_encodec_config *c = &e->c;
	*codes = NULL;
	*F = 0;
	if (e->n_enc == 0)
		return mg_errf(err, errlen, "the EnCodec encoder was not loaded (mg_encodec_bind_decoder)");
	if (n_samples < 1)
		return mg_errf(err, errlen, "EnCodec encode needs at least 1 sample");
	int frames = mg_encodec_encoded_frames(e, n_samples);
	if (frames < 1)
		return mg_errf(err, errlen, "%lld samples are too many to encode", (long long)n_samples);
	struct work w;
	if (work_alloc(&w, plan_layers(e->enc, e->n_enc, n_samples), err, errlen))
		return -1;
	memcpy(w.buf[0], audio, (size_t)c->audio_channels * n_samples * sizeof(float));
	int prev = blas_single();
	int64_t T = n_samples;
	int rc = run_layers(e, pool, e->enc, 0, e->n_enc, &w, &T, tap, user, err, errlen);
	const float *x = w.buf[0];
	if (!rc && T != frames)
		rc = mg_errf(err, errlen, "EnCodec encoder produced %lld frames; expected %d", (long long)T, frames);

	int dim = c->codebook_dim, nth = mg_pool_size(pool);
	struct rvq_job j = {0};
	if (!rc) {
		j.e = e;
		j.F = frames;
		j.tile = 16;
		j.r = malloc((size_t)frames * dim * sizeof(float));
		j.dots = malloc((size_t)nth * j.tile * c->codebook_size * sizeof(float));
		j.codes = malloc((size_t)e->n_q_encode * frames * sizeof(int32_t));
		if (!j.r || !j.dots || !j.codes)
			rc = mg_errf(err, errlen, "out of memory quantizing %d frames", frames);
	}
	if (!rc) {
		for (int t = 0; t < frames; t++)
			for (int i = 0; i < dim; i++)
				j.r[(size_t)t * dim + i] = x[(size_t)i * frames + t];
		mg_pool_run(pool, rvq_job_fn, &j);
		*codes = j.codes;
		*F = frames;
		j.codes = NULL;
	}
	openblas_set_num_threads(prev);
	free(j.r);
	free(j.dots);
	free(j.codes);
	work_free(&w);
	return rc;
}

int mg_encodec_encode(const mg_encodec *e, mg_pool *pool, const float *audio, int64_t n_samples, int32_t **codes,
                      int *F, char *err, size_t errlen)
{
	return mg_encodec_encode_tap(e, pool, audio, n_samples, codes, F, NULL, NULL, err, errlen);
}
