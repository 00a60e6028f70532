/* model.c - the engine API of mg.h: loading a checkpoint (directory or hub
 * id), default and checked generation parameters, and mg_generate, which
 * runs the stages in order: tokenize -> T5 -> projection -> decoder loop
 * (delay pattern, guidance, token choice) -> EnCodec. */
#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/hub.h"
#include "engine/model.h"
#include "engine/tokenizer.h"
#include "opencl/backend.h"

/* The largest batch one call accepts: takes x (2 with guidance) rows share
 * the KV cache; this bounds it well before memory does on any real model. */
#define MG_MAX_TAKES 256

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

mg_load_params mg_load_params_default(void)
{
	mg_load_params lp = {0};
	lp.backend = MG_BACKEND_AUTO;
	lp.device = -1;
	lp.weights = MG_WEIGHTS_DEFAULT;
	lp.threads = 0;
	return lp;
}

void mg_model_free(mg_model *m)
{
	if (!m)
		return;
	mg_t5_free(&m->t5);
	mg_decoder_free(&m->dec);
	mg_encodec_free(&m->codec);
	ocl_backend_close(m->ocl);
	mg_pool_free(m->pool);
	st_close(m->st);
	mg_tokenizer_free(m->tok);
	free(m->path), free(m->id), free(m->revision), free(m->spiece_path);
	free(m);
}

int mg_default_weights(const mg_decoder_config *d)
{
	/* Float32 reproduces Hugging Face's greedy tokens exactly. The compact
	 * format only pays where a step is bound by streaming the weights from
	 * memory, i.e. once the decoder no longer fits in the caches: there it is
	 * the default (its greedy agreement with float32 is documented in
	 * docs/PERFORMANCE.md); smaller decoders keep float32. */
	double D = d->hidden_size, F = d->ffn_dim;
	double bytes = 4.0 * ((double)d->num_layers * (8.0 * D * D + 2.0 * D * F) +
	                      (double)d->num_codebooks * d->vocab_size * D);
	return bytes >= MG_COMPACT_WEIGHTS_FROM ? mg_weights_resolve(MG_WEIGHTS_DEFAULT) : MG_WEIGHTS_F32;
}

int mg_model_load_st(mg_model **out, st_set *weights, const mg_config *cfg, const char *spiece_path,
                     const mg_load_params *lp_in, char *err, size_t errlen)
{
	mg_load_params lp = lp_in ? *lp_in : mg_load_params_default();
	*out = NULL;
	mg_model *m = calloc(1, sizeof *m);
	if (!m) {
		st_close(weights);
		snprintf(err, errlen, "out of memory");
		return MG_ERR_NOMEM;
	}
	m->st = weights;
	m->cfg = *cfg;
	m->path = dupstr("");
	m->id = dupstr("");
	m->revision = dupstr("");
	if (!m->path || !m->id || !m->revision) {
		mg_model_free(m);
		snprintf(err, errlen, "out of memory");
		return MG_ERR_NOMEM;
	}
	if (lp.backend != MG_BACKEND_AUTO && lp.backend != MG_BACKEND_CPU && lp.backend != MG_BACKEND_OPENCL) {
		mg_model_free(m);
		snprintf(err, errlen, "unknown backend %d", lp.backend);
		return MG_ERR_PARAM;
	}
	m->weights = lp.weights == MG_WEIGHTS_DEFAULT ? mg_default_weights(&cfg->dec) : lp.weights;
	if (m->weights < MG_WEIGHTS_F32 || m->weights > MG_WEIGHTS_Q8) {
		mg_model_free(m);
		snprintf(err, errlen, "unknown weight format %d", lp.weights);
		return MG_ERR_PARAM;
	}
	m->pool = mg_pool_new(lp.threads);
	if (!m->pool) {
		mg_model_free(m);
		snprintf(err, errlen, "cannot start %d worker threads", lp.threads);
		return MG_ERR_NOMEM;
	}
	m->threads = mg_pool_size(m->pool);
	/* The backend: OpenCL when asked for (or, with auto, when a GPU or
	 * accelerator is there and works), else the CPU. */
	/* On a device the compact default is half-precision storage (OpenCL
	 * has no q8 path); an explicit format is passed as it is. */
	mg_load_params dlp = lp;
	if (lp.weights == MG_WEIGHTS_DEFAULT)
		dlp.weights = m->weights == MG_WEIGHTS_F32 ? MG_WEIGHTS_F32 : MG_WEIGHTS_F16;
	int on_device = ocl_backend_open(&m->ocl, m->st, cfg, &dlp, err, errlen);
	if (on_device < 0) {
		mg_model_free(m);
		return MG_ERR_BACKEND;
	}
	if (on_device) {
		m->backend = MG_BACKEND_OPENCL;
		snprintf(m->backend_name, sizeof m->backend_name, "%s", ocl_backend_name(m->ocl));
		m->weights = dlp.weights == MG_WEIGHTS_F16 ? MG_WEIGHTS_F16 : MG_WEIGHTS_F32;
		if (mg_decoder_init_config(&m->dec, m->st, cfg, err, errlen)) {
			mg_model_free(m);
			return MG_ERR_CONFIG;
		}
	} else {
		m->backend = MG_BACKEND_CPU;
		snprintf(m->backend_name, sizeof m->backend_name, "cpu");
		/* The weights are converted on the model's threads. */
		mg_pool *was = mg_linear_convert_pool(m->pool);
		int bad = mg_t5_bind(&m->t5, m->st, &cfg->t5, m->weights, err, errlen) ||
		          mg_decoder_bind(&m->dec, m->st, cfg, m->weights, err, errlen) ||
		          mg_encodec_bind_decoder(&m->codec, m->st, &cfg->codec, err, errlen);
		if (bad) {
			mg_linear_convert_pool(was);
			mg_model_free(m);
			return MG_ERR_FORMAT;
		}
		/* The reduced-precision formats also keep EnCodec's recurrent
		 * matrices (its sequential part) in halves, or in q8 with q8
		 * weights. */
		int wf = mg_weights_resolve(m->weights);
		bad = (wf == MG_WEIGHTS_F16 && mg_encodec_lstm_half(&m->codec, err, errlen)) ||
		      (wf == MG_WEIGHTS_Q8 && mg_encodec_lstm_q8(&m->codec, err, errlen));
		mg_linear_convert_pool(was);
		if (bad) {
			mg_model_free(m);
			return MG_ERR_NOMEM; /* the only way a bound matrix fails to convert */
		}
	}
	int Kc = cfg->dec.num_codebooks / cfg->dec.audio_channels;
	if (!m->ocl && m->codec.n_q != Kc) {
		snprintf(err, errlen,
		         "the audio codec decodes %d codebooks per channel but the decoder makes %d "
		         "(decoder.num_codebooks %d, audio_channels %d)",
		         m->codec.n_q, Kc, cfg->dec.num_codebooks, cfg->dec.audio_channels);
		mg_model_free(m);
		return MG_ERR_CONFIG;
	}
	if (spiece_path) {
		m->spiece_path = dupstr(spiece_path);
		if (!m->spiece_path) {
			mg_model_free(m);
			snprintf(err, errlen, "out of memory");
			return MG_ERR_NOMEM;
		}
		if (mg_tokenizer_load(&m->tok, spiece_path, err, errlen)) {
			mg_model_free(m);
			return MG_ERR_FORMAT;
		}
	}
	*out = m;
	return MG_OK;
}

int mg_model_load(mg_model **out, const char *path, const mg_load_params *lp, char *err, size_t errlen)
{
	char dir[4096], id[512], rev[128], p[4200];
	mg_config cfg;
	st_set *st = NULL;
	*out = NULL;
	if (mg_resolve_model(path, 0, dir, sizeof dir, id, sizeof id, rev, sizeof rev, err, errlen))
		return MG_ERR_IO;
	if (mg_config_load(&cfg, dir, err, errlen))
		return MG_ERR_CONFIG;
	if (st_open(&st, dir, err, errlen))
		return MG_ERR_FORMAT;
	snprintf(p, sizeof p, "%s/spiece.model", dir);
	int have_spiece = access(p, R_OK) == 0;
	int rc = mg_model_load_st(out, st, &cfg, have_spiece ? p : NULL, lp, err, errlen);
	if (rc)
		return rc;
	mg_model *m = *out;
	free(m->path), free(m->id), free(m->revision);
	m->path = dupstr(dir);
	m->id = dupstr(id);
	m->revision = dupstr(rev);
	if (!m->path || !m->id || !m->revision) {
		mg_model_free(m);
		*out = NULL;
		snprintf(err, errlen, "out of memory");
		return MG_ERR_NOMEM;
	}
	return MG_OK;
}

static int max_frames(const mg_model *m)
{
	/* One window: BOS + frames + Kc - 1 steps <= the positions available. */
	int Kc = m->cfg.dec.num_codebooks / m->cfg.dec.audio_channels;
	return m->dec.n_pos - Kc;
}

void mg_model_get_info(const mg_model *m, mg_model_info *info)
{
	memset(info, 0, sizeof *info);
	info->path = m->path;
	info->id = m->id;
	info->revision = m->revision;
	info->sample_rate = m->cfg.codec.sampling_rate;
	info->frame_rate = m->cfg.codec.frame_rate;
	info->audio_channels = m->cfg.dec.audio_channels;
	info->num_codebooks = m->cfg.dec.num_codebooks;
	info->max_frames = max_frames(m);
	info->backend = m->backend_name;
	info->weights = mg_weights_name(m->weights);
	info->threads = m->threads;
}

mg_params mg_params_default(const mg_model *m)
{
	const mg_generation_config *g = &m->cfg.gen;
	mg_params p;
	memset(&p, 0, sizeof p);
	p.count = 1;
	p.frames = (int)lround(10.0 * m->cfg.codec.frame_rate);
	if (p.frames > max_frames(m))
		p.frames = max_frames(m);
	p.guidance = g->guidance_scale > 0 ? g->guidance_scale : 3.0f;
	p.temperature = g->temperature > 0 ? g->temperature : 1.0f;
	p.top_k = g->top_k;
	p.top_p = g->top_p > 0 && g->top_p <= 1 ? g->top_p : 1.0f;
	p.seed = 0;
	p.greedy = !g->do_sample;
	p.threads = 0;
	return p;
}

int mg_params_check(const mg_model *m, const mg_params *p, char *err, size_t errlen)
{
	int Kc = m->cfg.dec.num_codebooks / m->cfg.dec.audio_channels;
	int min_frames = Kc - 1 > 1 ? Kc - 1 : 1;
	if (p->n_prompts < 0 || (p->n_prompts > 0 && !p->prompts)) {
		snprintf(err, errlen, "invalid prompt list (%d prompts)", p->n_prompts);
		return MG_ERR_PARAM;
	}
	for (int i = 0; i < p->n_prompts; i++)
		if (!p->prompts[i]) {
			snprintf(err, errlen, "prompt %d is missing", i + 1);
			return MG_ERR_PARAM;
		}
	if (p->count < 1 || p->count > MG_MAX_TAKES) {
		snprintf(err, errlen, "count %d is outside 1..%d", p->count, MG_MAX_TAKES);
		return MG_ERR_PARAM;
	}
	long takes = (long)(p->n_prompts ? p->n_prompts : 1) * p->count;
	if (takes > MG_MAX_TAKES) {
		snprintf(err, errlen, "%ld takes in one run is more than %d", takes, MG_MAX_TAKES);
		return MG_ERR_PARAM;
	}
	if (p->frames < min_frames) {
		snprintf(err, errlen, "%d frames is too short: this model needs at least %d", p->frames, min_frames);
		return MG_ERR_PARAM;
	}
	if (p->frames > max_frames(m)) {
		snprintf(err, errlen,
		         "%d frames (%.2f s) is longer than one window of this model allows: at most %d frames "
		         "(%.2f s); longer takes are not supported yet",
		         p->frames, p->frames / m->cfg.codec.frame_rate, max_frames(m),
		         max_frames(m) / m->cfg.codec.frame_rate);
		return MG_ERR_PARAM;
	}
	if (!(p->guidance >= 0) || !isfinite(p->guidance)) {
		snprintf(err, errlen, "guidance %g must be a finite number >= 0", p->guidance);
		return MG_ERR_PARAM;
	}
	if (!(p->temperature > 0) || !isfinite(p->temperature)) {
		snprintf(err, errlen, "temperature %g must be > 0 (use greedy decoding for argmax)", p->temperature);
		return MG_ERR_PARAM;
	}
	if (p->top_k < 0) {
		snprintf(err, errlen, "top-k %d must be >= 0 (0 = off)", p->top_k);
		return MG_ERR_PARAM;
	}
	if (!(p->top_p > 0 && p->top_p <= 1)) {
		snprintf(err, errlen, "top-p %g must be in (0, 1]", p->top_p);
		return MG_ERR_PARAM;
	}
	return MG_OK;
}

void mg_take_free(mg_take *t)
{
	if (!t)
		return;
	free(t->codes);
	free(t->pcm);
	free(t->seeds);
	free(t);
}

/* Audio samples per channel for F frames. */
static int64_t samples_for(const mg_model *m, int F)
{
	return m->ocl ? (int64_t)F * m->cfg.codec.hop_length : mg_encodec_decoded_length(&m->codec, F);
}

int mg_model_decode_audio(mg_model *m, const int32_t *codes, int n_takes, int F, float *pcm, char *err,
                          size_t errlen)
{
	if (m->ocl)
		return ocl_backend_decode(m->ocl, codes, n_takes, F, pcm, err, errlen) ? MG_ERR_BACKEND : MG_OK;
	int K = m->cfg.dec.num_codebooks, ch = m->cfg.dec.audio_channels, Kc = K / ch;
	int64_t ns = samples_for(m, F);
	int32_t *cc = malloc((size_t)Kc * F * sizeof *cc);
	if (!cc) {
		snprintf(err, errlen, "out of memory decoding audio");
		return MG_ERR_NOMEM;
	}
	int rc = MG_OK;
	/* Per take and channel (stereo: codebooks interleave L0, R0, L1, R1, ...),
	 * the channel's codebooks [Kc][F] through the mono codec. */
	for (int b = 0; b < n_takes && !rc; b++)
		for (int c = 0; c < ch && !rc; c++) {
			for (int j = 0; j < Kc; j++)
				memcpy(cc + (size_t)j * F, codes + ((size_t)b * K + (size_t)j * ch + c) * F, (size_t)F * sizeof *cc);
			if (mg_encodec_decode(&m->codec, m->pool, cc, F, pcm + ((size_t)b * ch + c) * ns, err, errlen))
				rc = MG_ERR_BACKEND;
		}
	free(cc);
	return rc;
}

static int set_threads(mg_model *m, int threads, char *err, size_t errlen)
{
	if (threads <= 0 || threads == mg_pool_size(m->pool))
		return MG_OK;
	mg_pool *p = mg_pool_new(threads);
	if (!p) {
		snprintf(err, errlen, "cannot start %d worker threads", threads);
		return MG_ERR_NOMEM;
	}
	mg_pool_free(m->pool);
	m->pool = p;
	m->threads = mg_pool_size(p);
	return MG_OK;
}

/* Token choice for one take: greedy argmax, or the processors of
 * sampler.h and a draw from the take's own random stream (seed + take
 * index), so a take never depends on the other takes of the batch. top-k 1
 * keeps only the best code: it is greedy decoding (lowest index on ties). */
struct chooser {
	mg_sampling s;
	mg_rng *rng;    /* [B] */
	void *scratch;  /* mg_sampler_scratch_size(V) */
};

static int choose(void *ctx, int take, float *scores, int K, int V, int32_t *next)
{
	struct chooser *c = ctx;
	for (int k = 0; k < K; k++) {
		float *row = scores + (size_t)k * V;
		if (!c->s.greedy)
			mg_logits_process(row, V, &c->s, c->scratch);
		next[k] = mg_sample_row(row, V, &c->s, &c->rng[take], c->scratch);
	}
	return 0;
}


/* The takes' conditioning on the CPU: every prompt once through T5 and the
 * projection, then copied to its takes (prompts in order, each prompt's
 * count together). enc [B][S][hidden], emask [B][S]. */
static int condition_cpu(mg_model *m, const mg_params *p, const int32_t *ids, const int32_t *mask, int S, int B,
                         float **enc_out, int32_t **emask_out, char *err, size_t errlen)
{
	int np = p->n_prompts, D = m->cfg.dec.hidden_size, Dt = m->cfg.t5.d_model, rc = MG_OK;
	float *h = malloc((size_t)np * S * Dt * sizeof *h), *encp = malloc((size_t)np * S * D * sizeof *encp);
	float *enc = malloc((size_t)B * S * D * sizeof *enc);
	int32_t *emask = malloc((size_t)B * S * sizeof *emask);
	if (!h || !encp || !enc || !emask) {
		snprintf(err, errlen, "out of memory encoding %d prompts", np);
		rc = MG_ERR_NOMEM;
	} else if (mg_t5_encode(&m->t5, m->pool, ids, mask, np, S, h, NULL, err, errlen))
		rc = MG_ERR_FORMAT;
	if (!rc) {
		mg_decoder_project(&m->dec, m->pool, h, mask, np, S, encp);
		for (int i = 0; i < B; i++) {
			int pi = i / p->count;
			memcpy(enc + (size_t)i * S * D, encp + (size_t)pi * S * D, (size_t)S * D * sizeof *enc);
			memcpy(emask + (size_t)i * S, mask + (size_t)pi * S, (size_t)S * sizeof *emask);
		}
	}
	free(h), free(encp);
	if (rc) {
		free(enc), free(emask);
		return rc;
	}
	*enc_out = enc;
	*emask_out = emask;
	return MG_OK;
}


static mg_take *take_new(const mg_model *m, int B, int F, uint64_t seed)
{
	int K = m->cfg.dec.num_codebooks, ch = m->cfg.dec.audio_channels;
	mg_take *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->n_takes = B;
	t->n_codebooks = K;
	t->n_frames = F;
	t->sample_rate = m->cfg.codec.sampling_rate;
	t->channels = ch;
	t->n_samples = samples_for(m, F);
	t->codes = malloc((size_t)B * K * F * sizeof *t->codes);
	t->seeds = malloc((size_t)B * sizeof *t->seeds);
	t->pcm = malloc((size_t)B * ch * (size_t)t->n_samples * sizeof *t->pcm);
	if (!t->codes || !t->seeds || !t->pcm) {
		mg_take_free(t);
		return NULL;
	}
	for (int i = 0; i < B; i++)
		t->seeds[i] = seed + (uint64_t)i;
	return t;
}

int mg_generate_tokens(mg_model *m, const mg_params *p, const int32_t *ids, const int32_t *mask, int S,
                       const mg_callbacks *cb, mg_take **out, char *err, size_t errlen)
{
	*out = NULL;
	int rc = mg_params_check(m, p, err, errlen);
	if (rc)
		return rc;
	if (p->n_prompts > 0 && (!ids || !mask || S < 1)) {
		snprintf(err, errlen, "prompts without token ids");
		return MG_ERR_PARAM;
	}
	if ((rc = set_threads(m, p->threads, err, errlen)))
		return rc;
	const mg_decoder_config *dc = &m->cfg.dec;
	int np = p->n_prompts, B = (np ? np : 1) * p->count, F = p->frames;
	int steps = mg_steps_for_frames(F, dc->num_codebooks, dc->audio_channels);
	float *enc = NULL;
	int32_t *emask = NULL;
	mg_stepper dev_stepper = {0};
	struct chooser ch = {0};
	mg_take *t = take_new(m, B, F, p->seed);
	if (!t) {
		snprintf(err, errlen, "out of memory for %d takes of %d frames", B, F);
		return MG_ERR_NOMEM;
	}

	double t0 = now();
	if (m->ocl) {
		/* On the device: T5 once per prompt, the null rows, cross K/V, caches. */
		if (ocl_backend_condition(m->ocl, ids, mask, np, np ? S : 1, p->count, np ? p->guidance : 1.0f, B,
		                          steps + 1, err, errlen)) {
			rc = MG_ERR_BACKEND;
			goto out;
		}
		dev_stepper.ctx = m->ocl;
		dev_stepper.step = ocl_backend_step;
	}
	if (np > 0 && !m->ocl && (rc = condition_cpu(m, p, ids, mask, S, B, &enc, &emask, err, errlen)))
		goto out;
	t->t5_seconds = now() - t0;

	ch.s.guidance = p->guidance;
	ch.s.temperature = p->temperature;
	ch.s.top_k = p->top_k;
	ch.s.top_p = p->top_p;
	ch.s.greedy = p->greedy || p->top_k == 1;
	ch.rng = malloc((size_t)B * sizeof *ch.rng);
	ch.scratch = malloc(mg_sampler_scratch_size(dc->vocab_size));
	if (!ch.rng || !ch.scratch) {
		snprintf(err, errlen, "out of memory");
		rc = MG_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < B; i++)
		mg_rng_seed(&ch.rng[i], t->seeds[i]);
	mg_gen_request r = {
		.B = B, .steps = steps, .enc = enc, .mask = emask, .S = np > 0 ? S : 1,
		.guidance = np > 0 ? p->guidance : 1.0f,
		.stepper = m->ocl ? &dev_stepper : NULL,
		.choose = choose, .choose_ctx = &ch,
		.on_progress = cb ? cb->on_progress : NULL, .on_frame = cb ? cb->on_frame : NULL,
		.should_abort = cb ? cb->should_abort : NULL, .user_data = cb ? cb->user_data : NULL,
	};
	t0 = now();
	rc = mg_musicgen_generate(&m->dec, m->pool, &r, t->codes, err, errlen);
	t->decode_seconds = now() - t0;
	t->steps = steps;
	if (rc)
		goto out;
	if (cb && cb->should_abort && cb->should_abort(cb->user_data)) {
		snprintf(err, errlen, "generation aborted before audio decoding");
		rc = MG_ERR_ABORTED;
		goto out;
	}
	t0 = now();
	rc = mg_model_decode_audio(m, t->codes, B, F, t->pcm, err, errlen);
	t->encodec_seconds = now() - t0;
out:
	free(enc), free(emask), free(ch.rng), free(ch.scratch);
	if (rc) {
		mg_take_free(t);
		return rc;
	}
	*out = t;
	return MG_OK;
}

int mg_generate(mg_model *m, const mg_params *p, const mg_callbacks *cb, mg_take **out, char *err, size_t errlen)
{
	*out = NULL;
	int rc = mg_params_check(m, p, err, errlen);
	if (rc)
		return rc;
	if (p->n_prompts == 0)
		return mg_generate_tokens(m, p, NULL, NULL, 0, cb, out, err, errlen);
	if (!m->tok) {
		snprintf(err, errlen, "%s: no spiece.model beside the model, so text prompts cannot be tokenized "
		         "(unconditional generation works without it)", m->path ? m->path : "model");
		return MG_ERR_CONFIG;
	}
	int32_t *ids, *mask;
	int S;
	if (mg_tokenize_batch(m->tok, p->prompts, p->n_prompts, &ids, &mask, &S, err, errlen))
		return MG_ERR_NOMEM;
	for (int i = 0; i < p->n_prompts * S; i++)
		if (ids[i] < 0 || ids[i] >= m->cfg.t5.vocab_size) {
			snprintf(err, errlen, "prompt %d: token id %d is outside the text encoder's vocabulary (%d): "
			         "spiece.model does not belong to this model", i / S + 1, ids[i], m->cfg.t5.vocab_size);
			free(ids), free(mask);
			return MG_ERR_CONFIG;
		}
	rc = mg_generate_tokens(m, p, ids, mask, S, cb, out, err, errlen);
	free(ids), free(mask);
	return rc;
}

int mg_model_time_steps(mg_model *m, int n_takes, int guidance, int text_len, int past, int steps,
                        double *seconds, char *err, size_t errlen)
{
	if (m->ocl)
		return ocl_backend_time_steps(m->ocl, n_takes, guidance, text_len, past, steps, seconds, err, errlen)
		           ? MG_ERR_BACKEND
		           : MG_OK;
	const mg_decoder_config *c = &m->cfg.dec;
	int K = c->num_codebooks, V = c->vocab_size, D = c->hidden_size;
	int N = n_takes * (guidance ? 2 : 1), L = past + steps;
	*seconds = 0;
	if (n_takes < 1 || text_len < 1 || past < 0 || steps < 1 || L > m->dec.n_pos) {
		snprintf(err, errlen, "bench: invalid sizes (%d takes, %d text positions, %d + %d positions of %d)",
		         n_takes, text_len, past, steps, m->dec.n_pos);
		return MG_ERR_PARAM;
	}
	mg_dec_state st;
	if (mg_dec_state_init(&st, &m->dec, mg_pool_size(m->pool), N, text_len, L, 1, err, errlen))
		return MG_ERR_NOMEM;
	float *enc = calloc((size_t)N * text_len * D, sizeof *enc), *logits = malloc((size_t)N * K * V * sizeof *logits);
	int32_t *mask = malloc((size_t)N * text_len * sizeof *mask), *ids = malloc((size_t)N * K * sizeof *ids);
	int rc = MG_OK;
	if (!enc || !logits || !mask || !ids) {
		snprintf(err, errlen, "bench: out of memory");
		rc = MG_ERR_NOMEM;
		goto out;
	}
	/* The conditional rows attend to every text position, the null rows to none. */
	for (int n = 0; n < N; n++)
		for (int s = 0; s < text_len; s++) {
			mask[n * text_len + s] = n < n_takes;
			for (int d = 0; d < D; d++)
				enc[((size_t)n * text_len + s) * D + d] = n < n_takes ? 0.01f * (float)((s + d) % 7) : 0.0f;
		}
	mg_dec_set_cross(&m->dec, m->pool, &st, enc, mask);
	for (int i = 0; i < N * K; i++)
		ids[i] = m->dec.start_id;
	double t0 = 0;
	for (int i = 0; i < L; i++) {
		if (i == past)
			t0 = now();
		if (mg_dec_forward(&m->dec, m->pool, &st, ids, 1, logits, NULL, err, errlen)) {
			rc = MG_ERR_BACKEND;
			goto out;
		}
		for (int r = 0; r < N * K; r++)
			ids[r] = mg_argmax(logits + (size_t)r * V, V);
	}
	*seconds = (now() - t0) / steps;
out:
	mg_dec_state_free(&st);
	free(enc), free(logits), free(mask), free(ids);
	return rc;
}
