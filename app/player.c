/* player.c - PortAudio playback through a lock-free ring (see player.h). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <portaudio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/player.h"

#define RING_FRAMES 16384 /* power of two; about 0.3-0.5 s at common rates */
#define OUT_CHANNELS_MAX 2

struct player {
	int has_device;
	char device[160];
	PaDeviceIndex dev;
	int out_channels;
	PaStream *stream;
	double stream_rate;

	/* the ring: producer = feeder, consumer = callback */
	float ring[RING_FRAMES * OUT_CHANNELS_MAX];
	atomic_size_t wpos, rpos;       /* frame counters, wrap naturally */
	atomic_int flush_req;           /* feeder asks the callback to drop the ring */
	atomic_llong played;            /* output frames consumed since the last flush */
	atomic_uint level_bits[2];
	atomic_uint underruns;
	atomic_int running;             /* the callback should consume */

	/* the take (UI thread writes with feeder stopped on lock) */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	float *pcm;
	int channels;
	int64_t n;
	int rate;
	int64_t tag;
	int playing;                    /* under lock */
	double src_pos;                 /* feeder's read position in source frames (under lock) */
	double base_pos;                /* source position of the first frame after the last flush */
	double ratio;                   /* source frames per output frame */
	int stop;
	pthread_t feeder;
	int feeder_started;
};

static int callback(const void *in, void *out, unsigned long frames, const PaStreamCallbackTimeInfo *ti,
                    PaStreamCallbackFlags flags, void *user)
{
	(void)in;
	(void)ti;
	(void)flags;
	player *p = user;
	float *o = out;
	int ch = p->out_channels;
	if (atomic_load_explicit(&p->flush_req, memory_order_acquire)) {
		atomic_store_explicit(&p->rpos, atomic_load_explicit(&p->wpos, memory_order_acquire),
		                      memory_order_release);
		atomic_store(&p->played, 0);
		atomic_store_explicit(&p->flush_req, 0, memory_order_release);
	}
	size_t r = atomic_load_explicit(&p->rpos, memory_order_relaxed);
	size_t w = atomic_load_explicit(&p->wpos, memory_order_acquire);
	size_t avail = w - r;
	int running = atomic_load_explicit(&p->running, memory_order_relaxed);
	unsigned long take = running ? (avail < frames ? avail : frames) : 0;
	float peak[2] = {0, 0};
	for (unsigned long i = 0; i < take; i++) {
		const float *s = &p->ring[((r + i) & (RING_FRAMES - 1)) * OUT_CHANNELS_MAX];
		for (int c = 0; c < ch; c++) {
			o[i * ch + c] = s[c];
			float a = fabsf(s[c]);
			if (a > peak[c > 1 ? 1 : c])
				peak[c > 1 ? 1 : c] = a;
		}
	}
	if (take < frames) {
		memset(o + take * ch, 0, sizeof(float) * (frames - take) * ch);
		if (running && avail == 0)
			atomic_fetch_add(&p->underruns, 1);
	}
	atomic_store_explicit(&p->rpos, r + take, memory_order_release);
	atomic_fetch_add(&p->played, (long long)take);
	if (ch == 1)
		peak[1] = peak[0];
	for (int c = 0; c < 2; c++) {
		unsigned bits;
		memcpy(&bits, &peak[c], sizeof bits);
		atomic_store_explicit(&p->level_bits[c], bits, memory_order_relaxed);
	}
	return paContinue;
}

/* One output frame at source position pos (linear interpolation). */
static void source_frame(const player *p, double pos, float *out)
{
	int64_t i = (int64_t)pos;
	double f = pos - (double)i;
	for (int c = 0; c < p->out_channels; c++) {
		int sc = c < p->channels ? c : p->channels - 1;
		const float *x = p->pcm + (int64_t)sc * p->n;
		float a = i < p->n ? x[i] : 0.0f, b = i + 1 < p->n ? x[i + 1] : a;
		out[c] = (float)(a + (b - a) * f);
	}
}

static void *feeder_main(void *arg)
{
	player *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		if (!p->playing || !p->pcm || atomic_load(&p->flush_req)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 5000000;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
			continue;
		}
		size_t w = atomic_load_explicit(&p->wpos, memory_order_relaxed);
		size_t r = atomic_load_explicit(&p->rpos, memory_order_acquire);
		size_t space = RING_FRAMES - (w - r);
		int wrote = 0;
		while (space > 0 && p->src_pos < (double)p->n) {
			source_frame(p, p->src_pos, &p->ring[(w & (RING_FRAMES - 1)) * OUT_CHANNELS_MAX]);
			w++;
			space--;
			p->src_pos += p->ratio;
			wrote = 1;
		}
		if (wrote)
			atomic_store_explicit(&p->wpos, w, memory_order_release);
		if (p->src_pos >= (double)p->n && w == atomic_load(&p->rpos)) {
			/* Everything was heard. */
			p->playing = 0;
			atomic_store(&p->running, 0);
			continue;
		}
		struct timespec ts = {0, 5000000};
		pthread_mutex_unlock(&p->lock);
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Runs fn with stderr pointed at log_fd, so library chatter never reaches a
 * terminal that curses owns. */
static int quiet_fd_begin(int log_fd)
{
	fflush(stderr);
	int saved = dup(2);
	int target = log_fd >= 0 ? log_fd : open("/dev/null", O_WRONLY);
	if (target >= 0) {
		dup2(target, 2);
		if (target != log_fd)
			close(target);
	}
	return saved;
}

static void quiet_fd_end(int saved)
{
	fflush(stderr);
	if (saved >= 0) {
		dup2(saved, 2);
		close(saved);
	}
}

static void device_name(PaDeviceIndex d, char *out, size_t outlen)
{
	const PaDeviceInfo *di = Pa_GetDeviceInfo(d);
	const PaHostApiInfo *hi = di ? Pa_GetHostApiInfo(di->hostApi) : NULL;
	const char *api = hi ? hi->name : "?";
	if (hi && hi->type == paJACK)
		api = "JACK";
	else if (hi && hi->type == paALSA)
		api = "ALSA";
	snprintf(out, outlen, "%s: %s", api, di ? di->name : "?");
}

int player_open(player **out, const char *device, int log_fd, char *err, size_t errlen)
{
	player *p = calloc(1, sizeof *p);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->dev = paNoDevice;
	int saved = quiet_fd_begin(log_fd);
	PaError e = Pa_Initialize();
	if (e != paNoError) {
		snprintf(p->device, sizeof p->device, "no audio: %s", Pa_GetErrorText(e));
	} else {
		PaDeviceIndex n = Pa_GetDeviceCount(), pick = paNoDevice;
		char name[160];
		if (device && *device) {
			for (PaDeviceIndex d = 0; d < n; d++) {
				const PaDeviceInfo *di = Pa_GetDeviceInfo(d);
				device_name(d, name, sizeof name);
				if (di && di->maxOutputChannels > 0 && !strcmp(name, device))
					pick = d;
			}
			if (pick == paNoDevice)
				snprintf(p->device, sizeof p->device, "no audio: device '%.100s' not found", device);
		} else {
			pick = Pa_GetDefaultOutputDevice();
			if (pick == paNoDevice)
				for (PaDeviceIndex d = 0; d < n && pick == paNoDevice; d++) {
					const PaDeviceInfo *di = Pa_GetDeviceInfo(d);
					if (di && di->maxOutputChannels > 0)
						pick = d;
				}
			if (pick == paNoDevice)
				snprintf(p->device, sizeof p->device, "no audio device found");
		}
		if (pick != paNoDevice) {
			p->dev = pick;
			p->has_device = 1;
			device_name(pick, p->device, sizeof p->device);
			const PaDeviceInfo *di = Pa_GetDeviceInfo(pick);
			p->out_channels = di->maxOutputChannels >= 2 ? 2 : 1;
		}
	}
	quiet_fd_end(saved);
	p->stop = 0;
	if (pthread_create(&p->feeder, NULL, feeder_main, p) == 0)
		p->feeder_started = 1;
	*out = p;
	return 0;
}

static void close_stream(player *p, int log_fd)
{
	if (!p->stream)
		return;
	int saved = quiet_fd_begin(log_fd);
	Pa_StopStream(p->stream);
	Pa_CloseStream(p->stream);
	quiet_fd_end(saved);
	p->stream = NULL;
}

void player_close(player *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->feeder_started)
		pthread_join(p->feeder, NULL);
	close_stream(p, -1);
	if (p->has_device || p->dev == paNoDevice) {
		int saved = quiet_fd_begin(-1);
		Pa_Terminate();
		quiet_fd_end(saved);
	}
	free(p->pcm);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

/* Opens a stream at the take's rate, else at the device's own rate. */
static int open_stream(player *p, int rate, char *err, size_t errlen)
{
	if (p->stream && p->stream_rate == rate)
		return 0;
	close_stream(p, -1);
	int saved = quiet_fd_begin(-1);
	const PaDeviceInfo *di = Pa_GetDeviceInfo(p->dev);
	PaStreamParameters op = {.device = p->dev,
	                         .channelCount = p->out_channels,
	                         .sampleFormat = paFloat32,
	                         .suggestedLatency = di ? di->defaultLowOutputLatency : 0.05,
	                         .hostApiSpecificStreamInfo = NULL};
	double rates[2] = {rate, di ? di->defaultSampleRate : 48000};
	PaError e = paInvalidSampleRate;
	for (int i = 0; i < 2 && !p->stream; i++) {
		e = Pa_OpenStream(&p->stream, NULL, &op, rates[i], paFramesPerBufferUnspecified, paClipOff, callback, p);
		if (e == paNoError)
			p->stream_rate = rates[i];
		else
			p->stream = NULL;
	}
	if (p->stream && (e = Pa_StartStream(p->stream)) != paNoError) {
		Pa_CloseStream(p->stream);
		p->stream = NULL;
	}
	quiet_fd_end(saved);
	if (!p->stream) {
		snprintf(err, errlen, "cannot open %s at %d Hz: %s", p->device, rate, Pa_GetErrorText(e));
		return -1;
	}
	return 0;
}

/* Drops what the ring holds. With a stream the callback does it (it owns the
 * read side); without one nobody reads, so it is done here. Lock held. */
static void flush_locked(player *p)
{
	if (p->stream) {
		atomic_store(&p->flush_req, 1);
	} else {
		atomic_store(&p->rpos, atomic_load(&p->wpos));
		atomic_store(&p->played, 0);
		atomic_store(&p->flush_req, 0);
	}
}

int player_load(player *p, float *pcm, int channels, int64_t n, int rate, int64_t tag, char *err, size_t errlen)
{
	pthread_mutex_lock(&p->lock);
	p->playing = 0;
	atomic_store(&p->running, 0);
	flush_locked(p);
	free(p->pcm);
	p->pcm = pcm;
	p->channels = channels;
	p->n = n;
	p->rate = rate;
	p->tag = tag;
	p->src_pos = 0;
	p->base_pos = 0;
	pthread_mutex_unlock(&p->lock);
	if (!p->has_device)
		return 0;
	/* The callback is not running on a stream being replaced, so the flush
	 * request is served here when no stream exists. */
	int rc = 0;
	if (!p->stream || p->stream_rate != rate) {
		close_stream(p, -1);
		pthread_mutex_lock(&p->lock);
		flush_locked(p);
		pthread_mutex_unlock(&p->lock);
		rc = open_stream(p, rate, err, errlen);
	}
	pthread_mutex_lock(&p->lock);
	p->ratio = p->stream ? (double)rate / p->stream_rate : 1.0;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int player_play(player *p, char *err, size_t errlen)
{
	if (!p->has_device) {
		snprintf(err, errlen, "cannot play: %s", p->device);
		return -1;
	}
	if (!p->pcm) {
		snprintf(err, errlen, "nothing to play");
		return -1;
	}
	if (!p->stream && open_stream(p, p->rate, err, errlen))
		return -1;
	pthread_mutex_lock(&p->lock);
	double pos = p->base_pos + (double)atomic_load(&p->played) * p->ratio;
	if (!atomic_load(&p->flush_req) && (pos >= (double)p->n - 1 || p->src_pos >= (double)p->n)) {
		/* At the end: start again. */
		p->src_pos = 0;
		p->base_pos = 0;
		flush_locked(p);
	}
	p->playing = 1;
	atomic_store(&p->running, 1);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void player_pause(player *p)
{
	pthread_mutex_lock(&p->lock);
	p->playing = 0;
	atomic_store(&p->running, 0);
	pthread_mutex_unlock(&p->lock);
}

int player_toggle(player *p, char *err, size_t errlen)
{
	pthread_mutex_lock(&p->lock);
	int playing = p->playing;
	pthread_mutex_unlock(&p->lock);
	if (playing) {
		player_pause(p);
		return 0;
	}
	return player_play(p, err, errlen);
}

void player_seek(player *p, double delta_s)
{
	pthread_mutex_lock(&p->lock);
	if (!p->pcm) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	double pos = atomic_load(&p->flush_req) ? p->base_pos
	                                         : p->base_pos + (double)atomic_load(&p->played) * p->ratio;
	pos += delta_s * p->rate;
	if (pos < 0)
		pos = 0;
	if (pos > (double)p->n)
		pos = (double)p->n;
	/* The feeder writes nothing until the callback dropped the old frames. */
	p->src_pos = pos;
	p->base_pos = pos;
	flush_locked(p);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void player_snapshot(player *p, struct player_state *st)
{
	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&p->lock);
	st->has_device = p->has_device;
	st->loaded = p->pcm != NULL;
	st->playing = p->playing;
	st->tag = p->tag;
	if (p->pcm && p->rate > 0) {
		double pos = atomic_load(&p->flush_req) ? p->base_pos
		                                         : p->base_pos + (double)atomic_load(&p->played) * p->ratio;
		if (pos > (double)p->n)
			pos = (double)p->n;
		st->pos_s = pos / p->rate;
		st->len_s = (double)p->n / p->rate;
	}
	pthread_mutex_unlock(&p->lock);
	for (int c = 0; c < 2; c++) {
		unsigned bits = atomic_load(&p->level_bits[c]);
		memcpy(&st->level[c], &bits, sizeof bits);
		if (!st->playing)
			st->level[c] = 0;
	}
	st->underruns = atomic_load(&p->underruns);
	snprintf(st->device, sizeof st->device, "%s", p->device);
}

const float *player_pcm(const player *p, int *channels, int64_t *n)
{
	*channels = p->channels;
	*n = p->n;
	return p->pcm;
}

int player_list_devices(player *p, char names[][160], int max)
{
	(void)p;
	int cnt = 0;
	PaDeviceIndex n = Pa_GetDeviceCount();
	for (PaDeviceIndex d = 0; d < n && cnt < max; d++) {
		const PaDeviceInfo *di = Pa_GetDeviceInfo(d);
		if (di && di->maxOutputChannels > 0)
			device_name(d, names[cnt++], 160);
	}
	return cnt;
}
