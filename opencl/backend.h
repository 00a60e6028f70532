/* backend.h - what the engine calls to run a model on OpenCL: the backend
 * decision for a load (cpu / opencl / auto, --device N) with the fallback
 * rules, and the device model (opencl/model.h) once chosen.
 *
 * Builds without OpenCL get inline versions: auto and cpu choose the CPU
 * backend, `--backend opencl` is an error saying OpenCL is not built. */
#ifndef MG_OCL_BACKEND_H
#define MG_OCL_BACKEND_H

#include <stddef.h>
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

static inline void ocl_backend_close(ocl_backend *b)
{
	(void)b;
}

#endif
#endif
