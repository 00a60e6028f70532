/* digest.h - SHA-256 and SHA-1, small and dependency-free: the hub names LFS
 * blobs by their SHA-256 and plain git blobs by SHA-1 of "blob SIZE\0" + data. */
#ifndef MG_DIGEST_H
#define MG_DIGEST_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct sha256_ctx {
	uint32_t h[8];
	uint64_t len;      /* bytes hashed so far */
	uint8_t buf[64];
	size_t nbuf;
} sha256_ctx;

typedef struct sha1_ctx {
	uint32_t h[5];
	uint64_t len;
	uint8_t buf[64];
	size_t nbuf;
} sha1_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t n);
void sha256_final(sha256_ctx *c, uint8_t out[32]);

void sha1_init(sha1_ctx *c);
void sha1_update(sha1_ctx *c, const void *data, size_t n);
void sha1_final(sha1_ctx *c, uint8_t out[20]);

/* n bytes -> 2n lowercase hex digits + NUL. */
void digest_hex(const uint8_t *d, size_t n, char *out);

/* The SHA-256 of a whole file, as 64 hex digits. cancel (may be NULL) stops it
 * early when it becomes non-zero. Returns 0, or -1 with err filled. */
int sha256_file(const char *path, char hex[65], const atomic_int *cancel, char *err, size_t errlen);

/* git's blob id of a file: SHA-1 of "blob SIZE\0" followed by the contents. */
int git_blob_sha1_file(const char *path, char hex[41], char *err, size_t errlen);

#endif
