/* theme.c - theme files and colour pairs (see theme.h). */
#include "autoconfig.h"

#include <curses.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/theme.h"

static const char *const el_names[TH_COUNT] = {
	"normal", "title", "border", "border_focus", "label", "value", "value_focus", "error",
	"progress", "progress_bg", "meter_low", "meter_mid", "meter_high", "selected", "favourite",
	"status", "key", "key_label", "dim", "wave",
};

static int attrs[TH_COUNT];

/* Monochrome: attributes alone must keep every element readable. */
static void set_mono(void)
{
	for (int i = 0; i < TH_COUNT; i++)
		attrs[i] = A_NORMAL;
	attrs[TH_TITLE] = A_BOLD;
	attrs[TH_BORDER_FOCUS] = A_BOLD;
	attrs[TH_VALUE_FOCUS] = A_REVERSE;
	attrs[TH_ERROR] = A_BOLD | A_UNDERLINE;
	attrs[TH_PROGRESS] = A_REVERSE;
	attrs[TH_METER_HIGH] = A_BOLD;
	attrs[TH_SELECTED] = A_REVERSE;
	attrs[TH_FAVOURITE] = A_BOLD;
	attrs[TH_STATUS] = A_REVERSE;
	attrs[TH_KEY] = A_BOLD;
	attrs[TH_KEY_LABEL] = A_REVERSE;
	attrs[TH_DIM] = A_DIM;
}

static int colour_number(const char *s)
{
	static const char *const names[] = {"black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"};
	if (!strcmp(s, "default"))
		return -1;
	for (int i = 0; i < 8; i++)
		if (!strcmp(s, names[i]))
			return i;
	if (!strncmp(s, "bright", 6))
		for (int i = 0; i < 8; i++)
			if (!strcmp(s + 6, names[i]))
				return COLORS >= 16 ? i + 8 : i;
	char *end;
	long v = strtol(s, &end, 10);
	if (*s && !*end && v >= 0 && v < 256)
		return v < COLORS ? (int)v : (int)(v % 8);
	return -2;
}

int theme_attr(enum theme_el el)
{
	return attrs[el];
}

int theme_load(const char *name, const char *const *dirs, int n_dirs, char *err, size_t errlen)
{
	set_mono();
	const char *nc = getenv("NO_COLOR");
	if ((nc && *nc) || !has_colors())
		return 0;
	start_color();
	use_default_colors();
	FILE *f = NULL;
	char path[1200];
	for (int i = 0; i < n_dirs && !f; i++) {
		snprintf(path, sizeof path, "%s/%s.theme", dirs[i], name);
		f = fopen(path, "r");
	}
	if (!f) {
		snprintf(err, errlen, "theme '%s' not found; using monochrome", name);
		return -1;
	}
	char line[256];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char el[64], fg[32], bg[32], a1[16] = "", a2[16] = "";
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		int n = sscanf(line, " %63[a-z_] = %31s %31s %15s %15s", el, fg, bg, a1, a2);
		if (n <= 0)
			continue;
		int idx = -1;
		for (int i = 0; i < TH_COUNT; i++)
			if (!strcmp(el, el_names[i]))
				idx = i;
		int cf = n >= 2 ? colour_number(fg) : -2, cb = n >= 3 ? colour_number(bg) : -2;
		if (idx < 0 || n < 3 || cf == -2 || cb == -2) {
			snprintf(err, errlen, "%s:%d: expected 'element = FG BG [bold] [reverse]'", path, lineno);
			rc = -1;
			continue;
		}
		init_pair((short)(idx + 1), (short)cf, (short)cb);
		int a = COLOR_PAIR(idx + 1);
		for (const char *x = a1; x; x = x == a1 ? a2 : NULL) {
			if (!strcmp(x, "bold"))
				a |= A_BOLD;
			else if (!strcmp(x, "reverse"))
				a |= A_REVERSE;
			else if (!strcmp(x, "underline"))
				a |= A_UNDERLINE;
			else if (!strcmp(x, "dim"))
				a |= A_DIM;
		}
		attrs[idx] = a;
	}
	fclose(f);
	return rc;
}

int theme_list(const char *const *dirs, int n_dirs, char names[][64], int max)
{
	int n = 0;
	for (int i = 0; i < n_dirs; i++) {
		DIR *d = opendir(dirs[i]);
		if (!d)
			continue;
		struct dirent *e;
		while ((e = readdir(d)) && n < max) {
			size_t l = strlen(e->d_name);
			if (l > 6 && l < 64 && !strcmp(e->d_name + l - 6, ".theme")) {
				int dup = 0;
				for (int k = 0; k < n; k++)
					if (!strncmp(names[k], e->d_name, l - 6) && names[k][l - 6] == '\0')
						dup = 1;
				if (!dup)
					snprintf(names[n++], 64, "%.*s", (int)(l - 6), e->d_name);
			}
		}
		closedir(d);
	}
	return n;
}
