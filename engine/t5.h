/* t5.h - the T5 text encoder of MusicGen (HF T5EncoderModel), float32:
 * relative position buckets, RMS norms, ReLU (or gated) feed-forward. */
#ifndef MG_T5_H
#define MG_T5_H

#include <stddef.h>
#include <stdint.h>

#include "engine/config.h"
#include "engine/linear.h"
#include "engine/pool.h"
#include "engine/safetensors.h"

typedef struct mg_t5_layer {
	float *ln_attn, *ln_ff;      /* RMS norm scales [d_model] */
	mg_mat q, k, v, o;           /* [inner, d_model] x3, [d_model, inner] */
	mg_mat wi, wi1, wo;          /* wi (or wi_0) [d_ff, d_model], wi_1 when gated, wo [d_model, d_ff] */
} mg_t5_layer;

typedef struct mg_t5 {
	mg_t5_config c;
	int inner;                   /* num_heads * d_kv */
	const st_tensor *embed;      /* shared token embedding [vocab, d_model], read in place */
	float *rel_bias;             /* [num_buckets, num_heads] (block 0) */
	mg_t5_layer *layers;
	float *ln_final;
} mg_t5;

/* Binds the text_encoder.* tensors of st (which must outlive t). */
int mg_t5_bind(mg_t5 *t, const st_set *st, const mg_t5_config *c, int fmt, char *err, size_t errlen);
void mg_t5_free(mg_t5 *t);

/* Bucket of the relative position rel = key - query (bidirectional). */
int mg_t5_bucket(int rel, int num_buckets, int max_distance);

/* Encodes B right-padded rows of S token ids (mask 1 = token, 0 = pad) into
 * out[B*S*d_model], the final RMS-normed states. hidden, when not NULL,
 * receives [num_layers + 1][B*S][d_model]: the input of every block, then
 * the output. Each row's result depends only on that row. */
int mg_t5_encode(const mg_t5 *t, mg_pool *pool, const int32_t *ids, const int32_t *mask, int B, int S,
                 float *out, float *hidden, char *err, size_t errlen);

#endif
