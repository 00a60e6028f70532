/* models.c - finding and checking the models on this machine. See models.h. */
#include "autoconfig.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "app/digest.h"
#include "app/models.h"
#include "engine/hub.h"

struct list {
	struct model_entry *v;
	int n, cap;
};

static struct model_entry *list_add(struct list *l)
{
	if (l->n == l->cap) {
		int cap = l->cap ? 2 * l->cap : 16;
		struct model_entry *v = realloc(l->v, (size_t)cap * sizeof *v);
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof l->v[0]);
	return &l->v[l->n++];
}

static int is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_hex_commit(const char *s)
{
	size_t n = strlen(s);
	if (n != 40 && n != 64)
		return 0;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return 0;
	return 1;
}

static void append_problem(struct model_entry *e, const char *what)
{
	size_t n = strlen(e->problem);
	snprintf(e->problem + n, sizeof e->problem - n, "%s%s", n ? "; " : "", what);
}

/* Adds the size of path to e->size unless its inode was counted already. */
struct seen {
	dev_t dev[64];
	ino_t ino[64];
	int n;
};

static void add_size(struct model_entry *e, struct seen *s, const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return;
	for (int i = 0; i < s->n; i++)
		if (s->dev[i] == st.st_dev && s->ino[i] == st.st_ino)
			return;
	if (s->n < 64) {
		s->dev[s->n] = st.st_dev;
		s->ino[s->n] = st.st_ino;
		s->n++;
	}
	e->size += (uint64_t)st.st_size;
}

/* model_type from config.json, "" when it cannot be read. */
static void read_model_type(const char *dir, char *out, size_t len)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/config.json", dir);
	out[0] = 0;
	json_t *root = is_file(path) ? json_load_file(path, 0, NULL) : NULL; /* a FIFO would block */
	json_t *t = root ? json_object_get(root, "model_type") : NULL;
	if (json_is_string(t))
		snprintf(out, len, "%s", json_string_value(t));
	json_decref(root);
}

/* Completeness and size of a model directory (a snapshot or a plain one). */
static void check_files(const char *dir, struct model_entry *e)
{
	char path[PATH_MAX + 300];
	struct seen seen = {.n = 0};
	e->problem[0] = 0;
	e->size = 0;
	read_model_type(dir, e->type, sizeof e->type);

	static const char *const files[] = {"config.json", "spiece.model", "generation_config.json",
	                                    "tokenizer_config.json", "special_tokens_map.json",
	                                    "added_tokens.json", "preprocessor_config.json", "tokenizer.json"};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		if (is_file(path))
			add_size(e, &seen, path);
		else if (i < 2) {
			char msg[64];
			snprintf(msg, sizeof msg, "no %s", files[i]);
			append_problem(e, msg);
		}
	}
	snprintf(path, sizeof path, "%s/model.safetensors", dir);
	if (is_file(path)) {
		add_size(e, &seen, path);
	} else {
		snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
		json_t *root = is_file(path) ? json_load_file(path, 0, NULL) : NULL;
		json_t *map = root ? json_object_get(root, "weight_map") : NULL;
		if (!json_is_object(map)) {
			append_problem(e, root ? "model.safetensors.index.json has no weight_map" : "no model.safetensors");
		} else {
			add_size(e, &seen, path);
			const char *key;
			json_t *val;
			int missing = 0;
			json_object_foreach(map, key, val) {
				if (!json_is_string(val))
					continue;
				snprintf(path, sizeof path, "%s/%s", dir, json_string_value(val));
				if (is_file(path))
					add_size(e, &seen, path);
				else if (!missing++) {
					char msg[300];
					snprintf(msg, sizeof msg, "no %s", json_string_value(val));
					append_problem(e, msg);
				}
			}
		}
		json_decref(root);
	}
	e->complete = e->problem[0] == 0;
}

int models_check_dir(const char *dir, struct model_entry *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!is_dir(dir)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	snprintf(out->path, sizeof out->path, "%s", dir);
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	const char *base = dir + n;
	while (base > dir && base[-1] != '/')
		base--;
	snprintf(out->id, sizeof out->id, "%.*s", (int)(dir + n - base), base);
	check_files(dir, out);
	return 0;
}

/* Adds to names the refs under refs_dir (nested names such as refs/pr/1 too)
 * that hold commit. */
static void refs_naming(const char *refs_dir, const char *prefix, const char *commit,
                        char *names, size_t len, int depth)
{
	DIR *d = opendir(refs_dir);
	struct dirent *de;
	if (!d || depth > 3) {
		if (d)
			closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		char path[PATH_MAX], name[256], buf[128] = "";
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", refs_dir, de->d_name);
		snprintf(name, sizeof name, "%s%s", prefix, de->d_name);
		if (is_dir(path)) {
			char sub[300];
			snprintf(sub, sizeof sub, "%s/", name);
			refs_naming(path, sub, commit, names, len, depth + 1);
			continue;
		}
		FILE *f = is_file(path) ? fopen(path, "r") : NULL;
		if (!f)
			continue;
		if (!fgets(buf, sizeof buf, f))
			buf[0] = 0;
		fclose(f);
		buf[strcspn(buf, " \r\n")] = 0;
		if (!strcmp(buf, commit)) {
			size_t n = strlen(names);
			snprintf(names + n, len - n, "%s%s", n ? " " : "", name);
		}
	}
	closedir(d);
}

static int count_incomplete(const char *repo_dir)
{
	char blobs[PATH_MAX + 8];
	snprintf(blobs, sizeof blobs, "%s/blobs", repo_dir);
	DIR *d = opendir(blobs);
	int n = 0;
	struct dirent *de;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 11 && !strcmp(de->d_name + l - 11, ".incomplete"))
			n++;
	}
	closedir(d);
	return n;
}

/* "models--ORG--NAME" -> "ORG/NAME". */
static int repo_id_from_dir(const char *dname, char *id, size_t len)
{
	if (strncmp(dname, "models--", 8) != 0)
		return -1;
	const char *sep = strstr(dname + 8, "--");
	if (!sep || sep == dname + 8 || !sep[2])
		return -1;
	snprintf(id, len, "%.*s/%s", (int)(sep - (dname + 8)), dname + 8, sep + 2);
	return mg_is_hub_id(id) ? 0 : -1;
}

static void fill_snapshot(struct model_entry *e, const char *repo_dir, const char *id, const char *commit)
{
	char refs[PATH_MAX + 8];
	snprintf(e->id, sizeof e->id, "%s", id);
	snprintf(e->commit, sizeof e->commit, "%s", commit);
	snprintf(e->path, sizeof e->path, "%s/snapshots/%s", repo_dir, commit);
	snprintf(refs, sizeof refs, "%s/refs", repo_dir);
	refs_naming(refs, "", commit, e->revision, sizeof e->revision, 0);
	e->in_cache = 1;
	check_files(e->path, e);
	int partial = count_incomplete(repo_dir);
	if (partial) {
		char msg[96];
		snprintf(msg, sizeof msg, "%d partial download%s (.incomplete)", partial, partial > 1 ? "s" : "");
		append_problem(e, msg);
		e->complete = 0;
	}
}

static int is_musicgen(const struct model_entry *e)
{
	if (e->type[0])
		return !strncmp(e->type, "musicgen", 8);
	/* No readable config (yet): keep it when the name says what it is. */
	for (const char *p = e->id; *p; p++)
		if (!strncasecmp(p, "musicgen", 8))
			return 1;
	return 0;
}

static int scan_cache(const char *cache, struct list *l)
{
	DIR *d = opendir(cache);
	struct dirent *de;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char id[256], repo_dir[PATH_MAX], snaps[PATH_MAX + 16];
		if (repo_id_from_dir(de->d_name, id, sizeof id))
			continue;
		snprintf(repo_dir, sizeof repo_dir, "%s/%s", cache, de->d_name);
		snprintf(snaps, sizeof snaps, "%s/snapshots", repo_dir);
		DIR *s = opendir(snaps);
		if (!s)
			continue;
		struct dirent *se;
		while ((se = readdir(s))) {
			if (se->d_name[0] == '.' || strlen(se->d_name) >= 65)
				continue;
			struct model_entry *e = list_add(l);
			if (!e) {
				closedir(s);
				closedir(d);
				return -1;
			}
			fill_snapshot(e, repo_dir, id, se->d_name);
			if (!is_musicgen(e))
				l->n--;
		}
		closedir(s);
	}
	closedir(d);
	return 0;
}

static int has_hub_layout(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;
	if (!d)
		return 0;
	while (!found && (de = readdir(d)))
		found = !strncmp(de->d_name, "models--", 8);
	closedir(d);
	return found;
}

static int scan_dir(const char *dir, struct list *l)
{
	char path[PATH_MAX + 300], err[256];
	snprintf(path, sizeof path, "%s/config.json", dir);
	if (is_file(path)) {
		struct model_entry *e = list_add(l);
		if (!e)
			return -1;
		if (models_check_dir(dir, e, err, sizeof err) != 0 || !is_musicgen(e))
			l->n--;
		return 0;
	}
	if (has_hub_layout(dir))
		return scan_cache(dir, l);
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/config.json", dir, de->d_name);
		if (!is_file(path))
			continue;
		struct model_entry *e = list_add(l);
		if (!e) {
			closedir(d);
			return -1;
		}
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (models_check_dir(path, e, err, sizeof err) != 0 || !is_musicgen(e))
			l->n--;
	}
	closedir(d);
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct model_entry *x = a, *y = b;
	int c = x->in_cache != y->in_cache ? y->in_cache - x->in_cache : strcmp(x->id, y->id);
	if (!c)
		c = strcmp(x->revision[0] ? x->revision : "~", y->revision[0] ? y->revision : "~");
	return c ? c : strcmp(x->path, y->path);
}

int models_list(const char *const *dirs, int ndirs, struct model_entry **out, int *count,
                char *err, size_t errlen)
{
	struct list l = {0};
	char cache[PATH_MAX];
	*out = NULL;
	*count = 0;
	if (mg_hub_cache_dir(cache, sizeof cache) == 0 && scan_cache(cache, &l) != 0)
		goto oom;
	for (int i = 0; i < ndirs; i++)
		if (scan_dir(dirs[i], &l) != 0)
			goto oom;
	if (l.n)
		qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_entry);
	*out = l.v;
	*count = l.n;
	return 0;
oom:
	free(l.v);
	snprintf(err, errlen, "out of memory listing models");
	return -1;
}

int models_find(const char *id, const char *revision, struct model_entry *out, char *err, size_t errlen)
{
	char repo_dir[PATH_MAX], ref[PATH_MAX + 200], commit[128] = "", snap[PATH_MAX + 200];
	memset(out, 0, sizeof *out);
	if (!revision || !*revision)
		revision = "main";
	if (!mg_is_hub_id(id) || mg_hub_repo_dir(id, repo_dir, sizeof repo_dir)) {
		snprintf(err, errlen, "'%s' is not a hub id (ORG/NAME)", id);
		return -1;
	}
	if (!is_dir(repo_dir)) {
		snprintf(err, errlen, "%s is not in the Hugging Face cache (looked in %s)", id, repo_dir);
		return -1;
	}
	if (strstr(revision, "..")) {
		snprintf(err, errlen, "'%s' is not a valid revision", revision);
		return -1;
	}
	snprintf(ref, sizeof ref, "%s/refs/%s", repo_dir, revision);
	FILE *f = is_file(ref) ? fopen(ref, "r") : NULL;
	if (f) {
		if (!fgets(commit, sizeof commit, f))
			commit[0] = 0;
		fclose(f);
		commit[strcspn(commit, " \r\n")] = 0;
	} else if (is_hex_commit(revision)) {
		snprintf(commit, sizeof commit, "%s", revision);
	}
	if (!commit[0] || strchr(commit, '/') || strstr(commit, "..")) {
		snprintf(err, errlen, "%s: no revision '%s' in the cache (%s is missing or empty)", id, revision, ref);
		return -1;
	}
	snprintf(snap, sizeof snap, "%s/snapshots/%s", repo_dir, commit);
	if (!is_dir(snap)) {
		snprintf(err, errlen, "%s: snapshot %s is missing from the cache", id, commit);
		return -1;
	}
	fill_snapshot(out, repo_dir, id, commit);
	return 0;
}

static int verify_one(const char *path, const char *name, models_verify_fn cb, void *user,
                      const atomic_int *cancel, int *bad, char *err, size_t errlen)
{
	char target[PATH_MAX], hex[65], herr[512];
	ssize_t n = readlink(path, target, sizeof target - 1);
	const char *blob = "";
	if (n > 0) {
		target[n] = 0;
		const char *slash = strrchr(target, '/');
		blob = slash ? slash + 1 : target;
	}
	if (!is_file(path)) {
		*bad = 1;
		if (cb)
			cb(name, "missing", blob, "", user);
		return 0;
	}
	size_t bl = strlen(blob);
	int sha256 = bl == 64 && is_hex_commit(blob), git = bl == 40 && is_hex_commit(blob);
	if (!sha256 && !git) {
		if (cb)
			cb(name, "unchecked", "", "", user);
		return 0;
	}
	int rc = sha256 ? sha256_file(path, hex, cancel, herr, sizeof herr)
	                : git_blob_sha1_file(path, hex, herr, sizeof herr);
	if (rc != 0) {
		snprintf(err, errlen, "%s", herr);
		return -1;
	}
	int ok = !strcasecmp(hex, blob);
	if (!ok)
		*bad = 1;
	if (cb)
		cb(name, ok ? "ok" : "MISMATCH", blob, hex, user);
	return 0;
}

int models_verify(const struct model_entry *m, models_verify_fn cb, void *user,
                  const atomic_int *cancel, char *err, size_t errlen)
{
	DIR *d = opendir(m->path);
	if (!d) {
		snprintf(err, errlen, "%s: %s", m->path, strerror(errno));
		return -1;
	}
	/* Sorted names, so that the report reads the same every time. */
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			char **v = realloc(names, cap * sizeof *v);
			if (!v)
				break;
			names = v;
		}
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
			char *t = names[k];
			names[k] = names[k - 1];
			names[k - 1] = t;
		}
	int bad = 0, rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char path[PATH_MAX + 300];
		snprintf(path, sizeof path, "%s/%s", m->path, names[i]);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		if (cancel && atomic_load(cancel)) {
			snprintf(err, errlen, "verification cancelled");
			rc = -1;
			break;
		}
		rc = verify_one(path, names[i], cb, user, cancel, &bad, err, errlen);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc)
		return -1;
	return bad || !m->complete ? 1 : 0;
}
