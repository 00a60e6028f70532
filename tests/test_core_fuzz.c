/* test_core_fuzz.c - deterministic mutation tests of the two parsers that
 * read untrusted model files: the safetensors container and config.json.
 * Thousands of damaged variants of valid inputs must each be accepted or
 * refused with a message - never a crash, a read outside the data, or a leak
 * (the sanitizer build runs this too). */
#include "autoconfig.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/safetensors.h"
#include "tests/tap.h"

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* A small valid safetensors image: a few tensors of several dtypes. */
static uint8_t *make_image(size_t *len)
{
	static const struct {
		const char *name, *dtype;
		int n, es;
	} t[] = {{"a.weight", "F32", 12, 4}, {"b.bias", "F16", 6, 2}, {"c", "BF16", 4, 2},
	         {"d.table", "F64", 3, 8}, {"e.ids", "I32", 5, 4}, {"f", "F32", 1, 4}};
	json_t *h = json_object();
	json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
	size_t off = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		json_object_set_new(h, t[i].name,
		                    json_pack("{s:s,s:[i],s:[I,I]}", "dtype", t[i].dtype, "shape", t[i].n, "data_offsets",
		                              (json_int_t)off, (json_int_t)(off + (size_t)(t[i].n * t[i].es))));
		off += (size_t)(t[i].n * t[i].es);
	}
	char *text = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	size_t hl = strlen(text);
	*len = 8 + hl + off;
	uint8_t *img = malloc(*len);
	for (int i = 0; i < 8; i++)
		img[i] = (uint8_t)((uint64_t)hl >> (8 * i));
	memcpy(img + 8, text, hl);
	for (size_t i = 0; i < off; i++)
		img[8 + hl + i] = (uint8_t)(i * 37 + 11);
	free(text);
	return img;
}

static int try_open(const char *path, const uint8_t *img, size_t len, int *opened)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	if (len)
		fwrite(img, 1, len, f);
	fclose(f);
	st_set *s = NULL;
	char err[512] = "";
	if (st_open(&s, path, err, sizeof err) == 0) {
		/* Read every float tensor through the conversion, as binding does. */
		(*opened)++;
		for (size_t i = 0; i < st_count(s); i++) {
			const st_tensor *t = st_at(s, i);
			if (t->numel > 0 && t->numel < (1 << 20)) {
				float *d = malloc((size_t)t->numel * sizeof *d);
				st_to_f32(t, d, err, sizeof err);
				st_check_finite(t, err, sizeof err);
				free(d);
			}
		}
		st_close(s);
		return 0;
	}
	return err[0] ? 0 : -1; /* a refusal must say why */
}

static void fuzz_safetensors(const char *dir)
{
	size_t len;
	uint8_t *img = make_image(&len);
	uint8_t *m = malloc(len + 64);
	char path[600];
	snprintf(path, sizeof path, "%s/fuzz.safetensors", dir);
	uint64_t hl = 0;
	for (int i = 7; i >= 0; i--)
		hl = (hl << 8) | img[i];
	int opened = 0, silent = 0, base_ok = 0;
	base_ok = try_open(path, img, len, &opened) == 0 && opened == 1;
	tap_ok(base_ok, "the unmutated image opens");
	enum { N = 1500 };
	for (int it = 0; it < N; it++) {
		memcpy(m, img, len);
		size_t mlen = len;
		int kind = (int)(next() % 6);
		if (kind == 0) /* one random byte in the header */
			m[8 + next() % hl] = (uint8_t)next();
		else if (kind == 1) { /* a digit in the header changed */
			size_t p = 8 + next() % hl;
			for (size_t k = 0; k < hl && !(m[p] >= '0' && m[p] <= '9'); k++)
				p = 8 + (p - 8 + 1) % hl;
			m[p] = (uint8_t)('0' + next() % 10);
		} else if (kind == 2) /* truncated anywhere */
			mlen = next() % len;
		else if (kind == 3) /* a byte of the length prefix */
			m[next() % 8] = (uint8_t)next();
		else if (kind == 4) { /* a structural character replaced */
			static const char sym[] = "{}[]\",:-e. ";
			m[8 + next() % hl] = (uint8_t)sym[next() % (sizeof sym - 1)];
		} else { /* several random bytes anywhere */
			for (int k = 0; k < 4; k++)
				m[next() % len] = (uint8_t)next();
		}
		if (try_open(path, m, mlen, &opened))
			silent++;
	}
	tap_ok(silent == 0, "%d mutated safetensors files: %d opened, the rest refused with a message, no crash", N,
	       opened - 1);
	unlink(path);
	free(m);
	free(img);
}

static void fuzz_config(const char *text)
{
	size_t len = strlen(text);
	char *m = malloc(len + 32);
	mg_config c;
	char err[512];
	int ok0 = mg_config_parse(&c, text, NULL, "config.json", err, sizeof err) == 0;
	tap_ok(ok0, "the unmutated config parses");
	enum { N = 3000 };
	int accepted = 0, silent = 0, insane = 0;
	static const char *const repl[] = {"-1", "0", "1e300", "\"x\"", "null", "[]", "{}", "true", "99999999999"};
	for (int it = 0; it < N; it++) {
		memcpy(m, text, len + 1);
		int kind = (int)(next() % 3);
		if (kind == 0)
			m[next() % len] = (char)(1 + next() % 126);
		else if (kind == 1) { /* a number replaced by something else */
			size_t p = next() % len;
			while (p < len && !(m[p] >= '0' && m[p] <= '9'))
				p++;
			if (p < len) {
				size_t e = p;
				while (e < len && ((m[e] >= '0' && m[e] <= '9') || m[e] == '.'))
					e++;
				const char *r = repl[next() % (sizeof repl / sizeof repl[0])];
				size_t rl = strlen(r);
				if (rl <= e - p + 16) {
					memmove(m + p + rl, m + e, len - e + 1);
					memcpy(m + p, r, rl);
				}
			}
		} else /* cut short */
			m[next() % len] = 0;
		err[0] = 0;
		if (mg_config_parse(&c, m, NULL, "config.json", err, sizeof err) == 0) {
			accepted++;
			/* What is accepted is usable: positive sizes, consistent heads. */
			if (c.dec.hidden_size <= 0 || c.dec.num_heads <= 0 || c.dec.head_dim * c.dec.num_heads != c.dec.hidden_size ||
			    c.t5.d_model <= 0 || c.codec.hop_length <= 0 || c.codec.frame_rate <= 0 || c.dec.num_codebooks <= 0 ||
			    c.dec.max_positions < 2 || c.codec.num_ratios < 1)
				insane++;
		} else if (!err[0] || !strstr(err, "config.json"))
			silent++;
	}
	tap_ok(silent == 0 && insane == 0,
	       "%d mutated config.json texts: %d accepted (all with usable sizes), the rest refused with a message", N,
	       accepted);
	free(m);
}

int main(void)
{
	char dir[256];
	snprintf(dir, sizeof dir, "%s/mg-fuzz-XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		printf("Bail out! cannot make a temporary directory (%s)\n", strerror(errno));
		return 1;
	}
	fuzz_safetensors(dir);
	rmdir(dir);

	const char *top = getenv("MG_TOP_SRCDIR");
	char path[4200];
	snprintf(path, sizeof path, "%s/tests/data/tinyb/config.json", top && *top ? top : ".");
	FILE *f = fopen(path, "rb");
	if (!f) {
		tap_skip("tests/data/tinyb/config.json not found (set MG_TOP_SRCDIR)");
		return tap_done();
	}
	char *text = calloc(1, 1 << 20);
	size_t n = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	text[n] = 0;
	fuzz_config(text);
	free(text);
	return tap_done();
}
