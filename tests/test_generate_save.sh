#!/bin/sh
# test_generate_save.sh - `generate --save` puts every take into the history
# (each with its own seed), readable by `history --json` and `export`.
ref=${MUSICGEN_REF_DIR:-}
bin=${MG_BIN:-./musicgen-tui}
if [ -z "$ref" ] || [ ! -d "$ref/models/tiny-a" ]; then
	echo "1..0 # SKIP reference data not found"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/cfg" XDG_STATE_HOME="$tmp/state" HOME="$tmp"
n=0 fail=0
check() {
	n=$((n + 1))
	if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=1; fi
}
"$bin" generate --model "$ref/models/tiny-a" --prompt "calm piano" --count 2 --frames 20 --seed 41 \
	--output "$tmp/x.wav" --save >"$tmp/out" 2>"$tmp/err"
check "generate --save exits 0" $?
grep -q "saved take #1" "$tmp/err" && grep -q "saved take #2" "$tmp/err"; check "both takes saved" $?
"$bin" history --json >"$tmp/h.json"; check "history --json exits 0" $?
grep -q '"seed": 41' "$tmp/h.json" && grep -q '"seed": 42' "$tmp/h.json"; check "each take keeps its own seed (41, 42)" $?
grep -q '"prompt": "calm piano"' "$tmp/h.json"; check "the prompt is stored" $?
"$bin" export 1 "$tmp/e.wav" >/dev/null 2>&1 && [ -s "$tmp/e.wav" ] && [ "$(head -c 4 "$tmp/e.wav")" = RIFF ]
check "export of a saved take writes a file" $?
"$bin" generate --model "$ref/models/tiny-a" --frames 20 --output "$tmp/y.wav" >/dev/null 2>&1
[ "$("$bin" history --json | grep -c '"id"')" -eq 2 ]; check "without --save nothing is added" $?
echo "1..$n"
exit $fail
