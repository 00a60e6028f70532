/* test_cpu_pool.c - the thread pool: every thread runs each mg_pool_run job
 * once, mg_pool_for covers every item exactly once whatever the chunking,
 * jobs of both kinds interleave, and pools with more threads than cores
 * (workers descheduled, waking late) neither lose nor repeat work. */
#include "autoconfig.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pool.h"
#include "tests/tap.h"

struct run_job {
	atomic_int calls;
	atomic_int seen[64];
	int nth;
};

static void run_fn(void *arg, int ith, int nth)
{
	struct run_job *j = arg;
	atomic_fetch_add(&j->calls, 1);
	if (ith >= 0 && ith < 64)
		atomic_fetch_add(&j->seen[ith], 1);
	j->nth = nth;
}

struct for_job {
	int n;
	atomic_int *hits;
	atomic_int bad;
};

static void for_fn(void *arg, int b, int e)
{
	struct for_job *j = arg;
	if (b < 0 || e > j->n || b >= e)
		atomic_fetch_add(&j->bad, 1);
	for (int i = b; i < e && i < j->n; i++)
		atomic_fetch_add(&j->hits[i], 1);
}

static int check_for(mg_pool *p, int n, int chunk)
{
	struct for_job j = {n, calloc((size_t)n + 1, sizeof(atomic_int)), 0};
	mg_pool_for(p, n, chunk, for_fn, &j);
	int ok = atomic_load(&j.bad) == 0;
	for (int i = 0; i < n; i++)
		ok &= atomic_load(&j.hits[i]) == 1;
	free(j.hits);
	return ok;
}

static int check_run(mg_pool *p)
{
	struct run_job j;
	memset(&j, 0, sizeof j);
	mg_pool_run(p, run_fn, &j);
	int n = mg_pool_size(p), ok = atomic_load(&j.calls) == n && j.nth == n;
	for (int i = 0; i < n && i < 64; i++)
		ok &= atomic_load(&j.seen[i]) == 1;
	return ok;
}

int main(void)
{
	tap_ok(check_run(NULL) && check_for(NULL, 10, 3), "NULL pool runs inline");
	static const int sizes[] = {1, 2, 3, 8};
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		mg_pool *p = mg_pool_new(sizes[s]);
		if (!tap_ok(p && mg_pool_size(p) == sizes[s], "pool of %d threads", sizes[s]))
			continue;
		int ok_run = 1, ok_for = 1;
		for (int it = 0; it < 500; it++) {
			ok_run &= check_run(p);
			ok_for &= check_for(p, 1 + it % 97, 1 + it % 7);
		}
		tap_ok(ok_run, "%d threads: 500 mg_pool_run jobs, each slice 0..n-1 exactly once per job", sizes[s]);
		tap_ok(ok_for, "%d threads: 500 mg_pool_for jobs interleaved, every item exactly once", sizes[s]);
		tap_ok(check_for(p, 0, 4) && check_for(p, 5, 100), "%d threads: empty range, chunk larger than range",
		       sizes[s]);
		mg_pool_free(p);
	}
	int b, e;
	mg_pool_range(100, 1, 3, 16, &b, &e);
	int ok = b == 32 && e == 64;
	mg_pool_range(100, 2, 3, 16, &b, &e);
	ok &= b == 64 && e == 100;
	tap_ok(ok, "mg_pool_range splits in aligned chunks");
	mg_pool_free(NULL);
	return tap_done();
}
