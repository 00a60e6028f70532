/* bench_encodec.c - EnCodec decode speed with random weights of a real
 * model's shape.
 *
 *   tests/bench_encodec [CONFIG_JSON [SECONDS [THREADS [SEQUENCES]]]]
 *
 * CONFIG_JSON defaults to musicgen-small's config in the reference data;
 * prints the time per layer and the decode time per second of audio, and
 * with SEQUENCES > 1 the time of one batched decode of that many. */
#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/config.h"
#include "engine/encodec.h"
#include "engine/pool.h"
#include "engine/safetensors.h"
#include "tests/tap.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	if (s)
		s[n] = 0;
	fclose(f);
	return s;
}

struct timing {
	const mg_encodec *e;
	double last;
	double per_layer[256];
};

static void on_layer(void *user, int layer, const float *x, int channels, int64_t length)
{
	struct timing *t = user;
	(void)x;
	(void)channels;
	(void)length;
	double n = now();
	if (layer >= 0 && layer < 256)
		t->per_layer[layer] += n - t->last;
	t->last = n;
}

static const char *op_name(int op)
{
	switch (op) {
	case MG_ENCODEC_CONV: return "conv";
	case MG_ENCODEC_CONVT: return "convtr";
	case MG_ENCODEC_LSTM: return "lstm";
	case MG_ENCODEC_ELU: return "elu";
	case MG_ENCODEC_RESBLOCK: return "resblock";
	}
	return "?";
}

/* A codec bound anew from st with its LSTMs' recurrent matrices reduced by
 * to: its decode time and relative L2 distance to the float32 audio. */
static void reduced(const st_set *st, const mg_config *cfg, mg_pool *pool, const int32_t *codes, int F,
                    const float *audio, int64_t n, double audio_s, const char *what,
                    int (*to)(mg_encodec *, char *, size_t))
{
	char err[512];
	mg_encodec e;
	if (mg_encodec_bind(&e, st, &cfg->codec, err, sizeof err)) {
		fprintf(stderr, "bench_encodec: %s\n", err);
		return;
	}
	float *a = malloc((size_t)n * sizeof(float));
	double t0 = now();
	int ok = a && !to(&e, err, sizeof err);
	double tc = now() - t0;
	t0 = now();
	if (ok && !mg_encodec_decode_n(&e, pool, codes, e.n_q, F, a, err, sizeof err)) {
		double dt = now() - t0, d2 = 0, r2 = 0;
		for (int64_t i = 0; i < n; i++) {
			d2 += ((double)a[i] - audio[i]) * ((double)a[i] - audio[i]);
			r2 += (double)audio[i] * audio[i];
		}
		printf("with the LSTM recurrent matrices in %s (converted in %.0f ms): %.1f ms per second of "
		       "audio, relative L2 distance %.2g\n",
		       what, 1e3 * tc, 1e3 * dt / audio_s, sqrt(d2 / (r2 > 0 ? r2 : 1)));
	} else {
		fprintf(stderr, "bench_encodec: %s\n", err);
	}
	free(a);
	mg_encodec_free(&e);
}

int main(int argc, char **argv)
{
	char path[4400], err[512] = "";
	if (argc > 1) {
		snprintf(path, sizeof path, "%s", argv[1]);
	} else {
		const char *ref = tap_ref_dir();
		if (!ref) {
			fprintf(stderr, "bench_encodec: no reference data; give a config.json\n");
			return 2;
		}
		snprintf(path, sizeof path, "%s/musicgen-small/config.json", ref);
	}
	double seconds = argc > 2 ? atof(argv[2]) : 10.0;
	int threads = argc > 3 ? atoi(argv[3]) : 0;
	int S = argc > 4 ? atoi(argv[4]) : 1;
	char *json = read_file(path);
	mg_config cfg;
	if (!json || mg_config_parse(&cfg, json, NULL, path, err, sizeof err)) {
		fprintf(stderr, "bench_encodec: %s: %s\n", path, json ? err : "cannot read");
		free(json);
		return 1;
	}
	free(json);

	st_set *st = st_new_memory();
	mg_encodec e;
	double t0 = now();
	if (!st || mg_encodec_random_weights(st, &cfg.codec, 1, err, sizeof err) ||
	    mg_encodec_bind(&e, st, &cfg.codec, err, sizeof err)) {
		fprintf(stderr, "bench_encodec: %s\n", err);
		st_close(st);
		return 1;
	}
	double t_bind = now() - t0;

	mg_pool *pool = mg_pool_new(threads);
	int F = (int)(seconds * cfg.codec.frame_rate + 0.5);
	if (F < 1)
		F = 1;
	int32_t *codes = malloc((size_t)e.n_q * F * sizeof(int32_t));
	int64_t n = mg_encodec_decoded_length(&e, F);
	float *audio = malloc((size_t)n * sizeof(float));
	uint64_t s = 42;
	for (size_t i = 0; i < (size_t)e.n_q * F; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		codes[i] = (int32_t)((s >> 33) % (uint64_t)cfg.codec.codebook_size);
	}
	struct timing tm = {&e, 0, {0}};
	tm.last = now();
	t0 = tm.last;
	int rc = mg_encodec_decode_tap(&e, pool, codes, e.n_q, F, audio, on_layer, &tm, err, sizeof err);
	/* The total without the per-layer hook (which keeps every layer's
	 * output apart). */
	t0 = now();
	if (!rc)
		rc = mg_encodec_decode_n(&e, pool, codes, e.n_q, F, audio, err, sizeof err);
	double dt = now() - t0;
	if (rc) {
		fprintf(stderr, "bench_encodec: %s\n", err);
	} else {
		double audio_s = (double)n / cfg.codec.sampling_rate;
		printf("EnCodec %s: %zu weights (bound in %.2f s), %d threads\n", path, mg_encodec_param_count(&e),
		       t_bind, mg_pool_size(pool));
		for (int i = 0; i < e.n_dec && i < 256; i++)
			printf("  layer %2d %-8s %5d -> %5d ch  %8.1f ms\n", i, op_name(e.dec[i].op), e.dec[i].cin,
			       e.dec[i].cout, 1e3 * tm.per_layer[i]);
		printf("decode %d frames (%.2f s of audio): %.1f ms = %.1f ms per second of audio (%.3f x real time)\n",
		       F, audio_s, 1e3 * dt, 1e3 * dt / audio_s, dt / audio_s);
		/* The LSTMs' recurrent matrices in halves and in q8 (the
		 * reduced-precision weight formats), each on a codec of its own:
		 * time and distance to the float32 audio. */
		reduced(st, &cfg, pool, codes, F, audio, n, audio_s, "halves", mg_encodec_lstm_half);
		reduced(st, &cfg, pool, codes, F, audio, n, audio_s, "q8", mg_encodec_lstm_q8);
	}
	if (!rc && S > 1) {
		int32_t *bc = malloc((size_t)S * e.n_q * F * sizeof(int32_t));
		float *ba = malloc((size_t)S * n * sizeof(float));
		for (size_t i = 0; i < (size_t)S * e.n_q * F; i++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			bc[i] = (int32_t)((s >> 33) % (uint64_t)cfg.codec.codebook_size);
		}
		t0 = now();
		rc = mg_encodec_decode_batch(&e, pool, bc, S, e.n_q, F, ba, err, sizeof err);
		dt = now() - t0;
		if (rc)
			fprintf(stderr, "bench_encodec: %s\n", err);
		else
			printf("batch of %d: %.1f ms = %.1f ms per second of audio per sequence\n", S, 1e3 * dt,
			       1e3 * dt / S / ((double)n / cfg.codec.sampling_rate));
		free(bc);
		free(ba);
	}
	free(codes);
	free(audio);
	mg_encodec_free(&e);
	st_close(st);
	mg_pool_free(pool);
	return rc ? 1 : 0;
}
