/* errf.h - the engine's error messages: printf into the caller's buffer
 * (when it has one), then -1 to return. */
#ifndef MG_ERRF_H
#define MG_ERRF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline int mg_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int mg_errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

#endif
