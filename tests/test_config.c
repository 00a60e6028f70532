/* test_config.c - config.json / generation_config.json parsing: the reference
 * models' values, and a message naming the key for every broken config. */
#include "autoconfig.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/config.h"
#include "tests/tap.h"

static void test_tiny_a(const char *ref)
{
	char dir[4200], err[512] = "";
	snprintf(dir, sizeof dir, "%s/models/tiny-a", ref);
	mg_config c;
	int rc = mg_config_load(&c, dir, err, sizeof err);
	tap_ok(rc == 0, "tiny-a config loads (%s)", err);
	if (rc)
		return;
	tap_ok(c.t5.vocab_size == 640 && c.t5.d_model == 32 && c.t5.d_kv == 8 && c.t5.num_heads == 4 &&
	           c.t5.num_layers == 2 && c.t5.d_ff == 64 && c.t5.num_buckets == 32 && c.t5.max_distance == 128 &&
	           c.t5.eps == 1e-6f && !c.t5.gated && !c.t5.act_gelu && c.t5.pad_token_id == 0 && c.t5.eos_token_id == 1,
	       "tiny-a T5: vocab 640, d_model 32, 4 x 8, d_ff 64, 2 layers, 32 buckets / 128, relu");
	tap_ok(c.dec.hidden_size == 64 && c.dec.num_layers == 2 && c.dec.num_heads == 4 && c.dec.head_dim == 16 &&
	           c.dec.ffn_dim == 128 && c.dec.vocab_size == 64 && c.dec.num_codebooks == 4 && c.dec.audio_channels == 1 &&
	           c.dec.max_positions == 2048 && c.dec.pad_token_id == 64 && c.dec.bos_token_id == 64,
	       "tiny-a decoder: hidden 64, 2 layers, 4 heads of 16, ffn 128, 4 codebooks x 64, 2048 positions, bos = pad = 64");
	tap_ok(c.codec.sampling_rate == 32000 && c.codec.num_filters == 4 && c.codec.hidden_size == 16 &&
	           c.codec.codebook_size == 64 && c.codec.num_ratios == 4 && c.codec.ratios[0] == 8 &&
	           c.codec.ratios[1] == 5 && c.codec.ratios[2] == 4 && c.codec.ratios[3] == 4 && c.codec.hop_length == 640 &&
	           c.codec.frame_rate == 50.0 && c.codec.num_quantizers == 4 && c.codec.num_lstm_layers == 2 &&
	           c.codec.kernel_size == 7 && c.codec.last_kernel_size == 7 && c.codec.residual_kernel_size == 3 &&
	           c.codec.pad_reflect == 1 && c.codec.use_conv_shortcut == 0 && c.codec.compress == 2,
	       "tiny-a EnCodec: 32 kHz, hop 640, 50 Hz, 4 quantizers, ratios [8,5,4,4], kernels 7/7/3, reflect");
	tap_ok(c.has_enc_to_dec_proj == 1, "tiny-a has enc_to_dec_proj (32 != 64)");
	tap_ok(c.gen.top_k == 250 && c.gen.do_sample == 1 && c.gen.guidance_scale == 3.0f && c.gen.max_length == 1500 &&
	           c.gen.temperature == 1.0f && c.gen.top_p == 1.0f && c.gen.decoder_start_token_id == 64 &&
	           c.gen.pad_token_id == 64,
	       "tiny-a generation: no top_k key -> 250, sampling, guidance 3, max_length 1500");
}

static void test_small(const char *ref)
{
	char dir[4200], err[512] = "";
	snprintf(dir, sizeof dir, "%s/musicgen-small", ref);
	mg_config c;
	int rc = mg_config_load(&c, dir, err, sizeof err);
	tap_ok(rc == 0, "musicgen-small config loads (%s)", err);
	if (rc)
		return;
	tap_ok(c.t5.vocab_size == 32128 && c.t5.d_model == 768 && c.t5.d_kv == 64 && c.t5.num_heads == 12 &&
	           c.t5.num_layers == 12 && c.t5.d_ff == 3072,
	       "musicgen-small T5-base: 32128 x 768, 12 heads x 64, 12 layers, d_ff 3072");
	tap_ok(c.dec.hidden_size == 1024 && c.dec.num_layers == 24 && c.dec.num_heads == 16 && c.dec.head_dim == 64 &&
	           c.dec.ffn_dim == 4096 && c.dec.vocab_size == 2048 && c.dec.num_codebooks == 4 &&
	           c.dec.max_positions == 2048 && c.dec.bos_token_id == 2048,
	       "musicgen-small decoder: 1024, 24 layers, 16 heads, ffn 4096, 4 x 2048 codes, 2048 positions");
	tap_ok(c.codec.sampling_rate == 32000 && c.codec.hop_length == 640 && c.codec.frame_rate == 50.0 &&
	           c.codec.num_quantizers == 4 && c.codec.num_filters == 64 && c.codec.hidden_size == 128,
	       "musicgen-small EnCodec: 32 kHz, hop 640, 50 Hz, 4 quantizers, 64 filters, latent 128");
	tap_ok(c.gen.top_k == 250 && c.gen.guidance_scale == 3.0f && c.gen.max_length == 1500 && c.gen.do_sample,
	       "musicgen-small generation: top_k absent -> 250, guidance 3, max_length 1500");
	tap_ok(c.has_enc_to_dec_proj, "musicgen-small has enc_to_dec_proj (768 != 1024)");
}

static void test_other_shapes(void)
{
	const char *top = getenv("MG_TOP_SRCDIR");
	char dir[4200], err[512] = "";
	mg_config c;
	snprintf(dir, sizeof dir, "%s/tests/data/tinyb", top && *top ? top : ".");
	int rc = mg_config_load(&c, dir, err, sizeof err);
	tap_ok(rc == 0 && c.codec.sampling_rate == 24000 && c.codec.hop_length == 120 && c.codec.frame_rate == 200.0 &&
	           c.codec.num_quantizers == 3 && c.dec.num_codebooks == 3 && c.dec.max_positions == 512 &&
	           c.codec.num_ratios == 3 && c.codec.use_conv_shortcut == 1 && c.codec.num_residual_layers == 2 &&
	           c.codec.num_lstm_layers == 1 && c.t5.d_model == 48 && c.t5.num_heads * c.t5.d_kv == 64,
	       "tinyb: 24 kHz, hop 120, 200 Hz, 3 codebooks, 512 positions, conv shortcut (%s)", err);
	snprintf(dir, sizeof dir, "%s/tests/data/tinyc", top && *top ? top : ".");
	rc = mg_config_load(&c, dir, err, sizeof err);
	tap_ok(rc == 0 && c.dec.audio_channels == 2 && c.dec.num_codebooks == 8 && c.codec.frame_rate == 50.0 &&
	           c.dec.max_positions == 256,
	       "tinyc: stereo, 8 codebooks, 50 Hz (%s)", err);
}

/* ---- broken configs: tiny-a's config with one change each ---- */

static json_t *base;

enum op { DEL, SET };

/* Applies one change to a copy of the base config, parses it, and expects
 * failure with every needle in the message. */
static void broken(const char *what, enum op op, const char *sect, const char *key, json_t *val, const char *n1,
                   const char *n2)
{
	json_t *j = json_deep_copy(base);
	json_t *o = sect ? json_object_get(j, sect) : j;
	if (op == DEL)
		json_object_del(o, key);
	else
		json_object_set_new(o, key, val);
	char *text = json_dumps(j, 0);
	json_decref(j);
	mg_config c;
	char err[512] = "";
	int rc = mg_config_parse(&c, text, NULL, "config.json", err, sizeof err);
	free(text);
	tap_ok(rc != 0 && strstr(err, n1) && (!n2 || strstr(err, n2)), "%s: '%s'", what, err);
}

static void broken_text(const char *what, const char *cfg, const char *gen, const char *n1, const char *n2)
{
	mg_config c;
	char err[512] = "";
	int rc = mg_config_parse(&c, cfg, gen, "config.json", err, sizeof err);
	tap_ok(rc != 0 && strstr(err, n1) && (!n2 || strstr(err, n2)), "%s: '%s'", what, err);
}

static void test_broken(const char *ref)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/models/tiny-a/config.json", ref);
	json_error_t je;
	base = json_load_file(path, 0, &je);
	if (!base) {
		tap_ok(0, "tiny-a config.json reads");
		return;
	}
	broken("missing decoder.hidden_size", DEL, "decoder", "hidden_size", NULL, "decoder.hidden_size", "missing");
	broken("missing text_encoder.d_model", DEL, "text_encoder", "d_model", NULL, "text_encoder.d_model", NULL);
	broken("missing audio_encoder.sampling_rate", DEL, "audio_encoder", "sampling_rate", NULL,
	       "audio_encoder.sampling_rate", NULL);
	broken("missing decoder.num_codebooks", DEL, "decoder", "num_codebooks", NULL, "decoder.num_codebooks", NULL);
	broken("missing audio_encoder.upsampling_ratios", DEL, "audio_encoder", "upsampling_ratios", NULL,
	       "upsampling_ratios", NULL);
	broken("missing audio_encoder.target_bandwidths", DEL, "audio_encoder", "target_bandwidths", NULL,
	       "target_bandwidths", NULL);
	broken("missing model_type", DEL, NULL, "model_type", NULL, "model_type", NULL);
	broken("missing audio_encoder section", DEL, NULL, "audio_encoder", NULL, "audio_encoder", NULL);
	broken("decoder section is a list", SET, NULL, "decoder", json_array(), "decoder", NULL);
	broken("hidden_size is a string", SET, "decoder", "hidden_size", json_string("64"), "decoder.hidden_size",
	       "integer");
	broken("hidden_size is 64.5", SET, "decoder", "hidden_size", json_real(64.5), "decoder.hidden_size", "integer");
	broken("num_layers is 1e300", SET, "text_encoder", "num_layers", json_real(1e300), "text_encoder.num_layers",
	       NULL);
	broken("sampling_rate is true", SET, "audio_encoder", "sampling_rate", json_true(),
	       "audio_encoder.sampling_rate", NULL);
	broken("hidden_size 0", SET, "decoder", "hidden_size", json_integer(0), "decoder.hidden_size", "range");
	broken("num_attention_heads -4", SET, "decoder", "num_attention_heads", json_integer(-4),
	       "decoder.num_attention_heads", NULL);
	broken("d_model 10^9", SET, "text_encoder", "d_model", json_integer(1000000000), "text_encoder.d_model", NULL);
	broken("vocab_size 2^40", SET, "text_encoder", "vocab_size", json_integer(1LL << 40), "text_encoder.vocab_size",
	       NULL);
	broken("num_codebooks 1000", SET, "decoder", "num_codebooks", json_integer(1000), "decoder.num_codebooks", NULL);
	broken("heads do not divide hidden", SET, "decoder", "num_attention_heads", json_integer(3),
	       "num_attention_heads", NULL);
	broken("ratio 0", SET, "audio_encoder", "upsampling_ratios", json_pack("[i,i,i,i]", 8, 5, 0, 4),
	       "upsampling_ratios", NULL);
	broken("empty ratios", SET, "audio_encoder", "upsampling_ratios", json_array(), "upsampling_ratios", NULL);
	broken("ratio as a string", SET, "audio_encoder", "upsampling_ratios", json_pack("[i,s]", 8, "5"),
	       "upsampling_ratios", NULL);
	broken("target bandwidth 0", SET, "audio_encoder", "target_bandwidths", json_pack("[f]", 0.0),
	       "target_bandwidths", NULL);
	broken("unknown top-level model_type", SET, NULL, "model_type", json_string("bark"), "model_type", "bark");
	broken("melody model", SET, NULL, "model_type", json_string("musicgen_melody"), "musicgen_melody", NULL);
	broken("text encoder not T5", SET, "text_encoder", "model_type", json_string("bert"), "text_encoder.model_type",
	       "bert");
	broken("decoder model_type", SET, "decoder", "model_type", json_string("gpt2"), "decoder.model_type", NULL);
	broken("codec model_type", SET, "audio_encoder", "model_type", json_string("dac"), "audio_encoder.model_type",
	       NULL);
	broken("causal EnCodec", SET, "audio_encoder", "use_causal_conv", json_true(), "audio_encoder.use_causal_conv",
	       NULL);
	broken("normalised EnCodec", SET, "audio_encoder", "normalize", json_true(), "audio_encoder.normalize", NULL);
	broken("group-norm EnCodec", SET, "audio_encoder", "norm_type", json_string("time_group_norm"),
	       "audio_encoder.norm_type", NULL);
	broken("pad_mode zeros", SET, "audio_encoder", "pad_mode", json_string("zeros"), "audio_encoder.pad_mode", NULL);
	broken("chunked EnCodec", SET, "audio_encoder", "chunk_length_s", json_real(1.0), "chunk_length_s", NULL);
	broken("codebook size differs from decoder vocab", SET, "audio_encoder", "codebook_size", json_integer(128),
	       "vocab_size", "codebook_size");
	broken("decoder activation relu", SET, "decoder", "activation_function", json_string("relu"),
	       "decoder.activation_function", NULL);
	broken("T5 feed-forward swish", SET, "text_encoder", "feed_forward_proj", json_string("swish"),
	       "text_encoder.feed_forward_proj", NULL);
	broken("stereo codec", SET, "audio_encoder", "audio_channels", json_integer(2), "audio_encoder.audio_channels",
	       NULL);
	broken("cross_attention_hidden_size set", SET, "decoder", "cross_attention_hidden_size", json_integer(32),
	       "cross_attention_hidden_size", NULL);

	char *text = json_dumps(base, 0);
	broken_text("not JSON", "{\"model_type\": ", NULL, "config.json", "JSON");
	broken_text("empty text", "", NULL, "config.json", "JSON");
	broken_text("not an object", "[\"musicgen\"]", NULL, "config.json", "object");
	broken_text("generation_config: top_k a string", text, "{\"top_k\": \"fifty\"}", "generation_config.json",
	            "top_k");
	broken_text("generation_config: top_k -1", text, "{\"top_k\": -1}", "generation_config.json", "top_k");
	broken_text("generation_config: top_p 1.5", text, "{\"top_p\": 1.5}", "generation_config.json", "top_p");
	broken_text("generation_config: top_p 0", text, "{\"top_p\": 0}", "generation_config.json", "top_p");
	broken_text("generation_config: temperature 0", text, "{\"temperature\": 0.0}", "generation_config.json",
	            "temperature");
	broken_text("generation_config: guidance -1", text, "{\"guidance_scale\": -1}", "generation_config.json",
	            "guidance_scale");
	broken_text("generation_config: do_sample 1", text, "{\"do_sample\": 1}", "generation_config.json", "do_sample");
	broken_text("generation_config: not JSON", text, "{", "generation_config.json", "JSON");

	/* Present keys win; absent ones take the documented defaults. */
	mg_config c;
	char err[512] = "";
	int rc = mg_config_parse(&c, text, "{\"top_k\": 50, \"top_p\": 0.9, \"temperature\": 0.7}", "config.json", err,
	                         sizeof err);
	tap_ok(rc == 0 && c.gen.top_k == 50 && c.gen.top_p == 0.9f && c.gen.temperature == 0.7f && c.gen.do_sample == 0 &&
	           c.gen.max_length == 20,
	       "generation_config values present are used (top_k 50, top_p 0.9, temperature 0.7), HF defaults otherwise");
	rc = mg_config_parse(&c, text, "{\"top_k\": 0}", "config.json", err, sizeof err);
	tap_ok(rc == 0 && c.gen.top_k == 0, "generation_config top_k 0 (off) is kept");
	rc = mg_config_parse(&c, text, NULL, "config.json", err, sizeof err);
	tap_ok(rc == 0 && c.gen.top_k == 250 && c.gen.decoder_start_token_id == 64, "without generation_config: top_k 250");
	/* An integer written as 4.0 is accepted. */
	json_t *j = json_deep_copy(base);
	json_object_set_new(json_object_get(j, "decoder"), "num_hidden_layers", json_real(2.0));
	char *t2 = json_dumps(j, 0);
	rc = mg_config_parse(&c, t2, NULL, "config.json", err, sizeof err);
	tap_ok(rc == 0 && c.dec.num_layers == 2, "num_hidden_layers 2.0 reads as 2");
	free(t2);
	json_decref(j);
	free(text);
	json_decref(base);
}

static void test_files(void)
{
	char dir[] = "/tmp/mg-cfg-XXXXXX";
	if (!mkdtemp(dir)) {
		tap_ok(0, "temporary directory");
		return;
	}
	mg_config c;
	char err[512] = "", p[600];
	int rc = mg_config_load(&c, dir, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "config.json"), "no config.json: '%s'", err);
	snprintf(p, sizeof p, "%s/config.json", dir);
	mkdir(p, 0700);
	rc = mg_config_load(&c, dir, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "config.json") && strstr(err, "regular"), "config.json a directory: '%s'", err);
	rmdir(p);
	if (mkfifo(p, 0600) == 0) {
		rc = mg_config_load(&c, dir, err, sizeof err);
		tap_ok(rc != 0 && strstr(err, "config.json"), "config.json a FIFO (no hang): '%s'", err);
		unlink(p);
	} else
		tap_skip("cannot make a FIFO");
	FILE *f = fopen(p, "wb");
	fwrite("{\"a\":\0}", 1, 7, f);
	fclose(f);
	rc = mg_config_load(&c, dir, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "config.json"), "config.json with a NUL byte: '%s'", err);
	unlink(p);
	rmdir(dir);
}

int main(void)
{
	test_other_shapes();
	test_files();
	const char *ref = tap_ref_dir();
	if (!ref) {
		tap_skip("tiny-a and musicgen-small configs: reference data not found (set MUSICGEN_REF_DIR)");
		return tap_done();
	}
	test_tiny_a(ref);
	test_small(ref);
	test_broken(ref);
	return tap_done();
}
