/* backend.c - the backend decision of a model load and the set-up of the
 * device model, with the fallback rules of `auto`. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opencl/backend.h"
#include "opencl/ops.h"

static void say(const mg_load_params *lp, const char *msg)
{
	if (lp->on_notice)
		lp->on_notice(msg, lp->user_data);
}

int ocl_backend_open(ocl_backend **out, const st_set *w, const mg_config *cfg, const mg_load_params *lp,
                     char *err, size_t errlen)
{
	ocl_device_desc dev;
	char notice[1200], why[512];
	int is_auto = lp->backend == MG_BACKEND_AUTO;

	*out = NULL;
	int pick = ocl_choose(lp->backend, lp->device, &dev, notice, sizeof notice, why, sizeof why);
	if (pick < 0) {
		if (is_auto) { /* a bad --device with auto: say so, keep going on the CPU */
			snprintf(notice, sizeof notice, "OpenCL: %s; using the CPU backend", why);
			say(lp, notice);
			return 0;
		}
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (pick == 0) {
		if (notice[0])
			say(lp, notice);
		return 0;
	}

	if (lp->weights == MG_WEIGHTS_Q8) {
		snprintf(why, sizeof why, "q8 weights are not available on the OpenCL backend (f32 or f16 are)");
		if (is_auto) {
			snprintf(notice, sizeof notice, "OpenCL: %s; using the CPU backend", why);
			say(lp, notice);
			return 0;
		}
		snprintf(err, errlen, "%s", why);
		return -1;
	}

	ocl_backend *b = calloc(1, sizeof *b);
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(b->name, sizeof b->name, "opencl: %s", dev.name);
	int rc = ocl_ctx_create(&b->ctx, &dev, lp->on_notice, lp->user_data, why, sizeof why);
	if (!rc) {
		/* CLBlast compiles its kernels at first use, in every process */
		say(lp, "compiling kernels (CLBlast matrix products)");
		rc = ocl_blas_warmup(b->ctx, why, sizeof why);
	}
	if (!rc)
		rc = ocl_model_load(&b->model, b->ctx, w, cfg, lp->weights == MG_WEIGHTS_F16, why, sizeof why);
	if (rc) {
		ocl_backend_close(b);
		if (is_auto) {
			snprintf(notice, sizeof notice, "OpenCL device %d (%s) failed: %s; using the CPU backend", dev.index,
			         dev.name, why);
			say(lp, notice);
			return 0;
		}
		snprintf(err, errlen, "OpenCL device %d (%s): %s", dev.index, dev.name, why);
		return -1;
	}
	*out = b;
	return 1;
}

void ocl_backend_close(ocl_backend *b)
{
	if (!b)
		return;
	ocl_model_free(b->model);
	ocl_ctx_free(b->ctx);
	free(b);
}

const char *ocl_backend_name(const ocl_backend *b)
{
	return b->name;
}

int ocl_backend_condition(ocl_backend *b, const int32_t *ids, const int32_t *mask, int np, int S, int count,
                          float guidance, int n_takes, int max_len, char *err, size_t errlen)
{
	int cfg = np > 0 && guidance > 1.0f;
	b->guidance = cfg ? guidance : 1.0f;
	if (ocl_model_condition(b->model, ids, mask, np, S, count, cfg, np > 0 ? 0 : n_takes, NULL, err, errlen) ||
	    ocl_model_begin(b->model, max_len, err, errlen))
		return -1;
	return 0;
}

int ocl_backend_step(void *ctx, const int32_t *ids, int T, float *scores, char *err, size_t errlen)
{
	ocl_backend *b = ctx;
	return ocl_model_step_takes(b->model, ids, T, b->guidance, scores, err, errlen);
}

int ocl_backend_decode(ocl_backend *b, const int32_t *codes, int B, int F, float *pcm, char *err, size_t errlen)
{
	return ocl_model_decode_takes(b->model, codes, B, F, pcm, err, errlen);
}

int ocl_backend_time_steps(ocl_backend *b, int n_takes, int guidance, int text_len, int past, int steps,
                           double *seconds, char *err, size_t errlen)
{
	return ocl_model_time_steps(b->model, n_takes, guidance, text_len, past, steps, seconds, err, errlen);
}
