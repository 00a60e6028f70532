/* cmd_download.c - `musicgen-tui download REPO [--revision REV]`: fetches a
 * model from the Hugging Face hub into the shared hub cache (app/download.c),
 * with a progress bar on a terminal and a summary line otherwise. */
#include "autoconfig.h"

#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/commands.h"
#include "app/download.h"
#include "app/models.h"
#include "app/util.h"
#include "engine/hub.h"

static atomic_int interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	atomic_store(&interrupted, 1);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: musicgen-tui download REPO [--revision REV] [--dry-run] [--quiet]\n"
	        "Fetches the files of a MusicGen model (ORG/NAME, e.g. facebook/musicgen-small)\n"
	        "that the engine needs into the Hugging Face cache shared with the Python tools.\n"
	        "  --revision REV   branch, tag or commit (default main)\n"
	        "  --dry-run        list the files and sizes, fetch nothing\n"
	        "  --quiet          no progress display\n"
	        "Environment: HF_ENDPOINT, HF_TOKEN (or the token file under HF_HOME),\n"
	        "HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE=1 (refuse the network),\n"
	        "HF_HUB_DOWNLOAD_TIMEOUT (seconds a connection may stall, default 20).\n"
	        "Ctrl-C stops; partial files are kept and the next run resumes them.\n");
}

struct bar {
	int tty;
	int width;
	int drawn;
};

static void draw_bar(const struct dl_progress *p, void *user)
{
	struct bar *b = user;
	if (!b->tty)
		return;
	char done[32], total[32], rate[32], eta[32] = "--:--";
	bytes_human((double)p->done, done, sizeof done);
	bytes_human((double)p->total, total, sizeof total);
	bytes_human(p->rate, rate, sizeof rate);
	if (p->eta >= 0 && p->eta < 360000) {
		long s = (long)(p->eta + 0.5);
		if (s >= 3600)
			snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
		else
			snprintf(eta, sizeof eta, "%ld:%02ld", s / 60, s % 60);
	}
	double frac = p->total ? (double)p->done / (double)p->total : 1.0;
	if (frac > 1)
		frac = 1;
	/* The numbers first; the bar takes what is left of the line, the file
	 * name goes when the line is too narrow for both. */
	char text[160], line[512], bar[64];
	snprintf(text, sizeof text, " %3.0f%%  %s / %s  %s/s  ETA %s", frac * 100, done, total, rate, eta);
	const char *file = p->file && *p->file ? p->file : "";
	int room = b->width - 1 - (int)strlen(text) - 2;
	if (room - (int)strlen(file) - 3 >= 10)
		room -= (int)strlen(file) + 2;
	else
		file = "";
	if (room > 40)
		room = 40;
	if (room < 10)
		room = 10;
	int fill = (int)(frac * room + 0.5);
	for (int i = 0; i < room; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[room] = 0;
	snprintf(line, sizeof line, "[%s]%s%s%s%s", bar, text, *file ? "  " : "",
	         p->verifying && *file ? "checking " : "", file);
	if ((int)strlen(line) > b->width - 1)
		line[b->width > 1 ? b->width - 1 : 0] = 0;
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	b->drawn = 1;
}

static void end_bar(struct bar *b)
{
	if (b->drawn)
		fprintf(stderr, "\r\033[K");
	b->drawn = 0;
}

static int offline_answer(const char *repo, const char *revision)
{
	struct model_entry m;
	char err[1024];
	if (models_find(repo, revision, &m, err, sizeof err) == 0 && m.complete) {
		fprintf(stderr, "musicgen-tui download: HF_HUB_OFFLINE is set; %s (%s) is already in the cache\n",
		        repo, m.commit);
		printf("%s\n", m.path);
		return 0;
	}
	fprintf(stderr, "musicgen-tui download: HF_HUB_OFFLINE is set: not contacting the hub, and %s%s%s "
	        "is not complete in the cache\n", repo, revision ? "@" : "", revision ? revision : "");
	return 1;
}

int cmd_download(int argc, char **argv)
{
	const char *repo = NULL, *revision = NULL;
	int dry = 0, quiet = 0;
	for (int i = 1; i < argc; i++) {
		if (cli_help_or_version(argv[i], usage)) {
			return 0;
		} else if (!strcmp(argv[i], "--revision") || !strcmp(argv[i], "-r")) {
			if (++i >= argc) {
				fprintf(stderr, "musicgen-tui download: --revision expects a value\n");
				return 2;
			}
			revision = argv[i];
		} else if (!strncmp(argv[i], "--revision=", 11)) {
			revision = argv[i] + 11;
		} else if (!strcmp(argv[i], "--dry-run")) {
			dry = 1;
		} else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
			quiet = 1;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "musicgen-tui download: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (repo) {
			fprintf(stderr, "musicgen-tui download: one repository at a time ('%s' and '%s')\n", repo, argv[i]);
			return 2;
		} else {
			repo = argv[i];
		}
	}
	if (!repo) {
		usage(stderr);
		return 2;
	}
	if (!mg_is_hub_id(repo)) {
		fprintf(stderr, "musicgen-tui download: '%s' is not a hub id (expected ORG/NAME, e.g. facebook/musicgen-small)\n", repo);
		return 2;
	}
	if (dl_offline())
		return offline_answer(repo, revision);

	char err[2048], snap[PATH_MAX], a[32], b[32];
	struct dl_plan plan;
	int st = dl_plan_fetch(repo, revision, &plan, err, sizeof err);
	if (st != DL_OK) {
		dl_plan_free(&plan);
		fprintf(stderr, "musicgen-tui download: %s\n", err);
		struct model_entry m;
		if (st == DL_ERR_NETWORK && models_find(repo, revision, &m, err, sizeof err) == 0 && m.complete)
			fprintf(stderr, "musicgen-tui download: %s is complete in the cache (%s); it can be used "
			        "without the network\n", repo, m.path);
		return st == DL_ERR_USAGE ? 2 : 1;
	}
	bytes_human((double)plan.total_bytes, a, sizeof a);
	bytes_human((double)plan.missing_bytes, b, sizeof b);
	if (dry) {
		printf("%s@%s commit %s: %d files, %s, %s to fetch\n", plan.repo, plan.revision, plan.commit,
		       plan.nfiles, a, b);
		for (int i = 0; i < plan.nfiles; i++) {
			char s[32];
			bytes_human((double)plan.files[i].size, s, sizeof s);
			printf("  %-34s %10s  %s\n", plan.files[i].name, s,
			       plan.files[i].have == plan.files[i].size ? "cached" :
			       plan.files[i].have ? "partial" : "missing");
		}
		dl_plan_free(&plan);
		return 0;
	}
	if (!quiet)
		fprintf(stderr, "%s@%s (commit %.12s): %d files, %s, %s to fetch\n", plan.repo, plan.revision,
		        plan.commit, plan.nfiles, a, b);

	struct sigaction sa, old_int, old_term;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	/* Past a file-size limit, write() then fails with EFBIG and is reported. */
	signal(SIGXFSZ, SIG_IGN);

	struct bar bar = {.tty = !quiet && isatty(STDERR_FILENO), .width = 100};
	struct winsize ws;
	const char *cols = getenv("COLUMNS");
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		bar.width = ws.ws_col;
	else if (cols && atoi(cols) >= 20)
		bar.width = atoi(cols);
	uint64_t before = plan.missing_bytes;
	double t0 = mono_seconds();
	st = dl_plan_run(&plan, draw_bar, &bar, &interrupted, snap, sizeof snap, err, sizeof err);
	double secs = mono_seconds() - t0;
	end_bar(&bar);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);

	if (st != DL_OK) {
		fprintf(stderr, "musicgen-tui download: %s\n", err);
		if (st == DL_ERR_CANCELLED)
			fprintf(stderr, "musicgen-tui download: interrupted; partial files are kept as "
			        "blobs/*.incomplete and the next run resumes them\n");
		dl_plan_free(&plan);
		return 1;
	}
	char r[32];
	bytes_human(secs > 0 ? (double)before / secs : 0, r, sizeof r);
	bytes_human((double)before, b, sizeof b);
	if (!quiet && before == 0)
		fprintf(stderr, "%s@%s: already complete in the cache (commit %s)\n", plan.repo, plan.revision,
		        plan.commit);
	else if (!quiet)
		fprintf(stderr, "%s@%s: %d files, %s fetched in %.1f s (%s/s), commit %s\n", plan.repo,
		        plan.revision, plan.nfiles, b, secs, r, plan.commit);
	printf("%s\n", snap);
	dl_plan_free(&plan);
	return 0;
}
