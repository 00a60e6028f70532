/* take_save.h - stores the takes of one mg_generate() run in the history:
 * the bridge between the engine's mg_take and the history store, shared by
 * the interactive screen's engine thread and `generate --save`. */
#ifndef MG_TAKE_SAVE_H
#define MG_TAKE_SAVE_H

#include <stddef.h>
#include <stdint.h>

#include "app/history.h"
#include "engine/mg.h"

/* Adds every take of `take` (made with params p by the model described by
 * info) to h: its prompt (p->prompts[b / p->count], "" when unconditional),
 * its own seed (take->seeds[b]), every knob, the model id and revision, the
 * backend, timings and total_seconds (wall time of the run). duration is the
 * length asked for, in seconds. The ids go to ids[0 .. *n_saved - 1] (ids may
 * be NULL; at most max_ids are written). Stops at the first error, with the
 * takes saved so far kept. */
int take_save_all(history *h, const mg_take *take, const mg_params *p, const mg_model_info *info, double duration,
                  double total_seconds, int64_t *ids, int max_ids, int *n_saved, char *err, size_t errlen);

#endif
