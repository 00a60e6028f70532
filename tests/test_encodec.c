/* test_encodec.c - EnCodec against what Hugging Face computed for tiny-a:
 * every decoder and encoder layer, the codes, the audio; both weight-norm
 * spellings; missing and misshaped tensors. */
#include "autoconfig.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/encodec.h"
#include "engine/pool.h"
#include "engine/safetensors.h"
#include "tests/tap.h"

/* A fixture tensor as float32 (NULL if absent). */
static float *fixture_f32(const st_set *fx, const char *name, int64_t *numel)
{
	const st_tensor *t = st_find(fx, name);
	char err[256];
	if (!t)
		return NULL;
	float *d = malloc((size_t)t->numel * sizeof(float) + 1);
	if (!d || st_to_f32(t, d, err, sizeof err)) {
		free(d);
		return NULL;
	}
	*numel = t->numel;
	return d;
}

/* A fixture int64 tensor as int32 (NULL if absent or not I64). */
static int32_t *fixture_i32(const st_set *fx, const char *name, int64_t *numel)
{
	const st_tensor *t = st_find(fx, name);
	if (!t || t->dtype != ST_I64)
		return NULL;
	int32_t *d = malloc((size_t)t->numel * sizeof(int32_t) + 1);
	if (!d)
		return NULL;
	for (int64_t i = 0; i < t->numel; i++) {
		int64_t v;
		memcpy(&v, t->data + i * 8, 8);
		d[i] = (int32_t)v;
	}
	*numel = t->numel;
	return d;
}

/* max |a - b| / max |ref| and the relative L2 error. */
static void compare(const float *a, const float *ref, int64_t n, double *rel_max, double *rel_l2)
{
	double emax = 0, rmax = 0, e2 = 0, r2 = 0;
	for (int64_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - ref[i]);
		if (!(d <= emax))
			emax = isnan(d) ? INFINITY : d;
		if (fabs(ref[i]) > rmax)
			rmax = fabs(ref[i]);
		e2 += d * d;
		r2 += (double)ref[i] * ref[i];
	}
	*rel_max = rmax > 0 ? emax / rmax : emax;
	*rel_l2 = r2 > 0 ? sqrt(e2 / r2) : sqrt(e2);
}

struct layer_check {
	const st_set *fx;
	const char *prefix;   /* "decode_layer_" / "encode_layer_" */
	const char *first;    /* fixture name for tap layer -1, or NULL */
	int checked;
	double worst;
	float *last;          /* copy of the last layer's output */
	int64_t last_n;
};

static void check_tap(void *user, int layer, const float *x, int channels, int64_t length)
{
	struct layer_check *lc = user;
	char name[64];
	if (layer < 0) {
		if (!lc->first)
			return;
		snprintf(name, sizeof name, "%s", lc->first);
	} else {
		snprintf(name, sizeof name, "%s%02d", lc->prefix, layer);
	}
	int64_t n = 0;
	float *ref = fixture_f32(lc->fx, name, &n);
	if (!ref) {
		tap_ok(0, "%s: reference tensor present", name);
		return;
	}
	int64_t have = (int64_t)channels * length;
	if (n != have) {
		tap_ok(0, "%s: %lld values, reference has %lld", name, (long long)have, (long long)n);
		free(ref);
		return;
	}
	double rel_max, rel_l2;
	compare(x, ref, n, &rel_max, &rel_l2);
	tap_diag("%s [%d x %lld]: max abs error / max |ref| = %.3g, relative L2 = %.3g", name, channels,
	         (long long)length, rel_max, rel_l2);
	tap_ok(rel_max <= 1e-4, "%s within 1e-4 of the reference's max", name);
	if (rel_max > lc->worst)
		lc->worst = rel_max;
	lc->checked++;
	free(lc->last);
	lc->last = malloc((size_t)n * sizeof(float));
	if (lc->last)
		memcpy(lc->last, x, (size_t)n * sizeof(float));
	lc->last_n = n;
	free(ref);
}

/* A copy of every tensor of src into a new in-memory set, with names passed
 * through rename (NULL result: drop the tensor) and one tensor optionally
 * given another shape. */
typedef const char *(*rename_fn)(const char *name, char *buf, size_t n, void *user);

static st_set *copy_set(const st_set *src, rename_fn rename, void *user, const char *reshape_name,
                        const int64_t *new_shape, int new_ndim)
{
	st_set *dst = st_new_memory();
	if (!dst)
		return NULL;
	for (size_t i = 0; i < st_count(src); i++) {
		const st_tensor *t = st_at(src, i);
		char buf[512];
		const char *name = rename ? rename(t->name, buf, sizeof buf, user) : t->name;
		if (!name)
			continue;
		int ndim = t->ndim;
		int64_t shape[ST_MAX_DIMS];
		memcpy(shape, t->shape, sizeof shape);
		size_t bytes = t->nbytes;
		if (reshape_name && !strcmp(t->name, reshape_name)) {
			ndim = new_ndim;
			memcpy(shape, new_shape, (size_t)new_ndim * sizeof(int64_t));
			bytes = st_dtype_size(t->dtype);
			for (int d = 0; d < ndim; d++)
				bytes *= (size_t)shape[d];
		}
		void *data = calloc(1, bytes + 1);
		if (!data) {
			st_close(dst);
			return NULL;
		}
		memcpy(data, t->data, bytes < t->nbytes ? bytes : t->nbytes);
		if (st_add_owned(dst, name, t->dtype, ndim, shape, data)) {
			st_close(dst);
			return NULL;
		}
	}
	return dst;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static const char *to_parametrizations(const char *name, char *buf, size_t n, void *user)
{
	(void)user;
	size_t len = strlen(name);
	if (ends_with(name, ".weight_g")) {
		snprintf(buf, n, "%.*s.parametrizations.weight.original0", (int)(len - 9), name);
		return buf;
	}
	if (ends_with(name, ".weight_v")) {
		snprintf(buf, n, "%.*s.parametrizations.weight.original1", (int)(len - 9), name);
		return buf;
	}
	return name;
}

static const char *drop_one(const char *name, char *buf, size_t n, void *user)
{
	(void)buf;
	(void)n;
	return strcmp(name, (const char *)user) ? name : NULL;
}

static const char *drop_prefix(const char *name, char *buf, size_t n, void *user)
{
	(void)buf;
	(void)n;
	return strncmp(name, (const char *)user, strlen((const char *)user)) ? name : NULL;
}

static void test_bad_set(const st_set *model, const mg_encodec_config *c, const char *what, rename_fn fn,
                         void *user, const char *reshape, const int64_t *shape, int ndim, const char *expect)
{
	st_set *s = copy_set(model, fn, user, reshape, shape, ndim);
	if (!s) {
		tap_ok(0, "%s: set copied", what);
		return;
	}
	mg_encodec e;
	char err[512] = "";
	int rc = mg_encodec_bind(&e, s, c, err, sizeof err);
	tap_diag("%s: %s", what, err);
	tap_ok(rc != 0 && strstr(err, expect) != NULL, "%s: bind fails naming '%s'", what, expect);
	if (!rc)
		mg_encodec_free(&e);
	st_close(s);
}

int main(void)
{
	const char *ref = tap_require_ref();
	char path[4400], err[512] = "";
	mg_config cfg;
	st_set *model = NULL, *fx = NULL;

	snprintf(path, sizeof path, "%s/models/tiny-a", ref);
	if (mg_config_load(&cfg, path, err, sizeof err) || st_open(&model, path, err, sizeof err)) {
		tap_ok(0, "tiny-a loads: %s", err);
		return tap_done();
	}
	snprintf(path, sizeof path, "%s/fixtures/tiny-a/encodec.safetensors", ref);
	if (st_open(&fx, path, err, sizeof err)) {
		tap_ok(0, "fixture opens: %s", err);
		st_close(model);
		return tap_done();
	}
	mg_pool *pool = mg_pool_new(2);
	mg_encodec e;
	int bound = !mg_encodec_bind(&e, model, &cfg.codec, err, sizeof err);
	tap_ok(bound, "bind tiny-a's EnCodec %s", err);
	if (!bound) {
		mg_pool_free(pool);
		st_close(fx);
		st_close(model);
		return tap_done();
	}
	tap_diag("EnCodec: %d decoder layers, %d encoder layers, %zu weights", e.n_dec, e.n_enc,
	         mg_encodec_param_count(&e));

	/* Decode: fixed random codes [1, 1, K, F]. */
	int64_t ncodes = 0;
	int32_t *codes = fixture_i32(fx, "decode_codes", &ncodes);
	const st_tensor *ct = st_find(fx, "decode_codes");
	int F = ct ? (int)ct->shape[3] : 0, nq = ct ? (int)ct->shape[2] : 0;
	float *audio = NULL, *audio2 = NULL;
	int64_t na = 0;
	if (!codes || ncodes != (int64_t)nq * F || nq > e.n_q_stored) {
		tap_ok(0, "decode_codes has at most %d quantizers", e.n_q_stored);
	} else {
		int64_t len = mg_encodec_decoded_length(&e, F);
		audio = malloc((size_t)len * sizeof(float));
		struct layer_check lc = {fx, "decode_layer_", "decode_quantized", 0, 0, NULL, 0};
		int rc = mg_encodec_decode_tap(&e, pool, codes, nq, F, audio, check_tap, &lc, err, sizeof err);
		tap_ok(!rc, "decode %d frames %s", F, err);
		tap_ok(lc.checked == e.n_dec + 1, "all %d decoder layers and the RVQ output compared (%d)", e.n_dec,
		       lc.checked);
		float *ra = fixture_f32(fx, "decode_audio", &na);
		if (!rc && ra && na == len) {
			double rel_max, rel_l2;
			compare(audio, ra, na, &rel_max, &rel_l2);
			tap_diag("decode_audio: max abs error / max |ref| = %.3g, relative L2 = %.3g", rel_max, rel_l2);
			tap_ok(rel_l2 <= 1e-4 && rel_max <= 1e-4, "decoded audio matches (relative L2 %.3g)", rel_l2);
		} else {
			tap_ok(0, "decode_audio present with %lld samples", (long long)len);
		}
		free(ra);
		free(lc.last);

		/* The same result with no tap and one thread. */
		audio2 = malloc((size_t)len * sizeof(float));
		rc = mg_encodec_decode_n(&e, NULL, codes, nq, F, audio2, err, sizeof err);
		double rel_max = 1, rel_l2 = 1;
		if (!rc)
			compare(audio2, audio, len, &rel_max, &rel_l2);
		tap_diag("one thread vs the pool: max abs difference / max = %.3g", rel_max);
		tap_ok(!rc && rel_max <= 1e-6, "decode without a pool gives the same samples %s", err);
		na = len;
	}

	/* Encode a waveform whose length is not a multiple of the hop. */
	int64_t nin = 0;
	float *input = fixture_f32(fx, "encode_input", &nin);
	if (!input) {
		tap_ok(0, "encode_input present");
	} else {
		struct layer_check lc = {fx, "encode_layer_", NULL, 0, 0, NULL, 0};
		int32_t *ecodes = NULL;
		int EF = 0;
		int rc = mg_encodec_encode_tap(&e, pool, input, nin, &ecodes, &EF, check_tap, &lc, err, sizeof err);
		tap_ok(!rc, "encode %lld samples %s", (long long)nin, err);
		tap_ok(lc.checked == e.n_enc, "all %d encoder layers compared (%d)", e.n_enc, lc.checked);
		int64_t nemb = 0;
		float *emb = fixture_f32(fx, "encode_embeddings", &nemb);
		if (!rc && emb && lc.last && nemb == lc.last_n) {
			double rel_max, rel_l2;
			compare(lc.last, emb, nemb, &rel_max, &rel_l2);
			tap_diag("encode_embeddings: max abs error / max |ref| = %.3g", rel_max);
			tap_ok(rel_max <= 1e-4, "embeddings match");
		} else {
			tap_ok(0, "encode_embeddings present and the same size");
		}
		free(emb);
		free(lc.last);
		int64_t nref = 0;
		int32_t *rcodes = fixture_i32(fx, "encode_codes", &nref);
		int nq = mg_encodec_encode_quantizers(&e);
		tap_ok(!rc && rcodes && nref == (int64_t)nq * EF && !memcmp(rcodes, ecodes, (size_t)nref * 4),
		       "encode codes identical (%d quantizers x %d frames)", nq, EF);
		tap_ok(mg_encodec_encoded_frames(&e, nin) == EF, "encoded_frames predicts %d frames", EF);

		int64_t nre = 0;
		float *rre = fixture_f32(fx, "reencode_audio", &nre);
		if (!rc && rre && nre == mg_encodec_decoded_length(&e, EF)) {
			float *re = malloc((size_t)nre * sizeof(float));
			rc = mg_encodec_decode_n(&e, pool, ecodes, nq, EF, re, err, sizeof err);
			double rel_max, rel_l2;
			compare(re, rre, nre, &rel_max, &rel_l2);
			tap_diag("reencode_audio: relative L2 = %.3g, max abs error / max |ref| = %.3g", rel_l2, rel_max);
			tap_ok(!rc && rel_l2 <= 1e-4, "re-decoded audio within 1e-4 relative L2");
			free(re);
		} else {
			tap_ok(0, "reencode_audio present with %lld samples", (long long)nre);
		}
		free(rre);
		free(rcodes);
		free(ecodes);
	}

	/* The parametrizations spelling of weight norm gives the same numbers
	 * as the weight_g / weight_v spelling, decoded the same way (the
	 * tapped decode above runs its products at other sizes, which some
	 * BLAS kernels sum in another order). */
	st_set *renamed = copy_set(model, to_parametrizations, NULL, NULL, NULL, 0);
	mg_encodec e2;
	float *audio3 = audio ? malloc((size_t)na * sizeof(float)) : NULL;
	if (renamed && codes && audio3 && !st_find(renamed, "audio_encoder.decoder.layers.0.conv.weight_g") &&
	    st_find(renamed, "audio_encoder.decoder.layers.0.conv.parametrizations.weight.original1") &&
	    !mg_encodec_bind(&e2, renamed, &cfg.codec, err, sizeof err)) {
		int rc = mg_encodec_decode_n(&e, pool, codes, nq, F, audio3, err, sizeof err);
		rc = rc ? rc : mg_encodec_decode_n(&e2, pool, codes, nq, F, audio2, err, sizeof err);
		tap_ok(!rc && !memcmp(audio3, audio2, (size_t)na * sizeof(float)),
		       "parametrizations.weight.original0/1 give identical audio %s", err);
		mg_encodec_free(&e2);
	} else {
		tap_ok(0, "bind with parametrizations names: %s", err);
	}
	st_close(renamed);

	/* Damaged sets: the error names the tensor. */
	test_bad_set(model, &cfg.codec, "missing convT weight_v", drop_one,
	             (void *)"audio_encoder.decoder.layers.3.conv.weight_v", NULL, NULL, 0,
	             "audio_encoder.decoder.layers.3.conv.weight_v");
	test_bad_set(model, &cfg.codec, "missing LSTM weight", drop_one,
	             (void *)"audio_encoder.encoder.layers.13.lstm.weight_hh_l1", NULL, NULL, 0,
	             "audio_encoder.encoder.layers.13.lstm.weight_hh_l1");
	test_bad_set(model, &cfg.codec, "missing codebook", drop_one,
	             (void *)"audio_encoder.quantizer.layers.2.codebook.embed", NULL, NULL, 0,
	             "audio_encoder.quantizer.layers.2.codebook.embed");
	test_bad_set(model, &cfg.codec, "missing weight norm", drop_one,
	             (void *)"audio_encoder.decoder.layers.0.conv.weight_g", NULL, NULL, 0,
	             "audio_encoder.decoder.layers.0.conv.weight_g");
	{
		const st_tensor *t = st_find(model, "audio_encoder.decoder.layers.4.block.1.conv.weight_v");
		int64_t shape[3] = {t ? t->shape[0] : 1, t ? t->shape[1] : 1, t ? t->shape[2] + 2 : 1};
		test_bad_set(model, &cfg.codec, "misshaped residual conv", NULL, NULL,
		             "audio_encoder.decoder.layers.4.block.1.conv.weight_v", shape, 3,
		             "audio_encoder.decoder.layers.4.block.1.conv.weight_v");
		int64_t bshape[1] = {3};
		test_bad_set(model, &cfg.codec, "misshaped bias", NULL, NULL, "audio_encoder.encoder.layers.15.conv.bias",
		             bshape, 1, "audio_encoder.encoder.layers.15.conv.bias");
	}

	/* The decoder alone decodes the same and refuses to encode. */
	if (codes && audio) {
		mg_encodec ed;
		int rc = mg_encodec_bind_decoder(&ed, model, &cfg.codec, err, sizeof err);
		int same = !rc && !mg_encodec_decode_n(&ed, pool, codes, nq, F, audio2, err, sizeof err);
		double rel_max = 1, rel_l2 = 1;
		if (same)
			compare(audio2, audio, na, &rel_max, &rel_l2);
		tap_ok(same && rel_max <= 1e-6 && ed.n_enc == 0 && mg_encodec_param_count(&ed) < mg_encodec_param_count(&e),
		       "bind_decoder: same audio with %zu of %zu weights %s", rc ? 0 : mg_encodec_param_count(&ed),
		       mg_encodec_param_count(&e), rc ? err : "");
		int32_t *c1 = NULL;
		int f1 = 0;
		tap_ok(!rc && mg_encodec_encode(&ed, pool, audio, 640, &c1, &f1, err, sizeof err) != 0 && !c1 &&
		           strstr(err, "encoder"),
		       "bind_decoder: encode is refused: %s", err);
		if (!rc)
			mg_encodec_free(&ed);
	}

	/* Recurrent matrices in halves (f16 weights) and in q8 (q8 weights):
	 * close to, not equal to, the float32 audio; encode still works (the
	 * encoder's LSTM is reduced too). */
	static const struct {
		const char *what;
		int (*to)(mg_encodec *, char *, size_t);
		double bound;
	} reduce[] = {{"halves", mg_encodec_lstm_half, 1e-3}, {"q8", mg_encodec_lstm_q8, 1e-2}};
	for (size_t v = 0; codes && audio && v < sizeof reduce / sizeof reduce[0]; v++) {
		mg_encodec er;
		int bound = !mg_encodec_bind(&er, model, &cfg.codec, err, sizeof err), rc = bound ? 0 : -1;
		rc = rc ? rc : reduce[v].to(&er, err, sizeof err);
		int reduced = !rc;
		for (int i = 0; !rc && i < er.n_dec; i++)
			if (er.dec[i].op == MG_ENCODEC_LSTM) {
				const mg_encodec_lstm *l = &er.dec[i].lstm;
				reduced &= l->w_hh[0] == NULL && (v ? l->w_hh8 != NULL : l->w_hh16 != NULL);
			}
		rc = rc ? rc : mg_encodec_decode_n(&er, pool, codes, nq, F, audio2, err, sizeof err);
		double rel_max = 1, rel_l2 = 1;
		if (!rc)
			compare(audio2, audio, na, &rel_max, &rel_l2);
		int32_t *c1 = NULL;
		int f1 = 0;
		int enc = !rc && !mg_encodec_encode(&er, pool, audio, 640, &c1, &f1, err, sizeof err) && c1 && f1 > 0;
		tap_ok(!rc && reduced && rel_l2 > 0 && rel_l2 < reduce[v].bound && enc,
		       "LSTM recurrent matrices in %s: relative L2 %.2g, max %.2g of the float32 audio; encode works %s",
		       reduce[v].what, rel_l2, rel_max, rc ? err : "");
		free(c1);
		if (bound)
			mg_encodec_free(&er);
	}

	/* The quantizers stored decide how many there are. */
	{
		char last[128];
		snprintf(last, sizeof last, "audio_encoder.quantizer.layers.%d.", e.n_q_stored - 1);
		st_set *fewer = copy_set(model, drop_prefix, last, NULL, NULL, 0);
		mg_encodec e3;
		int rc = fewer ? mg_encodec_bind(&e3, fewer, &cfg.codec, err, sizeof err) : -1;
		tap_ok(!rc && mg_encodec_quantizers(&e3) == e.n_q_stored - 1, "without %s* the codec has %d quantizers %s", last,
		       e.n_q_stored - 1, rc ? err : "");
		if (!rc)
			mg_encodec_free(&e3);
		st_close(fewer);
	}

	/* Bad codes are refused, tiny inputs work. */
	if (codes && audio) {
		int32_t saved = codes[1];
		codes[1] = cfg.codec.codebook_size;
		tap_ok(mg_encodec_decode_n(&e, pool, codes, nq, F, audio, err, sizeof err) != 0 && strstr(err, "outside"),
		       "a code outside the codebook is refused: %s", err);
		codes[1] = saved;
		tap_ok(mg_encodec_decode_n(&e, pool, codes, e.n_q_stored + 1, F, audio, err, sizeof err) != 0 &&
		           strstr(err, "quantizers"),
		       "more codebooks than quantizers are refused: %s", err);
		tap_ok(mg_encodec_decode_n(&e, pool, codes, 0, F, audio, err, sizeof err) != 0,
		       "zero codebooks are refused: %s", err);
		/* Fewer codebooks: the sum of the first ones only (HF's quantizer.decode).
		 * The last quantizer's codes set to those of a fresh decode must not
		 * matter when it is left out. */
		if (nq > 1) {
			float *a1 = malloc((size_t)na * sizeof(float)), *a2 = malloc((size_t)na * sizeof(float));
			int32_t *c2 = malloc((size_t)nq * F * sizeof(int32_t));
			memcpy(c2, codes, (size_t)nq * F * sizeof(int32_t));
			for (int t = 0; t < F; t++)
				c2[(size_t)(nq - 1) * F + t] = (c2[(size_t)(nq - 1) * F + t] + 1) % cfg.codec.codebook_size;
			int r1 = mg_encodec_decode_n(&e, pool, codes, nq - 1, F, a1, err, sizeof err);
			int r2 = mg_encodec_decode_n(&e, pool, c2, nq - 1, F, a2, err, sizeof err);
			int r3 = mg_encodec_decode_n(&e, pool, c2, nq, F, audio2, err, sizeof err);
			tap_ok(!r1 && !r2 && !r3 && !memcmp(a1, a2, (size_t)na * sizeof(float)) &&
			           memcmp(a1, audio2, (size_t)na * sizeof(float)),
			       "decoding %d of %d codebooks ignores the last one", nq - 1, nq);
			free(a1);
			free(a2);
			free(c2);
		}
		/* The config's quantizer count (mg_encodec_decode) gives the same as
		 * passing it. */
		if (cfg.codec.num_quantizers == nq) {
			int r1 = mg_encodec_decode(&e, pool, codes, F, audio2, err, sizeof err);
			int r2 = mg_encodec_decode_n(&e, pool, codes, nq, F, audio, err, sizeof err);
			tap_ok(!r1 && !r2 && !memcmp(audio, audio2, (size_t)na * sizeof(float)),
			       "mg_encodec_decode uses the config's %d quantizers", nq);
		}
		err[0] = 0;
		int32_t one[64];
		for (int q = 0; q < nq && q < 64; q++)
			one[q] = codes[(size_t)q * F];
		int rc = mg_encodec_decode_n(&e, pool, one, nq, 1, audio, err, sizeof err);
		int finite = 1;
		for (int64_t i = 0; i < mg_encodec_decoded_length(&e, 1); i++)
			finite &= isfinite(audio[i]);
		tap_ok(!rc && finite, "a single frame decodes (reflect padding of a short input) %s", err);
		int32_t *c1 = NULL;
		int f1 = 0;
		err[0] = 0;
		rc = mg_encodec_encode(&e, pool, audio, 7, &c1, &f1, err, sizeof err);
		tap_ok(!rc && f1 == 1, "7 samples encode to 1 frame %s", err);
		free(c1);
	}

	free(codes);
	free(audio);
	free(audio2);
	free(audio3);
	free(input);
	mg_encodec_free(&e);
	mg_pool_free(pool);
	st_close(fx);
	st_close(model);
	return tap_done();
}
