/* sampler.h - the logits processors of MusicGen generation and a seeded PRNG.
 *
 * The order is Hugging Face's: classifier-free guidance, temperature, top-k,
 * top-p, softmax, draw. Every function works on one row of V scores (float32,
 * as HF computes them) and never allocates: callers pass a scratch buffer of
 * mg_sampler_scratch_size(V) bytes, reusable for every row and step.
 *
 * The PRNG is xoshiro256** 1.0 (Blackman and Vigna, 2018), its four 64-bit
 * words of state filled by four successive outputs of splitmix64 started at
 * the seed. mg_rng_uniform() is (next >> 11) * 2^-53, a double in [0, 1).
 * A draw (mg_sample_row) takes one uniform u and returns the first index i,
 * in increasing order, at which the running sum of exp(score - max) (in
 * double) exceeds u x the total; indices with probability 0 are never chosen.
 * The same seed, scores and parameters therefore give the same tokens on
 * every machine whose libm exp() gives the same results.
 */
#ifndef MG_SAMPLER_H
#define MG_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct mg_rng {
	uint64_t s[4];
} mg_rng;

void mg_rng_seed(mg_rng *r, uint64_t seed);
uint64_t mg_rng_next(mg_rng *r);
double mg_rng_uniform(mg_rng *r);

typedef struct mg_sampling {
	float guidance;    /* CFG scale; the caller combines rows when it is > 1 (HF) */
	float temperature; /* scores / temperature when != 1 (must be > 0) */
	int top_k;         /* keep scores >= the k-th largest (ties kept); 0 = off */
	double top_p;      /* (0, 1]; 1 = off. A double: HF compares with 1 - top_p
	                      computed in double and rounded to float32, so pass
	                      the value as the user wrote it. */
	int greedy;        /* argmax instead of a draw */
} mg_sampling;

/* out[i] = uncond[i] + (cond[i] - uncond[i]) * g, in float32, in this order
 * (HF's ClassifierFreeGuidanceLogitsProcessor). out may alias cond or uncond. */
void mg_cfg_combine(const float *cond, const float *uncond, float g, size_t n, float *out);

/* Bytes of scratch the functions below need for rows of V scores. */
size_t mg_sampler_scratch_size(int V);

/* Temperature (when != 1), top-k (when k > 0), top-p (when < 1), in place:
 * filtered entries become -inf. A greedy setting skips nothing here; the
 * warpers keep the argmax, so greedy decisions are unaffected. */
void mg_logits_process(float *scores, int V, const mg_sampling *s, void *scratch);

/* The individual warpers (what mg_logits_process calls). */
void mg_apply_temperature(float *scores, int V, float temperature);
void mg_apply_top_k(float *scores, int V, int k, void *scratch);
void mg_apply_top_p(float *scores, int V, double top_p, void *scratch);

/* softmax(scores) in float32 into probs[V] (as torch.softmax). */
void mg_softmax(const float *scores, int V, float *probs);

/* The index of the largest score, the lowest on exact ties; NaNs are skipped
 * (0 when every score is NaN). */
int mg_argmax(const float *scores, int V);

/* A token from processed scores: argmax when s->greedy, else a draw from
 * softmax(scores) with one uniform from rng (see above). Rows whose scores
 * are all -inf or NaN give the argmax rule's answer. */
int mg_sample_row(const float *scores, int V, const mg_sampling *s, mg_rng *rng, void *scratch);

#endif
