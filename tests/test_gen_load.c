/* test_gen_load.c - building a model from an in-memory tensor set
 * (mg_model_load_st, what bench uses) and refusing damaged weights with a
 * message naming the tensor: a missing tensor, a wrong shape, NaN values, a
 * start id outside the vocabulary. Also the layout variants HF writes: the
 * T5 embedding under its tied name only, no stored position table. */
#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "tests/gen_fixture.h"

enum { KEEP, DROP, RENAME, NAN_AT, SHRINK };

/* A copy of every tensor of `src` in memory, with one change. */
static st_set *copy_set(const st_set *src, const char *name, int how, const char *new_name)
{
	st_set *s = st_new_memory();
	for (size_t i = 0; i < st_count(src); i++) {
		const st_tensor *t = st_at(src, i);
		int match = name && !strcmp(t->name, name);
		if (match && how == DROP)
			continue;
		int64_t shape[ST_MAX_DIMS];
		memcpy(shape, t->shape, sizeof shape);
		size_t nb = t->nbytes;
		if (match && how == SHRINK) {
			shape[0]--;
			nb = nb / (size_t)t->shape[0] * (size_t)shape[0];
		}
		void *d = malloc(nb ? nb : 1);
		memcpy(d, t->data, nb);
		if (match && how == NAN_AT && t->dtype == ST_F32) {
			float nan = NAN;
			memcpy((char *)d + 4 * (t->numel / 2), &nan, 4);
		}
		st_add_owned(s, match && how == RENAME ? new_name : t->name, t->dtype, t->ndim, shape, d);
	}
	return s;
}

static int run_uncond(mg_model *m, int F, int32_t **codes)
{
	char err[MG_ERR_LEN];
	mg_params p = mg_params_default(m);
	p.count = 2;
	p.frames = F;
	p.greedy = 1;
	mg_take *t = NULL;
	int rc = mg_generate_tokens(m, &p, NULL, NULL, 0, NULL, &t, err, sizeof err);
	if (rc) {
		tap_diag("%s", err);
		return rc;
	}
	*codes = malloc((size_t)2 * 4 * F * sizeof(int32_t));
	memcpy(*codes, t->codes, (size_t)2 * 4 * F * sizeof(int32_t));
	mg_take_free(t);
	return 0;
}

int main(void)
{
	const char *ref = tap_require_ref();
	char dir[4200], err[MG_ERR_LEN];
	snprintf(dir, sizeof dir, "%s/models/tiny-a", ref);
	mg_config cfg;
	st_set *w = NULL;
	if (mg_config_load(&cfg, dir, err, sizeof err) || st_open(&w, dir, err, sizeof err)) {
		tap_ok(0, "tiny-a: %s", err);
		return tap_done();
	}
	st_set *fx = fx_open(ref, "gen_unconditional_greedy");
	int32_t *want = fx_ints(fx, "codes", NULL);
	if (!want)
		return tap_done();
	mg_load_params lp = mg_load_params_default();
	lp.threads = 2;

	static const struct {
		const char *what, *tensor;
		int how;
		const char *new_name;
		int expect_ok;
		const char *word;
	} cases[] = {
		{"an in-memory copy", NULL, KEEP, NULL, 1, NULL},
		{"the T5 embedding under its tied name only", "text_encoder.shared.weight", RENAME,
		 "text_encoder.encoder.embed_tokens.weight", 1, NULL},
		{"no stored position table (computed sinusoids)", "decoder.model.decoder.embed_positions.weights", DROP,
		 NULL, 1, NULL},
		{"a missing lm head", "decoder.lm_heads.2.weight", DROP, NULL, 0, "decoder.lm_heads.2.weight"},
		{"a missing T5 norm", "text_encoder.encoder.final_layer_norm.weight", DROP, NULL, 0, "final_layer_norm"},
		{"no T5 embedding at all", "text_encoder.shared.weight", DROP, NULL, 0, "shared.weight"},
		{"a wrong fc1 shape", "decoder.model.decoder.layers.1.fc1.weight", SHRINK, NULL, 0, "shape"},
		{"a short codebook embedding", "decoder.model.decoder.embed_tokens.3.weight", SHRINK, NULL, 0, "shape"},
		{"NaN in a cross-attention weight", "decoder.model.decoder.layers.0.encoder_attn.k_proj.weight", NAN_AT,
		 NULL, 0, "NaN"},
		{"a missing self-attention v projection (stacked with q and k)",
		 "decoder.model.decoder.layers.1.self_attn.v_proj.weight", DROP, NULL, 0, "layers.1.self_attn.v_proj"},
		{"NaN in a self-attention k projection", "decoder.model.decoder.layers.0.self_attn.k_proj.weight", NAN_AT,
		 NULL, 0, "layers.0.self_attn.k_proj.weight' holds NaN"},
		{"NaN in a layer norm", "decoder.model.decoder.layers.1.final_layer_norm.bias", NAN_AT, NULL, 0, "NaN"},
		{"a missing EnCodec codebook", "audio_encoder.quantizer.layers.1.codebook.embed", DROP, NULL, 0,
		 "quantizer"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		st_set *s = copy_set(w, cases[i].tensor, cases[i].how, cases[i].new_name);
		mg_model *m = (mg_model *)&cfg;
		err[0] = 0;
		int rc = mg_model_load_st(&m, s, &cfg, NULL, &lp, err, sizeof err);
		if (cases[i].expect_ok) {
			int32_t *codes = NULL;
			int ok = rc == MG_OK && m && !run_uncond(m, 17, &codes) &&
			         !memcmp(codes, want, (size_t)2 * 4 * 17 * sizeof(int32_t));
			tap_ok(ok, "%s: loads and generates HF's unconditional greedy codes%s%s", cases[i].what,
			       rc ? ": " : "", rc ? err : "");
			free(codes);
			mg_model_free(m);
		} else
			tap_ok(rc != MG_OK && m == NULL && strstr(err, cases[i].word), "%s: refused (%s)", cases[i].what, err);
	}

	/* A start id outside the vocabulary (a damaged generation_config). */
	mg_config bad = cfg;
	bad.gen.decoder_start_token_id = cfg.dec.vocab_size + 5;
	mg_model *m = NULL;
	int rc = mg_model_load_st(&m, copy_set(w, NULL, KEEP, NULL), &bad, NULL, &lp, err, sizeof err);
	tap_ok(rc != MG_OK && m == NULL && strstr(err, "decoder_start_token_id"), "a start id outside 0..V: %s", err);

	free(want);
	st_close(fx);
	st_close(w);
	return tap_done();
}
