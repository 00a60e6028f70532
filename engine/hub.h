/* hub.h - where models live: a model directory, or a hub id ORG/NAME found in
 * the local Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else
 * ~/.cache/huggingface/hub; models--ORG--NAME/refs/main -> snapshots/REV/). */
#ifndef MG_HUB_H
#define MG_HUB_H

#include <stddef.h>

/* The hub cache directory (not necessarily existing): $HF_HUB_CACHE, else
 * $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
 * else $HOME/.cache/huggingface/hub - huggingface_hub's own order. */
int mg_hub_cache_dir(char *out, size_t outlen);

/* "ORG/NAME" -> "<cache>/models--ORG--NAME". */
int mg_hub_repo_dir(const char *repo_id, char *out, size_t outlen);

/* Resolves path_or_id to a model directory. A path that exists is used as it
 * is (a file such as spiece.model is accepted when allow_file is set). A hub
 * id is looked up in the cache: refs/main -> snapshots/<commit>; without
 * refs/main, the only snapshot when there is exactly one.
 * id/rev (either may be NULL) receive the hub id and commit, or the directory
 * name and "" for a plain directory. Errors name what was tried. */
int mg_resolve_model(const char *path_or_id, int allow_file,
                     char *dir, size_t dirlen, char *id, size_t idlen,
                     char *rev, size_t revlen, char *err, size_t errlen);

/* Non-zero when s looks like a hub id (ORG/NAME, no leading '/' or '.',
 * exactly one '/', characters [A-Za-z0-9._-]). */
int mg_is_hub_id(const char *s);

#endif
