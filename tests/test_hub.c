/* test_hub.c - model paths: the cache directory's environment precedence,
 * hub ids, refs/main -> snapshots/REV, and the error messages. */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/hub.h"
#include "tests/tap.h"

static char tmp[256];

static void put(const char *rel, const char *text)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", tmp, rel);
	/* make the parent directories */
	for (char *s = p + strlen(tmp) + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		mkdir(p, 0700);
		*s = '/';
	}
	if (text) {
		FILE *f = fopen(p, "w");
		fputs(text, f);
		fclose(f);
	} else
		mkdir(p, 0700);
}

static void clear_env(void)
{
	unsetenv("HF_HUB_CACHE");
	unsetenv("HUGGINGFACE_HUB_CACHE");
	unsetenv("HF_HOME");
	unsetenv("XDG_CACHE_HOME");
}

static int cache_is(const char *want)
{
	char d[PATH_MAX];
	return mg_hub_cache_dir(d, sizeof d) == 0 && !strcmp(d, want);
}

static void test_cache_dir(void)
{
	clear_env();
	setenv("HOME", "/home/someone", 1);
	tap_ok(cache_is("/home/someone/.cache/huggingface/hub"), "no variables: $HOME/.cache/huggingface/hub");
	setenv("XDG_CACHE_HOME", "/xdg", 1);
	tap_ok(cache_is("/xdg/huggingface/hub"), "XDG_CACHE_HOME beats HOME");
	setenv("HF_HOME", "/hfhome", 1);
	tap_ok(cache_is("/hfhome/hub"), "HF_HOME beats XDG_CACHE_HOME and HOME: $HF_HOME/hub");
	setenv("HUGGINGFACE_HUB_CACHE", "/legacy", 1);
	tap_ok(cache_is("/legacy"), "HUGGINGFACE_HUB_CACHE (older name) beats HF_HOME");
	setenv("HF_HUB_CACHE", "/hubcache", 1);
	tap_ok(cache_is("/hubcache"), "HF_HUB_CACHE beats everything");
	setenv("HF_HUB_CACHE", "", 1);
	setenv("HUGGINGFACE_HUB_CACHE", "", 1);
	tap_ok(cache_is("/hfhome/hub"), "empty variables count as unset");
	char d[PATH_MAX];
	setenv("HF_HUB_CACHE", "/c", 1);
	tap_ok(mg_hub_repo_dir("facebook/musicgen-small", d, sizeof d) == 0 &&
	           !strcmp(d, "/c/models--facebook--musicgen-small"),
	       "ORG/NAME -> <cache>/models--ORG--NAME");
	tap_ok(mg_hub_repo_dir("not-an-id", d, sizeof d) != 0, "a name without '/' has no cache path");
	char tiny[8];
	tap_ok(mg_hub_repo_dir("facebook/musicgen-small", tiny, sizeof tiny) != 0, "a too-small buffer is an error");
	clear_env();
}

static void test_is_hub_id(void)
{
	tap_ok(mg_is_hub_id("facebook/musicgen-small") && mg_is_hub_id("a/b") && mg_is_hub_id("Org_1/name.v2-x"),
	       "hub ids: facebook/musicgen-small, a/b, Org_1/name.v2-x");
	tap_ok(!mg_is_hub_id("/abs/path") && !mg_is_hub_id("./x") && !mg_is_hub_id("a/b/c") && !mg_is_hub_id("a/") &&
	           !mg_is_hub_id("musicgen") && !mg_is_hub_id("../x") && !mg_is_hub_id("a/..") &&
	           !mg_is_hub_id("a b/c") && !mg_is_hub_id(""),
	       "not hub ids: absolute, ./, two slashes, trailing slash, no slash, .., spaces, empty");
}

#define REV "0123456789abcdef0123456789abcdef01234567"

static void test_resolve(void)
{
	char dir[PATH_MAX], id[256], rev[128], err[1024], want[PATH_MAX], cache[600], other[600];
	snprintf(cache, sizeof cache, "%s/cache", tmp);
	snprintf(other, sizeof other, "%s/home/hub", tmp);
	put("cache/models--org--tiny/refs/main", REV "\n");
	put("cache/models--org--tiny/snapshots/" REV "/config.json", "{}");
	clear_env();
	setenv("HF_HUB_CACHE", cache, 1);

	int rc = mg_resolve_model("org/tiny", 0, dir, sizeof dir, id, sizeof id, rev, sizeof rev, err, sizeof err);
	snprintf(want, sizeof want, "%s/models--org--tiny/snapshots/%s", cache, REV);
	tap_ok(rc == 0 && !strcmp(dir, want) && !strcmp(id, "org/tiny") && !strcmp(rev, REV),
	       "hub id: refs/main -> snapshots/REV, id and revision reported");

	/* Precedence on disk: the model only under $HF_HOME/hub is found only
	 * when HF_HUB_CACHE does not point elsewhere. */
	put("home/hub/models--org--elsewhere/refs/main", "abcdef1\n");
	put("home/hub/models--org--elsewhere/snapshots/abcdef1/config.json", "{}");
	char home[600];
	snprintf(home, sizeof home, "%s/home", tmp);
	setenv("HF_HOME", home, 1);
	rc = mg_resolve_model("org/elsewhere", 0, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, cache), "HF_HUB_CACHE set: HF_HOME's cache is not searched ('%s')", err);
	unsetenv("HF_HUB_CACHE");
	rc = mg_resolve_model("org/elsewhere", 0, dir, sizeof dir, NULL, 0, rev, sizeof rev, err, sizeof err);
	tap_ok(rc == 0 && strstr(dir, "home/hub/models--org--elsewhere/snapshots/abcdef1") && !strcmp(rev, "abcdef1"),
	       "HF_HOME/hub used when HF_HUB_CACHE is unset");
	setenv("HF_HUB_CACHE", cache, 1);

	/* refs/main names a snapshot that is not there */
	put("cache/models--org--gone/refs/main", "fedcba9876543210\n");
	put("cache/models--org--gone/snapshots", NULL);
	rc = mg_resolve_model("org/gone", 0, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "org/gone") && strstr(err, "fedcba9876543210") && strstr(err, "missing"),
	       "missing snapshot: '%s'", err);

	/* refs/main that tries to leave the snapshots directory */
	put("cache/models--org--evil/refs/main", "..\n");
	put("cache/models--org--evil/snapshots/x/config.json", "{}");
	rc = mg_resolve_model("org/evil", 0, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "invalid revision"), "refs/main '..' is refused: '%s'", err);
	put("cache/models--org--evil2/refs/main", "../../etc\n");
	rc = mg_resolve_model("org/evil2", 0, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "invalid revision"), "refs/main with '/' is refused: '%s'", err);

	/* no refs/main: one snapshot is taken, several are ambiguous, none is an error */
	put("cache/models--org--one/snapshots/abc1234/config.json", "{}");
	rc = mg_resolve_model("org/one", 0, dir, sizeof dir, NULL, 0, rev, sizeof rev, err, sizeof err);
	tap_ok(rc == 0 && !strcmp(rev, "abc1234") && strstr(dir, "models--org--one/snapshots/abc1234"),
	       "no refs/main, a single snapshot: used");
	put("cache/models--org--two/snapshots/abc1234/config.json", "{}");
	put("cache/models--org--two/snapshots/def5678/config.json", "{}");
	rc = mg_resolve_model("org/two", 0, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "several"), "no refs/main, two snapshots: '%s'", err);
	put("cache/models--org--none/blobs", NULL);
	rc = mg_resolve_model("org/none", 0, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "no refs/main"), "no refs/main, no snapshots: '%s'", err);

	/* not in the cache at all */
	rc = mg_resolve_model("facebook/musicgen-nonexistent", 0, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "facebook/musicgen-nonexistent") && strstr(err, "Hugging Face cache") &&
	           strstr(err, "models--facebook--musicgen-nonexistent"),
	       "not found: '%s'", err);
	rc = mg_resolve_model("/no/such/dir", 0, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "/no/such/dir"), "a missing path: '%s'", err);
	rc = mg_resolve_model("", 0, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "no model"), "an empty name: '%s'", err);

	/* a plain directory is used as it is */
	put("plain/mymodel/config.json", "{}");
	char plain[600];
	snprintf(plain, sizeof plain, "%s/plain/mymodel", tmp);
	rc = mg_resolve_model(plain, 0, dir, sizeof dir, id, sizeof id, rev, sizeof rev, err, sizeof err);
	tap_ok(rc == 0 && !strcmp(dir, plain) && !strcmp(id, "mymodel") && !strcmp(rev, ""),
	       "a plain directory: itself, id = its name, no revision");
	char file[700];
	snprintf(file, sizeof file, "%s/config.json", plain);
	rc = mg_resolve_model(file, 0, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "not a model directory"), "a file where a directory is expected: '%s'", err);
	rc = mg_resolve_model(file, 1, dir, sizeof dir, NULL, 0, NULL, 0, err, sizeof err);
	tap_ok(rc == 0 && !strcmp(dir, file), "a file is accepted when allowed (spiece.model for tokenize)");
	/* a relative directory that looks like a hub id is a directory first */
	if (chdir(tmp) == 0) {
		put("org/tiny/config.json", "{}");
		rc = mg_resolve_model("org/tiny", 0, dir, sizeof dir, NULL, 0, rev, sizeof rev, err, sizeof err);
		tap_ok(rc == 0 && !strcmp(dir, "org/tiny") && !strcmp(rev, ""),
		       "an existing directory ORG/NAME wins over the cache");
	} else
		tap_skip("cannot enter the temporary directory");
	clear_env();
}

int main(void)
{
	snprintf(tmp, sizeof tmp, "%s/mg-hub-XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp)) {
		printf("Bail out! cannot make a temporary directory (%s)\n", strerror(errno));
		return 1;
	}
	test_cache_dir();
	test_is_hub_id();
	test_resolve();
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (chdir("/") != 0 || system(cmd) != 0)
		tap_diag("could not remove %s", tmp);
	return tap_done();
}
