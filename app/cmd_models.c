/* cmd_models.c - `musicgen-tui models`: the MusicGen models in the hub cache
 * and in extra model directories, and `models --verify ID` (app/models.c). */
#include "autoconfig.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "app/cli.h"
#include "app/commands.h"
#include "app/models.h"
#include "app/settings.h"
#include "app/util.h"
#include "app/xdg.h"
#include "engine/hub.h"

#define MAX_DIRS 32

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: musicgen-tui models [--dir PATH]... [--json]\n"
	        "       musicgen-tui models --verify ID [--revision REV] [--json]\n"
	        "Lists the MusicGen models in the Hugging Face cache (HF_HUB_CACHE, HF_HOME/hub\n"
	        "or ~/.cache/huggingface/hub), in the given directories and in the settings'\n"
	        "model_dirs: id, revision, size on disk, and whether the model is complete.\n"
	        "  --dir PATH       also look in PATH (a model directory, a directory of them,\n"
	        "                   or another hub cache); may be repeated\n"
	        "  --verify ID      re-hash the files of ID (ORG/NAME in the cache, or a\n"
	        "                   directory) against their checksums; exit 1 on a mismatch\n"
	        "  --revision REV   the revision to verify (default main)\n"
	        "  --json           machine-readable output\n");
}

static json_t *entry_json(const struct model_entry *e)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:b, s:s}",
	                 "id", e->id, "revision", e->revision, "commit", e->commit, "path", e->path,
	                 "model_type", e->type, "size", (json_int_t)e->size, "in_cache", e->in_cache,
	                 "complete", e->complete, "problem", e->problem);
}

static int list_models(const char *const *dirs, int ndirs, int json)
{
	struct model_entry *v;
	int n;
	char err[512], cache[PATH_MAX];
	if (models_list(dirs, ndirs, &v, &n, err, sizeof err) != 0) {
		fprintf(stderr, "musicgen-tui models: %s\n", err);
		return 1;
	}
	if (json) {
		json_t *arr = json_array();
		for (int i = 0; i < n; i++)
			json_array_append_new(arr, entry_json(&v[i]));
		char *s = json_dumps(arr, JSON_INDENT(2));
		printf("%s\n", s ? s : "[]");
		free(s);
		json_decref(arr);
		free(v);
		return 0;
	}
	if (mg_hub_cache_dir(cache, sizeof cache) != 0)
		cache[0] = 0;
	if (!n) {
		printf("No MusicGen models found (hub cache: %s%s).\n"
		       "Fetch one with: musicgen-tui download facebook/musicgen-small\n",
		       cache, ndirs ? ", and the given directories" : "");
		free(v);
		return 0;
	}
	printf("%-36s %-12s %-12s %10s  %s\n", "ID", "REVISION", "COMMIT", "SIZE", "STATUS");
	for (int i = 0; i < n; i++) {
		char size[32];
		bytes_human((double)v[i].size, size, sizeof size);
		printf("%-36s %-12s %-12.12s %10s  %s%s%s\n", v[i].id,
		       v[i].in_cache ? (v[i].revision[0] ? v[i].revision : "-") : "(dir)",
		       v[i].in_cache ? v[i].commit : "-", size,
		       v[i].complete ? "complete" : "incomplete", v[i].complete ? "" : ": ", v[i].problem);
		if (!v[i].in_cache)
			printf("  %s\n", v[i].path);
	}
	free(v);
	return 0;
}

struct verify_out {
	int json;
	json_t *files;
};

static void on_file(const char *file, const char *status, const char *expected, const char *actual, void *user)
{
	struct verify_out *o = user;
	if (o->json) {
		json_array_append_new(o->files, json_pack("{s:s, s:s, s:s, s:s}", "file", file, "status", status,
		                                          "expected", expected, "actual", actual));
		return;
	}
	if (!strcmp(status, "MISMATCH"))
		printf("  %-34s MISMATCH (expected %s, got %s)\n", file, expected, actual);
	else
		printf("  %-34s %s\n", file, status);
	fflush(stdout);
}

static int verify_model(const char *id, const char *revision, int json)
{
	struct model_entry m;
	char err[1024];
	struct stat st;
	int found = stat(id, &st) == 0 && S_ISDIR(st.st_mode) ?
	            models_check_dir(id, &m, err, sizeof err) : models_find(id, revision, &m, err, sizeof err);
	if (found != 0) {
		fprintf(stderr, "musicgen-tui models: %s\n", err);
		return 1;
	}
	struct verify_out o = {.json = json, .files = json ? json_array() : NULL};
	if (!json)
		printf("%s%s%s (%s)\n", m.id, m.commit[0] ? " " : "", m.commit, m.path);
	int rc = models_verify(&m, on_file, &o, NULL, err, sizeof err);
	if (rc < 0) {
		json_decref(o.files);
		fprintf(stderr, "musicgen-tui models: %s\n", err);
		return 1;
	}
	if (json) {
		json_t *root = entry_json(&m);
		json_object_set_new(root, "files", o.files);
		json_object_set_new(root, "ok", json_boolean(rc == 0));
		char *s = json_dumps(root, JSON_INDENT(2));
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(root);
	} else if (rc == 0) {
		printf("%s: every file matches its checksum%s\n", m.id, m.in_cache ? "" : " (a plain directory has none to check)");
	} else {
		printf("%s: %s\n", m.id, m.complete ? "checksum mismatch" : m.problem);
	}
	return rc == 0 ? 0 : 1;
}

int cmd_models(int argc, char **argv)
{
	const char *dirs[MAX_DIRS], *verify = NULL, *revision = NULL;
	int ndirs = 0, json = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (cli_help_or_version(a, usage)) {
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--dir") || !strcmp(a, "--verify") || !strcmp(a, "--revision")) {
			if (++i >= argc) {
				fprintf(stderr, "musicgen-tui models: %s expects a value\n", a);
				return 2;
			}
			if (!strcmp(a, "--verify"))
				verify = argv[i];
			else if (!strcmp(a, "--revision"))
				revision = argv[i];
			else if (ndirs == MAX_DIRS) {
				fprintf(stderr, "musicgen-tui models: at most %d --dir options\n", MAX_DIRS);
				return 2;
			} else
				dirs[ndirs++] = argv[i];
		} else {
			fprintf(stderr, "musicgen-tui models: unknown argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (verify)
		return verify_model(verify, revision, json);
	if (revision) {
		fprintf(stderr, "musicgen-tui models: --revision goes with --verify\n");
		return 2;
	}
	/* The settings' model_dirs (':'-separated) are searched too. */
	static struct settings st;
	char cfg[1200], err[1200];
	settings_default(&st);
	if (xdg_app_dir(XDG_CONFIG, cfg, sizeof cfg - 8, err, sizeof err) == 0) {
		strcat(cfg, "/config");
		if (settings_load(&st, cfg, err, sizeof err))
			fprintf(stderr, "musicgen-tui models: ignoring the settings: %s\n", err);
	}
	for (char *d = strtok(st.model_dirs, ":"); d && ndirs < MAX_DIRS; d = strtok(NULL, ":"))
		if (*d)
			dirs[ndirs++] = d;
	return list_models(dirs, ndirs, json);
}
