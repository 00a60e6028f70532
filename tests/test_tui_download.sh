#!/bin/sh
# test_tui_download.sh - the no-model screen's download offer and the model
# picker, driven in tmux against a loopback hub (tests/hubserver.py) serving
# the reference model tiny-a as facebook/musicgen-small, with HOME, the XDG
# directories and the hub cache in a temporary folder: the offer names the
# size before asking, Esc cancels a running download cleanly, a retry resumes
# and completes it, the model loads and the main screen makes a take; F3 lists
# the cached model and the settings' model folders, and 'd' there downloads
# with a model already loaded; offline, 404, 401 and a dead endpoint are shown,
# never a crash.
# The server and the tmux server are always killed on exit.
top=${MG_TOP_BUILDDIR:-.}
src=${MG_TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
bin=${MG_BIN:-$top/musicgen-tui}
ref=${MUSICGEN_REF_DIR:-}
model="$ref/models/tiny-a"
if ! command -v tmux >/dev/null 2>&1; then
	echo "1..0 # SKIP tmux not installed"
	exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "1..0 # SKIP python3 (for the loopback hub) not found"
	exit 0
fi
if [ -z "$ref" ] || [ ! -f "$model/config.json" ]; then
	echo "1..0 # SKIP reference model tiny-a not found (set MUSICGEN_REF_DIR)"
	exit 0
fi

. "$src/tests/tui_lib.sh"
hub_src=$src
. "$src/tests/hub_lib.sh"
tui_setup
export XDG_CACHE_HOME="$tmp/cache" HF_HUB_CACHE="$tmp/hub" HF_HOME="$tmp/hfhome" XDG_MUSIC_DIR="$tmp/music"
export JACK_NO_START_SERVER=1 JACK_DEFAULT_SERVER="musicgen-tui-test-none"
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_OFFLINE
tui_stop() { stop_server; }
trap 'exit 1' INT TERM HUP

# start_server REPO [hubserver options]: serves tiny-a as REPO; sets $endpoint.
start_server() {
	repo=$1
	shift
	hub_start "$model" "$repo" "$tmp/hub.log" 120 "$@"
}

tui_start

# start ENDPOINT [ENV...]: the program with no model and an empty cache.
start() {
	ep=$1
	shift
	rm -f "$tmp/status"
	tm kill-session -t mg >/dev/null 2>&1
	tm new-session -d -s mg -x 120 -y 35 \
		"env HF_ENDPOINT='$ep' $* '$bin' --duration 1 --seed 3 $extra; echo \$? > '$tmp/status'; sleep 60"
}

extra=
# The size the offer must name: the repository's files, as the screen writes it.
size=$(python3 -c 'import os,sys; d=sys.argv[1]; print("%.1f MB" % (sum(os.path.getsize(os.path.join(d,f)) for f in os.listdir(d))/1e6))' "$model")
rdir="$HF_HUB_CACHE/models--facebook--musicgen-small"

# Slow enough to cancel half-way, fast enough for a short test.
start_server facebook/musicgen-small --throttle model.safetensors:600000
start "$endpoint"
check "no model: the screen offers to download musicgen-small with its size ($size)" \
	"wait_for 'Download facebook/musicgen-small?' 15 && screen | grep -q -F '$size  [y/n]'"
check "nothing was fetched before the answer" "[ ! -d '$rdir/blobs' ] || [ -z \"\$(ls '$rdir/blobs')\" ]"
tm send-keys -t mg y
check "y: a progress bar with bytes, rate, ETA and the current file" \
	"wait_for 'fetching model.safetensors' 10 && wait_for 'kB/s' 5 && screen | grep -q -E '[0-9.]+ (B|kB|MB) / [0-9.]+ MB +[0-9]+ kB/s +ETA [0-9]' && screen | grep -q '[0-9]%'"
tm send-keys -t mg Escape
check "Esc cancels the download and says so" "wait_for 'Download cancelled' 5"
check "cancelled: no snapshot, no refs/main, the partial data kept" \
	"[ ! -e '$rdir/refs/main' ] && ls '$rdir'/blobs/*.incomplete >/dev/null 2>&1"
tm send-keys -t mg r
check "r: the offer again, with what is still to fetch" "wait_for 'still to fetch' 10"
tm send-keys -t mg y
check "the download completes and the model loads: main screen" \
	"wait_for 'model facebook/musicgen-small loaded' 30 && ! (screen | grep -q 'No MusicGen model found')"
check "the snapshot and refs/main are in the cache" \
	"[ -s '$rdir/refs/main' ] && [ -f \"$rdir/snapshots/\$(cat '$rdir/refs/main')/model.safetensors\" ]"
check "the resumed download asked for the rest with a Range request" "grep -q 'model.safetensors range=bytes=[1-9]' '$tmp/hub.log'"
tm send-keys -t mg "drums in the dark"
tm send-keys -t mg F5
check "a prompt + F5 makes a take with the downloaded model" "wait_for 'History (1)' 30"
check "the take records the hub id" "'$bin' history --json | grep -q '\"model\": \"facebook/musicgen-small\"'"

tm send-keys -t mg F3
check "F3: the picker lists the cached model, its revision and 'complete'" \
	"wait_for 'Models (1)' 5 && screen | grep -q 'facebook/musicgen-small *main [0-9a-f]* .*MB  complete'"
tm send-keys -t mg Enter
check "Enter loads the chosen model on the engine thread" "wait_for 'model facebook/musicgen-small loaded' 15 && wait_gone 'Models (1)' 5"
check "the choice is remembered in the settings" "grep -q '^model = facebook/musicgen-small' '$XDG_CONFIG_HOME/musicgen-tui/config'"
tm send-keys -t mg F1
check "F1 help names F3 (model picker)" "wait_for 'Help: keys' 5 && screen | grep -q 'F3 .*model picker'"
tm send-keys -t mg Escape
tm send-keys -t mg F6
check "settings show the compute device and the model folders" \
	"wait_for 'Compute device' 5 && screen | grep -q 'Model folders'"
tm send-keys -t mg Escape
tm send-keys -t mg F10
check "F10 quits with status 0" "wait_status"
stop_server

# Failures: the reason on the screen, retry possible, quitting works.
rm -rf "$HF_HUB_CACHE" "$XDG_CONFIG_HOME"
# The picker also lists the settings' model folders, from the no-model screen too.
mkdir -p "$tmp/mods" "$XDG_CONFIG_HOME/musicgen-tui"
ln -s "$model" "$tmp/mods/tiny-a"
printf 'model_dirs = %s:%s\n' "$tmp/no-such-dir" "$tmp/mods" >"$XDG_CONFIG_HOME/musicgen-tui/config"
check "'models' lists the settings' model folders" "'$bin' models | grep -q '^tiny-a .*complete'"
start "$endpoint" HF_HUB_OFFLINE=1
check "offline: the screen says the hub is not contacted" "wait_for 'Download failed (offline)' 10"
tm send-keys -t mg r
check "offline: r tries again and fails the same way, no crash" "sleep 0.5 && wait_for 'Download failed (offline)' 5"
tm send-keys -t mg F3
check "offline: F3 lists the model in the model folders" "wait_for 'Models (1)' 5 && screen | grep -q 'tiny-a *(folder) .*complete'"
tm send-keys -t mg Escape
check "Esc goes back to the no-model screen" "wait_for 'No MusicGen model found' 5"
tm send-keys -t mg F3
sleep 0.3
tm send-keys -t mg Enter
check "Enter loads it: the main screen with the model" "wait_for 'model tiny-a loaded' 15 && ! (screen | grep -q 'No MusicGen model found')"
tm send-keys -t mg F10
check "offline: F10 quits with status 0" "wait_status"
rm -rf "$XDG_CONFIG_HOME"

start_server test-org/another-model
start "$endpoint"
check "a repository the hub does not have: 'not found' on the screen" "wait_for 'Download failed (not found)' 15"
tm send-keys -t mg Enter
check "Enter continues to the main screen without a model" "wait_gone 'No MusicGen model found' 5 && screen | grep -q 'no model'"
tm send-keys -t mg F10
check "F10 quits with status 0" "wait_status"
stop_server

start_server facebook/musicgen-small --token s3cret
start "$endpoint"
check "401: access refused on the screen, with a hint about the token" \
	"wait_for 'Download failed (access refused)' 15 && screen | grep -q 'HF_TOKEN'"
tm send-keys -t mg F10
check "F10 quits with status 0" "wait_status"
stop_server

# From the main screen: F3, d offers the default model and downloads it.
rm -rf "$HF_HUB_CACHE" "$XDG_CONFIG_HOME"
start_server facebook/musicgen-small --throttle model.safetensors:600000
extra="--model '$model'"
start "$endpoint"
check "with a model loaded: the main screen" "wait_for 'model tiny-a loaded' 15"
tm send-keys -t mg F3
check "F3 with an empty cache: the picker says so" "wait_for 'Models (0)' 5"
tm send-keys -t mg d
check "d in the picker: the download dialog names the size and asks" \
	"wait_for 'Download facebook/musicgen-small?' 10 && screen | grep -q -F '$size  [y/n]'"
tm send-keys -t mg y
check "y: the progress in the dialog" "wait_for 'fetching model.safetensors' 10"
tm send-keys -t mg Enter
check "Enter: it goes on in the background, the status line shows it" \
	"wait_gone 'Download facebook' 5 && screen | grep -q -E 'download [0-9]+%'"
check "then the downloaded model replaces the loaded one" \
	"wait_for 'model facebook/musicgen-small loaded' 20 && wait_gone 'Download facebook' 5"
tm send-keys -t mg F10
check "F10 quits with status 0" "wait_status"
stop_server
extra=

rm -rf "$HF_HUB_CACHE" "$XDG_CONFIG_HOME"
start "http://127.0.0.1:9"
check "a dead endpoint: a network error on the screen" "wait_for 'Download failed (network' 25"
tm send-keys -t mg F10
check "F10 quits with status 0" "wait_status"

tui_done
