#!/bin/sh
# test_tui_play.sh - the interactive screen plays a finished take through a
# JACK dummy server (a paced device without sound hardware): auto-play, the
# position advances with the clock, Space pauses, seeking in the player, the
# level meter moves, and no JACK message reaches the screen. The take is
# unconditional (empty prompt) so only the engine and the player are involved.
top=${MG_TOP_BUILDDIR:-.}
bin=${MG_BIN:-$top/musicgen-tui}
ref=${MUSICGEN_REF_DIR:-}
model="$ref/models/tiny-a"
for tool in tmux jackd; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "1..0 # SKIP $tool not installed"
		exit 0
	fi
done
if [ -z "$ref" ] || [ ! -f "$model/config.json" ]; then
	echo "1..0 # SKIP reference model tiny-a not found (set MUSICGEN_REF_DIR)"
	exit 0
fi
rate=$(sed -n 's/.*"sampling_rate": \([0-9]*\).*/\1/p' "$model/config.json" | head -n 1)
[ -n "$rate" ] || rate=32000

. "${MG_TOP_SRCDIR:-$(dirname "$0")/..}/tests/tui_lib.sh"
jpid=
tui_stop() { [ -z "$jpid" ] || { kill $jpid 2>/dev/null; wait $jpid 2>/dev/null; }; }
tui_setup
export JACK_DEFAULT_SERVER="mgtui$$" JACK_NO_START_SERVER=1
jackd --no-realtime -d dummy -r "$rate" -p 512 >"$tmp/jackd.log" 2>&1 &
jpid=$!
sleep 1
if ! kill -0 $jpid 2>/dev/null; then
	echo "1..0 # SKIP jackd did not start: $(head -c 200 "$tmp/jackd.log" | tr '\n' ' ')"
	exit 0
fi
tui_start

# The player line's position in seconds (m:ss before the slash).
position() {
	screen | sed -n 's/.*#[0-9]*  \([0-9]*\):\([0-9][0-9]\)\.[0-9] \/ .*/\1 \2/p' | head -n 1 | { read m s && echo $((m * 60 + ${s#0})); }
}

tm new-session -d -s mg -x 110 -y 32 "$bin --model '$model' --duration 20; echo \$? > '$tmp/status'; sleep 60"
check "the screen starts" "wait_for 'History (0)' 20"
check "the JACK device is found" "wait_for 'audio: JACK' 5"
tm send-keys -t mg C-u F5
check "F5: the take is saved" "wait_for 'History (1)' 60"
check "auto-play: the player plays take #1" "wait_for '▶ #1' 5"
p1=$(position)
sleep 2.2
p2=$(position)
check "the position advances with the device clock ($p1 s -> $p2 s in 2.2 s)" "[ -n '$p1' ] && [ -n '$p2' ] && [ $((p2 - p1)) -ge 1 ] && [ $((p2 - p1)) -le 3 ]"
check "the level meter moves" "screen | grep -q 'L▮'"
tm send-keys -t mg Tab Tab Tab
tm send-keys -t mg Space
check "Space pauses" "wait_for '‖ #1' 5"
p3=$(position)
sleep 1.2
p4=$(position)
check "paused: the position holds ($p3 s, then $p4 s)" "[ '$p3' = '$p4' ]"
tm send-keys -t mg Right Right
sleep 0.3
p5=$(position)
check "Right in the player seeks 10 s forward ($p4 s -> $p5 s)" "[ -n '$p5' ] && [ $((p5 - p4)) -ge 9 ] && [ $((p5 - p4)) -le 11 ]"
tm send-keys -t mg Left
sleep 0.3
p6=$(position)
check "Left seeks 5 s back ($p5 s -> $p6 s)" "[ -n '$p6' ] && [ $((p5 - p6)) -ge 4 ] && [ $((p5 - p6)) -le 6 ]"
tm send-keys -t mg Space
check "Space resumes" "wait_for '▶ #1' 5"
check "no JACK or PortAudio message reached the screen" "! (screen | grep -q -i 'jack server\|jackd\|cannot connect\|PortAudio\|ALSA lib')"
tm send-keys -t mg F10
check "F10 quits with status 0 while playing" "wait_status"
tui_done
