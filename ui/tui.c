/* tui.c - the interactive screen: compose pane (prompt editor + knobs),
 * history list, player line, progress and status lines, help, dialogs.
 *
 * This is the only thread that touches curses. Each loop iteration waits on
 * the keyboard and on the engine's wake-up fd (with a short timeout only
 * while something moves), handles input and events, takes one snapshot of
 * the engine and the player, and redraws the whole screen from state. */
#include "autoconfig.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "app/audio_file.h"
#include "app/download.h"
#include "app/fetch.h"
#include "app/history.h"
#include "app/jobs.h"
#include "app/models.h"
#include "app/player.h"
#include "app/util.h"
#include "app/xdg.h"
#include "engine/mg.h"
#include "ui/editor.h"
#include "ui/theme.h"
#include "ui/tui.h"

#define MIN_COLS 60
#define MIN_ROWS 16
#define WIDE_COLS 100
#define WIDE_ROWS 30
#define CTRL(c) ((c) & 0x1f)
/* What the no-model screen offers to download. */
#define DEFAULT_MODEL "facebook/musicgen-small"

enum focus { F_PROMPT, F_KNOBS, F_HISTORY, F_PLAYER, F_COUNT };

enum knob { K_DURATION, K_GUIDANCE, K_TEMPERATURE, K_TOPK, K_TOPP, K_SEED, K_TAKES, K_COUNT };
static const char *const knob_labels[K_COUNT] = {"Duration", "Guidance", "Temperature", "Top-k",
                                                 "Top-p",    "Seed",     "Takes"};
static const char *const knob_keys[K_COUNT] = {"duration", "guidance", "temperature", "top_k",
                                               "top_p",    "seed",     "count"};

enum modal {
	M_NONE, M_HELP, M_QUIT, M_DELETE, M_INPUT, M_PRESETS, M_SETTINGS, M_NOMODEL, M_MODELS, M_DOWNLOAD,
};
enum input_purpose { IN_FILTER, IN_NAME, IN_NOTE, IN_EXPORT, IN_SETTING };

/* Actions the key table binds. */
enum action {
	ACT_NONE, ACT_HELP, ACT_QUIT, ACT_QUIT_Q, ACT_GENERATE, ACT_CANCEL, ACT_FOCUS_NEXT, ACT_FOCUS_PREV, ACT_PRESETS, ACT_SETTINGS, ACT_MODELS,
	ACT_PLAY_TOGGLE, ACT_SEEK_BACK, ACT_SEEK_FWD, ACT_UP, ACT_DOWN, ACT_PAGE_UP, ACT_PAGE_DOWN, ACT_TOP, ACT_BOTTOM,
	ACT_HIST_PLAY, ACT_HIST_RECALL, ACT_HIST_FAV, ACT_HIST_NAME, ACT_HIST_NOTE, ACT_HIST_DELETE, ACT_HIST_FILTER,
	ACT_HIST_EXPORT, ACT_HIST_FAVS_ONLY, ACT_KNOB_DEC, ACT_KNOB_INC, ACT_KNOB_RANDOM, ACT_QUEUE_DROP,
};

/* Where a binding applies. */
enum ctx { C_GLOBAL = 1, C_LIST = 2, C_KNOBS = 4, C_HISTORY = 8, C_PLAYER = 16, C_PROMPT = 32 };

struct binding {
	int key;          /* curses key code or character */
	int ctx;
	enum action action;
	const char *label;
	const char *help; /* NULL: same action listed under another key */
};

/* The key table: dispatch and the help screen both read it. */
static const struct binding keys[] = {
	{KEY_F(1), C_GLOBAL, ACT_HELP, "F1", "help (this screen)"},
	{'?', C_LIST | C_KNOBS | C_PLAYER, ACT_HELP, "?", "help, outside text fields"},
	{KEY_F(5), C_GLOBAL, ACT_GENERATE, "F5", "generate from the prompt and knobs (queues while busy)"},
	{CTRL('G'), C_GLOBAL, ACT_GENERATE, "Ctrl-G", "generate (same as F5)"},
	{27, C_GLOBAL, ACT_CANCEL, "Esc", "cancel the running generation (nothing is saved); close dialogs"},
	{KEY_F(2), C_GLOBAL, ACT_PRESETS, "F2", "prompt presets"},
	{KEY_F(3), C_GLOBAL, ACT_MODELS, "F3", "model picker: the installed models (cache, model_dirs); Enter loads one"},
	{KEY_F(6), C_GLOBAL, ACT_SETTINGS, "F6", "settings (model, backend, compute and audio device, theme, ...)"},
	{KEY_F(10), C_GLOBAL, ACT_QUIT, "F10", "quit (asks while a generation runs)"},
	{CTRL('Q'), C_GLOBAL, ACT_QUIT, "Ctrl-Q", "quit"},
	{CTRL('C'), C_GLOBAL, ACT_QUIT, "Ctrl-C", "quit (asks while a generation runs)"},
	{'q', C_LIST | C_KNOBS | C_PLAYER, ACT_QUIT_Q, "q", "quit, outside text fields"},
	{'\t', C_GLOBAL, ACT_FOCUS_NEXT, "Tab", "next pane: prompt, knobs, history, player"},
	{KEY_BTAB, C_GLOBAL, ACT_FOCUS_PREV, "Shift-Tab", "previous pane"},
	{CTRL('P'), C_GLOBAL, ACT_PLAY_TOGGLE, "Ctrl-P", "play / pause from anywhere"},
	{' ', C_LIST | C_PLAYER | C_KNOBS, ACT_PLAY_TOGGLE, "Space", "play / pause"},
	{KEY_LEFT, C_PLAYER, ACT_SEEK_BACK, "Left", "seek back 5 s (player)"},
	{KEY_RIGHT, C_PLAYER, ACT_SEEK_FWD, "Right", "seek forward 5 s (player)"},
	{'[', C_LIST | C_KNOBS | C_PLAYER, ACT_SEEK_BACK, "[", "seek back 5 s"},
	{']', C_LIST | C_KNOBS | C_PLAYER, ACT_SEEK_FWD, "]", "seek forward 5 s"},
	{KEY_UP, C_LIST | C_KNOBS, ACT_UP, "Up/k", "previous item"},
	{'k', C_LIST | C_KNOBS, ACT_UP, "k", NULL},
	{KEY_DOWN, C_LIST | C_KNOBS, ACT_DOWN, "Down/j", "next item"},
	{'j', C_LIST | C_KNOBS, ACT_DOWN, "j", NULL},
	{KEY_PPAGE, C_LIST, ACT_PAGE_UP, "PgUp", "page up"},
	{KEY_NPAGE, C_LIST, ACT_PAGE_DOWN, "PgDn", "page down"},
	{KEY_HOME, C_LIST, ACT_TOP, "Home/g", "first take"},
	{'g', C_LIST, ACT_TOP, "g", NULL},
	{KEY_END, C_LIST, ACT_BOTTOM, "End/G", "last take"},
	{'G', C_LIST, ACT_BOTTOM, "G", NULL},
	{KEY_LEFT, C_KNOBS, ACT_KNOB_DEC, "Left/-", "decrease the knob (type a number to set it)"},
	{'-', C_KNOBS, ACT_KNOB_DEC, "-", NULL},
	{KEY_RIGHT, C_KNOBS, ACT_KNOB_INC, "Right/+", "increase the knob"},
	{'+', C_KNOBS, ACT_KNOB_INC, "+", NULL},
	{'r', C_KNOBS, ACT_KNOB_RANDOM, "r", "seed: switch between random and fixed (knobs)"},
	{'x', C_KNOBS, ACT_QUEUE_DROP, "x", "drop the last queued job (knobs)"},
	{'\n', C_HISTORY, ACT_HIST_PLAY, "Enter", "play the take (history)"},
	{'r', C_HISTORY, ACT_HIST_RECALL, "r", "load prompt and knobs into compose (same seed = same take)"},
	{'f', C_HISTORY, ACT_HIST_FAV, "f", "favourite on / off"},
	{'F', C_HISTORY, ACT_HIST_FAVS_ONLY, "F", "show only favourites / all"},
	{'n', C_HISTORY, ACT_HIST_NAME, "n", "name the take"},
	{'N', C_HISTORY, ACT_HIST_NOTE, "N", "write a note"},
	{'d', C_HISTORY, ACT_HIST_DELETE, "d", "delete the take (asks)"},
	{'/', C_HISTORY, ACT_HIST_FILTER, "/", "filter by prompt, name or note"},
	{'e', C_HISTORY, ACT_HIST_EXPORT, "e", "export to WAV / FLAC / OGG (format by extension)"},
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

struct preset {
	char name[64];
	char prompt[PROMPT_MAX];
};

struct ui {
	struct tui_options *o;
	jobs *jobs;
	player *player;
	history *hist;
	int log_fd;

	/* compose */
	char prompt[PROMPT_MAX];
	struct editor ed;
	struct knobs knobs;
	int knob_sel;             /* K_COUNT + i: the i-th queued job */
	int knob_editing;
	char knob_buf[40];
	char knob_err[160];
	uint64_t last_seed;
	int have_last_seed;

	/* history */
	struct history_take *takes;
	int n_takes, hist_sel, hist_top;
	char filter[200];
	int favs_only;
	int64_t pending_select;   /* select this id after the next refresh */

	/* screen */
	int focus;
	int narrow_pane;          /* narrow terminals: 0 compose, 1 history */
	int modal;
	int help_top;
	/* Where the last frame put things, for the mouse. */
	struct {
		int y, x, h, w, shown;
	} geo_compose, geo_hist;
	int geo_hist_first;       /* screen row of the first take row */
	int geo_knob_first;       /* screen row of the first knob */
	int geo_player;           /* screen row of the player line */
	int quit;
	char msg[600];
	int msg_error;
	double msg_time;

	/* text input dialog */
	int in_purpose;
	char in_title[128];
	char in_buf[PROMPT_MAX];
	struct editor in_ed;
	int64_t in_take;
	int set_row;              /* settings row being edited */

	/* presets */
	struct preset *presets;
	int n_presets, preset_sel;

	/* settings screen */
	char devices[32][160];
	int n_devices;
	char themes[32][64];
	int n_themes;

	/* compute devices (settings screen) */
	mg_device cl_devs[16];
	int n_cl_devs;

	/* model download offered by the no-model screen */
	fetch *fetch;
	struct fetch_snapshot fs;
	int dl_declined;          /* the user said no */
	int dl_loaded;            /* the finished download was handed to the engine */
	char dl_repo[256];        /* what the offer downloads */

	/* model picker */
	struct model_entry *models;
	int n_models, model_sel, model_top;
	char models_err[300];

	/* snapshots, one per loop iteration */
	struct jobs_snapshot js;
	struct player_state ps;

	char asset_dirs[3][1100];
	const char *asset_dir_list[3];
	int n_asset_dirs;
};

static void message(struct ui *u, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void message(struct ui *u, int error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(u->msg, sizeof u->msg, fmt, ap);
	va_end(ap);
	/* Keep the message on one line. */
	for (char *p = u->msg; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	u->msg_error = error;
	u->msg_time = mono_seconds();
}

/* ---- drawing helpers ---- */

/* Writes at most `cols` display columns of UTF-8 text; returns columns used. */
static int put(int y, int x, int cols, const char *s)
{
	if (cols <= 0)
		return 0;
	mbstate_t st;
	memset(&st, 0, sizeof st);
	int used = 0;
	size_t i = 0, n = strlen(s);
	move(y, x);
	while (i < n) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s + i, n - i, &st);
		if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
			memset(&st, 0, sizeof st);
			wc = L'?';
			k = 1;
		}
		int w = wcwidth(wc);
		if (wc < 0x20)
			wc = L' ', w = 1;
		if (w < 0)
			w = 1;
		if (used + w > cols)
			break;
		wchar_t ws[2] = {wc, 0};
		addwstr(ws);
		used += w;
		i += k;
	}
	return used;
}

static int putf(int y, int x, int cols, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int putf(int y, int x, int cols, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return put(y, x, cols, buf);
}

static void fill(int y, int x, int cols, int attr)
{
	attron(attr);
	mvhline(y, x, ' ', cols);
	attroff(attr);
}

static void box_at(int y, int x, int h, int w, int focused, const char *title)
{
	int a = theme_attr(focused ? TH_BORDER_FOCUS : TH_BORDER);
	attron(a);
	mvhline(y, x + 1, ACS_HLINE, w - 2);
	mvhline(y + h - 1, x + 1, ACS_HLINE, w - 2);
	mvvline(y + 1, x, ACS_VLINE, h - 2);
	mvvline(y + 1, x + w - 1, ACS_VLINE, h - 2);
	mvaddch(y, x, ACS_ULCORNER);
	mvaddch(y, x + w - 1, ACS_URCORNER);
	mvaddch(y + h - 1, x, ACS_LLCORNER);
	mvaddch(y + h - 1, x + w - 1, ACS_LRCORNER);
	attroff(a);
	if (title) {
		attron(theme_attr(focused ? TH_BORDER_FOCUS : TH_TITLE));
		putf(y, x + 2, w - 4, " %s ", title);
		attroff(theme_attr(focused ? TH_BORDER_FOCUS : TH_TITLE));
	}
}

static void clock_str(double s, char *out, size_t len)
{
	if (s < 0 || !isfinite(s)) {
		snprintf(out, len, "--:--");
		return;
	}
	long t = lround(s);
	if (t >= 3600)
		snprintf(out, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, len, "%ld:%02ld", t / 60, t % 60);
}

static void age_str(int64_t created, char *out, size_t len)
{
	long d = (long)(time(NULL) - created);
	if (d < 0)
		d = 0;
	if (d < 60)
		snprintf(out, len, "%lds ago", d);
	else if (d < 3600)
		snprintf(out, len, "%ldm ago", d / 60);
	else if (d < 86400)
		snprintf(out, len, "%ldh ago", d / 3600);
	else
		snprintf(out, len, "%ldd ago", d / 86400);
}

/* ---- knobs ---- */

static double knob_value(const struct ui *u, int k)
{
	const struct knobs *n = &u->knobs;
	switch (k) {
	case K_DURATION: return n->duration;
	case K_GUIDANCE: return n->guidance;
	case K_TEMPERATURE: return n->temperature;
	case K_TOPK: return n->top_k;
	case K_TOPP: return n->top_p;
	case K_SEED: return (double)n->seed;
	default: return n->count;
	}
}

static void knob_text(const struct ui *u, int k, char *out, size_t len)
{
	const struct knobs *n = &u->knobs;
	switch (k) {
	case K_DURATION: snprintf(out, len, "%.1f s", n->duration); break;
	case K_GUIDANCE: snprintf(out, len, "%.2g%s", n->guidance, n->guidance <= 1 ? " (off)" : ""); break;
	case K_TEMPERATURE: snprintf(out, len, "%.2f", n->temperature); break;
	case K_TOPK: snprintf(out, len, n->top_k ? "%d" : "0 (off)", n->top_k); break;
	case K_TOPP: snprintf(out, len, "%.2f%s", n->top_p, n->top_p >= 1 ? " (off)" : ""); break;
	case K_SEED:
		if (n->seed_random && u->have_last_seed)
			snprintf(out, len, "random (last %llu)", (unsigned long long)u->last_seed);
		else if (n->seed_random)
			snprintf(out, len, "random");
		else
			snprintf(out, len, "%llu", (unsigned long long)n->seed);
		break;
	default: snprintf(out, len, "%d", n->count); break;
	}
}

/* Sets knob k to v if valid; else the reason goes to knob_err. */
static int knob_set(struct ui *u, int k, double v)
{
	char err[160];
	if (knobs_check_value(knob_keys[k], v, err, sizeof err)) {
		str_copy_utf8(u->knob_err, sizeof u->knob_err, err);
		return -1;
	}
	/* The model caps the duration. */
	if (k == K_DURATION && u->js.model_state == JOBS_MODEL_READY && u->js.frame_rate > 0 && u->js.max_frames > 0 &&
	    v * u->js.frame_rate > u->js.max_frames) {
		snprintf(u->knob_err, sizeof u->knob_err, "this model makes at most %.1f s",
		         u->js.max_frames / u->js.frame_rate);
		return -1;
	}
	u->knob_err[0] = '\0';
	struct knobs *n = &u->knobs;
	switch (k) {
	case K_DURATION: n->duration = v; break;
	case K_GUIDANCE: n->guidance = v; break;
	case K_TEMPERATURE: n->temperature = v; break;
	case K_TOPK: n->top_k = (int)v; break;
	case K_TOPP: n->top_p = v; break;
	case K_SEED: n->seed = (uint64_t)v; n->seed_random = 0; break;
	default: n->count = (int)v; break;
	}
	return 0;
}

static void knob_step(struct ui *u, int k, int dir)
{
	double v = knob_value(u, k), step;
	switch (k) {
	case K_DURATION: step = v < 2 ? 0.5 : 1; break;
	case K_GUIDANCE: step = 0.5; break;
	case K_TEMPERATURE: step = 0.05; break;
	case K_TOPK: step = v < 10 || (v == 10 && dir < 0) ? 1 : 10; break;
	case K_TOPP: step = 0.05; break;
	case K_SEED:
		if (u->knobs.seed_random) {
			/* Fix the last seed used, so +/- walks from there. */
			u->knobs.seed = u->have_last_seed ? u->last_seed : 0;
			u->knobs.seed_random = 0;
			return;
		}
		step = 1;
		break;
	default: step = 1; break;
	}
	double nv = v + dir * step;
	if (k == K_TEMPERATURE || k == K_TOPP)
		nv = round(nv * 100) / 100;
	if (k == K_TOPP && nv > 1)
		nv = 1;
	if (k == K_TOPK && nv < 0)
		nv = 0;
	if (k == K_SEED && v == 0 && dir < 0)
		return;
	knob_set(u, k, nv);
}

static void knob_edit_commit(struct ui *u)
{
	char *end;
	double v = strtod(u->knob_buf, &end);
	if (!u->knob_buf[0] || *end) {
		snprintf(u->knob_err, sizeof u->knob_err, "'%s' is not a number", u->knob_buf);
		return;
	}
	if (u->knob_sel == K_SEED) {
		unsigned long long s = strtoull(u->knob_buf, &end, 10);
		if (*end || u->knob_buf[0] == '-') {
			snprintf(u->knob_err, sizeof u->knob_err, "seed must be a non-negative whole number");
			return;
		}
		u->knobs.seed = s;
		u->knobs.seed_random = 0;
		u->knob_err[0] = '\0';
		u->knob_editing = 0;
		return;
	}
	if (knob_set(u, u->knob_sel, v) == 0)
		u->knob_editing = 0;
}

/* ---- history ---- */

static void history_refresh(struct ui *u)
{
	char err[1024];
	int64_t keep = u->pending_select ? u->pending_select
	               : (u->n_takes > 0 && u->hist_sel < u->n_takes) ? u->takes[u->hist_sel].id : 0;
	free(u->takes);
	u->takes = NULL;
	u->n_takes = 0;
	if (!u->hist)
		return;
	if (history_list(u->hist, u->filter, u->favs_only, &u->takes, &u->n_takes, err, sizeof err)) {
		message(u, 1, "%s", err);
		return;
	}
	u->hist_sel = 0;
	for (int i = 0; i < u->n_takes; i++)
		if (u->takes[i].id == keep)
			u->hist_sel = i;
	u->pending_select = 0;
}

static struct history_take *selected_take(struct ui *u)
{
	if (u->n_takes == 0 || u->hist_sel < 0 || u->hist_sel >= u->n_takes)
		return NULL;
	return &u->takes[u->hist_sel];
}

static void play_take(struct ui *u, const struct history_take *t)
{
	float *pcm;
	int ch, rate;
	int64_t n;
	char err[1024];
	if (history_load_audio(u->hist, t, &pcm, &ch, &n, &rate, err, sizeof err)) {
		message(u, 1, "%s", err);
		return;
	}
	if (player_load(u->player, pcm, ch, n, rate, t->id, err, sizeof err)) {
		message(u, 1, "%s", err);
		return;
	}
	if (player_play(u->player, err, sizeof err))
		message(u, 1, "%s", err);
	else
		message(u, 0, "playing take #%lld", (long long)t->id);
}

static void default_export_path(struct ui *u, const struct history_take *t, char *out, size_t len)
{
	char dir[1100], slug[48];
	if (u->o->settings.export_dir[0])
		xdg_expand_home(u->o->settings.export_dir, dir, sizeof dir);
	else
		xdg_music_dir(dir, sizeof dir);
	size_t k = 0;
	const char *src = t->name[0] ? t->name : t->prompt;
	for (const char *p = src; *p && k < sizeof slug - 1; p++) {
		char c = *p;
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			slug[k++] = c;
		else if (c >= 'A' && c <= 'Z')
			slug[k++] = (char)(c - 'A' + 'a');
		else if (k > 0 && slug[k - 1] != '-')
			slug[k++] = '-';
	}
	while (k > 0 && slug[k - 1] == '-')
		k--;
	slug[k] = '\0';
	int fmt = audio_format_parse(u->o->settings.export_format);
	snprintf(out, len, "%s/%s%stake-%lld.%s", dir, slug, k ? "-" : "", (long long)t->id, audio_format_ext(fmt));
}

static void do_export(struct ui *u, int64_t id, const char *path_in)
{
	char path[1400], err[1024];
	xdg_expand_home(path_in, path, sizeof path);
	int wav = audio_format_parse(u->o->settings.export_format);
	int fmt = audio_format_for_path(path, wav, err, sizeof err);
	if (fmt < 0) {
		message(u, 1, "%s", err);
		return;
	}
	char dir[1400];
	str_copy_utf8(dir, sizeof dir, path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (xdg_mkdirs(dir, 0755, err, sizeof err)) {
			message(u, 1, "%s", err);
			return;
		}
	}
	struct history_take t;
	if (history_get(u->hist, id, &t, err, sizeof err) || history_export(u->hist, &t, path, fmt, err, sizeof err)) {
		message(u, 1, "%s", err);
		return;
	}
	message(u, 0, "exported take #%lld to %s", (long long)id, path);
}

/* ---- generation ---- */

static uint64_t random_seed(void)
{
	uint64_t s = 0;
	int fd = open("/dev/urandom", O_RDONLY);
	if (fd >= 0) {
		if (read(fd, &s, sizeof s) != (ssize_t)sizeof s)
			s = 0;
		close(fd);
	}
	if (!s) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		s = (uint64_t)tv.tv_sec * 1000003u ^ (uint64_t)tv.tv_usec ^ (uint64_t)getpid() << 20;
	}
	return s % 2147483648u; /* short enough to read and type */
}

static void save_state(struct ui *u);

static void generate(struct ui *u)
{
	char err[600];
	if (u->js.model_state != JOBS_MODEL_READY && u->js.model_state != JOBS_MODEL_LOADING) {
		message(u, 1, "no model is loaded: see F6 settings, or run 'musicgen-tui download facebook/musicgen-small'");
		return;
	}
	if (u->knob_editing) {
		knob_edit_commit(u);
		if (u->knob_editing)
			return;
	}
	struct knobs k = u->knobs;
	if (k.seed_random)
		k.seed = random_seed();
	int64_t id;
	if (jobs_submit(u->jobs, u->prompt, &k, &id, err, sizeof err)) {
		message(u, 1, "%s", err);
		return;
	}
	if (u->knobs.seed_random) {
		u->last_seed = k.seed;
		u->have_last_seed = 1;
	}
	/* Keep the prompt even if the program does not get to quit cleanly. */
	save_state(u);
	struct jobs_snapshot js;
	jobs_snapshot(u->jobs, &js);
	int waiting = 0;
	for (int i = 0; i < js.n_queued; i++)
		if (js.queued[i].job_id == id)
			waiting = i + 1;
	if (js.busy && js.job_id != id)
		message(u, 0, "job #%lld queued (seed %llu): %d in the queue", (long long)id, (unsigned long long)k.seed,
		        waiting);
	else if (js.model_state == JOBS_MODEL_LOADING)
		message(u, 0, "job #%lld (seed %llu) starts when the model is loaded", (long long)id,
		        (unsigned long long)k.seed);
	else
		message(u, 0, "generating job #%lld (seed %llu)", (long long)id, (unsigned long long)k.seed);
}

static void handle_event(struct ui *u, struct job_event *ev)
{
	char err[600];
	switch (ev->kind) {
	case JOB_EV_MODEL_LOADED:
		message(u, 0, "%s", ev->msg);
		/* A duration this model cannot make in one window is cut to its longest. */
		if (u->js.frame_rate > 0 && u->js.max_frames > 0 && u->knobs.duration * u->js.frame_rate > u->js.max_frames) {
			u->knobs.duration = floor(u->js.max_frames / u->js.frame_rate * 10) / 10;
			message(u, 0, "%s; duration set to %.1f s, the longest this model makes", ev->msg, u->knobs.duration);
		}
		break;
	case JOB_EV_MODEL_FAILED: message(u, 1, "cannot load the model: %s", ev->msg); break;
	case JOB_EV_NOTICE: message(u, 0, "%s", ev->msg); break;
	case JOB_EV_STARTED: break;
	case JOB_EV_FAILED: message(u, 1, "job #%lld failed: %s", (long long)ev->job_id, ev->msg); break;
	case JOB_EV_CANCELLED: message(u, 0, "job #%lld cancelled; nothing was saved", (long long)ev->job_id); break;
	case JOB_EV_DONE:
		message(u, 0, "job #%lld: %s", (long long)ev->job_id, ev->msg);
		u->pending_select = ev->take_ids[0];
		history_refresh(u);
		if (ev->pcm) {
			if (player_load(u->player, ev->pcm, ev->channels, ev->n_samples, ev->sample_rate, ev->take_ids[0], err,
			                sizeof err))
				message(u, 1, "%s", err);
			else if (u->o->settings.autoplay && u->ps.has_device && player_play(u->player, err, sizeof err))
				message(u, 1, "%s", err);
			ev->pcm = NULL; /* the player owns it now */
		}
		break;
	}
	free(ev->pcm);
}

/* ---- modal dialogs ---- */

static void open_input(struct ui *u, int purpose, const char *title, const char *initial, int64_t take)
{
	u->modal = M_INPUT;
	u->in_purpose = purpose;
	u->in_take = take;
	str_copy_utf8(u->in_title, sizeof u->in_title, title);
	/* The field holds no more than where its text goes. */
	size_t cap = sizeof u->in_buf;
	if (purpose == IN_NAME)
		cap = sizeof u->takes[0].name;
	else if (purpose == IN_NOTE)
		cap = sizeof u->takes[0].note;
	else if (purpose == IN_FILTER)
		cap = sizeof u->filter;
	else if (purpose == IN_SETTING)
		cap = sizeof u->o->settings.model;
	u->in_buf[0] = '\0';
	editor_init(&u->in_ed, u->in_buf, cap);
	editor_set(&u->in_ed, initial);
}

static void load_presets(struct ui *u)
{
	for (int d = 0; d < u->n_asset_dirs && !u->presets; d++) {
		char path[1200], line[PROMPT_MAX + 80];
		snprintf(path, sizeof path, "%s/presets.txt", u->asset_dir_list[d]);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		int cap = 0;
		while (fgets(line, sizeof line, f)) {
			char *bar = strchr(line, '|');
			if (line[0] == '#' || !bar)
				continue;
			if (u->n_presets == cap) {
				cap = cap ? cap * 2 : 16;
				struct preset *np = realloc(u->presets, sizeof *np * (size_t)cap);
				if (!np)
					break;
				u->presets = np;
			}
			*bar = '\0';
			struct preset *p = &u->presets[u->n_presets++];
			char *name = line, *prompt = bar + 1;
			while (*prompt == ' ')
				prompt++;
			size_t n = strlen(prompt);
			while (n && (prompt[n - 1] == '\n' || prompt[n - 1] == ' ' || prompt[n - 1] == '\r'))
				prompt[--n] = '\0';
			n = strlen(name);
			while (n && name[n - 1] == ' ')
				name[--n] = '\0';
			str_copy_utf8(p->name, sizeof p->name, name);
			str_copy_utf8(p->prompt, sizeof p->prompt, prompt);
		}
		fclose(f);
	}
}

/* Settings screen rows. */
enum {
	S_MODEL, S_BACKEND, S_CDEVICE, S_THREADS, S_DEVICE, S_AUTOPLAY, S_EXPORT_DIR, S_EXPORT_FORMAT, S_THEME,
	S_MODEL_DIRS, S_COUNT
};
static const char *const setting_labels[S_COUNT] = {"Model",         "Backend",       "Compute device", "Threads",
                                                    "Audio device",  "Auto-play",     "Export folder",  "Export format",
                                                    "Theme",         "Model folders"};

static void setting_text(struct ui *u, int row, char *out, size_t len)
{
	struct settings *s = &u->o->settings;
	switch (row) {
	case S_MODEL: snprintf(out, len, "%s", s->model[0] ? s->model : "(search the Hugging Face cache)"); break;
	case S_BACKEND: snprintf(out, len, "%s", s->backend); break;
	case S_CDEVICE:
		if (s->device < 0)
			snprintf(out, len, "auto (%s)", u->n_cl_devs ? "the first GPU, else the CPU backend"
			                                             : "no OpenCL device here: the CPU backend");
		else if (s->device < u->n_cl_devs)
			snprintf(out, len, "%d: %.120s (%.60s)%s", s->device, u->cl_devs[s->device].name,
			         u->cl_devs[s->device].vendor, u->cl_devs[s->device].is_gpu ? "" : " [CPU device]");
		else
			snprintf(out, len, "%d (not present on this machine)", s->device);
		break;
	case S_MODEL_DIRS: snprintf(out, len, "%s", s->model_dirs[0] ? s->model_dirs : "(none: only the Hugging Face cache)"); break;
	case S_THREADS: snprintf(out, len, s->threads > 0 ? "%d" : "all cores", s->threads); break;
	case S_DEVICE: snprintf(out, len, "%s", s->audio_device[0] ? s->audio_device : "(default)"); break;
	case S_AUTOPLAY: snprintf(out, len, "%s", s->autoplay ? "on" : "off"); break;
	case S_EXPORT_DIR: {
		char m[1100];
		xdg_music_dir(m, sizeof m);
		if (s->export_dir[0])
			snprintf(out, len, "%s", s->export_dir);
		else
			snprintf(out, len, "(%.900s)", m);
		break;
	}
	case S_EXPORT_FORMAT: snprintf(out, len, "%s", s->export_format); break;
	case S_THEME: snprintf(out, len, "%s", s->theme); break;
	}
}

static void save_settings(struct ui *u)
{
	char err[1024];
	if (settings_save(&u->o->settings, u->o->settings_path, err, sizeof err))
		message(u, 1, "%s", err);
}

static void reopen_player(struct ui *u)
{
	char err[512];
	player_close(u->player);
	u->player = NULL;
	if (player_open(&u->player, u->o->settings.audio_device, u->log_fd, err, sizeof err)) {
		message(u, 1, "%s", err);
		return;
	}
	struct player_state ps;
	player_snapshot(u->player, &ps);
	message(u, !ps.has_device, "audio: %s", ps.device);
}

static void reload_model(struct ui *u)
{
	int backend = !strcmp(u->o->settings.backend, "cpu")      ? MG_BACKEND_CPU
	              : !strcmp(u->o->settings.backend, "opencl") ? MG_BACKEND_OPENCL
	                                                          : MG_BACKEND_AUTO;
	if (!u->o->settings.model[0] && !u->o->model[0]) {
		message(u, 1, "no model set");
		return;
	}
	if (u->o->settings.model[0])
		str_copy_utf8(u->o->model, sizeof u->o->model, u->o->settings.model);
	u->o->backend = backend;
	u->o->device = u->o->settings.device;
	u->o->threads = u->o->settings.threads;
	jobs_load_model(u->jobs, u->o->model, backend, u->o->device, u->o->threads);
	message(u, 0, "loading %s ...", u->o->model);
}

/* Byte counts for people: "2.3 GB", "812 kB". */
static void size_str(uint64_t b, char *out, size_t len)
{
	if (b >= 1000000000ull)
		snprintf(out, len, "%.2f GB", b / 1e9);
	else if (b >= 1000000ull)
		snprintf(out, len, "%.1f MB", b / 1e6);
	else if (b >= 1000ull)
		snprintf(out, len, "%.0f kB", b / 1e3);
	else
		snprintf(out, len, "%llu B", (unsigned long long)b);
}

/* The model picker: what models_list() finds in the cache and model_dirs. */
static void open_models(struct ui *u)
{
	char dirs_buf[SETTINGS_PATH_MAX];
	const char *dirs[32];
	int nd = 0;
	str_copy_utf8(dirs_buf, sizeof dirs_buf, u->o->settings.model_dirs);
	for (char *d = strtok(dirs_buf, ":"); d && nd < 32; d = strtok(NULL, ":"))
		if (*d)
			dirs[nd++] = d;
	free(u->models);
	u->models = NULL;
	u->n_models = 0;
	u->models_err[0] = '\0';
	if (models_list(dirs, nd, &u->models, &u->n_models, u->models_err, sizeof u->models_err)) {
		u->models = NULL;
		u->n_models = 0;
	}
	u->model_sel = u->model_top = 0;
	/* Start on the model in use. */
	for (int i = 0; i < u->n_models; i++)
		if (!strcmp(u->models[i].id, u->js.model_id) || !strcmp(u->models[i].path, u->o->model))
			u->model_sel = i;
	u->modal = M_MODELS;
}

static void reload_model(struct ui *u);

static void pick_model(struct ui *u)
{
	if (u->model_sel >= u->n_models)
		return;
	const struct model_entry *m = &u->models[u->model_sel];
	if (!m->complete) {
		message(u, 1, "%s is incomplete (%s): 'musicgen-tui download %s' completes it", m->id, m->problem, m->id);
		return;
	}
	/* A cache entry at main loads by its hub id (so takes record it); else by its directory. */
	int by_id = m->in_cache && strstr(m->revision, "main") != NULL;
	str_copy_utf8(u->o->settings.model, sizeof u->o->settings.model, by_id ? m->id : m->path);
	u->modal = M_NONE;
	reload_model(u);
	save_settings(u);
}

static void cycle(char *dst, size_t len, const char *const *opts, int n, int dir)
{
	int cur = 0;
	for (int i = 0; i < n; i++)
		if (!strcmp(dst, opts[i]))
			cur = i;
	cur = (cur + dir + n) % n;
	snprintf(dst, len, "%s", opts[cur]);
}

static void setting_change(struct ui *u, int row, int dir)
{
	struct settings *s = &u->o->settings;
	char err[512];
	static const char *const backends[] = {"auto", "cpu", "opencl"};
	static const char *const formats[] = {"wav", "wav24", "wavf", "flac", "ogg"};
	switch (row) {
	case S_MODEL: open_input(u, IN_SETTING, "Model (directory or hub id ORG/NAME)", s->model, 0); u->set_row = row; return;
	case S_EXPORT_DIR: open_input(u, IN_SETTING, "Export folder", s->export_dir, 0); u->set_row = row; return;
	case S_THREADS: open_input(u, IN_SETTING, "Threads (0 = all cores)", "", 0); u->set_row = row; return;
	case S_BACKEND: cycle(s->backend, sizeof s->backend, backends, 3, dir); reload_model(u); break;
	case S_CDEVICE: {
		/* auto, then each OpenCL device mg_list_devices reports */
		int n = u->n_cl_devs + 1, cur = s->device + 1;
		if (cur < 0 || cur >= n)
			cur = 0;
		s->device = (cur + dir + n) % n - 1;
		/* A chosen device means the OpenCL backend; auto leaves the backend as it is. */
		if (s->device >= 0)
			snprintf(s->backend, sizeof s->backend, "opencl");
		reload_model(u);
		break;
	}
	case S_MODEL_DIRS:
		open_input(u, IN_SETTING, "Model folders for the picker (F3), separated by ':'", s->model_dirs, 0);
		u->set_row = row;
		return;
	case S_AUTOPLAY: s->autoplay = !s->autoplay; break;
	case S_EXPORT_FORMAT: cycle(s->export_format, sizeof s->export_format, formats, 5, dir); break;
	case S_DEVICE: {
		const char *opts[33];
		opts[0] = "";
		for (int i = 0; i < u->n_devices; i++)
			opts[i + 1] = u->devices[i];
		cycle(s->audio_device, sizeof s->audio_device, opts, u->n_devices + 1, dir);
		reopen_player(u);
		break;
	}
	case S_THEME: {
		const char *opts[32];
		for (int i = 0; i < u->n_themes; i++)
			opts[i] = u->themes[i];
		if (u->n_themes)
			cycle(s->theme, sizeof s->theme, opts, u->n_themes, dir);
		if (theme_load(s->theme, u->asset_dir_list, u->n_asset_dirs, err, sizeof err))
			message(u, 1, "%s", err);
		break;
	}
	}
	save_settings(u);
}

static void input_commit(struct ui *u)
{
	char err[1024];
	struct history_take t;
	u->modal = M_NONE;
	switch (u->in_purpose) {
	case IN_FILTER:
		str_copy_utf8(u->filter, sizeof u->filter, u->in_buf);
		history_refresh(u);
		break;
	case IN_NAME:
	case IN_NOTE:
		if (history_get(u->hist, u->in_take, &t, err, sizeof err) ||
		    history_set_name(u->hist, u->in_take, u->in_purpose == IN_NAME ? u->in_buf : t.name,
		                     u->in_purpose == IN_NOTE ? u->in_buf : t.note, err, sizeof err))
			message(u, 1, "%s", err);
		history_refresh(u);
		break;
	case IN_EXPORT: do_export(u, u->in_take, u->in_buf); break;
	case IN_SETTING:
		u->modal = M_SETTINGS;
		if (u->set_row == S_MODEL) {
			str_copy_utf8(u->o->settings.model, sizeof u->o->settings.model, u->in_buf);
			reload_model(u);
		} else if (u->set_row == S_EXPORT_DIR) {
			str_copy_utf8(u->o->settings.export_dir, sizeof u->o->settings.export_dir, u->in_buf);
		} else if (u->set_row == S_MODEL_DIRS) {
			str_copy_utf8(u->o->settings.model_dirs, sizeof u->o->settings.model_dirs, u->in_buf);
		} else if (u->set_row == S_THREADS) {
			char *end;
			long v = strtol(u->in_buf, &end, 10);
			if (!u->in_buf[0] || *end || v < 0 || v > 1024) {
				message(u, 1, "threads must be a whole number from 0 to 1024, got '%s'", u->in_buf);
				return;
			}
			u->o->settings.threads = (int)v;
			reload_model(u);
		}
		save_settings(u);
		break;
	}
}

/* Readline-style keys shared by the prompt editor and the input dialog.
 * Returns 1 when the key was used. */
static int editor_key(struct editor *e, int is_key, wint_t ch, int alt)
{
	if (alt) {
		if (ch == 'b' || ch == 'B')
			editor_word_left(e);
		else if (ch == 'f' || ch == 'F')
			editor_word_right(e);
		else if (ch == 127 || ch == KEY_BACKSPACE)
			editor_kill_word(e);
		else
			return 0;
		return 1;
	}
	if (is_key) {
		switch (ch) {
		case KEY_LEFT: editor_left(e); return 1;
		case KEY_RIGHT: editor_right(e); return 1;
		case KEY_HOME: editor_home(e); return 1;
		case KEY_END: editor_end(e); return 1;
		case KEY_BACKSPACE: editor_backspace(e); return 1;
		case KEY_DC: editor_delete(e); return 1;
		default: return 0;
		}
	}
	switch (ch) {
	case CTRL('A'): editor_home(e); return 1;
	case CTRL('E'): editor_end(e); return 1;
	case CTRL('B'): editor_left(e); return 1;
	case CTRL('F'): editor_right(e); return 1;
	case CTRL('K'): editor_kill_end(e); return 1;
	case CTRL('U'): editor_kill_start(e); return 1;
	case CTRL('W'): editor_kill_word(e); return 1;
	case CTRL('D'): editor_delete(e); return 1;
	case CTRL('H'):
	case 127: editor_backspace(e); return 1;
	default:
		if (ch >= 0x20 && ch != 127) {
			if (editor_insert_wchar(e, (unsigned)ch))
				beep();
			return 1;
		}
		return 0;
	}
}

/* ---- drawing ---- */

static void draw_title(struct ui *u, int cols)
{
	fill(0, 0, cols, theme_attr(TH_STATUS));
	attron(theme_attr(TH_STATUS) | A_BOLD);
	put(0, 1, cols - 2, "musicgen-tui");
	attroff(A_BOLD);
	const char *state = u->js.model_state == JOBS_MODEL_READY     ? (u->js.busy ? "generating" : "ready")
	                    : u->js.model_state == JOBS_MODEL_LOADING ? "loading model"
	                    : u->js.model_state == JOBS_MODEL_FAILED  ? "model failed"
	                                                              : "no model";
	char right[64];
	snprintf(right, sizeof right, "F1 help  F10 quit ");
	int rw = (int)strlen(right);
	putf(0, 14, cols - 14 - rw - 1, " %s  %s", u->js.model_id[0] ? u->js.model_id : "-", state);
	put(0, cols - rw, rw, right);
	attroff(theme_attr(TH_STATUS));
}

static void draw_compose(struct ui *u, int y, int x, int h, int w)
{
	u->geo_compose.y = y, u->geo_compose.x = x, u->geo_compose.h = h, u->geo_compose.w = w;
	u->geo_compose.shown = 1;
	u->geo_knob_first = y + 4;
	box_at(y, x, h, w, u->focus == F_PROMPT || u->focus == F_KNOBS, "Compose");
	int iw = w - 4, row = y + 1;
	attron(theme_attr(TH_LABEL));
	put(row, x + 2, iw, "Prompt");
	attroff(theme_attr(TH_LABEL));
	char len[32];
	snprintf(len, sizeof len, "%zu/%d", u->ed.len, PROMPT_MAX - 1);
	attron(theme_attr(TH_DIM));
	put(row, x + w - 2 - (int)strlen(len), (int)strlen(len), len);
	attroff(theme_attr(TH_DIM));
	row++;
	/* the prompt field */
	int fw = iw - 2;
	int cur = editor_view(&u->ed, fw);
	int fa = u->focus == F_PROMPT ? theme_attr(TH_VALUE_FOCUS) : theme_attr(TH_VALUE);
	put(row, x + 2, 2, u->focus == F_PROMPT ? "> " : "  ");
	fill(row, x + 4, fw, u->focus == F_PROMPT ? fa : (int)A_NORMAL);
	attron(fa);
	if (u->ed.len == 0 && u->focus != F_PROMPT) {
		attron(theme_attr(TH_DIM));
		put(row, x + 4, fw, "(empty: unconditional music; type a description)");
		attroff(theme_attr(TH_DIM));
	} else if (u->focus == F_PROMPT) {
		put(row, x + 4, fw, u->ed.buf + u->ed.scroll);
	} else {
		/* Unfocused: the beginning, with an ellipsis when it goes on. */
		int used = put(row, x + 4, fw - 1, u->ed.buf);
		if (editor_width(u->ed.buf, 0, u->ed.len) > used)
			put(row, x + 4 + used, 1, "\u2026");
	}
	attroff(fa);
	int cur_y = row, cur_x = x + 4 + cur;
	row += 2;
	for (int k = 0; k < K_COUNT && row < y + h - 1; k++, row++) {
		int sel = u->focus == F_KNOBS && u->knob_sel == k;
		attron(theme_attr(TH_LABEL));
		putf(row, x + 2, 14, "%s%-12s", sel ? "\u25b8 " : "  ", knob_labels[k]);
		attroff(theme_attr(TH_LABEL));
		char v[64];
		if (sel && u->knob_editing) {
			snprintf(v, sizeof v, "%s_", u->knob_buf);
		} else
			knob_text(u, k, v, sizeof v);
		int a = sel ? theme_attr(TH_VALUE_FOCUS) : theme_attr(TH_VALUE);
		attron(a);
		int used = putf(row, x + 17, iw - 15, sel && !u->knob_editing ? "\u25c2 %s \u25b8" : " %s ", v);
		attroff(a);
		if (sel && u->knob_err[0]) {
			attron(theme_attr(TH_ERROR));
			put(row, x + 18 + used, iw - 16 - used, u->knob_err);
			attroff(theme_attr(TH_ERROR));
		}
	}
	row++;
	/* queue */
	if (row < y + h - 1) {
		attron(theme_attr(TH_LABEL));
		if (u->js.n_queued == 0)
			put(row, x + 2, iw, u->js.busy ? "Queue: empty (F5 adds a job)" : "F5 / Ctrl-G generate   F2 presets");
		else
			putf(row, x + 2, iw, "Queue (%d)%s", u->js.n_queued,
			     u->focus == F_KNOBS ? ":  Down to select, x drops" : "");
		attroff(theme_attr(TH_LABEL));
		row++;
	}
	for (int i = 0; i < u->js.n_queued && row < y + h - 1; i++, row++) {
		int sel = u->focus == F_KNOBS && u->knob_sel == K_COUNT + i;
		int a = sel ? theme_attr(TH_SELECTED) : theme_attr(TH_DIM);
		attron(a);
		putf(row, x + 2, iw, "  #%lld  %.1f s  %s", (long long)u->js.queued[i].job_id, u->js.queued[i].duration,
		     u->js.queued[i].prompt[0] ? u->js.queued[i].prompt : "(unconditional)");
		attroff(a);
	}
	/* The selected take, in full, when there is room below. */
	const struct history_take *t = u->n_takes > 0 && u->hist_sel < u->n_takes ? &u->takes[u->hist_sel] : NULL;
	int dy = y + h - 10;
	if (t && dy > row) {
		char created[40], len_s[32];
		time_t c = (time_t)t->created;
		struct tm tm;
		localtime_r(&c, &tm);
		strftime(created, sizeof created, "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(len_s, sizeof len_s, "%.1f s", t->sample_rate ? (double)t->n_samples / t->sample_rate : 0.0);
		attron(theme_attr(TH_BORDER));
		mvhline(dy, x + 1, ACS_HLINE, w - 2);
		attroff(theme_attr(TH_BORDER));
		attron(theme_attr(TH_TITLE));
		putf(dy, x + 2, iw, " Take #%lld%s%s ", (long long)t->id, t->favourite ? " \u2605" : "",
		     t->take_count > 1 ? "" : "");
		attroff(theme_attr(TH_TITLE));
		attron(theme_attr(TH_LABEL));
		putf(dy + 1, x + 2, iw, "%s%s%s", t->name[0] ? t->name : "", t->name[0] ? ": " : "",
		     t->prompt[0] ? t->prompt : "(unconditional)");
		putf(dy + 2, x + 2, iw, "%s long, %d Hz %s, take %d of %d", len_s, t->sample_rate,
		     t->channels == 2 ? "stereo" : "mono", t->take_index + 1, t->take_count);
		putf(dy + 3, x + 2, iw, "guidance %g%s, temperature %g", t->guidance, t->guidance <= 1 ? " (off)" : "",
		     t->temperature);
		putf(dy + 4, x + 2, iw, "top-k %d%s, top-p %g%s, seed %llu", t->top_k, t->top_k ? "" : " (off)", t->top_p,
		     t->top_p >= 1 ? " (off)" : "", (unsigned long long)t->seed);
		putf(dy + 5, x + 2, iw, "model %s%s%.12s", t->model, t->model_rev[0] ? "@" : "", t->model_rev);
		putf(dy + 6, x + 2, iw, "made %s in %.1f s on %s", created, t->total_seconds, t->backend);
		if (t->note[0])
			putf(dy + 7, x + 2, iw, "note: %s", t->note);
		attroff(theme_attr(TH_LABEL));
	}
	if (u->focus == F_PROMPT && u->modal == M_NONE) {
		move(cur_y, cur_x);
		curs_set(1);
	}
}

static void draw_history(struct ui *u, int y, int x, int h, int w)
{
	u->geo_hist.y = y, u->geo_hist.x = x, u->geo_hist.h = h, u->geo_hist.w = w;
	u->geo_hist.shown = 1;
	char title[300];
	snprintf(title, sizeof title, "History (%d%s%s%s%s)", u->n_takes, u->filter[0] ? ", filter \"" : "", u->filter,
	         u->filter[0] ? "\"" : "", u->favs_only ? ", favourites" : "");
	box_at(y, x, h, w, u->focus == F_HISTORY, title);
	int rows = h - 2, iw = w - 4;
	if (u->js.busy && rows > 2) {
		/* The take being made, above the finished ones. */
		char pending[200];
		int pct = u->js.total > 0 ? u->js.step * 100 / u->js.total : 0;
		snprintf(pending, sizeof pending, "  \u2026 job #%lld, %d%%: %s", (long long)u->js.job_id, pct,
		         u->js.prompt[0] ? u->js.prompt : "(unconditional)");
		attron(theme_attr(TH_DIM));
		put(y + 1, x + 2, iw, pending);
		attroff(theme_attr(TH_DIM));
		y++;
		rows--;
	}
	u->geo_hist_first = y + 1;
	if (u->n_takes == 0) {
		attron(theme_attr(TH_DIM));
		put(y + 1, x + 2, iw, u->filter[0] || u->favs_only ? "No take matches." : "No takes yet: write a prompt and press F5.");
		attroff(theme_attr(TH_DIM));
		return;
	}
	if (u->hist_sel < u->hist_top)
		u->hist_top = u->hist_sel;
	if (u->hist_sel >= u->hist_top + rows)
		u->hist_top = u->hist_sel - rows + 1;
	for (int r = 0; r < rows && u->hist_top + r < u->n_takes; r++) {
		int i = u->hist_top + r;
		const struct history_take *t = &u->takes[i];
		int sel = i == u->hist_sel;
		int a = sel ? (u->focus == F_HISTORY ? theme_attr(TH_SELECTED) : (int)A_BOLD) : (int)A_NORMAL;
		fill(y + 1 + r, x + 1, w - 2, a);
		attron(a);
		int playing = u->ps.loaded && u->ps.tag == t->id;
		char right[96], age[24];
		age_str(t->created, age, sizeof age);
		double len = t->sample_rate ? (double)t->n_samples / t->sample_rate : 0;
		if (iw >= 72)
			snprintf(right, sizeof right, " %5.1fs  g%-4.3g t%-4.3g k%-4d %8s", len, t->guidance, t->temperature,
			         t->top_k, age);
		else
			snprintf(right, sizeof right, " %5.1fs %8s", len, age);
		int rw = iw > 40 ? (int)strlen(right) : 0;
		if (!sel && t->favourite)
			attron(theme_attr(TH_FAVOURITE));
		put(y + 1 + r, x + 2, 2, t->favourite ? "\u2605" : " ");
		if (!sel && t->favourite)
			attroff(theme_attr(TH_FAVOURITE));
		put(y + 1 + r, x + 4, 2, playing ? (u->ps.playing ? "\u25b6" : "\u2016") : " ");
		char left[PROMPT_MAX + 200];
		snprintf(left, sizeof left, "#%-4lld %s%s%s", (long long)t->id, t->name[0] ? t->name : "",
		         t->name[0] ? " \u2014 " : "", t->prompt[0] ? t->prompt : "(unconditional)");
		put(y + 1 + r, x + 6, iw - 5 - rw, left);
		if (rw)
			put(y + 1 + r, x + 2 + iw - rw, rw, right);
		attroff(a);
	}
	/* scroll position */
	if (u->n_takes > rows) {
		attron(theme_attr(TH_DIM));
		putf(y + h - 1, x + w - 14, 12, " %d/%d ", u->hist_sel + 1, u->n_takes);
		attroff(theme_attr(TH_DIM));
	}
}

static void draw_progress(struct ui *u, int y, int cols)
{
	move(y, 0);
	clrtoeol();
	if (u->js.busy) {
		char el[32], eta[32];
		clock_str(u->js.elapsed_s, el, sizeof el);
		clock_str(u->js.eta_s, eta, sizeof eta);
		char tail[200];
		char queue[32] = "";
		if (u->js.n_queued)
			snprintf(queue, sizeof queue, "  +%d queued", u->js.n_queued);
		snprintf(tail, sizeof tail, " %d/%d steps  %.1f steps/s  ETA %s  elapsed %s%s%s", u->js.step, u->js.total,
		         u->js.steps_per_s, eta, el, queue, u->js.cancelling ? "  cancelling..." : "  Esc cancel");
		if (u->js.total > 0 && u->js.step >= u->js.total)
			snprintf(tail, sizeof tail, " decoding audio (EnCodec)  elapsed %s%s", el,
			         u->js.cancelling ? "  cancelling..." : "  Esc cancel");
		int head = putf(y, 1, cols - 2, "Generating #%lld ", (long long)u->js.job_id);
		int bw = cols - 2 - head - (int)strlen(tail) - 5;
		if (bw > 60)
			bw = 60;
		if (bw < 5)
			bw = 5;
		double frac = u->js.total > 0 ? (double)u->js.step / u->js.total : 0;
		int done = (int)(frac * bw);
		attron(theme_attr(TH_PROGRESS));
		for (int i = 0; i < done; i++)
			addstr("\u2588");
		attroff(theme_attr(TH_PROGRESS));
		attron(theme_attr(TH_PROGRESS_BG));
		for (int i = done; i < bw; i++)
			addstr("\u2591");
		attroff(theme_attr(TH_PROGRESS_BG));
		putf(y, 1 + head + bw, cols - 2 - head - bw, "%3d%%%s", (int)(frac * 100), tail);
	} else if (u->js.model_state == JOBS_MODEL_LOADING) {
		putf(y, 1, cols - 2, "Loading model %s ...", u->js.model_id);
	} else {
		attron(theme_attr(TH_DIM));
		put(y, 1, cols - 2, u->js.model_state == JOBS_MODEL_READY ? "Idle: F5 generates" : "Idle");
		attroff(theme_attr(TH_DIM));
	}
}

static void draw_meter(float level, int width)
{
	int n = (int)(fminf(level, 1.0f) * width + 0.5f);
	for (int i = 0; i < width; i++) {
		int el = i < width * 6 / 10 ? TH_METER_LOW : i < width * 85 / 100 ? TH_METER_MID : TH_METER_HIGH;
		attron(theme_attr(el));
		addstr(i < n ? "\u25ae" : "\u00b7");
		attroff(theme_attr(el));
	}
}

static void draw_player(struct ui *u, int y, int cols)
{
	move(y, 0);
	clrtoeol();
	int focused = u->focus == F_PLAYER;
	if (focused) {
		attron(theme_attr(TH_BORDER_FOCUS));
		put(y, 0, 1, "\u25b8");
		attroff(theme_attr(TH_BORDER_FOCUS));
	}
	if (!u->ps.loaded) {
		attron(theme_attr(TH_DIM));
		putf(y, 1, cols - 2, "\u25a0 nothing loaded    %s", u->ps.has_device ? "" : "(no audio device: playback off)");
		attroff(theme_attr(TH_DIM));
		return;
	}
	/* Tenths of a second: takes are short, and seeking moves in 5 s steps. */
	char pos[32], len[32];
	snprintf(pos, sizeof pos, "%d:%04.1f", (int)(u->ps.pos_s / 60), fmod(floor(u->ps.pos_s * 10) / 10, 60.0));
	snprintf(len, sizeof len, "%d:%04.1f", (int)(u->ps.len_s / 60), fmod(floor(u->ps.len_s * 10) / 10, 60.0));
	int x = 1;
	x += putf(y, x, cols - x, "%s #%lld  %s / %s  ", u->ps.playing ? "\u25b6" : "\u2016", (long long)u->ps.tag, pos, len);
	int meter = cols >= 90 ? 10 : 5;
	int ww = cols - x - 2 * meter - 10;
	if (ww > 8) {
		/* Waveform overview: one peak per column, the played part highlighted. */
		int ch;
		int64_t n;
		const float *pcm = player_pcm(u->player, &ch, &n);
		static const char *const bars[] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
		int played = u->ps.len_s > 0 ? (int)(u->ps.pos_s / u->ps.len_s * ww) : 0;
		for (int c = 0; c < ww; c++) {
			float peak = 0;
			if (pcm && n > 0) {
				int64_t a = n * c / ww, b = n * (c + 1) / ww;
				for (int k = 0; k < ch; k++)
					for (int64_t i = a; i < b; i += 4)
						peak = fmaxf(peak, fabsf(pcm[(int64_t)k * n + i]));
			}
			int lvl = (int)(fminf(peak, 1.0f) * 7.99f);
			int attr = c < played ? theme_attr(TH_WAVE) | (int)A_BOLD : theme_attr(TH_DIM);
			attron(attr);
			mvaddstr(y, x + c, bars[lvl]);
			attroff(attr);
		}
		x += ww + 1;
	}
	move(y, x);
	addstr(" L");
	draw_meter(u->ps.level[0], meter);
	addstr(" R");
	draw_meter(u->ps.level[1], meter);
}

static void draw_status(struct ui *u, int y, int cols)
{
	move(y, 0);
	clrtoeol();
	char left[400];
	const char *backend = u->js.backend[0] ? u->js.backend : u->o->settings.backend;
	snprintf(left, sizeof left, " %.100s \u2502 %.100s \u2502 audio: %.100s \u2502 ", u->js.model_id[0] ? u->js.model_id : "no model",
	         backend, u->ps.has_device ? u->ps.device : "none");
	attron(theme_attr(TH_DIM));
	int used = put(y, 0, cols, left);
	attroff(theme_attr(TH_DIM));
	if (u->fs.state == FETCH_RUNNING && used < cols) {
		/* A download going on in the background. */
		double frac = u->fs.total ? (double)u->fs.done / (double)u->fs.total : 0;
		attron(theme_attr(TH_VALUE));
		used += putf(y, used, cols - used, "download %.0f%% \u2502 ", frac * 100);
		attroff(theme_attr(TH_VALUE));
	}
	if (u->msg[0]) {
		int a = u->msg_error ? theme_attr(TH_ERROR) : theme_attr(TH_NORMAL);
		attron(a);
		put(y, used, cols - used, u->msg);
		attroff(a);
	}
}

static void draw_keybar(struct ui *u, int y, int cols)
{
	/* Lower priority numbers stay longest when the terminal is narrow. */
	static const struct {
		const char *key, *label;
		int prio;
	} bar[] = {{"F1", "Help", 0},      {"F2", "Presets", 3}, {"F3", "Models", 3},    {"F5", "Generate", 0},
	           {"F6", "Settings", 2},
	           {"Tab", "Pane", 4},     {"Spc", "Play", 1},   {"Esc", "Cancel", 1},  {"F10", "Quit", 0}};
	enum { N = sizeof bar / sizeof bar[0] };
	(void)u;
	move(y, 0);
	clrtoeol();
	int maxprio = 4, gap = 2;
	for (;;) {
		int w = 0;
		for (int i = 0; i < N; i++)
			if (bar[i].prio <= maxprio)
				w += (int)strlen(bar[i].key) + 1 + (int)strlen(bar[i].label) + gap;
		if (w <= cols || (gap == 1 && maxprio == 0))
			break;
		if (gap == 2)
			gap = 1;
		else
			maxprio--;
	}
	int x = 0;
	for (int i = 0; i < N && x < cols; i++) {
		if (bar[i].prio > maxprio)
			continue;
		attron(theme_attr(TH_KEY));
		x += put(y, x, cols - x, bar[i].key);
		attroff(theme_attr(TH_KEY));
		attron(theme_attr(TH_KEY_LABEL));
		x += putf(y, x, cols - x, gap == 2 ? " %s  " : " %s ", bar[i].label);
		attroff(theme_attr(TH_KEY_LABEL));
	}
}

static void center_box(int h, int w, int *y, int *x)
{
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	if (w > cols - 2)
		w = cols - 2;
	if (h > rows - 2)
		h = rows - 2;
	*y = (rows - h) / 2;
	*x = (cols - w) / 2;
	for (int r = 0; r < h; r++)
		fill(*y + r, *x, w, (int)A_NORMAL);
}

static void draw_help(struct ui *u)
{
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	int w = cols - 4 < 90 ? cols - 4 : 90, h = rows - 2, y, x;
	center_box(h, w, &y, &x);
	box_at(y, x, h, w, 1, "Help: keys (j/k scroll, any other key closes)");
	static const struct {
		int ctx;
		const char *name;
	} groups[] = {{C_GLOBAL, "Anywhere"}, {C_LIST | C_KNOBS | C_PLAYER, "Outside text fields"}, {C_KNOBS, "Knobs"},
	              {C_HISTORY, "History"}, {C_PLAYER, "Player"}, {C_PROMPT, "Prompt editor"}};
	/* Lines are generated from the key table, so help cannot drift. */
	char lines[128][160];
	int n = 0;
	for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
		snprintf(lines[n++], 160, "\x01%s", groups[g].name);
		if (groups[g].ctx == C_PROMPT) {
			static const char *const ed[] = {
				"Left/Right    move a character      Ctrl-A/Home, Ctrl-E/End   start / end",
				"Alt-B/Alt-F   word left / right     Ctrl-K / Ctrl-U           kill to end / start",
				"Ctrl-W        kill the word before  Backspace/Delete          delete a character",
			};
			for (int i = 0; i < 3; i++)
				snprintf(lines[n++], 160, "  %s", ed[i]);
			continue;
		}
		for (int k = 0; k < N_KEYS && n < 126; k++) {
			if (keys[k].ctx != groups[g].ctx || !keys[k].help)
				continue;
			snprintf(lines[n++], 160, "  %-12s %s", keys[k].label, keys[k].help);
		}
	}
	snprintf(lines[n++], 160, "\x01Mouse");
	snprintf(lines[n++], 160, "  click focuses a pane and selects; double-click plays a take; the wheel");
	snprintf(lines[n++], 160, "  scrolls the history or turns the knob under it; a click on the player plays / pauses");
	snprintf(lines[n++], 160, " ");
	snprintf(lines[n++], 160, "  Files: settings %.130s", u->o->settings_path);
	snprintf(lines[n++], 160, "         history  %.120s/history.db", u->hist ? history_dir(u->hist) : "-");
	int vis = h - 2;
	if (u->help_top > n - vis)
		u->help_top = n - vis;
	if (u->help_top < 0)
		u->help_top = 0;
	for (int i = 0; i < vis && u->help_top + i < n; i++) {
		const char *l = lines[u->help_top + i];
		if (l[0] == '\x01') {
			attron(theme_attr(TH_TITLE));
			put(y + 1 + i, x + 2, w - 4, l + 1);
			attroff(theme_attr(TH_TITLE));
		} else
			put(y + 1 + i, x + 2, w - 4, l);
	}
}

static void draw_confirm(const char *title, const char *text)
{
	int y, x, w = (int)strlen(text) + 6;
	if (w < 40)
		w = 40;
	center_box(5, w, &y, &x);
	box_at(y, x, 5, w, 1, title);
	put(y + 2, x + 3, w - 6, text);
}

static void draw_input(struct ui *u)
{
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	(void)rows;
	int w = cols - 8 < 100 ? cols - 8 : 100, y, x;
	center_box(6, w, &y, &x);
	box_at(y, x, 6, w, 1, u->in_title);
	int fw = w - 6;
	int cur = editor_view(&u->in_ed, fw);
	fill(y + 2, x + 3, fw, theme_attr(TH_VALUE_FOCUS));
	attron(theme_attr(TH_VALUE_FOCUS));
	put(y + 2, x + 3, fw, u->in_buf + u->in_ed.scroll);
	attroff(theme_attr(TH_VALUE_FOCUS));
	attron(theme_attr(TH_DIM));
	put(y + 4, x + 3, fw, "Enter accept   Esc cancel");
	attroff(theme_attr(TH_DIM));
	move(y + 2, x + 3 + cur);
	curs_set(1);
}

static void draw_presets(struct ui *u)
{
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	int w = cols - 8 < 110 ? cols - 8 : 110, h = u->n_presets + 2, y, x;
	if (h > rows - 2)
		h = rows - 2;
	center_box(h, w, &y, &x);
	box_at(y, x, h, w, 1, "Prompt presets (Enter use, Esc close)");
	if (u->n_presets == 0) {
		put(y + 1, x + 2, w - 4, "No presets found (presets.txt in the data directory).");
		return;
	}
	int vis = h - 2, top = u->preset_sel >= vis ? u->preset_sel - vis + 1 : 0;
	for (int i = 0; i < vis && top + i < u->n_presets; i++) {
		int sel = top + i == u->preset_sel;
		int a = sel ? theme_attr(TH_SELECTED) : (int)A_NORMAL;
		fill(y + 1 + i, x + 1, w - 2, a);
		attron(a);
		putf(y + 1 + i, x + 2, w - 4, "%-16s %s", u->presets[top + i].name, u->presets[top + i].prompt);
		attroff(a);
	}
}

static void draw_settings(struct ui *u)
{
	int y, x, w = 90, h = S_COUNT + 6;
	center_box(h, w, &y, &x);
	box_at(y, x, h, w, 1, "Settings (Enter/Left/Right change, Esc close)");
	for (int r = 0; r < S_COUNT; r++) {
		int sel = r == u->set_row;
		char v[1100];
		setting_text(u, r, v, sizeof v);
		attron(theme_attr(TH_LABEL));
		putf(y + 2 + r, x + 2, 18, "%s%-15s", sel ? "\u25b8 " : "  ", setting_labels[r]);
		attroff(theme_attr(TH_LABEL));
		int a = sel ? theme_attr(TH_VALUE_FOCUS) : theme_attr(TH_VALUE);
		attron(a);
		putf(y + 2 + r, x + 20, w - 22, " %s ", v);
		attroff(a);
	}
	static const char *const hints[S_COUNT] = {
		"Enter: a model directory or hub id ORG/NAME; empty searches the cache. The model reloads.",
		"Left/Right: auto, cpu or opencl. The model reloads.",
		"Left/Right: auto or an OpenCL device (as 'musicgen-tui devices' numbers them). The model reloads.",
		"Enter: CPU threads for the engine, 0 = all cores. The model reloads.",
		"Left/Right: the output devices PortAudio reports (a running JACK server included).",
		"Enter: play a finished take at once, or not.",
		"Enter: where exports go by default; empty = $XDG_MUSIC_DIR or ~/Music.",
		"Left/Right: wav (16-bit), wav24, wavf (32-bit float), flac or ogg.",
		"Left/Right: themes from the data directory and ~/.config/musicgen-tui/themes.",
		"Enter: more places the model picker (F3) looks in, besides the Hugging Face cache.",
	};
	put(y + h - 3, x + 2, w - 4, hints[u->set_row]);
	attron(theme_attr(TH_DIM));
	putf(y + h - 2, x + 2, w - 4, "saved to %s", u->o->settings_path);
	attroff(theme_attr(TH_DIM));
}

/* Writes text over up to maxlines rows of width w, breaking at spaces.
 * Returns the next free row. */
static int put_wrapped(int r, int x, int w, const char *text, int maxlines)
{
	char line[1024];
	while (*text && maxlines-- > 0) {
		size_t n = strlen(text);
		if ((int)n > w && maxlines > 0) {
			n = (size_t)w;
			while (n > 0 && text[n] != ' ')
				n--;
			if (n == 0)
				n = (size_t)w;
		}
		if (n >= sizeof line)
			n = sizeof line - 1;
		memcpy(line, text, n);
		line[n] = '\0';
		put(r++, x, w, line);
		text += n;
		while (*text == ' ')
			text++;
	}
	return r;
}

/* The no-model screen's download offer: asks the hub, asks the user, shows
 * the progress. Returns the next free row. */
static int draw_offer(struct ui *u, int r, int x, int w)
{
	const struct fetch_snapshot *f = &u->fs;
	char a[32], b[32], c[32];
	switch (f->state) {
	case FETCH_IDLE:
		put(r++, x, w, u->dl_declined ? "Download declined. d: offer it again" : "d: download " DEFAULT_MODEL);
		break;
	case FETCH_PLANNING:
		putf(r++, x, w, "Asking the hub for the files of %s ...  (Esc: stop)", f->repo);
		break;
	case FETCH_PLANNED:
		size_str(f->total_bytes, a, sizeof a);
		size_str(f->missing_bytes, b, sizeof b);
		attron(A_BOLD);
		if (f->missing_bytes < f->total_bytes)
			putf(r++, x, w, "Download %s? %d files, %s (%s still to fetch)  [y/n]", f->repo, f->nfiles, a, b);
		else
			putf(r++, x, w, "Download %s? %d files, %s  [y/n]", f->repo, f->nfiles, a);
		attroff(A_BOLD);
		break;
	case FETCH_RUNNING:
	case FETCH_DONE: {
		size_str(f->done, a, sizeof a);
		size_str(f->total, b, sizeof b);
		size_str((uint64_t)f->rate, c, sizeof c);
		double frac = f->total ? (double)f->done / (double)f->total : 0;
		if (frac > 1)
			frac = 1;
		int bw = w - 8 > 10 ? w - 8 : 10;
		int filled = (int)(frac * bw);
		attron(theme_attr(TH_VALUE));
		for (int i = 0; i < bw; i++)
			mvaddstr(r, x + i, i < filled ? "\u2588" : "\u2591");
		attroff(theme_attr(TH_VALUE));
		putf(r++, x + bw + 1, 7, "%3.0f%%", frac * 100);
		char eta[32] = "?", el[32];
		if (f->eta >= 0)
			clock_str(f->eta, eta, sizeof eta);
		clock_str(f->elapsed_s, el, sizeof el);
		if (f->state == FETCH_DONE)
			putf(r++, x, w, "Downloaded %s (%s) in %s. Loading the model ...", f->repo, b, el);
		else
			putf(r++, x, w, "%s / %s   %s/s   ETA %s   elapsed %s", a, b, f->rate > 0 ? c : "?", eta, el);
		if (f->state == FETCH_RUNNING)
			putf(r++, x, w, "%s %s (%d/%d)   Esc: cancel (the partial data is kept for a resume)",
			     f->verifying ? "checking" : "fetching", f->file[0] ? f->file : "...", f->file_index + 1, f->nfiles);
		break;
	}
	case FETCH_FAILED:
		attron(theme_attr(TH_ERROR));
		{
			char m[900];
			snprintf(m, sizeof m, "Download failed (%s): %s", dl_status_name(f->status), f->msg);
			r = put_wrapped(r, x, w, m, 3);
		}
		attroff(theme_attr(TH_ERROR));
		put(r++, x, w, "r: try again");
		break;
	case FETCH_CANCELLED:
		if (u->dl_declined)
			put(r++, x, w, "Download declined.  d: offer it again");
		else
			put(r++, x, w, "Download cancelled; what arrived is kept and a new try resumes it.  r: try again");
		break;
	}
	return r;
}

static void draw_nomodel(struct ui *u)
{
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	int w = cols - 4 < 100 ? cols - 4 : 100, h = rows - 2 < 24 ? rows - 2 : 24, y, x;
	center_box(h, w, &y, &x);
	box_at(y, x, h, w, 1, "No MusicGen model found");
	int r = y + 2;
	put(r++, x + 3, w - 6, "musicgen-tui needs a MusicGen checkpoint in the Hugging Face layout.");
	r++;
	r = draw_offer(u, r, x + 3, w - 6);
	r++;
	put(r++, x + 3, w - 6, "Or from a shell:");
	attron(theme_attr(TH_VALUE));
	put(r++, x + 5, w - 8, "musicgen-tui download " DEFAULT_MODEL);
	attroff(theme_attr(TH_VALUE));
	put(r++, x + 3, w - 6, "or name a model directory or hub id:");
	attron(theme_attr(TH_VALUE));
	put(r++, x + 5, w - 8, "musicgen-tui --model PATH      (or 'model = ...' in the settings, F6)");
	attroff(theme_attr(TH_VALUE));
	r++;
	put(r++, x + 3, w - 6, "Looked for:");
	attron(theme_attr(TH_DIM));
	/* model_search holds one place per line. */
	char buf[2048];
	str_copy_utf8(buf, sizeof buf, u->o->model_search);
	for (char *line = strtok(buf, "\n"); line && r < y + h - 3; line = strtok(NULL, "\n"))
		put(r++, x + 5, w - 8, line);
	attroff(theme_attr(TH_DIM));
	put(y + h - 2, x + 3, w - 6, "Enter: continue without a model   F3: installed models   F6: settings   F10: quit");
}

static void draw_download(struct ui *u)
{
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	(void)rows;
	int w = cols - 4 < 100 ? cols - 4 : 100, h = 9, y, x;
	center_box(h, w, &y, &x);
	char title[300];
	snprintf(title, sizeof title, "Download %.250s", u->dl_repo);
	box_at(y, x, h, w, 1, title);
	draw_offer(u, y + 2, x + 3, w - 6);
	attron(theme_attr(TH_DIM));
	put(y + h - 2, x + 3, w - 6,
	    u->fs.state == FETCH_RUNNING ? "Esc: cancel   Enter: go on in the background (the model loads when complete)"
	                                 : "Esc / Enter: close");
	attroff(theme_attr(TH_DIM));
}

static void draw_models(struct ui *u)
{
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	int w = cols - 4 < 110 ? cols - 4 : 110, h = rows - 4 < 20 ? rows - 4 : 20, y, x;
	(void)rows;
	center_box(h, w, &y, &x);
	char title[80];
	snprintf(title, sizeof title, "Models (%d) - Enter loads, Esc closes", u->n_models);
	box_at(y, x, h, w, 1, title);
	int list_h = h - 5;
	if (u->models_err[0]) {
		attron(theme_attr(TH_ERROR));
		put(y + 1, x + 2, w - 4, u->models_err);
		attroff(theme_attr(TH_ERROR));
	}
	if (!u->n_models)
		put(y + 2, x + 3, w - 6, "No MusicGen model in the Hugging Face cache or the model folders (settings, F6).");
	if (u->model_sel < u->model_top)
		u->model_top = u->model_sel;
	if (u->model_sel >= u->model_top + list_h)
		u->model_top = u->model_sel - list_h + 1;
	for (int i = 0; i < list_h && u->model_top + i < u->n_models; i++) {
		const struct model_entry *m = &u->models[u->model_top + i];
		int sel = u->model_top + i == u->model_sel;
		char size[32], rev[80];
		size_str(m->size, size, sizeof size);
		if (m->in_cache)
			snprintf(rev, sizeof rev, "%.20s %.8s", m->revision[0] ? m->revision : "-", m->commit);
		else
			snprintf(rev, sizeof rev, "(folder)");
		int a = sel ? theme_attr(TH_VALUE_FOCUS) : theme_attr(TH_NORMAL);
		fill(y + 2 + i, x + 1, w - 2, a);
		attron(a);
		int inuse = !strcmp(m->id, u->js.model_id) && u->js.model_state == JOBS_MODEL_READY;
		putf(y + 2 + i, x + 2, w - 4, "%s%-34.34s %-30.30s %9s  %s", inuse ? "* " : "  ", m->id, rev, size,
		     m->complete ? "complete" : m->problem[0] ? m->problem : "incomplete");
		attroff(a);
	}
	if (u->model_sel < u->n_models) {
		attron(theme_attr(TH_DIM));
		put(y + h - 3, x + 2, w - 4, u->models[u->model_sel].path);
		attroff(theme_attr(TH_DIM));
	}
	put(y + h - 2, x + 2, w - 4,
	    "Up/Down choose   Enter load (remembered)   d download (" DEFAULT_MODEL " or the selected incomplete one)   Esc close");
}

static void draw(struct ui *u)
{
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	erase();
	curs_set(0);
	if (cols < MIN_COLS || rows < MIN_ROWS) {
		attron(A_BOLD);
		putf(rows / 2 - 1 > 0 ? rows / 2 - 1 : 0, 1, cols - 2, "Terminal too small (%dx%d)", cols, rows);
		attroff(A_BOLD);
		putf(rows / 2 > 0 ? rows / 2 : 0, 1, cols - 2, "Needs at least %dx%d.", MIN_COLS, MIN_ROWS);
		putf(rows / 2 + 1 < rows ? rows / 2 + 1 : 0, 1, cols - 2, "F10 quits.");
		refresh();
		return;
	}
	draw_title(u, cols);
	int pane_h = rows - 5;
	u->geo_compose.shown = u->geo_hist.shown = 0;
	u->geo_player = rows - 3;
	if (cols >= WIDE_COLS && rows >= WIDE_ROWS) {
		int cw = cols * 46 / 100;
		draw_history(u, 1, cw, pane_h, cols - cw);
		draw_compose(u, 1, 0, pane_h, cw);
	} else {
		int show_hist = u->focus == F_HISTORY || (u->focus == F_PLAYER && u->narrow_pane);
		if (show_hist)
			draw_history(u, 1, 0, pane_h, cols);
		else
			draw_compose(u, 1, 0, pane_h, cols);
		attron(theme_attr(TH_DIM));
		put(1, cols - 26, 24, show_hist ? " Tab: compose " : " Tab: history ");
		attroff(theme_attr(TH_DIM));
	}
	int cy = -1, cx = -1;
	if (u->focus == F_PROMPT && u->modal == M_NONE)
		getyx(stdscr, cy, cx);
	draw_progress(u, rows - 4, cols);
	draw_player(u, rows - 3, cols);
	draw_status(u, rows - 2, cols);
	draw_keybar(u, rows - 1, cols);
	switch (u->modal) {
	case M_HELP: draw_help(u); break;
	case M_QUIT: draw_confirm("Quit?", "A generation is running. Quit anyway and lose it? (y/n)"); break;
	case M_DELETE: {
		char t[200];
		snprintf(t, sizeof t, "Delete take #%lld and its audio? (y/n)", (long long)u->in_take);
		draw_confirm("Delete", t);
		break;
	}
	case M_INPUT: draw_input(u); break;
	case M_PRESETS: draw_presets(u); break;
	case M_SETTINGS: draw_settings(u); break;
	case M_NOMODEL: draw_nomodel(u); break;
	case M_MODELS: draw_models(u); break;
	case M_DOWNLOAD: draw_download(u); break;
	default: break;
	}
	if (u->modal == M_NONE && cy >= 0) {
		move(cy, cx);
		curs_set(1);
	} else if (u->modal != M_INPUT) {
		curs_set(0);
	}
	refresh();
}

/* ---- input ---- */

static int context_of(struct ui *u)
{
	switch (u->focus) {
	case F_PROMPT: return C_PROMPT;
	case F_KNOBS: return u->knob_editing ? C_PROMPT : C_KNOBS;
	case F_HISTORY: return C_LIST | C_HISTORY;
	default: return C_PLAYER;
	}
}

static void request_quit(struct ui *u)
{
	if (u->js.busy || u->js.n_queued > 0)
		u->modal = M_QUIT;
	else
		u->quit = 1;
}

static void set_focus(struct ui *u, int f)
{
	u->focus = (f + F_COUNT) % F_COUNT;
	u->knob_editing = 0;
	u->knob_err[0] = '\0';
	if (u->focus == F_HISTORY)
		u->narrow_pane = 1;
	else if (u->focus != F_PLAYER)
		u->narrow_pane = 0;
}

static void run_action(struct ui *u, enum action a)
{
	char err[600];
	struct history_take *t = selected_take(u);
	int page = LINES - 8 > 1 ? LINES - 8 : 1;
	switch (a) {
	case ACT_NONE: break;
	case ACT_HELP: u->modal = M_HELP; u->help_top = 0; break;
	case ACT_QUIT:
	case ACT_QUIT_Q: request_quit(u); break;
	case ACT_GENERATE: generate(u); break;
	case ACT_CANCEL:
		if (u->knob_editing) {
			u->knob_editing = 0;
			u->knob_err[0] = '\0';
		} else if (u->js.busy) {
			jobs_cancel(u->jobs, 0);
			message(u, 0, "cancelling job #%lld ...", (long long)u->js.job_id);
		}
		break;
	case ACT_FOCUS_NEXT: set_focus(u, u->focus + 1); break;
	case ACT_FOCUS_PREV: set_focus(u, u->focus - 1); break;
	case ACT_PRESETS: u->modal = M_PRESETS; break;
	case ACT_MODELS: open_models(u); break;
	case ACT_SETTINGS:
		u->modal = M_SETTINGS;
		u->n_cl_devs = mg_list_devices(u->cl_devs, 16, err, sizeof err);
		if (u->n_cl_devs < 0) {
			message(u, 1, "OpenCL devices: %s", err);
			u->n_cl_devs = 0;
		} else if (u->n_cl_devs > 16)
			u->n_cl_devs = 16;
		u->n_devices = player_list_devices(u->player, u->devices, 32);
		u->n_themes = theme_list(u->asset_dir_list, u->n_asset_dirs, u->themes, 32);
		break;
	case ACT_PLAY_TOGGLE:
		if (!u->ps.loaded && t) {
			play_take(u, t);
		} else if (player_toggle(u->player, err, sizeof err))
			message(u, 1, "%s", err);
		break;
	case ACT_SEEK_BACK: player_seek(u->player, -5); break;
	case ACT_SEEK_FWD: player_seek(u->player, 5); break;
	case ACT_UP:
		if (u->focus == F_KNOBS) {
			u->knob_err[0] = '\0';
			if (u->knob_sel > 0)
				u->knob_sel--;
			else
				set_focus(u, F_PROMPT);
		} else if (u->hist_sel > 0)
			u->hist_sel--;
		break;
	case ACT_DOWN:
		if (u->focus == F_KNOBS) {
			u->knob_err[0] = '\0';
			if (u->knob_sel < K_COUNT - 1 + u->js.n_queued)
				u->knob_sel++;
		} else if (u->hist_sel < u->n_takes - 1)
			u->hist_sel++;
		break;
	case ACT_PAGE_UP: u->hist_sel = u->hist_sel > page ? u->hist_sel - page : 0; break;
	case ACT_PAGE_DOWN: u->hist_sel = u->hist_sel + page < u->n_takes ? u->hist_sel + page : u->n_takes - 1; break;
	case ACT_TOP: u->hist_sel = 0; break;
	case ACT_BOTTOM: u->hist_sel = u->n_takes > 0 ? u->n_takes - 1 : 0; break;
	case ACT_KNOB_DEC:
	case ACT_KNOB_INC:
		if (u->knob_sel < K_COUNT)
			knob_step(u, u->knob_sel, a == ACT_KNOB_INC ? 1 : -1);
		break;
	case ACT_KNOB_RANDOM:
		if (u->knob_sel == K_SEED) {
			u->knobs.seed_random = !u->knobs.seed_random;
			if (!u->knobs.seed_random && u->have_last_seed)
				u->knobs.seed = u->last_seed;
		}
		break;
	case ACT_QUEUE_DROP: {
		int64_t id = 0;
		if (u->knob_sel >= K_COUNT && u->knob_sel - K_COUNT < u->js.n_queued)
			id = u->js.queued[u->knob_sel - K_COUNT].job_id;
		else if (u->js.n_queued > 0)
			id = u->js.queued[u->js.n_queued - 1].job_id;
		if (id && jobs_cancel(u->jobs, id) == 0) {
			message(u, 0, "dropped queued job #%lld", (long long)id);
			if (u->knob_sel >= K_COUNT)
				u->knob_sel = K_COUNT - 1;
		}
		break;
	}
	case ACT_HIST_PLAY:
		if (t)
			play_take(u, t);
		break;
	case ACT_HIST_RECALL:
		if (t) {
			editor_set(&u->ed, t->prompt);
			u->knobs.duration = t->duration;
			u->knobs.guidance = t->guidance;
			u->knobs.temperature = t->temperature;
			u->knobs.top_k = t->top_k;
			u->knobs.top_p = t->top_p;
			u->knobs.seed = t->seed;
			u->knobs.seed_random = 0;
			u->knobs.count = 1; /* the take's own seed makes that one take again */
			message(u, 0, "take #%lld loaded into compose (seed %llu fixed: F5 makes the same take)",
			        (long long)t->id, (unsigned long long)t->seed);
			set_focus(u, F_PROMPT);
		}
		break;
	case ACT_HIST_FAV:
		if (t) {
			if (history_set_favourite(u->hist, t->id, !t->favourite, err, sizeof err))
				message(u, 1, "%s", err);
			history_refresh(u);
		}
		break;
	case ACT_HIST_FAVS_ONLY:
		u->favs_only = !u->favs_only;
		history_refresh(u);
		break;
	case ACT_HIST_NAME:
		if (t)
			open_input(u, IN_NAME, "Name of the take", t->name, t->id);
		break;
	case ACT_HIST_NOTE:
		if (t)
			open_input(u, IN_NOTE, "Note", t->note, t->id);
		break;
	case ACT_HIST_DELETE:
		if (t) {
			u->in_take = t->id;
			u->modal = M_DELETE;
		}
		break;
	case ACT_HIST_FILTER: open_input(u, IN_FILTER, "Filter takes (prompt, name or note; empty = all)", u->filter, 0); break;
	case ACT_HIST_EXPORT:
		if (t) {
			char path[1400];
			default_export_path(u, t, path, sizeof path);
			open_input(u, IN_EXPORT, "Export to (.wav, .flac or .ogg)", path, t->id);
		}
		break;
	}
}

/* Asks the hub about repo; the offer (no-model screen or download dialog) shows it. */
static void start_offer(struct ui *u, const char *repo)
{
	str_copy_utf8(u->dl_repo, sizeof u->dl_repo, repo);
	u->dl_declined = 0;
	u->dl_loaded = 0;
	fetch_plan(u->fetch, u->dl_repo);
}

/* Keys of the no-model screen and the download dialog, by the state of the offer. */
static void nomodel_key(struct ui *u, int is_key, wint_t ch)
{
	int st = u->fs.state;
	if (is_key && ch == KEY_F(10)) {
		u->quit = 1;
	} else if (is_key && ch == KEY_F(6)) {
		run_action(u, ACT_SETTINGS);
	} else if (is_key && ch == KEY_F(3)) {
		open_models(u);
	} else if (st == FETCH_PLANNED && (ch == 'y' || ch == 'Y')) {
		fetch_start(u->fetch);
		message(u, 0, "downloading %s ...", u->fs.repo);
	} else if (st == FETCH_PLANNED && (ch == 'n' || ch == 'N')) {
		u->dl_declined = 1;
		fetch_cancel(u->fetch);
	} else if ((st == FETCH_RUNNING || st == FETCH_PLANNING) && ch == 27) {
		fetch_cancel(u->fetch);
		message(u, 0, "download cancelled");
	} else if (st == FETCH_RUNNING || st == FETCH_DONE) {
		/* Only Esc (and F10) act while it runs. */
	} else if ((st == FETCH_IDLE || st == FETCH_FAILED || st == FETCH_CANCELLED) &&
	           (ch == 'r' || ch == 'R' || ch == 'd' || ch == 'D')) {
		start_offer(u, u->dl_repo);
	} else if (ch == '\n' || ch == '\r' || (is_key && ch == KEY_ENTER) || ch == 27) {
		u->modal = M_NONE;
	}
}

static void modal_key(struct ui *u, int is_key, wint_t ch, int alt)
{
	char err[600];
	switch (u->modal) {
	case M_HELP:
		if (ch == 'j' || (is_key && ch == KEY_DOWN))
			u->help_top++;
		else if (ch == 'k' || (is_key && ch == KEY_UP))
			u->help_top--;
		else if (is_key && ch == KEY_NPAGE)
			u->help_top += LINES / 2;
		else if (is_key && ch == KEY_PPAGE)
			u->help_top -= LINES / 2;
		else
			u->modal = M_NONE;
		break;
	case M_QUIT:
		if (ch == 'y' || ch == 'Y' || (is_key && ch == KEY_F(10)) || ch == CTRL('Q') || ch == CTRL('C'))
			u->quit = 1;
		else
			u->modal = M_NONE;
		break;
	case M_DELETE:
		u->modal = M_NONE;
		if (ch == 'y' || ch == 'Y') {
			if (u->ps.loaded && u->ps.tag == u->in_take)
				player_pause(u->player);
			if (history_delete(u->hist, u->in_take, err, sizeof err))
				message(u, 1, "%s", err);
			else
				message(u, 0, "take #%lld deleted", (long long)u->in_take);
			history_refresh(u);
		}
		break;
	case M_INPUT:
		if (!is_key && ch == 27 && !alt)
			u->modal = u->in_purpose == IN_SETTING ? M_SETTINGS : M_NONE;
		else if (!is_key && (ch == '\n' || ch == '\r'))
			input_commit(u);
		else if (is_key && ch == KEY_ENTER)
			input_commit(u);
		else
			editor_key(&u->in_ed, is_key, ch, alt);
		if (u->modal == M_INPUT && u->in_purpose == IN_FILTER) {
			/* The list follows the filter as it is typed. */
			str_copy_utf8(u->filter, sizeof u->filter, u->in_buf);
			history_refresh(u);
		}
		break;
	case M_PRESETS:
		if (ch == 'j' || (is_key && ch == KEY_DOWN)) {
			if (u->preset_sel < u->n_presets - 1)
				u->preset_sel++;
		} else if (ch == 'k' || (is_key && ch == KEY_UP)) {
			if (u->preset_sel > 0)
				u->preset_sel--;
		} else if ((ch == '\n' || ch == '\r' || (is_key && ch == KEY_ENTER)) && u->n_presets) {
			editor_set(&u->ed, u->presets[u->preset_sel].prompt);
			u->modal = M_NONE;
			set_focus(u, F_PROMPT);
			message(u, 0, "preset '%s' loaded: edit it or press F5", u->presets[u->preset_sel].name);
		} else
			u->modal = M_NONE;
		break;
	case M_SETTINGS:
		if (ch == 'j' || (is_key && ch == KEY_DOWN)) {
			if (u->set_row < S_COUNT - 1)
				u->set_row++;
		} else if (ch == 'k' || (is_key && ch == KEY_UP)) {
			if (u->set_row > 0)
				u->set_row--;
		} else if (is_key && ch == KEY_LEFT)
			setting_change(u, u->set_row, -1);
		else if ((is_key && (ch == KEY_RIGHT || ch == KEY_ENTER)) || ch == '\n' || ch == '\r' || ch == ' ')
			setting_change(u, u->set_row, 1);
		else if (ch == 27 || ch == 'q' || (is_key && ch == KEY_F(6)))
			u->modal = M_NONE;
		break;
	case M_NOMODEL:
		nomodel_key(u, is_key, ch);
		break;
	case M_DOWNLOAD:
		if ((u->fs.state == FETCH_RUNNING || u->fs.state == FETCH_PLANNING) && ch == 27) {
			fetch_cancel(u->fetch);
			message(u, 0, "download cancelled");
		} else if (u->fs.state == FETCH_RUNNING) {
			if (ch == '\n' || ch == '\r' || (is_key && ch == KEY_ENTER)) {
				u->modal = M_NONE; /* it goes on; the model loads when it is complete */
				message(u, 0, "downloading %s in the background", u->fs.repo);
			}
		} else {
			nomodel_key(u, is_key, ch);
		}
		break;
	case M_MODELS:
		if (ch == 'j' || (is_key && ch == KEY_DOWN)) {
			if (u->model_sel < u->n_models - 1)
				u->model_sel++;
		} else if (ch == 'k' || (is_key && ch == KEY_UP)) {
			if (u->model_sel > 0)
				u->model_sel--;
		} else if (ch == '\n' || ch == '\r' || (is_key && ch == KEY_ENTER)) {
			pick_model(u);
		} else if (ch == 'd' || ch == 'D') {
			/* Complete the selected cache entry, else fetch the default model. */
			const struct model_entry *m = u->model_sel < u->n_models ? &u->models[u->model_sel] : NULL;
			int st = u->fs.state;
			if (st == FETCH_PLANNING || st == FETCH_RUNNING) {
				message(u, 1, "a download is already running");
			} else {
				start_offer(u, m && m->in_cache && !m->complete ? m->id : DEFAULT_MODEL);
				u->modal = M_DOWNLOAD;
			}
		} else if (ch == 27 || ch == 'q' || (is_key && ch == KEY_F(3))) {
			/* Back where it came from: the no-model screen while nothing is loaded. */
			u->modal = u->o->model[0] || u->dl_loaded ? M_NONE : M_NOMODEL;
		}
		break;
	default: break;
	}
}

static int inside(int y, int x, int gy, int gx, int gh, int gw)
{
	return y >= gy && y < gy + gh && x >= gx && x < gx + gw;
}

/* Mouse: click focuses and selects, double-click plays, the wheel scrolls. */
static void handle_mouse(struct ui *u)
{
	MEVENT me;
	if (getmouse(&me) != OK || u->modal != M_NONE)
		return;
	int y = me.y, x = me.x;
	int wheel_up = (me.bstate & BUTTON4_PRESSED) != 0;
#ifdef BUTTON5_PRESSED
	int wheel_down = (me.bstate & BUTTON5_PRESSED) != 0;
#else
	int wheel_down = 0;
#endif
	int click = (me.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON1_RELEASED)) != 0;
	int dbl = (me.bstate & BUTTON1_DOUBLE_CLICKED) != 0;
	if (u->geo_hist.shown && inside(y, x, u->geo_hist.y, u->geo_hist.x, u->geo_hist.h, u->geo_hist.w)) {
		if (wheel_up || wheel_down) {
			run_action(u, wheel_up ? ACT_UP : ACT_DOWN);
			return;
		}
		int i = u->hist_top + (y - u->geo_hist_first);
		if (u->focus != F_HISTORY)
			set_focus(u, F_HISTORY);
		if (y >= u->geo_hist_first && i >= 0 && i < u->n_takes) {
			u->hist_sel = i;
			if (dbl)
				run_action(u, ACT_HIST_PLAY);
		}
	} else if (u->geo_compose.shown &&
	           inside(y, x, u->geo_compose.y, u->geo_compose.x, u->geo_compose.h, u->geo_compose.w)) {
		int k = y - u->geo_knob_first;
		if (k >= 0 && k < K_COUNT) {
			set_focus(u, F_KNOBS);
			u->knob_sel = k;
			if (wheel_up || wheel_down)
				knob_step(u, k, wheel_up ? 1 : -1);
		} else if (click || dbl) {
			set_focus(u, F_PROMPT);
		}
	} else if (y == u->geo_player && (click || dbl)) {
		set_focus(u, F_PLAYER);
		run_action(u, ACT_PLAY_TOGGLE);
	}
}

static void handle_key(struct ui *u, int is_key, wint_t ch, int alt)
{
	if (is_key && ch == KEY_RESIZE)
		return;
	if (is_key && ch == KEY_MOUSE) {
		handle_mouse(u);
		return;
	}
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	if (cols < MIN_COLS || rows < MIN_ROWS) {
		if ((is_key && ch == KEY_F(10)) || ch == CTRL('Q'))
			request_quit(u);
		return;
	}
	if (u->modal != M_NONE) {
		/* Generation keeps going from dialogs; quitting is always reachable. */
		if (u->modal != M_INPUT && u->modal != M_QUIT &&
		    ((is_key && ch == KEY_F(10)) || (!is_key && (ch == CTRL('Q') || ch == CTRL('C'))))) {
			u->modal = M_NONE;
			request_quit(u);
			return;
		}
		modal_key(u, is_key, ch, alt);
		return;
	}
	int ctx = context_of(u);
	/* Text fields take printable keys first. */
	if (u->focus == F_PROMPT && !(is_key && ch == KEY_ENTER) && ch != '\t' && ch != 27 &&
	    !(!is_key && (ch == CTRL('G') || ch == CTRL('Q') || ch == CTRL('P')))) {
		if (!is_key && (ch == '\n' || ch == '\r')) {
			set_focus(u, F_KNOBS);
			return;
		}
		if (is_key && ch == KEY_DOWN) {
			set_focus(u, F_KNOBS);
			return;
		}
		if (editor_key(&u->ed, is_key, ch, alt))
			return;
	}
	if (u->focus == F_KNOBS && u->knob_sel < K_COUNT && !is_key) {
		int numeric = (ch >= '0' && ch <= '9') || ch == '.' || (u->knob_editing && ch == '-');
		if (numeric) {
			if (!u->knob_editing) {
				u->knob_editing = 1;
				u->knob_buf[0] = '\0';
			}
			size_t n = strlen(u->knob_buf);
			if (n + 1 < sizeof u->knob_buf) {
				u->knob_buf[n] = (char)ch;
				u->knob_buf[n + 1] = '\0';
			}
			return;
		}
		if (u->knob_editing) {
			if (ch == '\n' || ch == '\r')
				knob_edit_commit(u);
			else if (ch == 127 || ch == CTRL('H')) {
				size_t n = strlen(u->knob_buf);
				if (n)
					u->knob_buf[n - 1] = '\0';
			} else if (ch == 27) {
				u->knob_editing = 0;
				u->knob_err[0] = '\0';
			}
			return;
		}
		if (ch == '\n' || ch == '\r') {
			/* Enter on a knob starts typing its value. */
			u->knob_editing = 1;
			u->knob_buf[0] = '\0';
			return;
		}
	}
	if (u->focus == F_KNOBS && u->knob_editing && is_key) {
		if (ch == KEY_BACKSPACE) {
			size_t n = strlen(u->knob_buf);
			if (n)
				u->knob_buf[n - 1] = '\0';
			return;
		}
		if (ch == KEY_ENTER) {
			knob_edit_commit(u);
			return;
		}
	}
	if (alt)
		return;
	for (int k = 0; k < N_KEYS; k++) {
		int kk = keys[k].key;
		int match = is_key ? kk == (int)ch && kk >= KEY_MIN : kk == (int)ch && kk < KEY_MIN;
		if (!is_key && ch == '\r' && kk == '\n')
			match = 1;
		if (is_key && ch == KEY_ENTER && kk == '\n')
			match = 1;
		if (match && (keys[k].ctx & (ctx | C_GLOBAL))) {
			run_action(u, keys[k].action);
			return;
		}
	}
}

/* Reads every key waiting. ESC followed at once by a key is Alt+key. */
static void read_keys(struct ui *u)
{
	wint_t ch;
	int r;
	while ((r = get_wch(&ch)) != ERR) {
		int alt = 0;
		if (r == OK && ch == 27) {
			wint_t nx;
			int r2 = get_wch(&nx);
			if (r2 == OK && nx != 27) {
				alt = 1;
				ch = nx;
			} else if (r2 != ERR) {
				/* Esc, then a key of its own. */
				handle_key(u, 0, 27, 0);
				if (u->quit)
					return;
				r = r2;
				ch = nx;
			}
		}
		handle_key(u, r == KEY_CODE_YES, ch, alt);
		if (u->quit)
			return;
	}
}

static void save_state(struct ui *u)
{
	char err[1024];
	struct compose_state st;
	str_copy_utf8(st.prompt, sizeof st.prompt, u->prompt);
	st.knobs = u->knobs;
	if (st.knobs.seed_random && u->have_last_seed)
		st.knobs.seed = u->last_seed;
	if (u->o->state_path[0] && state_save(&st, u->o->state_path, err, sizeof err))
		message(u, 1, "%s", err);
}

static void setup_asset_dirs(struct ui *u)
{
	const char *env = getenv("MUSICGEN_TUI_DATADIR");
	char cfg[1100], err[256];
	u->n_asset_dirs = 0;
	if (xdg_app_dir(XDG_CONFIG, cfg, sizeof cfg, err, sizeof err) == 0)
		str_copy_utf8(u->asset_dirs[u->n_asset_dirs++], sizeof u->asset_dirs[0], cfg);
	if (env && *env)
		str_copy_utf8(u->asset_dirs[u->n_asset_dirs++], sizeof u->asset_dirs[0], env);
	else {
		/* Installed data, or the source tree's assets when run from the build. */
		char probe[1200];
		snprintf(probe, sizeof probe, "%s/presets.txt", MG_DATADIR);
		if (access(probe, R_OK) == 0)
			str_copy_utf8(u->asset_dirs[u->n_asset_dirs++], sizeof u->asset_dirs[0], MG_DATADIR);
		else
			snprintf(u->asset_dirs[u->n_asset_dirs++], sizeof u->asset_dirs[0], "%s/assets", MG_SRCDIR);
	}
	/* Themes live in a themes/ subdirectory of each. */
	for (int i = 0; i < u->n_asset_dirs; i++)
		u->asset_dir_list[i] = u->asset_dirs[i];
}

/* SIGTERM / SIGHUP: leave the loop cleanly (terminal restored, state saved). */
static volatile sig_atomic_t terminate_requested;

static void on_terminate(int sig)
{
	(void)sig;
	terminate_requested = 1;
}

int tui_run(struct tui_options *o)
{
	static struct ui ui; /* the screen state */
	struct ui *u = &ui;
	char err[1024];
	memset(u, 0, sizeof *u);
	u->o = o;
	u->log_fd = o->log_fd;
	str_copy_utf8(u->prompt, sizeof u->prompt, o->compose.prompt);
	editor_init(&u->ed, u->prompt, sizeof u->prompt);
	u->knobs = o->compose.knobs;
	if (u->knobs.seed_random && u->knobs.seed) {
		u->last_seed = u->knobs.seed;
		u->have_last_seed = 1;
	}
	setup_asset_dirs(u);
	load_presets(u);

	if (history_open(&u->hist, NULL, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui: %s\n", err);
		return 1;
	}
	if (jobs_start(&u->jobs, NULL, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui: %s\n", err);
		history_close(u->hist);
		return 1;
	}
	if (player_open(&u->player, o->settings.audio_device, o->log_fd, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui: %s\n", err);
		jobs_stop(u->jobs);
		history_close(u->hist);
		return 1;
	}
	if (fetch_create(&u->fetch, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui: %s\n", err);
		player_close(u->player);
		jobs_stop(u->jobs);
		history_close(u->hist);
		return 1;
	}
	if (o->model[0]) {
		jobs_load_model(u->jobs, o->model, o->backend, o->device, o->threads);
	} else {
		u->modal = M_NOMODEL;
		/* Ask the hub what the download would be, so the offer can name its size. */
		start_offer(u, DEFAULT_MODEL);
	}

	/* Library chatter from here on goes to the log, never to the screen. */
	int saved_err = dup(2);
	if (o->log_fd >= 0)
		dup2(o->log_fd, 2);

	set_escdelay(25);
	initscr();
	raw();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	mousemask(BUTTON1_CLICKED | BUTTON1_DOUBLE_CLICKED | BUTTON4_PRESSED
#ifdef BUTTON5_PRESSED
	          | BUTTON5_PRESSED
#endif
	          , NULL);
	mouseinterval(300);
	char terr[512];
	char themedirs[3][1200];
	const char *tdl[3];
	for (int i = 0; i < u->n_asset_dirs; i++) {
		snprintf(themedirs[i], sizeof themedirs[i], "%s/themes", u->asset_dirs[i]);
		tdl[i] = themedirs[i];
	}
	/* From now on theme lookups use the themes/ directories. */
	for (int i = 0; i < u->n_asset_dirs; i++) {
		str_copy_utf8(u->asset_dirs[i], sizeof u->asset_dirs[i], themedirs[i]);
		u->asset_dir_list[i] = u->asset_dirs[i];
	}
	(void)tdl;
	if (theme_load(o->settings.theme, u->asset_dir_list, u->n_asset_dirs, terr, sizeof terr))
		message(u, 1, "%s", terr);
	history_refresh(u);
	player_snapshot(u->player, &u->ps);
	if (!u->msg[0]) {
		if (!u->ps.has_device)
			message(u, 0, "audio: %s; everything else works", u->ps.device);
		else
			message(u, 0, "ready: type a prompt, F5 generates, F1 help");
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_terminate;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	while (!u->quit && !terminate_requested) {
		jobs_snapshot(u->jobs, &u->js);
		player_snapshot(u->player, &u->ps);
		fetch_snapshot(u->fetch, &u->fs);
		if (u->fs.state == FETCH_DONE && !u->dl_loaded) {
			/* The download is complete: load it by its hub id and go to the main screen. */
			u->dl_loaded = 1;
			str_copy_utf8(o->model, sizeof o->model, u->fs.repo);
			jobs_load_model(u->jobs, o->model, o->backend, o->device, o->threads);
			message(u, 0, "%s downloaded; loading it ...", u->fs.repo);
			if (u->modal == M_NOMODEL || u->modal == M_DOWNLOAD)
				u->modal = M_NONE;
			jobs_snapshot(u->jobs, &u->js);
		}
		draw(u);
		struct pollfd pf[2] = {{.fd = 0, .events = POLLIN}, {.fd = jobs_wake_fd(u->jobs), .events = POLLIN}};
		int fetching = u->fs.state == FETCH_PLANNING || u->fs.state == FETCH_RUNNING;
		int timeout = u->js.busy || u->ps.playing || u->js.model_state == JOBS_MODEL_LOADING || fetching ? 100 : 1000;
		int pr = poll(pf, 2, timeout);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr > 0 && (pf[1].revents & POLLIN)) {
			jobs_drain_wake(u->jobs);
			jobs_snapshot(u->jobs, &u->js);
			struct job_event ev;
			while (jobs_next_event(u->jobs, &ev))
				handle_event(u, &ev);
		}
		if (pr > 0 && (pf[0].revents & (POLLHUP | POLLERR)))
			break;
		jobs_snapshot(u->jobs, &u->js);
		player_snapshot(u->player, &u->ps);
		read_keys(u);
		/* Another instance may have added or changed takes. */
		if (!u->quit && history_changed(u->hist))
			history_refresh(u);
	}

	endwin();
	if (saved_err >= 0) {
		dup2(saved_err, 2);
		close(saved_err);
	}
	save_state(u);
	fetch_destroy(u->fetch);
	free(u->models);
	player_close(u->player);
	jobs_stop(u->jobs);
	history_close(u->hist);
	free(u->takes);
	free(u->presets);
	return 0;
}
