#!/bin/sh
# test_qa_cli.sh - acceptance checks of the command line as a user meets it:
# every subcommand answers --version (exit 0, the version on stdout) and
# --help (exit 0), and refuses an unknown option with exit 2, naming it on
# stderr. TAP output.

bin=${MG_BIN:-./musicgen-tui}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mg-qa-cli-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; }
run() {
	timeout 60 "$bin" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
}

version=$("$bin" --version 2>/dev/null)
case $version in
musicgen-tui\ [0-9]*) ok "the program's --version: '$version'" ;;
*) not_ok "the program's --version: '$version'" ;;
esac

for cmd in generate info tokenize history export models download devices bench; do
	run "$cmd" --version
	if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = "$version" ] && [ ! -s "$tmp/err" ]; then
		ok "$cmd --version: exit 0, '$version' on stdout"
	else
		not_ok "$cmd --version: exit $rc, out '$(head -c 200 "$tmp/out")', err '$(head -c 200 "$tmp/err")'"
	fi
	run "$cmd" --help
	if [ "$rc" -eq 0 ] && grep -qi 'usage' "$tmp/out"; then
		ok "$cmd --help: exit 0 with usage"
	else
		not_ok "$cmd --help: exit $rc"
	fi
	# An unknown option, alone and followed by a word: a usage error naming it.
	for args in "--no-such-option" "--no-such-option value"; do
		# shellcheck disable=SC2086
		run "$cmd" $args
		if [ "$rc" -eq 2 ] && grep -q -- "unknown.*'--no-such-option'" "$tmp/err"; then
			ok "$cmd $args: exit 2, the option named as unknown"
		else
			not_ok "$cmd $args: exit $rc, '$(head -c 200 "$tmp/err")'"
		fi
	done
done

echo "1..$n"
