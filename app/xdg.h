/* xdg.h - where musicgen-tui keeps its files: the XDG base directories
 * ($XDG_CONFIG_HOME, $XDG_DATA_HOME, $XDG_STATE_HOME, $XDG_CACHE_HOME with the
 * usual fallbacks under $HOME), each with a musicgen-tui/ subdirectory, and the
 * user's music directory for exports. */
#ifndef MG_XDG_H
#define MG_XDG_H

#include <stddef.h>

enum xdg_kind {
	XDG_CONFIG, /* settings: $XDG_CONFIG_HOME or ~/.config */
	XDG_DATA,   /* history: $XDG_DATA_HOME or ~/.local/share */
	XDG_STATE,  /* last prompt, logs: $XDG_STATE_HOME or ~/.local/state */
	XDG_CACHE,  /* $XDG_CACHE_HOME or ~/.cache */
};

/* "<base>/musicgen-tui" for the kind; -1 with a message when neither the
 * variable nor $HOME is usable. The directory is not created. */
int xdg_app_dir(enum xdg_kind kind, char *out, size_t outlen, char *err, size_t errlen);

/* Creates path and its missing parents with the given mode (0700 for the
 * application's directories). */
int xdg_mkdirs(const char *path, int mode, char *err, size_t errlen);

/* xdg_app_dir() followed by xdg_mkdirs(..., 0700). */
int xdg_app_dir_make(enum xdg_kind kind, char *out, size_t outlen, char *err, size_t errlen);

/* The default export directory: $XDG_MUSIC_DIR, else the XDG_MUSIC_DIR line of
 * $XDG_CONFIG_HOME/user-dirs.dirs, else ~/Music. */
int xdg_music_dir(char *out, size_t outlen);

/* Expands a leading "~/" with $HOME into out. */
int xdg_expand_home(const char *path, char *out, size_t outlen);

#endif
