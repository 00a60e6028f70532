/* pool.c - worker threads woken per job through a generation counter.
 *
 * A decoder step runs a few hundred short jobs (one per matrix product), so
 * waking a sleeping thread for each (tens of microseconds through a
 * condition variable) would cost as much as the arithmetic. Workers
 * therefore spin on the counter for a while after each job and only then
 * sleep on the condition variable; the caller spins on the count of
 * unfinished workers. Dekker-style ordering (sequentially consistent
 * atomics) keeps a wake-up from being lost between "spinning" and
 * "asleep": a worker registers as a sleeper before it re-reads the
 * counter, and the caller re-reads the sleepers after publishing a job.
 *
 * Work is handed out through an atomic counter (chunks of items for
 * mg_pool_for, the slices 0..n-1 of mg_pool_run), so a worker that is
 * descheduled (the cores are shared) costs nothing: the caller and the
 * other workers take what it would have taken, and nobody waits for a
 * thread that has not started. */
#include "autoconfig.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Spin iterations before sleeping (a pause is 10-150 cycles: about
 * 0.1-1 ms in all, longer than the gap between the products of a step). */
#define SPIN_WORKER 20000
/* Spin iterations of the caller before it yields the core while waiting. */
#define SPIN_CALLER 20000

struct mg_pool {
	int n;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t wake;
	atomic_ulong gen;     /* incremented per job */
	atomic_int sleepers;  /* workers blocked (or about to block) on wake */
	atomic_int quit;
	/* The current job, published before gen: fn(arg, i, n_items) for each
	 * i (mg_pool_run), or range_fn over n_items in chunks (mg_pool_for). */
	mg_pool_fn fn;
	mg_pool_range_fn range_fn;
	void *arg;
	int n_items, chunk;
	atomic_int next;      /* first item not yet claimed */
	atomic_int active;    /* workers inside a job */
	atomic_ulong closed;  /* the last generation finished */
};

struct worker_arg {
	mg_pool *p;
	int ith;
};

/* Waits until gen differs from seen; returns the new value. */
static unsigned long wait_job(mg_pool *p, unsigned long seen)
{
	for (int i = 0; i < SPIN_WORKER; i++) {
		unsigned long g = atomic_load(&p->gen);
		if (g != seen)
			return g;
		cpu_relax();
	}
	pthread_mutex_lock(&p->mu);
	atomic_fetch_add(&p->sleepers, 1);
	unsigned long g;
	while ((g = atomic_load(&p->gen)) == seen)
		pthread_cond_wait(&p->wake, &p->mu);
	atomic_fetch_sub(&p->sleepers, 1);
	pthread_mutex_unlock(&p->mu);
	return g;
}

/* Claims chunks of the current mg_pool_for job until none is left. */
static void take_chunks(mg_pool *p)
{
	for (;;) {
		int b = atomic_fetch_add(&p->next, p->chunk);
		if (b >= p->n_items)
			return;
		int e = p->n_items - b < p->chunk ? p->n_items : b + p->chunk;
		if (p->range_fn)
			p->range_fn(p->arg, b, e);
		else
			for (int i = b; i < e; i++)
				p->fn(p->arg, i, p->n_items);
	}
}

static void *worker(void *v)
{
	struct worker_arg wa = *(struct worker_arg *)v;
	free(v);
	mg_pool *p = wa.p;
	unsigned long seen = 0;
	for (;;) {
		seen = wait_job(p, seen);
		if (atomic_load(&p->quit))
			return NULL;
		/* Register, then check that job `seen` is still the open one: the
		 * caller publishes no new job while a worker is registered, and
		 * a worker that woke too late for a job leaves it alone. */
		atomic_fetch_add(&p->active, 1);
		if (atomic_load(&p->gen) == seen && atomic_load(&p->closed) < seen)
			take_chunks(p);
		atomic_fetch_sub(&p->active, 1);
	}
}

/* Publishes a new job (its fields are set) and wakes the sleepers; returns
 * its generation. */
static unsigned long publish(mg_pool *p)
{
	unsigned long g = atomic_fetch_add(&p->gen, 1) + 1;
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->wake);
		pthread_mutex_unlock(&p->mu);
	}
	return g;
}

static void wait_zero(atomic_int *v)
{
	for (int i = 0; atomic_load(v) > 0; i++) {
		if (i < SPIN_CALLER)
			cpu_relax();
		else
			sched_yield();
	}
}

/* Ends job g: no worker may enter it any more, and those inside leave. */
static void close_job(mg_pool *p, unsigned long g)
{
	atomic_store(&p->closed, g);
	wait_zero(&p->active);
}

mg_pool *mg_pool_new(int n_threads)
{
	if (n_threads <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n_threads = c > 0 ? (int)c : 1;
	}
	if (n_threads > 256)
		n_threads = 256;
	mg_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n = 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	p->threads = calloc((size_t)n_threads, sizeof *p->threads);
	if (!p->threads) {
		mg_pool_free(p);
		return NULL;
	}
	for (int i = 1; i < n_threads; i++) {
		struct worker_arg *wa = malloc(sizeof *wa);
		if (!wa) {
			mg_pool_free(p);
			return NULL;
		}
		wa->p = p;
		wa->ith = i;
		if (pthread_create(&p->threads[i], NULL, worker, wa)) {
			free(wa);
			mg_pool_free(p);
			return NULL;
		}
		p->n = i + 1; /* the threads created so far */
	}
	return p;
}

void mg_pool_free(mg_pool *p)
{
	if (!p)
		return;
	atomic_store(&p->quit, 1);
	publish(p);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	free(p->threads);
	free(p);
}

int mg_pool_size(const mg_pool *p)
{
	return p ? p->n : 1;
}

void mg_pool_run(mg_pool *p, mg_pool_fn fn, void *arg)
{
	if (!p || p->n == 1) {
		fn(arg, 0, 1);
		return;
	}
	p->fn = fn;
	p->range_fn = NULL;
	p->arg = arg;
	p->n_items = p->n;
	p->chunk = 1;
	atomic_store(&p->next, 0);
	unsigned long g = publish(p);
	take_chunks(p);
	close_job(p, g);
}

void mg_pool_for(mg_pool *p, int n, int chunk, mg_pool_range_fn fn, void *arg)
{
	if (n <= 0)
		return;
	if (!p || p->n == 1) {
		fn(arg, 0, n);
		return;
	}
	p->fn = NULL;
	p->range_fn = fn;
	p->arg = arg;
	p->n_items = n;
	p->chunk = chunk > 0 ? chunk : 1;
	atomic_store(&p->next, 0);
	unsigned long g = publish(p);
	take_chunks(p);
	close_job(p, g);
}

void mg_pool_range(int n, int ith, int nth, int align, int *begin, int *end)
{
	if (align < 1)
		align = 1;
	int chunks = (n + align - 1) / align;
	int b = (int)((long)chunks * ith / nth) * align, e = (int)((long)chunks * (ith + 1) / nth) * align;
	*begin = b < n ? b : n;
	*end = e < n ? e : n;
}
