/* tokenizer.c - SentencePiece unigram tokenization with T5's conventions.
 *
 * spiece.model is a protobuf (sentencepiece.ModelProto) parsed by hand here
 * with every length checked against the buffer, and checked the way
 * SentencePiece checks it when it loads a model (one unknown piece, no empty
 * or repeated piece, byte pieces only with byte_fallback). Normalisation
 * follows the precompiled charsmap the file carries (a Darts double-array
 * trie over UTF-8 bytes plus a pool of replacement strings); segmentation is
 * the unigram Viterbi search of SentencePiece's EncodeOptimized with its
 * exact arithmetic and tie-breaking; runs of unknown pieces merge into one.
 * T5Tokenizer then splits special-token strings out first, maps each piece
 * string to its id and appends EOS. */
#include "autoconfig.h"

#include <errno.h>
#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/errf.h"
#include "engine/tokenizer.h"

enum piece_type { PT_NORMAL = 1, PT_UNKNOWN = 2, PT_CONTROL = 3, PT_USER = 4, PT_UNUSED = 5, PT_BYTE = 6 };
enum model_type { MT_UNIGRAM = 1 };

#define N_EXTRA_IDS 100       /* <extra_id_0> .. <extra_id_99>, added by T5Tokenizer */
#define UNK_PENALTY 10.0f     /* SentencePiece's kUnkPenalty */
#define SPACE_SYMBOL "\xE2\x96\x81" /* U+2581 */

struct piece {
	char *str;
	size_t len;
	float score;
	int type;
};

/* Open-addressing hash from piece string to id (FNV-1a, computed one byte
 * at a time so the Viterbi search extends a candidate without rehashing). */
struct piece_map {
	int32_t *slots; /* -1 = empty */
	size_t n_slots; /* a power of two */
};

struct mg_tokenizer {
	struct piece *pieces;
	int n_pieces;
	struct piece_map normal;   /* matchable from text: NORMAL, USER_DEFINED, UNUSED */
	struct piece_map reserved; /* CONTROL, UNKNOWN, BYTE: only by exact name */
	size_t max_piece_len;      /* longest matchable piece, bytes */
	int unk_id, eos_id, pad_id, unk_token_id;
	float max_score, unk_score;
	int n_user;                /* USER_DEFINED pieces (matched before normalisation) */
	int byte_fallback, ws_suffix;
	int byte_ids[256];         /* <0xXX> pieces when byte_fallback */
	/* normaliser */
	int add_dummy_prefix, remove_extra_ws, escape_ws;
	uint8_t *charsmap;         /* owned copy of precompiled_charsmap */
	size_t charsmap_len;
	uint32_t *units;           /* trie units, host order */
	size_t n_units;
	const char *pool;          /* replacement strings, inside charsmap */
	size_t pool_len;
};

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

/* ---- piece maps ---- */

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

static uint64_t hash_step(uint64_t h, uint8_t c)
{
	return (h ^ c) * FNV_PRIME;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = FNV_OFFSET;
	for (size_t i = 0; i < n; i++)
		h = hash_step(h, (uint8_t)s[i]);
	return h;
}

/* The id of s[0..n) whose hash is h, or -1. */
static int map_find_h(const mg_tokenizer *t, const struct piece_map *m, uint64_t h, const char *s, size_t n)
{
	if (!m->n_slots)
		return -1;
	size_t mask = m->n_slots - 1, i = (size_t)h & mask;
	for (;;) {
		int32_t id = m->slots[i];
		if (id < 0)
			return -1;
		const struct piece *p = &t->pieces[id];
		if (p->len == n && !memcmp(p->str, s, n))
			return id;
		i = (i + 1) & mask;
	}
}

static int map_find(const mg_tokenizer *t, const struct piece_map *m, const char *s, size_t n)
{
	return map_find_h(t, m, hash_bytes(s, n), s, n);
}

static int map_alloc(struct piece_map *m, int n_pieces)
{
	size_t n = 16;
	while (n < 2 * (size_t)n_pieces + 16)
		n <<= 1;
	m->slots = malloc(n * sizeof *m->slots);
	if (!m->slots)
		return -1;
	memset(m->slots, 0xff, n * sizeof *m->slots);
	m->n_slots = n;
	return 0;
}

/* Adds piece id; 1 when its string is already in the map. */
static int map_add(mg_tokenizer *t, struct piece_map *m, int id)
{
	const struct piece *p = &t->pieces[id];
	if (map_find(t, m, p->str, p->len) >= 0)
		return 1;
	size_t mask = m->n_slots - 1, i = (size_t)hash_bytes(p->str, p->len) & mask;
	while (m->slots[i] >= 0)
		i = (i + 1) & mask;
	m->slots[i] = id;
	return 0;
}

/* SentencePiece's PieceToId: reserved names first, then matchable pieces,
 * else the unknown id. */
static int piece_to_id(const mg_tokenizer *t, const char *s, size_t n)
{
	int id = map_find(t, &t->reserved, s, n);
	if (id < 0)
		id = map_find(t, &t->normal, s, n);
	return id < 0 ? t->unk_id : id;
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

struct trainer {
	int model_type, unk_id, eos_id, pad_id, byte_fallback, ws_suffix;
};

static int parse_trainer(struct pb b, struct trainer *tr)
{
	struct field f;
	while (b.p < b.end) {
		if (pb_field(&b, &f))
			return -1;
		if (f.wt != 0)
			continue;
		int32_t v = (int32_t)f.v;
		switch (f.num) {
		case 3: tr->model_type = v; break;
		case 24: tr->ws_suffix = f.v != 0; break;
		case 35: tr->byte_fallback = f.v != 0; break;
		case 40: tr->unk_id = v; break;
		case 42: tr->eos_id = v; break;
		case 43: tr->pad_id = v; break;
		default: break;
		}
	}
	return 0;
}

static int parse_normalizer(mg_tokenizer *t, struct pb b, char *err, size_t errlen, const char *what)
{
	struct field f;
	while (b.p < b.end) {
		if (pb_field(&b, &f))
			return mg_errf(err, errlen, "%s: malformed normalizer_spec", what);
		if (f.num == 2 && f.wt == 2) {
			size_t n = (size_t)(f.sub.end - f.sub.p);
			free(t->charsmap);
			t->charsmap = malloc(n ? n : 1);
			if (!t->charsmap)
				return mg_errf(err, errlen, "%s: out of memory", what);
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

/* precompiled_charsmap = uint32 LE trie size T, T bytes of trie units, the
 * pool of NUL-terminated replacement strings. */
static int setup_charsmap(mg_tokenizer *t, char *err, size_t errlen, const char *what)
{
	if (!t->charsmap || t->charsmap_len == 0)
		return 0; /* no normalisation rules: characters pass through */
	if (t->charsmap_len <= 4)
		return mg_errf(err, errlen, "%s: precompiled charsmap too short (%zu bytes)", what, t->charsmap_len);
	const uint8_t *c = t->charsmap;
	uint32_t T = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
	if (T % 4 || T == 0 || (size_t)T > t->charsmap_len - 4)
		return mg_errf(err, errlen, "%s: precompiled charsmap trie size %u does not fit (%zu bytes)", what, T,
		              t->charsmap_len);
	t->n_units = T / 4;
	t->units = malloc(T);
	if (!t->units)
		return mg_errf(err, errlen, "%s: out of memory", what);
	for (size_t i = 0; i < t->n_units; i++) {
		const uint8_t *u = c + 4 + 4 * i;
		t->units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
	}
	t->pool = (const char *)c + 4 + T;
	t->pool_len = t->charsmap_len - 4 - T;
	return 0;
}

/* "<0xAB>" (upper-case hex, as SentencePiece names byte pieces) -> 0xAB, or -1. */
static int byte_piece_value(const struct piece *p)
{
	static const char hex[] = "0123456789ABCDEF";
	if (p->len != 6 || memcmp(p->str, "<0x", 3) || p->str[5] != '>')
		return -1;
	const char *hi = memchr(hex, p->str[3], 16), *lo = memchr(hex, p->str[4], 16);
	if (!hi || !lo || !p->str[3] || !p->str[4])
		return -1;
	return (int)((hi - hex) * 16 + (lo - hex));
}

/* The checks SentencePiece makes when it loads a model, and the tables. */
static int index_pieces(mg_tokenizer *t, const struct trainer *tr, char *err, size_t errlen, const char *what)
{
	int n = t->n_pieces, n_matchable = 0, n_bytes = 0;
	if (map_alloc(&t->normal, n) || map_alloc(&t->reserved, n))
		return mg_errf(err, errlen, "%s: out of memory", what);
	t->unk_id = -1;
	for (int i = 0; i < 256; i++)
		t->byte_ids[i] = -1;
	for (int i = 0; i < n; i++) {
		const struct piece *p = &t->pieces[i];
		if (p->len == 0)
			return mg_errf(err, errlen, "%s: piece %d is empty", what, i);
		int matchable = p->type == PT_NORMAL || p->type == PT_USER || p->type == PT_UNUSED;
		if (map_add(t, matchable ? &t->normal : &t->reserved, i))
			return mg_errf(err, errlen, "%s: piece %d '%.40s' is defined twice", what, i, p->str);
		n_matchable += matchable;
		if (matchable && p->len > t->max_piece_len)
			t->max_piece_len = p->len;
		if (p->type == PT_USER)
			t->n_user++;
		if (p->type == PT_UNKNOWN) {
			if (t->unk_id >= 0)
				return mg_errf(err, errlen, "%s: pieces %d and %d are both the unknown piece", what, t->unk_id,
				              i);
			t->unk_id = i;
		}
		if (p->type == PT_BYTE) {
			int v = byte_piece_value(p);
			if (!tr->byte_fallback)
				return mg_errf(err, errlen, "%s: byte piece %d '%.40s' although byte_fallback is off", what, i,
				              p->str);
			if (v < 0)
				return mg_errf(err, errlen, "%s: byte piece %d '%.40s' is not <0xXX>", what, i, p->str);
			if (t->byte_ids[v] < 0)
				n_bytes++;
			t->byte_ids[v] = i;
		}
	}
	if (t->unk_id < 0)
		return mg_errf(err, errlen, "%s: no unknown piece", what);
	if (tr->unk_id >= 0 && tr->unk_id != t->unk_id)
		return mg_errf(err, errlen, "%s: trainer unk_id %d is not the unknown piece %d", what, tr->unk_id,
		              t->unk_id);
	if (n_matchable == 0)
		return mg_errf(err, errlen, "%s: no pieces that text can match", what);
	if (tr->byte_fallback && n_bytes != 256)
		return mg_errf(err, errlen, "%s: byte_fallback is on but only %d of the 256 byte pieces exist", what,
		              n_bytes);
	/* Scores as SentencePiece keeps them: min/max over NORMAL pieces,
	 * starting from FLT_MAX / FLT_MIN (so max_score is never below the
	 * smallest positive float; it only matters for USER_DEFINED pieces). */
	float min_s = FLT_MAX, max_s = FLT_MIN;
	for (int i = 0; i < n; i++) {
		const struct piece *p = &t->pieces[i];
		if (p->type != PT_NORMAL)
			continue;
		if (p->score < min_s)
			min_s = p->score;
		if (p->score > max_s)
			max_s = p->score;
	}
	t->unk_score = min_s - UNK_PENALTY;
	t->max_score = max_s;
	/* The ids T5Tokenizer gives its special tokens: those of the pieces
	 * named "</s>", "<pad>" and "<unk>" (the trainer's ids otherwise). */
	t->eos_id = map_find(t, &t->reserved, "</s>", 4);
	if (t->eos_id < 0)
		t->eos_id = tr->eos_id >= 0 && tr->eos_id < n ? tr->eos_id : 1;
	t->pad_id = map_find(t, &t->reserved, "<pad>", 5);
	if (t->pad_id < 0)
		t->pad_id = tr->pad_id >= 0 && tr->pad_id < n ? tr->pad_id : 0;
	t->unk_token_id = piece_to_id(t, "<unk>", 5);
	return 0;
}

static int parse_model(mg_tokenizer *t, const uint8_t *data, size_t len, const char *what, char *err, size_t errlen)
{
	struct pb b = {data, data + len};
	struct field f;
	int n = 0, cap = 0, have_trainer = 0, have_normalizer = 0;
	struct trainer tr = {MT_UNIGRAM, -1, -1, -1, 0, 0};
	t->add_dummy_prefix = t->remove_extra_ws = t->escape_ws = 1;
	if (len == 0)
		return mg_errf(err, errlen, "%s: empty file", what);
	while (b.p < b.end) {
		if (pb_field(&b, &f))
			return mg_errf(err, errlen, "%s: not a SentencePiece model (malformed protobuf at byte %zu)", what,
			              (size_t)(b.p - data));
		if (f.num == 1) {
			if (f.wt != 2)
				return mg_errf(err, errlen, "%s: malformed piece entry", what);
			if (n == INT32_MAX / 2)
				return mg_errf(err, errlen, "%s: too many pieces", what);
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				struct piece *np = realloc(t->pieces, (size_t)cap * sizeof *np);
				if (!np)
					return mg_errf(err, errlen, "%s: out of memory", what);
				t->pieces = np;
			}
			if (parse_piece(f.sub, &t->pieces[n]))
				return mg_errf(err, errlen, "%s: piece %d is malformed", what, n);
			t->n_pieces = ++n;
		} else if (f.num == 2 && f.wt == 2) {
			have_trainer = 1;
			if (parse_trainer(f.sub, &tr))
				return mg_errf(err, errlen, "%s: malformed trainer_spec", what);
		} else if (f.num == 3 && f.wt == 2) {
			have_normalizer = 1;
			if (parse_normalizer(t, f.sub, err, errlen, what))
				return -1;
		}
	}
	if (n == 0)
		return mg_errf(err, errlen, "%s: not a SentencePiece model (no pieces)", what);
	/* Both specs follow the pieces in every model SentencePiece writes: a
	 * file without them was cut short. */
	if (!have_trainer || !have_normalizer)
		return mg_errf(err, errlen, "%s: incomplete SentencePiece model (no %s): the file is truncated", what,
		              have_trainer ? "normalizer_spec" : "trainer_spec");
	if (tr.model_type != MT_UNIGRAM)
		return mg_errf(err, errlen, "%s: model_type %d is not unigram (1); only unigram models are supported", what,
		              tr.model_type);
	t->byte_fallback = tr.byte_fallback;
	t->ws_suffix = tr.ws_suffix;
	if (index_pieces(t, &tr, err, errlen, what))
		return -1;
	return setup_charsmap(t, err, errlen, what);
}

int mg_tokenizer_load_mem(mg_tokenizer **out, const void *data, size_t len, const char *what, char *err,
                          size_t errlen)
{
	*out = NULL;
	if (!what)
		what = "spiece.model";
	if (!data && len)
		return mg_errf(err, errlen, "%s: no data", what);
	mg_tokenizer *t = calloc(1, sizeof *t);
	if (!t)
		return mg_errf(err, errlen, "%s: out of memory", what);
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
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return mg_errf(err, errlen, "%s: not a regular file", path);
	FILE *f = fopen(path, "rb");
	if (!f)
		return mg_errf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
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
			return mg_errf(err, errlen, "%s: larger than 256 MB, not a SentencePiece model", path);
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
		return mg_errf(err, errlen, "%s: out of memory", path);
	if (bad) {
		free(buf);
		return mg_errf(err, errlen, "%s: read error", path);
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
	free(t->normal.slots);
	free(t->reserved.slots);
	free(t->charsmap);
	free(t->units);
	free(t);
}

int mg_tokenizer_vocab_size(const mg_tokenizer *t)
{
	return t->n_pieces + N_EXTRA_IDS;
}

int mg_tokenizer_eos_id(const mg_tokenizer *t)
{
	return t->eos_id;
}

int mg_tokenizer_pad_id(const mg_tokenizer *t)
{
	return t->pad_id;
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

/* SentencePiece's DecodeUTF8 validity: the length of the well-formed UTF-8
 * character at s (n bytes available), or 0 if malformed (overlong forms,
 * surrogates and code points past U+10FFFF included). */
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

/* Darts-clone unit fields. */
static uint32_t unit_offset(uint32_t u)
{
	return (u >> 10) << ((u & (1u << 9)) >> 6);
}

/* Longest match of the charsmap trie on s[0..n) (common-prefix search):
 * the replacement's offset in the pool, or -1. Every index is checked, so
 * a damaged trie ends the match instead of reading outside it. */
static long charsmap_match(const mg_tokenizer *t, const uint8_t *s, size_t n, size_t *match_len)
{
	const uint32_t *u = t->units;
	size_t nu = t->n_units, pos = unit_offset(u[0]);
	long best = -1;
	for (size_t i = 0; i < n; i++) {
		pos ^= s[i];
		if (pos >= nu)
			break;
		uint32_t unit = u[pos];
		if ((unit & 0x800000ffu) != s[i])
			break;
		pos ^= unit_offset(unit);
		if (pos >= nu)
			break;
		if ((unit >> 8) & 1) {
			best = (long)(u[pos] & 0x7fffffffu);
			*match_len = i + 1;
		}
	}
	return best;
}

/* NormalizePrefix: the replacement of the text at s and the bytes consumed. */
static void normalize_prefix(const mg_tokenizer *t, const uint8_t *s, size_t n, const char **rep, size_t *rep_len,
                             size_t *consumed)
{
	/* USER_DEFINED pieces pass through unnormalised, longest first. */
	if (t->n_user) {
		size_t best = 0;
		uint64_t h = FNV_OFFSET;
		for (size_t l = 1; l <= n && l <= t->max_piece_len; l++) {
			h = hash_step(h, s[l - 1]);
			int id = map_find_h(t, &t->normal, h, (const char *)s, l);
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
	} else { /* malformed: U+FFFD for one byte */
		*rep = "\xEF\xBF\xBD";
		*rep_len = 3;
		*consumed = 1;
	}
}

/* Normalizer::Normalize: the charsmap, then the whitespace rules (leading,
 * repeated and trailing spaces dropped, the dummy prefix, spaces escaped as
 * U+2581). */
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
	if (!t->ws_suffix && t->add_dummy_prefix && buf_add(out, space, space_len))
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
		if (!t->remove_extra_ws)
			prev_space = 0;
		s += used;
		n -= used;
	}
	if (t->remove_extra_ws)
		while (out->n >= space_len && !memcmp(out->p + out->n - space_len, space, space_len))
			out->p[out->n -= space_len] = 0;
	if (t->ws_suffix && t->add_dummy_prefix && buf_add(out, space, space_len))
		return -1;
	return 0;
}

/* ---- unigram Viterbi ---- */

/* The best path ending at one byte position. */
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
		if (v->cap > INT32_MAX / 4)
			return -1;
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

/* Model::EncodeOptimized over the normalised bytes s[0..n): best[n] and its
 * back links. The arithmetic is SentencePiece's to the bit: a piece's
 * candidate is the double sum of its score and the float path score,
 * compared in double with the stored float path score and stored rounded
 * to float (the user-defined score's 0.1 literal makes that expression
 * double); the unknown candidate is float throughout. For one end position
 * the first candidate with the best score wins (starts in increasing
 * order, each start's pieces shortest first, then its unknown). */
static void viterbi(const mg_tokenizer *t, const char *s, size_t n, struct node *best)
{
	for (size_t i = 0; i <= n; i++)
		best[i] = (struct node){0.0f, -1, -1};
	for (size_t pos = 0; pos < n;) {
		float base = best[pos].score;
		size_t mblen = one_char_len((uint8_t)s[pos]);
		if (mblen > n - pos)
			mblen = n - pos;
		int has_single = 0;
		size_t maxl = t->max_piece_len < n - pos ? t->max_piece_len : n - pos;
		uint64_t h = FNV_OFFSET;
		for (size_t l = 1; l <= maxl; l++) {
			h = hash_step(h, (uint8_t)s[pos + l - 1]);
			int id = map_find_h(t, &t->normal, h, s + pos, l);
			if (id < 0)
				continue;
			const struct piece *p = &t->pieces[id];
			if (p->type == PT_UNUSED)
				continue;
			double sc = p->type == PT_USER ? (double)((float)l * t->max_score) - 0.1 : (double)p->score;
			double cand = sc + (double)base;
			struct node *e = &best[pos + l];
			if (e->start == -1 || cand > (double)e->score)
				*e = (struct node){(float)cand, (int)pos, id};
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
}

static size_t special_at(const mg_tokenizer *t, const char *s, size_t n, int *id);

/* The id T5Tokenizer gives a piece string: an added token's id, else
 * SentencePiece's PieceToId. For a piece from the search this is its own
 * id; a merged run of unknown characters may spell a real piece. */
static int t5_piece_id(const mg_tokenizer *t, const char *s, size_t n)
{
	int id;
	if (special_at(t, s, n, &id) == n)
		return id;
	return piece_to_id(t, s, n);
}

/* Appends the ids of text[0..len) to out: raw SentencePiece ids, or with
 * t5 set the ids T5Tokenizer derives from the same pieces. No EOS. */
static int encode_chunk(const mg_tokenizer *t, const char *text, size_t len, int t5, struct ids *out)
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
	if (n >= INT32_MAX) {
		free(nb.p);
		return -1;
	}
	struct node *best = malloc((n + 1) * sizeof *best);
	int *ends = malloc((n + 1) * sizeof *ends);
	if (!best || !ends) {
		free(best), free(ends), free(nb.p);
		return -1;
	}
	viterbi(t, s, n, best);
	/* Back links give the pieces last to first; ends[] lists their ends. */
	int k = 0;
	for (size_t e = n; e > 0; e = (size_t)best[e].start)
		ends[k++] = (int)e;
	int rc = 0;
	for (int i = k - 1; i >= 0 && !rc; i--) {
		int end = ends[i], start = best[end].start, id = best[end].id;
		if (id != t->unk_id) {
			rc = ids_add(out, t5 ? t5_piece_id(t, s + start, (size_t)(end - start)) : id);
		} else if (t->byte_fallback) {
			/* an unknown piece becomes its UTF-8 bytes */
			for (int b = start; b < end && !rc; b++)
				rc = ids_add(out, t->byte_ids[(uint8_t)s[b]]);
		} else {
			/* a run of unknown pieces merges into one */
			while (i > 0 && best[ends[i - 1]].id == t->unk_id)
				end = ends[--i];
			rc = ids_add(out, t5 ? t5_piece_id(t, s + start, (size_t)(end - start)) : id);
		}
	}
	free(best), free(ends), free(nb.p);
	return rc;
}

int mg_sp_encode(const mg_tokenizer *t, const char *text, int32_t **ids, int *n_ids, char *err, size_t errlen)
{
	struct ids v = {0};
	*ids = NULL;
	*n_ids = 0;
	if (!text)
		return mg_errf(err, errlen, "no text to tokenize");
	if (encode_chunk(t, text, strlen(text), 0, &v) || ids_add(&v, 0)) {
		free(v.p);
		return mg_errf(err, errlen, "out of memory tokenizing a text of %zu bytes", strlen(text));
	}
	v.n--; /* the extra slot keeps a non-NULL array for empty results */
	*ids = v.p;
	*n_ids = v.n;
	return 0;
}

/* The special-token string T5Tokenizer splits out at s[0..n): its length
 * and id, or 0. `</s>`, `<pad>`, `<unk>`, `<extra_id_N>` (N in 0..99 with
 * no leading zero; id pieces + 99 - N). None is a prefix of another. */
static size_t special_at(const mg_tokenizer *t, const char *s, size_t n, int *id)
{
	if (n >= 4 && !memcmp(s, "</s>", 4)) {
		*id = t->eos_id;
		return 4;
	}
	if (n >= 5 && !memcmp(s, "<pad>", 5)) {
		*id = t->pad_id;
		return 5;
	}
	if (n >= 5 && !memcmp(s, "<unk>", 5)) {
		*id = t->unk_token_id;
		return 5;
	}
	if (n >= 12 && !memcmp(s, "<extra_id_", 10)) {
		size_t i = 10;
		int v = 0;
		while (i < n && i < 12 && s[i] >= '0' && s[i] <= '9')
			v = v * 10 + (s[i++] - '0');
		if (i > 10 && i < n && s[i] == '>' && !(i == 12 && s[10] == '0')) {
			*id = t->n_pieces + N_EXTRA_IDS - 1 - v;
			return i + 1;
		}
	}
	return 0;
}

int mg_tokenize(const mg_tokenizer *t, const char *text, int32_t **ids, int *n_ids, char *err, size_t errlen)
{
	struct ids v = {0};
	*ids = NULL;
	*n_ids = 0;
	if (!text)
		return mg_errf(err, errlen, "no text to tokenize");
	size_t len = strlen(text), chunk = 0, i = 0;
	int rc = 0;
	/* Special-token strings first; each stretch between them is encoded
	 * on its own (with its own dummy prefix: T5Tokenizer's legacy mode). */
	while (i < len && !rc) {
		int id;
		size_t sl = text[i] == '<' ? special_at(t, text + i, len - i, &id) : 0;
		if (!sl) {
			i++;
			continue;
		}
		rc = encode_chunk(t, text + chunk, i - chunk, 1, &v) || ids_add(&v, id);
		i += sl;
		chunk = i;
	}
	if (!rc)
		rc = encode_chunk(t, text + chunk, len - chunk, 1, &v);
	if (!rc && (v.n == 0 || v.p[v.n - 1] != t->eos_id))
		rc = ids_add(&v, t->eos_id);
	if (rc) {
		free(v.p);
		return mg_errf(err, errlen, "out of memory tokenizing a text of %zu bytes", len);
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
	if (n_texts < 1 || !texts)
		return mg_errf(err, errlen, "no texts to tokenize");
	int32_t **each = calloc((size_t)n_texts, sizeof *each);
	int *lens = calloc((size_t)n_texts, sizeof *lens);
	int rc = 0, S = 0;
	if (!each || !lens)
		rc = mg_errf(err, errlen, "out of memory");
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
			rc = mg_errf(err, errlen, "out of memory");
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
