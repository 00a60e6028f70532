/* cmd_bench.c - `musicgen-tui bench`: how fast a model generates on this
 * machine, against what its memory bandwidth allows.
 *
 * A decoder step reads every weight of the decoder once plus the KV cache,
 * so its floor is (bytes read per step) / (memory bandwidth). bench measures
 * the bandwidth in the same run (a multi-threaded streaming read over a
 * buffer larger than the caches, before, four times during and after the
 * decoder's steps), generates 10 s of audio (T5, the decoder
 * steps with classifier-free guidance, EnCodec) and reports the median step
 * time against that floor, the real-time factor, peak memory and load time.
 *
 * --shape builds a checkpoint of random weights of a MusicGen architecture in
 * memory (an anonymous memory file holding a safetensors container, loaded
 * through the same mapped-file path as a real checkpoint), so every size can
 * be measured without downloading it. --accuracy compares the weight formats
 * with float32 instead: logits and greedy tokens over a run of steps.
 *
 * Exit status: 0 success, 1 runtime error, 2 usage error. */
#include "autoconfig.h"

#define _GNU_SOURCE 1 /* memfd_create */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/commands.h"
#include "app/util.h"
#include "engine/config.h"
#include "engine/encodec.h"
#include "engine/kernels.h"
#include "engine/linear.h"
#include "engine/model.h"
#include "engine/musicgen.h"
#include "engine/pool.h"
#include "engine/safetensors.h"

#define CMD "bench"

static void help(FILE *f)
{
	fprintf(f,
	        "Usage: musicgen-tui bench [--model PATH | --shape small|medium|large] [--weights f32|f16|q8]\n"
	        "         [--steps N] [--threads N] [--backend cpu|opencl|auto] [--device N] [--json]\n"
	        "       musicgen-tui bench --accuracy [--model PATH | --shape NAME] [--steps N] [--threads N]\n"
	        "\n"
	        "Measures generation speed against the memory-bandwidth floor of a decoder step.\n"
	        "\n"
	        "  --model PATH     a model directory or hub id in the local Hugging Face cache\n"
	        "  --shape NAME     random weights of musicgen-small, -medium or -large built in memory\n"
	        "                   (default small when no --model is given)\n"
	        "  --weights F      weight format: f32, f16 or q8 (default: the engine's default)\n"
	        "  --steps N        decoder steps of the timed run (default: 10 s of audio)\n"
	        "  --threads N      CPU threads (default: all cores)\n"
	        "  --backend B      compute backend (default auto)\n"
	        "  --device N       the OpenCL device (numbers from 'musicgen-tui devices')\n"
	        "  --json           also print the results as one JSON object on the last line\n"
	        "  --accuracy       compare f16 and q8 with f32: greedy-token agreement and the largest\n"
	        "                   logit difference over N steps (default 200) fed the f32 tokens\n");
}

/* ---------------------------------------------------------------- shapes */

typedef struct shape {
	const char *name;
	int hidden, layers, heads, ffn;
} shape;

static const shape shapes[] = {
	{"small", 1024, 24, 16, 4096},
	{"medium", 1536, 48, 24, 6144},
	{"large", 2048, 48, 32, 8192},
};

/* config.json of a MusicGen checkpoint with that decoder: T5-base text
 * encoder, 4 codebooks of 2048 codes, EnCodec 32 kHz. */
static void shape_config(const shape *s, char *buf, size_t len)
{
	snprintf(buf, len,
	         "{\"model_type\": \"musicgen\", \"is_encoder_decoder\": true,\n"
	         " \"text_encoder\": {\"model_type\": \"t5\", \"vocab_size\": 32128, \"d_model\": 768, \"d_kv\": 64,\n"
	         "   \"num_heads\": 12, \"num_layers\": 12, \"d_ff\": 3072, \"feed_forward_proj\": \"relu\",\n"
	         "   \"relative_attention_num_buckets\": 32, \"relative_attention_max_distance\": 128,\n"
	         "   \"layer_norm_epsilon\": 1e-6, \"pad_token_id\": 0, \"eos_token_id\": 1},\n"
	         " \"audio_encoder\": {\"model_type\": \"encodec\", \"sampling_rate\": 32000, \"audio_channels\": 1,\n"
	         "   \"num_filters\": 64, \"hidden_size\": 128, \"codebook_size\": 2048, \"codebook_dim\": 128,\n"
	         "   \"upsampling_ratios\": [8, 5, 4, 4], \"target_bandwidths\": [2.2], \"num_lstm_layers\": 2,\n"
	         "   \"num_residual_layers\": 1, \"kernel_size\": 7, \"last_kernel_size\": 7,\n"
	         "   \"residual_kernel_size\": 3, \"dilation_growth_rate\": 2, \"compress\": 2,\n"
	         "   \"use_causal_conv\": false, \"pad_mode\": \"reflect\", \"norm_type\": \"weight_norm\",\n"
	         "   \"trim_right_ratio\": 1.0, \"use_conv_shortcut\": false, \"normalize\": false,\n"
	         "   \"chunk_length_s\": null, \"overlap\": null},\n"
	         " \"decoder\": {\"model_type\": \"musicgen_decoder\", \"hidden_size\": %d, \"num_hidden_layers\": %d,\n"
	         "   \"num_attention_heads\": %d, \"ffn_dim\": %d, \"vocab_size\": 2048, \"num_codebooks\": 4,\n"
	         "   \"audio_channels\": 1, \"max_position_embeddings\": 2048, \"activation_function\": \"gelu\",\n"
	         "   \"scale_embedding\": false, \"pad_token_id\": 2048, \"bos_token_id\": 2048,\n"
	         "   \"cross_attention_hidden_size\": null, \"tie_word_embeddings\": false}}\n",
	         s->hidden, s->layers, s->heads, s->ffn);
}

static const char shape_generation_config[] =
	"{\"bos_token_id\": 2048, \"decoder_start_token_id\": 2048, \"do_sample\": true, \"guidance_scale\": 3.0,\n"
	" \"max_length\": 1500, \"pad_token_id\": 2048}\n";

/* ------------------------------------------------- random checkpoint */

enum init { INIT_UNIFORM, INIT_NORM_WEIGHT, INIT_COPY };

typedef struct rtensor {
	char name[112];
	int ndim;
	int64_t shape[4];
	enum init init;
	float scale;              /* uniform in [-scale, scale] (norm weights: 1 +- scale) */
	const st_tensor *src;     /* INIT_COPY: copied as stored */
	size_t begin, end;        /* byte offsets in the data buffer */
} rtensor;

typedef struct rlist {
	rtensor *t;
	size_t n, cap;
} rlist;

static int radd(rlist *l, enum init init, float scale, int ndim, const int64_t *shape, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static int radd(rlist *l, enum init init, float scale, int ndim, const int64_t *shape, const char *fmt, ...)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		rtensor *t = realloc(l->t, cap * sizeof *t);
		if (!t)
			return -1;
		l->t = t;
		l->cap = cap;
	}
	rtensor *t = &l->t[l->n++];
	memset(t, 0, sizeof *t);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->name, sizeof t->name, fmt, ap);
	va_end(ap);
	t->ndim = ndim;
	memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
	t->init = init;
	t->scale = scale;
	return 0;
}

/* A matrix [rows, cols] with variance 1 / cols, so activations stay O(1). */
#define MAT(rows, cols, ...) radd(l, INIT_UNIFORM, sqrtf(3.0f / (float)(cols)), 2, (int64_t[]){rows, cols}, __VA_ARGS__)
#define VEC(init, scale, n, ...) radd(l, init, scale, 1, (int64_t[]){n}, __VA_ARGS__)

/* Every tensor of the checkpoint SPEC-format §3 names, for config c. */
static int list_tensors(rlist *l, const mg_config *c, const st_set *codec)
{
	const mg_t5_config *t = &c->t5;
	const mg_decoder_config *d = &c->dec;
	int I = t->num_heads * t->d_kv, D = d->hidden_size, rc = 0;
	rc |= radd(l, INIT_UNIFORM, 1.0f, 2, (int64_t[]){t->vocab_size, t->d_model}, "text_encoder.shared.weight");
	for (int j = 0; j < t->num_layers; j++) {
		static const char *const qkv[] = {"q", "k", "v"};
		for (int k = 0; k < 3; k++)
			rc |= MAT(I, t->d_model, "text_encoder.encoder.block.%d.layer.0.SelfAttention.%s.weight", j, qkv[k]);
		rc |= MAT(t->d_model, I, "text_encoder.encoder.block.%d.layer.0.SelfAttention.o.weight", j);
		if (j == 0)
			rc |= radd(l, INIT_UNIFORM, 0.5f, 2, (int64_t[]){t->num_buckets, t->num_heads},
			           "text_encoder.encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
		rc |= VEC(INIT_NORM_WEIGHT, 0.1f, t->d_model, "text_encoder.encoder.block.%d.layer.0.layer_norm.weight", j);
		rc |= MAT(t->d_ff, t->d_model, "text_encoder.encoder.block.%d.layer.1.DenseReluDense.wi.weight", j);
		rc |= MAT(t->d_model, t->d_ff, "text_encoder.encoder.block.%d.layer.1.DenseReluDense.wo.weight", j);
		rc |= VEC(INIT_NORM_WEIGHT, 0.1f, t->d_model, "text_encoder.encoder.block.%d.layer.1.layer_norm.weight", j);
	}
	rc |= VEC(INIT_NORM_WEIGHT, 0.1f, t->d_model, "text_encoder.encoder.final_layer_norm.weight");
	if (c->has_enc_to_dec_proj) {
		rc |= MAT(D, t->d_model, "enc_to_dec_proj.weight");
		rc |= VEC(INIT_UNIFORM, 0.02f, D, "enc_to_dec_proj.bias");
	}
	for (int k = 0; k < d->num_codebooks; k++)
		rc |= radd(l, INIT_UNIFORM, 1.0f, 2, (int64_t[]){d->vocab_size + 1, D}, "decoder.model.decoder.embed_tokens.%d.weight", k);
	for (int i = 0; i < d->num_layers; i++) {
		static const char *const attn[] = {"self_attn", "encoder_attn"};
		static const char *const proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
		for (int a = 0; a < 2; a++) {
			for (int p = 0; p < 4; p++)
				rc |= MAT(D, D, "decoder.model.decoder.layers.%d.%s.%s.weight", i, attn[a], proj[p]);
			rc |= VEC(INIT_NORM_WEIGHT, 0.1f, D, "decoder.model.decoder.layers.%d.%s_layer_norm.weight", i, attn[a]);
			rc |= VEC(INIT_UNIFORM, 0.02f, D, "decoder.model.decoder.layers.%d.%s_layer_norm.bias", i, attn[a]);
		}
		rc |= MAT(d->ffn_dim, D, "decoder.model.decoder.layers.%d.fc1.weight", i);
		rc |= MAT(D, d->ffn_dim, "decoder.model.decoder.layers.%d.fc2.weight", i);
		rc |= VEC(INIT_NORM_WEIGHT, 0.1f, D, "decoder.model.decoder.layers.%d.final_layer_norm.weight", i);
		rc |= VEC(INIT_UNIFORM, 0.02f, D, "decoder.model.decoder.layers.%d.final_layer_norm.bias", i);
	}
	rc |= VEC(INIT_NORM_WEIGHT, 0.1f, D, "decoder.model.decoder.layer_norm.weight");
	rc |= VEC(INIT_UNIFORM, 0.02f, D, "decoder.model.decoder.layer_norm.bias");
	/* Heads 4x wider than 1/sqrt(D): logits spread like a trained model's,
	 * not a near-uniform distribution whose argmax is a coin toss. */
	for (int k = 0; k < d->num_codebooks; k++)
		rc |= radd(l, INIT_UNIFORM, 4.0f * sqrtf(3.0f / (float)D), 2, (int64_t[]){d->vocab_size, D},
		           "decoder.lm_heads.%d.weight", k);
	for (size_t i = 0; i < st_count(codec); i++) {
		const st_tensor *s = st_at(codec, i);
		if (s->ndim > 4)
			return -1;
		rc |= radd(l, INIT_COPY, 0, s->ndim, s->shape, "%s", s->name);
		if (!rc)
			l->t[l->n - 1].src = s;
	}
	return rc ? -1 : 0;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The checkpoint as a safetensors container in an anonymous memory file:
 * generated tensors in dtype dt (F16: half the memory of F32, converted at
 * load like any half-precision checkpoint; F32 for accuracy comparisons,
 * where F16 values would make the f16 format exact), EnCodec's as they
 * come. Returns the set opened from it, mapped like a file on disk. */
static st_set *random_checkpoint(const mg_config *c, uint64_t seed, st_dtype dt, size_t *bytes, char *err,
                                 size_t errlen)
{
	st_set *codec = st_new_memory(), *out = NULL;
	rlist l = {0};
	char *hdr = NULL;
	void *buf = NULL;
	int fd = -1;
	if (!codec || mg_encodec_random_weights(codec, &c->codec, seed, err, errlen))
		goto fail;
	if (list_tensors(&l, c, codec)) {
		snprintf(err, errlen, "out of memory listing tensors");
		goto fail;
	}
	size_t off = 0, hlen = 64, hcap = 1 << 16;
	hdr = malloc(hcap);
	if (!hdr)
		goto nomem;
	hlen = (size_t)snprintf(hdr, hcap, "{\"__metadata__\": {\"format\": \"pt\"}");
	for (size_t i = 0; i < l.n; i++) {
		rtensor *t = &l.t[i];
		st_dtype tdt = t->init == INIT_COPY ? t->src->dtype : dt;
		int64_t numel = 1;
		for (int k = 0; k < t->ndim; k++)
			numel *= t->shape[k];
		t->begin = off;
		t->end = off += (size_t)numel * st_dtype_size(tdt);
		char sh[96] = "";
		for (int k = 0, p = 0; k < t->ndim; k++)
			p += snprintf(sh + p, sizeof sh - (size_t)p, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
		if (hcap - hlen < 512) {
			char *h = realloc(hdr, hcap * 2);
			if (!h)
				goto nomem;
			hdr = h;
			hcap *= 2;
		}
		hlen += (size_t)snprintf(hdr + hlen, hcap - hlen,
		                         ", \"%s\": {\"dtype\": \"%s\", \"shape\": [%s], \"data_offsets\": [%zu, %zu]}",
		                         t->name, st_dtype_name(tdt), sh, t->begin, t->end);
	}
	hdr[hlen++] = '}';
	while (hlen % 8)
		hdr[hlen++] = ' ';

	fd = memfd_create("musicgen-bench", MFD_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a memory file (%s)", strerror(errno));
		goto fail;
	}
	uint64_t hl = hlen;
	unsigned char le[8];
	for (int k = 0; k < 8; k++)
		le[k] = (unsigned char)(hl >> (8 * k));
	enum { CHUNK = 1 << 20 };
	buf = malloc(CHUNK * sizeof(float));
	if (!buf)
		goto nomem;
	if (write_all(fd, le, 8) || write_all(fd, hdr, hlen))
		goto wfail;
	for (size_t i = 0; i < l.n; i++) {
		rtensor *t = &l.t[i];
		if (t->init == INIT_COPY) {
			if (write_all(fd, t->src->data, t->src->nbytes))
				goto wfail;
			continue;
		}
		uint64_t s = seed * 1000003u + i;
		size_t es = st_dtype_size(dt), n = (t->end - t->begin) / es;
		for (size_t done = 0; done < n;) {
			size_t m = n - done < CHUNK ? n - done : CHUNK;
			for (size_t k = 0; k < m; k++) {
				float u = (float)((double)(splitmix(&s) >> 11) * 0x1p-53 * 2.0 - 1.0);
				float v = t->init == INIT_NORM_WEIGHT ? 1.0f + t->scale * u : t->scale * u;
				if (dt == ST_F16)
					((uint16_t *)buf)[k] = st_f32_to_f16(v);
				else
					((float *)buf)[k] = v;
			}
			if (write_all(fd, buf, m * es))
				goto wfail;
			done += m;
		}
	}
	*bytes = 8 + hlen + off;
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (st_open(&out, path, err, errlen))
		out = NULL;
	goto done;
wfail:
	snprintf(err, errlen, "cannot write the memory file (%s)", strerror(errno));
	goto fail;
nomem:
	snprintf(err, errlen, "out of memory building random weights");
fail:
	out = NULL;
done:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(hdr);
	free(l.t);
	st_close(codec);
	return out;
}

/* ------------------------------------------------------------ memory */

/* A line of /proc/self/status in bytes (VmHWM: peak resident memory,
 * VmRSS: now), 0 if unknown. */
static double status_bytes(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double kb = 0;
	size_t n = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, n) && line[n] == ':')
			kb = atof(line + n + 1);
	if (f)
		fclose(f);
	return kb * 1024;
}

/* Starts the peak over from the current resident size (Linux >= 4.0). */
static int reset_peak_rss(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (!f)
		return -1;
	int rc = fputs("5", f) < 0;
	return fclose(f) || rc ? -1 : 0;
}

struct bw_job {
	const float *buf;
	float (*dot)(const float *, const float *, int);
	volatile float sink;
};

/* Reads chunks [b, e) of 16 MiB with the kernel set's SIMD dot product (a
 * scalar loop does not keep enough loads in flight to measure the memory). */
#define BW_CHUNK (4 << 20)

static void bw_read(void *arg, int b, int e)
{
	struct bw_job *j = arg;
	float s = 0;
	for (int c = b; c < e; c++) {
		const float *p = j->buf + (size_t)c * BW_CHUNK;
		s += j->dot(p, p, BW_CHUNK);
	}
	j->sink = s;
}

/* Streaming read bandwidth in bytes/s with `threads` threads over a 1 GiB
 * buffer (larger than the last-level cache), best of 5 passes; on `shared`
 * (the model's pool, between two steps) or on a pool of its own. */
static double bandwidth_on(mg_pool *shared, int threads, char *err, size_t errlen)
{
	size_t bytes = (size_t)1 << 30;
	/* On huge pages where the system grants them, as the weights and the KV
	 * cache (engine/linear.c): the floor is what the memory gives at best. */
	float *buf = mg_big_alloc(bytes);
	mg_pool *own = shared ? NULL : mg_pool_new(threads), *pool = shared ? shared : own;
	double best = 0;
	if (!buf || !pool) {
		snprintf(err, errlen, "cannot set up the bandwidth measurement (1 GiB, %d threads)", threads);
		mg_big_free(buf, bytes);
		mg_pool_free(own);
		return 0;
	}
	for (size_t i = 0; i < bytes / sizeof *buf; i++)
		buf[i] = (float)(i & 7) * 0.125f;
	struct bw_job j = {buf, mg_kernels_active()->dot, 0};
	int chunks = (int)(bytes / sizeof *buf / BW_CHUNK);
	for (int pass = 0; pass < 6; pass++) {
		double t = mono_seconds();
		mg_pool_for(pool, chunks, 1, bw_read, &j);
		t = mono_seconds() - t;
		if (pass && bytes / t > best)
			best = (double)bytes / t;
	}
	mg_pool_free(own);
	mg_big_free(buf, bytes);
	return best;
}

static double bandwidth(int threads, char *err, size_t errlen)
{
	return bandwidth_on(NULL, threads, err, errlen);
}

/* ------------------------------------------------------------ timing */

/* Readings of the bandwidth while the steps run (besides the ones before and
 * after): on a machine others share, the memory's speed moves from one
 * second to the next (one host here read 40-50 GB/s for a while, then 70-79,
 * then 40-50 again), so the floor is taken from readings spread over the
 * same minutes as the steps whose median it is compared with. */
#define BW_DURING 4
#define BW_READINGS (BW_DURING + 2)

struct step_clock {
	double *t;
	int n, cap;
	/* Readings between steps: every `every` steps (0: none), on the
	 * model's pool; each step's interval leaves its reading out. */
	mg_pool *pool;
	int threads, every;
	double bw[BW_READINGS];
	int nbw;
	double paused; /* seconds spent in those readings */
	double hwm;    /* peak resident bytes before each reading */
};

static void on_step(int step, int total, void *user)
{
	struct step_clock *c = user;
	if (c->n < c->cap)
		c->t[c->n++] = mono_seconds();
	if (!c->every || step % c->every || step >= total || c->nbw >= 1 + BW_DURING || c->n < 1)
		return;
	/* The reading's 1 GiB is not the model's memory: the peak so far is
	 * kept, and the peak starts over once the buffer is gone again. */
	double h = status_bytes("VmHWM"), t0 = mono_seconds();
	if (h > c->hwm)
		c->hwm = h;
	char err[MG_ERR_LEN];
	double b = bandwidth_on(c->pool, c->threads, err, sizeof err);
	if (b > 0)
		c->bw[c->nbw++] = b;
	reset_peak_rss();
	double d = mono_seconds() - t0;
	c->paused += d;
	c->t[c->n - 1] += d;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Prompt token ids of a fixed length: the content does not change the cost. */
#define PROMPT_TOKENS 12

static void prompt_ids(const mg_model *m, int32_t *ids, int32_t *mask)
{
	uint64_t s = 7;
	int V = m->cfg.t5.vocab_size;
	for (int i = 0; i < PROMPT_TOKENS; i++) {
		ids[i] = i == PROMPT_TOKENS - 1 ? m->cfg.t5.eos_token_id : (int32_t)(2 + splitmix(&s) % (uint64_t)(V - 2));
		mask[i] = 1;
	}
}

/* Bytes one decoder step reads: the matrices applied per step
 * (step_weight_bytes), and the KV caches of self- and cross-attention in the
 * decoder's cache format (step_cache_bytes). */
static double step_weight_bytes(const mg_decoder *d)
{
	double b = 0;
	for (int l = 0; l < d->c.num_layers; l++) {
		const mg_dec_layer *L = &d->layers[l];
		b += (double)(L->qkv.bytes + L->o.bytes + L->cq.bytes + L->co.bytes + L->fc1.bytes + L->fc2.bytes);
	}
	for (int k = 0; k < d->c.num_codebooks; k++)
		b += (double)d->heads[k].bytes;
	return b;
}

/* The same from the config, for a backend whose matrices live elsewhere:
 * q, k, v, out, cross q, cross out, fc1, fc2 per layer and the heads. */
static double device_step_weight_bytes(const mg_decoder_config *c, int bytes_per_weight)
{
	double D = c->hidden_size, per_layer = 6 * D * D + 2 * D * c->ffn_dim;
	return (c->num_layers * per_layer + (double)c->num_codebooks * c->vocab_size * D) * bytes_per_weight;
}

/* N rows over `positions` cached positions, text_rows of them also over
 * text_len text positions (the null row of guidance attends to none). */
static double step_cache_bytes(const mg_decoder *d, int N, int positions, int text_rows, int text_len)
{
	/* Per position and head, the self-attention and the text's caches in
	 * their formats (q8: a byte per element and a float scale). */
	int hd = d->c.head_dim;
	double self = (double)mg_kv_block_bytes(d->kv_fmt, hd) / MG_KV_BLOCK;
	double text = (double)mg_kv_block_bytes(d->xkv_fmt, hd) / MG_KV_BLOCK;
	return 2.0 * d->c.num_layers * d->c.num_heads * ((double)N * positions * self + (double)text_rows * text_len * text);
}

/* The matrix products of one step alone for N rows: median of 5 passes. */
static double time_products(mg_model *m, int N)
{
	const mg_decoder *d = &m->dec;
	int D = d->c.hidden_size, F = d->c.ffn_dim, V = d->c.vocab_size;
	int w = F > V ? F : V;
	w = w > 3 * D ? w : 3 * D;
	float *x = malloc((size_t)N * w * sizeof *x), *y = malloc((size_t)N * w * sizeof *y);
	double t[5];
	if (!x || !y) {
		free(x), free(y);
		return 0;
	}
	for (size_t i = 0; i < (size_t)N * w; i++)
		x[i] = 0.01f * (float)(i % 13) - 0.06f;
	for (int pass = 0; pass < 6; pass++) {
		double t0 = mono_seconds();
		for (int l = 0; l < d->c.num_layers; l++) {
			const mg_dec_layer *L = &d->layers[l];
			const mg_mat *dd[] = {&L->qkv, &L->o, &L->cq, &L->co, &L->fc1};
			for (size_t k = 0; k < sizeof dd / sizeof dd[0]; k++)
				mg_linear(m->pool, dd[k], NULL, x, N, y);
			mg_linear(m->pool, &L->fc2, NULL, x, N, y);
		}
		for (int k = 0; k < d->c.num_codebooks; k++)
			mg_linear(m->pool, &d->heads[k], NULL, x, N, y);
		if (pass)
			t[pass - 1] = mono_seconds() - t0;
	}
	free(x), free(y);
	return median(t, 5);
}

/* ------------------------------------------------------------- options */

typedef struct opts {
	const char *model;
	const shape *shape;
	int weights, steps, threads, backend, device, json, accuracy;
} opts;

#define BENCH_OPTIONS                                                                                          \
	"--model, --shape, --weights, --steps, --threads, --backend, --device, --json, --accuracy, --help or "    \
	"--version"

static int parse(int argc, char **argv, opts *o)
{
	memset(o, 0, sizeof *o);
	o->backend = MG_BACKEND_AUTO;
	o->device = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (cli_help_or_version(a, help))
			exit(0);
		if (!strcmp(a, "--json")) {
			o->json = 1;
			continue;
		}
		if (!strcmp(a, "--accuracy")) {
			o->accuracy = 1;
			continue;
		}
		static const char *const valued[] = {"--model", "--shape", "--weights", "--steps",
		                                     "--threads", "--backend", "--device"};
		int known = 0;
		for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
			known |= !strcmp(a, valued[k]);
		if (!known && !strncmp(a, "--", 2)) {
			fprintf(stderr, "musicgen-tui " CMD ": unknown option '%s'; expected " BENCH_OPTIONS " (see musicgen-tui " CMD " --help)\n", a);
			return -1;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "musicgen-tui " CMD ": %s\n", strncmp(a, "--", 2) ? "unexpected argument" : "missing value");
			fprintf(stderr, "  (at '%s'; see musicgen-tui " CMD " --help)\n", a);
			return -1;
		}
		const char *v = argv[++i];
		long n;
		if (!strcmp(a, "--model"))
			o->model = v;
		else if (!strcmp(a, "--shape")) {
			o->shape = NULL;
			for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
				if (!strcmp(v, shapes[k].name))
					o->shape = &shapes[k];
			if (!o->shape) {
				fprintf(stderr, "musicgen-tui " CMD ": --shape expects small, medium or large, got '%s'\n", v);
				return -1;
			}
		} else if (!strcmp(a, "--weights")) {
			if (cli_weights(CMD, v, &o->weights))
				return -1;
		} else if (!strcmp(a, "--steps")) {
			if (cli_int(CMD, "--steps", v, 1, 100000, &n))
				return -1;
			o->steps = (int)n;
		} else if (!strcmp(a, "--threads")) {
			if (cli_int(CMD, "--threads", v, 1, 256, &n))
				return -1;
			o->threads = (int)n;
		} else if (!strcmp(a, "--backend")) {
			if (cli_backend(CMD, v, &o->backend))
				return -1;
		} else if (!strcmp(a, "--device")) {
			if (cli_int(CMD, "--device", v, 0, 1023, &n))
				return -1;
			o->device = (int)n;
		} else {
			fprintf(stderr, "musicgen-tui " CMD ": unknown option '%s'; expected " BENCH_OPTIONS " (see musicgen-tui " CMD " --help)\n", a);
			return -1;
		}
	}
	if (o->model && o->shape) {
		fprintf(stderr, "musicgen-tui " CMD ": --model and --shape exclude each other\n");
		return -1;
	}
	if (!o->model && !o->shape)
		o->shape = &shapes[0];
	return 0;
}

/* Loads the model the options name (a random checkpoint stored as dt for
 * --shape), timing it. */
static int load(const opts *o, int weights, st_dtype dt, mg_model **m, double *load_s, char *err, size_t errlen)
{
	mg_load_params lp = mg_load_params_default();
	lp.weights = weights;
	lp.threads = o->threads;
	lp.backend = o->backend;
	lp.device = o->device;
	if (o->model) {
		double t = mono_seconds();
		int rc = mg_model_load(m, o->model, &lp, err, errlen);
		*load_s = mono_seconds() - t;
		return rc;
	}
	char json[4096];
	mg_config cfg;
	shape_config(o->shape, json, sizeof json);
	if (mg_config_parse(&cfg, json, shape_generation_config, o->shape->name, err, errlen))
		return MG_ERR_CONFIG;
	size_t bytes;
	st_set *st = random_checkpoint(&cfg, 1, dt, &bytes, err, errlen);
	if (!st)
		return MG_ERR_NOMEM;
	/* The random checkpoint stands for a file on disk: its pages are not
	 * part of the model's memory until the loader maps them in. */
	reset_peak_rss();
	double t = mono_seconds();
	int rc = mg_model_load_st(m, st, &cfg, NULL, &lp, err, errlen);
	*load_s = mono_seconds() - t;
	return rc;
}

/* ------------------------------------------------------------ accuracy */

/* Runs `steps` decoder steps of the guided pair (N = 2) fed the tokens of
 * `ref` (or its own greedy tokens when ref is NULL, recorded into out), and
 * returns the guided scores of every step [steps][K][V]. */
static int run_steps(mg_model *m, int steps, const int32_t *ref, int32_t *out, float *scores, char *err,
                     size_t errlen)
{
	const mg_decoder *d = &m->dec;
	int K = d->c.num_codebooks, V = d->c.vocab_size, D = d->c.hidden_size, S = PROMPT_TOKENS, N = 2;
	float g = 3.0f;
	mg_dec_state st;
	if (mg_dec_state_init(&st, d, mg_pool_size(m->pool), N, S, steps, 1, err, errlen))
		return MG_ERR_NOMEM;
	float *enc = malloc((size_t)N * S * D * sizeof *enc), *logits = malloc((size_t)N * K * V * sizeof *logits);
	int32_t mask[2 * PROMPT_TOKENS], *ids = malloc((size_t)N * K * sizeof *ids);
	int rc = MG_OK;
	if (!enc || !logits || !ids) {
		snprintf(err, errlen, "out of memory");
		rc = MG_ERR_NOMEM;
		goto out;
	}
	/* Conditioning: fixed pseudo-random text states (the same for every
	 * format), and the null row attending to nothing. */
	uint64_t s = 11;
	for (int i = 0; i < S * D; i++)
		enc[i] = (float)((double)(splitmix(&s) >> 11) * 0x1p-53 * 2.0 - 1.0);
	memset(enc + (size_t)S * D, 0, (size_t)S * D * sizeof *enc);
	for (int i = 0; i < S; i++)
		mask[i] = 1, mask[S + i] = 0;
	mg_dec_set_cross(d, m->pool, &st, enc, mask);
	for (int i = 0; i < N * K; i++)
		ids[i] = d->start_id;
	for (int t = 0; t < steps; t++) {
		if (mg_dec_forward(d, m->pool, &st, ids, 1, logits, NULL, err, errlen)) {
			rc = MG_ERR_BACKEND;
			goto out;
		}
		float *sc = scores + (size_t)t * K * V;
		for (int k = 0; k < K; k++)
			for (int v = 0; v < V; v++) {
				float c = logits[(size_t)k * V + v], u = logits[(size_t)(K + k) * V + v];
				sc[(size_t)k * V + v] = u + g * (c - u);
			}
		for (int k = 0; k < K; k++) {
			int tok = ref ? ref[t * K + k] : mg_argmax(sc + (size_t)k * V, V);
			if (out)
				out[t * K + k] = tok;
			ids[k] = ids[K + k] = tok;
		}
	}
out:
	mg_dec_state_free(&st);
	free(enc), free(logits), free(ids);
	return rc;
}

static int accuracy(const opts *o_in)
{
	/* It compares the CPU decoder's weight formats, step by step through
	 * the CPU decoder itself: always on the CPU backend. */
	opts oc = *o_in;
	const opts *o = &oc;
	if (oc.backend == MG_BACKEND_OPENCL)
		fprintf(stderr, "musicgen-tui " CMD ": --accuracy compares the CPU backend's weight formats; "
		                "running it on the CPU\n");
	oc.backend = MG_BACKEND_CPU;
	char err[MG_ERR_LEN];
	int steps = o->steps ? o->steps : 200;
	mg_model *m = NULL;
	double load_s;
	if (load(o, MG_WEIGHTS_F32, ST_F32, &m, &load_s, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui " CMD ": %s\n", err);
		return 1;
	}
	int K = m->cfg.dec.num_codebooks, V = m->cfg.dec.vocab_size;
	if (steps > m->dec.n_pos)
		steps = m->dec.n_pos;
	float *ref = malloc((size_t)steps * K * V * sizeof *ref), *sc = malloc((size_t)steps * K * V * sizeof *sc);
	int32_t *tok = malloc((size_t)steps * K * sizeof *tok);
	int rc = 1;
	if (!ref || !sc || !tok) {
		fprintf(stderr, "musicgen-tui " CMD ": out of memory\n");
		goto out;
	}
	if (run_steps(m, steps, NULL, tok, ref, err, sizeof err))
		goto fail;
	mg_model_free(m);
	m = NULL;
	printf("%-7s %12s %14s %14s  (%d steps x %d codebooks, guided, fed the f32 tokens)\n", "weights",
	       "agreement", "max |dlogit|", "first diff", steps, K);
	printf("%-7s %11.2f%% %14.3g %14s\n", "f32", 100.0, 0.0, "-");
	static const int fmts[] = {MG_WEIGHTS_F16, MG_WEIGHTS_Q8};
	for (size_t f = 0; f < 2; f++) {
		if (load(o, fmts[f], ST_F32, &m, &load_s, err, sizeof err) ||
		    run_steps(m, steps, tok, NULL, sc, err, sizeof err))
			goto fail;
		long agree = 0;
		int first = -1;
		double maxd = 0;
		for (int t = 0; t < steps; t++)
			for (int k = 0; k < K; k++) {
				const float *a = ref + ((size_t)t * K + k) * V, *b = sc + ((size_t)t * K + k) * V;
				int same = mg_argmax(b, V) == tok[t * K + k];
				agree += same;
				if (!same && first < 0)
					first = t;
				for (int v = 0; v < V; v++)
					if (fabs((double)a[v] - b[v]) > maxd)
						maxd = fabs((double)a[v] - b[v]);
			}
		char fd[32] = "none";
		if (first >= 0)
			snprintf(fd, sizeof fd, "step %d", first);
		printf("%-7s %11.2f%% %14.3g %14s\n", mg_weights_name(fmts[f]), 100.0 * (double)agree / ((double)steps * K),
		       maxd, fd);
		mg_model_free(m);
		m = NULL;
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "musicgen-tui " CMD ": %s\n", err);
out:
	mg_model_free(m);
	free(ref), free(sc), free(tok);
	return rc;
}

/* ---------------------------------------------------------------- bench */

int cmd_bench(int argc, char **argv)
{
	opts o;
	if (parse(argc, argv, &o))
		return 2;
	if (o.accuracy)
		return accuracy(&o);
	char err[MG_ERR_LEN];
	int threads = o.threads > 0 ? o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1)
		threads = 1;

	/* Bandwidth first, before the model occupies memory. */
	double bw = bandwidth(threads, err, sizeof err);
	if (bw <= 0) {
		fprintf(stderr, "musicgen-tui " CMD ": %s\n", err);
		return 1;
	}
	reset_peak_rss();

	mg_model *m = NULL;
	double load_s;
	if (load(&o, o.weights, ST_F16, &m, &load_s, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui " CMD ": %s\n", err);
		return 1;
	}
	double rss_loaded = status_bytes("VmRSS"), peak_loaded = status_bytes("VmHWM");
	mg_model_info info;
	mg_model_get_info(m, &info);
	int K = m->cfg.dec.num_codebooks, ch = m->cfg.dec.audio_channels;
	int frames = o.steps ? mg_frames_for_steps(o.steps, K, ch) : (int)lround(10.0 * info.frame_rate);
	if (frames > info.max_frames)
		frames = info.max_frames;
	if (frames < 1)
		frames = 1;
	int steps = mg_steps_for_frames(frames, K, ch);

	int32_t ids[PROMPT_TOKENS], mask[PROMPT_TOKENS];
	prompt_ids(m, ids, mask);
	const char *prompt[1] = {"bench"};
	mg_params p = mg_params_default(m);
	p.prompts = prompt;
	p.n_prompts = 1;
	p.count = 1;
	p.seed = 1;
	if (p.guidance <= 1)
		p.guidance = 3;
	struct step_clock clk = {
		.t = malloc((size_t)(steps + 1) * sizeof(double)), .cap = steps + 1, .pool = m->pool, .threads = threads,
		.bw = {bw}, .nbw = 1,
	};
	double *dt = malloc((size_t)(steps + 1) * sizeof(double));
	mg_callbacks cb = {on_step, NULL, NULL, &clk};
	mg_take *warm = NULL, *take = NULL;
	int rc = 1;
	if (!clk.t || !dt) {
		fprintf(stderr, "musicgen-tui " CMD ": out of memory\n");
		goto out;
	}
	/* Warm-up: a short take allocates and touches everything once. */
	p.frames = 2 * K > frames ? frames : 2 * K;
	if (mg_generate_tokens(m, &p, ids, mask, PROMPT_TOKENS, NULL, &warm, err, sizeof err))
		goto fail;
	p.frames = frames;
	/* Readings during the run where it is long enough for them (not the
	 * few steps of a smoke test). */
	clk.every = steps >= 10 * (BW_DURING + 1) ? steps / (BW_DURING + 1) : 0;
	clk.n = 0;
	clk.t[clk.n++] = mono_seconds();
	double t0 = clk.t[0];
	if (mg_generate_tokens(m, &p, ids, mask, PROMPT_TOKENS, &cb, &take, err, sizeof err))
		goto fail;
	double wall = mono_seconds() - t0 - clk.paused;
	double rss = status_bytes("VmHWM");
	if (clk.hwm > rss)
		rss = clk.hwm;

	/* Step times: between consecutive progress calls (the first step also
	 * waits for T5, so it is left out). */
	int nd = 0;
	for (int i = 2; i < clk.n; i++)
		dt[nd++] = clk.t[i] - clk.t[i - 1];
	double ms_step = median(dt, nd) * 1e3;
	/* The bandwidth once more, after the run (its buffer is freed again;
	 * the peak is read above). The floor takes the median of the readings
	 * before, during and after the steps, as the step time is their median:
	 * the best one alone came from a quiet moment as often as not, and
	 * when the steps had missed it the ratio said 1.9 for steps as fast as
	 * in a run whose readings all fell in the busy stretch (1.2). */
	double bw2 = bandwidth(threads, err, sizeof err);
	if (bw2 > 0 && clk.nbw < BW_READINGS)
		clk.bw[clk.nbw++] = bw2;
	double bw_min = clk.bw[0], bw_max = clk.bw[0];
	for (int i = 1; i < clk.nbw; i++) {
		bw_min = clk.bw[i] < bw_min ? clk.bw[i] : bw_min;
		bw_max = clk.bw[i] > bw_max ? clk.bw[i] : bw_max;
	}
	int n_bw = clk.nbw;
	bw = median(clk.bw, n_bw);
	double audio_s = (double)take->n_samples / take->sample_rate;
	int N = 2; /* one take, guided: the conditional and the null row */
	/* On an OpenCL device the CPU decoder's matrices are not bound: the
	 * bytes come from the config, and the host's bandwidth floor and the CPU
	 * products do not apply. */
	int on_device = m->ocl != NULL;
	double wbytes = on_device ? device_step_weight_bytes(&m->cfg.dec, !strcmp(info.weights, "f16") ? 2 : 4)
	                          : step_weight_bytes(&m->dec);
	double cbytes = step_cache_bytes(&m->dec, N, steps / 2 + 1, 1, PROMPT_TOKENS);
	double floor_ms = on_device ? 0 : (wbytes + cbytes) / bw * 1e3;
	double prod_ms = on_device ? 0 : time_products(m, N) * 1e3, prod_floor = on_device ? 0 : wbytes / bw * 1e3;
	double rtf = wall / audio_s;
	const char *src = o.model ? o.model : o.shape->name;

	printf("model              %s (%s weights, %d threads, %s, kernels %s, tuning %s)\n", src, info.weights,
	       info.threads, info.backend, mg_linear_kernels(), mg_tuning_active()->name);
	printf("memory bandwidth   %.1f GB/s (streaming read, %d threads, median of %d readings before, during and "
	       "after the steps: %.1f-%.1f)\n",
	       bw / 1e9, threads, n_bw, bw_min / 1e9, bw_max / 1e9);
	printf("load + convert     %.2f s\n", load_s);
	printf("T5 encode          %.1f ms (%d tokens)\n", take->t5_seconds * 1e3, PROMPT_TOKENS);
	printf("decoder step       %.2f ms median of %d steps (2 rows, guidance)\n", ms_step, nd);
	printf("  bytes per step   %.1f MB (weights %.1f MB + KV cache %.1f MB at step %d)\n", (wbytes + cbytes) / 1e6,
	       wbytes / 1e6, cbytes / 1e6, steps / 2);
	if (on_device)
		printf("  floor            (the host's bandwidth does not bound a device; no CPU products)\n");
	else {
		printf("  floor            %.2f ms   ratio to floor %.2f\n", floor_ms, ms_step / floor_ms);
		printf("  products alone   %.2f ms   (weights' floor %.2f ms, ratio %.2f)\n", prod_ms, prod_floor,
		       prod_ms / prod_floor);
	}
	printf("EnCodec decode     %.1f ms per second of audio\n", take->encodec_seconds * 1e3 / audio_s);
	printf("end to end         %.2f s for %.2f s of audio: real-time factor %.3f\n", wall, audio_s, rtf);
	printf("peak RSS           %.0f MB (after loading: %.0f MB resident, peak %.0f MB)\n", rss / 1048576.0,
	       rss_loaded / 1048576.0, peak_loaded / 1048576.0);
	if (o.json)
		printf("{\"ms_per_step\": %.6g, \"floor_ms_per_step\": %.6g, \"ratio_to_floor\": %.4f, \"rtf\": %.4f, "
		       "\"t5_ms\": %.2f, \"encodec_ms_per_audio_s\": %.2f, \"load_s\": %.3f, \"peak_rss_mb\": %.1f, "
		       "\"weights\": \"%s\", \"threads\": %d, \"backend\": \"%s\", \"model\": \"%s\", "
		       "\"bandwidth_gb_s\": %.2f, \"bytes_per_step\": %.0f, \"products_ms\": %.6g, "
		       "\"products_floor_ms\": %.6g, \"steps\": %d, \"audio_s\": %.3f, \"kernels\": \"%s\", "
		       "\"tuning\": \"%s\", \"bandwidth_readings\": %d, \"bandwidth_min_gb_s\": %.2f, "
		       "\"bandwidth_max_gb_s\": %.2f}\n",
		       ms_step, floor_ms, floor_ms > 0 ? ms_step / floor_ms : 0.0, rtf, take->t5_seconds * 1e3,
		       take->encodec_seconds * 1e3 / audio_s, load_s, rss / 1048576.0, info.weights, info.threads,
		       info.backend, src, bw / 1e9, wbytes + cbytes, prod_ms, prod_floor, nd, audio_s,
		       mg_linear_kernels(), mg_tuning_active()->name, n_bw, bw_min / 1e9, bw_max / 1e9);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "musicgen-tui " CMD ": %s\n", err);
out:
	mg_take_free(warm);
	mg_take_free(take);
	mg_model_free(m);
	free(clk.t);
	free(dt);
	return rc;
}
