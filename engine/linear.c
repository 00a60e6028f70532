/* linear.c - weight matrices in the compute formats (f32, f16, q8) and the
 * multi-threaded product Y = X W^T + b. The work is split over output rows;
 * each thread runs the kernel set chosen once for this CPU (kernels.h).
 * Every output element is computed by the same instruction sequence whatever
 * n is, so a take's result never depends on what else is in the batch. */
#include "autoconfig.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(HAVE_AMX_INTRINSICS) || defined(HAVE_AVXVNNI_INTRINSICS)
#include <cpuid.h>
#endif
#ifdef HAVE_AMX_INTRINSICS
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "engine/kernels.h"
#include "engine/linear.h"

/* The fastest format whose greedy tokens agree with f32 on >= 99% of the
 * steps (docs/PERFORMANCE.md). */
#define MG_WEIGHTS_DEFAULT_FORMAT MG_WEIGHTS_F16

const char *mg_weights_name(int fmt)
{
	switch (mg_weights_resolve(fmt)) {
	case MG_WEIGHTS_F32: return "f32";
	case MG_WEIGHTS_F16: return "f16";
	case MG_WEIGHTS_Q8: return "q8";
	default: return "?";
	}
}

int mg_weights_resolve(int fmt)
{
	return fmt == MG_WEIGHTS_DEFAULT ? MG_WEIGHTS_DEFAULT_FORMAT : fmt;
}

/* ---- kernel selection ---- */

#ifdef HAVE_AMX_INTRINSICS
/* AMX int8 tiles: the CPU has them (CPUID 7.0 EDX bits 24, 25) and the
 * kernel lets this process use their state (Linux enables it on request,
 * once per process, for every thread). */
static int amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
		return;
#if defined(__linux__) && defined(SYS_arch_prctl)
	/* ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA */
	amx_ok = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#endif
}

static int amx_usable(void)
{
	pthread_once(&amx_once, amx_probe);
	return amx_ok;
}
#endif

static const mg_kernels *active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

const mg_kernels *mg_kernels_for(int isa)
{
	switch (isa) {
	case MG_ISA_GENERIC:
		return &mg_kernels_generic;
#ifdef MG_KERNELS_X86
	case MG_ISA_AVX2:
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
			return &mg_kernels_avx2;
		return NULL;
	case MG_ISA_AVX2VNNI: {
#ifdef HAVE_AVXVNNI_INTRINSICS
		/* AVX-VNNI: CPUID 7.1 EAX bit 4 (the AVX state is enabled when
		 * AVX2 is usable). */
		unsigned a, b, c, d;
		if (mg_kernels_for(MG_ISA_AVX2) && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)))
			return &mg_kernels_avx2vnni;
#endif
		return NULL;
	}
	case MG_ISA_AVX512:
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
		    __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
			return &mg_kernels_avx512;
		return NULL;
	case MG_ISA_AVX512VNNI:
		return mg_kernels_for(MG_ISA_AVX512) && __builtin_cpu_supports("avx512vnni") ? &mg_kernels_avx512vnni : NULL;
	case MG_ISA_AMX:
#ifdef HAVE_AMX_INTRINSICS
		return mg_kernels_for(MG_ISA_AVX512VNNI) && amx_usable() ? &mg_kernels_amx : NULL;
#else
		return NULL;
#endif
#endif
	default:
		return NULL;
	}
}

/* Two weight rows per pass and the f32 / f16 weights prefetched once, as
 * measured on Intel CPUs (items 32, 43). On AMD two interleaved row
 * streams lose the prefetchers: one row per pass read f32 weights 1.2-1.4
 * times as fast, a second prefetch into L2 8 KiB further on gave f32 and
 * f16 another 10-40%, q8 keeps two rows per pass (sharing the loads of X)
 * by storing each pair of rows as one stream, and the attention's cache
 * read 25% faster asked for into L2 only (items 46-49). */
static const mg_tuning tunings[] = {
	{"default", {0, 2, 2, 2}, {0, 0, 0, 0}, 0, 1},
	{"amd", {0, 1, 2, 2}, {0, 8192, 8192, 0}, 1, 0},
};
static const mg_tuning *tuning = &tunings[0];

const mg_tuning *mg_tuning_named(const char *name)
{
	for (size_t i = 0; name && i < sizeof tunings / sizeof tunings[0]; i++)
		if (!strcmp(name, tunings[i].name))
			return &tunings[i];
	return NULL;
}

static void choose_tuning(void)
{
	const mg_tuning *t = mg_tuning_named(getenv("MG_TUNING"));
#ifdef MG_KERNELS_X86
	if (!t) {
		__builtin_cpu_init();
		if (__builtin_cpu_is("amd"))
			t = mg_tuning_named("amd");
	}
#endif
	if (t)
		tuning = t;
}

const mg_tuning *mg_tuning_active(void)
{
	mg_kernels_active();
	return tuning;
}

int mg_q8_layout_for(const mg_kernels *k)
{
	if (k->q8_tiles)
		return MG_Q8_TILES;
	return mg_tuning_active()->q8_pairs ? MG_Q8_PAIRS : MG_Q8_ROWS;
}

void mg_tuning_set(const mg_tuning *t)
{
	mg_kernels_active(); /* after the choice at start-up, not undone by it */
	if (t)
		tuning = t;
}

static void choose_active(void)
{
	choose_tuning();
	const char *want = getenv("MG_KERNELS");
	for (int isa = MG_ISA_COUNT - 1; isa >= 0; isa--) {
		const mg_kernels *k = mg_kernels_for(isa);
		if (!k)
			continue;
		if (want && *want && strcmp(want, k->name))
			continue;
		active = k;
		return;
	}
	active = &mg_kernels_generic; /* an unknown or unsupported name */
}

const mg_kernels *mg_kernels_active(void)
{
	pthread_once(&active_once, choose_active);
	return active;
}

const char *mg_linear_kernels(void)
{
	return mg_kernels_active()->name;
}

/* ---- conversion ---- */

/* ---- weight memory ----
 *
 * A decoder step streams every matrix once, so the weights' address
 * translation is on the critical path: with 4 KiB pages that is a TLB miss
 * every 4 KiB, and under virtualisation each miss walks two page tables
 * (a streaming read measured 26 GB/s on 4 KiB pages and 36 GB/s on 2 MiB
 * pages on the same machine). Matrices are therefore carved one after the
 * other from chunks on 2 MiB boundaries that ask for transparent huge pages
 * (madvise; the kernel may still say no, which only costs speed). A chunk
 * goes back to the system when its last matrix is freed. */

#define HUGE_PAGE ((size_t)2 << 20)
#define CHUNK_BYTES ((size_t)64 << 20)

struct chunk {
	char *base;    /* 2 MiB aligned */
	size_t size;   /* a multiple of 2 MiB */
	size_t used;
	int refs;      /* matrices carved from it */
};

static pthread_mutex_t chunk_mu = PTHREAD_MUTEX_INITIALIZER;
static struct chunk *chunk_open; /* the one being filled */

static struct chunk *chunk_new(size_t bytes)
{
	size_t size = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	struct chunk *c = malloc(sizeof *c);
	char *p = c ? mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
	            : MAP_FAILED;
	if (p == MAP_FAILED) {
		free(c);
		return NULL;
	}
	/* Trim the mapping to a 2 MiB aligned span of size bytes. */
	size_t lead = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
	if (lead)
		munmap(p, lead);
	if (HUGE_PAGE - lead)
		munmap(p + lead + size, HUGE_PAGE - lead);
	c->base = p + lead;
	c->size = size;
	c->used = 0;
	c->refs = 0;
#ifdef MADV_HUGEPAGE
	madvise(c->base, size, MADV_HUGEPAGE);
#endif
	return c;
}

static void chunk_free(struct chunk *c)
{
	munmap(c->base, c->size);
	free(c);
}

/* bytes (64-byte aligned) from the open chunk, or from a new one; its chunk
 * in *owner. NULL when the system has no memory left. */
static void *weights_alloc(size_t bytes, struct chunk **owner)
{
	bytes = (bytes + 63) / 64 * 64;
	pthread_mutex_lock(&chunk_mu);
	struct chunk *c = chunk_open;
	if (!c || c->size - c->used < bytes) {
		c = chunk_new(bytes > CHUNK_BYTES ? bytes : CHUNK_BYTES);
		if (!c) {
			pthread_mutex_unlock(&chunk_mu);
			return NULL;
		}
		/* The old open chunk lives on while its matrices do. */
		if (chunk_open && chunk_open->refs == 0)
			chunk_free(chunk_open);
		chunk_open = c;
	}
	void *p = c->base + c->used;
	c->used += bytes;
	c->refs++;
	*owner = c;
	pthread_mutex_unlock(&chunk_mu);
	return p;
}

static void weights_release(struct chunk *c)
{
	pthread_mutex_lock(&chunk_mu);
	if (--c->refs == 0) {
		if (c == chunk_open)
			chunk_open = NULL;
		chunk_free(c);
	}
	pthread_mutex_unlock(&chunk_mu);
}

void *mg_big_alloc(size_t bytes)
{
	struct chunk *c = chunk_new(bytes ? bytes : 1);
	if (!c)
		return NULL;
	void *p = c->base;
	free(c);
	return p;
}

void mg_big_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, ((bytes ? bytes : 1) + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
}

static void *alloc64(size_t bytes)
{
	bytes = (bytes + 63) & ~(size_t)63;
	return aligned_alloc(64, bytes ? bytes : 64);
}

/* One row to q8: per block, scale = absmax / 127, q = round(w / scale). */
static void quantize_row(const float *w, int cols, int ld, int8_t *q, float *scales)
{
	for (int b = 0; b * MG_Q8_BLOCK < ld; b++) {
		int c0 = b * MG_Q8_BLOCK;
		float amax = 0;
		for (int c = c0; c < c0 + MG_Q8_BLOCK && c < cols; c++)
			amax = fmaxf(amax, fabsf(w[c]));
		float s = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
		scales[b] = s;
		for (int c = c0; c < c0 + MG_Q8_BLOCK; c++) {
			long v = c < cols ? lrintf(w[c] * inv) : 0;
			q[c] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
		}
	}
}

int mg_mat_from_f32(mg_mat *m, const float *w, int rows, int cols, int fmt, char *err, size_t errlen)
{
	return mg_mat_from_f32_layout(m, w, rows, cols, fmt, mg_q8_layout_for(mg_kernels_active()), err, errlen);
}

/* Row r's codes q (ld of them) and block scales sc into the tile layout
 * (kernels.h; mg_q8_at says the same, one code at a time): per block, 4
 * codes of the row in each of the 16 quads. */
static void tile_row(mg_mat *m, int r, const int8_t *q, const float *sc)
{
	size_t nb = (size_t)m->ld / MG_Q8_BLOCK, g = (size_t)r / MG_Q8_GROUP, n = (size_t)r % MG_Q8_GROUP;
	for (size_t b = 0; b < nb; b++) {
		int8_t *blk = (int8_t *)m->data + (g * nb + b) * MG_Q8_GROUP * MG_Q8_BLOCK + n * 4;
		for (int k = 0; k < MG_Q8_BLOCK / 4; k++)
			memcpy(blk + (size_t)k * 4 * MG_Q8_GROUP, q + b * MG_Q8_BLOCK + (size_t)k * 4, 4);
		m->scales[(g * nb + b) * MG_Q8_GROUP + n] = sc[b];
	}
}

/* Row r's codes q and block scales sc into the pair layout (kernels.h,
 * mg_q8_at), a block at a time. */
static void pair_row(mg_mat *m, int r, const int8_t *q, const float *sc)
{
	int nb = m->ld / MG_Q8_BLOCK, step = mg_q8_block_step(m, r);
	size_t scale, at = mg_q8_at(m, r, 0, &scale);
	for (int b = 0; b < nb; b++)
		memcpy((int8_t *)m->data + at + (size_t)b * step, q + (size_t)b * MG_Q8_BLOCK, MG_Q8_BLOCK);
	memcpy(m->scales + scale, sc, (size_t)nb * sizeof *sc);
}

int mg_mat_from_f32_layout(mg_mat *m, const float *w, int rows, int cols, int fmt, int q8_layout, char *err,
                           size_t errlen)
{
	memset(m, 0, sizeof *m);
	fmt = mg_weights_resolve(fmt);
	if (rows <= 0 || cols <= 0) {
		snprintf(err, errlen, "a weight matrix must not be empty (%dx%d)", rows, cols);
		return -1;
	}
	if (fmt != MG_WEIGHTS_F32 && fmt != MG_WEIGHTS_F16 && fmt != MG_WEIGHTS_Q8) {
		snprintf(err, errlen, "unknown weight format %d", fmt);
		return -1;
	}
	if (fmt == MG_WEIGHTS_Q8 && q8_layout != MG_Q8_ROWS && q8_layout != MG_Q8_TILES && q8_layout != MG_Q8_PAIRS) {
		snprintf(err, errlen, "unknown q8 layout %d", q8_layout);
		return -1;
	}
	int tiles = fmt == MG_WEIGHTS_Q8 && q8_layout == MG_Q8_TILES;
	int pairs = fmt == MG_WEIGHTS_Q8 && q8_layout == MG_Q8_PAIRS;
	int ld = fmt == MG_WEIGHTS_Q8 ? (cols + MG_Q8_BLOCK - 1) / MG_Q8_BLOCK * MG_Q8_BLOCK : cols;
	/* Tiles store whole groups of rows (the last one padded with zeros). */
	size_t srows = tiles ? ((size_t)rows + MG_Q8_GROUP - 1) / MG_Q8_GROUP * MG_Q8_GROUP : (size_t)rows;
	size_t n = srows * (size_t)ld;
	size_t esz = fmt == MG_WEIGHTS_F32 ? 4 : fmt == MG_WEIGHTS_F16 ? 2 : 1;
	size_t dbytes = (n * esz + 63) / 64 * 64, sbytes = fmt == MG_WEIGHTS_Q8 ? n / MG_Q8_BLOCK * sizeof(float) : 0;
	struct chunk *owner = NULL;
	m->data = weights_alloc(dbytes + sbytes, &owner);
	m->chunk = owner;
	if (m->data && fmt == MG_WEIGHTS_Q8)
		m->scales = (float *)((char *)m->data + dbytes);
	if (!m->data) {
		snprintf(err, errlen, "out of memory for a %dx%d %s matrix", rows, cols, mg_weights_name(fmt));
		return -1;
	}
	m->fmt = fmt;
	m->rows = rows;
	m->cols = cols;
	m->ld = ld;
	m->q8_layout = fmt == MG_WEIGHTS_Q8 ? q8_layout : MG_Q8_ROWS;
	m->bytes = n * esz + sbytes;
	/* Every byte is written here, so no page of the matrix faults later. */
	if (fmt == MG_WEIGHTS_F32) {
		memcpy(m->data, w, n * sizeof(float));
	} else if (fmt == MG_WEIGHTS_F16) {
		mg_kernels_active()->to_f16(w, m->data, n);
	} else if (!tiles && !pairs) {
		for (int r = 0; r < rows; r++)
			quantize_row(w + (size_t)r * cols, cols, ld, (int8_t *)m->data + (size_t)r * ld,
			             m->scales + (size_t)r * (ld / MG_Q8_BLOCK));
	} else {
		if (tiles)
			memset(m->data, 0, dbytes + sbytes); /* the padding rows */
		int8_t *q = malloc((size_t)ld);
		float *sc = malloc((size_t)ld / MG_Q8_BLOCK * sizeof *sc);
		if (!q || !sc) {
			free(q);
			free(sc);
			mg_mat_free(m);
			snprintf(err, errlen, "out of memory for a %dx%d %s matrix", rows, cols, mg_weights_name(fmt));
			return -1;
		}
		for (int r = 0; r < rows; r++) {
			quantize_row(w + (size_t)r * cols, cols, ld, q, sc);
			if (tiles)
				tile_row(m, r, q, sc);
			else
				pair_row(m, r, q, sc);
		}
		free(q);
		free(sc);
	}
	return 0;
}

int mg_mat_from_tensor(mg_mat *m, const st_tensor *t, int fmt, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0 || t->shape[0] > INT32_MAX ||
	    t->shape[1] > INT32_MAX) {
		snprintf(err, errlen, "%s: tensor '%s' must be a non-empty 2-D matrix", t->file, t->name);
		return -1;
	}
	float *tmp = malloc((size_t)t->numel * sizeof(float));
	if (!tmp) {
		snprintf(err, errlen, "%s: out of memory converting '%s'", t->file, t->name);
		return -1;
	}
	int rc = st_to_f32(t, tmp, err, errlen);
	if (!rc && mg_mat_from_f32(m, tmp, (int)t->shape[0], (int)t->shape[1], fmt, err, errlen)) {
		char why[256];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "%s: tensor '%s': %s", t->file, t->name, why);
		rc = -1;
	}
	free(tmp);
	return rc;
}

void mg_mat_free(mg_mat *m)
{
	if (m->chunk)
		weights_release(m->chunk);
	memset(m, 0, sizeof *m);
}

/* ---- the product ---- */

/* The codes (64-byte aligned), the byte split (aligned), the scales. */
size_t mg_xq_bytes(int n, int ld)
{
	size_t q = ((size_t)n * (size_t)ld * sizeof(int16_t) + 63) / 64 * 64;
	return 2 * q + (size_t)n * sizeof(float);
}

mg_xq mg_xq_layout(void *scratch, int n, int ld)
{
	size_t q = ((size_t)n * (size_t)ld * sizeof(int16_t) + 63) / 64 * 64;
	mg_xq x;
	x.q = scratch;
	x.a = (int8_t *)((char *)scratch + q);
	x.s = (float *)((char *)scratch + 2 * q);
	return x;
}

/* The calling thread's scratch for quantised activations: it grows to the
 * largest product seen and is then reused, so the decode loop allocates
 * nothing after its first step; freed when the thread exits. */
struct scratch {
	void *buf;
	size_t cap;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *v)
{
	struct scratch *s = v;
	free(s->buf);
	free(s);
}

static void scratch_init(void)
{
	scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

static void *xq_scratch(size_t bytes)
{
	pthread_once(&scratch_once, scratch_init);
	if (!scratch_key_ok)
		return NULL;
	struct scratch *s = pthread_getspecific(scratch_key);
	if (!s) {
		s = calloc(1, sizeof *s);
		if (!s || pthread_setspecific(scratch_key, s)) {
			free(s);
			return NULL;
		}
	}
	if (bytes <= s->cap)
		return s->buf;
	size_t cap = bytes + bytes / 2;
	void *p = alloc64(cap);
	if (!p)
		return NULL;
	free(s->buf);
	s->buf = p;
	s->cap = cap;
	return p;
}

struct rows_job {
	mg_rows_fn fn;
	const mg_mat *W;
	const float *bias, *X;
	const mg_xq *xq;
	int n;
	float *Y;
	void (*act)(float *, size_t);
};

static void rows_task(void *arg, int b, int e)
{
	struct rows_job *j = arg;
	j->fn(j->W, j->bias, j->X, j->xq, j->n, j->Y, b, e);
	if (j->act)
		for (int i = 0; i < j->n; i++)
			j->act(j->Y + (size_t)i * (size_t)j->W->rows + b, (size_t)(e - b));
}

/* Rows per chunk handed to a thread: about 2 chunks per thread, in
 * multiples of 16 rows (whole cache lines of Y, whole q8 tile groups).
 * Long runs of contiguous weights keep the hardware prefetchers streaming
 * (8 chunks per thread made the q8 step 8% slower, f16 10%); two still let
 * a thread that was descheduled leave its second chunk to the others. */
static int chunk_rows(const mg_pool *p, int rows)
{
	int c = rows / (mg_pool_size(p) * 2);
	c = (c + 15) / 16 * 16;
	return c < 16 ? 16 : c;
}

/* When the scratch cannot grow (out of memory), a q8 product runs one row
 * of X at a time with scratch on the stack: the same kernels, so the same
 * bits (batch invariance), only slower. Rows wider than that stack scratch
 * (no MusicGen matrix is) come out as NaN, which the model's finite checks
 * report. */
#define STACK_COLS 16384

static void q8_row_by_row(mg_pool *pool, const mg_kernels *k, struct rows_job *j)
{
	_Alignas(64) char buf[2 * STACK_COLS * sizeof(int16_t) + 192];
	const mg_mat *W = j->W;
	for (int i = 0; i < j->n; i++) {
		float *y = j->Y + (size_t)i * W->rows;
		if (mg_xq_bytes(1, W->ld) > sizeof buf) {
			for (int r = 0; r < W->rows; r++)
				y[r] = NAN;
			continue;
		}
		mg_xq xq = mg_xq_layout(buf, 1, W->ld);
		k->quant_x(j->X + (size_t)i * W->cols, 1, W->cols, W->ld, &xq);
		struct rows_job one = {j->fn, W, j->bias, NULL, &xq, 1, y, j->act};
		mg_pool_for(pool, W->rows, chunk_rows(pool, W->rows), rows_task, &one);
	}
}

void mg_linear(mg_pool *pool, const mg_mat *W, const float *bias, const float *X, int n, float *Y)
{
	mg_linear_act(pool, W, bias, X, n, Y, NULL);
}

void mg_linear_act(mg_pool *pool, const mg_mat *W, const float *bias, const float *X, int n, float *Y,
                   void (*act)(float *y, size_t n))
{
	if (n <= 0)
		return;
	const mg_kernels *k = mg_kernels_active();
#ifdef HAVE_AMX_INTRINSICS
	/* A matrix is read by the set whose layout it has (only a test makes
	 * one in the other layout). */
	if (W->fmt == MG_WEIGHTS_Q8 && (W->q8_layout == MG_Q8_TILES) != k->q8_tiles)
		k = W->q8_layout == MG_Q8_TILES ? &mg_kernels_amx : &mg_kernels_avx512vnni;
#endif
	struct rows_job j = {k->rows[W->fmt], W, bias, X, NULL, n, Y, act};
	mg_xq xq;
	if (W->fmt == MG_WEIGHTS_Q8) {
		void *s = xq_scratch(mg_xq_bytes(n, W->ld));
		if (!s) {
			q8_row_by_row(pool, k, &j);
			return;
		}
		xq = mg_xq_layout(s, n, W->ld);
		k->quant_x(X, n, W->cols, W->ld, &xq);
		j.xq = &xq;
	}
	mg_pool_for(pool, W->rows, chunk_rows(pool, W->rows), rows_task, &j);
}
