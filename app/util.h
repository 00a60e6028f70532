/* util.h - small helpers the front end's files share. */
#ifndef MG_UTIL_H
#define MG_UTIL_H

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Copies a string into a fixed buffer of n bytes, cut at a UTF-8
 * character boundary. */
static inline void str_copy_utf8(char *dst, size_t n, const char *src)
{
	size_t l = strnlen(src, n - 1);
	if (src[l] != '\0')
		while (l > 0 && ((unsigned char)src[l] & 0xC0) == 0x80)
			l--;
	memcpy(dst, src, l);
	dst[l] = '\0';
}

/* Seconds on the monotonic clock. */
static inline double mono_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Makes the entries of directory dir durable (after a rename into it);
 * best effort, as a failure here loses nothing already written. */
static inline void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* The directory that holds path into dir: "." for a bare name, "/" for a
 * name at the root. */
static inline void parent_dir(const char *path, char *dir, size_t len)
{
	snprintf(dir, len, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
}

/* fsync_dir of the directory that holds path. */
static inline void fsync_parent(const char *path)
{
	char dir[4200];
	parent_dir(path, dir, sizeof dir);
	fsync_dir(dir);
}

/* A byte count as "1.5 MB": decimal units, as the hub shows them. */
static inline void bytes_human(double b, char *out, size_t len)
{
	static const char *const unit[] = {"B", "kB", "MB", "GB", "TB"};
	int u = 0;
	while (b >= 1000 && u < 4) {
		b /= 1000;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

#endif
