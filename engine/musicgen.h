/* musicgen.h - the MusicGen decoder (HF MusicgenForCausalLM) on the CPU: the
 * encoder->decoder projection, codebook embeddings + sinusoidal positions,
 * pre-LayerNorm layers with a preallocated self-attention KV cache and
 * cross-attention K/V computed once, one head per codebook; the delay
 * pattern; classifier-free guidance; the generation loop (SPEC-decoder).
 *
 * The stages are separate calls so that another backend can replace each:
 * mg_decoder_project (text states -> conditioning), mg_dec_set_cross (cross
 * K/V once per generation), mg_dec_forward (one step for all rows -> logits),
 * the caller's token choice, and de-delaying. */
#ifndef MG_MUSICGEN_H
#define MG_MUSICGEN_H

#include <stddef.h>
#include <stdint.h>

#include "engine/config.h"
#include "engine/linear.h"
#include "engine/pool.h"
#include "engine/safetensors.h"
#include "engine/sampler.h"

typedef struct mg_dec_layer {
	float *ln_self_w, *ln_self_b, *ln_cross_w, *ln_cross_b, *ln_ff_w, *ln_ff_b;
	mg_mat qkv, o;               /* self-attention: q, k, v stacked [3D, D] (one
	                              * pass over the three); out [D, D] */
	mg_mat cq, ck, cv, co;       /* cross-attention [D, D] */
	mg_mat fc1, fc2;             /* [ffn, D], [D, ffn] */
} mg_dec_layer;

typedef struct mg_decoder {
	mg_decoder_config c;
	int text_dim;                /* width of the text states (T5 d_model) */
	int has_proj;                /* enc_to_dec_proj present (text_dim != hidden) */
	mg_mat proj;                 /* [hidden, text_dim] */
	float *proj_b;               /* [hidden] */
	const st_tensor **embed;     /* K tables [vocab + 1, hidden], read in place */
	float *pos;                  /* sinusoidal table [n_pos, hidden] */
	int n_pos;                   /* positions available (max_position_embeddings) */
	mg_dec_layer *layers;
	float *ln_w, *ln_b;          /* final LayerNorm */
	mg_mat *heads;               /* K heads [vocab, hidden] */
	int start_id, pad_id;        /* generation_config decoder_start_token_id / pad_token_id */
	int kv_fmt;                  /* self-attention cache format (kernels.h MG_KV_*): f32, f16 with
	                              * f16 weights, q8 with q8 weights */
	int xkv_fmt;                 /* the text's keys and values: f32, or f16 with f16 / q8 weights */
} mg_decoder;

/* Only the sizes, window and start/pad ids (for a generation loop whose
 * steps run elsewhere); mg_decoder_free releases it. */
int mg_decoder_init_config(mg_decoder *d, const st_set *st, const mg_config *cfg, char *err, size_t errlen);

/* Binds enc_to_dec_proj.* and decoder.* of st (which must outlive d). */
int mg_decoder_bind(mg_decoder *d, const st_set *st, const mg_config *cfg, int fmt, char *err, size_t errlen);
void mg_decoder_free(mg_decoder *d);

/* The sinusoidal table of SPEC-decoder §3 computed in float32 (used when the
 * checkpoint does not store embed_positions.weights): pe[n_pos * dim]. */
void mg_sinusoids(int n_pos, int dim, float *pe);

/* enc[N*S, hidden] = (h[N*S, text_dim] Wp^T + bp) * mask[N*S] (SPEC-t5 §5);
 * without a projection the states are copied and masked. */
void mg_decoder_project(const mg_decoder *d, mg_pool *pool, const float *h, const int32_t *mask, int N, int S,
                        float *enc);

/* Everything one generation needs, allocated once: the self-attention KV
 * cache for max_len positions of N rows, the cross-attention K/V of S text
 * positions, and scratch for up to max_cols columns per forward call. */
typedef struct mg_dec_state {
	int N, S, max_len, max_cols, nth;
	int past;                    /* positions already in the cache */
	/* The self-attention cache, per layer and row, for cap (max_len
	 * rounded up to MG_KV_BLOCK) positions: [layers][N][cap / MG_KV_BLOCK]
	 * [heads] blocks of MG_KV_BLOCK positions (mg_kv_block_bytes each; the
	 * heads side by side, so that a row is one stream: nn.h), in the
	 * decoder's kv_fmt: keys [head_dim][MG_KV_BLOCK], values
	 * [MG_KV_BLOCK][head_dim] (kernels.h). */
	int cap;
	size_t cache_bytes;          /* of each of the two (mg_big_alloc) */
	void *kc, *vc;
	uint16_t *row16;             /* one head of halves (scratch of mg_kv_store) */
	/* The cross-attention keys/values of the text, in the cache layout
	 * above, in the decoder's xkv_fmt, for xcap (S rounded up to MG_KV_BLOCK) positions:
	 * row nn keeps only its xn[nn] unmasked positions, in order (a masked
	 * key has exactly zero weight in the reference, so attending to the
	 * others alone is the same sum). */
	int xcap;
	size_t xbytes;               /* of each of xk, xv */
	void *xk, *xv;               /* [layers][N][xcap / MG_KV_BLOCK][heads] */
	int *xn;                     /* [N] */
	float *xt;                   /* the text's keys then values, [2][N * S][hidden] */
	float *x, *h, *q, *a, *y, *f, *lt;
	float *qkv;                  /* self-attention q, k, v of a row side by side, [rows][3 * hidden] */
	float *scratch;              /* attention, nth * mg_attn_scratch(max(max_len, S), head_dim, heads) */
} mg_dec_state;

int mg_dec_state_init(mg_dec_state *s, const mg_decoder *d, int nth, int N, int S, int max_len, int max_cols,
                      char *err, size_t errlen);
void mg_dec_state_free(mg_dec_state *s);

/* Cross-attention K/V of the conditioning enc[N*S, hidden] with its mask
 * (rows with an all-zero mask attend to nothing and give 0). Resets the
 * self-attention cache (past = 0). */
void mg_dec_set_cross(const mg_decoder *d, mg_pool *pool, mg_dec_state *s, const float *enc, const int32_t *mask);

/* One forward over T new columns (positions past .. past+T-1) of ids
 * [N][K][T] (0..vocab; vocab = BOS/pad), appending to the cache.
 * logits: [N*K][T][vocab] (row n*K + k, HF order). hidden, when not NULL:
 * [layers + 1][N*T][hidden], the input of every layer then the final norm. */
int mg_dec_forward(const mg_decoder *d, mg_pool *pool, mg_dec_state *s, const int32_t *ids, int T, float *logits,
                   float *hidden, char *err, size_t errlen);

/* Delay pattern (HF build_delay_pattern_mask, SPEC-decoder §5) for B rows of
 * K codebooks (stereo: codebook pairs share a delay) with initial ids
 * seq0[B][K][L0] and total length L: pattern[B][K][L], -1 = free, else the
 * id to force. *first = the number of initial columns fed at the start. */
void mg_delay_pattern(const int32_t *seq0, int B, int K, int channels, int L0, int L, int pad, int32_t *pattern,
                      int *first);

/* Token choice for take b: scores[K][vocab] (after guidance) -> next[K]. */
typedef int (*mg_choose_fn)(void *ctx, int take, float *scores, int K, int V, int32_t *next);

/* One decoder step for every take of a generation, whatever computes it
 * (the CPU decoder, or another backend conditioned by the caller): ids
 * [B][K][T] (the rows of the takes; the backend doubles them for guidance
 * itself) -> scores [B][K][V], the last column's logits after guidance. */
typedef struct mg_stepper {
	void *ctx;
	int (*step)(void *ctx, const int32_t *ids, int T, float *scores, char *err, size_t errlen);
} mg_stepper;

typedef struct mg_gen_request {
	int B;                       /* takes */
	int steps;                   /* decoder steps (HF max_new_tokens) */
	const float *enc;            /* [B][S][hidden] projected, masked conditioning; NULL: unconditional */
	const int32_t *mask;         /* [B][S] */
	int S;
	float guidance;              /* > 1 (and enc set): CFG with the null rows in the same pass */
	const mg_stepper *stepper;   /* NULL: the CPU decoder, conditioned from enc/mask/guidance */
	mg_choose_fn choose;         /* NULL: greedy (mg_argmax) */
	void *choose_ctx;
	void (*on_progress)(int step, int total, void *user_data);
	void (*on_frame)(int frame, const int32_t *codes, int n_takes, int n_codebooks, void *user_data);
	int (*should_abort)(void *user_data);
	void *user_data;
	/* test hook: when set, the guided scores of every step, [steps][B*K][V] */
	float *scores_out;
} mg_gen_request;

/* Frames a generation of `steps` decoder steps yields (SPEC-decoder §8.1). */
int mg_frames_for_steps(int steps, int K, int channels);
/* Steps needed for exactly `frames` frames (frames >= K/channels - 1). */
int mg_steps_for_frames(int frames, int K, int channels);

/* Runs the generation loop. codes: [B][K][frames] de-delayed, where frames =
 * mg_frames_for_steps(steps). Returns MG_OK or an mg_status code. */
int mg_musicgen_generate(const mg_decoder *d, mg_pool *pool, const mg_gen_request *r, int32_t *codes,
                         char *err, size_t errlen);

#endif
