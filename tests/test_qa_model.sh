#!/bin/sh
# test_qa_model.sh - damaged model directories through `info`, `tokenize`
# and `generate`: tests/qa_corpus.py writes one copy of tests/data/tinyb per
# defect (broken safetensors, broken config.json, FIFOs, directories,
# symlink loops and devices in place of files); each command must exit 1
# with a message naming the file or tensor at fault, never hang, never die
# of a signal. TAP output.

bin=${MG_BIN:-./musicgen-tui}
top=${MG_TOP_SRCDIR:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mg-qa-model-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; }

if ! command -v python3 >/dev/null 2>&1; then
	echo "1..0 # SKIP python3 is needed to write the damaged models"
	exit 0
fi
if ! python3 "$top/tests/qa_corpus.py" "$top/tests/data/tinyb" "$tmp/m" 2>"$tmp/err"; then
	echo "Bail out! qa_corpus.py failed: $(cat "$tmp/err")"
	exit 1
fi

# expect_fail NAME CMD ARGS...: exit 1 within 20 s, and stderr names the
# model directory (for the files) or quotes a tensor name.
expect_fail() {
	name=$1
	shift
	timeout 20 "$bin" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	if [ "$rc" -eq 1 ] && { grep -q "$name" "$tmp/err" || grep -Eq "'[A-Za-z0-9_]+\.[A-Za-z0-9_.]+'" "$tmp/err"; }; then
		ok "$1 $name: exit 1, $(head -c 160 "$tmp/err" | tr '\n' ' ')"
	else
		not_ok "$1 $name: exit $rc (124 = hung), '$(head -c 200 "$tmp/err" | tr '\n' ' ')'"
	fi
}

for dir in "$tmp"/m/*; do
	name=$(basename "$dir")
	expect_fail "$name" info --model "$dir"
	expect_fail "$name" generate --model "$dir" --frames 4 --output "$tmp/x.wav" --force
done

# `models --verify DIR` reads the same files: exit 1, never blocked on a FIFO.
for name in fifo_config fifo_weights fifo_spiece dir_config device_config loop_config; do
	timeout 20 "$bin" models --verify "$tmp/m/$name" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	if [ "$rc" -eq 1 ]; then
		ok "models --verify $name: exit 1"
	else
		not_ok "models --verify $name: exit $rc (124 = hung)"
	fi
done

# A hub-cache entry whose refs/main is a FIFO: the id resolves without
# blocking (info: exit 1, nothing cached; models: lists nothing).
cache=$tmp/hub
mkdir -p "$cache/models--qa--fifo/refs" "$cache/models--qa--fifo/snapshots"
mkfifo "$cache/models--qa--fifo/refs/main"
for cmd in "info --model qa/fifo" "models" "models --verify qa/fifo"; do
	# shellcheck disable=SC2086
	HF_HUB_CACHE=$cache HF_HUB_OFFLINE=1 timeout 20 "$bin" $cmd >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ]; then
		ok "$cmd with refs/main a FIFO: exit $rc, no hang"
	else
		not_ok "$cmd with refs/main a FIFO: exit $rc (124 = hung)"
	fi
done

# The tokenizer alone: a FIFO or a directory for spiece.model.
for name in fifo_spiece dir_spiece; do
	expect_fail "$name" tokenize --model "$tmp/m/$name" "a text"
done

# A good copy still works, so the failures above are the damage's.
mkdir "$tmp/good"
cp "$top"/tests/data/tinyb/* "$tmp/good/"
timeout 20 "$bin" info --model "$tmp/good" >"$tmp/out" 2>"$tmp/err" </dev/null
ok_rc=$?
if [ "$ok_rc" -eq 0 ] && grep -q '^frame rate *200 Hz' "$tmp/out"; then
	ok "info on the undamaged copy: exit 0, 200 Hz"
else
	not_ok "info on the undamaged copy: exit $ok_rc"
fi

echo "1..$n"
