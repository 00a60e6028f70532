/* settings.c - settings and compose state files (see settings.h). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/settings.h"
#include "app/util.h"
#include "app/xdg.h"

void knobs_default(struct knobs *k)
{
	k->duration = 10.0;
	k->guidance = 3.0;
	k->temperature = 1.0;
	k->top_k = 250;
	k->top_p = 1.0;
	k->seed = 0;
	k->seed_random = 1;
	k->count = 1;
}

int knobs_check_value(const char *name, double v, char *err, size_t errlen)
{
	if (isnan(v) || isinf(v)) {
		snprintf(err, errlen, "%s must be a finite number", name);
		return -1;
	}
	if (!strcmp(name, "duration")) {
		if (v <= 0 || v > 3600) {
			snprintf(err, errlen, "duration must be above 0 and at most 3600 s");
			return -1;
		}
	} else if (!strcmp(name, "guidance")) {
		if (v < 0 || v > 100) {
			snprintf(err, errlen, "guidance must be between 0 and 100 (1 or less: off)");
			return -1;
		}
	} else if (!strcmp(name, "temperature")) {
		if (v <= 0 || v > 100) {
			snprintf(err, errlen, "temperature must be above 0 and at most 100");
			return -1;
		}
	} else if (!strcmp(name, "top_k")) {
		if (v < 0 || v > 1000000 || v != floor(v)) {
			snprintf(err, errlen, "top-k must be a whole number from 0 (off) up");
			return -1;
		}
	} else if (!strcmp(name, "top_p")) {
		if (v <= 0 || v > 1) {
			snprintf(err, errlen, "top-p must be in (0, 1] (1: off)");
			return -1;
		}
	} else if (!strcmp(name, "seed")) {
		if (v < 0 || v != floor(v) || v > 18446744073709551615.0) {
			snprintf(err, errlen, "seed must be a non-negative whole number");
			return -1;
		}
	} else if (!strcmp(name, "count")) {
		if (v < 1 || v > 16 || v != floor(v)) {
			snprintf(err, errlen, "takes must be a whole number from 1 to 16");
			return -1;
		}
	} else {
		snprintf(err, errlen, "unknown knob '%s'", name);
		return -1;
	}
	return 0;
}

int knobs_check(const struct knobs *k, char *err, size_t errlen)
{
	if (knobs_check_value("duration", k->duration, err, errlen) ||
	    knobs_check_value("guidance", k->guidance, err, errlen) ||
	    knobs_check_value("temperature", k->temperature, err, errlen) ||
	    knobs_check_value("top_k", k->top_k, err, errlen) ||
	    knobs_check_value("top_p", k->top_p, err, errlen) ||
	    knobs_check_value("count", k->count, err, errlen))
		return -1;
	return 0;
}

void settings_default(struct settings *s)
{
	memset(s, 0, sizeof *s);
	snprintf(s->backend, sizeof s->backend, "auto");
	s->threads = 0;
	s->device = -1;
	s->autoplay = 1;
	snprintf(s->export_format, sizeof s->export_format, "wav");
	snprintf(s->theme, sizeof s->theme, "default");
}

/* ---- key = value files ---- */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* Calls fn(key, value) for each line; returns -1 at the first bad line. */
typedef int (*kv_fn)(void *ctx, const char *key, const char *val, char *err, size_t errlen);

static int kv_read(const char *path, kv_fn fn, void *ctx, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	char line[4096], msg[512];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected 'key = value', got '%.60s'", path, lineno, s);
			rc = -1;
			break;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		if (fn(ctx, key, val, msg, sizeof msg)) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

static int parse_int(const char *key, const char *v, long min, long max, int *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (!*v || *end || errno || x < min || x > max) {
		snprintf(err, errlen, "%s expects a whole number from %ld to %ld, got '%s'", key, min, max, v);
		return -1;
	}
	*out = (int)x;
	return 0;
}

static int parse_double(const char *key, const char *v, double *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (!*v || *end || errno) {
		snprintf(err, errlen, "%s expects a number, got '%s'", key, v);
		return -1;
	}
	*out = x;
	return 0;
}

static int parse_bool(const char *key, const char *v, int *out, char *err, size_t errlen)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = 0;
	else {
		snprintf(err, errlen, "%s expects yes or no, got '%s'", key, v);
		return -1;
	}
	return 0;
}

static int copy_str(const char *key, const char *v, char *dst, size_t dstlen, char *err, size_t errlen)
{
	if (strlen(v) >= dstlen) {
		snprintf(err, errlen, "%s is longer than %zu bytes", key, dstlen - 1);
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int settings_kv(void *ctx, const char *key, const char *v, char *err, size_t errlen)
{
	struct settings *s = ctx;
	if (!strcmp(key, "model"))
		return copy_str(key, v, s->model, sizeof s->model, err, errlen);
	if (!strcmp(key, "backend")) {
		if (strcmp(v, "auto") && strcmp(v, "cpu") && strcmp(v, "opencl")) {
			snprintf(err, errlen, "backend expects auto, cpu or opencl, got '%s'", v);
			return -1;
		}
		return copy_str(key, v, s->backend, sizeof s->backend, err, errlen);
	}
	if (!strcmp(key, "threads"))
		return parse_int(key, v, 0, 1024, &s->threads, err, errlen);
	if (!strcmp(key, "device")) {
		if (!strcmp(v, "auto") || !*v) {
			s->device = -1;
			return 0;
		}
		return parse_int(key, v, 0, 255, &s->device, err, errlen);
	}
	if (!strcmp(key, "model_dirs"))
		return copy_str(key, v, s->model_dirs, sizeof s->model_dirs, err, errlen);
	if (!strcmp(key, "audio_device"))
		return copy_str(key, v, s->audio_device, sizeof s->audio_device, err, errlen);
	if (!strcmp(key, "autoplay"))
		return parse_bool(key, v, &s->autoplay, err, errlen);
	if (!strcmp(key, "export_dir"))
		return copy_str(key, v, s->export_dir, sizeof s->export_dir, err, errlen);
	if (!strcmp(key, "export_format")) {
		if (strcmp(v, "wav") && strcmp(v, "wav24") && strcmp(v, "wavf") && strcmp(v, "flac") &&
		    strcmp(v, "ogg")) {
			snprintf(err, errlen, "export_format expects wav, wav24, wavf, flac or ogg, got '%s'", v);
			return -1;
		}
		return copy_str(key, v, s->export_format, sizeof s->export_format, err, errlen);
	}
	if (!strcmp(key, "theme"))
		return copy_str(key, v, s->theme, sizeof s->theme, err, errlen);
	snprintf(err, errlen, "unknown setting '%s'", key);
	return -1;
}

int settings_load(struct settings *s, const char *path, char *err, size_t errlen)
{
	return kv_read(path, settings_kv, s, err, errlen);
}

int write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a temporary file beside %s: %s", path, strerror(errno));
		return -1;
	}
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		p += w;
		left -= (size_t)w;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	/* Make the rename itself durable. */
	fsync_parent(path);
	return 0;
}

/* A growing text buffer for writing key = value files. */
struct text {
	char *p;
	size_t n, cap;
};

static void text_addf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_addf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		size_t room = t->cap - t->n;
		va_start(ap, fmt);
		int w = vsnprintf(t->p ? t->p + t->n : NULL, t->p ? room : 0, fmt, ap);
		va_end(ap);
		if (w < 0)
			return;
		if (t->p && (size_t)w < room) {
			t->n += (size_t)w;
			return;
		}
		size_t cap = (t->cap ? t->cap * 2 : 1024) + (size_t)w;
		char *np = realloc(t->p, cap);
		if (!np) {
			fprintf(stderr, "musicgen-tui: out of memory\n");
			abort();
		}
		t->p = np;
		t->cap = cap;
	}
}

int settings_save(const struct settings *s, const char *path, char *err, size_t errlen)
{
	struct text t = {0};
	text_addf(&t, "# musicgen-tui settings (key = value)\n");
	text_addf(&t, "# model: a model directory or a hub id in the local cache; empty = search the cache\n");
	text_addf(&t, "model = %s\n", s->model);
	text_addf(&t, "# backend: auto, cpu or opencl; threads: 0 = all cores\n");
	text_addf(&t, "backend = %s\nthreads = %d\n", s->backend, s->threads);
	text_addf(&t, "# device: the OpenCL device number ('musicgen-tui devices'), auto = the first suitable\n");
	if (s->device >= 0)
		text_addf(&t, "device = %d\n", s->device);
	else
		text_addf(&t, "device = auto\n");
	text_addf(&t, "# model_dirs: more places the model picker (F3) looks in, separated by ':'\n");
	text_addf(&t, "model_dirs = %s\n", s->model_dirs);
	text_addf(&t, "# audio_device: a name from the settings screen; empty = the default device\n");
	text_addf(&t, "audio_device = %s\nautoplay = %s\n", s->audio_device, s->autoplay ? "yes" : "no");
	text_addf(&t, "# export_dir: empty = $XDG_MUSIC_DIR or ~/Music; export_format: wav, wav24, wavf, flac, ogg\n");
	text_addf(&t, "export_dir = %s\nexport_format = %s\n", s->export_dir, s->export_format);
	text_addf(&t, "theme = %s\n", s->theme);
	int rc = write_file_atomic(path, t.p, t.n, err, errlen);
	free(t.p);
	return rc;
}

int settings_path(char *out, size_t outlen, char *err, size_t errlen)
{
	char dir[3000];
	if (xdg_app_dir_make(XDG_CONFIG, dir, sizeof dir, err, errlen))
		return -1;
	if ((size_t)snprintf(out, outlen, "%s/config", dir) >= outlen) {
		snprintf(err, errlen, "settings path too long");
		return -1;
	}
	return 0;
}

/* ---- compose state ---- */

/* The prompt is stored with \n and \\ escaped so it stays one line. */
static void unescape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	for (; *in && o + 1 < outlen; in++) {
		if (*in == '\\' && in[1]) {
			in++;
			out[o++] = *in == 'n' ? '\n' : *in;
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static int state_kv(void *ctx, const char *key, const char *v, char *err, size_t errlen)
{
	struct compose_state *st = ctx;
	double x;
	int i;
	if (!strcmp(key, "prompt")) {
		unescape(v, st->prompt, sizeof st->prompt);
		return 0;
	}
	if (!strcmp(key, "seed_random"))
		return parse_bool(key, v, &st->knobs.seed_random, err, errlen);
	if (!strcmp(key, "seed")) {
		char *end;
		errno = 0;
		unsigned long long s = strtoull(v, &end, 10);
		if (!*v || *v == '-' || *end || errno) {
			snprintf(err, errlen, "seed expects a non-negative whole number, got '%s'", v);
			return -1;
		}
		st->knobs.seed = s;
		return 0;
	}
	if (!strcmp(key, "top_k") || !strcmp(key, "count")) {
		if (parse_int(key, v, 0, 1000000, &i, err, errlen) || knobs_check_value(key, i, err, errlen))
			return -1;
		if (!strcmp(key, "top_k"))
			st->knobs.top_k = i;
		else
			st->knobs.count = i;
		return 0;
	}
	double *dst = !strcmp(key, "duration")      ? &st->knobs.duration
	              : !strcmp(key, "guidance")    ? &st->knobs.guidance
	              : !strcmp(key, "temperature") ? &st->knobs.temperature
	              : !strcmp(key, "top_p")       ? &st->knobs.top_p
	                                            : NULL;
	if (!dst) {
		snprintf(err, errlen, "unknown key '%s'", key);
		return -1;
	}
	if (parse_double(key, v, &x, err, errlen) || knobs_check_value(key, x, err, errlen))
		return -1;
	*dst = x;
	return 0;
}

int state_load(struct compose_state *st, const char *path, char *err, size_t errlen)
{
	return kv_read(path, state_kv, st, err, errlen);
}

int state_save(const struct compose_state *st, const char *path, char *err, size_t errlen)
{
	struct text t = {0};
	text_addf(&t, "# musicgen-tui: the compose pane as it was left\nprompt = ");
	for (const char *p = st->prompt; *p; p++) {
		if (*p == '\n')
			text_addf(&t, "\\n");
		else if (*p == '\\')
			text_addf(&t, "\\\\");
		else
			text_addf(&t, "%c", *p);
	}
	const struct knobs *k = &st->knobs;
	text_addf(&t, "\nduration = %.17g\nguidance = %.17g\ntemperature = %.17g\n", k->duration, k->guidance,
	          k->temperature);
	text_addf(&t, "top_k = %d\ntop_p = %.17g\nseed = %llu\nseed_random = %s\ncount = %d\n", k->top_k, k->top_p,
	          (unsigned long long)k->seed, k->seed_random ? "yes" : "no", k->count);
	int rc = write_file_atomic(path, t.p, t.n, err, errlen);
	free(t.p);
	return rc;
}

int state_path(char *out, size_t outlen, char *err, size_t errlen)
{
	char dir[3000];
	if (xdg_app_dir_make(XDG_STATE, dir, sizeof dir, err, errlen))
		return -1;
	if ((size_t)snprintf(out, outlen, "%s/state", dir) >= outlen) {
		snprintf(err, errlen, "state path too long");
		return -1;
	}
	return 0;
}
