#!/bin/sh
# test_tokenize_cli.sh - `musicgen-tui tokenize`: ids from arguments and from
# standard input, a model directory, a hub id in the cache or a spiece.model
# file, --help/--version, exit codes.
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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
sp=$ref/t5/spiece.model

out=$("$bin" tokenize --model "$sp" "Summary of the text." "")
[ "$out" = "20698 13 8 1499 5 1
1" ]; check "ids of two texts from arguments, EOS included" $?

out=$(printf 'The quick brown fox jumps over the lazy dog.\nSummary of the text.\n' | "$bin" tokenize --model "$sp")
[ "$out" = "37 1704 4216 3 20400 4418 7 147 8 19743 1782 5 1
20698 13 8 1499 5 1" ]; check "one line per line of standard input" $?

out=$(printf 'hi</s>\n\nhi' | "$bin" tokenize -m "$sp")
want=$("$bin" tokenize --model "$sp" hi)
[ "$out" = "$want
1
$want" ]; check "stdin: an empty line is [1], a last line without newline counts, </s> not doubled" $?

out=$("$bin" tokenize --model "$sp" "<extra_id_0> guitar <pad> <unk>")
[ "$out" = "32099 5507 0 2 1" ]; check "special-token strings split out (<extra_id_0> = 32099)" $?

out=$("$bin" tokenize --model "$ref/models/tiny-a" "calm piano")
want=$("$bin" tokenize --model "$ref/models/tiny-a/spiece.model" "calm piano")
[ -n "$out" ] && [ "$out" = "$want" ]; check "a model directory gives its spiece.model's ids" $?

# A hub id resolved in a Hugging Face cache laid out as the hub client does.
rev=0123456789abcdef0123456789abcdef01234567
mkdir -p "$tmp/hub/models--test-org--tiny/refs" "$tmp/hub/models--test-org--tiny/snapshots/$rev"
printf '%s' "$rev" >"$tmp/hub/models--test-org--tiny/refs/main"
cp "$ref/models/tiny-a/spiece.model" "$tmp/hub/models--test-org--tiny/snapshots/$rev/"
out=$(HF_HUB_CACHE="$tmp/hub" "$bin" tokenize --model test-org/tiny "calm piano")
[ -n "$out" ] && [ "$out" = "$want" ]; check "a hub id in the cache gives its spiece.model's ids" $?

"$bin" tokenize "x" >/dev/null 2>"$tmp/err"; st=$?
[ $st -eq 2 ] && grep -q -- --model "$tmp/err"; check "missing --model is a usage error (2) naming --model" $?
"$bin" tokenize --model "$sp" --bogus x >/dev/null 2>"$tmp/err"; st=$?
[ $st -eq 2 ] && grep -q -- --bogus "$tmp/err"; check "an unknown option is a usage error (2) naming it" $?
"$bin" tokenize --model >/dev/null 2>&1; [ $? -eq 2 ]; check "--model without a value is a usage error (2)" $?

err=$("$bin" tokenize --model /nonexistent/dir x 2>&1 >/dev/null); st=$?
[ $st -eq 1 ] && [ -n "$err" ]; check "a missing model exits 1 with a message" $?
mkdir "$tmp/empty"
err=$("$bin" tokenize --model "$tmp/empty" x 2>&1 >/dev/null); st=$?
[ $st -eq 1 ] && echo "$err" | grep -q spiece.model; check "a directory without spiece.model exits 1 naming the file" $?
printf 'not a model' >"$tmp/garbage.model"
err=$("$bin" tokenize --model "$tmp/garbage.model" x 2>&1 >/dev/null); st=$?
[ $st -eq 1 ] && echo "$err" | grep -q garbage.model; check "a garbage spiece.model exits 1 naming it" $?
: >"$tmp/empty.model"
"$bin" tokenize --model "$tmp/empty.model" x >/dev/null 2>&1; [ $? -eq 1 ]; check "an empty spiece.model exits 1" $?

"$bin" tokenize --help | grep -q -- --model; check "--help names --model" $?
"$bin" tokenize --version | grep -q musicgen-tui; check "--version prints the version" $?
echo "1..$n"
exit $fail
