/* test_download_digest.c - SHA-256 and SHA-1 against published test vectors,
 * incremental updates against one-shot ones, and git's blob id of a file. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/digest.h"
#include "tests/tap.h"

static void sha256_hex(const void *p, size_t n, char out[65])
{
	sha256_ctx c;
	uint8_t d[32];
	sha256_init(&c);
	sha256_update(&c, p, n);
	sha256_final(&c, d);
	digest_hex(d, 32, out);
}

static void sha1_hex(const void *p, size_t n, char out[41])
{
	sha1_ctx c;
	uint8_t d[20];
	sha1_init(&c);
	sha1_update(&c, p, n);
	sha1_final(&c, d);
	digest_hex(d, 20, out);
}

int main(void)
{
	static const struct { const char *msg, *sha256, *sha1; } v[] = {
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		 "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
		 "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
		{"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
		 "a49b2446a02c645bf419f995b67091253a04a259"},
	};
	char h[65];
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		sha256_hex(v[i].msg, strlen(v[i].msg), h);
		tap_ok(!strcmp(h, v[i].sha256), "sha256 of a %zu-byte vector: %s", strlen(v[i].msg), h);
		sha1_hex(v[i].msg, strlen(v[i].msg), h);
		tap_ok(!strcmp(h, v[i].sha1), "sha1 of a %zu-byte vector: %s", strlen(v[i].msg), h);
	}

	/* One million 'a' (FIPS 180-2 appendix), fed in uneven pieces. */
	char *a = malloc(1000000);
	memset(a, 'a', 1000000);
	sha256_hex(a, 1000000, h);
	tap_ok(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
	       "sha256 of a million 'a'");
	sha1_hex(a, 1000000, h);
	tap_ok(!strcmp(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"), "sha1 of a million 'a'");
	sha256_ctx c;
	uint8_t d[32];
	sha256_init(&c);
	for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 7 % 1013 + 1)
		sha256_update(&c, a + off, off + step > 1000000 ? 1000000 - off : step);
	sha256_final(&c, d);
	digest_hex(d, 32, h);
	tap_ok(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
	       "sha256 fed in uneven pieces matches");

	/* Every length around the padding boundaries, incremental == one shot. */
	int same = 1;
	for (size_t n = 50; n < 140 && same; n++) {
		char one[65], inc[65];
		sha256_hex(a, n, one);
		sha256_init(&c);
		sha256_update(&c, a, n / 3);
		sha256_update(&c, a + n / 3, n - n / 3);
		sha256_final(&c, d);
		digest_hex(d, 32, inc);
		same = !strcmp(one, inc);
	}
	tap_ok(same, "sha256: split updates agree with one-shot for lengths 50..139");

	/* A file: sha256_file and git's blob id ("hello\n" -> ce0136...). */
	char path[] = "/tmp/mg-digest-XXXXXX";
	int fd = mkstemp(path);
	char err[256];
	if (fd >= 0 && write(fd, "hello\n", 6) == 6) {
		close(fd);
		tap_ok(sha256_file(path, h, NULL, err, sizeof err) == 0 &&
		       !strcmp(h, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),
		       "sha256_file of \"hello\\n\"");
		tap_ok(git_blob_sha1_file(path, h, err, sizeof err) == 0 &&
		       !strcmp(h, "ce013625030ba8dba906f756967f9e9ca394464a"), "git blob id of \"hello\\n\": %s", h);
		unlink(path);
	} else {
		tap_ok(0, "cannot create a temporary file");
	}
	tap_ok(sha256_file("/nonexistent/file", h, NULL, err, sizeof err) != 0 && strstr(err, "/nonexistent/file"),
	       "sha256_file on a missing file fails naming it");
	free(a);
	return tap_done();
}
