/* test_player.c - the PortAudio player. Without an audio device it must say
 * so and refuse to play without crashing; with MG_EXPECT_AUDIO=1 (set by
 * test_player_jack.sh, which starts a JACK dummy server) it must play at the
 * device's pace, seek, pause and stop at the end. */
#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/player.h"
#include "tests/tap.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
	nanosleep(&ts, NULL);
}

static float *tone(int rate, double seconds, int64_t *n)
{
	*n = (int64_t)(rate * seconds);
	float *p = malloc(sizeof(float) * (size_t)*n);
	for (int64_t i = 0; i < *n; i++)
		p[i] = 0.5f * sinf(2 * 3.14159265f * 440.0f * (float)i / (float)rate);
	return p;
}

int main(void)
{
	const char *expect = getenv("MG_EXPECT_AUDIO");
	int want_audio = expect && !strcmp(expect, "1");
	char err[512];
	player *p;
	if (!want_audio) {
		/* Never reach a JACK server someone else runs, nor start one. */
		setenv("JACK_DEFAULT_SERVER", "musicgen-tui-test-none", 1);
		setenv("JACK_NO_START_SERVER", "1", 1);
	}
	tap_ok(player_open(&p, NULL, -1, err, sizeof err) == 0, "player opens with or without a device");
	struct player_state st;
	player_snapshot(p, &st);
	tap_diag("device: %s", st.device);
	int64_t n;
	float *pcm = tone(32000, 2.0, &n);
	tap_ok(player_load(p, pcm, 1, n, 32000, 7, err, sizeof err) == 0 || !want_audio, "load a 2 s take");
	player_snapshot(p, &st);
	tap_ok(st.loaded && st.tag == 7 && fabs(st.len_s - 2.0) < 1e-9 && st.pos_s == 0, "loaded: length 2 s, position 0");

	if (!want_audio && st.has_device) {
		tap_skip("this machine has an audio device (%s): the no-device checks need one without", st.device);
		player_close(p);
		return tap_done();
	}
	if (!want_audio) {
		tap_ok(!st.has_device && st.device[0], "no device, and the state says why: %s", st.device);
		tap_ok(player_play(p, err, sizeof err) != 0 && strstr(err, "cannot play"), "play refuses: %s", err);
		player_seek(p, 1.0);
		player_snapshot(p, &st);
		tap_ok(fabs(st.pos_s - 1.0) < 1e-6 && !st.playing, "seek works without a device (%.3f s)", st.pos_s);
		int ch;
		int64_t nn;
		tap_ok(player_pcm(p, &ch, &nn) != NULL && nn == n && ch == 1, "the audio stays available for drawing");
		player_close(p);
		return tap_done();
	}

	tap_ok(st.has_device, "a device is there: %s", st.device);
	if (!st.has_device) {
		player_close(p);
		return tap_done();
	}
	double t0 = now_s();
	tap_ok(player_play(p, err, sizeof err) == 0, "play%s%s", err[0] ? ": " : "", err);
	sleep_s(0.8);
	player_snapshot(p, &st);
	double wall = now_s() - t0;
	tap_ok(st.playing && st.pos_s > wall - 0.35 && st.pos_s < wall + 0.05,
	       "position follows the device clock (%.3f s after %.3f s)", st.pos_s, wall);
	tap_ok(st.level[0] > 0.2f && st.level[0] <= 0.51f, "level meter sees the tone (%.3f)", st.level[0]);
	player_pause(p);
	player_snapshot(p, &st);
	double paused_at = st.pos_s;
	sleep_s(0.3);
	player_snapshot(p, &st);
	tap_ok(!st.playing && fabs(st.pos_s - paused_at) < 0.02, "pause holds the position (%.3f -> %.3f)", paused_at,
	       st.pos_s);
	player_seek(p, -5.0);
	player_snapshot(p, &st);
	tap_ok(st.pos_s == 0.0, "seek back past the start clamps to 0 (%.3f)", st.pos_s);
	player_seek(p, 1.5);
	t0 = now_s();
	tap_ok(player_play(p, err, sizeof err) == 0, "play from 1.5 s");
	/* 0.5 s remain; wait for the end. */
	int ended = 0;
	while (now_s() - t0 < 3.0) {
		player_snapshot(p, &st);
		if (!st.playing) {
			ended = 1;
			break;
		}
		sleep_s(0.02);
	}
	wall = now_s() - t0;
	tap_ok(ended && wall > 0.35 && wall < 1.2, "stops at the end after the remaining 0.5 s (%.3f s)", wall);
	tap_ok(fabs(st.pos_s - 2.0) < 0.05, "position at the end is the length (%.3f)", st.pos_s);
	/* A take at another rate: the device keeps its rate, the player resamples. */
	pcm = tone(24000, 1.0, &n);
	tap_ok(player_load(p, pcm, 1, n, 24000, 8, err, sizeof err) == 0 && player_play(p, err, sizeof err) == 0,
	       "a 24 kHz take plays%s%s", err[0] ? ": " : "", err);
	t0 = now_s();
	sleep_s(0.5);
	player_snapshot(p, &st);
	wall = now_s() - t0;
	tap_ok(st.pos_s > wall - 0.35 && st.pos_s < wall + 0.1, "24 kHz position follows the clock (%.3f after %.3f)",
	       st.pos_s, wall);
	player_snapshot(p, &st);
	tap_diag("underruns: %u", st.underruns);
	player_close(p);
	return tap_done();
}
