/* cmd_history.c - `musicgen-tui history`: lists the saved takes, as a table
 * or as JSON, without the screen. */
#include "autoconfig.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/cli.h"
#include "app/commands.h"
#include "app/history.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: musicgen-tui history [--json] [--filter TEXT] [--favourites] [--limit N]\n"
	           "\nLists the takes in the history, newest first.\n"
	           "  --json          one JSON array of objects (id, prompt, duration, guidance,\n"
	           "                  temperature, top_k, top_p, seed, model, created, file, ...)\n"
	           "  --filter TEXT   only takes whose prompt, name or note contains TEXT\n"
	           "  --favourites    only takes marked as favourite\n"
	           "  --limit N       at most N takes\n");
}

static json_t *take_json(const struct history_take *t)
{
	char created[32];
	time_t c = (time_t)t->created;
	struct tm tm;
	gmtime_r(&c, &tm);
	strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(t->id));
	json_object_set_new(o, "prompt", json_string(t->prompt));
	json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "note", json_string(t->note));
	json_object_set_new(o, "favourite", json_boolean(t->favourite));
	json_object_set_new(o, "duration", json_real((double)t->n_samples / (t->sample_rate > 0 ? t->sample_rate : 1)));
	json_object_set_new(o, "requested_duration", json_real(t->duration));
	json_object_set_new(o, "frames", json_integer(t->frames));
	json_object_set_new(o, "guidance", json_real(t->guidance));
	json_object_set_new(o, "temperature", json_real(t->temperature));
	json_object_set_new(o, "top_k", json_integer(t->top_k));
	json_object_set_new(o, "top_p", json_real(t->top_p));
	/* JSON integers are signed 64-bit here; larger seeds travel as strings. */
	if (t->seed <= (uint64_t)INT64_MAX)
		json_object_set_new(o, "seed", json_integer((json_int_t)t->seed));
	else {
		char s[32];
		snprintf(s, sizeof s, "%llu", (unsigned long long)t->seed);
		json_object_set_new(o, "seed", json_string(s));
	}
	json_object_set_new(o, "greedy", json_boolean(t->greedy));
	json_object_set_new(o, "take_index", json_integer(t->take_index));
	json_object_set_new(o, "take_count", json_integer(t->take_count));
	json_object_set_new(o, "model", json_string(t->model));
	json_object_set_new(o, "model_revision", json_string(t->model_rev));
	json_object_set_new(o, "backend", json_string(t->backend));
	json_object_set_new(o, "sample_rate", json_integer(t->sample_rate));
	json_object_set_new(o, "channels", json_integer(t->channels));
	json_object_set_new(o, "samples", json_integer(t->n_samples));
	json_object_set_new(o, "codebooks", json_integer(t->n_codebooks));
	json_object_set_new(o, "t5_seconds", json_real(t->t5_seconds));
	json_object_set_new(o, "decode_seconds", json_real(t->decode_seconds));
	json_object_set_new(o, "encodec_seconds", json_real(t->encodec_seconds));
	json_object_set_new(o, "total_seconds", json_real(t->total_seconds));
	json_object_set_new(o, "created", json_string(created));
	json_object_set_new(o, "created_unix", json_integer(t->created));
	json_object_set_new(o, "file", json_string(t->file));
	return o;
}

int cmd_history(int argc, char **argv)
{
	int json = 0, favs = 0;
	long limit = -1;
	const char *filter = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--favourites") || !strcmp(argv[i], "--favorites"))
			favs = 1;
		else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
			filter = argv[++i];
		else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
			if (cli_int("history", "--limit", argv[++i], 0, 1000000000, &limit))
				return 2;
		} else if (cli_help_or_version(argv[i], usage)) {
			return 0;
		} else {
			fprintf(stderr, "musicgen-tui history: unknown or incomplete option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	char err[1024];
	history *h;
	if (history_open(&h, NULL, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui history: %s\n", err);
		return 1;
	}
	struct history_take *v;
	int n;
	if (history_list(h, filter, favs, &v, &n, err, sizeof err)) {
		fprintf(stderr, "musicgen-tui history: %s\n", err);
		history_close(h);
		return 1;
	}
	if (limit >= 0 && n > limit)
		n = (int)limit;
	if (json) {
		json_t *a = json_array();
		for (int i = 0; i < n; i++)
			json_array_append_new(a, take_json(&v[i]));
		char *s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
		printf("%s\n", s ? s : "[]");
		free(s);
		json_decref(a);
	} else if (n == 0) {
		printf("No takes yet (%s/history.db).\n", history_dir(h));
	} else {
		printf("%6s  %-19s  %7s  %5s  %5s  %5s  %5s  %-12s  %s\n", "ID", "CREATED", "LENGTH", "GUID", "TEMP",
		       "TOP-K", "TOP-P", "SEED", "PROMPT");
		for (int i = 0; i < n; i++) {
			char created[32];
			time_t c = (time_t)v[i].created;
			struct tm tm;
			localtime_r(&c, &tm);
			strftime(created, sizeof created, "%Y-%m-%d %H:%M:%S", &tm);
			double len = (double)v[i].n_samples / (v[i].sample_rate > 0 ? v[i].sample_rate : 1);
			printf("%6lld  %-19s  %6.2fs  %5.2g  %5.2g  %5d  %5.2g  %-12llu  %s%s%s\n", (long long)v[i].id,
			       created, len, v[i].guidance, v[i].temperature, v[i].top_k, v[i].top_p,
			       (unsigned long long)v[i].seed, v[i].favourite ? "* " : "", v[i].prompt[0] ? v[i].prompt : "(unconditional)",
			       "");
		}
	}
	free(v);
	history_close(h);
	return 0;
}
