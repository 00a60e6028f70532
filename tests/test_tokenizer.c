/* test_tokenizer.c - the T5 tokenizer against the reference tokenizations
 * (the genuine t5-base spiece.model and a small model with edge cases),
 * batching, and damaged spiece.model files. */
#include "autoconfig.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer.h"
#include "tests/tap.h"

static int same_ids(const int32_t *ids, int n, json_t *ref)
{
	if (!json_is_array(ref) || (int)json_array_size(ref) != n)
		return 0;
	for (int i = 0; i < n; i++)
		if (json_integer_value(json_array_get(ref, (size_t)i)) != ids[i])
			return 0;
	return 1;
}

static void show(const char *what, const int32_t *ids, int n)
{
	char line[2048];
	int o = 0;
	for (int i = 0; i < n && o < (int)sizeof line - 16; i++)
		o += snprintf(line + o, sizeof line - (size_t)o, " %d", ids[i]);
	tap_diag("%s:%s", what, line);
}

/* A case's name for a TAP line: control characters written as \xNN, cut
 * at a character boundary to fit. */
static void name_case(char *out, size_t outlen, const char *s)
{
	size_t o = 0;
	for (; *s && o + 5 < outlen; s++) {
		unsigned char c = (unsigned char)*s;
		size_t clen = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		if (c >= 0xc0 && o + clen + 1 > outlen - 4)
			break;
		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = 0;
}

/* Every case of refs: T5 ids under `key`, and raw SentencePiece ids when
 * sp_key is given (with EOS appended when sp_eos is set, as t5/ stores them). */
static void run_cases(const char *model, const char *refs, const char *key, const char *sp_key, int sp_eos,
                      const char *label)
{
	char err[512];
	mg_tokenizer *t;
	if (!tap_ok(mg_tokenizer_load(&t, model, err, sizeof err) == 0, "%s: spiece.model loads", label)) {
		tap_diag("%s", err);
		return;
	}
	json_error_t je;
	json_t *root = json_load_file(refs, 0, &je), *cases = json_object_get(root, "cases");
	if (!tap_ok(json_is_array(cases), "%s: reference cases readable", label)) {
		json_decref(root);
		mg_tokenizer_free(t);
		return;
	}
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		const char *text = json_string_value(json_object_get(c, "text"));
		const char *name = json_string_value(json_object_get(c, "name"));
		char nm[64];
		name_case(nm, sizeof nm, name ? name : text ? text : "?");
		int32_t *ids = NULL;
		int n = 0;
		int ok = text && mg_tokenize(t, text, &ids, &n, err, sizeof err) == 0 &&
		         same_ids(ids, n, json_object_get(c, key));
		if (!tap_ok(ok, "%s case %zu (%s): T5 ids", label, i, nm))
			show("got", ids, n);
		free(ids);
		if (sp_key) {
			ok = text && mg_sp_encode(t, text, &ids, &n, err, sizeof err) == 0;
			if (ok && sp_eos) {
				int32_t *more = realloc(ids, (size_t)(n + 1) * sizeof *ids);
				ok = more != NULL;
				if (more) {
					ids = more;
					ids[n++] = mg_tokenizer_eos_id(t);
				}
			}
			ok = ok && same_ids(ids, n, json_object_get(c, sp_key));
			if (!tap_ok(ok, "%s case %zu (%s): SentencePiece ids", label, i, nm))
				show("got", ids, n);
			free(ids);
		}
	}
	json_decref(root);
	mg_tokenizer_free(t);
}

static void batch(const char *model)
{
	char err[512];
	mg_tokenizer *t;
	if (mg_tokenizer_load(&t, model, err, sizeof err)) {
		tap_ok(0, "batch: load: %s", err);
		return;
	}
	const char *texts[] = {"The quick brown fox jumps over the lazy dog.", "", "Summary of the text."};
	int32_t *ids, *mask;
	int S;
	int rc = mg_tokenize_batch(t, texts, 3, &ids, &mask, &S, err, sizeof err);
	tap_ok(rc == 0 && S == 13, "batch: padded to the longest (13 ids)");
	if (!rc) {
		static const int32_t want1[] = {20698, 13, 8, 1499, 5, 1};
		int ok = ids[13] == 1 && mask[13] == 1;
		for (int j = 1; j < S; j++)
			ok &= ids[13 + j] == 0 && mask[13 + j] == 0;
		tap_ok(ok, "batch: empty text is [1] then pad 0 with mask 0");
		ok = 1;
		for (int j = 0; j < S; j++)
			ok &= ids[26 + j] == (j < 6 ? want1[j] : 0) && mask[26 + j] == (j < 6);
		tap_ok(ok, "batch: right padding with 0 and mask 1 on real ids (EOS included)");
		free(ids), free(mask);
	}
	int32_t *a, *b;
	int na, nb;
	mg_tokenize(t, "hi</s>", &a, &na, err, sizeof err);
	mg_tokenize(t, "hi", &b, &nb, err, sizeof err);
	tap_ok(na == nb && !memcmp(a, b, (size_t)na * sizeof *a), "a text ending in </s> gets no second EOS");
	free(a), free(b);
	tap_ok(mg_tokenizer_vocab_size(t) == 32100, "vocabulary: 32000 pieces + 100 extra ids");
	mg_tokenizer_free(t);
}

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc((size_t)len + 1);
	if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*n = (size_t)len;
	return b;
}

static void damaged(const char *model)
{
	char err[512];
	mg_tokenizer *t;
	tap_ok(mg_tokenizer_load_mem(&t, "", 0, "empty", err, sizeof err) != 0 && t == NULL && strstr(err, "empty"),
	       "an empty spiece.model is refused (%s)", err);
	tap_ok(mg_tokenizer_load(&t, "/nonexistent/spiece.model", err, sizeof err) != 0 && strstr(err, "cannot open"),
	       "a missing spiece.model is refused (%s)", err);
	unsigned char garbage[4096];
	unsigned s = 12345;
	for (size_t i = 0; i < sizeof garbage; i++)
		garbage[i] = (unsigned char)((s = s * 1103515245u + 12345u) >> 16);
	tap_ok(mg_tokenizer_load_mem(&t, garbage, sizeof garbage, "garbage", err, sizeof err) != 0,
	       "garbage bytes are refused (%s)", err);
	size_t n = 0;
	unsigned char *buf = slurp(model, &n);
	if (!tap_ok(buf != NULL, "real spiece.model readable"))
		return;
	/* Truncated at several lengths: each refused (never a crash). */
	size_t cuts[] = {1, 3, 7, 100, 1000, n / 3, n / 2, n - 100, n - 1};
	int refused = 0;
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		if (mg_tokenizer_load_mem(&t, buf, cuts[i], "truncated", err, sizeof err) != 0)
			refused++;
		else
			mg_tokenizer_free(t);
	}
	tap_ok(refused == (int)(sizeof cuts / sizeof cuts[0]), "truncated copies refused (%d of %zu)", refused,
	       sizeof cuts / sizeof cuts[0]);
	/* The first piece's length byte made to point past the end. */
	unsigned char *bad = malloc(n);
	memcpy(bad, buf, n);
	if (bad[0] == 0x0a) {
		bad[1] = 0xff;
		bad[2] = 0xff;
		bad[3] = 0xff;
		bad[4] = 0x7f;
	}
	tap_ok(mg_tokenizer_load_mem(&t, bad, n, "broken", err, sizeof err) != 0, "a piece with a broken length is refused (%s)",
	       err);
	free(bad);
	free(buf);
}

/* ---- synthetic models, written here with a small protobuf writer ---- */

struct pbw {
	uint8_t *p;
	size_t n, cap;
};

static void w_byte(struct pbw *w, uint8_t b)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		w->p = realloc(w->p, w->cap);
		if (!w->p)
			abort();
	}
	w->p[w->n++] = b;
}

static void w_varint(struct pbw *w, uint64_t v)
{
	while (v >= 0x80) {
		w_byte(w, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	w_byte(w, (uint8_t)v);
}

static void w_key(struct pbw *w, unsigned field, unsigned wt)
{
	w_varint(w, (uint64_t)field << 3 | wt);
}

static void w_bytes(struct pbw *w, unsigned field, const void *s, size_t n)
{
	w_key(w, field, 2);
	w_varint(w, n);
	for (size_t i = 0; i < n; i++)
		w_byte(w, ((const uint8_t *)s)[i]);
}

static void w_float(struct pbw *w, unsigned field, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	w_key(w, field, 5);
	for (int i = 0; i < 4; i++)
		w_byte(w, (uint8_t)(u >> (8 * i)));
}

static void w_int(struct pbw *w, unsigned field, int64_t v)
{
	w_key(w, field, 0);
	w_varint(w, (uint64_t)v); /* negative: ten bytes, as protobuf writes int32 */
}

enum { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER = 4, UNUSED = 5, BYTE = 6 };

struct tpiece {
	const char *s;
	float score;
	int type;
};

/* Normaliser and trainer settings; -1 leaves the field out (its default). */
struct tspec {
	int model_type, byte_fallback, add_dummy_prefix, remove_extra_ws;
};

static struct pbw make_model(const struct tpiece *pc, int n, const struct tspec *sp)
{
	struct pbw m = {0}, sub = {0};
	for (int i = 0; i < n; i++) {
		sub.n = 0;
		w_bytes(&sub, 1, pc[i].s, strlen(pc[i].s));
		w_float(&sub, 2, pc[i].score);
		if (pc[i].type != NORMAL)
			w_int(&sub, 3, pc[i].type);
		w_bytes(&m, 1, sub.p, sub.n);
	}
	sub.n = 0; /* trainer_spec */
	if (sp->model_type >= 0)
		w_int(&sub, 3, sp->model_type);
	if (sp->byte_fallback >= 0)
		w_int(&sub, 35, sp->byte_fallback);
	w_int(&sub, 40, 2);  /* unk_id */
	w_int(&sub, 41, -1); /* bos_id: none */
	w_int(&sub, 42, 1);  /* eos_id */
	w_int(&sub, 43, 0);  /* pad_id */
	w_bytes(&m, 2, sub.p, sub.n);
	sub.n = 0; /* normalizer_spec: no charsmap, characters pass through */
	w_bytes(&sub, 1, "identity", 8);
	if (sp->add_dummy_prefix >= 0)
		w_int(&sub, 3, sp->add_dummy_prefix);
	if (sp->remove_extra_ws >= 0)
		w_int(&sub, 4, sp->remove_extra_ws);
	w_bytes(&m, 3, sub.p, sub.n);
	free(sub.p);
	return m;
}

static const struct tspec DEFAULTS = {-1, -1, -1, -1};

/* ids of text (raw SentencePiece, or T5 with EOS) equal want[0..nw). */
static int gives(const mg_tokenizer *t, int t5, const char *text, const int32_t *want, int nw)
{
	char err[256];
	int32_t *ids;
	int n;
	int rc = t5 ? mg_tokenize(t, text, &ids, &n, err, sizeof err) : mg_sp_encode(t, text, &ids, &n, err, sizeof err);
	if (rc)
		return 0;
	int ok = n == nw && !memcmp(ids, want, (size_t)n * sizeof *ids);
	if (!ok)
		show("got", ids, n);
	free(ids);
	return ok;
}

#define GIVES(t, t5, text, ...)                                                                            \
	gives(t, t5, text, (const int32_t[]){__VA_ARGS__}, (int)(sizeof((const int32_t[]){__VA_ARGS__}) / 4))

static mg_tokenizer *load_synthetic(const struct tpiece *pc, int n, const struct tspec *sp, const char *what)
{
	char err[256];
	mg_tokenizer *t = NULL;
	struct pbw m = make_model(pc, n, sp);
	if (mg_tokenizer_load_mem(&t, m.p, m.n, what, err, sizeof err))
		tap_diag("%s: %s", what, err);
	free(m.p);
	return t;
}

/* The expected ids below are what SentencePiece 0.1.97 gives for the same
 * models; each is also worked out by hand in its comment. */
static const struct tpiece SMALL[] = {
	{"<pad>", 0, CONTROL}, {"</s>", 0, CONTROL}, {"<unk>", 0, UNKNOWN}, {"\xE2\x96\x81", -1, NORMAL},
	{"a", -2, NORMAL},     {"b", -2, NORMAL},    {"ab", -3, NORMAL},    {"\xE2\x96\x81" "ab", -3.5f, NORMAL},
	{"<sep>", 0, USER},    {"c", -1, UNUSED},
};
#define N_SMALL ((int)(sizeof SMALL / sizeof SMALL[0]))

static void synthetic_segmentation(void)
{
	mg_tokenizer *t = load_synthetic(SMALL, N_SMALL, &DEFAULTS, "small synthetic");
	if (!tap_ok(t != NULL, "synthetic model loads")) {
		return;
	}
	/* "_ab" -3.5 beats "_"+"ab" -4 and "_"+"a"+"b" -5 */
	tap_ok(GIVES(t, 0, "ab", 7), "best-scoring path: '_ab' in one piece");
	/* a user-defined piece is matched before normalisation and kept whole */
	tap_ok(GIVES(t, 0, "ab<sep>ab", 7, 8, 6), "a user-defined piece stays whole");
	/* 'c' is UNUSED: never matched, so "cc" is unknown - one merged unknown */
	tap_ok(GIVES(t, 0, "ab cc", 7, 3, 2), "an unused piece is not matched; a run of unknowns is one <unk>");
	/* the identity normaliser leaves the tab alone: unknown between pieces */
	tap_ok(GIVES(t, 0, "ab  a\tb ", 7, 3, 4, 2, 5), "spaces collapse, trailing space dropped, tab unknown");
	tap_ok(GIVES(t, 0, "xyz ab \xC3\xA9", 3, 2, 7, 3, 2), "unknown runs around known pieces");
	/* T5Tokenizer maps piece strings to ids: the unknown surface "c" is the
	 * UNUSED piece's string, so it gets that id (9), not <unk>. */
	tap_ok(GIVES(t, 1, "c", 3, 9, 1), "T5: a piece string is looked up by name (unused piece id)");
	tap_ok(GIVES(t, 0, "c", 3, 2), "raw SentencePiece: the same text gives <unk>");
	tap_ok(GIVES(t, 1, "ab</s>", 7, 1) && GIVES(t, 1, "<pad>ab<unk>", 0, 7, 2, 1),
	       "T5: special-token strings by the model's pieces, EOS once");
	/* "<extra_id_100>" -> _ <extr a _id_100> with two unknown runs */
	tap_ok(GIVES(t, 1, "<extra_id_0>a<extra_id_9><extra_id_99><extra_id_100>", 109, 3, 4, 100, 10, 3, 2, 4, 2, 1),
	       "T5: <extra_id_N> is pieces+99-N; <extra_id_100> is ordinary text");
	tap_ok(mg_tokenizer_vocab_size(t) == N_SMALL + 100, "vocabulary size: pieces + 100 extra ids");
	mg_tokenizer_free(t);

	struct tspec keep = DEFAULTS;
	keep.remove_extra_ws = 0;
	t = load_synthetic(SMALL, N_SMALL, &keep, "keep whitespace");
	tap_ok(t && GIVES(t, 0, "a  b ", 3, 4, 3, 3, 5, 3) && GIVES(t, 0, " ab", 3, 7),
	       "remove_extra_whitespaces off: every space is kept");
	mg_tokenizer_free(t);

	/* byte_fallback: an unknown character becomes its UTF-8 byte pieces */
	struct tpiece *bp = malloc((N_SMALL + 256) * sizeof *bp);
	static char names[256][8];
	memcpy(bp, SMALL, sizeof SMALL);
	for (int i = 0; i < 256; i++) {
		snprintf(names[i], sizeof names[i], "<0x%02X>", i);
		bp[N_SMALL + i] = (struct tpiece){names[i], 0, BYTE};
	}
	struct tspec fb = DEFAULTS;
	fb.byte_fallback = 1;
	t = load_synthetic(bp, N_SMALL + 256, &fb, "byte fallback");
	tap_ok(t && GIVES(t, 0, "ab \xC3\xA9", 7, 3, 10 + 0xC3, 10 + 0xA9) && GIVES(t, 0, "xy", 3, 10 + 'x', 10 + 'y'),
	       "byte_fallback: unknown characters become byte pieces, not merged");
	mg_tokenizer_free(t);
	free(bp);
}

/* SentencePiece scores a piece candidate as the double sum of the float
 * score and the float path score, compares it in double with the stored
 * float path score, and stores it rounded to float. With these scores
 * "a"+"aaa" and "aaa"+"a" tie in real arithmetic at the end of "aaaa";
 * "a"+"aaa" is offered first and stored rounded to float, below the exact
 * sum, so "aaa"+"a", compared exactly, beats it. Float-only arithmetic
 * would see two equal values and keep the first. */
static void synthetic_tie(void)
{
	static const struct tpiece tie[] = {
		{"<pad>", 0, CONTROL},
		{"</s>", 0, CONTROL},
		{"<unk>", 0, UNKNOWN},
		{"a", -0x1.15376p+2f, NORMAL},
		{"aa", -0x1.13d09p+3f, NORMAL},
		{"aaa", -0x1.8b7ad6p+2f, NORMAL},
	};
	struct tspec sp = DEFAULTS;
	sp.add_dummy_prefix = 0;
	mg_tokenizer *t = load_synthetic(tie, 6, &sp, "tie");
	tap_ok(t && GIVES(t, 0, "aaaa", 5, 3), "exact tie broken with SentencePiece's float/double arithmetic");
	mg_tokenizer_free(t);
}

/* Ties in the real vocabulary ("gg"+"g" against "g"+"gg"), as SentencePiece
 * 0.1.97 resolves them. */
static void t5_ties(const char *model)
{
	char err[512];
	mg_tokenizer *t;
	if (mg_tokenizer_load(&t, model, err, sizeof err)) {
		tap_ok(0, "ties: load: %s", err);
		return;
	}
	tap_ok(GIVES(t, 0, "theggg", 8, 4102, 122), "t5-base tie: 'theggg' -> _the gg g");
	tap_ok(GIVES(t, 0, "brbsesesgtrberg gbgeaagesaa", 6397, 115, 2260, 15, 7, 122, 17, 52, 2235, 3, 122, 115, 397, 9,
	             2568, 9, 9),
	       "t5-base tie: 'brbses...' -> _br b ses e s ...");
	mg_tokenizer_free(t);
}

/* Models SentencePiece refuses to load: each an error, never a crash. */
static void synthetic_damaged(void)
{
	char err[256];
	mg_tokenizer *t;
	struct tpiece pc[N_SMALL];
	struct {
		const char *what;
		int index;
		struct tpiece piece;
		struct tspec spec;
		const char *expect;
	} cases[] = {
		{"an empty piece", 4, {"", -2, NORMAL}, {-1, -1, -1, -1}, "empty"},
		{"a piece defined twice", 5, {"a", -2, NORMAL}, {-1, -1, -1, -1}, "twice"},
		{"no unknown piece", 2, {"<unk>", 0, CONTROL}, {-1, -1, -1, -1}, "no unknown"},
		{"two unknown pieces", 0, {"<pad>", 0, UNKNOWN}, {-1, -1, -1, -1}, "unknown"},
		{"a byte piece without byte_fallback", 9, {"<0x41>", 0, BYTE}, {-1, -1, -1, -1}, "byte_fallback"},
		{"byte_fallback without the byte pieces", 0, {"<pad>", 0, CONTROL}, {-1, 1, -1, -1}, "byte pieces"},
		{"a BPE model", 0, {"<pad>", 0, CONTROL}, {2, -1, -1, -1}, "unigram"},
		{"a piece type out of range", 4, {"a", -2, 9}, {-1, -1, -1, -1}, "malformed"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(pc, SMALL, sizeof SMALL);
		pc[cases[i].index] = cases[i].piece;
		struct pbw m = make_model(pc, N_SMALL, &cases[i].spec);
		err[0] = 0;
		int rc = mg_tokenizer_load_mem(&t, m.p, m.n, "synthetic", err, sizeof err);
		tap_ok(rc != 0 && t == NULL && strstr(err, cases[i].expect), "%s is refused (%s)", cases[i].what, err);
		free(m.p);
	}
	/* Every strict prefix of a valid model is refused. */
	struct pbw m = make_model(SMALL, N_SMALL, &DEFAULTS);
	size_t refused = 0;
	for (size_t n = 0; n < m.n; n++) {
		if (mg_tokenizer_load_mem(&t, m.p, n, "prefix", err, sizeof err) != 0)
			refused++;
		else
			mg_tokenizer_free(t);
	}
	tap_ok(refused == m.n, "every one of the %zu truncations of a small model is refused (%zu)", m.n, refused);
	/* The first piece's string length made to run past the end of its
	 * piece message (which still fits in the file). */
	if (m.p[0] == 0x0a && m.p[1] < 0x80 && m.p[2] == 0x0a) {
		m.p[3] = (uint8_t)(m.p[1] + 1);
		err[0] = 0;
		tap_ok(mg_tokenizer_load_mem(&t, m.p, m.n, "synthetic", err, sizeof err) != 0 && strstr(err, "piece 0"),
		       "a piece string longer than its piece is refused (%s)", err);
	} else
		tap_ok(0, "synthetic model layout as written");
	/* Wire-level damage: a group wire type, an endless varint, a length past the end. */
	static const uint8_t group[] = {0x0b, 0x0c}, varint[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                                          0xff, 0xff, 0xff},
	                     longlen[] = {0x0a, 0x10, 0x0a, 0x01, 0x61};
	tap_ok(mg_tokenizer_load_mem(&t, group, sizeof group, "group", err, sizeof err) != 0 &&
	           mg_tokenizer_load_mem(&t, varint, sizeof varint, "varint", err, sizeof err) != 0 &&
	           mg_tokenizer_load_mem(&t, longlen, sizeof longlen, "length", err, sizeof err) != 0,
	       "group wire type, overlong varint, length past the end: refused");
	free(m.p);
}

/* Random damage to a real model: loading either fails or gives a tokenizer
 * that tokenizes without reading outside its tables (ASan watches). */
static void mutated(const char *model)
{
	size_t n = 0;
	unsigned char *buf = slurp(model, &n);
	if (!buf) {
		tap_ok(0, "mutations: %s readable", model);
		return;
	}
	unsigned char *m = malloc(n);
	unsigned s = 777;
	int loaded = 0, runs = 200, ok = 1;
	char err[256];
	for (int r = 0; r < runs; r++) {
		memcpy(m, buf, n);
		int flips = 1 + r % 8;
		for (int k = 0; k < flips; k++) {
			s = s * 1103515245u + 12345u;
			size_t at = (size_t)(s >> 8) % n;
			/* every other change lands among the pieces at the start
			 * (the charsmap fills most of the file) */
			if (!(k & 1))
				at %= n < 8192 ? n : 8192;
			s = s * 1103515245u + 12345u;
			m[at] = (unsigned char)(s >> 16);
		}
		mg_tokenizer *t;
		if (mg_tokenizer_load_mem(&t, m, n, "mutated", err, sizeof err))
			continue;
		loaded++;
		int32_t *ids;
		int k;
		const char *text = "Caf\xC3\xA9 \xEF\xBC\xA6\xEF\xBD\x95ll-width \xEF\xAC\x81ne  drums\t\xF0\x9F\x8E\xB8 <extra_id_3>";
		if (mg_tokenize(t, text, &ids, &k, err, sizeof err) == 0)
			free(ids);
		else
			ok = 0;
		mg_tokenizer_free(t);
	}
	tap_ok(ok, "%d randomly damaged copies: %d load and tokenize safely, the rest are refused", runs, loaded);
	free(m);
	free(buf);
}

int main(void)
{
	synthetic_segmentation();
	synthetic_tie();
	synthetic_damaged();
	const char *ref = tap_ref_dir();
	if (!ref) {
		tap_skip("reference tokenizations: reference data not found (set MUSICGEN_REF_DIR)");
		return tap_done();
	}
	char model[4200], refs[4200];
	snprintf(model, sizeof model, "%s/t5/spiece.model", ref);
	snprintf(refs, sizeof refs, "%s/t5/tokenizer_refs.json", ref);
	run_cases(model, refs, "ids", "sp_ids", 1, "t5-base");
	batch(model);
	damaged(model);
	snprintf(model, sizeof model, "%s/fixtures/tokenizer/spiece.model", ref);
	snprintf(refs, sizeof refs, "%s/fixtures/tokenizer/tokenizer_refs.json", ref);
	run_cases(model, refs, "t5_ids", "sp_ids", 0, "edge cases");
	mutated(model);
	snprintf(model, sizeof model, "%s/t5/spiece.model", ref);
	t5_ties(model);
	return tap_done();
}
