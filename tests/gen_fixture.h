/* gen_fixture.h - reading the tiny-a reference fixtures in the generation
 * tests: integer tensors, float tensors and the error figure the issue's
 * tolerance is stated in (max abs error / max abs reference value). */
#ifndef MG_GEN_FIXTURE_H
#define MG_GEN_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/safetensors.h"
#include "tests/tap.h"

/* Opens REF/fixtures/tiny-a/NAME.safetensors or fails the test. */
static inline st_set *fx_open(const char *ref, const char *name)
{
	char p[4400], err[512];
	st_set *s = NULL;
	snprintf(p, sizeof p, "%s/fixtures/tiny-a/%s.safetensors", ref, name);
	if (st_open(&s, p, err, sizeof err)) {
		tap_ok(0, "open fixture %s: %s", name, err);
		return NULL;
	}
	return s;
}

static inline const st_tensor *fx_get(const st_set *s, const char *name, int64_t *numel)
{
	const st_tensor *t = s ? st_find(s, name) : NULL;
	if (!t) {
		tap_ok(0, "fixture tensor %s present", name);
		return NULL;
	}
	if (numel)
		*numel = t->numel;
	return t;
}

/* An I64 (or I32) tensor as a new int32 array. */
static inline int32_t *fx_ints(const st_set *s, const char *name, int64_t *numel)
{
	const st_tensor *t = fx_get(s, name, numel);
	if (!t)
		return NULL;
	int32_t *o = malloc((size_t)t->numel * sizeof *o + 1);
	for (int64_t i = 0; i < t->numel; i++) {
		if (t->dtype == ST_I64) {
			int64_t v;
			memcpy(&v, t->data + 8 * i, 8);
			o[i] = (int32_t)v;
		} else {
			int32_t v;
			memcpy(&v, t->data + 4 * i, 4);
			o[i] = v;
		}
	}
	return o;
}

static inline float *fx_floats(const st_set *s, const char *name, int64_t *numel)
{
	const st_tensor *t = fx_get(s, name, numel);
	char err[512];
	if (!t)
		return NULL;
	float *o = malloc((size_t)t->numel * sizeof *o + 1);
	if (st_to_f32(t, o, err, sizeof err)) {
		tap_ok(0, "fixture %s: %s", name, err);
		free(o);
		return NULL;
	}
	return o;
}

/* max |got - ref| / max |ref| over n values. */
static inline double fx_rel_err(const float *got, const float *ref, size_t n)
{
	double e = 0, m = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - ref[i]);
		if (!(d <= e))
			e = isnan(d) ? INFINITY : d;
		if (fabs(ref[i]) > m)
			m = fabs(ref[i]);
	}
	return m > 0 ? e / m : e;
}

/* Checks the bound (max abs error <= 1e-4 x max abs reference) and
 * prints the figure as a TAP diagnostic. */
static inline int fx_close(const float *got, const float *ref, size_t n, const char *what)
{
	double e = fx_rel_err(got, ref, n);
	tap_diag("%s: max abs error / max abs ref = %.3g", what, e);
	return tap_ok(e <= 1e-4, "%s within 1e-4 of the reference's max abs value", what);
}

/* The relative L2 distance of a from b (the audio figure). */
static inline double fx_rel_l2(const float *a, const float *b, size_t n)
{
	double e = 0, r = 0;
	for (size_t i = 0; i < n; i++) {
		e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		r += (double)b[i] * b[i];
	}
	return r > 0 ? sqrt(e / r) : sqrt(e);
}

#endif
