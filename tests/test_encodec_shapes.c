/* test_encodec_shapes.c - EnCodec on shapes tiny-a does not have (odd and
 * even kernels, dilations, several residual layers, conv shortcuts, constant
 * padding, one or three LSTM layers, fewer quantizers for encode), against a
 * plain re-implementation of Hugging Face's modules written from the HF
 * source: direct loops in double precision over the same random weights. */
#include "autoconfig.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/encodec.h"
#include "engine/pool.h"
#include "engine/safetensors.h"
#include "tests/tap.h"

/* ------------------------------------------------ the reference, in double */

typedef struct ref_act {
	int c;
	int64_t n;
	double *x;           /* [c][n] */
} ref_act;

static const st_set *W;  /* weights of the model under test */

static double *tensor(const char *name, int64_t *numel)
{
	const st_tensor *t = st_find(W, name);
	if (!t) {
		fprintf(stderr, "reference: no tensor %s\n", name);
		exit(99);
	}
	float *f = malloc((size_t)t->numel * sizeof(float));
	double *d = malloc((size_t)t->numel * sizeof(double));
	char err[256];
	if (!f || !d || st_to_f32(t, f, err, sizeof err))
		exit(99);
	for (int64_t i = 0; i < t->numel; i++)
		d[i] = f[i];
	free(f);
	if (numel)
		*numel = t->numel;
	return d;
}

/* weight_norm: w = g v / ||v||, norm over all dims but 0. */
static double *folded(const char *base, int d0)
{
	char gn[320], vn[320];
	snprintf(gn, sizeof gn, "%s.weight_g", base);
	snprintf(vn, sizeof vn, "%s.weight_v", base);
	int64_t nv;
	double *g = tensor(gn, NULL), *v = tensor(vn, &nv);
	int64_t per = nv / d0;
	for (int a = 0; a < d0; a++) {
		double ss = 0;
		for (int64_t j = 0; j < per; j++)
			ss += v[a * per + j] * v[a * per + j];
		for (int64_t j = 0; j < per; j++)
			v[a * per + j] *= g[a] / sqrt(ss);
	}
	free(g);
	return v;
}

static double ref_elu(double x)
{
	return x > 0 ? x : expm1(x);
}

/* EncodecConv1d.forward: _get_extra_padding_for_conv1d, _pad1d, nn.Conv1d. */
static ref_act ref_conv(ref_act in, const char *base, int cout, int k, int stride, int dil, int reflect)
{
	char bn[300];
	snprintf(bn, sizeof bn, "%s.bias", base);
	double *w = folded(base, cout), *b = tensor(bn, NULL);
	int64_t L = in.n, keff = (int64_t)(k - 1) * dil + 1, pad_total = keff - stride;
	double n_frames = (double)(L - keff + pad_total) / stride + 1;
	int64_t ideal = ((int64_t)ceil(n_frames) - 1) * stride + (keff - pad_total);
	int64_t extra = ideal - L;
	int64_t pr = pad_total / 2, pl = pad_total - pr;
	pr += extra;
	/* _pad1d */
	int64_t maxpad = pl > pr ? pl : pr, ext = 0;
	if (reflect && L <= maxpad)
		ext = maxpad - L + 1;
	int64_t ne = L + ext, np = ne + pl + pr - ext;
	double *xp = calloc((size_t)(in.c * (ne + pl + pr)), sizeof(double));
	for (int i = 0; i < in.c; i++)
		for (int64_t j = 0; j < ne + pl + pr; j++) {
			int64_t s = j - pl;
			double v;
			if (!reflect) {
				v = s >= 0 && s < L ? in.x[i * L + s] : 0.0;
			} else {
				if (s < 0)
					s = -s;
				if (s >= ne)
					s = 2 * (ne - 1) - s;
				v = s < L ? in.x[i * L + s] : 0.0;
			}
			xp[i * (ne + pl + pr) + j] = v;
		}
	int64_t ld = ne + pl + pr, nout = (np - keff) / stride + 1;
	ref_act out = {cout, nout, calloc((size_t)(cout * nout), sizeof(double))};
	for (int o = 0; o < cout; o++)
		for (int64_t t = 0; t < nout; t++) {
			double s = b[o];
			for (int i = 0; i < in.c; i++)
				for (int kk = 0; kk < k; kk++)
					s += w[((int64_t)o * in.c + i) * k + kk] * xp[i * ld + t * stride + (int64_t)kk * dil];
			out.x[o * nout + t] = s;
		}
	free(xp);
	free(w);
	free(b);
	return out;
}

/* EncodecConvTranspose1d.forward (non-causal). */
static ref_act ref_convt(ref_act in, const char *base, int cout, int k, int stride)
{
	char bn[300];
	snprintf(bn, sizeof bn, "%s.bias", base);
	double *w = folded(base, in.c), *b = tensor(bn, NULL);
	int64_t L = in.n, full = (L - 1) * stride + k;
	double *y = calloc((size_t)(cout * full), sizeof(double));
	for (int o = 0; o < cout; o++)
		for (int64_t t = 0; t < full; t++)
			y[o * full + t] = b[o];
	for (int i = 0; i < in.c; i++)
		for (int64_t m = 0; m < L; m++)
			for (int o = 0; o < cout; o++)
				for (int kk = 0; kk < k; kk++)
					y[o * full + m * stride + kk] += in.x[i * L + m] * w[((int64_t)i * cout + o) * k + kk];
	int pad_total = k - stride, pr = pad_total / 2, pl = pad_total - pr;
	int64_t n = full - pl - pr;
	ref_act out = {cout, n, malloc((size_t)(cout * n) * sizeof(double))};
	for (int o = 0; o < cout; o++)
		memcpy(out.x + o * n, y + o * full + pl, (size_t)n * sizeof(double));
	free(y);
	free(w);
	free(b);
	return out;
}

static double sigm(double x)
{
	return 1 / (1 + exp(-x));
}

/* EncodecLSTM: nn.LSTM over time, plus the input. */
static void ref_lstm(ref_act *a, const char *base, int layers)
{
	int C = a->c;
	int64_t T = a->n;
	double *u = malloc((size_t)(T * C) * sizeof(double)), *h = malloc((size_t)(T * C) * sizeof(double));
	for (int64_t t = 0; t < T; t++)
		for (int c = 0; c < C; c++)
			u[t * C + c] = a->x[c * T + t];
	for (int l = 0; l < layers; l++) {
		char n[4][256];
		snprintf(n[0], 256, "%s.weight_ih_l%d", base, l);
		snprintf(n[1], 256, "%s.weight_hh_l%d", base, l);
		snprintf(n[2], 256, "%s.bias_ih_l%d", base, l);
		snprintf(n[3], 256, "%s.bias_hh_l%d", base, l);
		double *wi = tensor(n[0], NULL), *wh = tensor(n[1], NULL), *bi = tensor(n[2], NULL),
		       *bh = tensor(n[3], NULL);
		double *cst = calloc((size_t)C, sizeof(double)), *hp = calloc((size_t)C, sizeof(double)),
		       *g = malloc((size_t)(4 * C) * sizeof(double));
		for (int64_t t = 0; t < T; t++) {
			for (int r = 0; r < 4 * C; r++) {
				double s = bi[r] + bh[r];
				for (int c = 0; c < C; c++)
					s += wi[(int64_t)r * C + c] * u[t * C + c] + wh[(int64_t)r * C + c] * hp[c];
				g[r] = s;
			}
			for (int c = 0; c < C; c++) {
				double ig = sigm(g[c]), fg = sigm(g[C + c]), gg = tanh(g[2 * C + c]), og = sigm(g[3 * C + c]);
				cst[c] = fg * cst[c] + ig * gg;
				h[t * C + c] = og * tanh(cst[c]);
			}
			memcpy(hp, h + t * C, (size_t)C * sizeof(double));
		}
		memcpy(u, h, (size_t)(T * C) * sizeof(double));
		free(wi);
		free(wh);
		free(bi);
		free(bh);
		free(cst);
		free(hp);
		free(g);
	}
	for (int64_t t = 0; t < T; t++)
		for (int c = 0; c < C; c++)
			a->x[c * T + t] += u[t * C + c];
	free(u);
	free(h);
}

static void ref_elu_act(ref_act *a)
{
	for (int64_t i = 0; i < a->c * a->n; i++)
		a->x[i] = ref_elu(a->x[i]);
}

/* EncodecResnetBlock(dim, dilations (growth^j, 1)). */
static ref_act ref_resblock(ref_act in, const char *base, const mg_encodec_config *c, int j, int reflect)
{
	char n[256];
	int hidden = in.c / c->compress, dil = 1;
	for (int i = 0; i < j; i++)
		dil *= c->dilation_growth_rate;
	ref_act h = {in.c, in.n, malloc((size_t)(in.c * in.n) * sizeof(double))};
	memcpy(h.x, in.x, (size_t)(in.c * in.n) * sizeof(double));
	ref_elu_act(&h);
	snprintf(n, sizeof n, "%s.block.1.conv", base);
	ref_act h1 = ref_conv(h, n, hidden, c->residual_kernel_size, 1, dil, reflect);
	free(h.x);
	ref_elu_act(&h1);
	snprintf(n, sizeof n, "%s.block.3.conv", base);
	ref_act h3 = ref_conv(h1, n, in.c, 1, 1, 1, reflect);
	free(h1.x);
	if (c->use_conv_shortcut) {
		snprintf(n, sizeof n, "%s.shortcut.conv", base);
		ref_act s = ref_conv(in, n, in.c, 1, 1, 1, reflect);
		for (int64_t i = 0; i < in.c * in.n; i++)
			h3.x[i] += s.x[i];
		free(s.x);
	} else {
		for (int64_t i = 0; i < in.c * in.n; i++)
			h3.x[i] += in.x[i];
	}
	return h3;
}

static void replace(ref_act *a, ref_act b)
{
	free(a->x);
	*a = b;
}

/* EncodecDecoder.forward. */
static ref_act ref_decoder(ref_act x, const mg_encodec_config *c)
{
	char n[256];
	int idx = 0, scale = 1 << c->num_ratios, nf = c->num_filters, rf = c->pad_reflect;
	snprintf(n, sizeof n, "audio_encoder.decoder.layers.%d.conv", idx++);
	replace(&x, ref_conv(x, n, scale * nf, c->kernel_size, 1, 1, rf));
	snprintf(n, sizeof n, "audio_encoder.decoder.layers.%d.lstm", idx++);
	ref_lstm(&x, n, c->num_lstm_layers);
	for (int r = 0; r < c->num_ratios; r++) {
		int cur = scale * nf;
		ref_elu_act(&x);
		idx++;
		snprintf(n, sizeof n, "audio_encoder.decoder.layers.%d.conv", idx++);
		replace(&x, ref_convt(x, n, cur / 2, 2 * c->ratios[r], c->ratios[r]));
		for (int j = 0; j < c->num_residual_layers; j++) {
			snprintf(n, sizeof n, "audio_encoder.decoder.layers.%d", idx++);
			replace(&x, ref_resblock(x, n, c, j, rf));
		}
		scale /= 2;
	}
	ref_elu_act(&x);
	idx++;
	snprintf(n, sizeof n, "audio_encoder.decoder.layers.%d.conv", idx++);
	replace(&x, ref_conv(x, n, c->audio_channels, c->last_kernel_size, 1, 1, rf));
	return x;
}

/* EncodecEncoder.forward. */
static ref_act ref_encoder(ref_act x, const mg_encodec_config *c)
{
	char n[256];
	int idx = 0, scale = 1, nf = c->num_filters, rf = c->pad_reflect;
	snprintf(n, sizeof n, "audio_encoder.encoder.layers.%d.conv", idx++);
	replace(&x, ref_conv(x, n, nf, c->kernel_size, 1, 1, rf));
	for (int r = c->num_ratios - 1; r >= 0; r--) {
		int cur = scale * nf;
		for (int j = 0; j < c->num_residual_layers; j++) {
			snprintf(n, sizeof n, "audio_encoder.encoder.layers.%d", idx++);
			replace(&x, ref_resblock(x, n, c, j, rf));
		}
		ref_elu_act(&x);
		idx++;
		snprintf(n, sizeof n, "audio_encoder.encoder.layers.%d.conv", idx++);
		replace(&x, ref_conv(x, n, 2 * cur, 2 * c->ratios[r], c->ratios[r], 1, rf));
		scale *= 2;
	}
	snprintf(n, sizeof n, "audio_encoder.encoder.layers.%d.lstm", idx++);
	ref_lstm(&x, n, c->num_lstm_layers);
	ref_elu_act(&x);
	idx++;
	snprintf(n, sizeof n, "audio_encoder.encoder.layers.%d.conv", idx++);
	replace(&x, ref_conv(x, n, c->hidden_size, c->last_kernel_size, 1, 1, rf));
	return x;
}

/* ------------------------------------------------------------------ tests */

static double rel_err(const float *a, const double *ref, int64_t n)
{
	double emax = 0, rmax = 0;
	for (int64_t i = 0; i < n; i++) {
		double d = fabs(a[i] - ref[i]);
		if (!(d <= emax))
			emax = isnan(d) ? INFINITY : d;
		if (fabs(ref[i]) > rmax)
			rmax = fabs(ref[i]);
	}
	return rmax > 0 ? emax / rmax : emax;
}

struct last_tap {
	float *x;
	int64_t n;
};

static void keep_last(void *user, int layer, const float *x, int channels, int64_t length)
{
	struct last_tap *lt = user;
	(void)layer;
	free(lt->x);
	lt->n = (int64_t)channels * length;
	lt->x = malloc((size_t)lt->n * sizeof(float));
	memcpy(lt->x, x, (size_t)lt->n * sizeof(float));
}

static void fill_config(mg_encodec_config *c)
{
	long long hop = 1;
	for (int i = 0; i < c->num_ratios; i++)
		hop *= c->ratios[i];
	c->hop_length = (int)hop;
	c->frame_rate = ceil((double)c->sampling_rate / (double)hop);
}

static void run_shape(const char *what, mg_encodec_config *c, mg_pool *pool, int F, int64_t n_in)
{
	char err[512] = "";
	fill_config(c);
	st_set *st = st_new_memory();
	mg_encodec e;
	if (mg_encodec_random_weights(st, c, 7, err, sizeof err) || mg_encodec_bind(&e, st, c, err, sizeof err)) {
		tap_ok(0, "%s: bind: %s", what, err);
		st_close(st);
		return;
	}
	W = st;

	/* Decode random codes. */
	int32_t *codes = malloc((size_t)e.n_q * F * sizeof(int32_t));
	for (int i = 0; i < e.n_q * F; i++)
		codes[i] = (int32_t)((i * 7919 + 13) % c->codebook_size);
	int64_t len = mg_encodec_decoded_length(&e, F);
	float *audio = malloc((size_t)len * sizeof(float));
	int rc = mg_encodec_decode_n(&e, pool, codes, e.n_q, F, audio, err, sizeof err);
	ref_act z = {c->codebook_dim, F, calloc((size_t)(c->codebook_dim * F), sizeof(double))};
	for (int q = 0; q < e.n_q; q++) {
		char n[128];
		snprintf(n, sizeof n, "audio_encoder.quantizer.layers.%d.codebook.embed", q);
		double *emb = tensor(n, NULL);
		for (int t = 0; t < F; t++)
			for (int d = 0; d < c->codebook_dim; d++)
				z.x[d * F + t] += emb[(int64_t)codes[q * F + t] * c->codebook_dim + d];
		free(emb);
	}
	ref_act y = ref_decoder(z, c);
	double r = rc ? INFINITY : rel_err(audio, y.x, len);
	tap_diag("%s: decode %d frames -> %lld samples (reference %lld): max error / max = %.3g", what, F,
	         (long long)len, (long long)y.n, r);
	tap_ok(!rc && y.n == len && r <= 1e-4, "%s: decode matches the reference %s", what, err);
	free(y.x);

	/* Encode a signal whose length is no multiple of the hop. */
	float *in = malloc((size_t)n_in * sizeof(float));
	ref_act x = {1, n_in, malloc((size_t)n_in * sizeof(double))};
	for (int64_t i = 0; i < n_in; i++) {
		in[i] = (float)(0.5 * sin(0.05 * (double)i) + 0.3 * sin(0.31 * (double)i + 1.0));
		x.x[i] = in[i];
	}
	struct last_tap lt = {NULL, 0};
	int32_t *ec = NULL;
	int EF = 0;
	rc = mg_encodec_encode_tap(&e, pool, in, n_in, &ec, &EF, keep_last, &lt, err, sizeof err);
	ref_act emb = ref_encoder(x, c);
	r = rc ? INFINITY : rel_err(lt.x, emb.x, emb.c * emb.n);
	tap_diag("%s: encode %lld samples -> %d frames (reference %lld): max error / max = %.3g", what,
	         (long long)n_in, EF, (long long)emb.n, r);
	tap_ok(!rc && EF == emb.n && lt.n == emb.c * emb.n && r <= 1e-4, "%s: encoder output matches %s", what, err);

	/* RVQ encode in double: nearest row, residual, n_q_encode quantizers. */
	int nq = mg_encodec_encode_quantizers(&e), same = !rc && EF == emb.n;
	double *res = malloc((size_t)(emb.c * emb.n) * sizeof(double));
	memcpy(res, emb.x, (size_t)(emb.c * emb.n) * sizeof(double));
	for (int q = 0; q < nq && same; q++) {
		char n[128];
		snprintf(n, sizeof n, "audio_encoder.quantizer.layers.%d.codebook.embed", q);
		double *E = tensor(n, NULL);
		for (int64_t t = 0; t < emb.n; t++) {
			int best = 0;
			double bd = INFINITY;
			for (int k = 0; k < c->codebook_size; k++) {
				double d = 0;
				for (int i = 0; i < c->codebook_dim; i++) {
					double v = res[i * emb.n + t] - E[(int64_t)k * c->codebook_dim + i];
					d += v * v;
				}
				if (d < bd) {
					bd = d;
					best = k;
				}
			}
			same &= ec[q * EF + t] == best;
			for (int i = 0; i < c->codebook_dim; i++)
				res[i * emb.n + t] -= E[(int64_t)best * c->codebook_dim + i];
		}
		free(E);
	}
	tap_ok(same, "%s: %d of %d quantizers used by encode, codes match the reference", what, nq, e.n_q);
	free(res);
	free(emb.x);
	free(lt.x);
	free(ec);
	free(in);
	free(audio);
	free(codes);
	mg_encodec_free(&e);
	st_close(st);
}

/* The test models of tests/data (made with transformers 5: weight norm as
 * parametrizations, more quantizers stored than the decoder uses, stereo):
 * decoding the greedy codes gives the audio HF generated. */
static void run_test_model(const char *name, mg_pool *pool)
{
	const char *top = getenv("MG_TOP_SRCDIR");
	char dir[4096], path[4200], err[512] = "";
	snprintf(dir, sizeof dir, "%s/tests/data/%s", top && *top ? top : MG_SRCDIR, name);
	snprintf(path, sizeof path, "%s/tests/data/%s-refs.safetensors", top && *top ? top : MG_SRCDIR, name);
	mg_config cfg;
	st_set *st = NULL, *refs = NULL;
	mg_encodec e;
	if (mg_config_load(&cfg, dir, err, sizeof err) || st_open(&st, dir, err, sizeof err) ||
	    st_open(&refs, path, err, sizeof err) || mg_encodec_bind(&e, st, &cfg.codec, err, sizeof err)) {
		tap_ok(0, "%s: loads: %s", name, err);
		st_close(st);
		st_close(refs);
		return;
	}
	int ch = cfg.dec.audio_channels, K = cfg.dec.num_codebooks, Kc = K / ch;
	tap_diag("%s: %d quantizers stored, %d codebooks per channel, %d channel(s)", name, mg_encodec_quantizers(&e), Kc,
	         ch);
	tap_ok(e.n_q == Kc, "%s: mg_encodec_decode's count (config num_quantizers %d) is the decoder's %d", name, e.n_q,
	       Kc);
	const char *tags[] = {"cfg3", "noguide", "uncond"};
	for (int ti = 0; ti < 3; ti++) {
		char cn[64], an[64];
		snprintf(cn, sizeof cn, "%s_codes", tags[ti]);
		snprintf(an, sizeof an, "%s_audio", tags[ti]);
		const st_tensor *ct = st_find(refs, cn), *at = st_find(refs, an);
		if (!ct || !at || ct->dtype != ST_I64 || ct->ndim != 3 || at->ndim != 3 || ct->shape[1] != K ||
		    at->shape[1] != ch) {
			tap_ok(0, "%s: %s and %s present with %d codebooks", name, cn, an, K);
			continue;
		}
		int B = (int)ct->shape[0], F = (int)ct->shape[2];
		int64_t S = at->shape[2], ns = mg_encodec_decoded_length(&e, F);
		float *ref = malloc((size_t)at->numel * sizeof(float)), *out = malloc((size_t)ns * sizeof(float));
		int32_t *cc = malloc((size_t)Kc * F * sizeof(int32_t));
		int ok = ns == S && !st_to_f32(at, ref, err, sizeof err);
		double worst = 0, worst_l2 = 0;
		for (int b = 0; ok && b < B; b++)
			for (int c = 0; ok && c < ch; c++) {
				for (int j = 0; j < Kc; j++)
					for (int t = 0; t < F; t++) {
						int64_t v;
						memcpy(&v, ct->data + 8 * (((int64_t)b * K + (int64_t)j * ch + c) * F + t), 8);
						cc[j * F + t] = (int32_t)v;
					}
				if (mg_encodec_decode_n(&e, pool, cc, Kc, F, out, err, sizeof err)) {
					ok = 0;
					break;
				}
				const float *r = ref + ((int64_t)b * ch + c) * S;
				double emax = 0, rmax = 0, e2 = 0, r2 = 0;
				for (int64_t i = 0; i < S; i++) {
					double d = fabs((double)out[i] - r[i]);
					emax = d > emax || isnan(d) ? d : emax;
					rmax = fabs(r[i]) > rmax ? fabs(r[i]) : rmax;
					e2 += d * d;
					r2 += (double)r[i] * r[i];
				}
				double rel = rmax > 0 ? emax / rmax : emax, l2 = r2 > 0 ? sqrt(e2 / r2) : sqrt(e2);
				worst = rel > worst || isnan(rel) ? rel : worst;
				worst_l2 = l2 > worst_l2 || isnan(l2) ? l2 : worst_l2;
			}
		tap_diag("%s %s: %d takes x %d channel(s), %d frames: max error / max = %.3g, relative L2 = %.3g", name,
		         tags[ti], B, ch, F, worst, worst_l2);
		tap_ok(ok && worst <= 1e-4 && worst_l2 <= 1e-4, "%s: %s codes decode to HF's audio %s", name, tags[ti],
		       ok ? "" : err);

		/* All takes and channels as one batch: [B ch][Kc][F] -> [B][ch][S]. */
		int32_t *all = malloc((size_t)B * ch * Kc * F * sizeof(int32_t));
		float *pcm = malloc((size_t)B * ch * S * sizeof(float));
		for (int b = 0; b < B; b++)
			for (int c = 0; c < ch; c++)
				for (int j = 0; j < Kc; j++)
					for (int t = 0; t < F; t++) {
						int64_t v;
						memcpy(&v, ct->data + 8 * (((int64_t)b * K + (int64_t)j * ch + c) * F + t), 8);
						all[(((size_t)b * ch + c) * Kc + j) * F + t] = (int32_t)v;
					}
		int rc = ok ? mg_encodec_decode_batch(&e, pool, all, B * ch, Kc, F, pcm, err, sizeof err) : -1;
		double bmax = 0, rmax = 0;
		for (int64_t i = 0; !rc && i < (int64_t)B * ch * S; i++) {
			double d = fabs((double)pcm[i] - ref[i]);
			bmax = d > bmax || isnan(d) ? d : bmax;
			rmax = fabs(ref[i]) > rmax ? fabs(ref[i]) : rmax;
		}
		tap_diag("%s %s as one batch of %d: max error / max = %.3g", name, tags[ti], B * ch, bmax / rmax);
		tap_ok(!rc && bmax <= 1e-4 * rmax, "%s: %s decoded as one batch matches HF's audio %s", name, tags[ti],
		       rc ? err : "");
		free(all);
		free(pcm);
		free(ref);
		free(out);
		free(cc);
	}
	mg_encodec_free(&e);
	st_close(st);
	st_close(refs);
}

/* Models that Hugging Face built and ran (tests/data/encodec, made by
 * tools/make-encodec-refs): decode and encode give what HF computed. */
static void run_hf_case(const char *file, mg_encodec_config *c, mg_pool *pool)
{
	const char *top = getenv("MG_TOP_SRCDIR");
	char path[4200], err[512] = "";
	snprintf(path, sizeof path, "%s/tests/data/encodec/%s.safetensors", top && *top ? top : MG_SRCDIR, file);
	fill_config(c);
	st_set *st = NULL;
	mg_encodec e;
	if (st_open(&st, path, err, sizeof err) || mg_encodec_bind(&e, st, c, err, sizeof err)) {
		tap_ok(0, "%s: loads: %s", file, err);
		st_close(st);
		return;
	}
	const st_tensor *ct = st_find(st, "t.codes"), *at = st_find(st, "t.audio"), *it = st_find(st, "t.input"),
	                *et = st_find(st, "t.emb"), *ect = st_find(st, "t.enc_codes");
	if (!ct || !at || !it || !et || !ect || ct->dtype != ST_I64 || ect->dtype != ST_I64 || ct->ndim != 4 ||
	    ect->ndim != 4) {
		tap_ok(0, "%s: reference tensors present", file);
		mg_encodec_free(&e);
		st_close(st);
		return;
	}
	int nq = (int)ct->shape[2], F = (int)ct->shape[3];
	int32_t *codes = malloc((size_t)ct->numel * sizeof(int32_t));
	for (int64_t i = 0; i < ct->numel; i++) {
		int64_t v;
		memcpy(&v, ct->data + 8 * i, 8);
		codes[i] = (int32_t)v;
	}
	float *ref = malloc((size_t)at->numel * sizeof(float)), *out = malloc((size_t)at->numel * sizeof(float));
	int rc = st_to_f32(at, ref, err, sizeof err) || at->numel != mg_encodec_decoded_length(&e, F) ||
	         mg_encodec_decode_n(&e, pool, codes, nq, F, out, err, sizeof err);
	double emax = 0, rmax = 0;
	for (int64_t i = 0; !rc && i < at->numel; i++) {
		double d = fabs((double)out[i] - ref[i]);
		emax = d > emax || isnan(d) ? d : emax;
		rmax = fabs(ref[i]) > rmax ? fabs(ref[i]) : rmax;
	}
	tap_diag("%s: decode %d codebooks x %d frames: max error / max = %.3g", file, nq, F, rc ? 1.0 : emax / rmax);
	tap_ok(!rc && emax <= 1e-4 * rmax, "%s: decode matches HF %s", file, rc ? err : "");
	free(ref);
	free(out);
	free(codes);

	float *in = malloc((size_t)it->numel * sizeof(float)), *emb = malloc((size_t)et->numel * sizeof(float));
	struct last_tap lt = {NULL, 0};
	int32_t *ec = NULL;
	int EF = 0;
	rc = st_to_f32(it, in, err, sizeof err) || st_to_f32(et, emb, err, sizeof err) ||
	     mg_encodec_encode_tap(&e, pool, in, it->numel, &ec, &EF, keep_last, &lt, err, sizeof err);
	emax = 0;
	rmax = 0;
	for (int64_t i = 0; !rc && i < et->numel && lt.n == et->numel; i++) {
		double d = fabs((double)lt.x[i] - emb[i]);
		emax = d > emax || isnan(d) ? d : emax;
		rmax = fabs(emb[i]) > rmax ? fabs(emb[i]) : rmax;
	}
	int same = !rc && ect->shape[2] == mg_encodec_encode_quantizers(&e) && ect->shape[3] == EF;
	for (int64_t i = 0; same && i < ect->numel; i++) {
		int64_t v;
		memcpy(&v, ect->data + 8 * i, 8);
		same = ec[i] == v;
	}
	tap_diag("%s: encode %lld samples -> %d frames: max error / max = %.3g", file, (long long)it->numel, EF,
	         rc ? 1.0 : emax / rmax);
	tap_ok(!rc && lt.n == et->numel && emax <= 1e-4 * rmax, "%s: encoder output matches HF %s", file, rc ? err : "");
	tap_ok(same, "%s: %d quantizers of codes identical to HF's", file, mg_encodec_encode_quantizers(&e));
	free(in);
	free(emb);
	free(lt.x);
	free(ec);
	mg_encodec_free(&e);
	st_close(st);
}

int main(void)
{
	mg_pool *pool = mg_pool_new(2);

	run_test_model("tinyb", pool);
	run_test_model("tinyc", pool);

	/* Even kernels, dilation 3, two residual layers, conv shortcuts, one
	 * LSTM layer, compress 3, encode bandwidth for 2 of 3 quantizers. */
	mg_encodec_config a = {0};
	a.sampling_rate = 24000;
	a.audio_channels = 1;
	a.num_filters = 3;
	a.hidden_size = a.codebook_dim = 6;
	a.codebook_size = 10;
	a.num_ratios = 2;
	a.ratios[0] = 3;
	a.ratios[1] = 2;
	a.num_lstm_layers = 1;
	a.num_residual_layers = 2;
	a.kernel_size = 4;
	a.last_kernel_size = 5;
	a.residual_kernel_size = 2;
	a.dilation_growth_rate = 3;
	a.compress = 3;
	a.use_conv_shortcut = 1;
	a.pad_reflect = 1;
	a.num_quantizers = 3;
	a.encode_bandwidth = 30.0; /* floor(30000 / (log2(10) * 4000)) = 2 */
	run_shape("A (kernels 4/5/2, dilation 3, shortcut)", &a, pool, 5, 101);
	/* A single frame: every reflect pad is longer than its input. */
	run_shape("A, one frame", &a, pool, 1, 4);

	/* Constant padding, one ratio, three LSTM layers, 1x1 last conv. */
	mg_encodec_config b = {0};
	b.sampling_rate = 16000;
	b.audio_channels = 1;
	b.num_filters = 4;
	b.hidden_size = b.codebook_dim = 5;
	b.codebook_size = 16;
	b.num_ratios = 1;
	b.ratios[0] = 5;
	b.num_lstm_layers = 3;
	b.num_residual_layers = 1;
	b.kernel_size = 3;
	b.last_kernel_size = 1;
	b.residual_kernel_size = 3;
	b.dilation_growth_rate = 2;
	b.compress = 2;
	b.use_conv_shortcut = 0;
	b.pad_reflect = 0;
	b.num_quantizers = 2;
	b.encode_bandwidth = 0; /* not given: every quantizer */
	run_shape("B (constant padding, 3 LSTM layers)", &b, pool, 7, 33);

	/* Ratios [8, 5, 4, 2] with wide layers, so products span several tiles
	 * and threads. */
	mg_encodec_config d = {0};
	d.sampling_rate = 32000;
	d.audio_channels = 1;
	d.num_filters = 8;
	d.hidden_size = d.codebook_dim = 16;
	d.codebook_size = 32;
	d.num_ratios = 4;
	d.ratios[0] = 8;
	d.ratios[1] = 5;
	d.ratios[2] = 4;
	d.ratios[3] = 2;
	d.num_lstm_layers = 2;
	d.num_residual_layers = 1;
	d.kernel_size = 7;
	d.last_kernel_size = 7;
	d.residual_kernel_size = 3;
	d.dilation_growth_rate = 2;
	d.compress = 2;
	d.use_conv_shortcut = 0;
	d.pad_reflect = 1;
	d.num_quantizers = 4;
	d.encode_bandwidth = 2.2;
	run_shape("D (wide, ratios 8/5/4/2)", &d, pool, 13, 3333);
	/* Inputs shorter than the 7-tap padding: torch's zero-extended reflect. */
	run_shape("D, two frames", &d, pool, 2, 5);

	/* The configs tools/make-encodec-refs gives transformers. */
	mg_encodec_config hs = a;
	hs.codebook_size = 8;
	hs.num_quantizers = 3; /* transformers 4.x's count; the file stores 10 */
	run_hf_case("encodec-shortcut", &hs, pool);
	run_hf_case("encodec-oneframe", &hs, pool);
	mg_encodec_config hc = b;
	hc.num_quantizers = 2;
	hc.encode_bandwidth = 64.0;
	run_hf_case("encodec-constpad", &hc, pool);

	mg_pool_free(pool);
	return tap_done();
}
