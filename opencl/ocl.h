/* ocl.h - the OpenCL side of the engine: device discovery, the choice of
 * backend, one context + in-order queue per model, the program built from the
 * embedded .cl sources (with a binary cache on disk), buffers and error text.
 *
 * Devices are numbered across all platforms in the order the ICD loader
 * reports them; that number is what `--device N` and `devices` show.
 * Nothing here prints: failures fill err with the OpenCL call and its code. */
#ifndef MG_OCL_H
#define MG_OCL_H

#include <stddef.h>
#include <stdint.h>

#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

typedef struct ocl_device_desc {
	int index;                /* global device number */
	int platform;             /* platform number */
	char platform_name[128];
	char platform_version[128];
	char name[256];
	char vendor[128];
	char version[128];        /* device OpenCL version string */
	char driver[128];         /* driver version */
	cl_device_type type;
	uint64_t global_mem;      /* bytes */
	uint64_t max_alloc;       /* largest single buffer, bytes */
	size_t max_wg;            /* max work-group size */
	int fp16;                 /* cl_khr_fp16 */
	int available;            /* CL_DEVICE_AVAILABLE && compiler available */
	cl_platform_id pid;
	cl_device_id did;
} ocl_device_desc;

/* Every device of every platform. *n = 0 (and 0 returned) when there is no
 * platform at all; *out is then NULL. Free *out with free(). */
int ocl_list_devices(ocl_device_desc **out, int *n, char *err, size_t errlen);

/* The device `auto` uses: the available GPU or accelerator with the most
 * memory (the lowest number among equals), or -1 (the native CPU backend
 * then; CPU OpenCL devices are never chosen by auto). */
int ocl_auto_device(const ocl_device_desc *d, int n);

/* The device `--backend opencl` uses when no --device is given: the auto
 * choice, else the first available device of any type (e.g. PoCL). -1 if none. */
int ocl_default_device(const ocl_device_desc *d, int n);

const char *ocl_strerror(cl_int code);
const char *ocl_device_type_name(cl_device_type t);

/* Backend decision for a load: backend is enum mg_backend, device -1 or N.
 * Returns 1 (use OpenCL, *chosen filled), 0 (use the CPU backend; in auto
 * mode notice, if non-empty, says why a present device was not used) or -1
 * (error in err: --backend opencl with no usable device, bad --device). */
int ocl_choose(int backend, int device, ocl_device_desc *chosen, char *notice, size_t noticelen,
               char *err, size_t errlen);

/* Kernels of the embedded program, looked up once at context creation. */
enum ocl_kernel_id {
	OK_FILL, OK_BIAS_ROWS, OK_TRANSPOSE2D, OK_RMS_NORM, OK_LAYER_NORM, OK_GELU, OK_RELU, OK_ELU, OK_GATED_ACT,
	OK_ADD, OK_SOFTMAX_ROWS, OK_ATTENTION, OK_KV_APPEND, OK_EMBED_SUM, OK_EMBED_ROWS, OK_ROWS_MASK,
	OK_LOGITS_PROCESS, OK_ARGMAX_ROWS, OK_PAD_REFLECT, OK_CONV1D, OK_CONV_TRANSPOSE1D, OK_LSTM_CELL,
	OK_RVQ_DECODE, OK_LINEAR_ROWS, OK_LINEAR_ROWS_H, OK_COUNT
};

typedef struct ocl_ctx {
	ocl_device_desc dev;
	cl_context context;
	cl_command_queue queue;
	cl_program program;
	cl_kernel k[OK_COUNT];
	size_t wg;                /* work-group size of the row reductions (power of 2) */
	int from_cache;           /* program came from the binary cache */
	char cache_file[1024];    /* binary cache path ("" if no cache dir) */
} ocl_ctx;

typedef void (*ocl_notice_fn)(const char *msg, void *user_data);

/* Context, queue and program on device desc. notice (may be NULL) hears
 * "compiling kernels ..." before a build that is not in the cache. */
int ocl_ctx_create(ocl_ctx **out, const ocl_device_desc *desc, ocl_notice_fn notice, void *user_data,
                   char *err, size_t errlen);
/* The same with another program source (tests: a source that does not
 * build must fail with the build log kept in the cache directory). */
int ocl_ctx_create_src(ocl_ctx **out, const ocl_device_desc *desc, const char *src, size_t srclen,
                       ocl_notice_fn notice, void *user_data, char *err, size_t errlen);
void ocl_ctx_free(ocl_ctx *c);

/* The directory of the program cache: $XDG_CACHE_HOME/musicgen-tui, else
 * $HOME/.cache/musicgen-tui. 0 ok, -1 when neither variable is set. */
int ocl_cache_dir(char *buf, size_t len);

/* The embedded program source (all .cl files, concatenated) and its hash. */
extern const unsigned char ocl_program_source[];
extern const size_t ocl_program_source_len;
uint64_t ocl_hash64(const void *data, size_t n, uint64_t h);

/* Buffers. ocl_buf returns NULL and fills err on failure (out of memory
 * names the size). */
cl_mem ocl_buf(ocl_ctx *c, size_t bytes, const char *what, char *err, size_t errlen);
cl_mem ocl_buf_from(ocl_ctx *c, const void *src, size_t bytes, const char *what, char *err, size_t errlen);
int ocl_write(ocl_ctx *c, cl_mem b, size_t off, const void *src, size_t bytes, char *err, size_t errlen);
int ocl_read(ocl_ctx *c, cl_mem b, size_t off, void *dst, size_t bytes, char *err, size_t errlen);
int ocl_finish(ocl_ctx *c, char *err, size_t errlen);
void ocl_release(cl_mem *b);

#endif
