/* model.h - the whole MusicGen model on an OpenCL device: T5 encoder and
 * projection, the decoder with its KV caches, the logits path and the EnCodec
 * decoder. Weights are bound by name from the checkpoint (every size from
 * the config) and uploaded once at load; activations, caches and logits stay
 * on the device.
 *
 * Per decoder step the host sends the new column of ids (N*K ints) and gets
 * back either the sampled/greedy ids (R ints, greedy) or the processed logits
 * of the R = B*K rows (sampling stays on the host, so the CPU and OpenCL
 * backends share one sampler and one RNG stream).
 *
 * The generation loop (delay pattern, CFG batching, sampling) belongs to the
 * engine; it calls these functions when the model runs on OpenCL. */
#ifndef MG_OCL_MODEL_H
#define MG_OCL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/config.h"
#include "engine/safetensors.h"
#include "opencl/ocl.h"

typedef struct ocl_model ocl_model;

/* Binds and uploads every weight (EnCodec weight norm folded on the host).
 * f16: the decoder's matrices (projections, FFN, heads: what a step streams)
 * stored as IEEE half, computed in float32; 0 keeps float32 everywhere (the
 * default: results match the CPU backend). The model keeps ctx (the caller
 * frees the model first, then ctx). */
int ocl_model_load(ocl_model **out, ocl_ctx *ctx, const st_set *w, const mg_config *cfg, int f16,
                   char *err, size_t errlen);
void ocl_model_free(ocl_model *m);
/* Bytes of device memory the weights take. */
size_t ocl_model_weight_bytes(const ocl_model *m);

/* Text conditioning. ids/mask [np, S] (int32, mask 1 = token) of np prompts
 * give B = np * count takes (take i is prompt i / count): T5 + projection +
 * mask run once per prompt, the states are copied to the takes. With cfg the
 * decoder runs N = 2B rows, the last B the null condition (zero states, zero
 * mask); without, N = B. np = 0 is unconditional: N = B = n_uncond rows with
 * one zero state each. Then the cross-attention keys/values of every layer.
 * enc_out (may be NULL) gets the states [N, S, hidden] (tests). */
int ocl_model_condition(ocl_model *m, const int32_t *ids, const int32_t *mask, int np, int S, int count, int cfg,
                        int n_uncond, float *enc_out, char *err, size_t errlen);

/* Conditioning from states computed elsewhere: enc [B, S, hidden] and mask
 * [B, S] of B takes (multiplied by the mask here), null rows added with cfg. */
int ocl_model_set_states(ocl_model *m, const float *enc, const int32_t *mask, int B, int S, int cfg,
                         char *err, size_t errlen);

/* Starts a sequence: KV caches for up to max_len positions of the N rows
 * set by ocl_model_condition. */
int ocl_model_begin(ocl_model *m, int max_len, char *err, size_t errlen);

/* Runs the decoder on Tq new columns ids[N][K][Tq] (int32) at positions
 * past .. past+Tq-1 (past = columns already in the cache), appends them to
 * the caches and leaves the last column's logits [N*K, V] on the device.
 * hidden_out (may be NULL) gets the final-norm input rows [N*Tq, hidden]
 * (tests); logits_out (may be NULL) gets the raw logits [N*K, V]. */
int ocl_model_step(ocl_model *m, const int32_t *ids, int Tq, float *logits_out, char *err, size_t errlen);

/* On the last logits: guidance (when the rows were doubled for CFG) and
 * temperature on the device; then either the processed scores [B*K, V] come
 * back (scores != NULL) or the greedy argmax ids [B*K] (ids != NULL). */
int ocl_model_logits(ocl_model *m, float guidance, float temperature, float *scores, int32_t *ids,
                     char *err, size_t errlen);

/* One generation step for the engine's loop: ids [B][K][T] of the B takes
 * (doubled here for guidance when conditioned with cfg), then the guided
 * last-column scores [B][K][V] come back (temperature and the rest of the
 * token choice stay on the host). */
int ocl_model_step_takes(ocl_model *m, const int32_t *ids, int T, float guidance, float *scores,
                         char *err, size_t errlen);

/* bench: mean seconds of one step for n_takes takes (twice the rows with
 * guidance) over text_len positions after `past` cached positions; each
 * timed step sends the ids and reads back the chosen ids. */
int ocl_model_time_steps(ocl_model *m, int n_takes, int guidance, int text_len, int past, int steps,
                         double *seconds, char *err, size_t errlen);

/* EnCodec: codes [B, nq, F] (int32, nq = the codec's quantizer count or
 * fewer) -> audio [B, audio_channels, F*hop] on the host. */
int ocl_model_decode_audio(ocl_model *m, const int32_t *codes, int B, int nq, int F, float *pcm,
                           char *err, size_t errlen);

/* Audio of de-delayed codes [B][K][F] of the decoder: [B][channels][F*hop]
 * (stereo: even codebooks left, odd right, each through the mono codec). */
int ocl_model_decode_takes(ocl_model *m, const int32_t *codes, int B, int F, float *pcm, char *err, size_t errlen);

/* Transfer counters since load (host->device and device->host). */
typedef struct ocl_traffic {
	long long writes, write_bytes, reads, read_bytes;
} ocl_traffic;
void ocl_model_traffic(const ocl_model *m, ocl_traffic *t);

#endif
