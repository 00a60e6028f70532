/* download.c - the hub client (libcurl) and the cache writer behind
 * `musicgen-tui download` and the TUI's download screen. See download.h. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "app/digest.h"
#include "app/download.h"
#include "app/util.h"
#include "engine/hub.h"

#define API_MAX_BYTES (16u << 20)  /* a file list larger than this is refused */
#define ERRBODY_MAX 4096           /* kept of an error response's body */

static int fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return status;
}

/* snprintf for paths and copied strings: silently shortened when too long (an
 * over-long path then simply fails to open, naming itself). */
static void strf(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

const char *dl_status_name(int status)
{
	switch (status) {
	case DL_OK: return "ok";
	case DL_ERR_USAGE: return "bad request";
	case DL_ERR_OFFLINE: return "offline";
	case DL_ERR_NOT_FOUND: return "not found";
	case DL_ERR_AUTH: return "access refused";
	case DL_ERR_NETWORK: return "network error";
	case DL_ERR_SERVER: return "server error";
	case DL_ERR_DISK: return "cannot write the cache";
	case DL_ERR_CHECKSUM: return "checksum mismatch";
	case DL_ERR_NO_WEIGHTS: return "no usable weights";
	case DL_ERR_CANCELLED: return "cancelled";
	case DL_ERR_BUSY: return "busy";
	}
	return "unknown error";
}

int dl_offline(void)
{
	const char *v = getenv("HF_HUB_OFFLINE");
	return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
	             !strcasecmp(v, "on"));
}

/* ---- which files the engine needs ---- */

static int is_weight_shard(const char *name)
{
	/* model-00001-of-00002.safetensors */
	size_t n = strlen(name);
	return !strncmp(name, "model-", 6) && n > 18 && !strcmp(name + n - 12, ".safetensors");
}

int dl_wanted_file(const char *name)
{
	static const char *const exact[] = {
		"config.json", "generation_config.json", "model.safetensors",
		"model.safetensors.index.json", "spiece.model", "tokenizer_config.json",
		"special_tokens_map.json", "added_tokens.json", "preprocessor_config.json",
		"tokenizer.json",
	};
	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (!strcmp(name, exact[i]))
			return 1;
	return is_weight_shard(name);
}

/* ---- settings from the environment ---- */

static void hub_endpoint(char *out, size_t len)
{
	const char *e = getenv("HF_ENDPOINT");
	strf(out, len, "%s", e && *e ? e : "https://huggingface.co");
	size_t n = strlen(out);
	while (n > 0 && out[n - 1] == '/')
		out[--n] = 0;
}

/* The token, or "" when there is none. */
static void hub_token(char *out, size_t len)
{
	const char *t = getenv("HF_TOKEN");
	out[0] = 0;
	if (!t || !*t)
		t = getenv("HUGGING_FACE_HUB_TOKEN");
	if (t && *t) {
		strf(out, len, "%s", t);
	} else {
		char path[PATH_MAX];
		const char *p = getenv("HF_TOKEN_PATH"), *home;
		if (p && *p)
			strf(path, sizeof path, "%s", p);
		else if ((home = getenv("HF_HOME")) && *home)
			strf(path, sizeof path, "%s/token", home);
		else if ((home = getenv("XDG_CACHE_HOME")) && *home)
			strf(path, sizeof path, "%s/huggingface/token", home);
		else
			strf(path, sizeof path, "%s/.cache/huggingface/token",
			         (home = getenv("HOME")) && *home ? home : ".");
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(out, (int)len, f))
				out[0] = 0;
			fclose(f);
		}
	}
	/* Trim surrounding white space and refuse anything that could break the header. */
	size_t s = 0, n = strlen(out);
	while (s < n && isspace((unsigned char)out[s]))
		s++;
	while (n > s && isspace((unsigned char)out[n - 1]))
		n--;
	memmove(out, out + s, n - s);
	out[n - s] = 0;
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			out[0] = 0;
			break;
		}
}

/* ---- small file helpers ---- */

static int mkdirs(const char *path)
{
	char tmp[PATH_MAX];
	if (strlen(path) >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, strlen(path) + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int64_t file_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return -1;
	return (int64_t)st.st_size;
}

/* A complete blob: present, and of the listed size when the list gave one. */
static int blob_complete(int64_t have, const struct dl_file *f)
{
	return have >= 0 && (!f->size_known || (uint64_t)have == f->size);
}

/* Partial data worth resuming. */
static int part_resumable(int64_t part, const struct dl_file *f)
{
	return part > 0 && (!f->size_known || (uint64_t)part < f->size);
}

static void dir_of(const char *path, char *out, size_t len)
{
	strf(out, len, "%s", path);
	char *s = strrchr(out, '/');
	if (s && s != out)
		*s = 0;
}

/* Writes text to path through path.tmp + fsync + rename. */
static int write_file_atomic(const char *path, const char *text, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 16], dir[PATH_MAX];
	strf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	size_t n = strlen(text);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n || fsync(fd) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return fail(err, errlen, DL_ERR_DISK, "cannot write %s: %s", path, strerror(e));
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return fail(err, errlen, DL_ERR_DISK, "cannot write %s: %s", path, strerror(e));
	}
	dir_of(path, dir, sizeof dir);
	fsync_dir(dir);
	return DL_OK;
}

/* snapshots/COMMIT/NAME -> ../../blobs/ETAG (one more ../ per directory in NAME). */
static int link_snapshot_file(const char *repo_dir, const char *commit, const char *name,
                              const char *etag, char *err, size_t errlen)
{
	char link[PATH_MAX], dir[PATH_MAX], target[PATH_MAX], tmp[PATH_MAX + 16], cur[PATH_MAX];
	size_t pos = 0;
	strf(link, sizeof link, "%s/snapshots/%s/%s", repo_dir, commit, name);
	dir_of(link, dir, sizeof dir);
	if (mkdirs(dir) != 0)
		return fail(err, errlen, DL_ERR_DISK, "cannot create %s: %s", dir, strerror(errno));
	pos += (size_t)snprintf(target, sizeof target, "../../");
	for (const char *c = name; *c; c++)
		if (*c == '/' && pos + 4 < sizeof target)
			pos += (size_t)snprintf(target + pos, sizeof target - pos, "../");
	strf(target + pos, sizeof target - pos, "blobs/%s", etag);

	ssize_t n = readlink(link, cur, sizeof cur - 1);
	if (n >= 0) {
		cur[n] = 0;
		if (!strcmp(cur, target))
			return DL_OK;
	}
	strf(tmp, sizeof tmp, "%s.tmp%ld", link, (long)getpid());
	unlink(tmp);
	if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
		int e = errno;
		unlink(tmp);
		return fail(err, errlen, DL_ERR_DISK, "cannot link %s: %s", link, strerror(e));
	}
	return DL_OK;
}

/* ---- HTTP ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* One file being written into blobs/NAME.incomplete. */
struct job {
	const struct dl_file *f;
	const char *blobs_dir;
	char name[130];          /* the blob name the range request was made for ("" none) */
	uint64_t range_from;     /* the Range start asked for (0: none) */
	int fd;                  /* -1 until the first body byte */
	uint64_t written;        /* bytes in the .incomplete file */
	int64_t expected;        /* the file's size: listed, else from the headers; -1 unknown */
	sha256_ctx sha;
	sha1_ctx sha1;
	int git_check;           /* verify the git blob id (plain git files) */
	enum { J_NONE, J_RETRY_RANGE, J_RESTART, J_HAVE_BLOB, J_FAILED } stop;
	int status;              /* dl_status when stop == J_FAILED */
	char msg[512];
};

struct http {
	CURL *curl;
	struct curl_slist *headers;
	char curl_err[CURL_ERROR_SIZE];
	/* the responses of one request (redirects included) */
	long status;
	int hops;
	char first_etag[130];    /* the first ETag of the redirect chain */
	char linked_etag[130], repo_commit[130];
	char error_code[64], error_message[256];
	int64_t linked_size, content_length, content_range_start;
	/* body kept in memory: the API answer, or an error page */
	char *mem;
	size_t mem_len, mem_max;
	int mem_overflow;
	/* body written to a blob */
	struct job *job;
	/* progress */
	const atomic_int *cancel;
	dl_progress_fn progress;
	void *user;
	struct dl_progress prog;
	uint64_t done_before;    /* bytes done before the current file's data */
	double last_report, rate_time;
	uint64_t rate_bytes;
	double t0;
	uint64_t fetched;        /* bytes actually transferred this run */
};

static void report(struct http *h, int force)
{
	if (!h->progress)
		return;
	double t = mono_seconds();
	uint64_t done = h->prog.done;
	if (t - h->rate_time >= 0.5) {
		double inst = (double)(h->fetched - h->rate_bytes) / (t - h->rate_time);
		h->prog.rate = h->prog.rate > 0 ? 0.7 * h->prog.rate + 0.3 * inst : inst;
		h->rate_time = t;
		h->rate_bytes = h->fetched;
	}
	h->prog.eta = h->prog.rate > 0 && h->prog.total >= done ?
	              (double)(h->prog.total - done) / h->prog.rate : -1;
	if (force || t - h->last_report >= 0.1) {
		h->last_report = t;
		h->progress(&h->prog, h->user);
	}
}

static void copy_header_value(char *dst, size_t len, const char *v, size_t n)
{
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	if (n >= len)
		n = len - 1;
	memcpy(dst, v, n);
	dst[n] = 0;
}

/* "W/\"abc\"" -> "abc". */
static void normalize_etag(char *e)
{
	char *s = e;
	if (!strncmp(s, "W/", 2))
		s += 2;
	size_t n = strlen(s);
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	}
	memmove(e, s, n);
	e[n] = 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct http *h = userdata;
	size_t n = size * nitems;
	char name[64], val[300];
	if (n >= 5 && !strncmp(buf, "HTTP/", 5)) {
		const char *sp = memchr(buf, ' ', n);
		h->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		h->hops++;
		h->content_length = -1;
		h->content_range_start = -1;
		h->error_code[0] = h->error_message[0] = 0;
		return n;
	}
	const char *colon = memchr(buf, ':', n);
	if (!colon || colon == buf || (size_t)(colon - buf) >= sizeof name)
		return n;
	memcpy(name, buf, (size_t)(colon - buf));
	name[colon - buf] = 0;
	copy_header_value(val, sizeof val, colon + 1, n - (size_t)(colon + 1 - buf));
	if (!strcasecmp(name, "ETag")) {
		/* The hub's own answer comes first; a CDN it redirects to has other ETags. */
		if (!h->first_etag[0]) {
			strf(h->first_etag, sizeof h->first_etag, "%s", val);
			normalize_etag(h->first_etag);
		}
	} else if (!strcasecmp(name, "X-Linked-Etag")) {
		strf(h->linked_etag, sizeof h->linked_etag, "%s", val);
		normalize_etag(h->linked_etag);
	} else if (!strcasecmp(name, "X-Linked-Size")) {
		h->linked_size = strtoll(val, NULL, 10);
	} else if (!strcasecmp(name, "X-Repo-Commit")) {
		strf(h->repo_commit, sizeof h->repo_commit, "%s", val);
	} else if (!strcasecmp(name, "X-Error-Code")) {
		strf(h->error_code, sizeof h->error_code, "%s", val);
	} else if (!strcasecmp(name, "X-Error-Message")) {
		strf(h->error_message, sizeof h->error_message, "%s", val);
	} else if (!strcasecmp(name, "Content-Length")) {
		h->content_length = strtoll(val, NULL, 10);
	} else if (!strcasecmp(name, "Content-Range")) {
		/* "bytes START-END/TOTAL" */
		const char *p = val;
		if (!strncasecmp(p, "bytes", 5))
			p += 5;
		while (*p == ' ')
			p++;
		if (isdigit((unsigned char)*p))
			h->content_range_start = strtoll(p, NULL, 10);
	}
	return n;
}

static void mem_append(struct http *h, const char *data, size_t n)
{
	if (h->mem_len + n > h->mem_max) {
		h->mem_overflow = 1;
		n = h->mem_max > h->mem_len ? h->mem_max - h->mem_len : 0;
	}
	if (!n)
		return;
	char *m = realloc(h->mem, h->mem_len + n + 1);
	if (!m) {
		h->mem_overflow = 1;
		return;
	}
	h->mem = m;
	memcpy(h->mem + h->mem_len, data, n);
	h->mem_len += n;
	h->mem[h->mem_len] = 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void job_hash(struct job *j, const void *p, size_t n)
{
	if (j->f->sha256[0])
		sha256_update(&j->sha, p, n);
	if (j->git_check)
		sha1_update(&j->sha1, p, n);
}

static int job_stop(struct job *j, int status, const char *fmt, ...)
{
	va_list ap;
	j->stop = J_FAILED;
	j->status = status;
	va_start(ap, fmt);
	vsnprintf(j->msg, sizeof j->msg, fmt, ap);
	va_end(ap);
	return 0;
}

/* The blob name for the response being received: the SHA-256 for LFS files;
 * otherwise X-Linked-Etag, else the first response's ETag, else the blob id. */
static void response_blob_name(const struct http *h, const struct dl_file *f, char *out, size_t len)
{
	if (f->sha256[0])
		strf(out, len, "%s", f->sha256);
	else if (h->linked_etag[0])
		strf(out, len, "%s", h->linked_etag);
	else if (h->first_etag[0])
		strf(out, len, "%s", h->first_etag);
	else
		strf(out, len, "%s", f->blob_id);
}

static int safe_blob_name(const char *s)
{
	if (!*s || strlen(s) > 128 || s[0] == '.')
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == '.' || *s == '+' || *s == '='))
			return 0;
	return 1;
}

/* The first body byte of a file: decide the blob, open blobs/NAME.incomplete. */
static int job_open(struct http *h, struct job *j)
{
	char name[130], path[PATH_MAX];
	response_blob_name(h, j->f, name, sizeof name);
	if (!safe_blob_name(name))
		return job_stop(j, DL_ERR_SERVER, "%s: the hub gave no usable ETag ('%s')", j->f->name, name);
	if (strcmp(name, j->name) != 0) {
		if (j->range_from > 0) {
			/* The partial data we asked to continue belongs to other contents. */
			strf(j->name, sizeof j->name, "%s", name);
			j->range_from = 0;
			j->stop = J_RESTART;
			return 0;
		}
		strf(j->name, sizeof j->name, "%s", name);
		strf(path, sizeof path, "%s/%s", j->blobs_dir, name);
		if (blob_complete(file_size(path), j->f)) {
			j->stop = J_HAVE_BLOB;
			return 0;
		}
		strf(path, sizeof path, "%s/%s.incomplete", j->blobs_dir, name);
		int64_t part = file_size(path);
		if (part_resumable(part, j->f)) {
			j->range_from = (uint64_t)part;
			j->stop = J_RETRY_RANGE;
			return 0;
		}
	}
	j->git_check = j->f->size_known && !j->f->sha256[0] && strlen(j->f->blob_id) == 40 && !strcmp(j->f->blob_id, j->name);
	strf(path, sizeof path, "%s/%s.incomplete", j->blobs_dir, j->name);
	j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (j->fd < 0)
		return job_stop(j, DL_ERR_DISK, "cannot create %s: %s", path, strerror(errno));
	if (flock(j->fd, LOCK_EX | LOCK_NB) != 0)
		return job_stop(j, DL_ERR_BUSY, "%s is being written by another download", path);

	sha256_init(&j->sha);
	sha1_init(&j->sha1);
	if (j->git_check) {
		char head[48];
		int hn = snprintf(head, sizeof head, "blob %llu", (unsigned long long)j->f->size);
		sha1_update(&j->sha1, head, (size_t)hn + 1);
	}
	/* A 206 without Content-Range is taken as the range asked for. */
	int resumed = h->status == 206 && j->range_from > 0 &&
	              (h->content_range_start == (int64_t)j->range_from || h->content_range_start < 0);
	if (h->status == 206 && !resumed) {
		/* Some other range than the one asked for: ask for the whole file. */
		close(j->fd);
		j->fd = -1;
		j->range_from = 0;
		j->stop = J_RESTART;
		return 0;
	}
	if (j->f->size_known)
		j->expected = (int64_t)j->f->size;
	else if (h->linked_size >= 0)
		j->expected = h->linked_size;
	else if (h->content_length >= 0)
		j->expected = h->content_length + (resumed ? (int64_t)j->range_from : 0);
	else
		j->expected = -1;
	if (!resumed) {
		if (ftruncate(j->fd, 0) != 0)
			return job_stop(j, DL_ERR_DISK, "cannot truncate %s: %s", path, strerror(errno));
		j->written = 0;
		h->prog.done = h->done_before;
		return 1;
	}
	/* Hash what is already there, then append. */
	static _Thread_local char buf[1 << 16];
	uint64_t left = j->range_from;
	if (lseek(j->fd, 0, SEEK_SET) != 0)
		return job_stop(j, DL_ERR_DISK, "cannot read %s: %s", path, strerror(errno));
	h->prog.verifying = 1;
	while (left > 0) {
		ssize_t r = read(j->fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
		if (r <= 0)
			return job_stop(j, DL_ERR_DISK, "cannot read %s: %s", path, r < 0 ? strerror(errno) : "short file");
		job_hash(j, buf, (size_t)r);
		left -= (uint64_t)r;
		if (h->cancel && atomic_load(h->cancel))
			return job_stop(j, DL_ERR_CANCELLED, "cancelled while fetching %s", j->f->name);
	}
	h->prog.verifying = 0;
	if (ftruncate(j->fd, (off_t)j->range_from) != 0 || lseek(j->fd, 0, SEEK_END) < 0)
		return job_stop(j, DL_ERR_DISK, "cannot append to %s: %s", path, strerror(errno));
	j->written = j->range_from;
	h->prog.done = h->done_before + j->written;
	return 1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct http *h = userdata;
	size_t n = size * nmemb;
	struct job *j = h->job;
	if (!j || (h->status != 200 && h->status != 206)) {
		mem_append(h, data, n);
		return n;
	}
	if (h->cancel && atomic_load(h->cancel)) {
		job_stop(j, DL_ERR_CANCELLED, "cancelled while fetching %s", j->f->name);
		return 0;
	}
	if (j->fd < 0 && !job_open(h, j))
		return 0;
	if (j->expected >= 0 && j->written + n > (uint64_t)j->expected) {
		job_stop(j, DL_ERR_CHECKSUM, "%s: the server sent more than the file's %lld bytes",
		         j->f->name, (long long)j->expected);
		return 0;
	}
	if (write_all(j->fd, data, n) != 0) {
		int e = errno;
		char path[PATH_MAX];
		strf(path, sizeof path, "%s/%s.incomplete", j->blobs_dir, j->name);
		job_stop(j, DL_ERR_DISK, "%s writing %s", e == ENOSPC ? "disk full" : strerror(e), path);
		return 0;
	}
	job_hash(j, data, n);
	j->written += n;
	h->fetched += n;
	h->prog.done = h->done_before + j->written;
	report(h, 0);
	return n;
}

static int on_xferinfo(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct http *h = userdata;
	(void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
	if (h->cancel && atomic_load(h->cancel))
		return 1;
	if (h->job)
		report(h, 0);
	return 0;
}

static int http_init(struct http *h, const char *token, const atomic_int *cancel, char *err, size_t errlen)
{
	memset(h, 0, sizeof *h);
	pthread_once(&curl_once, curl_init_once);
	h->curl = curl_easy_init();
	if (!h->curl)
		return fail(err, errlen, DL_ERR_NETWORK, "cannot start libcurl");
	h->cancel = cancel;
	char auth[2200];
	if (token && *token) {
		strf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h->headers = curl_slist_append(h->headers, auth);
	}
	CURL *c = h->curl;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
	/* A connection that takes, or a transfer that stalls for, longer than
	 * HF_HUB_DOWNLOAD_TIMEOUT seconds (as huggingface_hub; default 20) fails. */
	long timeout = 20;
	const char *t = getenv("HF_HUB_DOWNLOAD_TIMEOUT");
	if (t && atol(t) > 0)
		timeout = atol(t);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, timeout);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "musicgen-tui/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
	return DL_OK;
}

static void http_free(struct http *h)
{
	if (h->curl)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->headers);
	free(h->mem);
	memset(h, 0, sizeof *h);
}

/* One GET (redirects followed). The body goes to h->job when set, else to h->mem. */
static CURLcode http_get(struct http *h, const char *url, uint64_t range_from, size_t mem_max)
{
	char range[48];
	h->status = 0;
	h->hops = 0;
	h->first_etag[0] = h->linked_etag[0] = h->repo_commit[0] = 0;
	h->error_code[0] = h->error_message[0] = 0;
	h->linked_size = h->content_length = h->content_range_start = -1;
	h->mem_len = 0;
	h->mem_max = mem_max;
	h->mem_overflow = 0;
	h->curl_err[0] = 0;
	if (h->mem)
		h->mem[0] = 0;
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	if (range_from > 0) {
		strf(range, sizeof range, "%llu-", (unsigned long long)range_from);
		curl_easy_setopt(h->curl, CURLOPT_RANGE, range);
	} else {
		curl_easy_setopt(h->curl, CURLOPT_RANGE, NULL);
	}
	CURLcode rc = curl_easy_perform(h->curl);
	long code = 0;
	if (curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code)
		h->status = code;
	return rc;
}

static int network_error(const struct http *h, CURLcode rc, const char *what, char *err, size_t errlen)
{
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return fail(err, errlen, DL_ERR_CANCELLED, "cancelled while fetching %s", what);
	return fail(err, errlen, DL_ERR_NETWORK, "network error fetching %s: %s", what,
	            h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc));
}

/* Turns an HTTP error status into a dl_status and a message. */
static int http_status_error(const struct http *h, const char *repo, const char *revision,
                             const char *file, const char *url, int have_token, char *err, size_t errlen)
{
	char detail[300] = "";
	if (h->error_message[0]) {
		strf(detail, sizeof detail, ": %s", h->error_message);
	} else if (h->mem && h->mem_len) {
		json_t *j = json_loadb(h->mem, h->mem_len, 0, NULL);
		json_t *e = j ? json_object_get(j, "error") : NULL;
		if (json_is_string(e))
			strf(detail, sizeof detail, ": %s", json_string_value(e));
		json_decref(j);
	}
	size_t dn = strlen(detail);
	while (dn > 0 && (detail[dn - 1] == '.' || detail[dn - 1] == ' '))
		detail[--dn] = 0;
	long s = h->status;
	if (s == 401 || s == 403) {
		return fail(err, errlen, DL_ERR_AUTH,
		            "%s: access refused (HTTP %ld%s). %s", repo, s, detail,
		            have_token ? "The token (HF_TOKEN or the token file) was not accepted for this "
		                         "repository: check that it is valid and has read access, and that "
		                         "you accepted the model's terms on the hub if it is gated."
		                       : "The repository may be private or gated, or may not exist: set HF_TOKEN "
		                         "to an access token (or run `huggingface-cli login`) and try again.");
	}
	if (s == 404) {
		if (!strcmp(h->error_code, "RevisionNotFound"))
			return fail(err, errlen, DL_ERR_NOT_FOUND, "%s: revision '%s' not found (HTTP 404%s)",
			            repo, revision, detail);
		if (!strcmp(h->error_code, "EntryNotFound") || (file && strcmp(h->error_code, "RepoNotFound")))
			return fail(err, errlen, DL_ERR_NOT_FOUND, "%s: file '%s' not found at revision '%s' (HTTP 404%s)",
			            repo, file ? file : "?", revision, detail);
		if (!strcmp(h->error_code, "RepoNotFound"))
			return fail(err, errlen, DL_ERR_NOT_FOUND, "%s: repository not found (HTTP 404%s)", repo, detail);
		return fail(err, errlen, DL_ERR_NOT_FOUND, "%s: repository or revision '%s' not found (HTTP 404%s)",
		            repo, revision, detail);
	}
	if (s == 416)
		return fail(err, errlen, DL_ERR_SERVER, "%s: the server refused the range request (HTTP 416)", url);
	return fail(err, errlen, DL_ERR_SERVER, "%s: unexpected answer HTTP %ld%s", url, s, detail);
}

/* A path segment (or a path with its slashes kept) escaped for a URL. */
static int url_escape(CURL *c, const char *s, int keep_slash, char *out, size_t len)
{
	size_t pos = 0;
	out[0] = 0;
	while (*s) {
		size_t seg = keep_slash ? strcspn(s, "/") : strlen(s);
		char *e = curl_easy_escape(c, s, (int)seg);
		if (!e)
			return -1;
		int n = snprintf(out + pos, len - pos, "%s%s", e, keep_slash && s[seg] == '/' ? "/" : "");
		curl_free(e);
		if (n < 0 || (size_t)n >= len - pos)
			return -1;
		pos += (size_t)n;
		s += seg + (s[seg] == '/');
	}
	return 0;
}

/* ---- the plan ---- */

void dl_plan_free(struct dl_plan *plan)
{
	if (!plan)
		return;
	free(plan->files);
	plan->files = NULL;
	plan->nfiles = 0;
}

static int valid_revision(const char *r)
{
	if (!*r || strlen(r) >= 128 || strstr(r, "..") || r[0] == '/')
		return 0;
	for (; *r; r++)
		if ((unsigned char)*r < 0x21 || *r == '\\' || *r == 0x7f)
			return 0;
	return 1;
}

static int is_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int cmp_file_size(const void *a, const void *b)
{
	const struct dl_file *x = a, *y = b;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* How much of f the cache holds: its full size when the blob is there. */
static uint64_t cached_bytes(const char *repo_dir, const struct dl_file *f)
{
	char path[PATH_MAX + 200];
	const char *name = f->sha256[0] ? f->sha256 : f->blob_id;
	if (!*name)
		return 0;
	strf(path, sizeof path, "%s/blobs/%s", repo_dir, name);
	int64_t have = file_size(path);
	if (blob_complete(have, f))
		return f->size_known ? f->size : (uint64_t)have;
	strf(path, sizeof path, "%s/blobs/%s.incomplete", repo_dir, name);
	int64_t part = file_size(path);
	return part_resumable(part, f) ? (uint64_t)part : 0;
}

/* The answer of the file-list endpoint; header_commit is its X-Repo-Commit
 * header, used when the body has no "sha". */
static int parse_file_list(const char *body, size_t len, const char *header_commit, struct dl_plan *plan,
                           char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(body, len, 0, &je);
	if (!json_is_object(root)) {
		json_decref(root);
		return fail(err, errlen, DL_ERR_SERVER, "%s: the hub's file list is not JSON (%s)", plan->repo, je.text);
	}
	json_t *sha = json_object_get(root, "sha"), *sib = json_object_get(root, "siblings");
	const char *commit = json_is_string(sha) ? json_string_value(sha) : header_commit;
	if (!commit || !is_hex(commit, 40) || !json_is_array(sib)) {
		json_decref(root);
		return fail(err, errlen, DL_ERR_SERVER, "%s: the hub's answer lacks a commit 'sha' or 'siblings'", plan->repo);
	}
	strf(plan->commit, sizeof plan->commit, "%s", commit);
	for (char *c = plan->commit; *c; c++)
		*c = (char)tolower((unsigned char)*c);

	size_t n = json_array_size(sib);
	int has_safetensors = 0, has_config = 0, has_bin = 0;
	plan->files = calloc(n ? n : 1, sizeof *plan->files);
	if (!plan->files) {
		json_decref(root);
		return fail(err, errlen, DL_ERR_DISK, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(sib, i);
		json_t *name = json_object_get(s, "rfilename");
		if (!json_is_string(name))
			continue;
		const char *nm = json_string_value(name);
		if (!strncmp(nm, "pytorch_model", 13) && strstr(nm, ".bin"))
			has_bin = 1;
		if (!dl_wanted_file(nm))
			continue;
		struct dl_file *f = &plan->files[plan->nfiles];
		strf(f->name, sizeof f->name, "%s", nm);
		json_t *size = json_object_get(s, "size"), *lfs = json_object_get(s, "lfs");
		json_t *blob = json_object_get(s, "blobId");
		if (json_is_object(lfs)) {
			json_t *h = json_object_get(lfs, "sha256"), *ls = json_object_get(lfs, "size");
			if (!json_is_string(h) || !is_hex(json_string_value(h), 64)) {
				json_decref(root);
				return fail(err, errlen, DL_ERR_SERVER, "%s: file '%s' is an LFS file without a valid sha256",
				            plan->repo, nm);
			}
			strf(f->sha256, sizeof f->sha256, "%s", json_string_value(h));
			for (char *c = f->sha256; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			if (json_is_integer(ls))
				size = ls;
		}
		if (json_is_integer(size) && json_integer_value(size) >= 0) {
			f->size = (uint64_t)json_integer_value(size);
			f->size_known = 1;
		}
		if (json_is_string(blob) && safe_blob_name(json_string_value(blob)))
			strf(f->blob_id, sizeof f->blob_id, "%s", json_string_value(blob));
		has_config |= !strcmp(nm, "config.json");
		has_safetensors |= strstr(nm, ".safetensors") && !strstr(nm, ".index.json");
		plan->nfiles++;
	}
	json_decref(root);
	if (!has_config)
		return fail(err, errlen, DL_ERR_NO_WEIGHTS, "%s@%s: no config.json - not a model repository",
		            plan->repo, plan->revision);
	if (!has_safetensors)
		return fail(err, errlen, DL_ERR_NO_WEIGHTS,
		            "%s@%s: no safetensors weights%s; this program reads only model.safetensors "
		            "(or model-*.safetensors shards)", plan->repo, plan->revision,
		            has_bin ? " (only pytorch_model.bin)" : "");
	qsort(plan->files, (size_t)plan->nfiles, sizeof *plan->files, cmp_file_size);
	for (int i = 0; i < plan->nfiles; i++) {
		plan->files[i].have = cached_bytes(plan->repo_dir, &plan->files[i]);
		plan->total_bytes += plan->files[i].size;
		plan->missing_bytes += plan->files[i].size - plan->files[i].have;
	}
	return DL_OK;
}

int dl_plan_fetch(const char *repo, const char *revision, struct dl_plan *plan, char *err, size_t errlen)
{
	memset(plan, 0, sizeof *plan);
	if (!revision || !*revision)
		revision = "main";
	if (!repo || !mg_is_hub_id(repo) || strlen(repo) >= sizeof plan->repo)
		return fail(err, errlen, DL_ERR_USAGE, "'%s' is not a hub id (expected ORG/NAME, e.g. facebook/musicgen-small)",
		            repo ? repo : "");
	if (!valid_revision(revision))
		return fail(err, errlen, DL_ERR_USAGE, "'%s' is not a valid revision", revision);
	strf(plan->repo, sizeof plan->repo, "%s", repo);
	strf(plan->revision, sizeof plan->revision, "%s", revision);
	if (mg_hub_repo_dir(repo, plan->repo_dir, sizeof plan->repo_dir))
		return fail(err, errlen, DL_ERR_USAGE, "%s: cannot form a cache path", repo);
	if (dl_offline())
		return fail(err, errlen, DL_ERR_OFFLINE, "HF_HUB_OFFLINE is set: not contacting the hub for %s", repo);

	char endpoint[1024], token[2048], rev_esc[512], url[2048];
	hub_endpoint(endpoint, sizeof endpoint);
	hub_token(token, sizeof token);
	struct http h;
	int st = http_init(&h, token, NULL, err, errlen);
	if (st)
		return st;
	if (url_escape(h.curl, revision, 0, rev_esc, sizeof rev_esc)) {
		http_free(&h);
		return fail(err, errlen, DL_ERR_USAGE, "'%s': revision too long", revision);
	}
	strf(url, sizeof url, "%s/api/models/%s/revision/%s?blobs=true", endpoint, repo, rev_esc);
	CURLcode rc = http_get(&h, url, 0, API_MAX_BYTES);
	if (rc != CURLE_OK)
		st = network_error(&h, rc, url, err, errlen);
	else if (h.status != 200)
		st = http_status_error(&h, repo, revision, NULL, url, token[0] != 0, err, errlen);
	else if (h.mem_overflow)
		st = fail(err, errlen, DL_ERR_SERVER, "%s: the file list is larger than %u bytes", url, API_MAX_BYTES);
	else
		st = parse_file_list(h.mem ? h.mem : "", h.mem_len, h.repo_commit, plan, err, errlen);
	http_free(&h);
	return st;
}

/* ---- running the plan ---- */

/* Checks the finished .incomplete, then moves it to blobs/NAME. */
static int job_finish(struct job *j, char *err, size_t errlen)
{
	char part[PATH_MAX], blob[PATH_MAX];
	strf(part, sizeof part, "%s/%s.incomplete", j->blobs_dir, j->name);
	strf(blob, sizeof blob, "%s/%s", j->blobs_dir, j->name);
	if (j->expected >= 0 && j->written < (uint64_t)j->expected)
		return fail(err, errlen, DL_ERR_NETWORK,
		            "%s: the connection ended after %llu of %lld bytes (partial data kept in %s; "
		            "run the same command again to resume)", j->f->name,
		            (unsigned long long)j->written, (long long)j->expected, part);
	char hex[65], want[65] = "";
	uint8_t d[32];
	if (j->f->sha256[0]) {
		sha256_final(&j->sha, d);
		digest_hex(d, 32, hex);
		strf(want, sizeof want, "%s", j->f->sha256);
	} else if (j->git_check) {
		sha1_final(&j->sha1, d);
		digest_hex(d, 20, hex);
		strf(want, sizeof want, "%s", j->f->blob_id);
	}
	if (want[0] && strcasecmp(hex, want) != 0) {
		unlink(part);
		return fail(err, errlen, DL_ERR_CHECKSUM,
		            "%s: checksum mismatch (expected %s %s, got %s); the data was discarded",
		            j->f->name, j->f->sha256[0] ? "sha256" : "git blob id", want, hex);
	}
	if (fsync(j->fd) != 0)
		return fail(err, errlen, DL_ERR_DISK, "cannot write %s: %s", part, strerror(errno));
	if (rename(part, blob) != 0)
		return fail(err, errlen, DL_ERR_DISK, "cannot move %s into place: %s", part, strerror(errno));
	fsync_dir(j->blobs_dir);
	return DL_OK;
}

static void job_close(struct job *j)
{
	if (j->fd >= 0)
		close(j->fd);  /* also drops the flock */
	j->fd = -1;
}

/* Fetches one file into blobs/ (when it is not there already); fills etag. */
static int fetch_file(struct http *h, const struct dl_plan *plan, const char *blobs_dir,
                      const char *url_base, const struct dl_file *f, int have_token,
                      char *etag, size_t etaglen, char *err, size_t errlen)
{
	char url[4096], path[PATH_MAX], name_esc[1024];
	struct job j;
	memset(&j, 0, sizeof j);
	j.f = f;
	j.blobs_dir = blobs_dir;
	j.fd = -1;
	const char *known = f->sha256[0] ? f->sha256 : f->blob_id;
	strf(j.name, sizeof j.name, "%s", known);
	if (j.name[0]) {
		strf(path, sizeof path, "%s/%s", blobs_dir, j.name);
		if (blob_complete(file_size(path), f)) {
			strf(etag, etaglen, "%s", j.name);
			return DL_OK;
		}
		strf(path, sizeof path, "%s/%s.incomplete", blobs_dir, j.name);
		int64_t part = file_size(path);
		if (part_resumable(part, f))
			j.range_from = (uint64_t)part;
	}
	if (url_escape(h->curl, f->name, 1, name_esc, sizeof name_esc))
		return fail(err, errlen, DL_ERR_USAGE, "%s: file name too long", f->name);
	strf(url, sizeof url, "%s/%s", url_base, name_esc);

	for (int attempt = 0; attempt < 4; attempt++) {
		j.stop = J_NONE;
		h->job = &j;
		CURLcode rc = http_get(h, url, j.range_from, ERRBODY_MAX);
		h->job = NULL;
		if (j.stop == J_FAILED) {
			job_close(&j);
			return fail(err, errlen, j.status, "%s", j.msg);
		}
		if (j.stop == J_HAVE_BLOB) {
			strf(etag, etaglen, "%s", j.name);
			return DL_OK;
		}
		if (j.stop == J_RETRY_RANGE || j.stop == J_RESTART)
			continue;
		if (rc != CURLE_OK) {
			int st = network_error(h, rc, f->name, err, errlen);
			if (j.fd >= 0 && st == DL_ERR_NETWORK) {
				size_t n = strlen(err);
				strf(path, sizeof path, "%s/%s.incomplete", blobs_dir, j.name);
				strf(err + n, errlen - n, " (partial data kept in %s; run the same command again to resume)", path);
			}
			job_close(&j);
			return st;
		}
		if (h->status != 200 && h->status != 206) {
			job_close(&j);
			return http_status_error(h, plan->repo, plan->revision, f->name, url, have_token, err, errlen);
		}
		if (h->repo_commit[0] && strcasecmp(h->repo_commit, plan->commit) != 0) {
			job_close(&j);
			return fail(err, errlen, DL_ERR_SERVER,
			            "%s: revision '%s' moved from %s to %s during the download; run it again",
			            plan->repo, plan->revision, plan->commit, h->repo_commit);
		}
		if (j.fd < 0 && !job_open(h, &j)) {  /* an empty file: no body callback came */
			if (j.stop == J_FAILED)
				return fail(err, errlen, j.status, "%s", j.msg);
			if (j.stop == J_HAVE_BLOB) {
				strf(etag, etaglen, "%s", j.name);
				return DL_OK;
			}
			continue;
		}
		int st = job_finish(&j, err, errlen);
		job_close(&j);
		if (st == DL_OK)
			strf(etag, etaglen, "%s", j.name);
		return st;
	}
	job_close(&j);
	return fail(err, errlen, DL_ERR_SERVER, "%s: the server's answers for this file keep changing", f->name);
}

int dl_plan_run(struct dl_plan *plan, dl_progress_fn progress, void *user,
                const atomic_int *cancel, char *snapshot, size_t snaplen, char *err, size_t errlen)
{
	char blobs[PATH_MAX], snap[PATH_MAX + 80];
	strf(blobs, sizeof blobs, "%s/blobs", plan->repo_dir);
	strf(snap, sizeof snap, "%s/snapshots/%s", plan->repo_dir, plan->commit);
	if (dl_offline())
		return fail(err, errlen, DL_ERR_OFFLINE, "HF_HUB_OFFLINE is set: not contacting the hub for %s", plan->repo);
	if (mkdirs(blobs) != 0 || mkdirs(snap) != 0)
		return fail(err, errlen, DL_ERR_DISK, "cannot create %s: %s", plan->repo_dir, strerror(errno));

	/* Refuse early when the disk clearly cannot hold what is missing. */
	uint64_t missing = 0;
	for (int i = 0; i < plan->nfiles; i++)
		missing += plan->files[i].size - cached_bytes(plan->repo_dir, &plan->files[i]);
	struct statvfs vfs;
	if (statvfs(blobs, &vfs) == 0 && vfs.f_frsize > 0 && vfs.f_blocks > 0) {
		uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		if (avail < missing)
			return fail(err, errlen, DL_ERR_DISK,
			            "disk full: %s needs %.1f MB more but only %.1f MB are free in %s",
			            plan->repo, missing / 1e6, avail / 1e6, blobs);
	}

	char endpoint[1024], token[2048], rev_esc[512], url_base[2048];
	hub_endpoint(endpoint, sizeof endpoint);
	hub_token(token, sizeof token);
	struct http h;
	int st = http_init(&h, token, cancel, err, errlen);
	if (st)
		return st;
	if (url_escape(h.curl, plan->revision, 0, rev_esc, sizeof rev_esc)) {
		http_free(&h);
		return fail(err, errlen, DL_ERR_USAGE, "'%s': revision too long", plan->revision);
	}
	strf(url_base, sizeof url_base, "%s/%s/resolve/%s", endpoint, plan->repo, rev_esc);

	h.progress = progress;
	h.user = user;
	h.t0 = h.rate_time = mono_seconds();
	h.prog.nfiles = plan->nfiles;
	for (int i = 0; i < plan->nfiles; i++)
		h.prog.total += plan->files[i].size;
	for (int i = 0; i < plan->nfiles && st == DL_OK; i++) {
		struct dl_file *f = &plan->files[i];
		char etag[130];
		if (cancel && atomic_load(cancel)) {
			st = fail(err, errlen, DL_ERR_CANCELLED, "cancelled before fetching %s", f->name);
			break;
		}
		h.prog.file = f->name;
		h.prog.file_index = i;
		h.prog.done = h.done_before;
		report(&h, 1);
		st = fetch_file(&h, plan, blobs, url_base, f, token[0] != 0, etag, sizeof etag, err, errlen);
		if (st == DL_OK)
			st = link_snapshot_file(plan->repo_dir, plan->commit, f->name, etag, err, errlen);
		if (st == DL_OK)
			f->have = f->size;
		h.done_before += f->size;
		h.prog.done = h.done_before;
	}
	if (st == DL_OK) {
		h.prog.file = "";
		report(&h, 1);
	}
	http_free(&h);
	if (st != DL_OK)
		return st;

	/* Every file is in place: now the revision may point at the snapshot. */
	if (strcmp(plan->revision, plan->commit) != 0) {
		char ref[PATH_MAX + 160], dir[PATH_MAX + 160];
		strf(ref, sizeof ref, "%s/refs/%s", plan->repo_dir, plan->revision);
		dir_of(ref, dir, sizeof dir);
		if (mkdirs(dir) != 0)
			return fail(err, errlen, DL_ERR_DISK, "cannot create %s: %s", dir, strerror(errno));
		st = write_file_atomic(ref, plan->commit, err, errlen);
		if (st)
			return st;
	}
	if (snapshot && snaplen)
		strf(snapshot, snaplen, "%s", snap);
	return DL_OK;
}

int dl_download(const char *repo, const char *revision, dl_progress_fn progress, void *user,
                const atomic_int *cancel, char *snapshot, size_t snaplen, char *err, size_t errlen)
{
	struct dl_plan plan;
	int st = dl_plan_fetch(repo, revision, &plan, err, errlen);
	if (st == DL_OK)
		st = dl_plan_run(&plan, progress, user, cancel, snapshot, snaplen, err, errlen);
	dl_plan_free(&plan);
	return st;
}
