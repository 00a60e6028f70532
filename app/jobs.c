/* jobs.c - the engine thread and its queue (see jobs.h). This is the only
 * part of the program outside the headless commands that calls the engine. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/history.h"
#include "app/jobs.h"
#include "app/take_save.h"
#include "app/util.h"
#include "engine/mg.h"

struct request {
	int64_t job_id;
	char prompt[PROMPT_MAX];
	struct knobs knobs;
};

#define EVENTS_MAX 64

struct jobs {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int wake[2];           /* pipe: engine -> UI */
	atomic_int wake_pending;
	atomic_int abort_now;  /* cancel the running generation */
	int stop;

	/* requests (under lock) */
	int load_pending;
	char load_path[SETTINGS_PATH_MAX];
	int load_backend, load_device, load_threads;
	struct request queue[JOBS_MAX_QUEUE];
	int n_queue;
	int64_t next_id;

	/* events (under lock) */
	struct job_event events[EVENTS_MAX];
	int ev_head, ev_count;

	/* state for snapshots (under lock) */
	struct jobs_snapshot snap;
	double started, last_wake;
	char history_dir[1024];
	int history_default;

	/* engine-thread only */
	mg_model *model;
	history *hist;
};

static void wake_ui(jobs *j)
{
	if (atomic_exchange(&j->wake_pending, 1) == 0) {
		char c = 1;
		if (write(j->wake[1], &c, 1) < 0 && errno != EAGAIN)
			atomic_store(&j->wake_pending, 0);
	}
}

void jobs_drain_wake(jobs *j)
{
	char buf[64];
	atomic_store(&j->wake_pending, 0);
	while (read(j->wake[0], buf, sizeof buf) > 0)
		;
}

int jobs_wake_fd(const jobs *j)
{
	return j->wake[0];
}

/* Called with the lock held. */
static void post_locked(jobs *j, const struct job_event *ev)
{
	if (j->ev_count == EVENTS_MAX) {
		/* The UI is not reading; drop the oldest, freeing what it owns. */
		free(j->events[j->ev_head].pcm);
		j->ev_head = (j->ev_head + 1) % EVENTS_MAX;
		j->ev_count--;
	}
	j->events[(j->ev_head + j->ev_count) % EVENTS_MAX] = *ev;
	j->ev_count++;
}

static void post(jobs *j, const struct job_event *ev)
{
	pthread_mutex_lock(&j->lock);
	post_locked(j, ev);
	pthread_mutex_unlock(&j->lock);
	wake_ui(j);
}

static void post_msg(jobs *j, int kind, int64_t job_id, const char *msg)
{
	struct job_event ev;
	memset(&ev, 0, sizeof ev);
	ev.kind = kind;
	ev.job_id = job_id;
	str_copy_utf8(ev.msg, sizeof ev.msg, msg);
	post(j, &ev);
}

int jobs_next_event(jobs *j, struct job_event *ev)
{
	pthread_mutex_lock(&j->lock);
	int got = j->ev_count > 0;
	if (got) {
		*ev = j->events[j->ev_head];
		j->ev_head = (j->ev_head + 1) % EVENTS_MAX;
		j->ev_count--;
	}
	pthread_mutex_unlock(&j->lock);
	return got;
}

static void update_queue_snapshot_locked(jobs *j)
{
	j->snap.n_queued = j->n_queue;
	for (int i = 0; i < j->n_queue; i++) {
		j->snap.queued[i].job_id = j->queue[i].job_id;
		str_copy_utf8(j->snap.queued[i].prompt, sizeof j->snap.queued[i].prompt, j->queue[i].prompt);
		j->snap.queued[i].duration = j->queue[i].knobs.duration;
	}
}

void jobs_snapshot(jobs *j, struct jobs_snapshot *s)
{
	pthread_mutex_lock(&j->lock);
	*s = j->snap;
	if (s->busy) {
		s->elapsed_s = mono_seconds() - j->started;
		s->steps_per_s = s->step > 0 && s->elapsed_s > 0 ? s->step / s->elapsed_s : 0;
		s->eta_s = s->steps_per_s > 0 ? (s->total - s->step) / s->steps_per_s : -1;
	}
	pthread_mutex_unlock(&j->lock);
}

/* ---- engine callbacks ---- */

static void on_notice(const char *msg, void *user)
{
	post_msg(user, JOB_EV_NOTICE, 0, msg);
}

static void on_progress(int step, int total, void *user)
{
	jobs *j = user;
	double t = mono_seconds();
	pthread_mutex_lock(&j->lock);
	j->snap.step = step;
	j->snap.total = total;
	/* Redraws at most about 30 times a second. */
	int wake = t - j->last_wake > 0.033 || step == total;
	if (wake)
		j->last_wake = t;
	pthread_mutex_unlock(&j->lock);
	if (wake)
		wake_ui(j);
}

static int should_abort(void *user)
{
	jobs *j = user;
	return atomic_load(&j->abort_now);
}

/* ---- the work ---- */

static void do_load(jobs *j, const char *path, int backend, int device, int threads)
{
	pthread_mutex_lock(&j->lock);
	j->snap.model_state = JOBS_MODEL_LOADING;
	str_copy_utf8(j->snap.model_id, sizeof j->snap.model_id, path);
	pthread_mutex_unlock(&j->lock);
	wake_ui(j);

	if (j->model) {
		mg_model_free(j->model);
		j->model = NULL;
	}
	mg_load_params lp = mg_load_params_default();
	lp.backend = backend;
	lp.device = device;
	lp.threads = threads;
	lp.on_notice = on_notice;
	lp.user_data = j;
	char err[MG_ERR_LEN], msg[600];
	mg_model *m = NULL;
	if (mg_model_load(&m, path, &lp, err, sizeof err) != MG_OK) {
		pthread_mutex_lock(&j->lock);
		j->snap.model_state = JOBS_MODEL_FAILED;
		pthread_mutex_unlock(&j->lock);
		post_msg(j, JOB_EV_MODEL_FAILED, 0, err);
		return;
	}
	j->model = m;
	mg_model_info info;
	mg_model_get_info(m, &info);
	pthread_mutex_lock(&j->lock);
	j->snap.model_state = JOBS_MODEL_READY;
	str_copy_utf8(j->snap.model_id, sizeof j->snap.model_id, info.id ? info.id : path);
	str_copy_utf8(j->snap.model_rev, sizeof j->snap.model_rev, info.revision ? info.revision : "");
	str_copy_utf8(j->snap.backend, sizeof j->snap.backend, info.backend ? info.backend : "");
	str_copy_utf8(j->snap.weights, sizeof j->snap.weights, info.weights ? info.weights : "");
	j->snap.sample_rate = info.sample_rate;
	j->snap.channels = info.audio_channels;
	j->snap.max_frames = info.max_frames;
	j->snap.frame_rate = info.frame_rate;
	pthread_mutex_unlock(&j->lock);
	snprintf(msg, sizeof msg, "model %.200s loaded: %d Hz, %s, %.200s", info.id ? info.id : path, info.sample_rate,
	         info.audio_channels == 2 ? "stereo" : "mono", info.backend ? info.backend : "");
	post_msg(j, JOB_EV_MODEL_LOADED, 0, msg);
}

static void do_generate(jobs *j, const struct request *rq)
{
	char err[MG_ERR_LEN];
	struct job_event ev;
	memset(&ev, 0, sizeof ev);
	ev.job_id = rq->job_id;
	ev.seed = rq->knobs.seed;
	if (!j->model) {
		post_msg(j, JOB_EV_FAILED, rq->job_id, "no model is loaded");
		return;
	}
	mg_model_info info;
	mg_model_get_info(j->model, &info);
	mg_params p = mg_params_default(j->model);
	const char *prompts[1] = {rq->prompt};
	p.prompts = prompts;
	p.n_prompts = rq->prompt[0] ? 1 : 0;
	p.count = rq->knobs.count;
	p.frames = (int)lround(rq->knobs.duration * info.frame_rate);
	if (p.frames < 1)
		p.frames = 1;
	/* Asked before the model was known (F5 while loading): one window at most. */
	double duration = rq->knobs.duration;
	int cut = 0;
	if (info.max_frames > 0 && p.frames > info.max_frames) {
		p.frames = info.max_frames;
		duration = p.frames / info.frame_rate;
		cut = 1;
	}
	p.guidance = (float)rq->knobs.guidance;
	p.temperature = (float)rq->knobs.temperature;
	p.top_k = rq->knobs.top_k;
	p.top_p = rq->knobs.top_p;
	p.seed = rq->knobs.seed;
	p.greedy = 0;
	if (mg_params_check(j->model, &p, err, sizeof err) != MG_OK) {
		post_msg(j, JOB_EV_FAILED, rq->job_id, err);
		return;
	}

	pthread_mutex_lock(&j->lock);
	j->started = mono_seconds();
	pthread_mutex_unlock(&j->lock);
	post_msg(j, JOB_EV_STARTED, rq->job_id, "");

	mg_callbacks cb = {.on_progress = on_progress, .should_abort = should_abort, .user_data = j};
	mg_take *take = NULL;
	double t0 = mono_seconds();
	int rc = mg_generate(j->model, &p, &cb, &take, err, sizeof err);
	double total_s = mono_seconds() - t0;

	if (rc == MG_ERR_ABORTED || (rc == MG_OK && atomic_load(&j->abort_now))) {
		mg_take_free(take);
		post_msg(j, JOB_EV_CANCELLED, rq->job_id, "cancelled; nothing was saved");
		return;
	}
	if (rc != MG_OK) {
		post_msg(j, JOB_EV_FAILED, rq->job_id, err);
		return;
	}

	/* Store every take, then tell the UI. */
	char herr[1024];
	if (!j->hist && history_open(&j->hist, j->history_default ? NULL : j->history_dir, herr, sizeof herr)) {
		mg_take_free(take);
		post_msg(j, JOB_EV_FAILED, rq->job_id, herr);
		return;
	}
	int64_t per_take_samples = (int64_t)take->channels * take->n_samples;
	int saved = 0;
	if (take_save_all(j->hist, take, &p, &info, duration, total_s, ev.take_ids, JOBS_MAX_TAKES, &saved,
	                  herr, sizeof herr))
		post_msg(j, JOB_EV_FAILED, rq->job_id, herr);
	if (saved > JOBS_MAX_TAKES)
		saved = JOBS_MAX_TAKES;
	if (saved == 0) {
		mg_take_free(take);
		return;
	}
	ev.kind = JOB_EV_DONE;
	ev.n_takes = saved;
	ev.channels = take->channels;
	ev.sample_rate = take->sample_rate;
	ev.n_samples = take->n_samples;
	ev.pcm = malloc(sizeof(float) * (size_t)per_take_samples);
	if (ev.pcm)
		memcpy(ev.pcm, take->pcm, sizeof(float) * (size_t)per_take_samples);
	ev.seed = take->seeds ? take->seeds[0] : rq->knobs.seed;
	char note[96] = "";
	if (cut)
		snprintf(note, sizeof note, "; %.1f s asked, cut to %.1f s, the longest this model makes", rq->knobs.duration,
		         duration);
	if (saved == 1)
		snprintf(ev.msg, sizeof ev.msg, "take #%lld saved (%.1f s of audio in %.1f s, seed %llu%s)",
		         (long long)ev.take_ids[0], (double)take->n_samples / take->sample_rate, total_s,
		         (unsigned long long)ev.seed, note);
	else
		snprintf(ev.msg, sizeof ev.msg, "takes #%lld-#%lld saved (%.1f s of audio each in %.1f s, seeds %llu-%llu%s)",
		         (long long)ev.take_ids[0], (long long)ev.take_ids[saved - 1],
		         (double)take->n_samples / take->sample_rate, total_s, (unsigned long long)ev.seed,
		         (unsigned long long)(take->seeds ? take->seeds[saved - 1] : ev.seed + (uint64_t)saved - 1), note);
	mg_take_free(take);
	pthread_mutex_lock(&j->lock);
	j->snap.generated += saved;
	pthread_mutex_unlock(&j->lock);
	post(j, &ev);
}

static void *engine_main(void *arg)
{
	jobs *j = arg;
	pthread_mutex_lock(&j->lock);
	for (;;) {
		while (!j->stop && !j->load_pending && j->n_queue == 0)
			pthread_cond_wait(&j->cond, &j->lock);
		if (j->stop)
			break;
		if (j->load_pending) {
			char path[SETTINGS_PATH_MAX];
			str_copy_utf8(path, sizeof path, j->load_path);
			int backend = j->load_backend, device = j->load_device, threads = j->load_threads;
			j->load_pending = 0;
			pthread_mutex_unlock(&j->lock);
			do_load(j, path, backend, device, threads);
			pthread_mutex_lock(&j->lock);
			continue;
		}
		struct request *rq = malloc(sizeof *rq);
		if (!rq)
			continue;
		*rq = j->queue[0];
		memmove(j->queue, j->queue + 1, sizeof j->queue[0] * (size_t)(j->n_queue - 1));
		j->n_queue--;
		update_queue_snapshot_locked(j);
		atomic_store(&j->abort_now, 0);
		/* Busy from the moment it leaves the queue, so a cancel always finds it. */
		j->snap.busy = 1;
		j->snap.cancelling = 0;
		j->snap.job_id = rq->job_id;
		str_copy_utf8(j->snap.prompt, sizeof j->snap.prompt, rq->prompt);
		j->snap.step = 0;
		j->snap.total = 0;
		j->started = mono_seconds();
		pthread_mutex_unlock(&j->lock);
		do_generate(j, rq);
		free(rq);
		pthread_mutex_lock(&j->lock);
		j->snap.busy = 0;
		j->snap.cancelling = 0;
		wake_ui(j);
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

int jobs_start(jobs **out, const char *history_dir, char *err, size_t errlen)
{
	jobs *j = calloc(1, sizeof *j);
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pipe(j->wake) != 0) {
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		free(j);
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(j->wake[i], F_SETFL, fcntl(j->wake[i], F_GETFL) | O_NONBLOCK);
		fcntl(j->wake[i], F_SETFD, FD_CLOEXEC);
	}
	j->history_default = history_dir == NULL;
	if (history_dir)
		str_copy_utf8(j->history_dir, sizeof j->history_dir, history_dir);
	j->next_id = 1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	if (pthread_create(&j->thread, NULL, engine_main, j) != 0) {
		snprintf(err, errlen, "cannot start the engine thread");
		close(j->wake[0]);
		close(j->wake[1]);
		free(j);
		return -1;
	}
	*out = j;
	return 0;
}

void jobs_stop(jobs *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&j->lock);
	j->stop = 1;
	j->n_queue = 0;
	atomic_store(&j->abort_now, 1);
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
	pthread_join(j->thread, NULL);
	struct job_event ev;
	while (jobs_next_event(j, &ev))
		free(ev.pcm);
	if (j->model)
		mg_model_free(j->model);
	history_close(j->hist);
	close(j->wake[0]);
	close(j->wake[1]);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	free(j);
}

void jobs_load_model(jobs *j, const char *path, int backend, int device, int threads)
{
	pthread_mutex_lock(&j->lock);
	str_copy_utf8(j->load_path, sizeof j->load_path, path);
	j->load_backend = backend;
	j->load_device = device;
	j->load_threads = threads;
	j->load_pending = 1;
	j->snap.model_state = JOBS_MODEL_LOADING;
	str_copy_utf8(j->snap.model_id, sizeof j->snap.model_id, path);
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

int jobs_submit(jobs *j, const char *prompt, const struct knobs *k, int64_t *job_id, char *err, size_t errlen)
{
	if (knobs_check(k, err, errlen))
		return -1;
	pthread_mutex_lock(&j->lock);
	if (j->n_queue == JOBS_MAX_QUEUE) {
		pthread_mutex_unlock(&j->lock);
		snprintf(err, errlen, "the queue is full (%d jobs)", JOBS_MAX_QUEUE);
		return -1;
	}
	struct request *rq = &j->queue[j->n_queue++];
	rq->job_id = j->next_id++;
	str_copy_utf8(rq->prompt, sizeof rq->prompt, prompt);
	rq->knobs = *k;
	*job_id = rq->job_id;
	update_queue_snapshot_locked(j);
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
	return 0;
}

int jobs_cancel(jobs *j, int64_t job_id)
{
	int done = -1;
	pthread_mutex_lock(&j->lock);
	if (j->snap.busy && (job_id == 0 || job_id == j->snap.job_id)) {
		atomic_store(&j->abort_now, 1);
		j->snap.cancelling = 1;
		done = 0;
	} else {
		for (int i = 0; i < j->n_queue; i++)
			if (j->queue[i].job_id == job_id) {
				memmove(j->queue + i, j->queue + i + 1, sizeof j->queue[0] * (size_t)(j->n_queue - i - 1));
				j->n_queue--;
				update_queue_snapshot_locked(j);
				done = 0;
				break;
			}
	}
	pthread_mutex_unlock(&j->lock);
	if (done == 0)
		wake_ui(j);
	return done;
}
