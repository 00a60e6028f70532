/* backend.h - what the engine calls to run a model on OpenCL: the backend
 * decision for a load (cpu / opencl / auto, --device N) with the fallback
 * rules, and the device model (opencl/model.h) once chosen.
 *
 * Builds without OpenCL get inline versions: auto and cpu choose the CPU
 * backend, `--backend opencl` is an error saying OpenCL is not built. */
#ifndef MG_OCL_BACKEND_H
#define MG_OCL_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/config.h"
#include "engine/mg.h"
#include "engine/safetensors.h"

typedef struct ocl_backend ocl_backend;

#ifdef MG_HAVE_OPENCL
#include "opencl/model.h"

struct ocl_backend {
	ocl_ctx *ctx;
	ocl_model *model;
	float guidance;     /* of the current generation */
	char name[320];     /* "opencl: <device name>" */
};

/* lp->backend, lp->device, lp->weights, lp->on_notice decide:
 *   returns 1 and *out: the model runs on OpenCL (weights uploaded);
 *   returns 0: use the CPU backend (auto with no GPU/accelerator, or auto
 *     after a failure, which on_notice then reports in one line);
 *   returns -1: error in err (--backend opencl or --device N that cannot be
 *     honoured: no platform, no device, build failure, out of memory). */
int ocl_backend_open(ocl_backend **out, const st_set *w, const mg_config *cfg, const mg_load_params *lp,
                     char *err, size_t errlen);
void ocl_backend_close(ocl_backend *b);
const char *ocl_backend_name(const ocl_backend *b);

/* Conditioning of one generation: ids/mask [np][S] of np prompts, count
 * takes each (np = 0: n_takes unconditional takes); guidance > 1 with
 * prompts runs the null rows in the same pass. Then caches for max_len
 * positions. */
int ocl_backend_condition(ocl_backend *b, const int32_t *ids, const int32_t *mask, int np, int S, int count,
                          float guidance, int n_takes, int max_len, char *err, size_t errlen);
/* mg_stepper's step (engine/musicgen.h): ctx is the ocl_backend. */
int ocl_backend_step(void *ctx, const int32_t *ids, int T, float *scores, char *err, size_t errlen);
/* Audio [B][channels][F*hop] of codes [B][K][F]. */
int ocl_backend_decode(ocl_backend *b, const int32_t *codes, int B, int F, float *pcm, char *err, size_t errlen);
/* bench: mg_model_time_steps on the device. */
int ocl_backend_time_steps(ocl_backend *b, int n_takes, int guidance, int text_len, int past, int steps,
                           double *seconds, char *err, size_t errlen);

#else

static inline int ocl_backend_open(ocl_backend **out, const st_set *w, const mg_config *cfg,
                                   const mg_load_params *lp, char *err, size_t errlen)
{
	(void)w;
	(void)cfg;
	*out = NULL;
	if (lp->backend == MG_BACKEND_OPENCL) {
		snprintf(err, errlen, "--backend opencl: this build has no OpenCL backend "
		                      "(configure did not find OpenCL and CLBlast)");
		return -1;
	}
	return 0;
}

/* Without OpenCL no model is ever opened; these are never reached. */
static inline void ocl_backend_close(ocl_backend *b)
{
	(void)b;
}

static inline const char *ocl_backend_name(const ocl_backend *b)
{
	(void)b;
	return "cpu";
}

static inline int ocl_backend_condition(ocl_backend *b, const int32_t *ids, const int32_t *mask, int np, int S,
                                        int count, float guidance, int n_takes, int max_len, char *err,
                                        size_t errlen)
{
	(void)b, (void)ids, (void)mask, (void)np, (void)S, (void)count, (void)guidance, (void)n_takes, (void)max_len;
	snprintf(err, errlen, "this build has no OpenCL backend");
	return -1;
}

static inline int ocl_backend_step(void *ctx, const int32_t *ids, int T, float *scores, char *err, size_t errlen)
{
	(void)ctx, (void)ids, (void)T, (void)scores;
	snprintf(err, errlen, "this build has no OpenCL backend");
	return -1;
}

static inline int ocl_backend_decode(ocl_backend *b, const int32_t *codes, int B, int F, float *pcm, char *err,
                                     size_t errlen)
{
	(void)b, (void)codes, (void)B, (void)F, (void)pcm;
	snprintf(err, errlen, "this build has no OpenCL backend");
	return -1;
}

static inline int ocl_backend_time_steps(ocl_backend *b, int n_takes, int guidance, int text_len, int past,
                                         int steps, double *seconds, char *err, size_t errlen)
{
	(void)b, (void)n_takes, (void)guidance, (void)text_len, (void)past, (void)steps;
	*seconds = 0;
	snprintf(err, errlen, "this build has no OpenCL backend");
	return -1;
}

#endif
#endif
