/* model.h - the loaded model behind the public API of mg.h (struct mg_model)
 * and the internal entry points other parts of the program build on:
 *   - bench: mg_model_load_st (a model from an in-memory tensor set with
 *     random weights of the right names and shapes) and mg_model_time_steps;
 *   - other backends: the stages are separate calls (musicgen.h), the
 *     backend chosen at load time is kept in the model, and the generation
 *     loop runs any backend's steps through an mg_stepper;
 *   - tests: mg_generate_tokens (prompts given as token ids).
 * The engine never prints; every call returns an mg_status code with a
 * message. */
#ifndef MG_MODEL_H
#define MG_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/config.h"
#include "engine/encodec.h"
#include "engine/mg.h"
#include "engine/musicgen.h"
#include "engine/pool.h"
#include "engine/safetensors.h"
#include "engine/t5.h"

struct mg_model {
	mg_config cfg;
	st_set *st;                  /* the weights (mapped files or memory), owned */
	char *path, *id, *revision;  /* resolved directory, hub id or name, snapshot revision */
	int backend;                 /* enum mg_backend in use: MG_BACKEND_CPU or MG_BACKEND_OPENCL */
	int weights;                 /* enum mg_weights in use */
	int threads;
	char backend_name[340];      /* "cpu" or "opencl: <device>" */
	struct ocl_backend *ocl;     /* the device model when backend is OpenCL (opencl/backend.h) */
	mg_pool *pool;
	struct mg_tokenizer *tok;    /* NULL when the model has no spiece.model */
	char *spiece_path;
	/* CPU weights; with OpenCL only dec's sizes (mg_decoder_init_config). */
	mg_t5 t5;
	mg_decoder dec;
	mg_encodec codec;
};

/* Decoders whose float32 matrices take at least this many bytes default to
 * the compact weight format (mg_weights_resolve(MG_WEIGHTS_DEFAULT)); smaller
 * ones to float32, Hugging Face's exact arithmetic. */
#define MG_COMPACT_WEIGHTS_FROM (64.0 * 1024 * 1024)

/* The format MG_WEIGHTS_DEFAULT means for a model with this decoder. */
int mg_default_weights(const mg_decoder_config *d);

/* A model from a tensor set (ownership of `weights` is taken, also on
 * failure) and a parsed config. spiece_path may be NULL (then only
 * unconditional generation works). */
int mg_model_load_st(mg_model **out, st_set *weights, const mg_config *cfg, const char *spiece_path,
                     const mg_load_params *lp, char *err, size_t errlen);

/* As mg_generate, with the prompts already tokenized: ids/mask [n_prompts][S]
 * (right-padded, mask 1 = token); n_prompts 0 = unconditional. */
int mg_generate_tokens(mg_model *m, const mg_params *p, const int32_t *ids, const int32_t *mask, int S,
                       const mg_callbacks *cb, mg_take **out, char *err, size_t errlen);

/* Timing hook for bench: runs `steps` decoder steps for n_takes takes (twice
 * the rows with guidance, as generation does) over text_len conditioning
 * positions, after `past` positions already cached (filled by running them),
 * and returns the mean wall time of one step in *seconds. */
int mg_model_time_steps(mg_model *m, int n_takes, int guidance, int text_len, int past, int steps,
                        double *seconds, char *err, size_t errlen);

/* Decodes de-delayed codes [n_takes][K][F] to PCM [n_takes][channels][F*hop]
 * (stereo: even codebooks left, odd right). */
int mg_model_decode_audio(mg_model *m, const int32_t *codes, int n_takes, int F, float *pcm, char *err,
                          size_t errlen);

#endif
