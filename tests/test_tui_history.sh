#!/bin/sh
# test_tui_history.sh - the history pane in tmux: newest first, favourite,
# filter, name, export dialog with its default path, delete (asks), recall
# into compose, q outside text fields, and NO_COLOR. The takes are made by
# tests/history_fill, so this needs no model.
top=${MG_TOP_BUILDDIR:-.}
bin=${MG_BIN:-$top/musicgen-tui}
if ! command -v tmux >/dev/null 2>&1; then
	echo "1..0 # SKIP tmux not installed"
	exit 0
fi

. "${MG_TOP_SRCDIR:-$(dirname "$0")/..}/tests/tui_lib.sh"
tui_wait=10
tui_setup
export HF_HUB_CACHE="$tmp/hub" XDG_MUSIC_DIR="$tmp/music"
export JACK_NO_START_SERVER=1 JACK_DEFAULT_SERVER="musicgen-tui-test-none"
unset NO_COLOR
tui_start
json() { "$bin" history --json; }

"$top/tests/history_fill" "$XDG_DATA_HOME/musicgen-tui" "calm piano" "rock anthem with guitars" "lo-fi beats" ||
	{ echo "1..0 # SKIP history_fill failed"; exit 0; }

tm new-session -d -s mg -x 110 -y 32 "$bin; echo \$? > '$tmp/status'; sleep 60"
check "no model: the screen says how to get one" "wait_for 'musicgen-tui download facebook/musicgen-small' 10"
tm send-keys -t mg Enter
check "continuing without a model shows the history" "wait_for 'History (3)' 5"
check "newest first" "screen | grep -n '#[0-9] ' | head -n 1 | grep -q '#3 *lo-fi beats'"
tm send-keys -t mg BTab BTab
check "Shift-Tab reaches the history pane" "wait_for 'Take #3' 5"
tm send-keys -t mg f
sleep 0.3
check "f marks a favourite (seen by history --json)" "json | grep -q '\"favourite\": true'"
check "the list shows the star" "screen | grep -q '★.*#3'"
tm send-keys -t mg /
check "/ opens the filter" "wait_for 'Filter takes' 5"
tm send-keys -t mg rock Enter
check "the filter narrows the list" "wait_for 'History (1, filter \"rock\")' 5 && screen | grep -q '#2 *rock anthem'"
tm send-keys -t mg / C-u Enter
check "an empty filter shows all, the filtered take still selected" "wait_for 'History (3)' 5 && screen | grep -q 'Take #2'"
tm send-keys -t mg g
check "g goes to the newest take" "wait_for 'Take #3' 5"
tm send-keys -t mg n
check "n asks for a name" "wait_for 'Name of the take' 5"
tm send-keys -t mg Sunday Enter
check "the name shows in the list and in history --json" "wait_for 'Sunday — lo-fi beats' 5 && json | grep -q '\"name\": \"Sunday\"'"
tm send-keys -t mg e
check "e offers a default export path in the music folder" "wait_for '$tmp/music/sunday-take-3.wav' 5"
tm send-keys -t mg Enter
check "export writes the file" "wait_for 'exported take #3' 5 && [ -s '$tmp/music/sunday-take-3.wav' ]"
info=$("$top/tests/sndinfo" "$tmp/music/sunday-take-3.wav" 2>&1)
check "the exported WAV is 1 s of 32 kHz 16-bit ($info)" "[ '$info' = '32000 32000 1 wav pcm16' ]"
tm send-keys -t mg d
check "d asks before deleting" "wait_for 'Delete take #3' 5"
tm send-keys -t mg n
sleep 0.3
check "n keeps the take" "screen | grep -q 'History (3)'"
tm send-keys -t mg d
wait_for 'Delete take #3' 5 >/dev/null
tm send-keys -t mg y
check "y deletes it" "wait_for 'History (2)' 5 && ! (json | grep -q '\"id\": 3') && [ ! -e '$XDG_DATA_HOME/musicgen-tui/takes/3.flac' ]"
tm send-keys -t mg j
sleep 0.2
tm send-keys -t mg r
check "r loads prompt and seed into compose" "wait_for '> calm piano' 5 && screen | grep -q 'Seed *101'"
check "r moves the focus to the prompt: q types there" "tm send-keys -t mg ' q' && wait_for '> calm piano q' 5"
"$top/tests/history_fill" "$XDG_DATA_HOME/musicgen-tui" "from another instance" >/dev/null
check "a take added by another process shows up" "wait_for 'History (3)' 5 && screen | grep -q '#4 *from another instance'"
# Mouse (X10 encoding): a click on the second row of the list (#2) selects it
# (take #1 is selected before).
check "take #1 is selected" "screen | grep -q 'Take #1'"
tm send-keys -t mg -l "$(printf '\033[M g$\033[M#g$')"
check "a mouse click selects a take" "wait_for 'Take #2' 5"
tm send-keys -t mg F6
check "F6 opens the settings" "wait_for 'Export format' 5"
tm send-keys -t mg Down Down Down Down Down Enter Down Down Right
check "settings change and are saved to the config file" \
	"wait_for 'wav24' 5 && grep -q '^autoplay = no' '$XDG_CONFIG_HOME/musicgen-tui/config' && grep -q '^export_format = wav24' '$XDG_CONFIG_HOME/musicgen-tui/config'"
tm send-keys -t mg Escape
check "Esc closes the settings" "wait_gone 'Export format' 5"
tm send-keys -t mg BSpace BSpace Tab q
check "q outside text fields quits with status 0" "wait_status"
tm kill-session -t mg >/dev/null 2>&1

# Colours: present by default, absent with NO_COLOR.
rm -f "$tmp/status"
tm new-session -d -s mg -x 110 -y 32 "TERM=xterm-256color $bin; sleep 60"
wait_for 'No MusicGen model found' 10 >/dev/null
check "colours by default" "tm capture-pane -t mg -p -e | grep -q '\[3[0-7]m\|\[38;\|\[4[0-7]m\|\[48;\|\[9[0-7]m'"
tm kill-session -t mg >/dev/null 2>&1
tm new-session -d -s mg -x 110 -y 32 "TERM=xterm-256color NO_COLOR=1 $bin; sleep 60"
wait_for 'No MusicGen model found' 10 >/dev/null
check "NO_COLOR: no colour at all" "! (tm capture-pane -t mg -p -e | grep -q '\[3[0-7]m\|\[38;\|\[4[0-7]m\|\[48;\|\[9[0-7]m')"
tm kill-session -t mg >/dev/null 2>&1

# SIGTERM: the program leaves cleanly (status 0, the compose state saved).
# (a state directory of its own: the killed session above may still be saving)
export XDG_STATE_HOME="$tmp/state2"
rm -f "$tmp/status"
tm new-session -d -s mg -x 110 -y 32 "XDG_STATE_HOME='$XDG_STATE_HOME' $bin; echo \$? > '$tmp/status'; sleep 60"
wait_for 'No MusicGen model found' 10 >/dev/null
tm send-keys -t mg Enter "terminated prompt"
wait_for '> terminated prompt' 5 >/dev/null
pane=$(tm display-message -p -t mg '#{pane_pid}')
pid=$(ps -o pid= --ppid "$pane" | head -n 1 | tr -d ' ')
[ -n "$pid" ] && kill -TERM "$pid"
check "SIGTERM: clean exit with status 0" "wait_status"
check "SIGTERM: the prompt is saved" "grep -q '^prompt = terminated prompt' '$XDG_STATE_HOME/musicgen-tui/state'"
tui_done
