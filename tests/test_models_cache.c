/* test_models_cache.c - models.c on a hub cache built here in huggingface_hub's
 * layout from the reference model tiny-a: listing, completeness, sizes,
 * verification against blob names, the engine's hub-id resolution and
 * safetensors loading through the snapshot's symlinks; and which repository
 * files the downloader fetches. */
#include "autoconfig.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/digest.h"
#include "app/download.h"
#include "app/models.h"
#include "engine/hub.h"
#include "engine/safetensors.h"
#include "tests/tap.h"

static char tmp[PATH_MAX];

/* snprintf without the truncation warnings: every path here is short. */
static void pf(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

static int copy_file(const char *from, const char *to, long flip_at)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	int c, rc = (in && out) ? 0 : -1;
	long pos = 0;
	while (!rc && (c = fgetc(in)) != EOF) {
		if (pos++ == flip_at)
			c ^= 1;
		fputc(c, out);
	}
	if (in)
		fclose(in);
	if (out && fclose(out) != 0)
		rc = -1;
	return rc;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Puts FILE of the model directory into the cache as blobs/ETAG + the snapshot link. */
static int add_file(const char *model, const char *repo_dir, const char *commit, const char *name, int lfs)
{
	char src[PATH_MAX + 64], hex[65], err[256], blob[PATH_MAX + 128], link[PATH_MAX + 128], target[256];
	pf(src, sizeof src, "%s/%s", model, name);
	if ((lfs ? sha256_file(src, hex, NULL, err, sizeof err) : git_blob_sha1_file(src, hex, err, sizeof err)) != 0)
		return -1;
	pf(blob, sizeof blob, "%s/blobs/%s", repo_dir, hex);
	pf(link, sizeof link, "%s/snapshots/%s/%s", repo_dir, commit, name);
	pf(target, sizeof target, "../../blobs/%s", hex);
	return copy_file(src, blob, -1) || symlink(target, link);
}

static int cb_ok, cb_mismatch, cb_total;

static void on_file(const char *file, const char *status, const char *expected, const char *actual, void *user)
{
	(void)file; (void)expected; (void)actual; (void)user;
	cb_total++;
	cb_ok += !strcmp(status, "ok");
	cb_mismatch += !strcmp(status, "MISMATCH");
}

static const struct model_entry *find(const struct model_entry *v, int n, const char *id)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i].id, id))
			return &v[i];
	return NULL;
}

int main(void)
{
	const char *ref = tap_require_ref();
	char model[PATH_MAX], cache[PATH_MAX + 16], repo_dir[PATH_MAX + 64], path[PATH_MAX + 256], err[512];
	const char *commit = "0123456789abcdef0123456789abcdef01234567";
	pf(model, sizeof model, "%s/models/tiny-a", ref);
	pf(path, sizeof path, "%s/model.safetensors", model);
	if (access(path, R_OK) != 0)
		tap_skip_all("reference model tiny-a not found");

	/* which files the downloader fetches */
	tap_ok(dl_wanted_file("config.json") && dl_wanted_file("spiece.model") &&
	       dl_wanted_file("model.safetensors") && dl_wanted_file("model.safetensors.index.json") &&
	       dl_wanted_file("model-00001-of-00002.safetensors") && dl_wanted_file("generation_config.json") &&
	       dl_wanted_file("preprocessor_config.json") && dl_wanted_file("tokenizer_config.json"),
	       "the engine's files are fetched");
	tap_ok(!dl_wanted_file("pytorch_model.bin") && !dl_wanted_file("README.md") &&
	       !dl_wanted_file(".gitattributes") && !dl_wanted_file("model-00001-of-00002.bin") &&
	       !dl_wanted_file("sub/config.json") && !dl_wanted_file("state_dict.bin"),
	       "other files are not");

	pf(tmp, sizeof tmp, "/tmp/mg-models-XXXXXX");
	if (!mkdtemp(tmp))
		tap_skip_all("cannot create a temporary directory");
	pf(cache, sizeof cache, "%s/hub", tmp);
	setenv("HF_HUB_CACHE", cache, 1);
	pf(repo_dir, sizeof repo_dir, "%s/models--test-org--tiny-musicgen", cache);
	pf(path, sizeof path, "mkdir -p '%s/blobs' '%s/refs' '%s/snapshots/%s' '%s/models--other--bert/snapshots/%s'",
	         repo_dir, repo_dir, repo_dir, commit, cache, commit);
	int built = system(path) == 0;
	static const char *const files[] = {"config.json", "generation_config.json", "model.safetensors",
	                                    "spiece.model", "tokenizer_config.json", "special_tokens_map.json",
	                                    "added_tokens.json", "preprocessor_config.json"};
	long total = 0;
	for (size_t i = 0; built && i < sizeof files / sizeof files[0]; i++) {
		int lfs = strstr(files[i], ".safetensors") || strstr(files[i], ".model");
		built = add_file(model, repo_dir, commit, files[i], lfs) == 0;
		struct stat st;
		pf(path, sizeof path, "%s/%s", model, files[i]);
		if (stat(path, &st) == 0)
			total += (long)st.st_size;
	}
	pf(path, sizeof path, "%s/refs/main", repo_dir);
	write_text(path, commit);
	pf(path, sizeof path, "%s/models--other--bert/snapshots/%s/config.json", cache, commit);
	write_text(path, "{\"model_type\": \"bert\"}");
	tap_ok(built, "a hub cache in huggingface_hub's layout built from tiny-a");

	struct model_entry *v;
	int n;
	tap_ok(models_list(NULL, 0, &v, &n, err, sizeof err) == 0, "models_list succeeds");
	const struct model_entry *e = find(v, n, "test-org/tiny-musicgen");
	tap_ok(n == 1 && e, "only the MusicGen repository is listed (%d entries)", n);
	tap_ok(e && e->in_cache && e->complete && !strcmp(e->revision, "main") && !strcmp(e->commit, commit),
	       "it is complete, at revision main, commit %s", e ? e->commit : "?");
	tap_ok(e && (long)e->size == total, "its size is the sum of its files (%llu, expected %ld)",
	       e ? (unsigned long long)e->size : 0ULL, total);
	tap_ok(e && !strncmp(e->type, "musicgen", 8), "model_type read from config.json: %s", e ? e->type : "?");
	free(v);

	/* The engine finds the snapshot by hub id and opens the weights through the links. */
	char dir[PATH_MAX], id[256], rev[128];
	int rc = mg_resolve_model("test-org/tiny-musicgen", 0, dir, sizeof dir, id, sizeof id, rev, sizeof rev,
	                          err, sizeof err);
	pf(path, sizeof path, "%s/snapshots/%s", repo_dir, commit);
	tap_ok(rc == 0 && !strcmp(dir, path) && !strcmp(rev, commit), "mg_resolve_model finds the snapshot: %s",
	       rc == 0 ? dir : err);
	st_set *st = NULL;
	rc = st_open(&st, dir, err, sizeof err);
	tap_ok(rc == 0 && st && st_count(st) > 0, "the weights open through the blob symlinks (%zu tensors)",
	       st ? st_count(st) : (size_t)0);
	st_close(st);

	struct model_entry m;
	tap_ok(models_find("test-org/tiny-musicgen", NULL, &m, err, sizeof err) == 0 && m.complete,
	       "models_find by hub id");
	tap_ok(models_find("test-org/tiny-musicgen", commit, &m, err, sizeof err) == 0 && !strcmp(m.commit, commit),
	       "models_find by commit");
	tap_ok(models_find("test-org/tiny-musicgen", "v9", &m, err, sizeof err) != 0 && strstr(err, "v9"),
	       "models_find of an unknown revision fails naming it: %s", err);
	tap_ok(models_find("test-org/absent", NULL, &m, err, sizeof err) != 0 && strstr(err, "test-org/absent"),
	       "models_find of an absent model fails naming it");

	models_find("test-org/tiny-musicgen", NULL, &m, err, sizeof err);
	cb_ok = cb_mismatch = cb_total = 0;
	rc = models_verify(&m, on_file, NULL, NULL, err, sizeof err);
	tap_ok(rc == 0 && cb_ok == 8 && cb_total == 8, "models_verify: 8 files ok (%d ok of %d)", cb_ok, cb_total);

	/* A blob altered on disk. */
	char src[PATH_MAX + 64], hex[65];
	pf(src, sizeof src, "%s/model.safetensors", model);
	sha256_file(src, hex, NULL, err, sizeof err);
	pf(path, sizeof path, "%s/blobs/%s", repo_dir, hex);
	copy_file(src, path, 4096);
	cb_ok = cb_mismatch = cb_total = 0;
	rc = models_verify(&m, on_file, NULL, NULL, err, sizeof err);
	tap_ok(rc == 1 && cb_mismatch == 1 && cb_ok == 7, "an altered LFS blob is a mismatch (%d)", cb_mismatch);
	copy_file(src, path, -1);
	pf(src, sizeof src, "%s/config.json", model);
	git_blob_sha1_file(src, hex, err, sizeof err);
	pf(path, sizeof path, "%s/blobs/%s", repo_dir, hex);
	copy_file(src, path, 10);
	cb_ok = cb_mismatch = cb_total = 0;
	rc = models_verify(&m, on_file, NULL, NULL, err, sizeof err);
	tap_ok(rc == 1 && cb_mismatch == 1, "an altered git blob is a mismatch too");
	copy_file(src, path, -1);

	/* A partial download makes it incomplete. */
	pf(path, sizeof path, "%s/blobs/%064d.incomplete", repo_dir, 0);
	write_text(path, "partial");
	models_find("test-org/tiny-musicgen", NULL, &m, err, sizeof err);
	tap_ok(!m.complete && strstr(m.problem, "incomplete"), "an .incomplete blob: incomplete (%s)", m.problem);
	unlink(path);

	/* A missing spiece.model too. */
	pf(path, sizeof path, "%s/snapshots/%s/spiece.model", repo_dir, commit);
	unlink(path);
	models_find("test-org/tiny-musicgen", NULL, &m, err, sizeof err);
	tap_ok(!m.complete && strstr(m.problem, "spiece.model"), "no spiece.model: incomplete (%s)", m.problem);
	cb_ok = cb_mismatch = cb_total = 0;
	tap_ok(models_verify(&m, on_file, NULL, NULL, err, sizeof err) == 1, "and verify fails on it");

	/* Extra directories: a model directory itself, and its parent. */
	const char *dirs[] = {model};
	tap_ok(models_list(dirs, 1, &v, &n, err, sizeof err) == 0 && (e = find(v, n, "tiny-a")) && !e->in_cache &&
	       e->complete && !strcmp(e->path, model), "a model directory given with --dir is listed, complete");
	free(v);
	pf(path, sizeof path, "%s/models", ref);
	const char *parent[] = {path};
	tap_ok(models_list(parent, 1, &v, &n, err, sizeof err) == 0 && find(v, n, "tiny-a"),
	       "so is one found inside a directory given with --dir");
	free(v);
	tap_ok(models_check_dir("/nonexistent/dir", &m, err, sizeof err) != 0 && strstr(err, "/nonexistent/dir"),
	       "a missing directory is an error naming it");

	pf(path, sizeof path, "rm -rf '%s'", tmp);
	if (system(path) != 0)
		tap_diag("could not remove %s", tmp);
	return tap_done();
}
