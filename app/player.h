/* player.h - auditioning takes through PortAudio.
 *
 * A feeder thread copies (and, when the device runs at another rate,
 * linearly resamples) the loaded take into a lock-free single-producer
 * single-consumer ring; the PortAudio callback only reads the ring, counts
 * frames and measures the peak level: it never locks, allocates, logs or
 * calls PortAudio. Without an audio device the player still loads takes
 * (for the waveform) and says why it cannot play. */
#ifndef MG_PLAYER_H
#define MG_PLAYER_H

#include <stddef.h>
#include <stdint.h>

typedef struct player player;

struct player_state {
	int has_device;
	int loaded, playing;
	double pos_s, len_s;
	float level[2];      /* peak of the last callback block, per side, 0..1 */
	int64_t tag;         /* what the caller said was loaded (e.g. take id) */
	char device[160];    /* device name, or why there is none */
	unsigned underruns;
};

/* device: a name from player_list_devices(), or NULL/"" for the default
 * (then the first device with outputs). PortAudio's own messages go to
 * log_fd (stderr is redirected there while PortAudio starts); -1 = discard.
 * Returns -1 only when out of memory; otherwise check has_device. */
int player_open(player **out, const char *device, int log_fd, char *err, size_t errlen);
void player_close(player *p);

/* Takes ownership of pcm (planar [channels][n], malloc'ed) and stops what
 * was playing. tag is returned in the state. */
int player_load(player *p, float *pcm, int channels, int64_t n, int rate, int64_t tag, char *err, size_t errlen);
/* Starts playing from the current position (from the start when at the end). */
int player_play(player *p, char *err, size_t errlen);
void player_pause(player *p);
int player_toggle(player *p, char *err, size_t errlen);
/* Moves the position by delta seconds (clamped). */
void player_seek(player *p, double delta_s);
void player_snapshot(player *p, struct player_state *st);

/* The loaded audio for drawing (valid until the next load; UI thread only). */
const float *player_pcm(const player *p, int *channels, int64_t *n);

/* Output devices as "HOST API: NAME"; returns how many were written. */
int player_list_devices(player *p, char names[][160], int max);

#endif
