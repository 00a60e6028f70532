/* tokenizer.c - SentencePiece unigram tokenization with T5's conventions.
 *
 * spiece.model is a protobuf (sentencepiece.ModelProto) parsed by hand here
 * with every length checked against the buffer. Normalisation follows the
 * precompiled charsmap the file carries (a Darts double-array trie over
 * UTF-8 bytes plus a pool of replacement strings); segmentation is the
 * unigram Viterbi search of SentencePiece's EncodeOptimized, in float32 with
 * its tie-breaking (for one end position the first candidate with the best
 * score wins); runs of unknown pieces merge into one. T5Tokenizer then
 * splits special-token strings out first and appends EOS. */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/tokenizer.h"

enum piece_type { PT_NORMAL = 1, PT_UNKNOWN = 2, PT_CONTROL = 3, PT_USER = 4, PT_UNUSED = 5, PT_BYTE = 6 };

#define N_EXTRA_IDS 100
#define SPACE_SYMBOL "\xE2\x96\x81" /* U+2581 */

struct piece {
	char *str;
	size_t len;
	float score;
	int type;
};

struct mg_tokenizer {
	struct piece *pieces;
	int n_pieces;
	/* open-addressing hash of the matchable pieces (NORMAL, USER_DEFINED, UNUSED) */
	int32_t *slots;
	size_t n_slots;
	size_t max_piece_len;
	int unk_id, eos_id, pad_id;
	float unk_score, max_score;
	int n_user;              /* USER_DEFINED pieces (matched before normalisation) */
	/* normaliser */
	int add_dummy_prefix, remove_extra_ws, escape_ws;
	uint8_t *charsmap;       /* owned copy of precompiled_charsmap */
	size_t charsmap_len;
	const uint32_t *units;   /* trie units (aligned copy) */
	uint32_t *units_buf;
	size_t n_units;
	const char *pool;        /* replacement strings */
	size_t pool_len;
};

static int tk_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ---- protobuf wire format ---- */

struct pb {
	const uint8_t *p, *end;
};

static int pb_varint(struct pb *b, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (b->p >= b->end)
			return -1;
		uint8_t c = *b->p++;
		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* Reads one field: its number, wire type, and value (varint / fixed) or
 * sub-buffer (length-delimited). */
struct field {
	uint32_t num;
	int wt;
	uint64_t v;
	struct pb sub;
};

static int pb_field(struct pb *b, struct field *f)
{
	uint64_t key;
	if (pb_varint(b, &key))
		return -1;
	f->num = (uint32_t)(key >> 3);
	f->wt = (int)(key & 7);
	if (f->num == 0)
		return -1;
	switch (f->wt) {
	case 0:
		return pb_varint(b, &f->v);
	case 1:
		if (b->end - b->p < 8)
			return -1;
		f->v = 0;
		for (int i = 7; i >= 0; i--)
			f->v = (f->v << 8) | b->p[i];
		b->p += 8;
		return 0;
	case 5:
		if (b->end - b->p < 4)
			return -1;
		f->v = (uint64_t)b->p[0] | (uint64_t)b->p[1] << 8 | (uint64_t)b->p[2] << 16 | (uint64_t)b->p[3] << 24;
		b->p += 4;
		return 0;
	case 2: {
		uint64_t len;
		if (pb_varint(b, &len) || len > (uint64_t)(b->end - b->p))
			return -1;
		f->sub.p = b->p;
		f->sub.end = b->p + len;
		b->p += len;
		return 0;
	}
	default: /* groups (3, 4) and unknown wire types */
		return -1;
	}
}

static float pb_float(uint64_t v)
{
	uint32_t u = (uint32_t)v;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* ---- piece hash ---- */

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

static int lookup(const mg_tokenizer *t, const char *s, size_t n)
{
	size_t mask = t->n_slots - 1, i = (size_t)hash_bytes(s, n) & mask;
	for (;;) {
		int32_t id = t->slots[i];
		if (id < 0)
			return -1;
		const struct piece *p = &t->pieces[id];
		if (p->len == n && !memcmp(p->str, s, n))
			return id;
		i = (i + 1) & mask;
	}
}

static int build_hash(mg_tokenizer *t)
{
	size_t n = 16;
	while (n < 2 * (size_t)t->n_pieces + 16)
		n <<= 1;
	t->slots = malloc(n * sizeof *t->slots);
	if (!t->slots)
		return -1;
	memset(t->slots, 0xff, n * sizeof *t->slots);
	t->n_slots = n;
	for (int id = 0; id < t->n_pieces; id++) {
		const struct piece *p = &t->pieces[id];
		if (p->type != PT_NORMAL && p->type != PT_USER && p->type != PT_UNUSED)
			continue;
		if (p->len == 0)
			continue;
		if (lookup(t, p->str, p->len) >= 0)
			continue; /* a duplicate piece string: the first id wins, as in SentencePiece's map */
		size_t i = (size_t)hash_bytes(p->str, p->len) & (n - 1);
		while (t->slots[i] >= 0)
			i = (i + 1) & (n - 1);
		t->slots[i] = id;
		if (p->len > t->max_piece_len)
			t->max_piece_len = p->len;
	}
	return 0;
}

/* ---- model parsing ---- */

static int parse_piece(struct pb b, struct piece *pc)
{
	struct field f;
	pc->type = PT_NORMAL;
	pc->score = 0;
	const uint8_t *s = NULL;
	size_t len = 0;
	while (b.p < b.end) {
		if (pb_field(&b, &f))
			return -1;
		if (f.num == 1 && f.wt == 2) {
			s = f.sub.p;
			len = (size_t)(f.sub.end - f.sub.p);
		} else if (f.num == 2 && f.wt == 5)
			pc->score = pb_float(f.v);
		else if (f.num == 3 && f.wt == 0)
			pc->type = (int)(int32_t)f.v;
		else if (f.num <= 3)
			return -1; /* a known field with the wrong wire type */
	}
	if (pc->type < PT_NORMAL || pc->type > PT_BYTE)
		return -1;
	pc->str = malloc(len + 1);
	if (!pc->str)
		return -1;
	if (len)
		memcpy(pc->str, s, len);
	pc->str[len] = 0;
	pc->len = len;
	return 0;
}

static int parse_normalizer(mg_tokenizer *t, struct pb b, char *err, size_t errlen, const char *what)
{
	struct field f;
	while (b.p < b.end) {
		if (pb_field(&b, &f))
			return tk_err(err, errlen, "%s: malformed normalizer_spec", what);
		if (f.num == 2 && f.wt == 2) {
			size_t n = (size_t)(f.sub.end - f.sub.p);
			free(t->charsmap);
			t->charsmap = malloc(n ? n : 1);
			if (!t->charsmap)
				return tk_err(err, errlen, "%s: out of memory", what);
			memcpy(t->charsmap, f.sub.p, n);
			t->charsmap_len = n;
		} else if (f.num == 3 && f.wt == 0)
			t->add_dummy_prefix = f.v != 0;
		else if (f.num == 4 && f.wt == 0)
			t->remove_extra_ws = f.v != 0;
		else if (f.num == 5 && f.wt == 0)
			t->escape_ws = f.v != 0;
	}
	return 0;
}

static int setup_charsmap(mg_tokenizer *t, char *err, size_t errlen, const char *what)
{
	if (!t->charsmap || t->charsmap_len == 0)
		return 0; /* identity normalisation */
	if (t->charsmap_len < 4)
		return tk_err(err, errlen, "%s: precompiled charsmap too short", what);
	const uint8_t *c = t->charsmap;
	uint32_t T = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
	if (T % 4 || T == 0 || (size_t)T > t->charsmap_len - 4)
		return tk_err(err, errlen, "%s: precompiled charsmap trie size %u does not fit (%zu bytes)", what, T,
		              t->charsmap_len);
	t->n_units = T / 4;
	t->units_buf = malloc(T);
	if (!t->units_buf)
		return tk_err(err, errlen, "%s: out of memory", what);
	for (size_t i = 0; i < t->n_units; i++) {
		const uint8_t *u = c + 4 + 4 * i;
		t->units_buf[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
	}
	t->units = t->units_buf;
	t->pool = (const char *)c + 4 + T;
	t->pool_len = t->charsmap_len - 4 - T;
	return 0;
}

static int parse_model(mg_tokenizer *t, const uint8_t *data, size_t len, const char *what, char *err, size_t errlen)
{
	struct pb b = {data, data + len};
	struct field f;
	int n = 0, cap = 0;
	int unk_id = -1, eos_id = -1, pad_id = -1, model_type = 1, have_trainer = 0, have_normalizer = 0;
	t->add_dummy_prefix = t->remove_extra_ws = t->escape_ws = 1;
	if (len == 0)
		return tk_err(err, errlen, "%s: empty file", what);
	while (b.p < b.end) {
		if (pb_field(&b, &f))
			return tk_err(err, errlen, "%s: not a SentencePiece model (malformed protobuf at byte %zu)", what,
			              (size_t)(b.p - data));
		if (f.num == 1) {
			if (f.wt != 2)
				return tk_err(err, errlen, "%s: malformed piece entry", what);
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				struct piece *np = realloc(t->pieces, (size_t)cap * sizeof *np);
				if (!np)
					return tk_err(err, errlen, "%s: out of memory", what);
				t->pieces = np;
			}
			if (parse_piece(f.sub, &t->pieces[n]))
				return tk_err(err, errlen, "%s: piece %d is malformed", what, n);
			t->n_pieces = ++n;
		} else if (f.num == 2 && f.wt == 2) {
			have_trainer = 1;
			struct pb s = f.sub;
			struct field g;
			while (s.p < s.end) {
				if (pb_field(&s, &g))
					return tk_err(err, errlen, "%s: malformed trainer_spec", what);
				if (g.wt != 0)
					continue;
				if (g.num == 3)
					model_type = (int)(int32_t)g.v;
				else if (g.num == 40)
					unk_id = (int)(int32_t)g.v;
				else if (g.num == 42)
					eos_id = (int)(int32_t)g.v;
				else if (g.num == 43)
					pad_id = (int)(int32_t)g.v;
			}
		} else if (f.num == 3 && f.wt == 2) {
			have_normalizer = 1;
			if (parse_normalizer(t, f.sub, err, errlen, what))
				return -1;
		}
	}
	if (n == 0)
		return tk_err(err, errlen, "%s: not a SentencePiece model (no pieces)", what);
	/* Both specs follow the pieces in every model SentencePiece writes: a
	 * file without them was cut short. */
	if (!have_trainer || !have_normalizer)
		return tk_err(err, errlen, "%s: incomplete SentencePiece model (no %s): the file is truncated", what,
		              have_trainer ? "normalizer_spec" : "trainer_spec");
	if (model_type != 1)
		return tk_err(err, errlen, "%s: model_type %d is not unigram", what, model_type);
	/* The unknown piece: the UNKNOWN-typed one (trainer unk_id must agree). */
	t->unk_id = -1;
	for (int i = 0; i < n; i++)
		if (t->pieces[i].type == PT_UNKNOWN) {
			if (t->unk_id >= 0)
				return tk_err(err, errlen, "%s: more than one unknown piece", what);
			t->unk_id = i;
		}
	if (t->unk_id < 0)
		return tk_err(err, errlen, "%s: no unknown piece", what);
	if (unk_id >= 0 && unk_id != t->unk_id)
		return tk_err(err, errlen, "%s: trainer unk_id %d is not the unknown piece %d", what, unk_id, t->unk_id);
	float min_s = 0, max_s = 0;
	int seen = 0;
	for (int i = 0; i < n; i++) {
		const struct piece *p = &t->pieces[i];
		if (p->type == PT_USER)
			t->n_user++;
		if (p->type != PT_NORMAL)
			continue;
		if (!seen || p->score < min_s)
			min_s = p->score;
		if (!seen || p->score > max_s)
			max_s = p->score;
		seen = 1;
	}
	t->unk_score = min_s - 10.0f;
	t->max_score = max_s;
	/* EOS and padding as T5Tokenizer names them: the pieces "</s>" and "<pad>". */
	t->eos_id = t->pad_id = -1;
	for (int i = 0; i < n; i++) {
		if (t->eos_id < 0 && !strcmp(t->pieces[i].str, "</s>"))
			t->eos_id = i;
		if (t->pad_id < 0 && !strcmp(t->pieces[i].str, "<pad>"))
			t->pad_id = i;
	}
	if (t->eos_id < 0)
		t->eos_id = eos_id >= 0 && eos_id < n ? eos_id : 1;
	if (t->pad_id < 0)
		t->pad_id = pad_id >= 0 && pad_id < n ? pad_id : 0;
	if (build_hash(t))
		return tk_err(err, errlen, "%s: out of memory", what);
	return setup_charsmap(t, err, errlen, what);
}

int mg_tokenizer_load_mem(mg_tokenizer **out, const void *data, size_t len, const char *what, char *err,
                          size_t errlen)
{
	*out = NULL;
	mg_tokenizer *t = calloc(1, sizeof *t);
	if (!t)
		return tk_err(err, errlen, "%s: out of memory", what);
	if (parse_model(t, data, len, what, err, errlen)) {
		mg_tokenizer_free(t);
		return -1;
	}
	*out = t;
	return 0;
}

int mg_tokenizer_load(mg_tokenizer **out, const char *path, char *err, size_t errlen)
{
	*out = NULL;
	struct stat sb;
	if (stat(path, &sb) != 0)
		return tk_err(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
	if (!S_ISREG(sb.st_mode)) /* a FIFO would block the open, a directory fails to read */
		return tk_err(err, errlen, "%s: not a regular file", path);
	FILE *f = fopen(path, "rb");
	if (!f)
		return tk_err(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
	size_t cap = 1 << 20, n = 0;
	uint8_t *buf = malloc(cap);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (n < cap)
			break;
		if (cap >= (256u << 20)) {
			free(buf);
			fclose(f);
			return tk_err(err, errlen, "%s: larger than 256 MB, not a SentencePiece model", path);
		}
		uint8_t *nb = realloc(buf, cap * 2);
		if (!nb) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	int bad = ferror(f);
	fclose(f);
	if (!buf)
		return tk_err(err, errlen, "%s: out of memory", path);
	if (bad) {
		free(buf);
		return tk_err(err, errlen, "%s: read error", path);
	}
	int rc = mg_tokenizer_load_mem(out, buf, n, path, err, errlen);
	free(buf);
	return rc;
}

void mg_tokenizer_free(mg_tokenizer *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->n_pieces; i++)
		free(t->pieces[i].str);
	free(t->pieces);
	free(t->slots);
	free(t->charsmap);
	free(t->units_buf);
	free(t);
}

int mg_tokenizer_vocab_size(const mg_tokenizer *t)
{
	return t->n_pieces + N_EXTRA_IDS;
}

/* ---- normalisation ---- */

struct buf {
	char *p;
	size_t n, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
	return 0;
}

/* Length of the valid UTF-8 character at s (n bytes available), 0 if invalid. */
static size_t utf8_valid_len(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* SentencePiece's OneCharLen: by the lead byte alone. */
static size_t one_char_len(uint8_t c)
{
	static const uint8_t tab[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
	return tab[c >> 4];
}

/* Longest match of the charsmap trie on s[0..n): replacement offset into
 * the pool, or -1. */
static long charsmap_match(const mg_tokenizer *t, const uint8_t *s, size_t n, size_t *match_len)
{
	const uint32_t *u = t->units;
	size_t nu = t->n_units;
#define UNIT_OFFSET(x) (((x) >> 10) << (((x) & (1u << 9)) >> 6))
	size_t pos = 0;
	uint32_t unit = u[0];
	pos ^= UNIT_OFFSET(unit);
	long best = -1;
	for (size_t i = 0; i < n; i++) {
		pos ^= s[i];
		if (pos >= nu)
			break;
		unit = u[pos];
		if ((unit & 0x800000ffu) != s[i])
			break;
		pos ^= UNIT_OFFSET(unit);
		if (pos >= nu)
			break;
		if ((unit >> 8) & 1) {
			best = (long)(u[pos] & 0x7fffffffu);
			*match_len = i + 1;
		}
	}
#undef UNIT_OFFSET
	return best;
}

/* NormalizePrefix: the replacement of the text at s and the bytes consumed. */
static void normalize_prefix(const mg_tokenizer *t, const uint8_t *s, size_t n, const char **rep, size_t *rep_len,
                             size_t *consumed)
{
	/* USER_DEFINED pieces pass through unnormalised (longest first). */
	if (t->n_user) {
		size_t best = 0;
		for (size_t l = 1; l <= n && l <= t->max_piece_len; l++) {
			int id = lookup(t, (const char *)s, l);
			if (id >= 0 && t->pieces[id].type == PT_USER)
				best = l;
		}
		if (best) {
			*rep = (const char *)s;
			*rep_len = best;
			*consumed = best;
			return;
		}
	}
	if (t->units) {
		size_t ml = 0;
		long off = charsmap_match(t, s, n, &ml);
		if (off >= 0 && (size_t)off < t->pool_len) {
			const char *r = t->pool + off;
			*rep = r;
			*rep_len = strnlen(r, t->pool_len - (size_t)off);
			*consumed = ml;
			return;
		}
	}
	size_t l = utf8_valid_len(s, n);
	if (l) {
		*rep = (const char *)s;
		*rep_len = l;
		*consumed = l;
	} else {
		*rep = "\xEF\xBF\xBD";
		*rep_len = 3;
		*consumed = 1;
	}
}

static int normalize(const mg_tokenizer *t, const char *text, size_t n, struct buf *out)
{
	const uint8_t *s = (const uint8_t *)text;
	const char *rep;
	size_t rl, used;
	out->n = 0;
	if (buf_add(out, "", 0))
		return -1;
	if (t->remove_extra_ws) {
		while (n) {
			normalize_prefix(t, s, n, &rep, &rl, &used);
			if (!(rl == 1 && rep[0] == ' '))
				break;
			s += used;
			n -= used;
		}
	}
	if (!n)
		return 0;
	const char *space = t->escape_ws ? SPACE_SYMBOL : " ";
	size_t space_len = strlen(space);
	if (t->add_dummy_prefix && buf_add(out, space, space_len))
		return -1;
	int prev_space = t->remove_extra_ws;
	while (n) {
		normalize_prefix(t, s, n, &rep, &rl, &used);
		while (prev_space && rl && rep[0] == ' ')
			rep++, rl--;
		if (rl) {
			for (size_t i = 0; i < rl; i++)
				if (rep[i] == ' ' ? buf_add(out, space, space_len) : buf_add(out, rep + i, 1))
					return -1;
			prev_space = rep[rl - 1] == ' ';
		}
		s += used;
		n -= used;
	}
	if (t->remove_extra_ws)
		while (out->n >= space_len && !memcmp(out->p + out->n - space_len, space, space_len))
			out->p[out->n -= space_len] = 0;
	return 0;
}

/* ---- unigram Viterbi ---- */

struct node {
	float score;
	int start, id;
};

struct ids {
	int32_t *p;
	int n, cap;
};

static int ids_add(struct ids *v, int32_t id)
{
	if (v->n == v->cap) {
		int cap = v->cap ? 2 * v->cap : 32;
		int32_t *np = realloc(v->p, (size_t)cap * sizeof *np);
		if (!np)
			return -1;
		v->p = np;
		v->cap = cap;
	}
	v->p[v->n++] = id;
	return 0;
}

/* Appends the ids of text[0..len) (raw SentencePiece, no EOS) to out. */
static int encode_chunk(const mg_tokenizer *t, const char *text, size_t len, struct ids *out)
{
	struct buf nb = {0};
	if (normalize(t, text, len, &nb)) {
		free(nb.p);
		return -1;
	}
	const char *s = nb.p;
	size_t n = nb.n;
	if (n == 0) {
		free(nb.p);
		return 0;
	}
	struct node *best = malloc((n + 1) * sizeof *best);
	int32_t *seq = malloc((n + 1) * sizeof *seq);
	if (!best || !seq) {
		free(best), free(seq), free(nb.p);
		return -1;
	}
	for (size_t i = 0; i <= n; i++)
		best[i] = (struct node){0.0f, -1, -1};
	for (size_t pos = 0; pos < n;) {
		float base = best[pos].score;
		size_t mblen = one_char_len((uint8_t)s[pos]);
		if (mblen > n - pos)
			mblen = n - pos;
		int has_single = 0;
		size_t maxl = t->max_piece_len < n - pos ? t->max_piece_len : n - pos;
		for (size_t l = 1; l <= maxl; l++) {
			int id = lookup(t, s + pos, l);
			if (id < 0)
				continue;
			const struct piece *p = &t->pieces[id];
			if (p->type == PT_UNUSED)
				continue;
			float sc = p->type == PT_USER ? (float)l * t->max_score - 0.1f : p->score;
			float cand = sc + base;
			struct node *e = &best[pos + l];
			if (e->start == -1 || cand > e->score)
				*e = (struct node){cand, (int)pos, id};
			if (l == mblen)
				has_single = 1;
		}
		if (!has_single) {
			float cand = t->unk_score + base;
			struct node *e = &best[pos + mblen];
			if (e->start == -1 || cand > e->score)
				*e = (struct node){cand, (int)pos, t->unk_id};
		}
		pos += mblen;
	}
	/* Backtrack, then emit in order with runs of unknowns merged. */
	int k = 0;
	for (size_t e = n; e > 0; e = (size_t)best[e].start)
		seq[k++] = best[e].id;
	int rc = 0, prev_unk = 0;
	for (int i = k - 1; i >= 0 && !rc; i--) {
		int unk = seq[i] == t->unk_id;
		if (!(unk && prev_unk))
			rc = ids_add(out, seq[i]);
		prev_unk = unk;
	}
	free(best), free(seq), free(nb.p);
	return rc;
}

int mg_sp_encode(const mg_tokenizer *t, const char *text, int32_t **ids, int *n_ids, char *err, size_t errlen)
{
	struct ids v = {0};
	*ids = NULL;
	*n_ids = 0;
	if (encode_chunk(t, text, strlen(text), &v) || ids_add(&v, 0)) {
		free(v.p);
		return tk_err(err, errlen, "out of memory tokenizing a text of %zu bytes", strlen(text));
	}
	v.n--; /* the extra slot keeps a non-NULL array for empty results */
	*ids = v.p;
	*n_ids = v.n;
	return 0;
}

/* The special-token string at s, longest first: its id and length, or 0. */
static size_t special_at(const mg_tokenizer *t, const char *s, int *id)
{
	size_t best = 0;
	if (!strncmp(s, "</s>", 4))
		best = 4, *id = t->eos_id;
	else if (!strncmp(s, "<pad>", 5))
		best = 5, *id = t->pad_id;
	else if (!strncmp(s, "<unk>", 5))
		best = 5, *id = t->unk_id;
	else if (!strncmp(s, "<extra_id_", 10)) {
		const char *p = s + 10;
		int v = 0, digits = 0;
		while (*p >= '0' && *p <= '9' && digits < 3)
			v = v * 10 + (*p++ - '0'), digits++;
		/* "<extra_id_07>" is not a token: the number is written without leading zeros */
		if (digits && *p == '>' && v < N_EXTRA_IDS && !(digits > 1 && s[10] == '0')) {
			best = (size_t)(p + 1 - s);
			*id = t->n_pieces + N_EXTRA_IDS - 1 - v;
		}
	}
	return best;
}

int mg_tokenize(const mg_tokenizer *t, const char *text, int32_t **ids, int *n_ids, char *err, size_t errlen)
{
	struct ids v = {0};
	*ids = NULL;
	*n_ids = 0;
	const char *chunk = text, *s = text;
	int rc = 0;
	while (*s && !rc) {
		int id;
		size_t sl = special_at(t, s, &id);
		if (!sl) {
			s++;
			continue;
		}
		rc = encode_chunk(t, chunk, (size_t)(s - chunk), &v) || ids_add(&v, id);
		s += sl;
		chunk = s;
	}
	if (!rc)
		rc = encode_chunk(t, chunk, (size_t)(s - chunk), &v);
	if (!rc && (v.n == 0 || v.p[v.n - 1] != t->eos_id))
		rc = ids_add(&v, t->eos_id);
	if (rc) {
		free(v.p);
		return tk_err(err, errlen, "out of memory tokenizing a text of %zu bytes", strlen(text));
	}
	*ids = v.p;
	*n_ids = v.n;
	return 0;
}

int mg_tokenize_batch(const mg_tokenizer *t, const char *const *texts, int n_texts, int32_t **ids, int32_t **mask,
                      int *seq_len, char *err, size_t errlen)
{
	*ids = *mask = NULL;
	*seq_len = 0;
	if (n_texts < 1)
		return tk_err(err, errlen, "no texts to tokenize");
	int32_t **each = calloc((size_t)n_texts, sizeof *each);
	int *lens = calloc((size_t)n_texts, sizeof *lens);
	int rc = 0, S = 0;
	if (!each || !lens)
		rc = tk_err(err, errlen, "out of memory");
	for (int i = 0; i < n_texts && !rc; i++) {
		rc = mg_tokenize(t, texts[i], &each[i], &lens[i], err, errlen);
		if (!rc && lens[i] > S)
			S = lens[i];
	}
	if (!rc) {
		*ids = calloc((size_t)n_texts * (size_t)S, sizeof **ids);
		*mask = calloc((size_t)n_texts * (size_t)S, sizeof **mask);
		if (!*ids || !*mask) {
			free(*ids), free(*mask);
			*ids = *mask = NULL;
			rc = tk_err(err, errlen, "out of memory");
		}
	}
	for (int i = 0; i < n_texts && !rc; i++)
		for (int j = 0; j < S; j++) {
			(*ids)[(size_t)i * S + j] = j < lens[i] ? each[i][j] : t->pad_id;
			(*mask)[(size_t)i * S + j] = j < lens[i];
		}
	for (int i = 0; each && i < n_texts; i++)
		free(each[i]);
	free(each);
	free(lens);
	if (!rc)
		*seq_len = S;
	return rc;
}
