/* test_history.c - the take store: add/list/get/filter/favourite/name/delete,
 * codes round trip, export, two writers at once, kill -9 during saves. */
#include "autoconfig.h"

#include <math.h>
#include <signal.h>
#include <sndfile.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "app/history.h"
#include "tests/tap.h"

enum { RATE = 32000, K = 4 };

static void fill_take(struct history_take *t, const char *prompt, int frames, uint64_t seed)
{
	memset(t, 0, sizeof *t);
	snprintf(t->prompt, sizeof t->prompt, "%s", prompt);
	t->duration = frames / 50.0;
	t->frames = frames;
	t->guidance = 3;
	t->temperature = 1;
	t->top_k = 250;
	t->top_p = 1;
	t->seed = seed;
	t->take_count = 1;
	snprintf(t->model, sizeof t->model, "test/tiny");
	snprintf(t->model_rev, sizeof t->model_rev, "abc123");
	snprintf(t->backend, sizeof t->backend, "cpu");
	t->sample_rate = RATE;
	t->channels = 1;
	t->n_samples = (int64_t)frames * 640;
	t->n_codebooks = K;
	t->total_seconds = 1.5;
}

static int add(history *h, const char *prompt, int frames, uint64_t seed, int64_t *id, char *err, size_t errlen)
{
	struct history_take t;
	fill_take(&t, prompt, frames, seed);
	float *pcm = malloc(sizeof(float) * (size_t)t.n_samples);
	int32_t *codes = malloc(sizeof(int32_t) * K * (size_t)frames);
	for (int64_t i = 0; i < t.n_samples; i++)
		pcm[i] = 0.5f * sinf((float)i * 0.05f + (float)seed);
	for (int i = 0; i < K * frames; i++)
		codes[i] = (int32_t)((i * 7 + (int)seed) % 2048);
	int rc = history_add(h, &t, pcm, codes, err, errlen);
	if (id)
		*id = t.id;
	free(pcm);
	free(codes);
	return rc;
}

/* Every row has complete files: audio of the stored length and codes. */
static int check_consistent(const char *dir, int *rows)
{
	char err[512], path[600];
	history *h;
	*rows = 0;
	if (history_open(&h, dir, err, sizeof err)) {
		tap_diag("%s", err);
		return 0;
	}
	struct history_take *v;
	int n, ok = 1;
	if (history_list(h, NULL, 0, &v, &n, err, sizeof err)) {
		tap_diag("%s", err);
		history_close(h);
		return 0;
	}
	for (int i = 0; i < n && ok; i++) {
		SF_INFO info = {0};
		SNDFILE *sf = sf_open(v[i].file, SFM_READ, &info);
		if (!sf || info.frames != v[i].n_samples) {
			tap_diag("take %lld: audio %s unreadable or wrong length", (long long)v[i].id, v[i].file);
			ok = 0;
		}
		if (sf)
			sf_close(sf);
		int32_t *codes;
		int k, f;
		if (ok && history_load_codes(h, v[i].id, &codes, &k, &f, err, sizeof err) == 0) {
			ok = k == K && f == v[i].frames;
			free(codes);
		} else if (ok) {
			tap_diag("take %lld: %s", (long long)v[i].id, err);
			ok = 0;
		}
	}
	free(v);
	history_close(h);
	sqlite3 *db;
	snprintf(path, sizeof path, "%s/history.db", dir);
	if (sqlite3_open(path, &db) == SQLITE_OK) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW) {
			const char *r = (const char *)sqlite3_column_text(st, 0);
			if (!r || strcmp(r, "ok")) {
				tap_diag("integrity_check: %s", r ? r : "(null)");
				ok = 0;
			}
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	*rows = n;
	return ok;
}

int main(void)
{
	char tmp[] = "/tmp/mg-history-XXXXXX", err[512], path[600];
	if (!mkdtemp(tmp))
		return 1;
	history *h;
	tap_ok(history_open(&h, tmp, err, sizeof err) == 0, "open a new history");
	int64_t id1, id2, id3;
	tap_ok(add(h, "80s pop track with bassy drums", 25, 1, &id1, err, sizeof err) == 0, "add take 1");
	tap_ok(add(h, "calm piano", 10, 2, &id2, err, sizeof err) == 0, "add take 2");
	tap_ok(add(h, "Rock with loud guitars", 5, 18446744073709551615ULL, &id3, err, sizeof err) == 0, "add take 3 (max seed)");
	tap_ok(id1 < id2 && id2 < id3, "ids increase");

	struct history_take *v;
	int n;
	tap_ok(history_list(h, NULL, 0, &v, &n, err, sizeof err) == 0 && n == 3 && v[0].id == id3 && v[2].id == id1,
	       "list: 3 takes, newest first");
	tap_ok(v[0].seed == 18446744073709551615ULL && v[1].n_samples == 6400 && !strcmp(v[1].model_rev, "abc123") &&
	               v[1].created > 0,
	       "fields round trip");
	free(v);
	tap_ok(history_list(h, "PIANO", 0, &v, &n, err, sizeof err) == 0 && n == 1 && v[0].id == id2,
	       "filter is a case-insensitive substring");
	free(v);
	tap_ok(history_list(h, "50% off", 0, &v, &n, err, sizeof err) == 0 && n == 0, "filter with %% matches literally");
	free(v);

	tap_ok(history_set_favourite(h, id1, 1, err, sizeof err) == 0, "favourite");
	tap_ok(history_list(h, NULL, 1, &v, &n, err, sizeof err) == 0 && n == 1 && v[0].id == id1 && v[0].favourite,
	       "favourites only");
	free(v);
	tap_ok(history_set_name(h, id2, "Sunday", "keep this one", err, sizeof err) == 0, "name and note");
	struct history_take t;
	tap_ok(history_get(h, id2, &t, err, sizeof err) == 0 && !strcmp(t.name, "Sunday") && !strcmp(t.note, "keep this one"),
	       "get returns name and note");
	tap_ok(history_list(h, "sunday", 0, &v, &n, err, sizeof err) == 0 && n == 1, "filter matches names");
	free(v);
	tap_ok(history_get(h, 999, &t, err, sizeof err) == HISTORY_NOT_FOUND && strstr(err, "999"), "missing id: %s", err);
	tap_ok(history_set_favourite(h, 999, 1, err, sizeof err) == HISTORY_NOT_FOUND, "favourite of a missing id");

	int32_t *codes;
	int k, f;
	tap_ok(history_load_codes(h, id1, &codes, &k, &f, err, sizeof err) == 0 && k == K && f == 25 && codes[0] == 1 &&
	               codes[K * 25 - 1] == (int32_t)(((K * 25 - 1) * 7 + 1) % 2048),
	       "codes round trip");
	free(codes);

	float *pcm;
	int ch, rate;
	int64_t ns;
	tap_ok(history_get(h, id1, &t, err, sizeof err) == 0 &&
	               history_load_audio(h, &t, &pcm, &ch, &ns, &rate, err, sizeof err) == 0 && ns == 25 * 640 &&
	               rate == RATE && ch == 1 && fabsf(pcm[10] - 0.5f * sinf(10 * 0.05f + 1)) < 1e-5f,
	       "audio round trip (24-bit FLAC)");
	free(pcm);

	snprintf(path, sizeof path, "%s/out.wav", tmp);
	tap_ok(history_export(h, &t, path, 0, err, sizeof err) == 0, "export to WAV");
	SF_INFO info = {0};
	SNDFILE *sf = sf_open(path, SFM_READ, &info);
	tap_ok(sf && info.frames == 25 * 640 && info.samplerate == RATE &&
	               (info.format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16 && (info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAV,
	       "exported WAV: 16-bit, right rate and length");
	const char *title = sf ? sf_get_string(sf, SF_STR_TITLE) : NULL;
	tap_ok(title && strstr(title, "80s pop"), "exported WAV carries the prompt");
	if (sf)
		sf_close(sf);

	tap_ok(history_delete(h, id2, err, sizeof err) == 0, "delete");
	tap_ok(history_get(h, id2, &t, err, sizeof err) == HISTORY_NOT_FOUND, "deleted take is gone");
	snprintf(path, sizeof path, "%s/takes/%lld.flac", tmp, (long long)id2);
	tap_ok(access(path, F_OK) != 0, "its audio file is gone");
	tap_ok(history_delete(h, id2, err, sizeof err) == HISTORY_NOT_FOUND, "deleting twice says not found");
	int64_t id4;
	tap_ok(add(h, "after delete", 3, 4, &id4, err, sizeof err) == 0 && id4 > id3, "ids are never reused");
	history_close(h);

	/* A stale orphan file (no row, old) is removed on open; a fresh one is kept. */
	char old[600], fresh[600];
	snprintf(old, sizeof old, "%s/takes/99999.flac", tmp);
	snprintf(fresh, sizeof fresh, "%s/takes/99998.flac", tmp);
	fclose(fopen(old, "w"));
	fclose(fopen(fresh, "w"));
	struct utimbuf ut = {time(NULL) - 7200, time(NULL) - 7200};
	utime(old, &ut);
	tap_ok(history_open(&h, tmp, err, sizeof err) == 0, "reopen");
	history_close(h);
	tap_ok(access(old, F_OK) != 0 && access(fresh, F_OK) == 0, "stale orphan removed, fresh file kept");
	unlink(fresh);

	/* Changes made by another connection are noticed. */
	history *a, *b2;
	tap_ok(history_open(&a, tmp, err, sizeof err) == 0 && history_open(&b2, tmp, err, sizeof err) == 0, "two connections");
	history_changed(a);
	tap_ok(history_changed(a) == 0, "no change seen without a write");
	int64_t idc;
	add(b2, "from the other instance", 2, 9, &idc, err, sizeof err);
	tap_ok(history_changed(a) == 1, "a take added by the other connection is noticed");
	tap_ok(history_changed(a) == 0, "... once");
	history_close(a);
	history_close(b2);

	/* Two writers at once. */
	pid_t kids[2];
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			history *hh;
			char e[512];
			if (history_open(&hh, tmp, e, sizeof e))
				_exit(1);
			for (int j = 0; j < 10; j++)
				if (add(hh, "concurrent", 5, (uint64_t)(100 * i + j), NULL, e, sizeof e)) {
					fprintf(stderr, "%s\n", e);
					_exit(1);
				}
			history_close(hh);
			_exit(0);
		}
	}
	int okw = 1;
	for (int i = 0; i < 2; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		okw &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	int rows = 0;
	tap_ok(okw, "two processes each add 10 takes at once");
	int consistent = check_consistent(tmp, &rows);
	tap_ok(consistent && rows == 4 + 20, "all %d rows consistent", rows);

	/* kill -9 in the middle of saves. */
	int all_ok = 1, before = rows;
	srand(12345);
	for (int round = 0; round < 8; round++) {
		pid_t p = fork();
		if (p == 0) {
			history *hh;
			char e[512];
			if (history_open(&hh, tmp, e, sizeof e))
				_exit(1);
			for (;;)
				add(hh, "killed mid-save", 750, 7, NULL, e, sizeof e);
		}
		struct timespec ts = {0, 20000000L + (rand() % 200) * 1000000L};
		nanosleep(&ts, NULL);
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		int r;
		if (!check_consistent(tmp, &r))
			all_ok = 0;
		rows = r;
	}
	tap_ok(all_ok, "after 8 kill -9 during saves: integrity ok, every row has complete files (%d -> %d rows)", before, rows);

	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmp);
	return tap_done();
}
