/* pool.h - a fixed set of worker threads for data-parallel loops. Workers are
 * created once (at model load) and sleep between jobs, so the decode loop
 * never creates threads. */
#ifndef MG_POOL_H
#define MG_POOL_H

typedef struct mg_pool mg_pool;

/* fn(arg, ith, nth) is called once per slice ith in [0, nth). */
typedef void (*mg_pool_fn)(void *arg, int ith, int nth);

/* n_threads <= 0: one per online core. NULL on failure. */
mg_pool *mg_pool_new(int n_threads);
void mg_pool_free(mg_pool *p);
int mg_pool_size(const mg_pool *p);
/* Runs fn(arg, ith, nth) once for every ith in [0, nth), nth =
 * mg_pool_size(p), and returns when all are done. The slices are handed to
 * the threads as they come (the caller included), so one thread may run
 * several of them when another is late: use ith to split the work and to
 * index per-slice scratch, never as a thread identity. p may be NULL:
 * fn(arg, 0, 1). */
void mg_pool_run(mg_pool *p, mg_pool_fn fn, void *arg);

/* fn(arg, begin, end) over [0, n) in chunks of `chunk` items, handed out
 * to the threads as they come (the caller included); returns when all are
 * done. Which thread runs a chunk varies from call to call, so fn's result
 * for an item must not depend on it. p may be NULL: fn(arg, 0, n). */
typedef void (*mg_pool_range_fn)(void *arg, int begin, int end);
void mg_pool_for(mg_pool *p, int n, int chunk, mg_pool_range_fn fn, void *arg);

/* [begin, end) of n items for thread ith of nth, in chunks of `align`. */
void mg_pool_range(int n, int ith, int nth, int align, int *begin, int *end);

#endif
