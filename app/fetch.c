/* fetch.c - a model download on a worker thread (see fetch.h). One thread
 * per step (file list, then the download); the next step joins the last. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/download.h"
#include "app/fetch.h"
#include "app/util.h"

struct fetch {
	pthread_mutex_t lock;
	pthread_t thread;
	int have_thread;
	int thread_done;           /* the step's thread has finished (under lock) */
	atomic_int cancel;
	int step;                  /* FETCH_PLANNING or FETCH_RUNNING: what the thread does */
	struct dl_plan plan;       /* owned by the worker while a step runs */
	int have_plan;
	double t0;
	struct fetch_snapshot snap;
};

static void scopy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src);
}

int fetch_create(fetch **out, char *err, size_t errlen)
{
	fetch *f = calloc(1, sizeof *f);
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&f->lock, NULL);
	atomic_init(&f->cancel, 0);
	f->snap.state = FETCH_IDLE;
	f->snap.eta = -1;
	*out = f;
	return 0;
}

static void on_progress(const struct dl_progress *p, void *user)
{
	fetch *f = user;
	pthread_mutex_lock(&f->lock);
	scopy(f->snap.file, sizeof f->snap.file, p->file ? p->file : "");
	f->snap.file_index = p->file_index;
	f->snap.done = p->done;
	f->snap.total = p->total;
	f->snap.rate = p->rate;
	f->snap.eta = p->eta;
	f->snap.verifying = p->verifying;
	f->snap.elapsed_s = mono_seconds() - f->t0;
	pthread_mutex_unlock(&f->lock);
}

static void *worker(void *arg)
{
	fetch *f = arg;
	char err[700] = "", snapdir[4096] = "";
	int rc;
	if (f->step == FETCH_PLANNING) {
		if (f->have_plan)
			dl_plan_free(&f->plan);
		memset(&f->plan, 0, sizeof f->plan);
		rc = dl_plan_fetch(f->snap.repo, NULL, &f->plan, err, sizeof err);
		f->have_plan = 1;
	} else {
		rc = dl_plan_run(&f->plan, on_progress, f, &f->cancel, snapdir, sizeof snapdir, err, sizeof err);
	}
	pthread_mutex_lock(&f->lock);
	f->snap.status = rc;
	if (atomic_load(&f->cancel) || rc == DL_ERR_CANCELLED) {
		f->snap.state = FETCH_CANCELLED;
	} else if (rc != DL_OK) {
		f->snap.state = FETCH_FAILED;
		scopy(f->snap.msg, sizeof f->snap.msg, err[0] ? err : dl_status_name(rc));
	} else if (f->step == FETCH_PLANNING) {
		f->snap.state = FETCH_PLANNED;
		scopy(f->snap.commit, sizeof f->snap.commit, f->plan.commit);
		f->snap.nfiles = f->plan.nfiles;
		f->snap.total_bytes = f->plan.total_bytes;
		f->snap.missing_bytes = f->plan.missing_bytes;
	} else {
		f->snap.state = FETCH_DONE;
		f->snap.done = f->snap.total;
		f->snap.file[0] = '\0';
		scopy(f->snap.snapshot, sizeof f->snap.snapshot, snapdir);
	}
	f->thread_done = 1;
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* Waits for the last step's thread; the caller holds no lock. */
static void join_worker(fetch *f)
{
	if (f->have_thread) {
		pthread_join(f->thread, NULL);
		f->have_thread = 0;
	}
}

/* A step's thread still runs (a cancelled file list request included). */
static int busy(fetch *f)
{
	pthread_mutex_lock(&f->lock);
	int b = f->have_thread && !f->thread_done;
	pthread_mutex_unlock(&f->lock);
	return b;
}

static void start_step(fetch *f, int step)
{
	join_worker(f);
	atomic_store(&f->cancel, 0);
	f->step = step;
	f->t0 = mono_seconds();
	pthread_mutex_lock(&f->lock);
	f->thread_done = 0;
	f->snap.state = step;
	f->snap.msg[0] = '\0';
	f->snap.file[0] = '\0';
	f->snap.rate = 0;
	f->snap.eta = -1;
	f->snap.elapsed_s = 0;
	if (step == FETCH_RUNNING) {
		f->snap.total = f->plan.total_bytes;
		f->snap.done = f->plan.total_bytes - f->plan.missing_bytes;
	}
	pthread_mutex_unlock(&f->lock);
	if (pthread_create(&f->thread, NULL, worker, f) != 0) {
		pthread_mutex_lock(&f->lock);
		f->snap.state = FETCH_FAILED;
		scopy(f->snap.msg, sizeof f->snap.msg, "cannot start the download thread");
		pthread_mutex_unlock(&f->lock);
		return;
	}
	f->have_thread = 1;
}

void fetch_plan(fetch *f, const char *repo)
{
	if (busy(f))
		return;
	join_worker(f);
	pthread_mutex_lock(&f->lock);
	memset(&f->snap, 0, sizeof f->snap);
	scopy(f->snap.repo, sizeof f->snap.repo, repo);
	pthread_mutex_unlock(&f->lock);
	start_step(f, FETCH_PLANNING);
}

void fetch_start(fetch *f)
{
	pthread_mutex_lock(&f->lock);
	int planned = f->snap.state == FETCH_PLANNED;
	pthread_mutex_unlock(&f->lock);
	if (planned && !busy(f))
		start_step(f, FETCH_RUNNING);
}

void fetch_cancel(fetch *f)
{
	atomic_store(&f->cancel, 1);
	pthread_mutex_lock(&f->lock);
	/* A file list request cannot be interrupted: its answer is dropped.
	 * A plan nobody wants is dropped too. */
	if (f->snap.state == FETCH_PLANNING || f->snap.state == FETCH_PLANNED)
		f->snap.state = FETCH_CANCELLED;
	pthread_mutex_unlock(&f->lock);
}

void fetch_snapshot(fetch *f, struct fetch_snapshot *s)
{
	pthread_mutex_lock(&f->lock);
	*s = f->snap;
	if (s->state == FETCH_RUNNING)
		s->elapsed_s = mono_seconds() - f->t0;
	pthread_mutex_unlock(&f->lock);
}

void fetch_destroy(fetch *f)
{
	if (!f)
		return;
	atomic_store(&f->cancel, 1);
	join_worker(f);
	if (f->have_plan)
		dl_plan_free(&f->plan);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
