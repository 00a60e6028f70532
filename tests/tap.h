/* tap.h - a minimal TAP producer for the C unit tests.
 *
 * Each test program prints "ok N - name" / "not ok N - name" lines and a
 * trailing plan. tap_skip_all() reports a whole program as skipped, with the
 * reason, for example when the reference data directory is absent.
 */
#ifndef MG_TAP_H
#define MG_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n_ = 0, tap_failed_ = 0;

static inline int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;
	tap_n_++;
	if (!cond)
		tap_failed_++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n_);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline void tap_skip(const char *fmt, ...)
{
	va_list ap;
	tap_n_++;
	printf("ok %d # SKIP ", tap_n_);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Ends the program: prints the plan, exit status 0 unless a test failed. */
static inline int tap_done(void)
{
	printf("1..%d\n", tap_n_);
	fflush(stdout);
	return tap_failed_ ? 1 : 0;
}

static inline void tap_skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	fflush(stdout);
	exit(0);
}

/* The reference data directory ($MUSICGEN_REF_DIR, else ../shared/ref beside
 * the source tree), or NULL when it does not exist. */
static inline const char *tap_ref_dir(void)
{
	static char buf[4096];
	const char *d = getenv("MUSICGEN_REF_DIR");
	if (!d || !*d) {
		const char *top = getenv("MG_TOP_SRCDIR");
		snprintf(buf, sizeof buf, "%s/../shared/ref", top && *top ? top : ".");
		d = buf;
	}
	FILE *f;
	char probe[4200];
	snprintf(probe, sizeof probe, "%s/README.md", d);
	f = fopen(probe, "r");
	if (!f)
		return NULL;
	fclose(f);
	return d;
}

/* tap_ref_dir() or skip the whole program, saying why. */
static inline const char *tap_require_ref(void)
{
	const char *d = tap_ref_dir();
	if (!d)
		tap_skip_all("reference data not found (set MUSICGEN_REF_DIR or place it at ../shared/ref)");
	return d;
}

#endif
