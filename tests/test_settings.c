/* test_settings.c - settings and compose-state files, XDG paths, knob checks. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/settings.h"
#include "app/xdg.h"
#include "tests/tap.h"

static void write_text(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	fputs(s, f);
	fclose(f);
}

int main(void)
{
	char tmp[] = "/tmp/mg-settings-XXXXXX", path[512], dir[512], err[512];
	if (!mkdtemp(tmp))
		return 1;

	/* XDG */
	setenv("HOME", tmp, 1);
	unsetenv("XDG_CONFIG_HOME");
	tap_ok(xdg_app_dir(XDG_CONFIG, dir, sizeof dir, err, sizeof err) == 0 &&
	               !strcmp(dir + strlen(tmp), "/.config/musicgen-tui"),
	       "config dir falls back to ~/.config (%s)", dir);
	snprintf(path, sizeof path, "%s/xdgdata", tmp);
	setenv("XDG_DATA_HOME", path, 1);
	tap_ok(xdg_app_dir(XDG_DATA, dir, sizeof dir, err, sizeof err) == 0 && !strcmp(dir + strlen(tmp), "/xdgdata/musicgen-tui"),
	       "XDG_DATA_HOME is honoured");
	setenv("XDG_STATE_HOME", "relative/path", 1);
	tap_ok(xdg_app_dir(XDG_STATE, dir, sizeof dir, err, sizeof err) == 0 &&
	               !strcmp(dir + strlen(tmp), "/.local/state/musicgen-tui"),
	       "a relative XDG_STATE_HOME is ignored");
	struct stat st;
	tap_ok(xdg_app_dir_make(XDG_DATA, dir, sizeof dir, err, sizeof err) == 0 && stat(dir, &st) == 0 &&
	               (st.st_mode & 0777) == 0700,
	       "application directory created with mode 0700");
	setenv("XDG_MUSIC_DIR", "/srv/music", 1);
	tap_ok(xdg_music_dir(dir, sizeof dir) == 0 && !strcmp(dir, "/srv/music"), "XDG_MUSIC_DIR");
	unsetenv("XDG_MUSIC_DIR");
	tap_ok(xdg_music_dir(dir, sizeof dir) == 0 && !strcmp(dir + strlen(tmp), "/Music"), "music dir defaults to ~/Music");

	/* knobs */
	struct knobs k;
	knobs_default(&k);
	tap_ok(knobs_check(&k, err, sizeof err) == 0, "default knobs are valid");
	tap_ok(knobs_check_value("top_p", 1.5, err, sizeof err) != 0 && strstr(err, "top-p"), "top-p 1.5 refused: %s", err);
	tap_ok(knobs_check_value("temperature", 0, err, sizeof err) != 0, "temperature 0 refused: %s", err);
	tap_ok(knobs_check_value("duration", -1, err, sizeof err) != 0, "negative duration refused: %s", err);
	tap_ok(knobs_check_value("top_k", 2.5, err, sizeof err) != 0, "fractional top-k refused: %s", err);
	tap_ok(knobs_check_value("count", 0, err, sizeof err) != 0, "zero takes refused: %s", err);
	tap_ok(knobs_check_value("guidance", 0.0 / 0.0, err, sizeof err) != 0, "NaN guidance refused");

	/* settings round trip */
	struct settings s, r;
	settings_default(&s);
	snprintf(path, sizeof path, "%s/config", tmp);
	tap_ok(settings_load(&s, path, err, sizeof err) == 0, "a missing settings file is not an error");
	snprintf(s.model, sizeof s.model, "facebook/musicgen-small");
	snprintf(s.backend, sizeof s.backend, "cpu");
	s.threads = 3;
	s.autoplay = 0;
	snprintf(s.audio_device, sizeof s.audio_device, "system:playback = out");
	snprintf(s.export_format, sizeof s.export_format, "flac");
	s.device = 2;
	snprintf(s.model_dirs, sizeof s.model_dirs, "/models/a:/models/b");
	tap_ok(settings_save(&s, path, err, sizeof err) == 0, "settings saved");
	settings_default(&r);
	tap_ok(settings_load(&r, path, err, sizeof err) == 0 && !strcmp(r.model, s.model) && !strcmp(r.backend, "cpu") &&
	               r.threads == 3 && r.autoplay == 0 && !strcmp(r.export_format, "flac") &&
	               !strcmp(r.audio_device, "system:playback = out"),
	       "settings read back equal (value containing '=')");
	tap_ok(r.device == 2 && !strcmp(r.model_dirs, "/models/a:/models/b"), "device and model_dirs read back");
	s.device = -1;
	tap_ok(settings_save(&s, path, err, sizeof err) == 0 && settings_load(&r, path, err, sizeof err) == 0 &&
	               r.device == -1,
	       "device auto read back as -1");
	write_text(path, "device = gpu\n");
	tap_ok(settings_load(&r, path, err, sizeof err) != 0 && strstr(err, "gpu"), "bad device refused: %s", err);

	write_text(path, "# comment\n\nbackend = vulkan\n");
	tap_ok(settings_load(&r, path, err, sizeof err) != 0 && strstr(err, ":3:") && strstr(err, "vulkan"),
	       "bad backend refused with the line: %s", err);
	write_text(path, "colour = red\n");
	tap_ok(settings_load(&r, path, err, sizeof err) != 0 && strstr(err, "colour"), "unknown key refused: %s", err);
	write_text(path, "threads = lots\n");
	tap_ok(settings_load(&r, path, err, sizeof err) != 0 && strstr(err, "lots"), "bad number refused: %s", err);
	write_text(path, "no equals sign\n");
	tap_ok(settings_load(&r, path, err, sizeof err) != 0, "line without '=' refused: %s", err);

	/* compose state round trip */
	struct compose_state cs, cr;
	memset(&cs, 0, sizeof cs);
	knobs_default(&cs.knobs);
	snprintf(cs.prompt, sizeof cs.prompt, "lo-fi \\ beats\nwith vinyl crackle, 90 bpm ♫");
	cs.knobs.duration = 7.5;
	cs.knobs.top_k = 50;
	cs.knobs.top_p = 0.9;
	cs.knobs.seed = 18446744073709551615ULL;
	cs.knobs.seed_random = 0;
	cs.knobs.count = 2;
	snprintf(path, sizeof path, "%s/state", tmp);
	tap_ok(state_save(&cs, path, err, sizeof err) == 0, "state saved");
	memset(&cr, 0, sizeof cr);
	knobs_default(&cr.knobs);
	tap_ok(state_load(&cr, path, err, sizeof err) == 0 && !strcmp(cr.prompt, cs.prompt) && cr.knobs.duration == 7.5 &&
	               cr.knobs.top_k == 50 && cr.knobs.top_p == 0.9 && cr.knobs.seed == cs.knobs.seed &&
	               cr.knobs.seed_random == 0 && cr.knobs.count == 2,
	       "state read back equal (newline, backslash, UTF-8, max seed)");
	write_text(path, "top_p = 2\n");
	tap_ok(state_load(&cr, path, err, sizeof err) != 0, "invalid knob in state refused: %s", err);

	/* atomic writes leave no temporary files */
	tap_ok(write_file_atomic(path, "x", 1, err, sizeof err) == 0, "atomic write");
	char cmd[600];
	snprintf(cmd, sizeof cmd, "ls -a %s | grep -q tmp-", tmp);
	tap_ok(system(cmd) != 0, "no temporary files left behind");
	snprintf(path, sizeof path, "%s/no/such/dir/file", tmp);
	tap_ok(write_file_atomic(path, "x", 1, err, sizeof err) != 0 && strstr(err, "no/such"), "unwritable path: %s", err);

	snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmp);
	return tap_done();
}
