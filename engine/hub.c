/* hub.c - resolving model paths and hub ids in the local Hugging Face cache. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/hub.h"

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
	if (err && errlen)
		snprintf(err, errlen, fmt, a, b);
	return -1;
}

int mg_hub_cache_dir(char *out, size_t outlen)
{
	const char *v = getenv("HF_HUB_CACHE");
	int n;
	if (!v || !*v)
		v = getenv("HUGGINGFACE_HUB_CACHE"); /* the older name huggingface_hub still reads */
	if (v && *v)
		n = snprintf(out, outlen, "%s", v);
	else if ((v = getenv("HF_HOME")) && *v)
		n = snprintf(out, outlen, "%s/hub", v);
	else if ((v = getenv("XDG_CACHE_HOME")) && *v)
		n = snprintf(out, outlen, "%s/huggingface/hub", v);
	else {
		const char *home = getenv("HOME");
		n = snprintf(out, outlen, "%s/.cache/huggingface/hub", home && *home ? home : ".");
	}
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

int mg_is_hub_id(const char *s)
{
	const char *slash = strchr(s, '/');
	if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/'))
		return 0;
	if (s[0] == '.' || slash[1] == '.')
		return 0;
	for (const char *p = s; *p; p++)
		if (!(*p == '/' || *p == '.' || *p == '-' || *p == '_' ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

int mg_hub_repo_dir(const char *repo_id, char *out, size_t outlen)
{
	char cache[PATH_MAX];
	if (!mg_is_hub_id(repo_id) || mg_hub_cache_dir(cache, sizeof cache))
		return -1;
	const char *slash = strchr(repo_id, '/');
	int n = snprintf(out, outlen, "%s/models--%.*s--%s", cache, (int)(slash - repo_id), repo_id, slash + 1);
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

static void copy_out(char *dst, size_t len, const char *src)
{
	if (dst && len)
		snprintf(dst, len, "%s", src);
}

/* The number of entries in a snapshots directory (0 when it cannot be read);
 * the name of the first one goes to name. */
static int single_snapshot(const char *snapdir, char *name, size_t namelen)
{
	DIR *d = opendir(snapdir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n++ == 0)
			snprintf(name, namelen, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

int mg_resolve_model(const char *path_or_id, int allow_file,
                     char *dir, size_t dirlen, char *id, size_t idlen,
                     char *rev, size_t revlen, char *err, size_t errlen)
{
	struct stat st;
	if (!path_or_id || !*path_or_id)
		return fail(err, errlen, "no model given%s%s", "", "");
	if (stat(path_or_id, &st) == 0) {
		if (!S_ISDIR(st.st_mode) && !allow_file)
			return fail(err, errlen, "%s: not a model directory%s", path_or_id, "");
		copy_out(dir, dirlen, path_or_id);
		const char *base = strrchr(path_or_id, '/');
		copy_out(id, idlen, base && base[1] ? base + 1 : path_or_id);
		copy_out(rev, revlen, "");
		return 0;
	}
	if (!mg_is_hub_id(path_or_id))
		return fail(err, errlen, "%s: %s (and not a hub id ORG/NAME)", path_or_id, strerror(errno));

	char repo[PATH_MAX], ref[PATH_MAX + 32], commit[256] = "", snap[PATH_MAX + 300];
	if (mg_hub_repo_dir(path_or_id, repo, sizeof repo))
		return fail(err, errlen, "%s: cannot form a cache path%s", path_or_id, "");
	if (stat(repo, &st) != 0 || !S_ISDIR(st.st_mode)) {
		if (err && errlen)
			snprintf(err, errlen, "%s: not a directory, and not in the Hugging Face cache (looked in %s)",
			         path_or_id, repo);
		return -1;
	}
	snprintf(ref, sizeof ref, "%s/refs/main", repo);
	/* Only a regular file: a FIFO there would block the open. */
	FILE *f = stat(ref, &st) == 0 && S_ISREG(st.st_mode) ? fopen(ref, "r") : NULL;
	if (f) {
		if (!fgets(commit, sizeof commit, f))
			commit[0] = 0;
		fclose(f);
		commit[strcspn(commit, " \r\n")] = 0;
	}
	if (!commit[0]) {
		/* No refs/main: accept the snapshot when there is exactly one. */
		snprintf(ref, sizeof ref, "%s/snapshots", repo);
		int n = single_snapshot(ref, commit, sizeof commit);
		if (n == 0)
			return fail(err, errlen, "%s: the cache entry %s has no refs/main and no snapshots", path_or_id, repo);
		if (n > 1)
			return fail(err, errlen, "%s: the cache entry %s has no refs/main and several snapshots", path_or_id,
			            repo);
	}
	if (strchr(commit, '/') || commit[0] == '.')
		return fail(err, errlen, "%s: refs/main holds an invalid revision '%s'", path_or_id, commit);
	snprintf(snap, sizeof snap, "%s/snapshots/%s", repo, commit);
	if (stat(snap, &st) != 0 || !S_ISDIR(st.st_mode))
		return fail(err, errlen, "%s: snapshot %s is missing from the cache", path_or_id, commit);
	copy_out(dir, dirlen, snap);
	copy_out(id, idlen, path_or_id);
	copy_out(rev, revlen, commit);
	return 0;
}
