/* test_safetensors.c - the safetensors container: valid files, sharded
 * checkpoints, every kind of malformed header, and the float conversions. */
#include "autoconfig.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/safetensors.h"
#include "tests/tap.h"

static char tmpdir[256];

static const char *tpath(const char *name)
{
	static char buf[8][512];
	static int slot;
	char *p = buf[slot++ % 8];
	snprintf(p, 512, "%s/%s", tmpdir, name);
	return p;
}

#define HLEN_AUTO UINT64_MAX

/* Writes an 8-byte length (len, or the header's length for HLEN_AUTO), the
 * header text and the data bytes. */
static const char *write_raw(const char *name, uint64_t len, const char *header, const void *data, size_t n)
{
	const char *p = tpath(name);
	FILE *f = fopen(p, "wb");
	if (len == HLEN_AUTO)
		len = strlen(header);
	uint8_t le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(len >> (8 * i));
	fwrite(le, 1, 8, f);
	fwrite(header, 1, strlen(header), f);
	if (n)
		fwrite(data, 1, n, f);
	fclose(f);
	return p;
}

/* Opens path and expects failure with an error containing every needle. */
static void expect_fail(const char *what, const char *path, const char *needle1, const char *needle2)
{
	st_set *s = NULL;
	char err[512] = "";
	int rc = st_open(&s, path, err, sizeof err);
	int ok = rc != 0 && s == NULL && strstr(err, needle1) && (!needle2 || strstr(err, needle2));
	tap_ok(ok, "%s: rejected with '%s'", what, err);
	st_close(s);
}

static float data24[6] = {1, 2, 3, 4, 5, 6};

static void test_valid_small(void)
{
	/* Two tensors, header padded with spaces, a metadata entry, a scalar. */
	uint8_t data[24 + 8 + 4];
	memcpy(data, data24, 24);
	uint16_t h[4] = {0x3c00, 0xc000, 0x0001, 0x7c00}; /* 1, -2, 2^-24, inf */
	memcpy(data + 24, h, 8);
	float sc = 7.5f;
	memcpy(data + 32, &sc, 4);
	const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
	                  "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
	                  "\"a\":{\"shape\":[2,3],\"dtype\":\"F32\",\"data_offsets\":[0,24]},"
	                  "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[32,36]}}     ";
	const char *p = write_raw("valid.safetensors", HLEN_AUTO, hdr, data, sizeof data);
	st_set *s;
	char err[512] = "";
	int rc = st_open(&s, p, err, sizeof err);
	tap_ok(rc == 0, "a small valid file opens (%s)", err);
	if (rc)
		return;
	const st_tensor *a = st_find(s, "a"), *b = st_find(s, "b"), *c = st_find(s, "s");
	tap_ok(st_count(s) == 3 && a && b && c && !st_find(s, "__metadata__") && !st_find(s, "zz"),
	       "three tensors, metadata skipped, lookups by name");
	tap_ok(a && a->dtype == ST_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->numel == 6 &&
	           a->nbytes == 24 && !memcmp(a->data, data24, 24),
	       "F32 [2, 3]: dtype, shape, bytes");
	float f[6];
	tap_ok(b && st_to_f32(b, f, err, sizeof err) == 0 && f[0] == 1.0f && f[1] == -2.0f && f[2] == ldexpf(1, -24) &&
	           isinf(f[3]) && f[3] > 0,
	       "F16 [4] converts: 1, -2, 2^-24, inf");
	tap_ok(c && c->ndim == 0 && c->numel == 1 && st_to_f32(c, f, err, sizeof err) == 0 && f[0] == 7.5f,
	       "a scalar (shape []) has one element");
	st_close(s);
}

static void test_malformed(void)
{
	char path[600];
	/* empty file */
	snprintf(path, sizeof path, "%s", tpath("empty.safetensors"));
	fclose(fopen(path, "wb"));
	expect_fail("empty file", path, "empty.safetensors", "empty");

	/* shorter than the length prefix */
	FILE *f = fopen(tpath("short.safetensors"), "wb");
	fwrite("\x10\0\0", 1, 3, f);
	fclose(f);
	expect_fail("3-byte file", tpath("short.safetensors"), "short.safetensors", "too short");

	/* truncated: a valid file cut inside its data, and inside its header */
	const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
	write_raw("trunc_data.safetensors", HLEN_AUTO, hdr, data24, 12);
	expect_fail("truncated in the data", tpath("trunc_data.safetensors"), "trunc_data.safetensors", "'a'");
	write_raw("trunc_hdr.safetensors", strlen(hdr), "{\"a\":{\"dtype\":\"F3", NULL, 0);
	expect_fail("truncated in the header", tpath("trunc_hdr.safetensors"), "trunc_hdr.safetensors",
	            "does not fit");

	/* absurd header lengths */
	write_raw("huge_hdr.safetensors", 1ULL << 40, hdr, data24, 24);
	expect_fail("header length 2^40", tpath("huge_hdr.safetensors"), "huge_hdr.safetensors", "100 MB");
	write_raw("max_hdr.safetensors", UINT64_MAX - 1, hdr, data24, 24);
	expect_fail("header length 2^64-2", tpath("max_hdr.safetensors"), "max_hdr.safetensors", "100 MB");
	write_raw("zero_hdr.safetensors", 0, "", NULL, 0);
	expect_fail("header length 0", tpath("zero_hdr.safetensors"), "zero_hdr.safetensors", "header length");

	/* broken JSON */
	write_raw("badjson.safetensors", HLEN_AUTO, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],", NULL, 0);
	expect_fail("broken JSON header", tpath("badjson.safetensors"), "badjson.safetensors", "JSON");
	write_raw("array.safetensors", HLEN_AUTO, "[1, 2, 3]", NULL, 0);
	expect_fail("header not an object", tpath("array.safetensors"), "array.safetensors", "object");
	write_raw("dupkey.safetensors", HLEN_AUTO,
	          "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	          "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
	          data24, 8);
	expect_fail("duplicate tensor name in one header", tpath("dupkey.safetensors"), "dupkey.safetensors", "JSON");
	write_raw("garbage.safetensors", HLEN_AUTO, "\x01\x02\x03 not json at all", data24, 24);
	expect_fail("garbage header", tpath("garbage.safetensors"), "garbage.safetensors", "JSON");

	/* offsets past the end of the data section */
	write_raw("past.safetensors", HLEN_AUTO, "{\"a\":{\"dtype\":\"F32\",\"shape\":[250],\"data_offsets\":[0,1000]}}",
	          data24, 24);
	expect_fail("offsets past the end", tpath("past.safetensors"), "'a'", "outside the data section");
	write_raw("rev.safetensors", HLEN_AUTO, "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,8]}}", data24,
	          24);
	expect_fail("begin after end", tpath("rev.safetensors"), "'a'", "data_offsets");
	write_raw("negoff.safetensors", HLEN_AUTO, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}",
	          data24, 24);
	expect_fail("negative offset", tpath("negoff.safetensors"), "'a'", "data_offsets");
	write_raw("arity.safetensors", HLEN_AUTO, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", data24,
	          24);
	expect_fail("one data offset", tpath("arity.safetensors"), "'a'", "data_offsets");

	/* shape / offsets mismatch */
	write_raw("mismatch.safetensors", HLEN_AUTO, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}",
	          data24, 24);
	expect_fail("shape/offset mismatch", tpath("mismatch.safetensors"), "'w'", "need 24 bytes");
	write_raw("f16size.safetensors", HLEN_AUTO, "{\"w\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,24]}}",
	          data24, 24);
	expect_fail("dtype size mismatch (F16 over 24 bytes)", tpath("f16size.safetensors"), "'w'", "F16");
	write_raw("bigshape.safetensors", HLEN_AUTO,
	          "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,24]}}", data24, 24);
	expect_fail("shape product overflows", tpath("bigshape.safetensors"), "'w'", "too many");
	write_raw("negshape.safetensors", HLEN_AUTO, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2,3],\"data_offsets\":[0,24]}}",
	          data24, 24);
	expect_fail("negative shape entry", tpath("negshape.safetensors"), "'w'", "shape");
	write_raw("strshape.safetensors", HLEN_AUTO, "{\"w\":{\"dtype\":\"F32\",\"shape\":\"6\",\"data_offsets\":[0,24]}}",
	          data24, 24);
	expect_fail("shape not an array", tpath("strshape.safetensors"), "'w'", "shape");
	write_raw("ndim.safetensors", HLEN_AUTO,
	          "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", data24, 24);
	expect_fail("more than 8 dimensions", tpath("ndim.safetensors"), "'w'", "shape");

	/* unknown or missing dtype */
	write_raw("dtype.safetensors", HLEN_AUTO, "{\"w\":{\"dtype\":\"F17\",\"shape\":[6],\"data_offsets\":[0,24]}}",
	          data24, 24);
	expect_fail("unknown dtype", tpath("dtype.safetensors"), "'w'", "F17");
	write_raw("nodtype.safetensors", HLEN_AUTO, "{\"w\":{\"shape\":[6],\"data_offsets\":[0,24]}}", data24, 24);
	expect_fail("missing dtype", tpath("nodtype.safetensors"), "'w'", "dtype");
	write_raw("notobj.safetensors", HLEN_AUTO, "{\"w\":[1,2,3]}", data24, 24);
	expect_fail("tensor entry not an object", tpath("notobj.safetensors"), "'w'", "object");

	/* overlapping spans */
	write_raw("overlap.safetensors", HLEN_AUTO,
	          "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	          "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
	          data24, 24);
	expect_fail("overlapping spans", tpath("overlap.safetensors"), "'a'", "'b'");
	/* a long span covering a later one, with an empty tensor between */
	write_raw("overlap2.safetensors", HLEN_AUTO,
	          "{\"big\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]},"
	          "\"empty\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
	          "\"inner\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
	          data24, 24);
	expect_fail("a span inside an earlier long one", tpath("overlap2.safetensors"), "'big'", "'inner'");
	write_raw("same.safetensors", HLEN_AUTO,
	          "{\"a\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]},"
	          "\"b\":{\"dtype\":\"I32\",\"shape\":[6],\"data_offsets\":[0,24]}}",
	          data24, 24);
	expect_fail("two tensors on the same bytes", tpath("same.safetensors"), "overlap", NULL);

	/* not a file / missing */
	expect_fail("missing file", tpath("nope.safetensors"), "nope.safetensors", NULL);
	mkdir(tpath("emptydir"), 0700);
	expect_fail("directory without weights", tpath("emptydir"), "emptydir", "model.safetensors");
	mkdir(tpath("dirweights"), 0700);
	mkdir(tpath("dirweights/model.safetensors"), 0700);
	expect_fail("model.safetensors is a directory", tpath("dirweights"), "model.safetensors", "regular");
	if (mkfifo(tpath("fifo.safetensors"), 0600) == 0)
		expect_fail("a FIFO (no hang)", tpath("fifo.safetensors"), "fifo.safetensors", "regular");
	else
		tap_skip("cannot make a FIFO here");
}

/* A file that ends exactly on a page boundary: the last tensor ends at the
 * last byte; one byte more in the header is refused (no read past the map). */
static void test_page_end(void)
{
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0 || page > 1 << 20)
		page = 4096;
	char hdr[256];
	size_t data_len = 0;
	for (int pass = 0; pass < 2; pass++) {
		/* header: pad with spaces so that 8 + header + data = page */
		size_t hl = 128;
		data_len = (size_t)page - 8 - hl;
		data_len -= data_len % 4;
		hl = (size_t)page - 8 - data_len;
		int n = snprintf(hdr, sizeof hdr, "{\"t\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}",
		                 data_len / 4 + (size_t)pass, data_len + 4 * (size_t)pass);
		memset(hdr + n, ' ', hl - (size_t)n);
		hdr[hl] = 0;
		float *d = calloc(data_len / 4, 4);
		for (size_t i = 0; i < data_len / 4; i++)
			d[i] = (float)i;
		write_raw("page.safetensors", HLEN_AUTO, hdr, d, data_len);
		free(d);
		st_set *s = NULL;
		char err[512] = "";
		int rc = st_open(&s, tpath("page.safetensors"), err, sizeof err);
		if (pass == 0) {
			const st_tensor *t = rc ? NULL : st_find(s, "t");
			float *out = t ? malloc(data_len) : NULL;
			tap_ok(t && out && st_to_f32(t, out, err, sizeof err) == 0 &&
			           out[data_len / 4 - 1] == (float)(data_len / 4 - 1),
			       "a tensor ending on the last byte of a page-sized file reads whole");
			free(out);
		} else
			tap_ok(rc != 0 && strstr(err, "outside"), "one element past the page end is refused (%s)", err);
		st_close(s);
	}
}

/* ---- sharded checkpoints built from tiny-a's tensors ---- */

/* Writes the tensors [from, to) of src into a safetensors file, names with
 * an optional prefix; the header is padded to a multiple of 8. */
static int write_shard(const st_set *src, size_t from, size_t to, const char *path, const char *extra_name)
{
	json_t *h = json_object();
	json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
	size_t off = 0;
	for (size_t i = from; i < to; i++) {
		const st_tensor *t = st_at(src, i);
		json_t *shape = json_array();
		for (int d = 0; d < t->ndim; d++)
			json_array_append_new(shape, json_integer(t->shape[d]));
		json_object_set_new(h, extra_name && i == from ? extra_name : t->name,
		                    json_pack("{s:s,s:o,s:[I,I]}", "dtype", st_dtype_name(t->dtype), "shape", shape, "data_offsets",
		                              (json_int_t)off, (json_int_t)(off + t->nbytes)));
		off += t->nbytes;
	}
	char *text = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	size_t hl = strlen(text), padded = (hl + 7) / 8 * 8;
	FILE *f = fopen(path, "wb");
	if (!f) {
		free(text);
		return -1;
	}
	uint8_t le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)((uint64_t)padded >> (8 * i));
	fwrite(le, 1, 8, f);
	fwrite(text, 1, hl, f);
	for (size_t i = hl; i < padded; i++)
		fputc(' ', f);
	for (size_t i = from; i < to; i++)
		fwrite(st_at(src, i)->data, 1, st_at(src, i)->nbytes, f);
	free(text);
	return fclose(f);
}

static void write_index(const char *dir, const st_set *src, size_t split, const char *s1, const char *s2,
                        const char *extra, const char *extra_shard)
{
	json_t *wm = json_object();
	for (size_t i = 0; i < st_count(src); i++)
		json_object_set_new(wm, st_at(src, i)->name, json_string(i < split ? s1 : s2));
	if (extra)
		json_object_set_new(wm, extra, json_string(extra_shard));
	json_t *root = json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)0, "weight_map", wm);
	char p[600];
	snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
	json_dump_file(root, p, JSON_INDENT(2));
	json_decref(root);
}

static void test_sharded(const char *ref)
{
	char path[4200], err[512] = "";
	snprintf(path, sizeof path, "%s/models/tiny-a/model.safetensors", ref);
	st_set *src;
	if (st_open(&src, path, err, sizeof err)) {
		tap_ok(0, "tiny-a opens (%s)", err);
		return;
	}
	size_t n = st_count(src), split = n / 2;
	const st_tensor *lm = st_find(src, "decoder.lm_heads.0.weight");
	tap_ok(n > 100 && lm && lm->dtype == ST_F32 && lm->ndim == 2 && lm->shape[0] == 64 && lm->shape[1] == 64,
	       "tiny-a: %zu tensors, decoder.lm_heads.0.weight F32 [64, 64]", n);

	const char *s1 = "model-00001-of-00002.safetensors", *s2 = "model-00002-of-00002.safetensors";
	mkdir(tpath("sharded"), 0700);
	char a[600], b[600];
	snprintf(a, sizeof a, "%s/%s", tpath("sharded"), s1);
	snprintf(b, sizeof b, "%s/%s", tpath("sharded"), s2);
	int wr = write_shard(src, 0, split, a, NULL) | write_shard(src, split, n, b, NULL);
	write_index(tpath("sharded"), src, split, s1, s2, NULL, NULL);
	st_set *sh = NULL;
	int rc = wr ? -1 : st_open(&sh, tpath("sharded"), err, sizeof err);
	int same = rc == 0 && st_count(sh) == n;
	for (size_t i = 0; same && i < n; i++) {
		const st_tensor *t = st_at(src, i), *u = st_find(sh, t->name);
		same = u && u->dtype == t->dtype && u->ndim == t->ndim && u->nbytes == t->nbytes &&
		       !memcmp(u->shape, t->shape, sizeof t->shape) && !memcmp(u->data, t->data, t->nbytes);
	}
	tap_ok(same, "two shards + index (directory): every tensor of tiny-a, same shape and bytes (%s)", err);
	const st_tensor *u = sh ? st_find(sh, st_at(src, n - 1)->name) : NULL;
	tap_ok(u && strstr(u->file, s2), "a tensor knows the shard it came from");
	st_close(sh);
	sh = NULL;
	char ip[700];
	snprintf(ip, sizeof ip, "%s/model.safetensors.index.json", tpath("sharded"));
	rc = st_open(&sh, ip, err, sizeof err);
	tap_ok(rc == 0 && st_count(sh) == n, "the index file itself opens too");
	st_close(sh);

	/* a tensor listed in the index but missing from its shard */
	write_index(tpath("sharded"), src, split, s1, s2, "decoder.extra.weight", s2);
	expect_fail("index names a tensor missing from its shard", tpath("sharded"), "decoder.extra.weight", s2);
	/* a tensor listed under the wrong shard */
	write_index(tpath("sharded"), src, split, s2, s1, NULL, NULL);
	expect_fail("index puts tensors in the wrong shard", tpath("sharded"), "listed in", NULL);
	/* a shard that does not exist */
	write_index(tpath("sharded"), src, split, s1, "model-00003-of-00002.safetensors", NULL, NULL);
	expect_fail("index names a missing shard", tpath("sharded"), "model-00003-of-00002.safetensors", NULL);
	/* a shard outside the directory */
	write_index(tpath("sharded"), src, split, s1, "../x.safetensors", NULL, NULL);
	expect_fail("index names a shard outside the directory", tpath("sharded"), "../x.safetensors", "invalid");
	/* broken index JSON, no weight_map */
	FILE *f = fopen(ip, "w");
	fputs("{\"weight_map\": {\"a\": ", f);
	fclose(f);
	expect_fail("broken index JSON", tpath("sharded"), "index.json", "JSON");
	f = fopen(ip, "w");
	fputs("{\"metadata\": {}}", f);
	fclose(f);
	expect_fail("index without weight_map", tpath("sharded"), "weight_map", NULL);
	/* the same tensor in two shards */
	write_shard(src, 0, split + 1, a, NULL);
	write_index(tpath("sharded"), src, split, s1, s2, NULL, NULL);
	expect_fail("a tensor stored in two shards", tpath("sharded"), "twice", st_at(src, split)->name);
	/* a truncated shard */
	write_shard(src, 0, split, a, NULL);
	if (truncate(b, 100) == 0)
		expect_fail("a truncated shard", tpath("sharded"), s2, NULL);
	st_close(src);
}

/* ---- conversions ---- */

/* Independent half -> double: the definition of binary16. */
static double half_value(uint16_t h)
{
	int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
	double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
	return s ? -v : v;
}

static void test_f16(void)
{
	int exact = 1, nan_ok = 1, round_trip = 1;
	for (uint32_t h = 0; h < 65536; h++) {
		float f = st_f16_to_f32((uint16_t)h);
		double want = half_value((uint16_t)h);
		if (isnan(want)) {
			uint32_t bits;
			memcpy(&bits, &f, 4);
			nan_ok &= isnan(f) && (bits >> 31) == (h >> 15) && ((bits >> 13) & 0x3ff) == (h & 0x3ff);
			uint16_t back = st_f32_to_f16(f);
			nan_ok &= (back & 0x7c00) == 0x7c00 && (back & 0x3ff) && (back >> 15) == (h >> 15);
			continue;
		}
		exact &= (double)f == want && !signbit(f) == !signbit(want);
		round_trip &= st_f32_to_f16(f) == h;
	}
	tap_ok(exact, "F16 -> F32 exact for all 63488 non-NaN halves (zeros, subnormals, normals, inf)");
	tap_ok(nan_ok, "F16 NaNs stay NaN with sign and payload, and map back to NaN");
	tap_ok(round_trip, "F32 -> F16 round-trips every non-NaN half");
	/* A tensor's bulk conversion (four at a time, any alignment, any tail)
	 * gives st_f16_to_f32's bits for every half, NaN payloads included. */
	int bulk = 1;
	for (int off = 0; off < 2; off++) {
		st_set *s = st_new_memory();
		int64_t n = 65536 - off - 1; /* not a multiple of 4 */
		uint16_t *all = malloc((size_t)n * sizeof *all);
		float *got = malloc((size_t)n * sizeof *got);
		for (int64_t i = 0; i < n; i++)
			all[i] = (uint16_t)(i * 40503u + (unsigned)off); /* every half but one, shuffled */
		st_add_owned(s, "h", ST_F16, 1, &n, all);
		st_tensor t = *st_find(s, "h");
		t.data += 2 * off; /* from an odd half on: unaligned for four */
		t.numel -= off;
		t.nbytes -= 2 * (size_t)off;
		t.shape[0] -= off;
		char err[128];
		bulk &= st_to_f32(&t, got, err, sizeof err) == 0;
		for (int64_t i = 0; bulk && i < t.numel; i++) {
			float want = st_f16_to_f32(all[i + off]);
			bulk &= memcmp(&want, &got[i], 4) == 0;
		}
		free(got);
		st_close(s);
	}
	tap_ok(bulk, "F16 tensors convert to st_f16_to_f32's bits for every half (NaN payloads, odd start and length)");
	tap_ok(st_f16_to_f32(0x0001) == ldexpf(1, -24) && st_f16_to_f32(0x03ff) == ldexpf(1023, -24) &&
	           st_f16_to_f32(0x0200) == ldexpf(1, -15) && st_f16_to_f32(0x8001) == -ldexpf(1, -24),
	       "F16 subnormals: 0x0001 = 2^-24, 0x03ff = 1023 x 2^-24, 0x0200 = 2^-15, 0x8001 = -2^-24");

	/* Round to nearest, ties to even, between every pair of adjacent halves. */
	int rne = 1;
	for (uint32_t h = 0; h < 0x7bff; h++) {
		double lo = half_value((uint16_t)h), hi = half_value((uint16_t)(h + 1));
		float mid = (float)((lo + hi) / 2); /* exact: 12 significant bits */
		uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
		rne &= st_f32_to_f16(mid) == even;
		rne &= st_f32_to_f16(nextafterf(mid, 0)) == h;
		rne &= st_f32_to_f16(nextafterf(mid, INFINITY)) == h + 1;
		rne &= st_f32_to_f16(-mid) == (even | 0x8000);
	}
	tap_ok(rne, "F32 -> F16 rounds to nearest even at every midpoint (and just below/above)");
	tap_ok(st_f32_to_f16(65519.99f) == 0x7bff && st_f32_to_f16(65520.0f) == 0x7c00 &&
	           st_f32_to_f16(1e10f) == 0x7c00 && st_f32_to_f16(-1e10f) == 0xfc00 &&
	           st_f32_to_f16(INFINITY) == 0x7c00 && st_f32_to_f16(ldexpf(1, -25)) == 0 &&
	           st_f32_to_f16(nextafterf(ldexpf(1, -25), 1)) == 1 && st_f32_to_f16(ldexpf(1, -130)) == 0 &&
	           st_f32_to_f16(-0.0f) == 0x8000,
	       "F32 -> F16 overflow to inf at 65520, underflow to 0 at 2^-25, signed zero");
#ifdef __FLT16_MANT_DIG__
	/* The compiler's own conversion as a second opinion, on a spread of floats. */
	int agree = 1;
	uint32_t x = 12345;
	for (int i = 0; i < 200000; i++) {
		x = x * 1664525u + 1013904223u;
		float f;
		uint32_t bits = (x & 0x8fffffffu) | ((x & 1) << 30); /* exponents around the half range */
		memcpy(&f, &bits, 4);
		if (isnan(f))
			continue;
		_Float16 c = (_Float16)f;
		uint16_t hb;
		memcpy(&hb, &c, 2);
		agree &= st_f32_to_f16(f) == hb;
	}
	tap_ok(agree, "F32 -> F16 agrees with the compiler's _Float16 conversion on 200000 values");
#else
	tap_skip("no _Float16 in this compiler");
#endif
}

static void test_bf16_f64_int(void)
{
	/* BF16: the top half of a float32. */
	uint16_t bf[5] = {0x3f80, 0xc000, 0x0001, 0x7f80, 0x7fc0};
	float want_bf[5];
	for (int i = 0; i < 5; i++) {
		uint32_t bits = (uint32_t)bf[i] << 16;
		memcpy(&want_bf[i], &bits, 4);
	}
	double f64[4] = {1.5, -1e-50, 3.0000001, 1e300};
	int32_t i32[2] = {1, 2};
	uint8_t data[10 + 32 + 8];
	memcpy(data, bf, 10);
	memcpy(data + 10, f64, 32); /* unaligned on purpose */
	memcpy(data + 42, i32, 8);
	write_raw("conv.safetensors", HLEN_AUTO,
	          "{\"bf\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[0,10]},"
	          "\"d\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[10,42]},"
	          "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[42,50]}}",
	          data, sizeof data);
	st_set *s;
	char err[512] = "";
	if (st_open(&s, tpath("conv.safetensors"), err, sizeof err)) {
		tap_ok(0, "conversion file opens (%s)", err);
		return;
	}
	float out[5];
	int ok = st_to_f32(st_find(s, "bf"), out, err, sizeof err) == 0;
	for (int i = 0; ok && i < 4; i++)
		ok = !memcmp(&out[i], &want_bf[i], 4);
	tap_ok(ok && isnan(out[4]), "BF16 -> F32: 1, -2, smallest subnormal, inf, NaN");
	ok = st_to_f32(st_find(s, "d"), out, err, sizeof err) == 0 && out[0] == 1.5f && out[1] == -0.0f &&
	     signbit(out[1]) && out[2] == (float)3.0000001 && isinf(out[3]);
	tap_ok(ok, "F64 -> F32 rounds (unaligned source): 1.5, -0, 3.0000001, overflow to inf");
	tap_ok(st_to_f32(st_find(s, "i"), out, err, sizeof err) != 0 && strstr(err, "'i'") && strstr(err, "I32"),
	       "an integer tensor is not converted to float (%s)", err);
	st_close(s);
}

static void test_check_finite(void)
{
	float f32[4] = {1, -2, NAN, 4};
	uint16_t f16[2] = {0x3c00, 0xfc00}, bf16[2] = {0x3f80, 0x7fc1}, good16[2] = {0x3c00, 0x0001};
	double f64[2] = {1e300, INFINITY};
	int32_t i32[2] = {-1, 0x7fffffff};
	uint8_t data[16 + 4 + 4 + 16 + 8 + 4 + 16];
	float clean[4] = {0, -0.0f, 1e-45f, 3e38f};
	size_t o = 0;
	memcpy(data + o, f32, 16), o += 16;
	memcpy(data + o, f16, 4), o += 4;
	memcpy(data + o, bf16, 4), o += 4;
	memcpy(data + o, f64, 16), o += 16;
	memcpy(data + o, i32, 8), o += 8;
	memcpy(data + o, good16, 4), o += 4;
	memcpy(data + o, clean, 16), o += 16;
	write_raw("finite.safetensors", HLEN_AUTO,
	          "{\"f32\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	          "\"f16\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[16,20]},"
	          "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[20,24]},"
	          "\"f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[24,40]},"
	          "\"i32\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[40,48]},"
	          "\"g16\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[48,52]},"
	          "\"g32\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[52,68]}}",
	          data, sizeof data);
	st_set *s;
	char err[512] = "";
	if (st_open(&s, tpath("finite.safetensors"), err, sizeof err)) {
		tap_ok(0, "finite-check file opens (%s)", err);
		return;
	}
	int rc = st_check_finite(st_find(s, "f32"), err, sizeof err);
	tap_ok(rc != 0 && strstr(err, "'f32'") && strstr(err, "element 2") && strstr(err, "finite.safetensors"),
	       "a NaN in an F32 tensor is found, named with its element (%s)", err);
	tap_ok(st_check_finite(st_find(s, "f16"), err, sizeof err) != 0 && strstr(err, "element 1"), "F16 -inf found");
	tap_ok(st_check_finite(st_find(s, "bf16"), err, sizeof err) != 0 && strstr(err, "'bf16'"), "BF16 NaN found");
	tap_ok(st_check_finite(st_find(s, "f64"), err, sizeof err) != 0 && strstr(err, "element 1"), "F64 inf found");
	tap_ok(st_check_finite(st_find(s, "i32"), err, sizeof err) == 0 &&
	           st_check_finite(st_find(s, "g16"), err, sizeof err) == 0 &&
	           st_check_finite(st_find(s, "g32"), err, sizeof err) == 0,
	       "integers, finite halves and finite floats (zeros, subnormal, near max) pass");
	st_close(s);
}

static void test_memory_set(void)
{
	st_set *s = st_new_memory();
	int64_t sh[2] = {2, 2};
	float *a = malloc(16), *b = malloc(16);
	for (int i = 0; i < 4; i++)
		a[i] = (float)i, b[i] = (float)-i;
	int rc = st_add_owned(s, "z.weight", ST_F32, 2, sh, a) | st_add_owned(s, "a.weight", ST_F32, 2, sh, b);
	const st_tensor *t = st_find(s, "z.weight");
	tap_ok(rc == 0 && st_count(s) == 2 && t && t->numel == 4 && ((const float *)t->data)[3] == 3.0f &&
	           st_find(s, "a.weight") && !st_find(s, "b.weight"),
	       "in-memory set: add, count, find");
	st_close(s);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/mg-st-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! cannot make a temporary directory (%s)\n", strerror(errno));
		return 1;
	}
	test_valid_small();
	test_malformed();
	test_page_end();
	test_f16();
	test_bf16_f64_int();
	test_check_finite();
	test_memory_set();
	const char *ref = tap_ref_dir();
	if (ref)
		test_sharded(ref);
	else
		tap_skip("sharded checkpoints from tiny-a: reference data not found (set MUSICGEN_REF_DIR)");
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmpdir);
	return tap_done();
}
