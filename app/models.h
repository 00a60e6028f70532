/* models.h - the MusicGen models on this machine: snapshots in the Hugging Face
 * hub cache (engine/hub.h) and model directories given by the user; whether
 * each is complete, and re-hashing a cached snapshot against its blob names.
 * Used by `musicgen-tui models` and by the TUI's model picker. Nothing here
 * touches the network or prints. */
#ifndef MG_MODELS_H
#define MG_MODELS_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct model_entry {
	char id[256];          /* ORG/NAME for a cache entry, else the directory's name */
	char revision[128];    /* the refs naming this snapshot ("main", "main v1.0"), "" if none */
	char commit[65];       /* the snapshot's commit; "" for a plain directory */
	char path[PATH_MAX];   /* the directory to load the model from */
	char type[32];         /* config.json's model_type, "" when unreadable */
	uint64_t size;         /* bytes of the model's files (each blob counted once) */
	int in_cache;          /* 1: a hub-cache snapshot, 0: a plain directory */
	int complete;          /* config.json, weights and spiece.model present, nothing partial */
	char problem[256];     /* when not complete: what is missing */
};

/* Lists the MusicGen models (config model_type "musicgen*") in the hub cache
 * and in dirs[0..ndirs) (each a model directory, a directory of model
 * directories, or another hub cache). *out is malloc'd (free with free()),
 * sorted by id; a missing cache is not an error. Returns 0, or -1 with err. */
int models_list(const char *const *dirs, int ndirs, struct model_entry **out, int *count,
                char *err, size_t errlen);

/* The cache entry of hub id ORG/NAME at revision (NULL: "main"; a branch, tag
 * or commit) filled into *out, complete or not. Returns 0, or -1 with err. */
int models_find(const char *id, const char *revision, struct model_entry *out, char *err, size_t errlen);

/* Fills *out for a plain model directory (not necessarily complete). */
int models_check_dir(const char *dir, struct model_entry *out, char *err, size_t errlen);

/* Re-hashes every file of m: cache blobs against their names (SHA-256 for LFS
 * blobs, the git blob id for others); a plain directory has no checksums and
 * its files are reported "unchecked". cb (may be NULL) is told about each
 * file as it is done: status "ok", "MISMATCH", "missing" or "unchecked",
 * with the expected and computed hashes ("" when not applicable).
 * Returns 0 when every checksum matches and the model is complete, 1 when a
 * file is corrupt or missing, -1 on an error (err filled; cancelled too). */
typedef void (*models_verify_fn)(const char *file, const char *status, const char *expected,
                                 const char *actual, void *user);
int models_verify(const struct model_entry *m, models_verify_fn cb, void *user,
                  const atomic_int *cancel, char *err, size_t errlen);

#endif
