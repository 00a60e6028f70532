# tui_lib.sh - shared by the tests that drive the interactive screen in tmux
# (tests/test_tui_*.sh). Sourced, not run: TAP helpers, a temporary HOME with
# the XDG directories inside it, a private tmux server, and ways to wait for
# the screen. The program runs in the tmux session "mg"; each script starts it
# its own way.

# TAP: check DESCRIPTION CONDITION evaluates CONDITION as shell code.
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
# tui_done: the plan line; the exit status says whether every check passed.
tui_done() {
	echo "1..$n"
	[ $fails -eq 0 ]
}

# Seconds wait_for waits when not told.
tui_wait=20
# tui_stop: called on exit before the temporary folder goes; a script that
# starts servers of its own redefines it.
tui_stop() { :; }

tm() { tmux -S "$sock" "$@"; }
cleanup() { tm kill-server >/dev/null 2>&1; tui_stop; rm -rf "$tmp"; }

# tui_setup: a temporary folder $tmp holding HOME, the XDG directories and the
# tmux socket, removed on exit with the tmux server.
tui_setup() {
	tmp=$(mktemp -d)
	sock="$tmp/tmux.sock"
	export HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" XDG_DATA_HOME="$tmp/data" XDG_STATE_HOME="$tmp/state"
	mkdir -p "$HOME"
	trap cleanup EXIT INT TERM
}
# tui_start: starts the tmux server with a session that outlives the others,
# so the server never exits (and races a new session) when the program's
# session is killed. The server keeps the environment it starts with: call
# this after the script's own exports.
tui_start() {
	tm new-session -d -s keep "sleep 3600"
}

screen() { tm capture-pane -t mg -p; }
# wait_for TEXT [SECONDS]: until the screen shows TEXT; shows the screen if not.
wait_for() {
	i=0
	lim=$(( ${2:-$tui_wait} * 10 ))
	while [ $i -lt $lim ]; do
		screen | grep -q -F -- "$1" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "# screen while waiting for '$1':"
	screen | sed 's/^/#   /'
	return 1
}
# wait_gone TEXT [SECONDS]: until the screen no longer shows TEXT.
wait_gone() {
	i=0
	lim=$(( ${2:-5} * 10 ))
	while [ $i -lt $lim ]; do
		screen | grep -q -F -- "$1" || return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
# wait_status: true once the program has written its exit status 0 to
# $tmp/status (at most 5 s).
wait_status() {
	i=0
	while [ ! -s "$tmp/status" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(cat "$tmp/status" 2>/dev/null)" = 0 ]
}
