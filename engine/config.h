/* config.h - config.json and generation_config.json as typed structs. Every
 * dimension the engine uses comes from here; nothing is copied from
 * musicgen-small. */
#ifndef MG_CONFIG_H
#define MG_CONFIG_H

#include <stddef.h>

#define MG_MAX_RATIOS 16

typedef struct mg_t5_config {
	int vocab_size;
	int d_model;
	int d_kv;
	int num_heads;
	int num_layers;
	int d_ff;
	int num_buckets;       /* relative_attention_num_buckets */
	int max_distance;      /* relative_attention_max_distance */
	float eps;             /* layer_norm_epsilon */
	int gated;             /* feed_forward_proj "gated-gelu"/"gated-relu" (wi_0/wi_1) */
	int act_gelu;          /* activation: 0 relu, 1 gelu (new/tanh form for gated-gelu) */
	int pad_token_id, eos_token_id;
} mg_t5_config;

typedef struct mg_decoder_config {
	int hidden_size;
	int num_layers;
	int num_heads;
	int head_dim;          /* hidden_size / num_heads */
	int ffn_dim;
	int vocab_size;        /* codes per codebook */
	int num_codebooks;     /* K */
	int audio_channels;    /* 1 or 2 */
	int max_positions;     /* max_position_embeddings */
	int pad_token_id, bos_token_id;
	int cross_attention;   /* 1: cross-attention over text (musicgen); 0: melody prefix */
} mg_decoder_config;

typedef struct mg_encodec_config {
	int sampling_rate;
	int audio_channels;
	int num_filters;
	int hidden_size;       /* latent dim */
	int codebook_size, codebook_dim;
	int num_ratios;
	int ratios[MG_MAX_RATIOS]; /* upsampling_ratios, decoder order */
	int num_lstm_layers;
	int num_residual_layers;
	int kernel_size, last_kernel_size, residual_kernel_size;
	int dilation_growth_rate;
	int compress;
	int use_conv_shortcut;
	int pad_reflect;       /* pad_mode "reflect" (1) or "constant" (0) */
	int num_quantizers;    /* from target_bandwidths[-1] as transformers 4.x computes it (10 bits per
	                          codebook); the checkpoint's quantizer tensors are authoritative */
	double encode_bandwidth; /* target_bandwidths[0], kbps: HF's default for encode */
	int hop_length;        /* prod(ratios) */
	double frame_rate;     /* ceil(sampling_rate / hop) */
} mg_encodec_config;

typedef struct mg_generation_config {
	int do_sample;
	float guidance_scale;  /* 0 when absent */
	int max_length;
	int top_k;             /* 250 when absent (musicgen-tui's rule) */
	float top_p;
	float temperature;
	int decoder_start_token_id;
	int pad_token_id;
} mg_generation_config;

typedef struct mg_config {
	mg_t5_config t5;
	mg_decoder_config dec;
	mg_encodec_config codec;
	mg_generation_config gen;
	int has_enc_to_dec_proj; /* text d_model != decoder hidden (or cross_attention_hidden_size) */
} mg_config;

/* dir: the model directory. generation_config.json is optional (HF defaults). */
int mg_config_load(mg_config *c, const char *dir, char *err, size_t errlen);
/* Parse from JSON text (tests, bench presets); gen_json may be NULL. */
int mg_config_parse(mg_config *c, const char *config_json, const char *gen_json,
                    const char *what, char *err, size_t errlen);

#endif
