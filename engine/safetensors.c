/* safetensors.c - the safetensors container: mmap, validate, look up.
 *
 * A set holds one or more mapped files (sharded checkpoints) and a sorted
 * index of their tensors. Every header is validated before anything is used:
 * the header length within the file and at most 100 MB, well-formed JSON,
 * known dtypes, shape x dtype size equal to the data_offsets span, spans
 * inside the data section and not overlapping. Nothing outside the mapping is
 * ever read. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/errf.h"
#include "engine/safetensors.h"

#define ST_MAX_HEADER (100u * 1000u * 1000u)

struct st_file {
	char *path;
	uint8_t *map;
	size_t size;
};

struct st_set {
	struct st_file *files;
	int n_files;
	st_tensor *tensors;
	size_t n_tensors, cap_tensors;
	int sorted;
	void **owned; /* in-memory tensors' data */
	size_t n_owned;
};

static const struct {
	const char *name;
	st_dtype dt;
	size_t size;
} dtypes[] = {
	{"F64", ST_F64, 8}, {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2},
	{"I64", ST_I64, 8}, {"I32", ST_I32, 4}, {"I16", ST_I16, 2}, {"I8", ST_I8, 1},
	{"U64", ST_U64, 8}, {"U32", ST_U32, 4}, {"U16", ST_U16, 2}, {"U8", ST_U8, 1},
	{"BOOL", ST_BOOL, 1}, {"F8_E4M3", ST_F8_E4M3, 1}, {"F8_E5M2", ST_F8_E5M2, 1},
};

size_t st_dtype_size(st_dtype dt)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (dtypes[i].dt == dt)
			return dtypes[i].size;
	return 0;
}

int st_dtype_is_float(st_dtype dt)
{
	return dt == ST_F32 || dt == ST_F16 || dt == ST_BF16 || dt == ST_F64;
}

const char *st_dtype_name(st_dtype dt)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (dtypes[i].dt == dt)
			return dtypes[i].name;
	return "?";
}

static int dtype_from_name(const char *s, st_dtype *dt)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (!strcmp(dtypes[i].name, s)) {
			*dt = dtypes[i].dt;
			return 0;
		}
	return -1;
}

static int push_tensor(st_set *s, const st_tensor *t)
{
	if (s->n_tensors == s->cap_tensors) {
		size_t cap = s->cap_tensors ? 2 * s->cap_tensors : 256;
		st_tensor *nt = realloc(s->tensors, cap * sizeof *nt);
		if (!nt)
			return -1;
		s->tensors = nt;
		s->cap_tensors = cap;
	}
	s->tensors[s->n_tensors++] = *t;
	s->sorted = 0;
	return 0;
}

/* Element count with overflow checks; -1 when the product overflows. */
static int64_t shape_numel(const int64_t *shape, int ndim)
{
	int64_t n = 1;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return -1;
		if (shape[i] && n > INT64_MAX / shape[i])
			return -1;
		n *= shape[i];
	}
	return n;
}

struct span {
	uint64_t begin, end;
	const char *name;
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static int json_u64(json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* Parses and validates one mapped file's header; appends its tensors. */
static int parse_file(st_set *s, struct st_file *f, char *err, size_t errlen)
{
	if (f->size < 8)
		return mg_errf(err, errlen, "%s: too short for a safetensors file (%zu bytes)", f->path, f->size);
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | f->map[i];
	if (n > ST_MAX_HEADER)
		return mg_errf(err, errlen, "%s: header length %llu exceeds the 100 MB limit", f->path, (unsigned long long)n);
	if (n < 2 || n > f->size - 8)
		return mg_errf(err, errlen, "%s: header length %llu does not fit in the file (%zu bytes)",
		              f->path, (unsigned long long)n, f->size);
	json_error_t je;
	json_t *root = json_loadb((const char *)f->map + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return mg_errf(err, errlen, "%s: header is not valid JSON (%s at byte %d)", f->path, je.text, je.position);
	if (!json_is_object(root)) {
		json_decref(root);
		return mg_errf(err, errlen, "%s: header is not a JSON object", f->path);
	}
	const uint8_t *data = f->map + 8 + n;
	uint64_t data_len = f->size - 8 - n;
	size_t count = json_object_size(root);
	struct span *spans = calloc(count ? count : 1, sizeof *spans);
	size_t n_spans = 0;
	int rc = -1;
	const char *key;
	json_t *val;
	if (!spans) {
		mg_errf(err, errlen, "%s: out of memory", f->path);
		goto out;
	}
	json_object_foreach(root, key, val) {
		if (!strcmp(key, "__metadata__"))
			continue;
		st_tensor t = {0};
		t.file = f->path;
		if (!json_is_object(val)) {
			mg_errf(err, errlen, "%s: tensor '%s': entry is not an object", f->path, key);
			goto out;
		}
		json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"),
		       *jo = json_object_get(val, "data_offsets");
		if (!json_is_string(jd) || dtype_from_name(json_string_value(jd), &t.dtype)) {
			mg_errf(err, errlen, "%s: tensor '%s': unknown dtype %s", f->path, key,
			       json_is_string(jd) ? json_string_value(jd) : "(missing)");
			goto out;
		}
		if (!json_is_array(js) || json_array_size(js) > ST_MAX_DIMS) {
			mg_errf(err, errlen, "%s: tensor '%s': shape must be an array of at most %d sizes", f->path, key, ST_MAX_DIMS);
			goto out;
		}
		t.ndim = (int)json_array_size(js);
		for (int i = 0; i < t.ndim; i++) {
			json_t *d = json_array_get(js, (size_t)i);
			if (!json_is_integer(d) || json_integer_value(d) < 0) {
				mg_errf(err, errlen, "%s: tensor '%s': shape entry %d is not a non-negative integer", f->path, key, i);
				goto out;
			}
			t.shape[i] = json_integer_value(d);
		}
		t.numel = shape_numel(t.shape, t.ndim);
		uint64_t b, e;
		if (!json_is_array(jo) || json_array_size(jo) != 2 || json_u64(json_array_get(jo, 0), &b) ||
		    json_u64(json_array_get(jo, 1), &e)) {
			mg_errf(err, errlen, "%s: tensor '%s': data_offsets must be two non-negative integers", f->path, key);
			goto out;
		}
		if (b > e || e > data_len) {
			mg_errf(err, errlen, "%s: tensor '%s': data_offsets [%llu, %llu] lie outside the data section (%llu bytes)",
			       f->path, key, (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_len);
			goto out;
		}
		size_t es = st_dtype_size(t.dtype);
		if (t.numel < 0 || (uint64_t)t.numel > UINT64_MAX / es) {
			mg_errf(err, errlen, "%s: tensor '%s': shape has too many elements", f->path, key);
			goto out;
		}
		if ((uint64_t)t.numel * es != e - b) {
			mg_errf(err, errlen,
			       "%s: tensor '%s': shape and dtype %s need %llu bytes but data_offsets [%llu, %llu] span %llu",
			       f->path, key, st_dtype_name(t.dtype), (unsigned long long)((uint64_t)t.numel * es),
			       (unsigned long long)b, (unsigned long long)e, (unsigned long long)(e - b));
			goto out;
		}
		t.data = data + b;
		t.nbytes = (size_t)(e - b);
		t.name = strdup(key);
		if (!t.name || push_tensor(s, &t)) {
			free((char *)t.name);
			mg_errf(err, errlen, "%s: out of memory", f->path);
			goto out;
		}
		spans[n_spans++] = (struct span){b, e, t.name};
	}
	/* Sorted by start, each non-empty span must begin at or after the
	 * furthest end reached so far (not only the previous span's end). */
	qsort(spans, n_spans, sizeof *spans, cmp_span);
	uint64_t reach = 0;
	const char *reach_name = NULL;
	for (size_t i = 0; i < n_spans; i++) {
		if (spans[i].end == spans[i].begin)
			continue;
		if (reach_name && spans[i].begin < reach) {
			mg_errf(err, errlen, "%s: tensors '%s' and '%s' overlap in the data section", f->path, reach_name,
			       spans[i].name);
			goto out;
		}
		reach = spans[i].end;
		reach_name = spans[i].name;
	}
	rc = 0;
out:
	free(spans);
	json_decref(root);
	return rc;
}

static int map_file(struct st_file *f, const char *path, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	f->path = strdup(path);
	if (!f->path)
		return mg_errf(err, errlen, "%s: out of memory", path);
	/* O_NONBLOCK: a FIFO in place of a weights file must not hang the open. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return mg_errf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return mg_errf(err, errlen, "%s: not a regular file", path);
	}
	if (sb.st_size == 0) {
		close(fd);
		return mg_errf(err, errlen, "%s: empty file", path);
	}
	f->size = (size_t)sb.st_size;
	void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		f->size = 0;
		return mg_errf(err, errlen, "%s: cannot map (%s)", path, strerror(errno));
	}
	f->map = m;
	return 0;
}

static int cmp_tensor(const void *a, const void *b)
{
	return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int finish(st_set *s, char *err, size_t errlen)
{
	qsort(s->tensors, s->n_tensors, sizeof *s->tensors, cmp_tensor);
	s->sorted = 1;
	for (size_t i = 1; i < s->n_tensors; i++)
		if (!strcmp(s->tensors[i].name, s->tensors[i - 1].name))
			return mg_errf(err, errlen, "tensor '%s' appears twice (%s and %s)", s->tensors[i].name,
			              s->tensors[i - 1].file, s->tensors[i].file);
	return 0;
}

static int add_file(st_set *s, const char *path, char *err, size_t errlen)
{
	struct st_file *nf = realloc(s->files, (size_t)(s->n_files + 1) * sizeof *nf);
	if (!nf)
		return mg_errf(err, errlen, "%s: out of memory", path);
	s->files = nf;
	struct st_file *f = &s->files[s->n_files++];
	if (map_file(f, path, err, errlen))
		return -1;
	return parse_file(s, f, err, errlen);
}

static int open_index(st_set *s, const char *index_path, char *err, size_t errlen)
{
	json_error_t je;
	struct stat sb;
	if (stat(index_path, &sb) != 0)
		return mg_errf(err, errlen, "%s: %s", index_path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return mg_errf(err, errlen, "%s: not a regular file", index_path);
	if (sb.st_size > (off_t)ST_MAX_HEADER)
		return mg_errf(err, errlen, "%s: larger than the 100 MB limit", index_path);
	json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return mg_errf(err, errlen, "%s: not valid JSON (%s, line %d)", index_path, je.text, je.line);
	json_t *wm = json_object_get(root, "weight_map");
	int rc = -1;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", index_path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof dir, ".");
	if (!json_is_object(wm) || json_object_size(wm) == 0) {
		mg_errf(err, errlen, "%s: missing or empty \"weight_map\"", index_path);
		goto out;
	}
	/* Collect the distinct shard names in first-seen order. */
	const char *key;
	json_t *val;
	const char **shards = calloc(json_object_size(wm), sizeof *shards);
	size_t n_shards = 0;
	if (!shards) {
		mg_errf(err, errlen, "%s: out of memory", index_path);
		goto out;
	}
	json_object_foreach(wm, key, val) {
		if (!json_is_string(val)) {
			mg_errf(err, errlen, "%s: weight_map entry '%s' is not a file name", index_path, key);
			free(shards);
			goto out;
		}
		const char *fn = json_string_value(val);
		if (strchr(fn, '/') || !strcmp(fn, "..") || !*fn) {
			mg_errf(err, errlen, "%s: weight_map entry '%s' names an invalid shard '%s'", index_path, key, fn);
			free(shards);
			goto out;
		}
		size_t i;
		for (i = 0; i < n_shards; i++)
			if (!strcmp(shards[i], fn))
				break;
		if (i == n_shards)
			shards[n_shards++] = fn;
	}
	for (size_t i = 0; i < n_shards; i++) {
		char p[PATH_MAX + 256];
		snprintf(p, sizeof p, "%s/%s", dir, shards[i]);
		if (add_file(s, p, err, errlen)) {
			free(shards);
			goto out;
		}
	}
	free(shards);
	if (finish(s, err, errlen))
		goto out;
	/* Every tensor the index names must be in the shard it names. */
	json_object_foreach(wm, key, val) {
		const st_tensor *t = st_find(s, key);
		const char *shard = json_string_value(val);
		if (!t) {
			mg_errf(err, errlen, "%s: tensor '%s' is listed in the index but missing from %s", index_path, key,
			       shard);
			goto out;
		}
		const char *base = strrchr(t->file, '/');
		base = base ? base + 1 : t->file;
		if (strcmp(base, shard)) {
			mg_errf(err, errlen, "%s: tensor '%s' is listed in %s but found in %s", index_path, key, shard, t->file);
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int st_open(st_set **out, const char *path, char *err, size_t errlen)
{
	*out = NULL;
	st_set *s = st_new_memory();
	if (!s)
		return mg_errf(err, errlen, "%s: out of memory", path);
	struct stat sb;
	int rc;
	if (stat(path, &sb) != 0) {
		st_close(s);
		return mg_errf(err, errlen, "%s: %s", path, strerror(errno));
	}
	if (S_ISDIR(sb.st_mode)) {
		char p[PATH_MAX + 64];
		snprintf(p, sizeof p, "%s/model.safetensors", path);
		if (access(p, F_OK) == 0) {
			rc = add_file(s, p, err, errlen);
			if (!rc)
				rc = finish(s, err, errlen);
		} else {
			snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
			if (access(p, F_OK) == 0)
				rc = open_index(s, p, err, errlen);
			else
				rc = mg_errf(err, errlen, "%s: no model.safetensors or model.safetensors.index.json", path);
		}
	} else {
		size_t len = strlen(path);
		if (len > 5 && !strcmp(path + len - 5, ".json"))
			rc = open_index(s, path, err, errlen);
		else {
			rc = add_file(s, path, err, errlen);
			if (!rc)
				rc = finish(s, err, errlen);
		}
	}
	if (rc) {
		st_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

void st_release(const st_set *s, const st_tensor *t)
{
	if (!s || !t || !t->nbytes)
		return;
	for (int i = 0; i < s->n_files; i++) {
		const struct st_file *f = &s->files[i];
		if (!f->map || t->data < f->map || t->data + t->nbytes > f->map + f->size)
			continue;
		long pg = sysconf(_SC_PAGESIZE);
		uintptr_t ps = pg > 0 ? (uintptr_t)pg : 4096;
		uintptr_t b = ((uintptr_t)t->data + ps - 1) / ps * ps, e = ((uintptr_t)t->data + t->nbytes) / ps * ps;
		if (e > b)
			madvise((void *)b, e - b, MADV_DONTNEED);
		return;
	}
}

st_set *st_new_memory(void)
{
	return calloc(1, sizeof(st_set));
}

int st_add_owned(st_set *s, const char *name, st_dtype dt, int ndim, const int64_t *shape, void *data)
{
	st_tensor t = {0};
	if (ndim < 0 || ndim > ST_MAX_DIMS)
		return -1;
	t.dtype = dt;
	t.ndim = ndim;
	memcpy(t.shape, shape, (size_t)ndim * sizeof *shape);
	t.numel = shape_numel(shape, ndim);
	if (t.numel < 0)
		return -1;
	t.nbytes = (size_t)t.numel * st_dtype_size(dt);
	t.data = data;
	t.file = "(memory)";
	void **no = realloc(s->owned, (s->n_owned + 1) * sizeof *no);
	if (!no)
		return -1;
	s->owned = no;
	s->owned[s->n_owned++] = data;
	t.name = strdup(name);
	if (!t.name || push_tensor(s, &t)) {
		free((char *)t.name);
		return -1;
	}
	return 0;
}

void st_close(st_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_tensors; i++)
		free((char *)s->tensors[i].name);
	free(s->tensors);
	for (int i = 0; i < s->n_files; i++) {
		if (s->files[i].map)
			munmap(s->files[i].map, s->files[i].size);
		free(s->files[i].path);
	}
	free(s->files);
	for (size_t i = 0; i < s->n_owned; i++)
		free(s->owned[i]);
	free(s->owned);
	free(s);
}

const st_tensor *st_find(const st_set *s, const char *name)
{
	if (!s->sorted) {
		/* In-memory sets are sorted lazily; the cast is the one place a
		 * lookup reorders the index (the contents do not change). */
		st_set *w = (st_set *)s;
		qsort(w->tensors, w->n_tensors, sizeof *w->tensors, cmp_tensor);
		w->sorted = 1;
	}
	st_tensor key = {.name = name};
	return bsearch(&key, s->tensors, s->n_tensors, sizeof *s->tensors, cmp_tensor);
}

size_t st_count(const st_set *s)
{
	return s->n_tensors;
}

const st_tensor *st_at(const st_set *s, size_t i)
{
	return i < s->n_tensors ? &s->tensors[i] : NULL;
}

float st_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	if (exp == 0) {
		if (man == 0)
			bits = sign;
		else { /* subnormal: normalise */
			int e = -1;
			do {
				e++;
				man <<= 1;
			} while (!(man & 0x400));
			bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
		}
	} else if (exp == 31)
		bits = sign | 0x7f800000u | (man << 13);
	else
		bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
	float f;
	memcpy(&f, &bits, 4);
	return f;
}

uint16_t st_f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint32_t sign = (x >> 16) & 0x8000;
	uint32_t absx = x & 0x7fffffffu;
	if (absx >= 0x7f800000u) /* inf or NaN */
		return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
	if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
		return (uint16_t)(sign | 0x7c00);
	if (absx < 0x38800000u) { /* subnormal half or zero */
		if (absx < 0x33000000u)
			return (uint16_t)sign;
		/* value = m * 2^(e - 150); a half subnormal counts units of 2^-24 */
		uint32_t e = absx >> 23, m = (absx & 0x7fffff) | 0x800000;
		uint32_t shift = 126 - e; /* 14 .. 24 */
		uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
		if (rem > half || (rem == half && (r & 1)))
			r++;
		return (uint16_t)(sign | r);
	}
	uint32_t r = absx - 0x38000000u; /* rebias 127 -> 15 */
	uint32_t h = r >> 13, rem = r & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
		h++;
	return (uint16_t)(sign | h);
}

/* n halves at p (any alignment) to floats, st_f16_to_f32's values, four
 * at a time: normal numbers and infinities / NaN by moving their bits,
 * subnormals (and zeros) as their integer times 2^-24, which is exact. */
typedef uint16_t v4h __attribute__((vector_size(4 * sizeof(uint16_t))));
typedef uint32_t v4u __attribute__((vector_size(4 * sizeof(uint32_t))));
typedef int32_t v4s __attribute__((vector_size(4 * sizeof(int32_t))));
typedef float v4f __attribute__((vector_size(4 * sizeof(float))));

static void halves_to_f32(const uint8_t *p, float *dst, int64_t n)
{
	const v4u mag = {0x7fff, 0x7fff, 0x7fff, 0x7fff}, inf = {0x7c00, 0x7c00, 0x7c00, 0x7c00},
	          norm = {0x400, 0x400, 0x400, 0x400}, bias = {112u << 23, 112u << 23, 112u << 23, 112u << 23},
	          special = {224u << 23, 224u << 23, 224u << 23, 224u << 23};
	const v4f tiny = {0x1p-24f, 0x1p-24f, 0x1p-24f, 0x1p-24f};
	int64_t i = 0;
	for (; i + 4 <= n; i += 4) {
		v4h h;
		memcpy(&h, p + 2 * i, sizeof h);
		v4u x = __builtin_convertvector(h, v4u), em = x & mag;
		v4u sign = (x ^ em) << 16;
		v4u moved = (em << 13) + ((v4u)(em >= inf) & special) + ((v4u)(em < inf) & bias);
		/* em < 2^15: exact as a signed integer and as a float */
		v4u sub = (v4u)(__builtin_convertvector((v4s)em, v4f) * tiny);
		v4u is_norm = (v4u)(em >= norm);
		v4u bits = sign | (is_norm & moved) | (~is_norm & sub);
		memcpy(dst + i, &bits, sizeof bits);
	}
	for (; i < n; i++) {
		uint16_t h;
		memcpy(&h, p + 2 * i, 2);
		dst[i] = st_f16_to_f32(h);
	}
}

int st_to_f32(const st_tensor *t, float *dst, char *err, size_t errlen)
{
	const uint8_t *p = t->data;
	int64_t n = t->numel;
	switch (t->dtype) {
	case ST_F32:
		memcpy(dst, p, (size_t)n * 4);
		return 0;
	case ST_F16:
		halves_to_f32(p, dst, n);
		return 0;
	case ST_BF16:
		for (int64_t i = 0; i < n; i++) {
			uint16_t h;
			memcpy(&h, p + 2 * i, 2);
			uint32_t bits = (uint32_t)h << 16;
			memcpy(&dst[i], &bits, 4);
		}
		return 0;
	case ST_F64:
		for (int64_t i = 0; i < n; i++) {
			double d;
			memcpy(&d, p + 8 * i, 8);
			dst[i] = (float)d;
		}
		return 0;
	default:
		return mg_errf(err, errlen, "%s: tensor '%s' has dtype %s, which cannot be used as floating point",
		              t->file, t->name, st_dtype_name(t->dtype));
	}
}

int st_check_finite(const st_tensor *t, char *err, size_t errlen)
{
	const uint8_t *p = t->data;
	int64_t bad = -1;
	switch (t->dtype) {
	case ST_F32:
		for (int64_t i = 0; i < t->numel && bad < 0; i++) {
			uint32_t x;
			memcpy(&x, p + 4 * i, 4);
			if ((x & 0x7f800000u) == 0x7f800000u)
				bad = i;
		}
		break;
	case ST_F16:
	case ST_BF16: {
		uint16_t mask = t->dtype == ST_F16 ? 0x7c00 : 0x7f80;
		for (int64_t i = 0; i < t->numel && bad < 0; i++) {
			uint16_t h;
			memcpy(&h, p + 2 * i, 2);
			if ((h & mask) == mask)
				bad = i;
		}
		break;
	}
	case ST_F64:
		for (int64_t i = 0; i < t->numel && bad < 0; i++) {
			uint64_t x;
			memcpy(&x, p + 8 * i, 8);
			if ((x & 0x7ff0000000000000ull) == 0x7ff0000000000000ull)
				bad = i;
		}
		break;
	default:
		break;
	}
	if (bad >= 0)
		return mg_errf(err, errlen, "%s: tensor '%s' holds NaN or infinite values (element %lld)", t->file, t->name,
		              (long long)bad);
	return 0;
}
