/* cmd_tui.c - the interactive screen's command line: options that preset the
 * compose knobs, the settings and remembered state, the choice of model
 * (--model, else the settings, else the local Hugging Face cache), and the
 * log file that receives library messages while curses owns the terminal. */
#include "autoconfig.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/commands.h"
#include "app/settings.h"
#include "app/xdg.h"
#include "engine/hub.h"
#include "engine/mg.h"
#include "ui/tui.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: musicgen-tui [OPTIONS]\n"
	           "\nThe interactive screen. The options preset the compose knobs:\n"
	           "  --model PATH|ORG/NAME  model directory or hub id in the local cache\n"
	           "  --duration S           seconds of audio (default 10)\n"
	           "  --guidance G           classifier-free guidance scale (default 3)\n"
	           "  --temperature T        sampling temperature (default 1)\n"
	           "  --top-k K              top-k sampling, 0 = off (default 250)\n"
	           "  --top-p P              nucleus sampling in (0, 1], 1 = off (default 1)\n"
	           "  --seed S               fixed seed (default: a random one per take)\n"
	           "  --backend B            cpu, opencl or auto\n"
	           "  --device N             OpenCL device number ('musicgen-tui devices')\n"
	           "  --threads N            CPU threads (0 = all cores)\n"
	           "\nPress F1 on the screen for the keys; 'man musicgen-tui' has the rest.\n");
}

/* Finds a MusicGen model in the local cache: facebook/musicgen-small first,
 * then any models--*--musicgen* directory. Appends what it tried to search. */
static int find_cached_model(char *out, size_t outlen, char *search, size_t searchlen)
{
	char dir[2048], id[256], rev[128], err[1024], cache[1024];
	if (mg_resolve_model("facebook/musicgen-small", 0, dir, sizeof dir, id, sizeof id, rev, sizeof rev, err,
	                     sizeof err) == 0) {
		snprintf(out, outlen, "facebook/musicgen-small");
		return 0;
	}
	if (mg_hub_cache_dir(cache, sizeof cache) != 0)
		snprintf(cache, sizeof cache, "(no cache directory: $HOME is not set)");
	size_t used = strlen(search);
	snprintf(search + used, searchlen - used,
	         "--model PATH on the command line\n'model = ...' in the settings file\n"
	         "%s/models--facebook--musicgen-small\n%s/models--*--musicgen*\n"
	         "(the cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)\n",
	         cache, cache);
	DIR *d = opendir(cache);
	if (!d)
		return -1;
	struct dirent *e;
	int found = -1;
	while ((e = readdir(d)) && found != 0) {
		if (strncmp(e->d_name, "models--", 8) != 0 || !strstr(e->d_name, "musicgen"))
			continue;
		/* models--ORG--NAME -> ORG/NAME */
		char name[256];
		snprintf(name, sizeof name, "%s", e->d_name + 8);
		char *sep = strstr(name, "--");
		if (!sep)
			continue;
		*sep = '/';
		memmove(sep + 1, sep + 2, strlen(sep + 2) + 1);
		if (mg_resolve_model(name, 0, dir, sizeof dir, id, sizeof id, rev, sizeof rev, err, sizeof err) == 0) {
			snprintf(out, outlen, "%s", name);
			found = 0;
		}
	}
	closedir(d);
	return found;
}

int cmd_tui(int argc, char **argv)
{
	static struct tui_options o; /* large; one per process */
	char err[1024];
	memset(&o, 0, sizeof o);
	settings_default(&o.settings);
	knobs_default(&o.compose.knobs);
	o.log_fd = -1;

	if (settings_path(o.settings_path, sizeof o.settings_path, err, sizeof err) ||
	    settings_load(&o.settings, o.settings_path, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui: %s\n", err);
		return 1;
	}
	if (state_path(o.state_path, sizeof o.state_path, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui: %s\n", err);
		return 1;
	}
	if (state_load(&o.compose, o.state_path, err, sizeof err)) {
		/* A damaged state file only costs the last prompt. */
		fprintf(stderr, "musicgen-tui: ignoring %s\n", err);
		memset(&o.compose, 0, sizeof o.compose);
		knobs_default(&o.compose.knobs);
	}

	const char *model = NULL;
	int backend = -1;
	long threads = -1, device = -2;
	struct knobs *k = &o.compose.knobs;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc || a[0] != '-') {
			fprintf(stderr, "musicgen-tui: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return 2;
		}
		const char *v = argv[++i];
		double d;
		long l;
		uint64_t u;
		if (!strcmp(a, "--model")) {
			model = v;
		} else if (!strcmp(a, "--backend")) {
			if (cli_backend("tui", v, &backend))
				return 2;
		} else if (!strcmp(a, "--device")) {
			if (cli_int("tui", a, v, 0, 255, &device))
				return 2;
		} else if (!strcmp(a, "--threads")) {
			if (cli_int("tui", a, v, 0, 1024, &threads))
				return 2;
		} else if (!strcmp(a, "--seed")) {
			if (cli_u64("tui", a, v, &u))
				return 2;
			k->seed = u;
			k->seed_random = 0;
		} else if (!strcmp(a, "--top-k")) {
			if (cli_int("tui", a, v, 0, 1000000, &l))
				return 2;
			k->top_k = (int)l;
		} else if (!strcmp(a, "--duration") || !strcmp(a, "--guidance") || !strcmp(a, "--temperature") ||
		           !strcmp(a, "--top-p")) {
			const char *key = !strcmp(a, "--duration")      ? "duration"
			                  : !strcmp(a, "--guidance")    ? "guidance"
			                  : !strcmp(a, "--temperature") ? "temperature"
			                                                : "top_p";
			if (cli_float("tui", a, v, &d))
				return 2;
			if (knobs_check_value(key, d, err, sizeof err)) {
				fprintf(stderr, "musicgen-tui: %s: %s, got '%s'\n", a, err, v);
				return 2;
			}
			if (!strcmp(key, "duration"))
				k->duration = d;
			else if (!strcmp(key, "guidance"))
				k->guidance = d;
			else if (!strcmp(key, "temperature"))
				k->temperature = d;
			else
				k->top_p = d;
		} else {
			fprintf(stderr, "musicgen-tui: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}

	if (backend < 0)
		backend = !strcmp(o.settings.backend, "cpu")      ? MG_BACKEND_CPU
		          : !strcmp(o.settings.backend, "opencl") ? MG_BACKEND_OPENCL
		                                                  : MG_BACKEND_AUTO;
	o.backend = backend;
	o.threads = threads >= 0 ? (int)threads : o.settings.threads;
	o.device = device >= 0 ? (int)device : o.settings.device;
	if (model)
		snprintf(o.model, sizeof o.model, "%s", model);
	else if (o.settings.model[0])
		snprintf(o.model, sizeof o.model, "%s", o.settings.model);
	else if (find_cached_model(o.model, sizeof o.model, o.model_search, sizeof o.model_search))
		o.model[0] = '\0';

	if (!isatty(0) || !isatty(1)) {
		fprintf(stderr, "musicgen-tui: the interactive screen needs a terminal; "
		                "use 'musicgen-tui generate' in scripts\n");
		return 2;
	}
	/* PortAudio, ALSA and JACK write to stderr; while curses runs that goes here. */
	char logdir[1024], logpath[1100];
	if (xdg_app_dir_make(XDG_STATE, logdir, sizeof logdir, err, sizeof err) == 0) {
		snprintf(logpath, sizeof logpath, "%s/log", logdir);
		o.log_fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	}
	int rc = tui_run(&o);
	if (o.log_fd >= 0)
		close(o.log_fd);
	return rc;
}
