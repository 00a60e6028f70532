/* xdg.c - XDG base directories and directory creation (see xdg.h). */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/xdg.h"

static const struct {
	const char *var, *fallback;
} bases[] = {
	[XDG_CONFIG] = {"XDG_CONFIG_HOME", ".config"},
	[XDG_DATA] = {"XDG_DATA_HOME", ".local/share"},
	[XDG_STATE] = {"XDG_STATE_HOME", ".local/state"},
	[XDG_CACHE] = {"XDG_CACHE_HOME", ".cache"},
};

static int fits(int n, size_t len)
{
	return n >= 0 && (size_t)n < len;
}

int xdg_app_dir(enum xdg_kind kind, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *base = getenv(bases[kind].var);
	int n;
	/* The specification says relative values are invalid and must be ignored. */
	if (base && base[0] == '/') {
		n = snprintf(out, outlen, "%s/musicgen-tui", base);
	} else {
		const char *home = getenv("HOME");
		if (!home || home[0] != '/') {
			snprintf(err, errlen, "neither $%s nor $HOME is set to an absolute path", bases[kind].var);
			return -1;
		}
		n = snprintf(out, outlen, "%s/%s/musicgen-tui", home, bases[kind].fallback);
	}
	if (!fits(n, outlen)) {
		snprintf(err, errlen, "the path for $%s is too long", bases[kind].var);
		return -1;
	}
	return 0;
}

int xdg_mkdirs(const char *path, int mode, char *err, size_t errlen)
{
	char buf[4096];
	if (!fits(snprintf(buf, sizeof buf, "%s", path), sizeof buf)) {
		snprintf(err, errlen, "path too long: %s", path);
		return -1;
	}
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) {
				snprintf(err, errlen, "cannot create directory %s: %s", buf, strerror(errno));
				return -1;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", path);
		return -1;
	}
	return 0;
}

int xdg_app_dir_make(enum xdg_kind kind, char *out, size_t outlen, char *err, size_t errlen)
{
	if (xdg_app_dir(kind, out, outlen, err, errlen))
		return -1;
	return xdg_mkdirs(out, 0700, err, errlen);
}

int xdg_expand_home(const char *path, char *out, size_t outlen)
{
	const char *home = getenv("HOME");
	int n;
	if (path[0] == '~' && (path[1] == '/' || path[1] == '\0') && home)
		n = snprintf(out, outlen, "%s%s", home, path + 1);
	else
		n = snprintf(out, outlen, "%s", path);
	return fits(n, outlen) ? 0 : -1;
}

/* Reads XDG_MUSIC_DIR="$HOME/Music" from user-dirs.dirs. */
static int music_from_user_dirs(char *out, size_t outlen)
{
	char cfg[4096], line[4096];
	const char *base = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	if (!home)
		return -1;
	if (base && base[0] == '/')
		snprintf(cfg, sizeof cfg, "%s/user-dirs.dirs", base);
	else
		snprintf(cfg, sizeof cfg, "%s/.config/user-dirs.dirs", home);
	FILE *f = fopen(cfg, "r");
	if (!f)
		return -1;
	int rc = -1;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "XDG_MUSIC_DIR=\"", 15) != 0)
			continue;
		char *v = line + 15, *q = strchr(v, '"');
		if (!q)
			break;
		*q = '\0';
		int n;
		if (!strncmp(v, "$HOME", 5))
			n = snprintf(out, outlen, "%s%s", home, v + 5);
		else
			n = snprintf(out, outlen, "%s", v);
		rc = fits(n, outlen) && out[0] == '/' ? 0 : -1;
		break;
	}
	fclose(f);
	return rc;
}

int xdg_music_dir(char *out, size_t outlen)
{
	const char *m = getenv("XDG_MUSIC_DIR"), *home = getenv("HOME");
	if (m && m[0] == '/')
		return fits(snprintf(out, outlen, "%s", m), outlen) ? 0 : -1;
	if (music_from_user_dirs(out, outlen) == 0)
		return 0;
	if (!home)
		return fits(snprintf(out, outlen, "."), outlen) ? 0 : -1;
	return fits(snprintf(out, outlen, "%s/Music", home), outlen) ? 0 : -1;
}
