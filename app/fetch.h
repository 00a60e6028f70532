/* fetch.h - a model download in the background, for the TUI: a worker thread
 * asks the hub for the repository's file list (app/download.h dl_plan_fetch),
 * waits for the user to agree, then fetches it (dl_plan_run) while the UI
 * thread only takes snapshots and redraws. Cancelling keeps the partial data
 * for a later resume, as `musicgen-tui download` does. */
#ifndef MG_FETCH_H
#define MG_FETCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct fetch fetch;

enum fetch_state {
	FETCH_IDLE,      /* nothing asked yet */
	FETCH_PLANNING,  /* asking the hub for the file list */
	FETCH_PLANNED,   /* sizes known: waiting for fetch_start */
	FETCH_RUNNING,   /* downloading */
	FETCH_DONE,      /* snapshot complete */
	FETCH_FAILED,    /* msg says why (status: enum dl_status) */
	FETCH_CANCELLED, /* the user cancelled; partial data kept */
};

struct fetch_snapshot {
	int state;
	int status;                /* enum dl_status of the last step */
	char repo[128];
	char commit[65];
	int nfiles;
	uint64_t total_bytes, missing_bytes;  /* from the plan */
	/* while running */
	char file[256];
	int file_index;
	uint64_t done, total;
	double rate, eta;          /* bytes/s (0: unknown), seconds (-1: unknown) */
	int verifying;
	double elapsed_s;
	char snapshot[4096];       /* FETCH_DONE: the snapshot directory */
	char msg[700];             /* FETCH_FAILED: the reason */
};

int fetch_create(fetch **out, char *err, size_t errlen);
/* Cancels what runs, waits for the worker and frees everything. */
void fetch_destroy(fetch *f);

/* Asks the hub for repo's file list at revision "main" on the worker
 * (replacing any earlier plan). Ignored while a step is running. */
void fetch_plan(fetch *f, const char *repo);
/* Downloads what the plan lacks; only in FETCH_PLANNED. */
void fetch_start(fetch *f);
/* Cancels the running step (a download stops within about a second; a file
 * list request is abandoned: its answer is ignored), or declines a plan. */
void fetch_cancel(fetch *f);
void fetch_snapshot(fetch *f, struct fetch_snapshot *s);

#endif
