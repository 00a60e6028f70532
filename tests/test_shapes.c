/* test_shapes.c - end-to-end `musicgen-tui generate --greedy` on checkpoints
 * of other shapes than tiny-a (tests/data/tinyb: 3 codebooks at 24 kHz with
 * a conv-shortcut EnCodec; tests/data/tinyc: stereo), compared with what
 * Hugging Face computed for them: codes identical, audio within 1e-3
 * relative L2. The small SentencePiece model of the reference data is placed
 * beside each checkpoint, so the test skips when the reference data is
 * absent. */
#include "autoconfig.h"

#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/safetensors.h"
#include "tests/tap.h"

static const char *prompts[] = {
	"a calm piano melody over soft strings",
	"techno",
	"90s rock song with loud guitars and heavy drums",
};

static char tmpdir[512];

static int run(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Reads "B K F" then B*K lines of F codes. */
static int32_t *read_codes(const char *path, int *B, int *K, int *F)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	int32_t *c = NULL;
	if (fscanf(f, "%d %d %d", B, K, F) == 3 && *B > 0 && *K > 0 && *F > 0 && *B * *K * *F < 1 << 24) {
		size_t n = (size_t)*B * *K * *F;
		c = malloc(n * sizeof *c);
		for (size_t i = 0; c && i < n; i++)
			if (fscanf(f, "%d", &c[i]) != 1) {
				free(c);
				c = NULL;
			}
	}
	fclose(f);
	return c;
}

static float *read_wav(const char *path, int *channels, int *rate, sf_count_t *frames)
{
	SF_INFO info = {0};
	SNDFILE *sf = sf_open(path, SFM_READ, &info);
	if (!sf)
		return NULL;
	float *buf = malloc((size_t)(info.frames * info.channels + 1) * sizeof *buf);
	if (buf)
		sf_readf_float(sf, buf, info.frames);
	sf_close(sf);
	*channels = info.channels;
	*rate = info.samplerate;
	*frames = info.frames;
	return buf;
}

/* One run of generate compared with the reference tensors TAG_codes/TAG_audio. */
static void check_case(const char *bin, const char *model, const st_set *refs, const char *name, const char *tag,
                       const char *args)
{
	char cmd[4096], codes_path[600], wav_path[600], key[64], err[256];
	snprintf(codes_path, sizeof codes_path, "%s/%s-%s.codes", tmpdir, name, tag);
	snprintf(wav_path, sizeof wav_path, "%s/%s-%s.wav", tmpdir, name, tag);
	snprintf(key, sizeof key, "%s_codes", tag);
	const st_tensor *rc = st_find(refs, key);
	snprintf(key, sizeof key, "%s_audio", tag);
	const st_tensor *ra = st_find(refs, key);
	if (!rc || !ra || rc->ndim != 3 || ra->ndim != 3) {
		tap_ok(0, "%s %s: reference tensors present", name, tag);
		return;
	}
	int rB = (int)rc->shape[0], rK = (int)rc->shape[1], rF = (int)rc->shape[2];
	snprintf(cmd, sizeof cmd,
	         "'%s' generate --model '%s' %s --greedy --frames %d --sample-format float --threads 2 "
	         "--codes-out '%s' --output '%s' --force >'%s/%s-%s.log' 2>&1",
	         bin, model, args, rF, codes_path, wav_path, tmpdir, name, tag);
	int st = run(cmd);
	if (!tap_ok(st == 0, "%s %s: generate exits 0", name, tag)) {
		snprintf(cmd, sizeof cmd, "sed 's/^/# /' '%s/%s-%s.log'", tmpdir, name, tag);
		run(cmd);
		return;
	}
	int B, K, F;
	int32_t *codes = read_codes(codes_path, &B, &K, &F);
	if (!tap_ok(codes && B == rB && K == rK && F == rF, "%s %s: codes shape %d %d %d", name, tag, rB, rK, rF)) {
		free(codes);
		return;
	}
	int64_t *ref = malloc(rc->nbytes);
	memcpy(ref, rc->data, rc->nbytes);
	int same = 0, total = rB * rK * rF;
	for (int i = 0; i < total; i++)
		same += codes[i] == ref[i];
	tap_ok(same == total, "%s %s: greedy codes identical (%d of %d)", name, tag, same, total);
	free(ref);
	free(codes);

	/* Audio: one file per take (-1, -2, ... when several). */
	float *want = malloc((size_t)ra->numel * sizeof *want);
	if (st_to_f32(ra, want, err, sizeof err)) {
		tap_ok(0, "%s %s: reference audio readable: %s", name, tag, err);
		free(want);
		return;
	}
	int ch_ref = (int)ra->shape[1];
	int64_t n_ref = ra->shape[2];
	double worst = 0;
	int ok = 1;
	for (int b = 0; b < rB; b++) {
		char p[700];
		if (rB > 1) {
			char *dot = strrchr(wav_path, '.');
			snprintf(p, sizeof p, "%.*s-%d%s", (int)(dot - wav_path), wav_path, b + 1, dot);
		} else
			snprintf(p, sizeof p, "%s", wav_path);
		int ch, rate;
		sf_count_t frames;
		float *got = read_wav(p, &ch, &rate, &frames);
		if (!got || ch != ch_ref || frames != n_ref) {
			tap_diag("%s: %s (channels %d, frames %lld; expected %d, %lld)", p, got ? "wrong shape" : "unreadable",
			         got ? ch : 0, got ? (long long)frames : 0, ch_ref, (long long)n_ref);
			ok = 0;
			free(got);
			continue;
		}
		double num = 0, den = 0;
		for (int c = 0; c < ch; c++)
			for (int64_t i = 0; i < n_ref; i++) {
				double w = want[((size_t)b * ch + c) * n_ref + i], g = got[i * ch + c];
				num += (g - w) * (g - w);
				den += w * w;
			}
		double rel = sqrt(num / (den > 0 ? den : 1));
		if (rel > worst)
			worst = rel;
		free(got);
	}
	tap_ok(ok && worst <= 1e-3, "%s %s: audio within 1e-3 relative L2 (worst %.3g)", name, tag, worst);
	free(want);
}

static void check_model(const char *bin, const char *srcdir, const char *refdir, const char *name)
{
	char model[600], p[1200], q[1200], err[512];
	snprintf(model, sizeof model, "%s/%s", tmpdir, name);
	mkdir(model, 0700);
	const char *files[] = {"config.json", "generation_config.json", "model.safetensors"};
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/tests/data/%s/%s", srcdir, name, files[i]);
		snprintf(q, sizeof q, "%s/%s", model, files[i]);
		if (symlink(p, q) && errno != EEXIST)
			tap_diag("symlink %s: %s", q, strerror(errno));
	}
	snprintf(p, sizeof p, "%s/fixtures/tokenizer/spiece.model", refdir);
	snprintf(q, sizeof q, "%s/spiece.model", model);
	if (symlink(p, q) && errno != EEXIST)
		tap_diag("symlink %s: %s", q, strerror(errno));

	st_set *refs;
	snprintf(p, sizeof p, "%s/tests/data/%s-refs.safetensors", srcdir, name);
	if (!tap_ok(st_open(&refs, p, err, sizeof err) == 0, "%s: reference file opens", name)) {
		tap_diag("%s", err);
		return;
	}
	char args[1024];
	snprintf(args, sizeof args, "--prompt '%s' --prompt '%s' --prompt '%s'", prompts[0], prompts[1], prompts[2]);
	char a[1200];
	snprintf(a, sizeof a, "%s --guidance 3", args);
	check_case(bin, model, refs, name, "cfg3", a);
	snprintf(a, sizeof a, "%s --guidance 1", args);
	check_case(bin, model, refs, name, "noguide", a);
	check_case(bin, model, refs, name, "uncond", "--count 2");
	st_close(refs);
}

int main(void)
{
	const char *refdir = tap_require_ref();
	const char *bin = getenv("MG_BIN"), *srcdir = getenv("MG_TOP_SRCDIR");
	if (!bin || !srcdir)
		tap_skip_all("MG_BIN / MG_TOP_SRCDIR not set (run through make check)");
	snprintf(tmpdir, sizeof tmpdir, "%s/mg-shapes-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir))
		tap_skip_all("cannot create a temporary directory");
	check_model(bin, srcdir, refdir, "tinyb");
	check_model(bin, srcdir, refdir, "tinyc");
	char cmd[700];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (!getenv("MG_KEEP_TMP"))
		run(cmd);
	return tap_done();
}
