/* digest.c - SHA-256 (FIPS 180-4) and SHA-1, written out plainly. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "app/digest.h"

static uint32_t ror32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
static uint32_t rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static const uint32_t K256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64];
	for (int i = 0; i < 16; i++)
		w[i] = load_be32(p + 4 * i);
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t S1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = k + S1 + ch + K256[i] + w[i];
		uint32_t S0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = S0 + maj;
		k = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void sha256_init(sha256_ctx *c)
{
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(c->h, iv, sizeof iv);
	c->len = 0;
	c->nbuf = 0;
}

/* Shared by both hashes: whole 64-byte blocks to block(), the rest kept in buf. */
static void feed_blocks(uint8_t *buf, size_t *nbuf, void (*block)(uint32_t *, const uint8_t *), uint32_t *h,
                        const void *data, size_t n)
{
	const uint8_t *p = data;
	if (*nbuf) {
		size_t take = 64 - *nbuf < n ? 64 - *nbuf : n;
		memcpy(buf + *nbuf, p, take);
		*nbuf += take; p += take; n -= take;
		if (*nbuf < 64)
			return;
		block(h, buf);
		*nbuf = 0;
	}
	for (; n >= 64; p += 64, n -= 64)
		block(h, p);
	memcpy(buf, p, n);
	*nbuf = n;
}

void sha256_update(sha256_ctx *c, const void *data, size_t n)
{
	c->len += n;
	feed_blocks(c->buf, &c->nbuf, sha256_block, c->h, data, n);
}

/* Shared Merkle-Damgard padding: 0x80, zeros, then the bit length big-endian. */
static void pad_block(uint8_t *buf, size_t *nbuf, uint64_t len, void (*block)(uint32_t *, const uint8_t *), uint32_t *h)
{
	buf[(*nbuf)++] = 0x80;
	if (*nbuf > 56) {
		memset(buf + *nbuf, 0, 64 - *nbuf);
		block(h, buf);
		*nbuf = 0;
	}
	memset(buf + *nbuf, 0, 56 - *nbuf);
	uint64_t bits = len * 8;
	for (int i = 0; i < 8; i++)
		buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	block(h, buf);
	*nbuf = 0;
}

void sha256_final(sha256_ctx *c, uint8_t out[32])
{
	pad_block(c->buf, &c->nbuf, c->len, sha256_block, c->h);
	for (int i = 0; i < 8; i++)
		store_be32(out + 4 * i, c->h[i]);
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = load_be32(p + 4 * i);
	for (int i = 16; i < 80; i++)
		w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20)      { f = (b & c) | (~b & d);          k = 0x5a827999; }
		else if (i < 40) { f = b ^ c ^ d;                    k = 0x6ed9eba1; }
		else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
		else             { f = b ^ c ^ d;                    k = 0xca62c1d6; }
		uint32_t t = rol32(a, 5) + f + e + k + w[i];
		e = d; d = c; c = rol32(b, 30); b = a; a = t;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

void sha1_init(sha1_ctx *c)
{
	c->h[0] = 0x67452301; c->h[1] = 0xefcdab89; c->h[2] = 0x98badcfe;
	c->h[3] = 0x10325476; c->h[4] = 0xc3d2e1f0;
	c->len = 0;
	c->nbuf = 0;
}

void sha1_update(sha1_ctx *c, const void *data, size_t n)
{
	c->len += n;
	feed_blocks(c->buf, &c->nbuf, sha1_block, c->h, data, n);
}

void sha1_final(sha1_ctx *c, uint8_t out[20])
{
	pad_block(c->buf, &c->nbuf, c->len, sha1_block, c->h);
	for (int i = 0; i < 5; i++)
		store_be32(out + 4 * i, c->h[i]);
}

void digest_hex(const uint8_t *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = 0;
}

int sha256_file(const char *path, char hex[65], const atomic_int *cancel, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	static _Thread_local uint8_t buf[1 << 16];
	sha256_ctx c;
	sha256_init(&c);
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
		sha256_update(&c, buf, n);
		if (cancel && atomic_load(cancel)) {
			fclose(f);
			snprintf(err, errlen, "%s: hashing cancelled", path);
			return -1;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "%s: read error", path);
		return -1;
	}
	uint8_t d[32];
	sha256_final(&c, d);
	digest_hex(d, 32, hex);
	return 0;
}

int git_blob_sha1_file(const char *path, char hex[41], char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f || fstat(fileno(f), &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	char head[48];
	int hn = snprintf(head, sizeof head, "blob %lld", (long long)st.st_size);
	sha1_ctx c;
	sha1_init(&c);
	sha1_update(&c, head, (size_t)hn + 1); /* with its NUL */
	static _Thread_local uint8_t buf[1 << 16];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		sha1_update(&c, buf, n);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "%s: read error", path);
		return -1;
	}
	uint8_t d[20];
	sha1_final(&c, d);
	digest_hex(d, 20, hex);
	return 0;
}
