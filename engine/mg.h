/* mg.h - the public API of the musicgen-tui engine.
 *
 * The engine turns text prompts into audio with a MusicGen checkpoint in the
 * Hugging Face layout. It knows nothing of curses, audio devices, databases or
 * any file other than model files, and it never prints or exits: every call
 * that can fail returns MG_OK or an error code and fills a caller-provided
 * message buffer naming the file, tensor, key or value at fault.
 *
 * Threading contract: a mg_model may be used by one generate call at a time
 * (the engine thread owns it). Callbacks are invoked on the thread that called
 * mg_generate(). should_abort() is polled at least once per decoder step; it
 * may read an atomic flag set by any thread.
 */
#ifndef MG_H
#define MG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MG_ERR_LEN 512

enum mg_status {
	MG_OK = 0,
	MG_ERR_IO = 1,        /* a file could not be read */
	MG_ERR_FORMAT = 2,    /* a model file is malformed */
	MG_ERR_CONFIG = 3,    /* config.json names something unsupported */
	MG_ERR_PARAM = 4,     /* an impossible generation parameter */
	MG_ERR_NOMEM = 5,
	MG_ERR_BACKEND = 6,   /* the compute backend failed or is unavailable */
	MG_ERR_ABORTED = 7,   /* should_abort() returned non-zero */
};

enum mg_backend {
	MG_BACKEND_AUTO = 0,
	MG_BACKEND_CPU = 1,
	MG_BACKEND_OPENCL = 2,
};

/* Storage/compute format of the large weight matrices. */
enum mg_weights {
	MG_WEIGHTS_DEFAULT = 0, /* the engine's documented default */
	MG_WEIGHTS_F32 = 1,
	MG_WEIGHTS_F16 = 2,
	MG_WEIGHTS_Q8 = 3,
};

typedef struct mg_model mg_model;

typedef struct mg_load_params {
	int backend;  /* enum mg_backend */
	int device;   /* OpenCL device index (backend opencl/auto), -1 = first suitable */
	int weights;  /* enum mg_weights */
	int threads;  /* CPU threads, <= 0 = all cores */
	/* Optional notices during loading (e.g. "compiling kernels", fallback to CPU). */
	void (*on_notice)(const char *msg, void *user_data);
	void *user_data;
} mg_load_params;

mg_load_params mg_load_params_default(void);

/* path: a model directory in the Hugging Face layout, or a hub id ORG/NAME
 * found in the local Hugging Face cache. */
int mg_model_load(mg_model **out, const char *path, const mg_load_params *lp,
                  char *err, size_t errlen);
void mg_model_free(mg_model *m);

/* A short description of the loaded model, for status lines and `info`. */
typedef struct mg_model_info {
	const char *path;         /* resolved directory */
	const char *id;           /* hub id when loaded from the cache, else the directory name */
	const char *revision;     /* snapshot revision from the cache, or "" */
	int sample_rate;          /* audio samples per second */
	double frame_rate;        /* audio frames (decoder steps) per second */
	int audio_channels;       /* 1 mono, 2 stereo */
	int num_codebooks;
	int max_frames;           /* longest take one window allows */
	const char *backend;      /* "cpu" or "opencl: <device name>" */
	const char *weights;      /* "f32", "f16" or "q8" */
	int threads;
} mg_model_info;

void mg_model_get_info(const mg_model *m, mg_model_info *info);

typedef struct mg_params {
	const char *const *prompts; /* n_prompts texts; n_prompts 0 = unconditional */
	int n_prompts;
	int count;         /* takes per prompt (or unconditional takes), >= 1 */
	int frames;        /* audio frames per take, >= num_codebooks / audio_channels - 1 */
	float guidance;    /* classifier-free guidance scale; <= 1 disables it */
	float temperature; /* > 0 */
	int top_k;         /* 0 = off */
	double top_p;      /* (0, 1]; 1 = off (double: HF compares with 1 - top_p in double) */
	uint64_t seed;
	int greedy;        /* argmax instead of sampling */
	int threads;       /* <= 0: the model's */
} mg_params;

/* Defaults from the model's generation_config.json (top_k 250 when absent,
 * temperature 1, top-p off, guidance 3, 10 s). */
mg_params mg_params_default(const mg_model *m);

/* Checks params against the model; MG_ERR_PARAM with the reason if invalid. */
int mg_params_check(const mg_model *m, const mg_params *p, char *err, size_t errlen);

typedef struct mg_callbacks {
	/* step in 1..total after each decoder step. */
	void (*on_progress)(int step, int total, void *user_data);
	/* A new de-delayed audio frame is complete for every take: codes[b*K + k]
	 * for frame index `frame`. */
	void (*on_frame)(int frame, const int32_t *codes, int n_takes, int n_codebooks, void *user_data);
	/* Non-zero stops the generation with MG_ERR_ABORTED. */
	int (*should_abort)(void *user_data);
	void *user_data;
} mg_callbacks;

typedef struct mg_take {
	int n_takes;        /* B */
	int n_codebooks;    /* K */
	int n_frames;       /* F */
	int32_t *codes;     /* [B][K][F], de-delayed */
	int sample_rate;
	int channels;
	int64_t n_samples;  /* per channel */
	float *pcm;         /* [B][channels][n_samples] */
	double t5_seconds, decode_seconds, encodec_seconds;
	int steps;          /* decoder steps run */
	uint64_t *seeds;    /* [B]: the seed of each take's random stream (take i of a run: seed + i) */
} mg_take;

int mg_generate(mg_model *m, const mg_params *p, const mg_callbacks *cb,
                mg_take **out, char *err, size_t errlen);
void mg_take_free(mg_take *t);

/* The OpenCL devices a load can use (for pickers and settings), numbered as
 * mg_load_params.device and `--device N` take them. */
typedef struct mg_device {
	int index;
	int is_gpu;                 /* GPU or accelerator (what auto may choose) */
	int is_auto;                /* the device --backend auto would use */
	int fp16;                   /* cl_khr_fp16 */
	unsigned long long memory;  /* global memory, bytes */
	char name[256];
	char vendor[128];
	char version[128];
} mg_device;

/* Fills up to max entries of out; returns how many devices there are (0
 * when the build has no OpenCL or no platform is installed), or -1 with err. */
int mg_list_devices(mg_device *out, int max, char *err, size_t errlen);

/* Version string of the engine. */
const char *mg_version(void);

#ifdef __cplusplus
}
#endif
#endif
