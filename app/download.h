/* download.h - fetching a model repository from the Hugging Face hub into the
 * local hub cache, in huggingface_hub's own layout, so that a model fetched
 * here or by the Python tools serves both:
 *
 *   <cache>/models--ORG--NAME/blobs/ETAG              file contents
 *   <cache>/models--ORG--NAME/blobs/ETAG.incomplete   partial data, resumed later
 *   <cache>/models--ORG--NAME/snapshots/COMMIT/FILE   -> ../../blobs/ETAG
 *   <cache>/models--ORG--NAME/refs/REV                holds COMMIT
 *
 * (<cache> as in engine/hub.h.) The endpoint is $HF_ENDPOINT (default
 * https://huggingface.co); the token $HF_TOKEN, else the token file
 * ($HF_TOKEN_PATH, else $HF_HOME/token, else ~/.cache/huggingface/token), sent
 * as "Authorization: Bearer"; HF_HUB_OFFLINE=1 refuses the network;
 * HF_HUB_DOWNLOAD_TIMEOUT (seconds, default 20) bounds a connect or a stall.
 *
 * Only the files the engine reads are fetched (configs, safetensors weights and
 * their index, the SentencePiece model, tokenizer and preprocessor configs).
 * A blob enters the cache only after its size and, for LFS files, its SHA-256
 * (for plain git files, their git blob id) match; refs/REV is written last,
 * once every file of the snapshot is in place.
 *
 * Threading: every call is blocking and may run on any thread; the progress
 * callback runs on the calling thread. Setting *cancel to non-zero (from
 * another thread or a signal handler) stops the transfer within about a
 * second; partial data then stays in blobs/ETAG.incomplete for a later resume.
 */
#ifndef MG_DOWNLOAD_H
#define MG_DOWNLOAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum dl_status {
	DL_OK = 0,
	DL_ERR_USAGE,      /* not a hub id, or an unusable revision */
	DL_ERR_OFFLINE,    /* HF_HUB_OFFLINE is set */
	DL_ERR_NOT_FOUND,  /* 404: repository, revision or file */
	DL_ERR_AUTH,       /* 401 / 403: token missing, refused, or gated repository */
	DL_ERR_NETWORK,    /* cannot connect, connection dropped, timed out */
	DL_ERR_SERVER,     /* an unexpected status or an answer that makes no sense */
	DL_ERR_DISK,       /* cannot write the cache: disk full, permissions */
	DL_ERR_CHECKSUM,   /* size or hash mismatch: the data was discarded */
	DL_ERR_NO_WEIGHTS, /* the repository has no config.json or no safetensors weights */
	DL_ERR_CANCELLED,  /* *cancel was set */
	DL_ERR_BUSY,       /* another process is writing the same blob */
};

/* One file of the repository that the engine needs. */
struct dl_file {
	char name[256];      /* path inside the repository, e.g. "model.safetensors" */
	uint64_t size;       /* bytes, from the hub's file list (0 when it gave none) */
	int size_known;      /* the file list gave the size */
	char sha256[65];     /* LFS files: the content's SHA-256; "" for plain git files */
	char blob_id[65];    /* the git blob id when the hub gave one, else "" */
	uint64_t have;       /* bytes already in the cache (size when complete) */
};

/* What a download of REPO at REVISION involves, before anything is fetched. */
struct dl_plan {
	char repo[128];            /* ORG/NAME */
	char revision[128];        /* as asked, e.g. "main" */
	char commit[65];           /* what it resolved to */
	char repo_dir[4096];       /* <cache>/models--ORG--NAME */
	struct dl_file *files;     /* sorted, smallest first */
	int nfiles;
	uint64_t total_bytes;      /* all files */
	uint64_t missing_bytes;    /* still to be fetched (total minus what the cache has) */
};

struct dl_progress {
	const char *file;          /* the file being fetched ("" once all are done) */
	int file_index, nfiles;    /* its 0-based index in plan->files, and plan->nfiles */
	uint64_t done, total;      /* bytes over all the plan's files; what the cache already
	                              holds (whole files, resumed parts) counts as done */
	double rate;               /* bytes per second, smoothed; 0 until known */
	double eta;                /* seconds left, or -1 when unknown */
	int verifying;             /* 1 while hashing data already on disk */
};

typedef void (*dl_progress_fn)(const struct dl_progress *p, void *user);

/* Asks the hub for REPO's file list at REVISION (NULL: "main") and fills plan,
 * counting what the cache already holds. Returns a dl_status; err names the
 * repository, revision, file or URL at fault and, for 401/403, how to give a
 * token. Free the plan with dl_plan_free (also after an error). */
int dl_plan_fetch(const char *repo, const char *revision, struct dl_plan *plan,
                  char *err, size_t errlen);

/* Fetches what the plan lacks and completes the snapshot; snapshot (may be
 * NULL) receives its directory. progress and cancel may be NULL. */
int dl_plan_run(struct dl_plan *plan, dl_progress_fn progress, void *user,
                const atomic_int *cancel, char *snapshot, size_t snaplen,
                char *err, size_t errlen);

void dl_plan_free(struct dl_plan *plan);

/* dl_plan_fetch + dl_plan_run. */
int dl_download(const char *repo, const char *revision, dl_progress_fn progress, void *user,
                const atomic_int *cancel, char *snapshot, size_t snaplen,
                char *err, size_t errlen);

/* Non-zero when HF_HUB_OFFLINE is set to 1/true/yes/on. */
int dl_offline(void);

/* A short name for a dl_status ("not found", "checksum mismatch", ...). */
const char *dl_status_name(int status);

/* Whether the engine needs a repository file of this name. */
int dl_wanted_file(const char *name);

#endif
