/* theme.h - colours and attributes of the screen elements, read from a theme
 * file (assets/themes/NAME.theme: "element = FG BG [bold] [reverse]").
 * NO_COLOR set (to anything non-empty) or a terminal without colours: only
 * bold/reverse/underline are used. */
#ifndef MG_THEME_H
#define MG_THEME_H

#include <stddef.h>

enum theme_el {
	TH_NORMAL, TH_TITLE, TH_BORDER, TH_BORDER_FOCUS, TH_LABEL, TH_VALUE, TH_VALUE_FOCUS, TH_ERROR,
	TH_PROGRESS, TH_PROGRESS_BG, TH_METER_LOW, TH_METER_MID, TH_METER_HIGH, TH_SELECTED, TH_FAVOURITE,
	TH_STATUS, TH_KEY, TH_KEY_LABEL, TH_DIM, TH_WAVE, TH_COUNT
};

/* Must run after initscr(). dirs: where themes are looked for. Returns 0, or
 * -1 with a message (the built-in colours are used then). */
int theme_load(const char *name, const char *const *dirs, int n_dirs, char *err, size_t errlen);
int theme_attr(enum theme_el el);
/* Names of the theme files found, for the settings screen. */
int theme_list(const char *const *dirs, int n_dirs, char names[][64], int max);

#endif
