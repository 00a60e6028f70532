/* tui.h - the interactive screen. */
#ifndef MG_TUI_H
#define MG_TUI_H

#include "app/settings.h"

struct tui_options {
	char model[SETTINGS_PATH_MAX]; /* model path or hub id; "" = none found */
	char model_search[2048];       /* where models were looked for (no-model screen) */
	int backend;                   /* enum mg_backend */
	int device;                    /* OpenCL device index, -1 = the first suitable */
	int threads;
	struct compose_state compose;  /* initial prompt and knobs */
	struct settings settings;
	char settings_path[SETTINGS_PATH_MAX];
	char state_path[SETTINGS_PATH_MAX];
	int log_fd;                    /* where library messages go while curses runs */
};

/* Runs the screen until the user quits; returns the exit status. */
int tui_run(struct tui_options *o);

#endif
