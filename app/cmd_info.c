/* cmd_info.c - `musicgen-tui info --model PATH`: validates a model fully
 * (config, safetensors headers, every tensor the engine needs with its shape)
 * and describes it: type, every dimension, parameters per part, storage
 * dtypes, sample and frame rates, and the longest take one window allows. */
#include "autoconfig.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/commands.h"
#include "engine/config.h"
#include "engine/hub.h"
#include "engine/mg.h"
#include "engine/safetensors.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: musicgen-tui info --model PATH\n"
	           "\n"
	           "Loads and validates a MusicGen model and describes it: model type, the\n"
	           "dimensions of the T5 text encoder, the decoder and the EnCodec audio codec,\n"
	           "parameters per part, storage dtypes, sample rate, frame rate and the longest\n"
	           "take one decoder window allows.\n"
	           "\n"
	           "  -m, --model PATH   a model directory in the Hugging Face layout, or a hub id\n"
	           "                     ORG/NAME in the local Hugging Face cache\n"
	           "  -h, --help         show this help\n"
	           "  -V, --version      show the version\n"
	           "\n"
	           "Exit status: 0 the model is valid, 1 it failed to load or validate (the\n"
	           "reason on standard error), 2 a usage error.\n");
}

/* ---- required tensors, derived from the config ---- */

struct check {
	const st_set *st;
	const char *dir;
	char *err;
	size_t errlen;
	int failed;
};

/* The tensor `name` must exist with exactly the given shape. */
static void need(struct check *c, int ndim, const int64_t *shape, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void need(struct check *c, int ndim, const int64_t *shape, const char *fmt, ...)
{
	if (c->failed)
		return;
	char name[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	const st_tensor *t = st_find(c->st, name);
	if (!t) {
		snprintf(c->err, c->errlen, "%s: tensor '%s' is missing from the checkpoint", c->dir, name);
		c->failed = 1;
		return;
	}
	int ok = t->ndim == ndim;
	for (int i = 0; ok && i < ndim; i++)
		ok = t->shape[i] == shape[i];
	if (!ok || (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)) {
		char want[160] = "", got[160] = "";
		size_t n = 0;
		for (int i = 0; i < ndim; i++)
			n += (size_t)snprintf(want + n, sizeof want - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
		n = 0;
		for (int i = 0; i < t->ndim; i++)
			n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
		snprintf(c->err, c->errlen, "%s: tensor '%s' is %s [%s], expected a float tensor of shape [%s]", t->file,
		         name, st_dtype_name(t->dtype), got, want);
		c->failed = 1;
	}
}

#define SHAPE(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), ((const int64_t[]){__VA_ARGS__})

/* A weight-normed convolution: weight_g/weight_v or the parametrizations
 * spelling, plus its bias. vshape: the shape of v (dim 0 carries the norm). */
static void need_wn_conv(struct check *c, const char *prefix, int64_t d0, int64_t d1, int64_t k)
{
	if (c->failed)
		return;
	char g[256];
	snprintf(g, sizeof g, "%s.weight_g", prefix);
	if (st_find(c->st, g)) {
		need(c, SHAPE(d0, 1, 1), "%s.weight_g", prefix);
		need(c, SHAPE(d0, d1, k), "%s.weight_v", prefix);
	} else {
		need(c, SHAPE(d0, 1, 1), "%s.parametrizations.weight.original0", prefix);
		need(c, SHAPE(d0, d1, k), "%s.parametrizations.weight.original1", prefix);
	}
}

static void need_conv(struct check *c, const char *prefix, int64_t in, int64_t out, int64_t k)
{
	need_wn_conv(c, prefix, out, in, k);
	need(c, SHAPE(out), "%s.bias", prefix);
}

static void need_convtr(struct check *c, const char *prefix, int64_t in, int64_t out, int64_t k)
{
	need_wn_conv(c, prefix, in, out, k);
	need(c, SHAPE(out), "%s.bias", prefix);
}

static void need_resblock(struct check *c, const mg_encodec_config *e, const char *part, int layer, int64_t dim)
{
	char p[200];
	int64_t hidden = dim / e->compress;
	snprintf(p, sizeof p, "audio_encoder.%s.layers.%d.block.1.conv", part, layer);
	need_conv(c, p, dim, hidden, e->residual_kernel_size);
	snprintf(p, sizeof p, "audio_encoder.%s.layers.%d.block.3.conv", part, layer);
	need_conv(c, p, hidden, dim, 1);
	if (e->use_conv_shortcut) {
		snprintf(p, sizeof p, "audio_encoder.%s.layers.%d.shortcut.conv", part, layer);
		need_conv(c, p, dim, dim, 1);
	}
}

static void need_lstm(struct check *c, const mg_encodec_config *e, const char *part, int layer, int64_t dim)
{
	for (int l = 0; l < e->num_lstm_layers; l++) {
		need(c, SHAPE(4 * dim, dim), "audio_encoder.%s.layers.%d.lstm.weight_ih_l%d", part, layer, l);
		need(c, SHAPE(4 * dim, dim), "audio_encoder.%s.layers.%d.lstm.weight_hh_l%d", part, layer, l);
		need(c, SHAPE(4 * dim), "audio_encoder.%s.layers.%d.lstm.bias_ih_l%d", part, layer, l);
		need(c, SHAPE(4 * dim), "audio_encoder.%s.layers.%d.lstm.bias_hh_l%d", part, layer, l);
	}
}

/* EnCodec decoder and encoder, layer by layer as transformers numbers them. */
static void need_encodec(struct check *c, const mg_config *cfg)
{
	const mg_encodec_config *e = &cfg->codec;
	int nr = e->num_ratios, L = 0;
	int64_t scale = (int64_t)e->num_filters << nr;
	char p[200];
	/* decoder: conv, LSTM, then per ratio ELU + transposed conv + residual blocks */
	need_conv(c, "audio_encoder.decoder.layers.0.conv", e->hidden_size, scale, e->kernel_size);
	need_lstm(c, e, "decoder", 1, scale);
	L = 2;
	for (int i = 0; i < nr; i++) {
		L++; /* ELU */
		snprintf(p, sizeof p, "audio_encoder.decoder.layers.%d.conv", L++);
		need_convtr(c, p, scale, scale / 2, 2 * e->ratios[i]);
		for (int j = 0; j < e->num_residual_layers; j++)
			need_resblock(c, e, "decoder", L++, scale / 2);
		scale /= 2;
	}
	L++; /* ELU */
	snprintf(p, sizeof p, "audio_encoder.decoder.layers.%d.conv", L);
	need_conv(c, p, e->num_filters, e->audio_channels, e->last_kernel_size);

	/* encoder: conv, then per reversed ratio residual blocks + ELU + strided conv */
	need_conv(c, "audio_encoder.encoder.layers.0.conv", e->audio_channels, e->num_filters, e->kernel_size);
	L = 1;
	scale = e->num_filters;
	for (int i = nr - 1; i >= 0; i--) {
		for (int j = 0; j < e->num_residual_layers; j++)
			need_resblock(c, e, "encoder", L++, scale);
		L++; /* ELU */
		snprintf(p, sizeof p, "audio_encoder.encoder.layers.%d.conv", L++);
		need_conv(c, p, scale, scale * 2, 2 * e->ratios[i]);
		scale *= 2;
	}
	need_lstm(c, e, "encoder", L++, scale);
	L++; /* ELU */
	snprintf(p, sizeof p, "audio_encoder.encoder.layers.%d.conv", L);
	need_conv(c, p, scale, e->hidden_size, e->last_kernel_size);

	/* one codebook per codebook stream of a channel */
	int nq = cfg->dec.num_codebooks / cfg->dec.audio_channels;
	for (int q = 0; q < nq; q++)
		need(c, SHAPE(e->codebook_size, e->codebook_dim), "audio_encoder.quantizer.layers.%d.codebook.embed", q);
}

static void need_t5(struct check *c, const mg_t5_config *t)
{
	int64_t D = t->d_model, I = (int64_t)t->num_heads * t->d_kv;
	if (st_find(c->st, "text_encoder.shared.weight"))
		need(c, SHAPE(t->vocab_size, D), "text_encoder.shared.weight");
	else
		need(c, SHAPE(t->vocab_size, D), "text_encoder.encoder.embed_tokens.weight");
	const char *b = "text_encoder.encoder.block";
	need(c, SHAPE(t->num_buckets, t->num_heads), "%s.0.layer.0.SelfAttention.relative_attention_bias.weight", b);
	for (int j = 0; j < t->num_layers; j++) {
		need(c, SHAPE(I, D), "%s.%d.layer.0.SelfAttention.q.weight", b, j);
		need(c, SHAPE(I, D), "%s.%d.layer.0.SelfAttention.k.weight", b, j);
		need(c, SHAPE(I, D), "%s.%d.layer.0.SelfAttention.v.weight", b, j);
		need(c, SHAPE(D, I), "%s.%d.layer.0.SelfAttention.o.weight", b, j);
		need(c, SHAPE(D), "%s.%d.layer.0.layer_norm.weight", b, j);
		if (t->gated) {
			need(c, SHAPE(t->d_ff, D), "%s.%d.layer.1.DenseReluDense.wi_0.weight", b, j);
			need(c, SHAPE(t->d_ff, D), "%s.%d.layer.1.DenseReluDense.wi_1.weight", b, j);
		} else
			need(c, SHAPE(t->d_ff, D), "%s.%d.layer.1.DenseReluDense.wi.weight", b, j);
		need(c, SHAPE(D, t->d_ff), "%s.%d.layer.1.DenseReluDense.wo.weight", b, j);
		need(c, SHAPE(D), "%s.%d.layer.1.layer_norm.weight", b, j);
	}
	need(c, SHAPE(D), "text_encoder.encoder.final_layer_norm.weight");
}

static void need_decoder(struct check *c, const mg_config *cfg)
{
	const mg_decoder_config *d = &cfg->dec;
	int64_t H = d->hidden_size;
	if (cfg->has_enc_to_dec_proj) {
		need(c, SHAPE(H, cfg->t5.d_model), "enc_to_dec_proj.weight");
		need(c, SHAPE(H), "enc_to_dec_proj.bias");
	}
	const char *p = "decoder.model.decoder";
	for (int k = 0; k < d->num_codebooks; k++) {
		need(c, SHAPE(d->vocab_size + 1, H), "%s.embed_tokens.%d.weight", p, k);
		need(c, SHAPE(d->vocab_size, H), "decoder.lm_heads.%d.weight", k);
	}
	if (st_find(c->st, "decoder.model.decoder.embed_positions.weights"))
		need(c, SHAPE(d->max_positions, H), "%s.embed_positions.weights", p);
	static const char *const attn[] = {"self_attn", "encoder_attn"}, *const proj[] = {"q", "k", "v", "out"};
	static const char *const norms[] = {"self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm"};
	for (int i = 0; i < d->num_layers; i++) {
		for (int a = 0; a < 2; a++)
			for (int q = 0; q < 4; q++)
				need(c, SHAPE(H, H), "%s.layers.%d.%s.%s_proj.weight", p, i, attn[a], proj[q]);
		for (int n = 0; n < 3; n++) {
			need(c, SHAPE(H), "%s.layers.%d.%s.weight", p, i, norms[n]);
			need(c, SHAPE(H), "%s.layers.%d.%s.bias", p, i, norms[n]);
		}
		need(c, SHAPE(d->ffn_dim, H), "%s.layers.%d.fc1.weight", p, i);
		need(c, SHAPE(H, d->ffn_dim), "%s.layers.%d.fc2.weight", p, i);
	}
	need(c, SHAPE(H), "%s.layer_norm.weight", p);
	need(c, SHAPE(H), "%s.layer_norm.bias", p);
}

static int validate(const char *dir, const st_set *st, const mg_config *cfg, char *err, size_t errlen)
{
	struct check c = {st, dir, err, errlen, 0};
	need_t5(&c, &cfg->t5);
	need_decoder(&c, cfg);
	need_encodec(&c, cfg);
	return c.failed ? -1 : 0;
}

/* ---- description ---- */

/* 1234567 -> "1,234,567" */
static const char *grouped(int64_t n, char *buf, size_t len)
{
	char raw[32];
	int m = snprintf(raw, sizeof raw, "%lld", (long long)n), o = 0;
	for (int i = 0; i < m && (size_t)o + 2 < len; i++) {
		if (i && (m - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = raw[i];
	}
	buf[o] = 0;
	return buf;
}

static void describe(const char *dir, const char *id, const char *rev, const mg_config *cfg, const st_set *st)
{
	const mg_t5_config *t = &cfg->t5;
	const mg_decoder_config *d = &cfg->dec;
	const mg_encodec_config *e = &cfg->codec;
	char b1[32], b2[32];

	printf("model          %s\n", id);
	printf("path           %s\n", dir);
	if (rev && *rev)
		printf("revision       %s\n", rev);
	printf("type           musicgen, %s, text-conditioned (T5 + cross-attention), EnCodec audio\n",
	       d->audio_channels == 2 ? "stereo" : "mono");
	printf("text encoder   T5: vocab %d, d_model %d, %d layers, %d heads x d_kv %d, d_ff %d (%s%s), "
	       "%d buckets / max distance %d, eps %g\n",
	       t->vocab_size, t->d_model, t->num_layers, t->num_heads, t->d_kv, t->d_ff, t->gated ? "gated " : "",
	       t->act_gelu ? "gelu" : "relu", t->num_buckets, t->max_distance, (double)t->eps);
	if (cfg->has_enc_to_dec_proj)
		printf("projection     %d -> %d\n", t->d_model, d->hidden_size);
	else
		printf("projection     none (%d = %d)\n", t->d_model, d->hidden_size);
	printf("decoder        hidden %d, %d layers, %d heads x %d, ffn %d, %d codebooks x %d codes, "
	       "%d positions, bos/pad %d\n",
	       d->hidden_size, d->num_layers, d->num_heads, d->head_dim, d->ffn_dim, d->num_codebooks, d->vocab_size,
	       d->max_positions, d->bos_token_id);
	printf("audio codec    EnCodec: %d Hz, %d filters, latent %d, ratios [", e->sampling_rate, e->num_filters,
	       e->hidden_size);
	for (int i = 0; i < e->num_ratios; i++)
		printf("%s%d", i ? ", " : "", e->ratios[i]);
	printf("] (hop %d), codebooks of %d x %d, %d LSTM layer%s, %d residual layer%s, kernels %d/%d/%d, "
	       "%s padding%s\n",
	       e->hop_length, e->codebook_size, e->codebook_dim, e->num_lstm_layers, e->num_lstm_layers == 1 ? "" : "s",
	       e->num_residual_layers, e->num_residual_layers == 1 ? "" : "s", e->kernel_size, e->last_kernel_size,
	       e->residual_kernel_size, e->pad_reflect ? "reflect" : "constant",
	       e->use_conv_shortcut ? ", conv shortcuts" : "");

	/* Parameters per part: stored values, counted by name prefix. */
	static const char *const prefix[] = {"text_encoder.", "enc_to_dec_proj.", "decoder.", "audio_encoder."};
	static const char *const label[] = {"text encoder", "projection", "decoder", "audio codec", "other"};
	int64_t count[5] = {0}, total = 0, by_dtype[ST_F8_E5M2 + 1] = {0};
	for (size_t i = 0; i < st_count(st); i++) {
		const st_tensor *x = st_at(st, i);
		int p = 4;
		for (int k = 0; k < 4; k++)
			if (!strncmp(x->name, prefix[k], strlen(prefix[k]))) {
				p = k;
				break;
			}
		count[p] += x->numel;
		total += x->numel;
		by_dtype[x->dtype] += x->numel;
	}
	printf("parameters     ");
	for (int k = 0; k < 5; k++)
		if (count[k] || k < 4)
			printf("%s %s, ", label[k], grouped(count[k], b1, sizeof b1));
	printf("total %s (%zu tensors)\n", grouped(total, b2, sizeof b2), st_count(st));
	printf("storage        ");
	int first = 1;
	for (int dt = 0; dt <= ST_F8_E5M2; dt++)
		if (by_dtype[dt]) {
			printf("%s%s (%.1f%%)", first ? "" : ", ", st_dtype_name((st_dtype)dt),
			       100.0 * (double)by_dtype[dt] / (double)(total ? total : 1));
			first = 0;
		}
	printf("\n");

	printf("sample rate    %d Hz, %s\n", e->sampling_rate, d->audio_channels == 2 ? "stereo" : "mono");
	printf("frame rate     %g Hz (%d samples per frame)\n", e->frame_rate, e->hop_length);
	/* One window: max_position_embeddings - 1 decoder steps after BOS; the
	 * delay pattern spends (codebooks per channel - 1) of them. */
	int steps = d->max_positions - 1, per_ch = d->num_codebooks / d->audio_channels;
	int frames = steps - (per_ch - 1);
	printf("longest take   %.2f s (%d frames = %d decoder steps - %d for the delay pattern)\n",
	       frames > 0 ? frames / e->frame_rate : 0.0, frames > 0 ? frames : 0, steps, per_ch - 1);
	printf("defaults       top-k %d, top-p %g, temperature %g, guidance %g, %s\n", cfg->gen.top_k,
	       (double)cfg->gen.top_p, (double)cfg->gen.temperature,
	       cfg->gen.guidance_scale > 0 ? (double)cfg->gen.guidance_scale : 3.0,
	       cfg->gen.do_sample ? "sampling" : "greedy");
	char sp[4200];
	snprintf(sp, sizeof sp, "%s/spiece.model", dir);
	printf("tokenizer      %s\n", access(sp, R_OK) == 0 ? "spiece.model"
	                                                    : "none (no spiece.model: only unconditional takes)");
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *model = NULL;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":m:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			model = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("musicgen-tui %s\n", PACKAGE_VERSION);
			return 0;
		case ':':
			fprintf(stderr, "musicgen-tui info: %s expects a value (a model directory or hub id)\n",
			        argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "musicgen-tui info: unknown option '%s'; expected --model PATH, --help or --version\n",
			        argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "musicgen-tui info: unexpected argument '%s'; expected --model PATH\n", argv[optind]);
		return 2;
	}
	if (!model) {
		fprintf(stderr, "musicgen-tui info: --model PATH is required (a model directory or hub id ORG/NAME)\n");
		return 2;
	}

	char dir[4096], id[512], rev[256], err[MG_ERR_LEN];
	mg_config cfg;
	st_set *st = NULL;
	if (mg_resolve_model(model, 0, dir, sizeof dir, id, sizeof id, rev, sizeof rev, err, sizeof err) ||
	    mg_config_load(&cfg, dir, err, sizeof err) || st_open(&st, dir, err, sizeof err) ||
	    validate(dir, st, &cfg, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui info: %s\n", err);
		st_close(st);
		return 1;
	}
	describe(dir, id, rev, &cfg, st);
	st_close(st);
	return 0;
}
