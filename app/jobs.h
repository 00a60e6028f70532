/* jobs.h - the engine thread: it owns the model, runs jobs from a queue
 * (load a model, generate) and tells the UI what happened.
 *
 * The UI thread never waits on the engine: it submits requests, and waits
 * (poll/select) on jobs_wake_fd(), which becomes readable when there are new
 * events or the progress moved. It then drains the fd with jobs_drain_wake(),
 * reads events with jobs_next_event() and takes one jobs_snapshot() for
 * drawing. Finished takes are stored in the history by the engine thread
 * before the "done" event is posted. */
#ifndef MG_JOBS_H
#define MG_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "app/settings.h"

typedef struct jobs jobs;

#define JOBS_MAX_QUEUE 16
#define JOBS_MAX_TAKES 16

enum job_event_kind {
	JOB_EV_MODEL_LOADED,    /* msg: a description of the model */
	JOB_EV_MODEL_FAILED,    /* msg: why */
	JOB_EV_NOTICE,          /* msg: a notice from the engine while loading */
	JOB_EV_STARTED,         /* a generation began (job_id) */
	JOB_EV_DONE,            /* take_ids / pcm of the first take */
	JOB_EV_FAILED,          /* msg: why; nothing was saved */
	JOB_EV_CANCELLED,       /* nothing was saved */
};

struct job_event {
	int kind;
	int64_t job_id;
	char msg[600];
	uint64_t seed;              /* the seed the generation used */
	int n_takes;
	int64_t take_ids[JOBS_MAX_TAKES];
	/* The first take's audio, planar [channels][n_samples]; the receiver
	 * owns it (free()), NULL for other events. */
	float *pcm;
	int channels, sample_rate;
	int64_t n_samples;
};

enum jobs_model_state { JOBS_MODEL_NONE, JOBS_MODEL_LOADING, JOBS_MODEL_READY, JOBS_MODEL_FAILED };

struct jobs_queued {
	int64_t job_id;
	char prompt[96];
	double duration;
};

struct jobs_snapshot {
	int model_state;
	char model_id[256], model_rev[64], backend[160], weights[16];
	int sample_rate, channels, max_frames;
	double frame_rate;
	int busy;                   /* a generation is running */
	int64_t job_id;
	char prompt[96];
	int step, total;
	double elapsed_s, steps_per_s, eta_s; /* eta < 0: unknown */
	int cancelling;
	int n_queued;
	struct jobs_queued queued[JOBS_MAX_QUEUE];
	int64_t generated;          /* takes finished since start */
};

/* history_dir: where takes are stored (NULL = the default). */
int jobs_start(jobs **out, const char *history_dir, char *err, size_t errlen);
/* Stops the engine thread (cancelling what runs) and frees everything. */
void jobs_stop(jobs *j);

/* Loads (or replaces) the model in the background. backend: enum mg_backend;
 * device: the OpenCL device index (mg_list_devices), -1 = the first suitable. */
void jobs_load_model(jobs *j, const char *path, int backend, int device, int threads);

/* Queues a generation; -1 with the reason when the queue is full or the
 * knobs are invalid. The seed must already be chosen. */
int jobs_submit(jobs *j, const char *prompt, const struct knobs *k, int64_t *job_id, char *err, size_t errlen);
/* Cancels the running job (job_id 0 or its id) or removes a queued one.
 * Returns 0 when something was cancelled. */
int jobs_cancel(jobs *j, int64_t job_id);

int jobs_wake_fd(const jobs *j);
void jobs_drain_wake(jobs *j);
/* 1 and fills ev when an event is waiting, else 0. */
int jobs_next_event(jobs *j, struct job_event *ev);
void jobs_snapshot(jobs *j, struct jobs_snapshot *s);

#endif
