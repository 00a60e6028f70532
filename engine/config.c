/* config.c - config.json / generation_config.json into typed structs.
 * Unsupported or absurd values are rejected with a message naming the key. */
#include "autoconfig.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/config.h"

struct ctx {
	const char *what; /* file name for messages */
	char *err;
	size_t errlen;
	int failed;
};

static void cfail(struct ctx *c, const char *fmt, ...)
{
	if (c->failed)
		return;
	c->failed = 1;
	if (c->err && c->errlen) {
		int n = snprintf(c->err, c->errlen, "%s: ", c->what);
		if (n < 0 || (size_t)n >= c->errlen)
			return;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
}

/* An integer key in [lo, hi]; absent -> def (or an error when def is INT_MIN). */
static int get_int(struct ctx *c, json_t *o, const char *sect, const char *key, int def, long lo, long hi)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (def == INT_MIN)
			cfail(c, "missing key %s%s%s", sect, *sect ? "." : "", key);
		return def;
	}
	long long x;
	if (json_is_integer(v))
		x = json_integer_value(v);
	else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
	         fabs(json_real_value(v)) < 1e15)
		x = (long long)json_real_value(v); /* accept 4.0 as 4 */
	else {
		cfail(c, "%s%s%s must be an integer", sect, *sect ? "." : "", key);
		return def;
	}
	if (x < lo || x > hi) {
		cfail(c, "%s%s%s = %lld is outside the supported range [%ld, %ld]", sect, *sect ? "." : "", key, x, lo, hi);
		return def;
	}
	return (int)x;
}

static double get_num(struct ctx *c, json_t *o, const char *sect, const char *key, double def, double lo, double hi)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return def;
	if (!json_is_number(v)) {
		cfail(c, "%s%s%s must be a number", sect, *sect ? "." : "", key);
		return def;
	}
	double x = json_number_value(v);
	if (!(x >= lo && x <= hi)) {
		cfail(c, "%s%s%s = %g is outside the supported range [%g, %g]", sect, *sect ? "." : "", key, x, lo, hi);
		return def;
	}
	return x;
}

static int get_bool(struct ctx *c, json_t *o, const char *sect, const char *key, int def)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return def;
	if (!json_is_boolean(v)) {
		cfail(c, "%s.%s must be true or false", sect, key);
		return def;
	}
	return json_is_true(v);
}

static const char *get_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *get_obj(struct ctx *c, json_t *root, const char *key)
{
	json_t *o = json_object_get(root, key);
	if (!json_is_object(o)) {
		cfail(c, "missing or invalid \"%s\" section", key);
		return NULL;
	}
	return o;
}

static void parse_t5(struct ctx *c, json_t *o, mg_t5_config *t)
{
	const char *s = "text_encoder";
	const char *mt = get_str(o, "model_type");
	if (!mt || strcmp(mt, "t5")) {
		cfail(c, "text_encoder.model_type is %s%s%s; only \"t5\" is supported", mt ? "\"" : "", mt ? mt : "missing",
		      mt ? "\"" : "");
		return;
	}
	t->vocab_size = get_int(c, o, s, "vocab_size", INT_MIN, 1, 1 << 22);
	t->d_model = get_int(c, o, s, "d_model", INT_MIN, 1, 1 << 16);
	t->d_kv = get_int(c, o, s, "d_kv", INT_MIN, 1, 1 << 12);
	t->num_heads = get_int(c, o, s, "num_heads", INT_MIN, 1, 1024);
	t->num_layers = get_int(c, o, s, "num_layers", INT_MIN, 1, 1024);
	t->d_ff = get_int(c, o, s, "d_ff", INT_MIN, 1, 1 << 18);
	t->num_buckets = get_int(c, o, s, "relative_attention_num_buckets", 32, 2, 1 << 12);
	t->max_distance = get_int(c, o, s, "relative_attention_max_distance", 128, 1, 1 << 20);
	t->eps = (float)get_num(c, o, s, "layer_norm_epsilon", 1e-6, 0, 1);
	t->pad_token_id = get_int(c, o, s, "pad_token_id", 0, 0, 1 << 22);
	t->eos_token_id = get_int(c, o, s, "eos_token_id", 1, 0, 1 << 22);
	const char *ff = get_str(o, "feed_forward_proj");
	if (!ff)
		ff = "relu";
	if (!strcmp(ff, "relu")) {
		t->gated = 0;
		t->act_gelu = 0;
	} else if (!strcmp(ff, "gated-gelu")) {
		t->gated = 1;
		t->act_gelu = 1;
	} else if (!strcmp(ff, "gated-relu")) {
		t->gated = 1;
		t->act_gelu = 0;
	} else
		cfail(c, "text_encoder.feed_forward_proj \"%s\" is not supported (relu, gated-gelu, gated-relu)", ff);
	if (!c->failed && (long)t->num_heads * t->d_kv > (1L << 18))
		cfail(c, "text_encoder.num_heads x d_kv is too large");
}

static void parse_decoder(struct ctx *c, json_t *o, mg_decoder_config *d)
{
	const char *s = "decoder";
	const char *mt = get_str(o, "model_type");
	if (!mt || strcmp(mt, "musicgen_decoder")) {
		cfail(c, "decoder.model_type is %s%s%s; only \"musicgen_decoder\" is supported", mt ? "\"" : "",
		      mt ? mt : "missing", mt ? "\"" : "");
		return;
	}
	d->hidden_size = get_int(c, o, s, "hidden_size", INT_MIN, 1, 1 << 16);
	d->num_layers = get_int(c, o, s, "num_hidden_layers", INT_MIN, 1, 1024);
	d->num_heads = get_int(c, o, s, "num_attention_heads", INT_MIN, 1, 1024);
	d->ffn_dim = get_int(c, o, s, "ffn_dim", INT_MIN, 1, 1 << 18);
	d->vocab_size = get_int(c, o, s, "vocab_size", INT_MIN, 2, 1 << 20);
	d->num_codebooks = get_int(c, o, s, "num_codebooks", INT_MIN, 1, 64);
	d->audio_channels = get_int(c, o, s, "audio_channels", 1, 1, 2);
	d->max_positions = get_int(c, o, s, "max_position_embeddings", 2048, 2, 1 << 20);
	d->pad_token_id = get_int(c, o, s, "pad_token_id", INT_MIN, 0, 1 << 20);
	d->bos_token_id = get_int(c, o, s, "bos_token_id", d->pad_token_id, 0, 1 << 20);
	d->cross_attention = 1;
	if (c->failed)
		return;
	if (d->hidden_size % d->num_heads)
		cfail(c, "decoder.hidden_size %d is not divisible by num_attention_heads %d", d->hidden_size, d->num_heads);
	d->head_dim = d->hidden_size / d->num_heads;
	if (d->hidden_size % 2)
		cfail(c, "decoder.hidden_size %d must be even (sinusoidal positions)", d->hidden_size);
	if (d->audio_channels == 2 && d->num_codebooks % 2)
		cfail(c, "decoder.num_codebooks %d must be even for stereo", d->num_codebooks);
	if (d->bos_token_id > d->vocab_size || d->pad_token_id > d->vocab_size)
		cfail(c, "decoder.bos_token_id/pad_token_id must be at most vocab_size %d", d->vocab_size);
	const char *act = get_str(o, "activation_function");
	if (act && strcmp(act, "gelu"))
		cfail(c, "decoder.activation_function \"%s\" is not supported (gelu)", act);
}

static void parse_encodec(struct ctx *c, json_t *o, mg_encodec_config *e)
{
	const char *s = "audio_encoder";
	const char *mt = get_str(o, "model_type");
	if (!mt || strcmp(mt, "encodec")) {
		cfail(c, "audio_encoder.model_type is %s%s%s; only \"encodec\" is supported", mt ? "\"" : "",
		      mt ? mt : "missing", mt ? "\"" : "");
		return;
	}
	e->sampling_rate = get_int(c, o, s, "sampling_rate", INT_MIN, 1000, 384000);
	e->audio_channels = get_int(c, o, s, "audio_channels", 1, 1, 1);
	e->num_filters = get_int(c, o, s, "num_filters", INT_MIN, 1, 1 << 14);
	e->hidden_size = get_int(c, o, s, "hidden_size", INT_MIN, 1, 1 << 14);
	e->codebook_size = get_int(c, o, s, "codebook_size", INT_MIN, 2, 1 << 20);
	e->codebook_dim = get_int(c, o, s, "codebook_dim", e->hidden_size, 1, 1 << 14);
	e->num_lstm_layers = get_int(c, o, s, "num_lstm_layers", 2, 0, 16);
	e->num_residual_layers = get_int(c, o, s, "num_residual_layers", 1, 0, 16);
	e->kernel_size = get_int(c, o, s, "kernel_size", 7, 1, 1024);
	e->last_kernel_size = get_int(c, o, s, "last_kernel_size", 7, 1, 1024);
	e->residual_kernel_size = get_int(c, o, s, "residual_kernel_size", 3, 1, 1024);
	e->dilation_growth_rate = get_int(c, o, s, "dilation_growth_rate", 2, 1, 64);
	e->compress = get_int(c, o, s, "compress", 2, 1, 1024);
	e->use_conv_shortcut = get_bool(c, o, s, "use_conv_shortcut", 1);
	if (c->failed)
		return;
	if (e->codebook_dim != e->hidden_size)
		cfail(c, "audio_encoder.codebook_dim %d differs from hidden_size %d (not supported)", e->codebook_dim,
		      e->hidden_size);
	if (get_bool(c, o, s, "use_causal_conv", 0))
		cfail(c, "audio_encoder.use_causal_conv is true: causal EnCodec is not supported");
	if (get_bool(c, o, s, "normalize", 0))
		cfail(c, "audio_encoder.normalize is true: normalised EnCodec is not supported");
	const char *norm = get_str(o, "norm_type");
	if (norm && strcmp(norm, "weight_norm"))
		cfail(c, "audio_encoder.norm_type \"%s\" is not supported (weight_norm)", norm);
	const char *pad = get_str(o, "pad_mode");
	if (!pad || !strcmp(pad, "reflect"))
		e->pad_reflect = 1;
	else if (!strcmp(pad, "constant"))
		e->pad_reflect = 0;
	else
		cfail(c, "audio_encoder.pad_mode \"%s\" is not supported (reflect, constant)", pad);
	json_t *ch = json_object_get(o, "chunk_length_s");
	if (ch && !json_is_null(ch))
		cfail(c, "audio_encoder.chunk_length_s is set: chunked EnCodec is not supported");
	json_t *tr = json_object_get(o, "trim_right_ratio");
	if (tr && json_is_number(tr) && json_number_value(tr) != 1.0)
		cfail(c, "audio_encoder.trim_right_ratio %g is not supported (1.0)", json_number_value(tr));

	json_t *r = json_object_get(o, "upsampling_ratios");
	if (!json_is_array(r) || json_array_size(r) < 1 || json_array_size(r) > MG_MAX_RATIOS) {
		cfail(c, "audio_encoder.upsampling_ratios must be a list of 1 to %d integers", MG_MAX_RATIOS);
		return;
	}
	e->num_ratios = (int)json_array_size(r);
	long long hop = 1;
	for (int i = 0; i < e->num_ratios; i++) {
		json_t *v = json_array_get(r, (size_t)i);
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 64) {
			cfail(c, "audio_encoder.upsampling_ratios[%d] must be an integer in [1, 64]", i);
			return;
		}
		e->ratios[i] = (int)json_integer_value(v);
		hop *= e->ratios[i];
	}
	if (hop > 1 << 20) {
		cfail(c, "audio_encoder.upsampling_ratios multiply to %lld, too large", hop);
		return;
	}
	e->hop_length = (int)hop;
	e->frame_rate = ceil((double)e->sampling_rate / (double)e->hop_length);
	/* Channel count doubles per upsampling stage: num_filters * 2^num_ratios. */
	if ((long long)e->num_filters << e->num_ratios > (1 << 16))
		cfail(c, "audio_encoder.num_filters %d with %d ratios gives too many channels", e->num_filters, e->num_ratios);

	json_t *bw = json_object_get(o, "target_bandwidths");
	if (!json_is_array(bw) || json_array_size(bw) == 0 || !json_is_number(json_array_get(bw, json_array_size(bw) - 1))) {
		cfail(c, "audio_encoder.target_bandwidths must be a non-empty list of numbers");
		return;
	}
	double b = json_number_value(json_array_get(bw, json_array_size(bw) - 1));
	json_t *b0 = json_array_get(bw, 0);
	if (!json_is_number(b0) || !(json_number_value(b0) > 0)) {
		cfail(c, "audio_encoder.target_bandwidths[0] must be a positive number");
		return;
	}
	e->encode_bandwidth = json_number_value(b0);
	/* HF: int(1000 * target_bandwidths[-1] // (frame_rate * 10)) */
	double nq = floor(1000.0 * b / (e->frame_rate * 10.0));
	if (!(nq >= 1 && nq <= 64))
		cfail(c, "audio_encoder.target_bandwidths[-1] = %g gives %g quantizers; expected 1 to 64", b, nq);
	e->num_quantizers = (int)nq;
}

static void parse_generation(struct ctx *c, json_t *o, mg_generation_config *g, const mg_decoder_config *d)
{
	const char *s = "";
	g->do_sample = o ? get_bool(c, o, "generation_config", "do_sample", 0) : 0;
	g->guidance_scale = o ? (float)get_num(c, o, s, "guidance_scale", 0.0, 0.0, 1e6) : 0.0f;
	g->max_length = o ? get_int(c, o, s, "max_length", 20, 1, 1 << 24) : 20;
	g->top_k = o ? get_int(c, o, s, "top_k", 250, 0, 1 << 24) : 250;
	g->top_p = o ? (float)get_num(c, o, s, "top_p", 1.0, 0.0, 1.0) : 1.0f;
	g->temperature = o ? (float)get_num(c, o, s, "temperature", 1.0, 0.0, 1e6) : 1.0f;
	g->decoder_start_token_id = o ? get_int(c, o, s, "decoder_start_token_id", d->bos_token_id, 0, 1 << 20)
	                              : d->bos_token_id;
	g->pad_token_id = o ? get_int(c, o, s, "pad_token_id", d->pad_token_id, 0, 1 << 20) : d->pad_token_id;
	/* HF refuses to sample with these; so do we, naming the key. */
	if (!c->failed && !(g->top_p > 0))
		cfail(c, "top_p = %g is outside (0, 1]", g->top_p);
	if (!c->failed && !(g->temperature > 0))
		cfail(c, "temperature = %g must be greater than 0", g->temperature);
}

int mg_config_parse(mg_config *cfg, const char *config_json, const char *gen_json, const char *what, char *err,
                    size_t errlen)
{
	struct ctx c = {what ? what : "config.json", err, errlen, 0};
	memset(cfg, 0, sizeof *cfg);
	json_error_t je;
	json_t *root = json_loads(config_json, 0, &je);
	if (!root) {
		cfail(&c, "not valid JSON (%s, line %d)", je.text, je.line);
		return -1;
	}
	json_t *gen = NULL;
	if (!json_is_object(root)) {
		cfail(&c, "not a JSON object");
		goto out;
	}
	const char *mt = get_str(root, "model_type");
	if (!mt) {
		cfail(&c, "missing key model_type");
		goto out;
	}
	if (!strcmp(mt, "musicgen_melody")) {
		cfail(&c, "model_type \"musicgen_melody\" (melody conditioning) is not supported yet");
		goto out;
	}
	if (strcmp(mt, "musicgen")) {
		cfail(&c, "model_type \"%s\" is not a MusicGen model (expected \"musicgen\")", mt);
		goto out;
	}
	json_t *t5 = get_obj(&c, root, "text_encoder"), *dec = get_obj(&c, root, "decoder"),
	       *ae = get_obj(&c, root, "audio_encoder");
	if (c.failed)
		goto out;
	parse_t5(&c, t5, &cfg->t5);
	if (!c.failed)
		parse_decoder(&c, dec, &cfg->dec);
	if (!c.failed)
		parse_encodec(&c, ae, &cfg->codec);
	if (c.failed)
		goto out;
	json_t *cah = json_object_get(dec, "cross_attention_hidden_size");
	if (cah && !json_is_null(cah))
		cfail(&c, "decoder.cross_attention_hidden_size is set: not supported");
	cfg->has_enc_to_dec_proj = cfg->t5.d_model != cfg->dec.hidden_size;
	if (cfg->codec.codebook_size != cfg->dec.vocab_size)
		cfail(&c, "decoder.vocab_size %d differs from audio_encoder.codebook_size %d", cfg->dec.vocab_size,
		      cfg->codec.codebook_size);
	/* The number of quantizers the codec holds is not checked against the
	 * decoder here: transformers versions derive it differently from
	 * target_bandwidths (bits per codebook 10 or log2(codebook_size)), so the
	 * checkpoint's quantizer tensors are what counts (EnCodec binding). */
	if (cfg->dec.num_codebooks % cfg->dec.audio_channels)
		cfail(&c, "decoder.num_codebooks %d is not a multiple of audio_channels %d", cfg->dec.num_codebooks,
		      cfg->dec.audio_channels);
	if (c.failed)
		goto out;
	if (gen_json) {
		/* Messages name generation_config.json beside config.json. */
		char gname[4200] = "generation_config.json";
		const char *slash = strrchr(c.what, '/');
		if (slash)
			snprintf(gname, sizeof gname, "%.*s/generation_config.json", (int)(slash - c.what), c.what);
		struct ctx gc = {gname, err, errlen, 0};
		gen = json_loads(gen_json, 0, &je);
		if (!gen || !json_is_object(gen)) {
			if (gen)
				cfail(&gc, "not a JSON object");
			else
				cfail(&gc, "not valid JSON (%s, line %d)", je.text, je.line);
			c.failed = 1;
			goto out;
		}
		parse_generation(&gc, gen, &cfg->gen, &cfg->dec);
		c.failed = gc.failed;
	} else
		parse_generation(&c, NULL, &cfg->gen, &cfg->dec);
out:
	json_decref(root);
	json_decref(gen);
	return c.failed ? -1 : 0;
}

static char *read_text(const char *path, size_t max, int *missing, char *err, size_t errlen)
{
	struct stat sb;
	*missing = 0;
	if (stat(path, &sb) != 0) {
		*missing = errno == ENOENT;
		snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(sb.st_mode)) { /* a directory or a FIFO would fail or hang */
		snprintf(err, errlen, "%s: not a regular file", path);
		return NULL;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(max + 1);
	size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
	fclose(f);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (n > max) {
		free(buf);
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
		return NULL;
	}
	buf[n] = 0;
	if (strlen(buf) != n) {
		free(buf);
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		return NULL;
	}
	return buf;
}

int mg_config_load(mg_config *c, const char *dir, char *err, size_t errlen)
{
	char p[4096];
	int missing;
	snprintf(p, sizeof p, "%s/config.json", dir);
	char *cj = read_text(p, 16u << 20, &missing, err, errlen);
	if (!cj)
		return -1;
	snprintf(p, sizeof p, "%s/generation_config.json", dir);
	char gerr[256];
	char *gj = read_text(p, 16u << 20, &missing, gerr, sizeof gerr);
	if (!gj && !missing) {
		free(cj);
		snprintf(err, errlen, "%s", gerr);
		return -1;
	}
	snprintf(p, sizeof p, "%s/config.json", dir);
	int rc = mg_config_parse(c, cj, gj, p, err, errlen);
	free(cj);
	free(gj);
	return rc;
}
