/* linear.c - weight matrices in the compute formats (f32, f16, q8) and the
 * multi-threaded product Y = X W^T + b. The work is split over output rows;
 * each thread runs the kernel set chosen once for this CPU (kernels.h).
 * Every output element is computed by the same instruction sequence whatever
 * n is, so a take's result never depends on what else is in the batch. */
#include "autoconfig.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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

#include "engine/bind.h" /* mg_all_finite */
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

/* (docs/PERFORMANCE.md, items 46-50.) On AMD two interleaved row streams
 * lose the prefetchers: one row per pass read f32 weights 1.2-1.4 times as
 * fast, a second prefetch into L2 8 KiB further on gave f32 and f16
 * another 10-40%, q8 keeps two rows per pass (sharing the loads of X) by
 * storing each pair of rows as one stream, and the attention's cache read
 * 25% faster asked for into L2 only. On Intel the f32 and f16 products
 * read 8-15% faster with one row per pass and the second prefetch
 * together (either alone was no faster), the half-precision ones too;
 * the q8 rows and the attention's L1 prefetch stay as measured there
 * (items 32, 43, 45). On Zen 5 (item 54) the prefetches into L1 made
 * the f32 and q8 products slower, and pairs of rows the f16 and q8 ones:
 * one row per pass, and f32 and q8 lines asked for into L2 only. */
static const mg_tuning tunings[] = {
	{"default", {0, 1, 1, 2}, {0, 1024, 6144, 1024}, {0, 8192, 8192, 8192}, 0, 1},
	{"amd", {0, 1, 2, 2}, {0, 1024, 6144, 1024}, {0, 8192, 8192, 8192}, 1, 0},
	{"zen5", {0, 1, 1, 1}, {0, 0, 6144, 0}, {0, 5120, 8192, 9216}, 0, 0},
};
static const mg_tuning *tuning = &tunings[0];

const mg_tuning *mg_tuning_named(const char *name)
{
	for (size_t i = 0; name && i < sizeof tunings / sizeof tunings[0]; i++)
		if (!strcmp(name, tunings[i].name))
			return &tunings[i];
	return NULL;
}

#ifdef MG_KERNELS_X86
/* The CPU's family as CPUID leaf 1 gives it (base + extended): 0x19 Zen 3
 * and 4, 0x1a Zen 5. */
static unsigned cpu_family(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	unsigned f = (a >> 8) & 0xf;
	return f == 0xf ? f + ((a >> 20) & 0xff) : f;
}
#endif

static void choose_tuning(void)
{
	const mg_tuning *t = mg_tuning_named(getenv("MG_TUNING"));
#ifdef MG_KERNELS_X86
	if (!t) {
		__builtin_cpu_init();
		if (__builtin_cpu_is("amd"))
			t = mg_tuning_named(cpu_family() >= 0x1a ? "zen5" : "amd");
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

/* One block of q8: codes and its scale, scale = absmax / 127, code =
 * mg_q8_code1(w, 127 / absmax). n < block: the rest of the codes 0. */
static float quantize_block(const float *w, int n, int8_t *q)
{
	float amax = 0;
	int c = 0;
	if (n == MG_Q8_BLOCK) {
		mg_v4f m = {0, 0, 0, 0};
		for (; c < MG_Q8_BLOCK; c += 4)
			m = mg_max4(m, mg_abs4(w + c));
		for (int k = 0; k < 4; k++)
			amax = m[k] > amax ? m[k] : amax;
	}
	for (; c < n; c++) {
		float a = fabsf(w[c]);
		amax = a > amax ? a : amax; /* a NaN is passed over, as by fmaxf */
	}
	float inv = amax > 0 ? 127.0f / amax : 0.0f;
	c = 0;
	if (n == MG_Q8_BLOCK)
		for (; c < MG_Q8_BLOCK; c += 4) {
			mg_v4i iv = mg_q8_code4(w + c, inv);
			for (int k = 0; k < 4; k++)
				q[c + k] = (int8_t)iv[k];
		}
	for (; c < n; c++)
		q[c] = (int8_t)mg_q8_code1(w[c], inv);
	for (; c < MG_Q8_BLOCK; c++)
		q[c] = 0;
	return amax / 127.0f;
}

/* One row to q8 (ld codes, the columns past cols 0), block by block. */
static void quantize_row(const float *w, int cols, int ld, int8_t *q, float *scales)
{
	for (int b = 0; b * MG_Q8_BLOCK < ld; b++) {
		int c0 = b * MG_Q8_BLOCK, n = cols - c0 < MG_Q8_BLOCK ? cols - c0 : MG_Q8_BLOCK;
		scales[b] = quantize_block(w + c0, n > 0 ? n : 0, q + c0);
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

/* Checks the format and the layout and carves the matrix out of the
 * weight memory; its rows are then written by mat_put_rows. */
static int mat_alloc(mg_mat *m, int rows, int cols, int fmt, int q8_layout, char *err, size_t errlen)
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
	int ld = fmt == MG_WEIGHTS_Q8 ? (cols + MG_Q8_BLOCK - 1) / MG_Q8_BLOCK * MG_Q8_BLOCK : cols;
	/* Tiles store whole groups of rows (the last one padded with zeros). */
	size_t srows = tiles ? ((size_t)rows + MG_Q8_GROUP - 1) / MG_Q8_GROUP * MG_Q8_GROUP : (size_t)rows;
	size_t n = srows * (size_t)ld;
	size_t esz = fmt == MG_WEIGHTS_F32 ? 4 : fmt == MG_WEIGHTS_F16 ? 2 : 1;
	size_t dbytes = (n * esz + 63) / 64 * 64, sbytes = fmt == MG_WEIGHTS_Q8 ? n / MG_Q8_BLOCK * sizeof(float) : 0;
	struct chunk *owner = NULL;
	m->data = weights_alloc(dbytes + sbytes, &owner);
	m->chunk = owner;
	if (!m->data) {
		snprintf(err, errlen, "out of memory for a %dx%d %s matrix", rows, cols, mg_weights_name(fmt));
		return -1;
	}
	if (fmt == MG_WEIGHTS_Q8)
		m->scales = (float *)((char *)m->data + dbytes);
	m->fmt = fmt;
	m->rows = rows;
	m->cols = cols;
	m->ld = ld;
	m->q8_layout = fmt == MG_WEIGHTS_Q8 ? q8_layout : MG_Q8_ROWS;
	m->bytes = n * esz + sbytes;
	/* Every byte is written (the padding rows of tiles here, the rest by
	 * mat_put_rows), so no page of the matrix faults later. */
	if (tiles && srows > (size_t)rows) {
		size_t g = (size_t)rows / MG_Q8_GROUP * MG_Q8_GROUP * (size_t)ld;
		memset((int8_t *)m->data + g, 0, dbytes - g);
		memset(m->scales + g / MG_Q8_BLOCK, 0, sbytes - g / MG_Q8_BLOCK * sizeof(float));
	}
	return 0;
}

/* Bytes of scratch mat_put_rows needs per call (q8: a row's codes and
 * block scales). */
static size_t put_scratch(const mg_mat *m)
{
	return m->fmt == MG_WEIGHTS_Q8 ? (size_t)m->ld + (size_t)m->ld / MG_Q8_BLOCK * sizeof(float) : 0;
}

/* Rows r0 .. r1-1 of the matrix from row-major floats w (their cols each). */
static void mat_put_rows(mg_mat *m, const float *w, int r0, int r1, void *scratch)
{
	size_t k = (size_t)(r1 - r0) * (size_t)m->cols;
	if (m->fmt == MG_WEIGHTS_F32) {
		memcpy((float *)m->data + (size_t)r0 * m->cols, w, k * sizeof(float));
		return;
	}
	if (m->fmt == MG_WEIGHTS_F16) {
		mg_kernels_active()->to_f16(w, (uint16_t *)m->data + (size_t)r0 * m->cols, k);
		return;
	}
	int nb = m->ld / MG_Q8_BLOCK;
	for (int r = r0; r < r1; r++) {
		const float *wr = w + (size_t)(r - r0) * m->cols;
		if (m->q8_layout == MG_Q8_ROWS) {
			quantize_row(wr, m->cols, m->ld, (int8_t *)m->data + (size_t)r * m->ld, m->scales + (size_t)r * nb);
			continue;
		}
		int8_t *q = scratch;
		float *sc = (float *)(q + m->ld);
		quantize_row(wr, m->cols, m->ld, q, sc);
		if (m->q8_layout == MG_Q8_TILES)
			tile_row(m, r, q, sc);
		else
			pair_row(m, r, q, sc);
	}
}

/* ---- conversion on several threads ----
 * Loading converts every weight: on the pool of the model being loaded
 * (mg_linear_convert_pool, per loading thread), rows in chunks of whole
 * tile groups, so that two threads never write one cache line. */
static _Thread_local mg_pool *convert_pool;

mg_pool *mg_linear_convert_pool(mg_pool *pool)
{
	mg_pool *old = convert_pool;
	convert_pool = pool;
	return old;
}

/* Rows converted per piece: their floats stay in L2 before they are
 * written in the matrix's format. */
#define PIECE_ROWS 16

struct convert_job {
	mg_mat *m;
	const float *w;                /* all rows as floats, or */
	const st_tensor *const *t;     /* n tensors of part rows each */
	int n, part;
	atomic_int bad;                /* 1 + a tensor holding NaN or infinities */
	atomic_int nomem;
};

static void convert_task(void *arg, int r0, int r1)
{
	struct convert_job *j = arg;
	mg_mat *m = j->m;
	size_t cols = (size_t)m->cols;
	char *scratch = malloc(put_scratch(m) + (j->t ? PIECE_ROWS * cols * sizeof(float) : 0) + 64);
	if (!scratch) {
		atomic_store(&j->nomem, 1);
		return;
	}
	float *buf = (float *)(scratch + (put_scratch(m) + 63) / 64 * 64);
	for (int r = r0; r < r1;) {
		int e = r1 - r < PIECE_ROWS ? r1 : r + PIECE_ROWS;
		if (!j->t) {
			mat_put_rows(m, j->w + (size_t)r * cols, r, e, scratch);
			r = e;
			continue;
		}
		/* Not across two of the stacked tensors. */
		int ti = r / j->part, end = (ti + 1) * j->part;
		if (e > end)
			e = end;
		const st_tensor *t = j->t[ti];
		size_t es = st_dtype_size(t->dtype), k = (size_t)(e - r) * cols;
		st_tensor piece = *t;
		piece.data = t->data + (size_t)(r - ti * j->part) * cols * es;
		piece.numel = (int64_t)k;
		piece.nbytes = k * es;
		piece.ndim = 1;
		piece.shape[0] = (int64_t)k;
		/* The dtype was checked by the caller: cannot fail. */
		(void)st_to_f32(&piece, buf, NULL, 0);
		if (!mg_all_finite(buf, k)) {
			atomic_store(&j->bad, ti + 1);
			r = e;
			continue;
		}
		mat_put_rows(m, buf, r, e, scratch);
		r = e;
	}
	free(scratch);
}

static void convert(struct convert_job *j)
{
	int rows = j->m->rows, nth = mg_pool_size(convert_pool);
	/* About four chunks per thread, whole tile groups. */
	int chunk = rows / (4 * nth);
	chunk = chunk < MG_Q8_GROUP ? MG_Q8_GROUP : chunk / MG_Q8_GROUP * MG_Q8_GROUP;
	mg_pool_for(convert_pool, rows, chunk, convert_task, j);
}

int mg_mat_from_f32_layout(mg_mat *m, const float *w, int rows, int cols, int fmt, int q8_layout, char *err,
                           size_t errlen)
{
	if (mat_alloc(m, rows, cols, fmt, q8_layout, err, errlen))
		return -1;
	struct convert_job j = {.m = m, .w = w};
	convert(&j);
	if (atomic_load(&j.nomem)) {
		mg_mat_free(m);
		snprintf(err, errlen, "out of memory for a %dx%d %s matrix", rows, cols, mg_weights_name(fmt));
		return -1;
	}
	return 0;
}

int mg_mat_from_tensors(mg_mat *m, const st_tensor *const *t, int n, int fmt, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	for (int i = 0; i < n; i++) {
		const st_tensor *a = t[i];
		if (a->ndim != 2 || a->shape[0] <= 0 || a->shape[1] <= 0 || a->shape[0] > INT32_MAX / n ||
		    a->shape[1] > INT32_MAX || a->shape[0] != t[0]->shape[0] || a->shape[1] != t[0]->shape[1]) {
			snprintf(err, errlen, "%s: tensor '%s' must be a non-empty 2-D matrix%s", a->file, a->name,
			         i ? " of the shape of the ones stacked with it" : "");
			return -1;
		}
		if (!st_dtype_is_float(a->dtype)) {
			snprintf(err, errlen, "%s: tensor '%s' has dtype %s, which cannot be used as floating point",
			         a->file, a->name, st_dtype_name(a->dtype));
			return -1;
		}
	}
	int part = (int)t[0]->shape[0], cols = (int)t[0]->shape[1];
	if (mat_alloc(m, part * n, cols, fmt, mg_q8_layout_for(mg_kernels_active()), err, errlen)) {
		char why[256];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "%s: tensor '%s': %s", t[0]->file, t[0]->name, why);
		return -1;
	}
	struct convert_job j = {.m = m, .t = t, .n = n, .part = part};
	convert(&j);
	int bad = atomic_load(&j.bad);
	if (bad || atomic_load(&j.nomem)) {
		const st_tensor *a = t[bad ? bad - 1 : 0];
		mg_mat_free(m);
		if (bad)
			snprintf(err, errlen, "%s: tensor '%s' holds NaN or infinite values", a->file, a->name);
		else
			snprintf(err, errlen, "%s: out of memory converting '%s'", a->file, a->name);
		return -1;
	}
	return 0;
}

int mg_mat_from_tensor(mg_mat *m, const st_tensor *t, int fmt, char *err, size_t errlen)
{
	return mg_mat_from_tensors(m, &t, 1, fmt, err, errlen);
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
