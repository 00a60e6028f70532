/* test_download_api.c - download.h as the TUI uses it, run by
 * test_download.sh against its loopback hub (HF_ENDPOINT, HF_HUB_CACHE set):
 *   test_download_api REPO EXPECTED_FILES EXPECTED_TOTAL_BYTES
 * The plan is fetched and checked; a run is cancelled from the progress
 * callback once data flows (as the TUI's cancel key would), which must leave
 * only partial data and no refs; a second run completes, its progress
 * monotonic and ending at the total. Prints what it checks; exit 0 when all
 * holds. */
#include "autoconfig.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/download.h"
#include "app/models.h"

static int failures;

static void expect(int cond, const char *what)
{
	printf("%s: %s\n", cond ? "ok" : "FAILED", what);
	failures += !cond;
}

struct watch {
	atomic_int cancel;
	int cancel_after_data;   /* set cancel once a file is partly fetched */
	int calls, monotonic, total_constant;
	uint64_t last_done, total;
	double last_rate;
};

static void on_progress(const struct dl_progress *p, void *user)
{
	struct watch *w = user;
	if (w->calls++ == 0)
		w->total = p->total;
	if (p->done < w->last_done)
		w->monotonic = 0;
	if (p->total != w->total)
		w->total_constant = 0;
	w->last_done = p->done;
	w->last_rate = p->rate;
	if (w->cancel_after_data && p->file && !strcmp(p->file, "model.safetensors") && p->done > 0 &&
	    p->done < p->total)
		atomic_store(&w->cancel, 1);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: test_download_api REPO EXPECTED_FILES EXPECTED_TOTAL_BYTES\n");
		return 2;
	}
	const char *repo = argv[1];
	int nfiles = atoi(argv[2]);
	unsigned long long total = strtoull(argv[3], NULL, 10);
	char err[2048], snap[PATH_MAX];

	struct dl_plan plan;
	int st = dl_plan_fetch(repo, NULL, &plan, err, sizeof err);
	expect(st == DL_OK, st == DL_OK ? "dl_plan_fetch" : err);
	if (st != DL_OK)
		return 1;
	expect(plan.nfiles == nfiles, "the plan lists the expected number of files");
	expect(plan.total_bytes == total, "the plan's total is the sum of the file sizes");
	expect(plan.missing_bytes == total, "with an empty cache everything is missing");
	expect(strlen(plan.commit) == 40, "the plan has a 40-hex commit");
	expect(!strcmp(plan.revision, "main"), "the revision defaults to main");
	int sorted = 1;
	for (int i = 1; i < plan.nfiles; i++)
		sorted &= plan.files[i - 1].size <= plan.files[i].size;
	expect(sorted, "files come smallest first");

	struct watch w = {.cancel_after_data = 1, .monotonic = 1, .total_constant = 1};
	st = dl_plan_run(&plan, on_progress, &w, &w.cancel, snap, sizeof snap, err, sizeof err);
	expect(st == DL_ERR_CANCELLED, "a run cancelled from the progress callback returns DL_ERR_CANCELLED");
	printf("  (%s: %s)\n", dl_status_name(st), err);
	char ref[PATH_MAX + 16];
	struct stat sb;
	snprintf(ref, sizeof ref, "%s/refs/main", plan.repo_dir);
	expect(stat(ref, &sb) != 0, "a cancelled run writes no refs/main");
	struct model_entry m;
	expect(models_find(repo, NULL, &m, err, sizeof err) != 0, "so the model does not resolve yet");
	dl_plan_free(&plan);

	st = dl_plan_fetch(repo, "main", &plan, err, sizeof err);
	expect(st == DL_OK && plan.missing_bytes < total && plan.missing_bytes > 0,
	       "a new plan counts the finished files and the partial one as present");
	struct watch w2 = {.monotonic = 1, .total_constant = 1};
	st = dl_plan_run(&plan, on_progress, &w2, &w2.cancel, snap, sizeof snap, err, sizeof err);
	expect(st == DL_OK, st == DL_OK ? "the second run completes" : err);
	expect(w2.calls > 0 && w2.monotonic && w2.total_constant, "progress: done never goes back, total fixed");
	expect(w2.last_done == total && w2.total == total, "progress ends at the total");
	int all = 1;
	for (int i = 0; i < plan.nfiles; i++)
		all &= plan.files[i].have == plan.files[i].size;
	expect(all, "every file of the plan is marked present");
	expect(models_find(repo, NULL, &m, err, sizeof err) == 0 && m.complete && !strcmp(m.path, snap),
	       "models_find resolves the model to the snapshot the run returned, complete");
	dl_plan_free(&plan);

	expect(dl_download("not a repo", NULL, NULL, NULL, NULL, NULL, 0, err, sizeof err) == DL_ERR_USAGE,
	       "a malformed repository id is a usage error");
	expect(dl_download(repo, "../x", NULL, NULL, NULL, NULL, 0, err, sizeof err) == DL_ERR_USAGE,
	       "a revision with '..' is refused");
	return failures ? 1 : 0;
}
