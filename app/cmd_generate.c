/* cmd_generate.c - `musicgen-tui generate`: prompts in, audio files (and
 * optionally the codes as text) out, without the screen.
 *
 * Exit status: 0 success, 1 runtime error (model, memory, files), 2 usage
 * error (a bad option or value, with the reason on stderr). Files are written
 * to a temporary name in the target directory, synced and renamed, so a real
 * name never holds half a file; an existing file is only replaced with
 * --force. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/audio_file.h"
#include "app/commands.h"
#include "app/history.h"
#include "app/take_save.h"
#include "app/util.h"
#include "engine/mg.h"

#define CMD "generate"
#define MAX_PROMPTS 256

static void help(FILE *f)
{
	fprintf(f,
	        "Usage: musicgen-tui generate --model PATH [--prompt TEXT]... [--count N]\n"
	        "         [--duration SECONDS | --frames N] [--guidance G] [--temperature T] [--top-k K]\n"
	        "         [--top-p P] [--seed S] [--greedy] [--threads N] [--backend cpu|opencl|auto]\n"
	        "         [--device N] [--weights f32|f16|q8] [--output FILE] [--sample-format pcm16|pcm24|float]\n"
	        "         [--codes-out FILE] [--force] [--save]\n"
	        "\n"
	        "Generates music from text prompts with a MusicGen model and writes audio files.\n"
	        "\n"
	        "  --model PATH         model directory (Hugging Face layout) or hub id ORG/NAME in the\n"
	        "                       local Hugging Face cache (required)\n"
	        "  --prompt TEXT        one take per prompt (repeatable); without any, unconditional takes\n"
	        "  --count N            N takes of each prompt (default 1); all takes are one batch, and a\n"
	        "                       take's result does not depend on the others\n"
	        "  --duration SECONDS   length of each take (default 10); frames = round(SECONDS x the\n"
	        "                       model's frame rate)\n"
	        "  --frames N           exactly N audio frames (N + K - 1 decoder steps, K codebooks per\n"
	        "                       channel; N >= K - 1)\n"
	        "  --guidance G         classifier-free guidance scale (default from generation_config.json,\n"
	        "                       else 3; <= 1 turns it off; not used without a prompt)\n"
	        "  --temperature T      sampling temperature > 0 (default 1)\n"
	        "  --top-k K            keep the K most likely codes, 0 = off (default: generation_config.json's\n"
	        "                       top_k, or 250 when it has none, as in the MusicGen paper and audiocraft);\n"
	        "                       --top-k 1 is the same as --greedy\n"
	        "  --top-p P            nucleus sampling, P in (0, 1] (default 1 = off)\n"
	        "  --seed S             random seed (default: a fresh one, printed); take i of a run uses\n"
	        "                       seed S + i, so a take can be reproduced alone\n"
	        "  --greedy             argmax instead of sampling (as Hugging Face's do_sample=False)\n"
	        "  --threads N          CPU threads (default: all cores)\n"
	        "  --backend B          cpu, opencl or auto (default auto: an OpenCL GPU or accelerator if\n"
	        "                       there is one, else the CPU)\n"
	        "  --device N           the OpenCL device to use (numbers from 'musicgen-tui devices')\n"
	        "  --weights W          compute format of the weight matrices: f32, f16 or q8 (default:\n"
	        "                       f32 when the decoder's matrices fit in 64 MiB, which reproduces\n"
	        "                       Hugging Face exactly; above that the fastest format whose greedy\n"
	        "                       agreement with f32 is at least 99%%, see docs/PERFORMANCE.md)\n"
	        "  --output FILE        audio file; the format follows the extension: .wav, .flac, .ogg;\n"
	        "                       several takes get -1, -2, ... before the extension (prompts in\n"
	        "                       order, each prompt's takes together). Default: a name made from the\n"
	        "                       prompt and the time, in the current directory\n"
	        "  --sample-format F    pcm16 (default, clipped), pcm24 or float (WAV; FLAC: pcm16/pcm24)\n"
	        "  --codes-out FILE     also write the codes as text (replacing FILE): a line 'B K F', then\n"
	        "                       B x K lines (take b, codebook k) of F space-separated codes\n"
	        "  --force              replace existing output files\n"
	        "  --save               also add the takes to the history the interactive screen shows\n"
	        "                       ($XDG_DATA_HOME/musicgen-tui/history.db)\n"
	        "\n"
	        "Progress goes to stderr: a bar on a terminal, else one summary line (seconds, decoder\n"
	        "steps per second, real-time factor = generation time / audio duration). The written\n"
	        "file names go to stdout. Exit status: 0 done, 1 runtime error, 2 usage error.\n");
}

static int usage_err(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "musicgen-tui " CMD ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'musicgen-tui " CMD " --help'.\n");
	return 2;
}

static int runtime_err(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "musicgen-tui " CMD ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 1;
}

enum { FMT_WAV, FMT_FLAC, FMT_OGG }; /* containers by extension */
enum { SAMPLE_PCM16, SAMPLE_PCM24, SAMPLE_FLOAT };

struct opts {
	const char *model;
	const char *prompts[MAX_PROMPTS];
	int n_prompts;
	long count;
	int have_duration, have_frames;
	double duration;
	long frames;
	int have_guidance, have_temperature, have_top_k, have_top_p, have_seed;
	double guidance, temperature, top_p;
	long top_k, threads, device;
	uint64_t seed;
	int greedy, backend, weights, force, save;
	const char *output, *codes_out;
	int sample_format, have_sample_format;
};

/* "--opt value" or "--opt=value"; *i advances past a separate value. */
static int take_value(int argc, char **argv, int *i, const char *opt, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(opt);
	if (strncmp(a, opt, n))
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n])
		return 0;
	if (*i + 1 >= argc) {
		*val = NULL;
		return 1;
	}
	*val = argv[++*i];
	return 1;
}

static int parse(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof *o);
	o->count = 1;
	o->backend = MG_BACKEND_AUTO;
	o->weights = MG_WEIGHTS_DEFAULT;
	o->device = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (cli_help_or_version(a, help))
			return -1;
		if (!strcmp(a, "--greedy")) {
			o->greedy = 1;
			continue;
		}
		if (!strcmp(a, "--force")) {
			o->force = 1;
			continue;
		}
		if (!strcmp(a, "--save")) {
			o->save = 1;
			continue;
		}
		static const char *const with_value[] = {
			"--model", "--prompt", "--count", "--duration", "--frames", "--guidance", "--temperature",
			"--top-k", "--top-p", "--seed", "--threads", "--backend", "--device", "--weights", "--output",
			"--sample-format", "--codes-out",
		};
		const char *opt = NULL;
		for (size_t j = 0; j < sizeof with_value / sizeof with_value[0] && !opt; j++)
			if (take_value(argc, argv, &i, with_value[j], &v))
				opt = with_value[j];
		if (!opt) {
			char known[512] = "--help, --version, --greedy, --force, --save";
			for (size_t j = 0; j < sizeof with_value / sizeof with_value[0]; j++)
				snprintf(known + strlen(known), sizeof known - strlen(known), ", %s", with_value[j]);
			return usage_err("unknown option '%s'; expected one of %s", a, known);
		}
		if (!v)
			return usage_err("%s needs a value", opt);
		if (!strcmp(opt, "--model"))
			o->model = v;
		else if (!strcmp(opt, "--prompt")) {
			if (o->n_prompts == MAX_PROMPTS)
				return usage_err("at most %d prompts", MAX_PROMPTS);
			o->prompts[o->n_prompts++] = v;
		} else if (!strcmp(opt, "--count")) {
			if (cli_int(CMD, opt, v, 1, 256, &o->count))
				return 2;
		} else if (!strcmp(opt, "--duration")) {
			if (cli_float(CMD, opt, v, &o->duration))
				return 2;
			if (!(o->duration > 0))
				return usage_err("--duration must be positive, got '%s'", v);
			o->have_duration = 1;
		} else if (!strcmp(opt, "--frames")) {
			if (cli_int(CMD, opt, v, 1, 1L << 24, &o->frames))
				return 2;
			o->have_frames = 1;
		} else if (!strcmp(opt, "--guidance")) {
			if (cli_float(CMD, opt, v, &o->guidance))
				return 2;
			if (o->guidance < 0)
				return usage_err("--guidance must be >= 0, got '%s'", v);
			o->have_guidance = 1;
		} else if (!strcmp(opt, "--temperature")) {
			if (cli_float(CMD, opt, v, &o->temperature))
				return 2;
			if (!(o->temperature > 0))
				return usage_err("--temperature must be > 0, got '%s' (use --greedy for argmax)", v);
			o->have_temperature = 1;
		} else if (!strcmp(opt, "--top-k")) {
			char *end;
			errno = 0;
			long k = strtol(v, &end, 10);
			if (!*v || *end || errno)
				return usage_err("--top-k expects a whole number, got '%s'", v);
			if (k < 0)
				return usage_err("--top-k must be >= 0 (0 = off), got '%s'", v);
			o->top_k = k > (1L << 24) ? (1L << 24) : k;
			o->have_top_k = 1;
		} else if (!strcmp(opt, "--top-p")) {
			if (cli_float(CMD, opt, v, &o->top_p))
				return 2;
			if (!(o->top_p > 0 && o->top_p <= 1))
				return usage_err("--top-p must be in (0, 1], got '%s'", v);
			o->have_top_p = 1;
		} else if (!strcmp(opt, "--seed")) {
			if (cli_u64(CMD, opt, v, &o->seed))
				return 2;
			o->have_seed = 1;
		} else if (!strcmp(opt, "--threads")) {
			if (cli_int(CMD, opt, v, 1, 1024, &o->threads))
				return 2;
		} else if (!strcmp(opt, "--backend")) {
			if (cli_backend(CMD, v, &o->backend))
				return 2;
		} else if (!strcmp(opt, "--device")) {
			if (cli_int(CMD, opt, v, 0, 1023, &o->device))
				return 2;
		} else if (!strcmp(opt, "--weights")) {
			if (cli_weights(CMD, v, &o->weights))
				return 2;
		} else if (!strcmp(opt, "--output")) {
			if (!*v)
				return usage_err("--output needs a file name");
			o->output = v;
		} else if (!strcmp(opt, "--codes-out")) {
			if (!*v)
				return usage_err("--codes-out needs a file name");
			o->codes_out = v;
		} else if (!strcmp(opt, "--sample-format")) {
			if (!strcmp(v, "pcm16"))
				o->sample_format = SAMPLE_PCM16;
			else if (!strcmp(v, "pcm24"))
				o->sample_format = SAMPLE_PCM24;
			else if (!strcmp(v, "float"))
				o->sample_format = SAMPLE_FLOAT;
			else
				return usage_err("--sample-format expects pcm16, pcm24 or float, got '%s'", v);
			o->have_sample_format = 1;
		}
	}
	if (!o->model)
		return usage_err("--model PATH is required");
	if (o->have_duration && o->have_frames)
		return usage_err("give --duration or --frames, not both");
	return 0;
}

/* The container format from the file name's extension. */
static int format_of(const char *path, int *fmt)
{
	const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
	if (!dot || (slash && dot < slash))
		return -1;
	if (!strcasecmp(dot, ".wav"))
		*fmt = FMT_WAV;
	else if (!strcasecmp(dot, ".flac"))
		*fmt = FMT_FLAC;
	else if (!strcasecmp(dot, ".ogg"))
		*fmt = FMT_OGG;
	else
		return -1;
	return 0;
}

/* base + "-N" before the extension (n = 0: base unchanged). */
static void numbered(char *out, size_t len, const char *base, int n)
{
	const char *dot = strrchr(base, '.'), *slash = strrchr(base, '/');
	if (n == 0 || !dot || (slash && dot < slash)) {
		if (n == 0)
			snprintf(out, len, "%s", base);
		else
			snprintf(out, len, "%s-%d", base, n);
		return;
	}
	snprintf(out, len, "%.*s-%d%s", (int)(dot - base), base, n, dot);
}

/* A file name from the prompt's first words and the time: "calm-piano-20260101-120000". */
static void default_stem(char *out, size_t len, const char *prompt)
{
	size_t n = 0;
	int dash = 0;
	if (prompt)
		for (const unsigned char *p = (const unsigned char *)prompt; *p && n < 40; p++) {
			if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
				if (dash && n)
					out[n++] = '-';
				out[n++] = (char)*p;
				dash = 0;
			} else if (*p >= 'A' && *p <= 'Z') {
				if (dash && n)
					out[n++] = '-';
				out[n++] = (char)(*p - 'A' + 'a');
				dash = 0;
			} else
				dash = 1;
		}
	if (n == 0) {
		const char *u = prompt ? "take" : "unconditional";
		n = strlen(u);
		memcpy(out, u, n);
	}
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	snprintf(out + n, len - n, "-%04d%02d%02d-%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* 0 when a file can be written at `path` (its directory exists and is
 * writable, and `path` is not a directory); else -1 with the reason, so that a
 * bad output path fails before the generation instead of after it. */
static int can_write_at(const char *path, char *why, size_t len)
{
	char dir[4200];
	parent_dir(path, dir, sizeof dir);
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
		snprintf(why, len, "cannot write in the directory '%s' (%s)", dir,
		         errno ? strerror(errno) : "not a directory");
		return -1;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(why, len, "'%s' is a directory", path);
		return -1;
	}
	return 0;
}

/* A temporary file beside `path`; fd and its name. */
static int open_temp(const char *path, char *tmp, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (slash)
		snprintf(tmp, len, "%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
	else
		snprintf(tmp, len, ".%s.XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd >= 0) {
		/* mkstemp makes the file private; give it the usual umask-based mode. */
		mode_t um = umask(0);
		umask(um);
		if (fchmod(fd, 0666 & ~um)) {
			/* not fatal: the file stays private */
		}
	}
	return fd;
}

/* fsync + rename, or unlink the temporary file. */
static int finish_temp(int fd, const char *tmp, const char *path, int ok)
{
	if (ok && fsync(fd))
		ok = 0;
	if (close(fd))
		ok = 0;
	if (ok && rename(tmp, path))
		ok = 0;
	if (!ok)
		unlink(tmp);
	return ok ? 0 : -1;
}

struct meta {
	const char *prompt;
	uint64_t seed;
	const mg_params *p;
	const char *model;
};

/* The take's audio through the shared writer (temp + fsync + rename,
 * clipping for integer formats), with the prompt and knobs as metadata. */
static int write_audio(const char *path, int format, const float *pcm, int channels, int64_t n, int rate,
                       const struct meta *md)
{
	char comment[1024], software[64], err[512];
	const mg_params *p = md->p;
	snprintf(comment, sizeof comment,
	         "musicgen-tui: model=%s seed=%llu frames=%d guidance=%g temperature=%g top_k=%d top_p=%g %s",
	         md->model, (unsigned long long)md->seed, p->frames, p->guidance, p->temperature, p->top_k, p->top_p,
	         p->greedy ? "greedy" : "sampled");
	snprintf(software, sizeof software, "musicgen-tui %s", mg_version());
	struct audio_meta meta[] = {
		{"title", md->prompt ? md->prompt : "(unconditional)"},
		{"comment", comment},
		{"software", software},
	};
	if (audio_file_write(path, format, pcm, channels, n, rate, meta, 3, err, sizeof err))
		return runtime_err("%s", err);
	return 0;
}

static int write_codes(const char *path, const mg_take *t)
{
	char tmp[4200];
	int fd = open_temp(path, tmp, sizeof tmp);
	if (fd < 0)
		return runtime_err("cannot create a file beside '%s': %s", path, strerror(errno));
	FILE *f = fdopen(dup(fd), "w");
	int ok = f != NULL;
	if (f) {
		fprintf(f, "%d %d %d\n", t->n_takes, t->n_codebooks, t->n_frames);
		for (int r = 0; r < t->n_takes * t->n_codebooks; r++) {
			for (int i = 0; i < t->n_frames; i++)
				fprintf(f, i ? " %d" : "%d", t->codes[(size_t)r * t->n_frames + i]);
			fputc('\n', f);
		}
		if (fflush(f) || ferror(f))
			ok = 0;
		if (fclose(f))
			ok = 0;
	}
	if (finish_temp(fd, tmp, path, ok))
		return runtime_err("cannot write '%s': %s", path, strerror(errno ? errno : EIO));
	return 0;
}

struct progress {
	int tty;
	double t0;
	int last_step, total;
};

static void on_progress(int step, int total, void *u)
{
	struct progress *pr = u;
	pr->last_step = step;
	pr->total = total;
	if (!pr->tty)
		return;
	double el = mono_seconds() - pr->t0, rate = el > 0 ? step / el : 0;
	int width = 30, fill = total ? (int)((long)width * step / total) : width;
	char bar[64];
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[width] = 0;
	fprintf(stderr, "\r[%s] %d/%d  %.1f steps/s  ETA %.0fs ", bar, step, total, rate,
	        rate > 0 ? (total - step) / rate : 0.0);
	if (step == total)
		fprintf(stderr, "\n");
	fflush(stderr);
}

/* Loading notices (backend fallback, kernel compilation) on stderr. */
static void on_notice(const char *msg, void *u)
{
	(void)u;
	fprintf(stderr, "musicgen-tui " CMD ": %s\n", msg);
}

static uint64_t fresh_seed(void)
{
	uint64_t s = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &s, sizeof s) != (ssize_t)sizeof s)
			s = 0;
		close(fd);
	}
	if (!s) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		s = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	}
	/* Keep seeds short enough to type back. */
	return s % 1000000000ull;
}

/* --save: the takes go into the history store too, each with its own seed. */
static int save_to_history(const mg_take *t, const mg_params *p, const mg_model_info *info, double wall)
{
	char err[512];
	history *h;
	if (history_open(&h, NULL, err, sizeof err))
		return runtime_err("cannot open the history: %s", err);
	int64_t ids[MAX_PROMPTS];
	int n = 0;
	int rc = take_save_all(h, t, p, info, (double)p->frames / info->frame_rate, wall, ids, MAX_PROMPTS, &n, err,
	                       sizeof err);
	for (int i = 0; i < n; i++)
		fprintf(stderr, "saved take #%lld to the history\n", (long long)ids[i]);
	history_close(h);
	return rc ? runtime_err("saving to the history: %s", err) : 0;
}

int cmd_generate(int argc, char **argv)
{
	struct opts o;
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc < 0 ? 0 : rc;

	/* The file names are settled before any work: a bad name is a usage error. */
	int fmt = FMT_WAV;
	if (o.output && format_of(o.output, &fmt))
		return usage_err("cannot tell the audio format of '%s' from its extension (use .wav, .flac or .ogg)",
		                 o.output);
	if (fmt == FMT_FLAC && o.sample_format == SAMPLE_FLOAT)
		return usage_err("FLAC has no float samples: use --sample-format pcm16 or pcm24");
	if (fmt == FMT_OGG && o.have_sample_format)
		return usage_err("--sample-format does not apply to Ogg Vorbis");
	int afmt = fmt == FMT_OGG    ? AUDIO_FORMAT_OGG
	           : fmt == FMT_FLAC ? (o.sample_format == SAMPLE_PCM24 ? AUDIO_FORMAT_FLAC24 : AUDIO_FORMAT_FLAC)
	           : o.sample_format == SAMPLE_PCM24 ? AUDIO_FORMAT_WAV24
	           : o.sample_format == SAMPLE_FLOAT ? AUDIO_FORMAT_WAVF
	                                             : AUDIO_FORMAT_WAV16;

	char err[MG_ERR_LEN];
	mg_load_params lp = mg_load_params_default();
	lp.backend = o.backend;
	lp.weights = o.weights;
	lp.threads = (int)o.threads;
	lp.device = (int)o.device;
	lp.on_notice = on_notice;
	mg_model *m = NULL;
	if (mg_model_load(&m, o.model, &lp, err, sizeof err))
		return runtime_err("%s", err);
	mg_model_info info;
	mg_model_get_info(m, &info);

	mg_params p = mg_params_default(m);
	p.prompts = o.n_prompts ? o.prompts : NULL;
	p.n_prompts = o.n_prompts;
	p.count = (int)o.count;
	int min_frames = info.num_codebooks / info.audio_channels - 1;
	if (min_frames < 1)
		min_frames = 1;
	if (o.have_frames)
		p.frames = (int)o.frames;
	else if (o.have_duration) {
		double f = round(o.duration * info.frame_rate);
		if (f > info.max_frames) {
			mg_model_free(m);
			return usage_err("--duration %g s is longer than one window of this model allows (at most %.2f s)",
			                 o.duration, info.max_frames / info.frame_rate);
		}
		p.frames = (int)f;
	}
	if (p.frames < min_frames || p.frames > info.max_frames) {
		mg_model_free(m);
		if (o.have_duration)
			return usage_err("--duration %g s gives %d frames; this model needs at least %d (%.3f s)", o.duration,
			                 p.frames, min_frames, min_frames / info.frame_rate);
		return usage_err("--frames must be between %d and %d for this model (one window), got %d", min_frames,
		                 info.max_frames, p.frames);
	}
	if (o.have_guidance)
		p.guidance = (float)o.guidance;
	if (o.have_temperature)
		p.temperature = (float)o.temperature;
	if (o.have_top_k)
		p.top_k = (int)o.top_k;
	if (o.have_top_p)
		p.top_p = o.top_p;
	if (o.greedy)
		p.greedy = 1;
	else if (o.have_temperature || o.have_top_k || o.have_top_p)
		p.greedy = 0; /* asking for a sampling knob means sampling */
	p.seed = o.have_seed ? o.seed : fresh_seed();
	p.threads = (int)o.threads;
	if (mg_params_check(m, &p, err, sizeof err)) {
		mg_model_free(m);
		return usage_err("%s", err);
	}

	/* Output names: given, or made from the first prompt and the time. */
	int B = (o.n_prompts ? o.n_prompts : 1) * p.count;
	char base[4096];
	int chosen = o.output != NULL;
	if (chosen)
		snprintf(base, sizeof base, "%s", o.output);
	else {
		char stem[128];
		default_stem(stem, sizeof stem, o.n_prompts ? o.prompts[0] : NULL);
		/* A made-up name never replaces a file: add a counter until free. */
		for (int n = 0;; n++) {
			if (n)
				snprintf(base, sizeof base, "%s-%d.wav", stem, n);
			else
				snprintf(base, sizeof base, "%s.wav", stem);
			int clash = 0;
			for (int i = 0; i < B && !clash; i++) {
				char name[4200];
				numbered(name, sizeof name, base, B > 1 ? i + 1 : 0);
				clash = exists(name);
			}
			if (!clash)
				break;
		}
	}
	if (chosen && !o.force)
		for (int i = 0; i < B; i++) {
			char name[4200];
			numbered(name, sizeof name, base, B > 1 ? i + 1 : 0);
			if (exists(name)) {
				mg_model_free(m);
				return runtime_err("'%s' exists; use --force to replace it", name);
			}
		}
	for (int i = 0; i < B + (o.codes_out != NULL); i++) {
		char name[4200], why[4400];
		if (i < B)
			numbered(name, sizeof name, base, B > 1 ? i + 1 : 0);
		else
			snprintf(name, sizeof name, "%s", o.codes_out);
		errno = 0;
		if (can_write_at(name, why, sizeof why)) {
			mg_model_free(m);
			return runtime_err("%s", why);
		}
	}

	struct progress pr = {isatty(STDERR_FILENO), mono_seconds(), 0, 0};
	mg_callbacks cb = {on_progress, NULL, NULL, &pr};
	mg_take *t = NULL;
	rc = mg_generate(m, &p, &cb, &t, err, sizeof err);
	double wall = mono_seconds() - pr.t0;
	if (rc) {
		if (pr.tty && pr.last_step && pr.last_step < pr.total)
			fprintf(stderr, "\n");
		mg_model_free(m);
		return runtime_err("%s", err);
	}
	double audio_s = (double)t->n_samples / t->sample_rate;
	fprintf(stderr,
	        "generated %d take%s of %d frames (%.2f s of audio) in %.2f s: %.1f steps/s, real-time factor %.2f "
	        "(T5 %.2f s, decoder %.2f s, EnCodec %.2f s), seed %llu\n",
	        t->n_takes, t->n_takes == 1 ? "" : "s", t->n_frames, audio_s, wall,
	        t->decode_seconds > 0 ? t->steps / t->decode_seconds : 0.0, audio_s > 0 ? wall / audio_s : 0.0,
	        t->t5_seconds, t->decode_seconds, t->encodec_seconds, (unsigned long long)p.seed);

	int status = 0;
	for (int i = 0; i < t->n_takes && !status; i++) {
		char name[4200];
		numbered(name, sizeof name, base, t->n_takes > 1 ? i + 1 : 0);
		struct meta md = {o.n_prompts ? o.prompts[i / p.count] : NULL, t->seeds[i], &p, info.id};
		if (chosen && !o.force && exists(name)) {
			status = runtime_err("'%s' appeared while generating; use --force to replace it", name);
			break;
		}
		status = write_audio(name, afmt, t->pcm + (size_t)i * t->channels * t->n_samples, t->channels,
		                     t->n_samples, t->sample_rate, &md);
		if (!status)
			printf("%s\n", name);
	}
	if (!status && o.codes_out)
		status = write_codes(o.codes_out, t);
	if (!status && o.save)
		status = save_to_history(t, &p, &info, wall);
	mg_take_free(t);
	mg_model_free(m);
	return status;
}
