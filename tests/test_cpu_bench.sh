#!/bin/sh
# test_cpu_bench.sh - `musicgen-tui bench` on the tiny-a reference model:
# usage errors (exit 2), the human table and the JSON line with every key
# (numbers that make sense: positive times, a floor, a ratio), and
# --accuracy: f16 and q8 agree with f32 on at least 99% of the greedy
# tokens of tiny-a (the rule the default format is chosen by).
bin=${MG_BIN:-./musicgen-tui}
ref=${MUSICGEN_REF_DIR:-../shared/ref}
model=$ref/models/tiny-a
if [ ! -f "$model/config.json" ]; then
	echo "1..0 # SKIP reference data not found (set MUSICGEN_REF_DIR)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }

expect2() {
	what=$1
	shift
	"$bin" bench "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" = 2 ] && [ -s "$tmp/err" ]; then ok "$what: exit 2"; else notok "$what: exit $got (want 2)"; fi
}
expect2 "unknown shape" --shape huge
expect2 "unknown weights" --weights q4
expect2 "zero steps" --steps 0
expect2 "--model with --shape" --model "$model" --shape small
expect2 "unknown option" --fast
expect2 "missing value" --threads

for w in f32 q8; do
	if "$bin" bench --model "$model" --weights $w --steps 12 --threads 2 --json >"$tmp/out" 2>"$tmp/err"; then
		ok "bench tiny-a $w runs"
	else
		notok "bench tiny-a $w runs"
		sed 's/^/# /' "$tmp/err"
	fi
	last=$(tail -n 1 "$tmp/out")
	miss=""
	for k in ms_per_step floor_ms_per_step ratio_to_floor rtf t5_ms encodec_ms_per_audio_s load_s peak_rss_mb \
		weights threads backend kernels tuning; do
		echo "$last" | grep -q "\"$k\": " || miss="$miss $k"
	done
	if [ -z "$miss" ] && echo "$last" | grep -q "\"weights\": \"$w\"" && echo "$last" | grep -q '"threads": 2,'; then
		ok "$w: JSON line with every key, weights $w, 2 threads"
	else
		notok "$w: JSON line lacks:$miss"
		echo "# $last"
	fi
	# Positive step time and floor; the ratio is their quotient.
	if echo "$last" | awk '{
		match($0, /"ms_per_step": [0-9.e+-]+/); s = substr($0, RSTART + 15, RLENGTH - 15) + 0
		match($0, /"floor_ms_per_step": [0-9.e+-]+/); f = substr($0, RSTART + 21, RLENGTH - 21) + 0
		match($0, /"ratio_to_floor": [0-9.e+-]+/); r = substr($0, RSTART + 18, RLENGTH - 18) + 0
		# the JSON rounds ms to 3 decimals: allow that rounding in the quotient
		tol = 0.01 + 0.0005 / f + 0.0005 * s / (f * f)
		exit !(s > 0 && f > 0 && r > 0 && (r - s / f) < tol && (s / f - r) < tol) }'; then
		ok "$w: step time, floor and ratio consistent"
	else
		notok "$w: step time, floor and ratio consistent"
		echo "# $last"
	fi
	grep -q "memory bandwidth" "$tmp/out" && grep -q "real-time factor" "$tmp/out" && ok "$w: human table" ||
		notok "$w: human table"
	# The tuning named in MG_TUNING is the one used and reported.
	if MG_TUNING=default "$bin" bench --model "$model" --weights $w --steps 4 --threads 2 --json >"$tmp/out" \
		2>"$tmp/err" && tail -n 1 "$tmp/out" | grep -q '"tuning": "default"'; then
		ok "$w: MG_TUNING=default reported in the JSON line"
	else
		notok "$w: MG_TUNING=default reported in the JSON line"
		tail -n 1 "$tmp/out" | sed 's/^/# /'
	fi
done

# A run of 50 steps or more reads the bandwidth four times between its steps
# as well as before and after; the floor's reading is their median, and the
# peak memory leaves the readings' buffers out (tiny-a in f32: well under 1 GiB).
if "$bin" bench --model "$model" --weights f32 --steps 60 --threads 2 --json >"$tmp/out" 2>"$tmp/err" &&
	tail -n 1 "$tmp/out" | awk '{
		match($0, /"bandwidth_readings": [0-9]+/); n = substr($0, RSTART + 22, RLENGTH - 22) + 0
		match($0, /"bandwidth_gb_s": [0-9.e+-]+/); b = substr($0, RSTART + 18, RLENGTH - 18) + 0
		match($0, /"bandwidth_min_gb_s": [0-9.e+-]+/); lo = substr($0, RSTART + 22, RLENGTH - 22) + 0
		match($0, /"bandwidth_max_gb_s": [0-9.e+-]+/); hi = substr($0, RSTART + 22, RLENGTH - 22) + 0
		match($0, /"peak_rss_mb": [0-9.e+-]+/); rss = substr($0, RSTART + 15, RLENGTH - 15) + 0
		exit !(n == 6 && lo > 0 && lo <= b + 0.01 && b <= hi + 0.01 && rss > 0 && rss < 1024) }' &&
	grep -q "median of 6 readings before, during and after the steps" "$tmp/out"; then
	ok "60 steps: six bandwidth readings, the floor's their median, the peak without their buffers"
else
	notok "60 steps: six bandwidth readings, the floor's their median, the peak without their buffers"
	tail -n 1 "$tmp/out" | sed 's/^/# /'
fi

if "$bin" bench --accuracy --model "$model" --threads 2 >"$tmp/out" 2>"$tmp/err"; then
	ok "--accuracy runs"
else
	notok "--accuracy runs"
	sed 's/^/# /' "$tmp/err"
fi
for w in f16 q8; do
	if awk -v w=$w '$1 == w { a = $2; sub(/%/, "", a); found = 1; exit !(a + 0 >= 99.0) } END { if (!found) exit 1 }' \
		"$tmp/out"; then
		ok "$w agrees with f32 on >= 99% of tiny-a's greedy tokens"
	else
		notok "$w agrees with f32 on >= 99% of tiny-a's greedy tokens"
		sed 's/^/# /' "$tmp/out"
	fi
done

echo "1..$n"
[ "$fails" = 0 ]
