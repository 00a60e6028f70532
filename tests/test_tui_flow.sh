#!/bin/sh
# test_tui_flow.sh - drives the interactive screen in tmux on the tiny test
# model, with HOME and the XDG directories in a temporary folder: type a
# prompt, F5, the take shows in the list and in `history --json` from a second
# process, `export` writes a WAV libsndfile reads at the right rate and
# length, resize (also during a generation), help names F5, quit asks while
# busy, Esc cancels without saving, F10 exits 0, relaunch restores the prompt.
top=${MG_TOP_BUILDDIR:-.}
bin=${MG_BIN:-$top/musicgen-tui}
ref=${MUSICGEN_REF_DIR:-}
model="$ref/models/tiny-a"
if ! command -v tmux >/dev/null 2>&1; then
	echo "1..0 # SKIP tmux not installed"
	exit 0
fi
if [ -z "$ref" ] || [ ! -f "$model/config.json" ]; then
	echo "1..0 # SKIP reference model tiny-a not found (set MUSICGEN_REF_DIR)"
	exit 0
fi

. "${MG_TOP_SRCDIR:-$(dirname "$0")/..}/tests/tui_lib.sh"
tui_setup
export XDG_CACHE_HOME="$tmp/cache" HF_HUB_CACHE="$tmp/hub" XDG_MUSIC_DIR="$tmp/music"
# No JACK server and no ALSA card: playback is off, everything else must work.
export JACK_NO_START_SERVER=1 JACK_DEFAULT_SERVER="musicgen-tui-test-none"
tui_start

start() {
	tm new-session -d -s mg -x "${2:-120}" -y "${3:-35}" \
		"$bin --model '$model' $1; echo \$? > '$tmp/status'; sleep 60"
}

rm -f "$tmp/status"
start "--duration 2 --seed 7"
check "the screen starts with compose and history panes" "wait_for 'History (0)' 20"
if [ -e /dev/snd ] && ls /dev/snd/pcm* >/dev/null 2>&1; then
	n=$((n + 1)); echo "ok $n # SKIP this machine has a sound card: the no-device status needs one without"
else
	check "no audio device: the screen says so" "screen | grep -q 'audio: none'"
fi
tm send-keys -t mg "calm piano with rain"
check "typed prompt shows in the editor" "wait_for '> calm piano with rain' 5"
tm send-keys -t mg F5
check "F5: the take appears in the history list" "wait_for 'History (1)' 60"
check "the list shows the prompt" "screen | grep -q '#1 *calm piano with rain'"
check "the status line reports the saved take with its seed" "screen | grep -q 'seed 7'"

json=$("$bin" history --json)
check "history --json from a second process lists the take" \
	"echo '$json' | grep -q '\"prompt\": \"calm piano with rain\"' && echo '$json' | grep -q '\"id\": 1'"
check "history --json has the knobs and the seed" \
	"echo '$json' | grep -q '\"seed\": 7' && echo '$json' | grep -q '\"top_k\": 250' && echo '$json' | grep -q '\"guidance\": 3'"
"$bin" export 1 "$tmp/take1.wav" >/dev/null 2>"$tmp/export.err"
info=$("$top/tests/sndinfo" "$tmp/take1.wav" 2>&1)
rate=$(sed -n 's/.*"sampling_rate": \([0-9]*\).*/\1/p' "$model/config.json" | head -n 1)
[ -n "$rate" ] || rate=32000
check "export writes a 16-bit WAV that libsndfile reads ($info)" "echo '$info' | grep -q ' wav pcm16$'"
frames=${info%% *}
check "the WAV has the take's rate and length (2 s at $rate Hz)" \
	"[ \"\$(echo '$info' | cut -d' ' -f2)\" = $rate ] && [ $frames -gt $((rate * 19 / 10)) ] && [ $frames -le $((rate * 21 / 10)) ]"

# Knobs: typing sets a value; an invalid one is refused with the reason inline.
tm send-keys -t mg Tab Down Down Down Down "1.5" Enter
check "an invalid top-p is refused with the reason next to the knob" "wait_for 'top-p must be in (0, 1]' 5"
tm send-keys -t mg Escape Up Up Up Up
check "Esc leaves the knob as it was" "wait_for 'Top-p' 2 && screen | grep -q 'Top-p *1.00 (off)'"
# A long job (many takes of the longest duration) to act on while it runs.
tm send-keys -t mg "30" Enter Down Down Down Down Down Down "16" Enter
tm send-keys -t mg F5
check "a generation shows step/total, steps/s, ETA and elapsed" "wait_for 'steps/s' 10 && screen | grep -q 'ETA' && screen | grep -q 'elapsed'"
tm send-keys -t mg F5
check "F5 while busy queues the job, visibly" "wait_for 'Queue (1)' 5 && screen | grep -q '+1 queued'"
tm send-keys -t mg x
check "x drops the queued job" "wait_for 'dropped queued job' 5 && ! (screen | grep -q 'Queue (1)')"
tm resize-window -t mg -x 70 -y 20
sleep 0.3
check "resize during generation: narrow layout" "wait_for 'Tab: history' 5"
tm resize-window -t mg -x 40 -y 10
check "below the minimum: a 'terminal too small' notice" "wait_for 'Terminal too small' 5"
tm resize-window -t mg -x 120 -y 35
check "back to the wide layout" "wait_for 'History (1)' 5"
tm send-keys -t mg F10
check "quit asks while a generation runs" "wait_for 'Quit anyway' 5"
tm send-keys -t mg n
sleep 0.2
tm send-keys -t mg Escape
check "Esc cancels and nothing is saved" "wait_for 'cancelled; nothing was saved' 20 && screen | grep -q 'History (1)'"
check "history --json still has one take" "[ \$('$bin' history --json | grep -c '\"id\"') -eq 1 ]"

tm send-keys -t mg F1
check "F1 shows help naming F5" "wait_for 'Help: keys' 5 && screen | grep -q 'F5 .*generate'"
tm send-keys -t mg Escape
check "the help closes" "wait_gone 'Help: keys' 5"

tm send-keys -t mg F10
check "F10 quits with status 0" "wait_status"
check "nothing from the audio libraries reached the screen" "! (screen | grep -q -i 'ALSA lib\|jack server\|PortAudio')"
tm kill-session -t mg >/dev/null 2>&1

rm -f "$tmp/status"
start ""
check "relaunch shows the earlier prompt on the main screen" "wait_for '> calm piano with rain' 20"
check "relaunch keeps the knobs (30 s)" "screen | grep -q 'Duration *30.0 s'"
check "relaunch lists the take" "screen | grep -q '#1 *calm piano with rain'"
tm send-keys -t mg C-q
check "Ctrl-Q quits with status 0" "wait_status"

tui_done
