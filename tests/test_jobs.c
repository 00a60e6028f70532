/* test_jobs.c - the engine thread on the tiny test model: model loading
 * (good and bad path), a generation stored in the history with its own seed,
 * cancel (nothing saved), the queue (order, dropping a queued job), invalid
 * knobs refused, and events delivered through the wake-up fd. */
#include "autoconfig.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/history.h"
#include "app/jobs.h"
#include "tests/tap.h"

/* Waits for the next event (up to `seconds`), polling the wake fd like the UI. */
static int next_event(jobs *j, struct job_event *ev, int seconds)
{
	for (int waited = 0; waited < seconds * 10; waited++) {
		if (jobs_next_event(j, ev))
			return 1;
		struct pollfd pf = {.fd = jobs_wake_fd(j), .events = POLLIN};
		if (poll(&pf, 1, 100) > 0)
			jobs_drain_wake(j);
	}
	return 0;
}

/* Skips STARTED/NOTICE events; returns the first other one. */
static int wait_kind(jobs *j, struct job_event *ev, int seconds)
{
	while (next_event(j, ev, seconds)) {
		if (ev->kind != JOB_EV_STARTED && ev->kind != JOB_EV_NOTICE)
			return 1;
		free(ev->pcm);
	}
	return 0;
}

static int count_takes(const char *dir)
{
	char err[512];
	history *h;
	struct history_take *v;
	int n = -1;
	if (history_open(&h, dir, err, sizeof err))
		return -1;
	if (history_list(h, NULL, 0, &v, &n, err, sizeof err) == 0)
		free(v);
	history_close(h);
	return n;
}

int main(void)
{
	const char *ref = tap_require_ref();
	char model[4200], tmp[] = "/tmp/mg-jobs-XXXXXX", err[512];
	snprintf(model, sizeof model, "%s/models/tiny-a", ref);
	if (!mkdtemp(tmp))
		return 1;
	jobs *j;
	tap_ok(jobs_start(&j, tmp, err, sizeof err) == 0, "engine thread starts");
	struct job_event ev;
	struct jobs_snapshot s;

	jobs_load_model(j, "/nonexistent/model-dir", 0, -1, 1);
	tap_ok(wait_kind(j, &ev, 20) && ev.kind == JOB_EV_MODEL_FAILED && strstr(ev.msg, "nonexistent"),
	       "a bad model path fails with a message naming it: %s", ev.msg);
	jobs_snapshot(j, &s);
	tap_ok(s.model_state == JOBS_MODEL_FAILED, "state: failed");

	struct knobs k;
	knobs_default(&k);
	k.duration = 0.5;
	k.seed = 42;
	k.seed_random = 0;
	int64_t id;
	tap_ok(jobs_submit(j, "", &k, &id, err, sizeof err) == 0, "a job is accepted without a model");
	tap_ok(wait_kind(j, &ev, 20) && ev.kind == JOB_EV_FAILED && strstr(ev.msg, "no model"),
	       "... and fails saying there is no model: %s", ev.msg);

	jobs_load_model(j, model, 0, -1, 1);
	tap_ok(wait_kind(j, &ev, 60) && ev.kind == JOB_EV_MODEL_LOADED, "tiny-a loads: %s", ev.msg);
	jobs_snapshot(j, &s);
	tap_ok(s.model_state == JOBS_MODEL_READY && s.sample_rate > 0 && s.frame_rate > 0 && s.max_frames > 0,
	       "snapshot: %d Hz, %.1f frames/s, at most %d frames", s.sample_rate, s.frame_rate, s.max_frames);

	struct knobs bad = k;
	bad.top_p = 1.5;
	tap_ok(jobs_submit(j, "", &bad, &id, err, sizeof err) != 0 && strstr(err, "top-p"), "invalid knobs refused: %s", err);

	k.count = 2;
	tap_ok(jobs_submit(j, "", &k, &id, err, sizeof err) == 0, "submit 2 takes of 0.5 s");
	int ok = wait_kind(j, &ev, 60);
	tap_ok(ok && ev.kind == JOB_EV_DONE && ev.job_id == id && ev.n_takes == 2, "done: %s", ev.msg);
	int64_t expect_n = (int64_t)(0.5 * s.frame_rate + 0.5) * (s.sample_rate / (int)(s.frame_rate + 0.5));
	tap_ok(ev.pcm && ev.sample_rate == s.sample_rate && ev.n_samples == expect_n,
	       "the event carries the first take's audio (%lld samples)", (long long)ev.n_samples);
	free(ev.pcm);
	history *h;
	struct history_take t0, t1;
	tap_ok(history_open(&h, tmp, err, sizeof err) == 0 && history_get(h, ev.take_ids[0], &t0, err, sizeof err) == 0 &&
	               history_get(h, ev.take_ids[1], &t1, err, sizeof err) == 0,
	       "both takes are in the history");
	tap_ok(t0.seed == 42 && t1.seed == 43 && t0.take_index == 0 && t1.take_index == 1 && t0.take_count == 2,
	       "each take keeps its own seed (%llu, %llu)", (unsigned long long)t0.seed, (unsigned long long)t1.seed);
	tap_ok(!strcmp(t0.model, "tiny-a") && t0.n_samples == expect_n && t0.frames > 0 && t0.n_codebooks > 0,
	       "model id, length and codes recorded");
	history_close(h);

	/* Longer than one window (asked before the model was known): cut to the longest. */
	struct knobs longk = k;
	longk.count = 1;
	longk.duration = (s.max_frames + 10) / s.frame_rate;
	tap_ok(jobs_submit(j, "", &longk, &id, err, sizeof err) == 0, "submit a job longer than one window");
	ok = wait_kind(j, &ev, 120);
	tap_ok(ok && ev.kind == JOB_EV_DONE && strstr(ev.msg, "cut to"), "it is cut to the longest take: %s", ev.msg);
	free(ev.pcm);
	history_open(&h, tmp, err, sizeof err);
	tap_ok(history_get(h, ev.take_ids[0], &t0, err, sizeof err) == 0 && t0.frames == s.max_frames,
	       "the stored take has the model's most frames (%d)", t0.frames);
	history_close(h);

	/* Cancel a long job: nothing is saved. The longest job there is (the
	 * most takes of the longest length); two short ones are queued as soon
	 * as it is taken up, so that they wait behind it even when a loaded
	 * host lets it run far before this thread looks again. */
	int before = count_takes(tmp);
	k.count = 16;
	k.duration = s.max_frames / s.frame_rate;
	tap_ok(jobs_submit(j, "", &k, &id, err, sizeof err) == 0, "submit a long job");
	int taken = 0;
	for (int i = 0; i < 20000 && !taken; i++) {
		jobs_snapshot(j, &s);
		taken = s.busy && s.job_id == id;
		if (!taken)
			usleep(100);
	}
	int64_t q1, q2;
	struct knobs small = k;
	small.count = 1;
	small.duration = 0.2;
	jobs_submit(j, "", &small, &q1, err, sizeof err);
	jobs_submit(j, "", &small, &q2, err, sizeof err);
	jobs_snapshot(j, &s);
	tap_ok(taken && s.busy && s.job_id == id, "it runs");
	tap_ok(s.n_queued == 2 && s.queued[0].job_id == q1 && s.queued[1].job_id == q2, "two jobs wait in order");
	tap_ok(jobs_cancel(j, q1) == 0, "drop the first queued job");
	jobs_snapshot(j, &s);
	tap_ok(s.n_queued == 1 && s.queued[0].job_id == q2, "one left in the queue");
	tap_ok(jobs_cancel(j, 0) == 0, "cancel the running job");
	tap_ok(wait_kind(j, &ev, 60) && ev.kind == JOB_EV_CANCELLED && ev.job_id == id, "cancelled event for job %lld",
	       (long long)ev.job_id);
	tap_ok(wait_kind(j, &ev, 60) && ev.kind == JOB_EV_DONE && ev.job_id == q2, "then the remaining queued job runs");
	free(ev.pcm);
	tap_ok(count_takes(tmp) == before + 1, "only that job's take was saved (%d -> %d)", before, count_takes(tmp));
	tap_ok(jobs_cancel(j, 12345) != 0, "cancelling an unknown job says so");

	/* Stop with a job running: no hang, no leak. */
	jobs_submit(j, "", &k, &id, err, sizeof err);
	usleep(50000);
	jobs_snapshot(j, &s);
	int was_busy = s.busy;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	jobs_stop(j);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double stop_s = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
	tap_ok(was_busy && stop_s < 2.0, "stop while generating returns at once (%.3f s)", stop_s);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmp);
	return tap_done();
}
