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

/* Every case of refs: T5 ids under `key`, and raw SentencePiece ids when
 * sp_key is given (no EOS in that file's sp_ids). */
static void run_cases(const char *model, const char *refs, const char *key, const char *sp_key, const char *label)
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
		char nm[80];
		snprintf(nm, sizeof nm, "%s", name ? name : text ? text : "?");
		int32_t *ids = NULL;
		int n = 0;
		int ok = text && mg_tokenize(t, text, &ids, &n, err, sizeof err) == 0 &&
		         same_ids(ids, n, json_object_get(c, key));
		if (!tap_ok(ok, "%s case %zu (%.50s): T5 ids", label, i, nm))
			show("got", ids, n);
		free(ids);
		if (sp_key) {
			ok = text && mg_sp_encode(t, text, &ids, &n, err, sizeof err) == 0 &&
			     same_ids(ids, n, json_object_get(c, sp_key));
			if (!tap_ok(ok, "%s case %zu (%.50s): SentencePiece ids", label, i, nm))
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

int main(void)
{
	const char *ref = tap_require_ref();
	char model[4200], refs[4200];
	snprintf(model, sizeof model, "%s/t5/spiece.model", ref);
	snprintf(refs, sizeof refs, "%s/t5/tokenizer_refs.json", ref);
	run_cases(model, refs, "ids", NULL, "t5-base");
	batch(model);
	damaged(model);
	snprintf(model, sizeof model, "%s/fixtures/tokenizer/spiece.model", ref);
	snprintf(refs, sizeof refs, "%s/fixtures/tokenizer/tokenizer_refs.json", ref);
	run_cases(model, refs, "t5_ids", "sp_ids", "edge cases");
	return tap_done();
}
