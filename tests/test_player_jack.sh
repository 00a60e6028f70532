#!/bin/sh
# test_player_jack.sh - plays through a JACK dummy server (a paced device
# without sound hardware); skips when jackd is not installed.
top=${MG_TOP_BUILDDIR:-.}
if ! command -v jackd >/dev/null 2>&1; then
	echo "1..0 # SKIP jackd not installed"
	exit 0
fi
JACK_DEFAULT_SERVER=mgtest$$
export JACK_DEFAULT_SERVER
log=$(mktemp)
jackd --no-realtime -d dummy -r 32000 -p 512 >"$log" 2>&1 &
jpid=$!
trap 'kill $jpid 2>/dev/null; wait $jpid 2>/dev/null; rm -f "$log"' EXIT INT TERM
# Wait for the server to come up.
i=0
while [ $i -lt 50 ]; do
	if grep -q -i "dummy\|jackdmp\|JACK server starting" "$log" 2>/dev/null && command -v jack_lsp >/dev/null 2>&1 && jack_lsp >/dev/null 2>&1; then
		break
	fi
	if ! command -v jack_lsp >/dev/null 2>&1; then
		sleep 1
		break
	fi
	sleep 0.1
	i=$((i + 1))
done
if ! kill -0 $jpid 2>/dev/null; then
	echo "1..0 # SKIP jackd did not start: $(head -c 200 "$log" | tr '\n' ' ')"
	exit 0
fi
MG_EXPECT_AUDIO=1 "$top/tests/test_player" 2>>"$log"
