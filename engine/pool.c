/* pool.c - worker threads woken per job through a generation counter. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/pool.h"

struct mg_pool {
	int n;
	pthread_t *threads;
	pthread_mutex_t mu;
	pthread_cond_t wake, done;
	unsigned long gen;   /* incremented per job */
	int pending;         /* workers still running the current job */
	int quit;
	mg_pool_fn fn;
	void *arg;
};

struct worker_arg {
	mg_pool *p;
	int ith;
};

static void *worker(void *v)
{
	struct worker_arg wa = *(struct worker_arg *)v;
	free(v);
	mg_pool *p = wa.p;
	unsigned long seen = 0;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->gen == seen && !p->quit)
			pthread_cond_wait(&p->wake, &p->mu);
		if (p->quit) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		seen = p->gen;
		mg_pool_fn fn = p->fn;
		void *arg = p->arg;
		pthread_mutex_unlock(&p->mu);
		fn(arg, wa.ith, p->n);
		pthread_mutex_lock(&p->mu);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
		pthread_mutex_unlock(&p->mu);
	}
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
	p->n = n_threads;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	p->threads = calloc((size_t)n_threads, sizeof *p->threads);
	if (!p->threads) {
		mg_pool_free(p);
		return NULL;
	}
	for (int i = 1; i < n_threads; i++) {
		struct worker_arg *wa = malloc(sizeof *wa);
		if (!wa || pthread_create(&p->threads[i], NULL, worker, wa ? (wa->p = p, wa->ith = i, wa) : NULL)) {
			free(wa);
			p->n = i; /* the threads created so far */
			mg_pool_free(p);
			return NULL;
		}
	}
	return p;
}

void mg_pool_free(mg_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		if (p->threads)
			pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
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
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->pending = p->n - 1;
	p->gen++;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	fn(arg, 0, p->n);
	pthread_mutex_lock(&p->mu);
	while (p->pending > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
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
