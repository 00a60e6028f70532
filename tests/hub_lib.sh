# hub_lib.sh - the loopback hub (tests/hubserver.py) for the download tests.
# Sourced, not run. The script sets $hub_src (the source tree) and, before
# starting a server, $tmp (its temporary folder, where the port file goes).

server_pid=
# stop_server: kills the running server, if any, and waits for it.
stop_server() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
		server_pid=
	fi
}

# wait_nonempty FILE: returns once FILE has content, or after 10 s.
wait_nonempty() {
	i=0
	while [ ! -s "$1" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

# hub_start ROOT REPO LOG LIFETIME [hubserver options]: a fresh server serving
# the model folder ROOT as REPO for at most LIFETIME seconds, its request log in
# LOG; sets $port and $endpoint, or bails out when it does not come up in 10 s.
hub_start() {
	stop_server
	hub_root=$1
	hub_repo=$2
	hub_log=$3
	hub_lifetime=$4
	shift 4
	rm -f "$tmp/port"
	python3 "$hub_src/tests/hubserver.py" --root "$hub_root" --repo "$hub_repo" --port-file "$tmp/port" \
		--log "$hub_log" --lifetime "$hub_lifetime" "$@" &
	server_pid=$!
	wait_nonempty "$tmp/port"
	port=$(cat "$tmp/port" 2>/dev/null)
	if [ -z "$port" ]; then
		echo "Bail out! the loopback hub did not start"
		exit 1
	fi
	endpoint=http://127.0.0.1:$port
}
