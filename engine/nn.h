/* nn.h - the small float32 building blocks shared by the T5 encoder and the
 * MusicGen decoder: norms, activations and multi-head attention on the CPU.
 * Every function treats rows independently (a row's result never depends on
 * the other rows) and allocates nothing. */
#ifndef MG_NN_H
#define MG_NN_H

#include <stddef.h>
#include <stdint.h>

#include "engine/pool.h"

/* T5LayerNorm: y = w * x / sqrt(mean(x^2) + eps), for n rows of d. */
void mg_rms_norm(const float *x, const float *w, float eps, int n, int d, float *y);
/* LayerNorm with biased variance: y = (x - mean) / sqrt(var + eps) * w + b. */
void mg_layer_norm(const float *x, const float *w, const float *b, float eps, int n, int d, float *y);
/* Exact (erf) GELU, tanh-approximated GELU ("gelu_new"), ReLU, in place. */
void mg_gelu(float *x, size_t n);
void mg_gelu_tanh(float *x, size_t n);
void mg_relu(float *x, size_t n);

/* Multi-head attention of n_seq sequences, each with q_per_seq query rows.
 * Query row r = s * q_per_seq + t of sequence s sits at q + r * q_stride
 * (head h at + h * head_dim); its output goes to out + r * out_stride.
 * Keys/values of sequence s, key j: k + s * kv_seq_stride + j * kv_stride
 * (head h at + h * head_dim).
 * Key count: causal ? past + t + 1 : n_keys. A key with key_mask[s * n_keys + j]
 * == 0 is left out (HF's additive finfo.min mask gives it exactly zero weight);
 * a row with no key left outputs 0, as HF's uniform softmax over zero values.
 * Score = (q * scale) . k (+ pos_bias[h * (2 * n_keys - 1) + j - t + n_keys - 1]
 * when pos_bias is set: T5's relative position bias; needs q_per_seq == n_keys).
 * With kv_cap > 0 the keys/values are a cache instead, cache_k / cache_v
 * in format kv_fmt (kernels.h: blocks of MG_KV_BLOCK positions, the heads
 * of a sequence side by side in each): sequence s at + s * n_heads *
 * mg_kv_head_bytes(kv_fmt, kv_cap, head_dim), its block b of head h at +
 * (b * n_heads + h) * mg_kv_block_bytes(kv_fmt, head_dim); k, v,
 * kv_stride, kv_seq_stride and key_mask are unused.
 * Not causal, a cache has seq_keys[s] keys for sequence s (n_keys when
 * seq_keys is NULL); none: the output is 0.
 * With kv_cap > 0, q_per_seq == 1 and new_k set, each (sequence, head)
 * first stores its new key and value (row s of new_k / new_v at s *
 * new_stride, head h at + h * head_dim) at position past of the cache
 * (mg_kv_store), on the thread that reads that block next: no separate
 * pass over the cache.
 * scratch: mg_pool_size(pool) * mg_attn_scratch(max_keys, head_dim, n_heads)
 * floats. */
typedef struct mg_attn {
	int n_seq, q_per_seq, n_heads, head_dim;
	const float *q;
	int q_stride;
	const float *k, *v;
	size_t kv_seq_stride;
	int kv_stride;
	int kv_cap;                  /* > 0: the blocked decoder cache layout */
	int causal, past, n_keys;
	const int *key_mask;
	const int *seq_keys;
	const float *pos_bias;
	float scale;
	float *out;
	int out_stride;
	float *scratch;
	int max_keys;
	const float *new_k, *new_v;
	int new_stride;
	void *cache_k, *cache_v;     /* kv_cap > 0: the cache (written only with new_k) */
	int kv_fmt;                  /* kv_cap > 0: MG_KV_F32 / F16 / Q8 */
} mg_attn;

void mg_attention(mg_pool *pool, const mg_attn *a);
/* Floats of mg_attn.scratch per thread of the pool. */
size_t mg_attn_scratch(int max_keys, int head_dim, int n_heads);

/* Bytes of one head's share of a cache of cap positions (a multiple of
 * MG_KV_BLOCK). */
size_t mg_kv_head_bytes(int fmt, int cap, int hd);
/* Position p's key k[hd] and value v[hd] into one head's cache (its first
 * blocks at hk, hv; block b at + b * bs) in format fmt (q8: each quantised
 * with its own scale); tmp: hd halves of scratch. */
void mg_kv_store(void *hk, void *hv, size_t bs, int fmt, int p, int hd, const float *k, const float *v,
                 uint16_t *tmp);

#endif
