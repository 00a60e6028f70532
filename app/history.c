/* history.c - the SQLite store of takes (see history.h for the guarantees). */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/audio_file.h"
#include "app/history.h"
#include "app/util.h"
#include "app/xdg.h"

struct history {
	sqlite3 *db;
	char dir[1024];
	char takes[1100];
	unsigned counter; /* temporary file names of this connection */
	int64_t data_version; /* last PRAGMA data_version seen, -1 = none yet */
};

/* Files older than this with no row are left-overs of a crash; younger ones
 * may belong to another instance that is saving right now. */
#define ORPHAN_AGE_S 3600

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS takes ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" created INTEGER NOT NULL,"
	" prompt TEXT NOT NULL,"
	" name TEXT NOT NULL DEFAULT '',"
	" note TEXT NOT NULL DEFAULT '',"
	" favourite INTEGER NOT NULL DEFAULT 0,"
	" duration REAL NOT NULL, frames INTEGER NOT NULL,"
	" guidance REAL NOT NULL, temperature REAL NOT NULL, top_k INTEGER NOT NULL, top_p REAL NOT NULL,"
	" seed INTEGER NOT NULL, greedy INTEGER NOT NULL,"
	" take_index INTEGER NOT NULL, take_count INTEGER NOT NULL,"
	" model TEXT NOT NULL, model_rev TEXT NOT NULL, backend TEXT NOT NULL,"
	" sample_rate INTEGER NOT NULL, channels INTEGER NOT NULL, n_samples INTEGER NOT NULL,"
	" n_codebooks INTEGER NOT NULL,"
	" t5_seconds REAL NOT NULL, decode_seconds REAL NOT NULL, encodec_seconds REAL NOT NULL,"
	" total_seconds REAL NOT NULL);"
	"CREATE INDEX IF NOT EXISTS takes_created ON takes(created);";

#define TAKE_COLUMNS                                                                                  \
	"id, created, prompt, name, note, favourite, duration, frames, guidance, temperature, top_k, top_p," \
	" seed, greedy, take_index, take_count, model, model_rev, backend, sample_rate, channels, n_samples," \
	" n_codebooks, t5_seconds, decode_seconds, encodec_seconds, total_seconds"

static int db_err(history *h, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s/history.db: %s: %s", h->dir, what, sqlite3_errmsg(h->db));
	return -1;
}

static int exec(history *h, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	if (sqlite3_exec(h->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s/history.db: %s", h->dir, msg ? msg : sqlite3_errmsg(h->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void take_path(const history *h, int64_t id, const char *ext, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%lld.%s", h->takes, (long long)id, ext);
}

static int row_exists(history *h, int64_t id)
{
	sqlite3_stmt *st;
	int found = 1; /* when in doubt, keep the file */
	if (sqlite3_prepare_v2(h->db, "SELECT 1 FROM takes WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return 1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		found = 0;
	sqlite3_finalize(st);
	return found;
}

/* Removes what a crashed save left behind. */
static void remove_orphans(history *h)
{
	DIR *d = opendir(h->takes);
	if (!d)
		return;
	struct dirent *e;
	time_t now = time(NULL);
	char path[1400];
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || e->d_name[1] == '.'))
			continue;
		snprintf(path, sizeof path, "%s/%s", h->takes, e->d_name);
		struct stat st;
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || now - st.st_mtime < ORPHAN_AGE_S)
			continue;
		char *end;
		long long id = strtoll(e->d_name, &end, 10);
		int orphan;
		if (e->d_name[0] == '.' && strstr(e->d_name, ".new-"))
			orphan = 1;
		else if (end != e->d_name && (!strcmp(end, ".flac") || !strcmp(end, ".codes")))
			orphan = !row_exists(h, id);
		else
			orphan = 0;
		if (orphan)
			unlink(path);
	}
	closedir(d);
}

int history_open(history **out, const char *dir, char *err, size_t errlen)
{
	*out = NULL;
	history *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (dir) {
		snprintf(h->dir, sizeof h->dir, "%s", dir);
		if (xdg_mkdirs(h->dir, 0700, err, errlen)) {
			free(h);
			return -1;
		}
	} else if (xdg_app_dir_make(XDG_DATA, h->dir, sizeof h->dir, err, errlen)) {
		free(h);
		return -1;
	}
	snprintf(h->takes, sizeof h->takes, "%s/takes", h->dir);
	if (xdg_mkdirs(h->takes, 0700, err, errlen)) {
		free(h);
		return -1;
	}
	char path[1100];
	snprintf(path, sizeof path, "%s/history.db", h->dir);
	if (sqlite3_open_v2(path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
	                    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path, h->db ? sqlite3_errmsg(h->db) : "out of memory");
		sqlite3_close(h->db);
		free(h);
		return -1;
	}
	sqlite3_busy_timeout(h->db, 10000);
	if (exec(h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err, errlen) ||
	    exec(h, "BEGIN IMMEDIATE", err, errlen)) {
		history_close(h);
		return -1;
	}
	if (exec(h, schema, err, errlen) || exec(h, "PRAGMA user_version=1; COMMIT", err, errlen)) {
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
		history_close(h);
		return -1;
	}
	remove_orphans(h);
	h->data_version = -1;
	*out = h;
	return 0;
}

void history_close(history *h)
{
	if (!h)
		return;
	sqlite3_close(h->db);
	free(h);
}

const char *history_dir(const history *h)
{
	return h->dir;
}

static int write_codes(const char *path, const int32_t *codes, int k, int f, char *err, size_t errlen)
{
	size_t n = (size_t)k * (size_t)f;
	size_t len = 16 + 4 * n;
	unsigned char *buf = malloc(len);
	if (!buf) {
		snprintf(err, errlen, "out of memory writing %s", path);
		return -1;
	}
	memcpy(buf, "MGCODES1", 8);
	uint32_t v[2] = {(uint32_t)k, (uint32_t)f};
	for (int j = 0; j < 2; j++)
		for (int b = 0; b < 4; b++)
			buf[8 + 4 * j + b] = (unsigned char)(v[j] >> (8 * b));
	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 4; b++)
			buf[16 + 4 * i + b] = (unsigned char)((uint32_t)codes[i] >> (8 * b));
	int rc = write_file_atomic(path, buf, len, err, errlen);
	free(buf);
	return rc;
}

int history_add(history *h, struct history_take *t, const float *pcm, const int32_t *codes, char *err,
                size_t errlen)
{
	char tmp_audio[1400], tmp_codes[1400], audio[1400], codes_path[1400];
	unsigned c = h->counter++;
	snprintf(tmp_audio, sizeof tmp_audio, "%s/.new-%ld-%u.flac", h->takes, (long)getpid(), c);
	snprintf(tmp_codes, sizeof tmp_codes, "%s/.new-%ld-%u.codes", h->takes, (long)getpid(), c);

	char params[256];
	snprintf(params, sizeof params, "duration %.3g s, guidance %g, temperature %g, top-k %d, top-p %g, seed %llu",
	         t->duration, t->guidance, t->temperature, t->top_k, t->top_p, (unsigned long long)t->seed);
	const struct audio_meta meta[] = {
		{"title", t->prompt},
		{"comment", params},
		{"software", "musicgen-tui " PACKAGE_VERSION},
		{"artist", t->model},
	};
	if (audio_file_write(tmp_audio, AUDIO_FORMAT_FLAC24, pcm, t->channels, t->n_samples, t->sample_rate, meta,
	                     4, err, errlen))
		return -1;
	if (write_codes(tmp_codes, codes, codes ? t->n_codebooks : 0, codes ? t->frames : 0, err, errlen)) {
		unlink(tmp_audio);
		return -1;
	}

	t->created = (int64_t)time(NULL);
	sqlite3_stmt *st = NULL;
	if (exec(h, "BEGIN IMMEDIATE", err, errlen))
		goto fail_files;
	if (sqlite3_prepare_v2(h->db,
	                       "INSERT INTO takes (created, prompt, name, note, favourite, duration, frames,"
	                       " guidance, temperature, top_k, top_p, seed, greedy, take_index, take_count,"
	                       " model, model_rev, backend, sample_rate, channels, n_samples, n_codebooks,"
	                       " t5_seconds, decode_seconds, encodec_seconds, total_seconds) VALUES"
	                       " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	                       -1, &st, NULL) != SQLITE_OK) {
		db_err(h, "preparing the insert", err, errlen);
		goto fail_tx;
	}
	int i = 1;
	sqlite3_bind_int64(st, i++, t->created);
	sqlite3_bind_text(st, i++, t->prompt, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, i++, t->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, i++, t->note, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, i++, t->favourite);
	sqlite3_bind_double(st, i++, t->duration);
	sqlite3_bind_int(st, i++, t->frames);
	sqlite3_bind_double(st, i++, t->guidance);
	sqlite3_bind_double(st, i++, t->temperature);
	sqlite3_bind_int(st, i++, t->top_k);
	sqlite3_bind_double(st, i++, t->top_p);
	sqlite3_bind_int64(st, i++, (int64_t)t->seed); /* read back as uint64 */
	sqlite3_bind_int(st, i++, t->greedy);
	sqlite3_bind_int(st, i++, t->take_index);
	sqlite3_bind_int(st, i++, t->take_count);
	sqlite3_bind_text(st, i++, t->model, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, i++, t->model_rev, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, i++, t->backend, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, i++, t->sample_rate);
	sqlite3_bind_int(st, i++, t->channels);
	sqlite3_bind_int64(st, i++, t->n_samples);
	sqlite3_bind_int(st, i++, t->n_codebooks);
	sqlite3_bind_double(st, i++, t->t5_seconds);
	sqlite3_bind_double(st, i++, t->decode_seconds);
	sqlite3_bind_double(st, i++, t->encodec_seconds);
	sqlite3_bind_double(st, i++, t->total_seconds);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(h, "inserting the take", err, errlen);
		goto fail_tx;
	}
	sqlite3_finalize(st);
	st = NULL;
	t->id = sqlite3_last_insert_rowid(h->db);
	take_path(h, t->id, "flac", audio, sizeof audio);
	take_path(h, t->id, "codes", codes_path, sizeof codes_path);
	if (rename(tmp_audio, audio) != 0 || rename(tmp_codes, codes_path) != 0) {
		snprintf(err, errlen, "cannot move the take into %s: %s", h->takes, strerror(errno));
		unlink(audio);
		goto fail_tx;
	}
	fsync_dir(h->takes);
	if (exec(h, "COMMIT", err, errlen)) {
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
		unlink(audio);
		unlink(codes_path);
		return -1;
	}
	snprintf(t->file, sizeof t->file, "%s", audio);
	return 0;

fail_tx:
	sqlite3_finalize(st);
	sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
fail_files:
	unlink(tmp_audio);
	unlink(tmp_codes);
	return -1;
}

int history_changed(history *h)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	if (sqlite3_prepare_v2(h->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	int changed = v != h->data_version;
	h->data_version = v;
	return changed;
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t dstlen)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	snprintf(dst, dstlen, "%s", s ? (const char *)s : "");
}

static void read_row(history *h, sqlite3_stmt *st, struct history_take *t)
{
	int i = 0;
	memset(t, 0, sizeof *t);
	t->id = sqlite3_column_int64(st, i++);
	t->created = sqlite3_column_int64(st, i++);
	copy_col(st, i++, t->prompt, sizeof t->prompt);
	copy_col(st, i++, t->name, sizeof t->name);
	copy_col(st, i++, t->note, sizeof t->note);
	t->favourite = sqlite3_column_int(st, i++);
	t->duration = sqlite3_column_double(st, i++);
	t->frames = sqlite3_column_int(st, i++);
	t->guidance = sqlite3_column_double(st, i++);
	t->temperature = sqlite3_column_double(st, i++);
	t->top_k = sqlite3_column_int(st, i++);
	t->top_p = sqlite3_column_double(st, i++);
	t->seed = (uint64_t)sqlite3_column_int64(st, i++);
	t->greedy = sqlite3_column_int(st, i++);
	t->take_index = sqlite3_column_int(st, i++);
	t->take_count = sqlite3_column_int(st, i++);
	copy_col(st, i++, t->model, sizeof t->model);
	copy_col(st, i++, t->model_rev, sizeof t->model_rev);
	copy_col(st, i++, t->backend, sizeof t->backend);
	t->sample_rate = sqlite3_column_int(st, i++);
	t->channels = sqlite3_column_int(st, i++);
	t->n_samples = sqlite3_column_int64(st, i++);
	t->n_codebooks = sqlite3_column_int(st, i++);
	t->t5_seconds = sqlite3_column_double(st, i++);
	t->decode_seconds = sqlite3_column_double(st, i++);
	t->encodec_seconds = sqlite3_column_double(st, i++);
	t->total_seconds = sqlite3_column_double(st, i++);
	take_path(h, t->id, "flac", t->file, sizeof t->file);
}

int history_list(history *h, const char *filter, int favourites_only, struct history_take **out, int *n,
                 char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	const char *sql = "SELECT " TAKE_COLUMNS " FROM takes WHERE (?1 = '' OR instr(lower(prompt), lower(?1)) > 0"
	                  " OR instr(lower(name), lower(?1)) > 0 OR instr(lower(note), lower(?1)) > 0)"
	                  " AND (?2 = 0 OR favourite != 0) ORDER BY created DESC, id DESC";
	if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_err(h, "listing takes", err, errlen);
	sqlite3_bind_text(st, 1, filter ? filter : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, favourites_only);
	struct history_take *v = NULL;
	int cnt = 0, cap = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			struct history_take *nv = realloc(v, sizeof *v * (size_t)cap);
			if (!nv) {
				free(v);
				sqlite3_finalize(st);
				snprintf(err, errlen, "out of memory listing takes");
				return -1;
			}
			v = nv;
		}
		read_row(h, st, &v[cnt++]);
	}
	if (rc != SQLITE_DONE) {
		db_err(h, "listing takes", err, errlen);
		sqlite3_finalize(st);
		free(v);
		return -1;
	}
	sqlite3_finalize(st);
	*out = v;
	*n = cnt;
	return 0;
}

int history_get(history *h, int64_t id, struct history_take *out, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(h->db, "SELECT " TAKE_COLUMNS " FROM takes WHERE id = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(h, "reading a take", err, errlen);
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_row(h, st, out);
		sqlite3_finalize(st);
		return 0;
	}
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		snprintf(err, errlen, "no take with id %lld in %s/history.db", (long long)id, h->dir);
		return HISTORY_NOT_FOUND;
	}
	db_err(h, "reading a take", err, errlen);
	sqlite3_finalize(st);
	return -1;
}

/* Runs an UPDATE/DELETE with one id parameter (and optional text/int ones). */
static int change(history *h, const char *sql, int64_t id, const char *a, const char *b, int ival, char *err,
                  size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_err(h, "changing a take", err, errlen);
	sqlite3_bind_int64(st, 1, id);
	if (a)
		sqlite3_bind_text(st, 2, a, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_int(st, 2, ival);
	if (b)
		sqlite3_bind_text(st, 3, b, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_err(h, "changing a take", err, errlen);
	if (sqlite3_changes(h->db) == 0) {
		snprintf(err, errlen, "no take with id %lld in %s/history.db", (long long)id, h->dir);
		return HISTORY_NOT_FOUND;
	}
	return 0;
}

int history_delete(history *h, int64_t id, char *err, size_t errlen)
{
	int rc = change(h, "DELETE FROM takes WHERE id = ?1 AND ?2 = 0", id, NULL, NULL, 0, err, errlen);
	if (rc)
		return rc;
	/* The row is gone first, so a crash here only leaves orphan files. */
	char p[1400];
	take_path(h, id, "flac", p, sizeof p);
	unlink(p);
	take_path(h, id, "codes", p, sizeof p);
	unlink(p);
	return 0;
}

int history_set_favourite(history *h, int64_t id, int favourite, char *err, size_t errlen)
{
	return change(h, "UPDATE takes SET favourite = ?2 WHERE id = ?1", id, NULL, NULL, favourite ? 1 : 0, err,
	              errlen);
}

int history_set_name(history *h, int64_t id, const char *name, const char *note, char *err, size_t errlen)
{
	return change(h, "UPDATE takes SET name = ?2, note = ?3 WHERE id = ?1", id, name ? name : "",
	              note ? note : "", 0, err, errlen);
}

int history_load_audio(history *h, const struct history_take *t, float **pcm, int *channels, int64_t *n,
                       int *rate, char *err, size_t errlen)
{
	char p[1400];
	take_path(h, t->id, "flac", p, sizeof p);
	return audio_file_read(p, pcm, channels, n, rate, err, errlen);
}

int history_load_codes(history *h, int64_t id, int32_t **codes, int *n_codebooks, int *frames, char *err,
                       size_t errlen)
{
	char p[1400];
	take_path(h, id, "codes", p, sizeof p);
	FILE *f = fopen(p, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot read %s: %s", p, strerror(errno));
		return -1;
	}
	unsigned char hdr[16];
	if (fread(hdr, 1, 16, f) != 16 || memcmp(hdr, "MGCODES1", 8) != 0) {
		fclose(f);
		snprintf(err, errlen, "%s is not a codes file", p);
		return -1;
	}
	uint32_t v[2];
	for (int j = 0; j < 2; j++)
		v[j] = (uint32_t)hdr[8 + 4 * j] | (uint32_t)hdr[9 + 4 * j] << 8 | (uint32_t)hdr[10 + 4 * j] << 16 |
		       (uint32_t)hdr[11 + 4 * j] << 24;
	if (v[0] > 4096 || v[1] > 10000000) {
		fclose(f);
		snprintf(err, errlen, "%s: implausible size %u x %u", p, v[0], v[1]);
		return -1;
	}
	size_t cnt = (size_t)v[0] * v[1];
	unsigned char *raw = malloc(4 * cnt + 1);
	int32_t *c = malloc(4 * cnt + 4);
	if (!raw || !c || fread(raw, 4, cnt, f) != cnt) {
		free(raw);
		free(c);
		fclose(f);
		snprintf(err, errlen, "%s is truncated", p);
		return -1;
	}
	fclose(f);
	for (size_t i = 0; i < cnt; i++)
		c[i] = (int32_t)((uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 | (uint32_t)raw[4 * i + 2] << 16 |
		                 (uint32_t)raw[4 * i + 3] << 24);
	free(raw);
	*codes = c;
	*n_codebooks = (int)v[0];
	*frames = (int)v[1];
	return 0;
}

int history_export(history *h, const struct history_take *t, const char *path, int format, char *err,
                   size_t errlen)
{
	float *pcm;
	int ch, rate;
	int64_t n;
	if (history_load_audio(h, t, &pcm, &ch, &n, &rate, err, errlen))
		return -1;
	char params[800], date[32];
	snprintf(params, sizeof params,
	         "duration %.3g s, guidance %g, temperature %g, top-k %d, top-p %g, seed %llu, model %s%s%s, take %lld",
	         t->duration, t->guidance, t->temperature, t->top_k, t->top_p, (unsigned long long)t->seed, t->model,
	         t->model_rev[0] ? "@" : "", t->model_rev, (long long)t->id);
	time_t c = (time_t)t->created;
	struct tm tm;
	gmtime_r(&c, &tm);
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
	const struct audio_meta meta[] = {
		{"title", t->name[0] ? t->name : t->prompt},
		{"comment", params},
		{"software", "musicgen-tui " PACKAGE_VERSION},
		{"artist", t->model},
		{"date", date},
	};
	int rc = audio_file_write(path, format, pcm, ch, n, rate, meta, 5, err, errlen);
	free(pcm);
	return rc;
}
