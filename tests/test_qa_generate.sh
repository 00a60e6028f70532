#!/bin/sh
# test_qa_generate.sh - `generate` on a model of another shape than the
# reference one (tests/data/tinyb: 3 codebooks, 24 kHz, 200 frames/s):
# usage errors, duration-to-frames arithmetic, --top-k 1 = --greedy, seeds,
# take numbering, no overwrite without --force, the three file formats,
# pcm16 clipping, the one-window limit, the summary line. TAP output.

bin=${MG_BIN:-./musicgen-tui}
top=${MG_TOP_SRCDIR:-.}
build=${MG_TOP_BUILDDIR:-.}
sndinfo=$build/tests/sndinfo
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mg-qa-gen-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { # check STATUS DESCRIPTION
	if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi
}

model=$tmp/tinyb
mkdir "$model"
cp "$top"/tests/data/tinyb/* "$model/"
spiece=${MUSICGEN_REF_DIR:-}/fixtures/tokenizer/spiece.model
prompt=
if [ -n "${MUSICGEN_REF_DIR:-}" ] && [ -f "$spiece" ]; then
	ln -s "$spiece" "$model/spiece.model"
	prompt=1
fi
cd "$tmp" || exit 1

# gen ARGS...: generate on tinyb; stdout, stderr, status in out, err, rc.
gen() {
	timeout 60 "$bin" generate --model "$model" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
}

# ---- usage errors: exit 2 and the reason ----
usage() { # usage PATTERN ARGS...
	pat=$1
	shift
	gen --output u.wav "$@"
	if [ "$rc" -eq 2 ] && grep -q -- "$pat" "$tmp/err" && [ ! -e u.wav ]; then
		ok "$*: exit 2, '$pat'"
	else
		not_ok "$*: exit $rc, '$(head -c 200 "$tmp/err")'"
	fi
}
usage 'top-p' --top-p 0
usage 'top-p' --top-p 1.01
usage 'temperature' --temperature 0
usage 'temperature' --temperature -1
usage 'top-k' --top-k -1
usage 'guidance' --guidance -0.5
usage 'duration' --duration 0
usage 'duration' --duration -2
usage 'duration' --duration 3x
usage 'window' --duration 100
usage 'frames' --frames 100000
usage 'frames' --frames 1
usage 'backend' --backend cuda
usage 'count' --count 0
usage 'seed' --seed abc

# ---- duration -> frames = round(S x 200) ----
for pair in 0.5:100 0.123:25 0.0574:11; do
	s=${pair%:*}
	want=${pair#*:}
	gen --duration "$s" --seed 1 --output d.wav --force --codes-out d.txt
	check $( ([ "$rc" -eq 0 ] && [ "$(head -n 1 d.txt)" = "1 3 $want" ]) && echo 0 || echo 1) \
		"--duration $s at 200 frames/s: codes 1 x 3 x $want (got '$(head -n 1 d.txt 2>/dev/null)')"
done
gen --frames 2 --seed 1 --output f2.wav --codes-out f2.txt
check $( ([ "$rc" -eq 0 ] && [ "$(head -n 1 f2.txt)" = "1 3 2" ]) && echo 0 || echo 1) "--frames K-1 = 2 is the shortest take"

# ---- --top-k 1 is --greedy ----
gen --frames 30 --greedy --output g.wav --codes-out g.txt
gen --frames 30 --top-k 1 --temperature 0.7 --seed 5 --output k.wav --codes-out k.txt
cmp -s g.txt k.txt
check $? "--top-k 1 gives the --greedy codes (unconditional)"
# A temperature so small that the scaled scores overflow float: the limit,
# argmax, not NaNs (which gave all-zero codes).
gen --frames 30 --temperature 1e-45 --seed 3 --output t.wav --codes-out t.txt
cmp -s g.txt t.txt
check $? "--temperature 1e-45 gives the --greedy codes"
if [ -n "$prompt" ]; then
	gen --prompt "calm piano" --frames 30 --greedy --output gp.wav --codes-out gp.txt
	gen --prompt "calm piano" --frames 30 --top-k 1 --seed 9 --output kp.wav --codes-out kp.txt
	cmp -s gp.txt kp.txt
	check $? "--top-k 1 gives the --greedy codes (prompt, guidance)"
else
	n=$((n + 1)); echo "ok $n # SKIP no spiece.model in \$MUSICGEN_REF_DIR for a prompt"
fi

# ---- seeds ----
gen --frames 30 --seed 7 --output s7a.wav --codes-out s7a.txt
gen --frames 30 --seed 7 --output s7b.wav --codes-out s7b.txt
cmp -s s7a.txt s7b.txt && cmp -s s7a.wav s7b.wav
check $? "the same seed: identical codes and file bytes"
gen --frames 30 --seed 8 --output s8.wav --codes-out s8.txt
! cmp -s s7a.txt s8.txt
check $? "another seed: other codes"

# ---- several takes: -1, -2, -3; take i uses seed S + i - 1 ----
gen --count 3 --frames 20 --seed 10 --output m.wav --codes-out m.txt
check $( ([ "$rc" -eq 0 ] && [ -f m-1.wav ] && [ -f m-2.wav ] && [ -f m-3.wav ] && [ ! -e m.wav ] &&
	[ "$(cat "$tmp/out")" = "$(printf 'm-1.wav\nm-2.wav\nm-3.wav')" ]) && echo 0 || echo 1) \
	"--count 3 --output m.wav writes m-1.wav, m-2.wav, m-3.wav and names them on stdout"
gen --frames 20 --seed 11 --output m11.wav
cmp -s m-2.wav m11.wav
check $? "take 2 of a run with seed 10 is the take of seed 11 alone"

# ---- no overwrite without --force ----
cp m-1.wav keep.wav
gen --count 2 --frames 20 --seed 99 --output m.wav
check $( ([ "$rc" -ne 0 ] && grep -q 'force' "$tmp/err" && cmp -s m-1.wav keep.wav) && echo 0 || echo 1) \
	"an existing m-1.wav is kept and named without --force (exit $rc)"
gen --count 2 --frames 20 --seed 99 --output m.wav --force
! cmp -s m-1.wav keep.wav
check $? "--force replaces it"
ls -a | grep -q 'tmp\|\.part' && leftovers=1 || leftovers=0
check $leftovers "no temporary files left beside the outputs"

# ---- an output that cannot be written fails before the generation ----
mkdir is-a-dir.wav
for args in "--output no-such-dir/x.wav" "--output is-a-dir.wav --force" "--output ok.wav --codes-out no-such-dir/c.txt"; do
	# shellcheck disable=SC2086
	gen --frames 20 $args
	if [ "$rc" -eq 1 ] && ! grep -q '^generated' "$tmp/err" && grep -q 'no-such-dir\|is-a-dir' "$tmp/err" &&
		[ ! -e ok.wav ]; then
		ok "$args: exit 1 before generating, '$(head -c 100 "$tmp/err")'"
	else
		not_ok "$args: exit $rc, '$(head -c 200 "$tmp/err" | tr '\n' ' ')'"
	fi
done

# ---- formats: readable, right rate and length ----
for f in x.wav x.flac x.ogg; do
	gen --frames 100 --seed 3 --output "$f"
	if [ -x "$sndinfo" ]; then
		info=$("$sndinfo" "$f" 2>&1)
		set -- $info
		check $( ([ "$rc" -eq 0 ] && [ "$1" = 12000 ] && [ "$2" = 24000 ] && [ "$3" = 1 ]) && echo 0 || echo 1) \
			"$f: 12000 samples (100 frames x 120) at 24000 Hz, mono ('$info')"
	else
		n=$((n + 1)); echo "ok $n # SKIP tests/sndinfo not built"
	fi
done

# ---- pcm16 clips, never wraps ----
gen --frames 100 --seed 3 --output c16.wav
gen --frames 100 --seed 3 --output cf.wav --sample-format float
if command -v python3 >/dev/null 2>&1; then
	python3 - c16.wav cf.wav >"$tmp/clip" 2>&1 <<'PY'
import struct, sys
def data(fn):
    b = open(fn, "rb").read()
    i = 12
    while i < len(b):
        n = struct.unpack("<I", b[i + 4:i + 8])[0]
        if b[i:i + 4] == b"data":
            return b[i + 8:i + 8 + n]
        i += 8 + n + (n & 1)
a = data(sys.argv[1]); f = data(sys.argv[2])
s = struct.unpack("<%dh" % (len(a) // 2), a)
x = struct.unpack("<%df" % (len(f) // 4), f)
over = sum(1 for v in x if abs(v) > 1)
bad = [(v, w) for v, w in zip(x, s) if abs(w - max(-32768, min(32767, v * 32767))) > 1.5
       and abs(w - max(-32768, min(32767, v * 32768))) > 1.5]
print("samples %d, beyond full scale %d, wrong %d" % (len(s), over, len(bad)))
sys.exit(1 if bad or len(s) != len(x) or over == 0 else 0)
PY
	check $? "pcm16 = the float samples scaled and clipped ($(cat "$tmp/clip"))"
else
	n=$((n + 1)); echo "ok $n # SKIP python3 is needed to read the samples"
fi

# ---- stdin and stderr not a terminal: one summary line ----
gen --frames 40 --seed 1 --output sum.wav
lines=$(wc -l <"$tmp/err")
check $( ([ "$rc" -eq 0 ] && [ "$lines" -eq 1 ] && grep -q 'steps/s' "$tmp/err" && grep -q 'real-time factor' "$tmp/err" &&
	[ "$(cat "$tmp/out")" = sum.wav ]) && echo 0 || echo 1) \
	"not on a terminal: one summary line on stderr ($(tr '\n' ' ' <"$tmp/err" | head -c 120)), the file name on stdout"

echo "1..$n"
