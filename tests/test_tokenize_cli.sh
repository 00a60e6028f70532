#!/bin/sh
# test_tokenize_cli.sh - `musicgen-tui tokenize`: ids from arguments and from
# standard input, a model directory or a spiece.model file, exit codes.
ref=${MUSICGEN_REF_DIR:-}
bin=${MG_BIN:-./musicgen-tui}
if [ -z "$ref" ] || [ ! -f "$ref/t5/spiece.model" ]; then
	echo "1..0 # SKIP reference data not found"
	exit 0
fi
n=0 fail=0
check() { # description, condition status
	n=$((n + 1))
	if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=1; fi
}
sp=$ref/t5/spiece.model
out=$("$bin" tokenize --model "$sp" "Summary of the text." "")
[ "$out" = "20698 13 8 1499 5 1
1" ]; check "ids of two texts from arguments, EOS included" $?
out=$(printf 'The quick brown fox jumps over the lazy dog.\nSummary of the text.\n' | "$bin" tokenize --model "$sp")
[ "$out" = "37 1704 4216 3 20400 4418 7 147 8 19743 1782 5 1
20698 13 8 1499 5 1" ]; check "one line per line of standard input" $?
out=$("$bin" tokenize --model "$ref/models/tiny-a" "calm piano")
want=$("$bin" tokenize --model "$ref/models/tiny-a/spiece.model" "calm piano")
[ -n "$out" ] && [ "$out" = "$want" ]; check "a model directory gives its spiece.model's ids" $?
"$bin" tokenize "x" >/dev/null 2>&1; [ $? -eq 2 ]; check "missing --model is a usage error (2)" $?
"$bin" tokenize --model "$sp" --bogus x >/dev/null 2>&1; [ $? -eq 2 ]; check "an unknown option is a usage error (2)" $?
err=$("$bin" tokenize --model /nonexistent/dir x 2>&1 >/dev/null); st=$?
[ $st -eq 1 ] && [ -n "$err" ]; check "a missing model exits 1 with a message" $?
tmp=$(mktemp); printf 'not a model' >"$tmp"
"$bin" tokenize --model "$tmp" x >/dev/null 2>&1; [ $? -eq 1 ]; check "a garbage spiece.model exits 1" $?
rm -f "$tmp"
"$bin" tokenize --help | grep -q -- --model; check "--help names --model" $?
echo "1..$n"
exit $fail
