/* cmd_info.c - `musicgen-tui info --model PATH`: loads a model the way
 * generation does (mg_model_load: config, safetensors headers, every tensor
 * the engine binds with its shape and finite values), so that what info
 * accepts is exactly what generate accepts, and describes it: type, every
 * dimension, parameters per part, storage dtypes, sample and frame rates, and
 * the longest take one window allows. */
#include "autoconfig.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/commands.h"
#include "engine/config.h"
#include "engine/mg.h"
#include "engine/model.h"
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

static void describe(const mg_model *m)
{
	mg_model_info info;
	mg_model_get_info(m, &info);
	const mg_config *cfg = &m->cfg;
	const st_set *st = m->st;
	const char *dir = info.path, *id = info.id, *rev = info.revision;
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
	int per_ch = d->num_codebooks / d->audio_channels, frames = info.max_frames;
	printf("longest take   %.2f s (%d frames = %d decoder steps - %d for the delay pattern)\n",
	       frames > 0 ? frames / e->frame_rate : 0.0, frames > 0 ? frames : 0, frames + per_ch - 1, per_ch - 1);
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
	const char *model;
	int rc = cli_model_option("info", argc, argv, usage, " (a model directory or hub id)",
	                          "; expected --model PATH, --help or --version", &model);
	if (rc >= 0)
		return rc;
	if (optind < argc) {
		fprintf(stderr, "musicgen-tui info: unexpected argument '%s'; expected --model PATH\n", argv[optind]);
		return 2;
	}
	if (!model) {
		fprintf(stderr, "musicgen-tui info: --model PATH is required (a model directory or hub id ORG/NAME)\n");
		return 2;
	}

	char err[MG_ERR_LEN];
	mg_load_params lp = mg_load_params_default();
	lp.backend = MG_BACKEND_CPU;
	lp.threads = 1;
	mg_model *m = NULL;
	if (mg_model_load(&m, model, &lp, err, sizeof err) != MG_OK) {
		fprintf(stderr, "musicgen-tui info: %s\n", err);
		return 1;
	}
	describe(m);
	mg_model_free(m);
	return 0;
}
