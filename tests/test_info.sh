#!/bin/sh
# test_info.sh - `musicgen-tui info`: valid models of three shapes are
# described (exit 0); a corpus of damaged model directories each gives exit 1
# with a message on stderr, never a signal or a hang; usage errors exit 2.
# The corpus is made from tests/data/tinyb (in the source tree) in a
# temporary directory.

top=${MG_TOP_SRCDIR:-.}
bin=${MG_BIN:-./musicgen-tui}
ref=${MUSICGEN_REF_DIR:-$top/../shared/ref}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mg-info-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }

# run NAME ARGS...: runs the program with a time limit; sets rc, out, err.
run() {
	timeout 60 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# expect_ok NAME DIR NEEDLE...: exit 0 and every needle on stdout.
expect_ok() {
	name=$1 dir=$2
	shift 2
	run info --model "$dir"
	if [ "$rc" -ne 0 ]; then
		not_ok "$name: exit $rc ($(head -c 300 "$tmp/err"))"
		return
	fi
	for needle in "$@"; do
		if ! grep -qF -- "$needle" "$tmp/out"; then
			not_ok "$name: '$needle' not in the output"
			sed 's/^/# /' "$tmp/out"
			return
		fi
	done
	ok "$name"
}

# expect_fail NAME DIR [NEEDLE]: exit 1 (no signal, no hang), a message on
# stderr naming the needle, nothing on stdout.
expect_fail() {
	name=$1 dir=$2 needle=${3:-}
	run info --model "$dir"
	msg=$(head -c 400 "$tmp/err" | tr '\n' ' ')
	if [ "$rc" -eq 124 ]; then
		not_ok "$name: hung (killed after 60 s)"
	elif [ "$rc" -ne 1 ]; then
		not_ok "$name: exit $rc, expected 1 ($msg)"
	elif ! grep -q 'musicgen-tui info: ' "$tmp/err"; then
		not_ok "$name: no message on stderr"
	elif [ -n "$needle" ] && ! grep -qF -- "$needle" "$tmp/err"; then
		not_ok "$name: message does not name '$needle': $msg"
	elif [ -s "$tmp/out" ]; then
		not_ok "$name: output on stdout despite the failure"
	else
		ok "$name: exit 1, $msg"
	fi
}

expect_usage() {
	name=$1
	shift
	run "$@"
	if [ "$rc" -eq 2 ] && [ -s "$tmp/err" ]; then
		ok "$name: exit 2, $(head -c 200 "$tmp/err" | tr '\n' ' ')"
	else
		not_ok "$name: exit $rc, expected 2 with a message"
	fi
}

base=$top/tests/data/tinyb

# ---- valid models ----
if [ -r "$ref/models/tiny-a/model.safetensors" ]; then
	expect_ok "tiny-a is described" "$ref/models/tiny-a" "musicgen, mono" "d_model 32" "hidden 64, 2 layers, 4 heads x 16" \
		"4 codebooks x 64 codes" "32000 Hz" "frame rate     50 Hz" "longest take   40.88 s (2044 frames" \
		"total 543,250" "F32" "tokenizer      spiece.model"
else
	skip "tiny-a: reference data not found (set MUSICGEN_REF_DIR)"
fi
expect_ok "tinyb (24 kHz, 3 codebooks, conv shortcuts) is described" "$base" "24000 Hz" "frame rate     200 Hz" \
	"ratios [6, 5, 4] (hop 120)" "3 codebooks x 32 codes" "512 positions" "(509 frames" "conv shortcuts"
expect_ok "tinyc (stereo, 8 codebooks) is described" "$top/tests/data/tinyc" "musicgen, stereo" "8 codebooks x 64 codes" \
	"(252 frames = 255 decoder steps - 3"

# A hub id in a cache laid out as huggingface_hub does.
rev=0123456789abcdef0123456789abcdef01234567
snap=$tmp/hub/models--test--tinyb/snapshots/$rev
# (snapshot files are relative links into blobs/, as huggingface_hub makes them)
mkdir -p "$snap" "$tmp/hub/models--test--tinyb/refs" "$tmp/hub/models--test--tinyb/blobs"
printf '%s' "$rev" >"$tmp/hub/models--test--tinyb/refs/main"
for f in config.json generation_config.json model.safetensors; do
	cp "$base/$f" "$tmp/hub/models--test--tinyb/blobs/blob-$f"
	ln -s "../../blobs/blob-$f" "$snap/$f"
done
HF_HUB_CACHE=$tmp/hub expect_ok "a hub id in \$HF_HUB_CACHE" test/tinyb "model          test/tinyb" "revision       $rev"
HF_HUB_CACHE=$tmp/hub expect_fail "a hub id not in the cache" test/absent "models--test--absent"
expect_fail "a path that does not exist" "$tmp/no-such-model" "no-such-model"

# ---- the damaged corpus ----
# mk NAME: a fresh copy of tinyb in $tmp/NAME
mk() {
	d=$tmp/$1
	mkdir -p "$d"
	cp "$base/config.json" "$base/generation_config.json" "$base/model.safetensors" "$d/"
	chmod u+w "$d"/*
}
# patch FILE FROM TO: replaces a byte string (same length keeps offsets valid).
patch() {
	FROM=$2 TO=$3 perl -0777 -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$1"
	if ! grep -qF -- "$3" "$1"; then
		echo "# patch of $1 did not apply: $2" >&2
	fi
}
size=$(wc -c <"$base/model.safetensors")

mk trunc
head -c $((size / 2)) "$base/model.safetensors" >"$tmp/trunc/model.safetensors"
expect_fail "truncated model.safetensors" "$tmp/trunc" "model.safetensors"

mk trunc_hdr
head -c 200 "$base/model.safetensors" >"$tmp/trunc_hdr/model.safetensors"
expect_fail "model.safetensors cut inside its header" "$tmp/trunc_hdr" "header length"

mk zero
: >"$tmp/zero/model.safetensors"
expect_fail "zero-byte model.safetensors" "$tmp/zero" "empty"

mk garbage
yes 'not a safetensors file at all' | head -c 65536 >"$tmp/garbage/model.safetensors"
expect_fail "garbage model.safetensors" "$tmp/garbage" "model.safetensors"

mk hugehdr
{ printf '\377\377\377\377\377\377\377\177'; tail -c +9 "$base/model.safetensors"; } >"$tmp/hugehdr/m"
mv "$tmp/hugehdr/m" "$tmp/hugehdr/model.safetensors"
expect_fail "absurd header length" "$tmp/hugehdr" "100 MB"

mk badjson
patch "$tmp/badjson/model.safetensors" '{"__metadata__":' '["__metadata__",'
expect_fail "broken JSON in the header" "$tmp/badjson" "JSON"

mk dtype
patch "$tmp/dtype/model.safetensors" '"dtype":"F32"' '"dtype":"X32"'
expect_fail "unknown dtype" "$tmp/dtype" "X32"

mk intdtype
patch "$tmp/intdtype/model.safetensors" '"audio_encoder.decoder.layers.0.conv.bias":{"dtype":"F32"' \
	'"audio_encoder.decoder.layers.0.conv.bias":{"dtype":"I32"'
expect_fail "an integer tensor where floats are needed" "$tmp/intdtype" "audio_encoder.decoder.layers.0.conv.bias"

mk span
patch "$tmp/span/model.safetensors" '"shape":[24],"data_offsets":[0,96]}' '"shape":[24],"data_offsets":[0,92]}'
expect_fail "shape/offset mismatch" "$tmp/span" "audio_encoder.decoder.layers.0.conv.bias"

mk overlap
patch "$tmp/overlap/model.safetensors" '"data_offsets":[96,192]' '"data_offsets":[90,186]'
expect_fail "overlapping tensors" "$tmp/overlap" "overlap"

mk missing
patch "$tmp/missing/model.safetensors" '"decoder.lm_heads.0.weight"' '"decoder.lm_heads.X.weight"'
expect_fail "a missing decoder head" "$tmp/missing" "decoder.lm_heads.0.weight"

mk missing_emb
patch "$tmp/missing_emb/model.safetensors" '"text_encoder.shared.weight"' '"text_encoder.sharex.weight"'
expect_fail "no T5 embedding under either name" "$tmp/missing_emb" "embed_tokens"

mk missing_wn
patch "$tmp/missing_wn/model.safetensors" 'audio_encoder.decoder.layers.0.conv.parametrizations.weight.original1' \
	'audio_encoder.decoder.layers.0.conv.parametrizations.weight.originalX'
expect_fail "half of a weight-normed convolution missing" "$tmp/missing_wn" "audio_encoder.decoder.layers.0.conv"

mk shape
patch "$tmp/shape/model.safetensors" '"decoder.model.decoder.layers.0.fc1.weight":{"dtype":"F32","shape":[160,96]' \
	'"decoder.model.decoder.layers.0.fc1.weight":{"dtype":"F32","shape":[96,160]'
expect_fail "a tensor of the wrong shape" "$tmp/shape" "decoder.model.decoder.layers.0.fc1.weight"

# nan FILE TENSOR: writes a NaN over the first element of TENSOR.
nan() {
	NAME=$2 perl -e '
		open(my $f, "+<", $ARGV[0]) or die; binmode $f;
		read($f, my $l, 8); my $n = unpack("Q<", $l); read($f, my $h, $n);
		$h =~ /"\Q$ENV{NAME}\E":\{[^}]*"data_offsets":\[(\d+),/ or die "no tensor $ENV{NAME}\n";
		seek($f, 8 + $n + $1, 0); print $f pack("L<", 0x7fc00000); close $f or die;' "$1"
}
for t in decoder.lm_heads.0.weight decoder.model.decoder.layers.0.fc1.weight decoder.model.decoder.embed_tokens.1.weight \
	text_encoder.shared.weight audio_encoder.quantizer.layers.2.codebook.embed audio_encoder.decoder.layers.1.lstm.weight_hh_l0 \
	audio_encoder.decoder.layers.0.conv.bias audio_encoder.decoder.layers.0.conv.parametrizations.weight.original1 \
	text_encoder.encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight; do
	mk "nan-$t"
	nan "$tmp/nan-$t/model.safetensors" "$t"
	expect_fail "a NaN in $t" "$tmp/nan-$t" "$t"
done

mk noweights
rm "$tmp/noweights/model.safetensors"
expect_fail "no weights file" "$tmp/noweights" "model.safetensors"

mk fifo
rm "$tmp/fifo/model.safetensors"
if mkfifo "$tmp/fifo/model.safetensors" 2>/dev/null; then
	expect_fail "a FIFO in place of the weights (no hang)" "$tmp/fifo" "model.safetensors"
else
	skip "cannot make a FIFO"
fi

mk index
mv "$tmp/index/model.safetensors" "$tmp/index/model-00001-of-00002.safetensors"
printf '{"metadata": {}, "weight_map": {"decoder.lm_heads.0.weight": "model-00001-of-00002.safetensors", "decoder.lm_heads.1.weight": "model-00002-of-00002.safetensors"}}' \
	>"$tmp/index/model.safetensors.index.json"
expect_fail "an index naming a missing shard" "$tmp/index" "model-00002-of-00002.safetensors"

mk noconfig
rm "$tmp/noconfig/config.json"
expect_fail "no config.json" "$tmp/noconfig" "config.json"

mk emptyconfig
: >"$tmp/emptyconfig/config.json"
expect_fail "empty config.json" "$tmp/emptyconfig" "config.json"

mk truncconfig
head -c 300 "$base/config.json" >"$tmp/truncconfig/config.json"
expect_fail "truncated config.json" "$tmp/truncconfig" "JSON"

mk nokey
grep -v '"ffn_dim"' "$base/config.json" >"$tmp/nokey/config.json"
expect_fail "config.json without decoder.ffn_dim" "$tmp/nokey" "decoder.ffn_dim"

mk wrongtype
sed 's/"num_hidden_layers": 3/"num_hidden_layers": "3"/' "$base/config.json" >"$tmp/wrongtype/config.json"
expect_fail "decoder.num_hidden_layers a string" "$tmp/wrongtype" "decoder.num_hidden_layers"

mk zerosize
sed 's/"d_ff": 96/"d_ff": 0/' "$base/config.json" >"$tmp/zerosize/config.json"
expect_fail "text_encoder.d_ff 0" "$tmp/zerosize" "text_encoder.d_ff"

mk absurd
sed 's/"num_attention_heads": 6/"num_attention_heads": 100000/' "$base/config.json" >"$tmp/absurd/config.json"
expect_fail "decoder.num_attention_heads 100000" "$tmp/absurd" "decoder.num_attention_heads"

mk modeltype
sed 's/"model_type": "musicgen"/"model_type": "bark"/' "$base/config.json" >"$tmp/modeltype/config.json"
expect_fail "unknown model_type" "$tmp/modeltype" "model_type"

mk causal
sed 's/"use_causal_conv": false/"use_causal_conv": true/' "$base/config.json" >"$tmp/causal/config.json"
expect_fail "causal EnCodec" "$tmp/causal" "use_causal_conv"

mk cfgshape
sed 's/"ffn_dim": 160/"ffn_dim": 128/' "$base/config.json" >"$tmp/cfgshape/config.json"
expect_fail "config and weights disagree (ffn_dim)" "$tmp/cfgshape" "fc1.weight"

mk badgen
echo '{"top_k": "many"}' >"$tmp/badgen/generation_config.json"
expect_fail "generation_config.json top_k a string" "$tmp/badgen" "top_k"

mk dirconfig
rm "$tmp/dirconfig/config.json"
mkdir "$tmp/dirconfig/config.json"
expect_fail "config.json is a directory" "$tmp/dirconfig" "config.json"

mk badspiece
echo 'this is not a protobuf' >"$tmp/badspiece/spiece.model"
expect_fail "a garbage spiece.model" "$tmp/badspiece" "spiece.model"

mk emptyspiece
: >"$tmp/emptyspiece/spiece.model"
expect_fail "an empty spiece.model" "$tmp/emptyspiece" "spiece.model"

# Without spiece.model a model is still valid (only prompts need it).
mk nospiece
expect_ok "no spiece.model: still valid, said so" "$tmp/nospiece" "tokenizer      none"

# ---- other storage layouts of the same weights ----
# rewrite SRC DIR SHARDS DTYPE: writes SRC's tensors into DIR as SHARDS files
# (with model.safetensors.index.json when SHARDS > 1), every tensor whose
# name contains "decoder.model" stored as DTYPE (F32, F16 or BF16; halves
# rounded to nearest even by perl's pack, BF16 truncated).
rewrite() {
	perl -MJSON::PP -e '
		my ($src, $dir, $nsh, $dt) = @ARGV;
		open(my $f, "<", $src) or die; binmode $f;
		read($f, my $l, 8); my $n = unpack("Q<", $l); read($f, my $h, $n);
		local $/; my $data = <$f>; close $f;
		my $hdr = JSON::PP->new->decode($h); delete $hdr->{__metadata__};
		my @names = sort keys %$hdr; my %map;
		for my $s (0 .. $nsh - 1) {
			my $file = $nsh == 1 ? "model.safetensors" : sprintf("model-%05d-of-%05d.safetensors", $s + 1, $nsh);
			my (%out, $buf); $buf = "";
			for my $i (grep { $_ % $nsh == $s } 0 .. $#names) {
				my $t = $hdr->{$names[$i]}; my ($b, $e) = @{$t->{data_offsets}};
				my $bytes = substr($data, $b, $e - $b); my $d = "F32";
				if ($dt ne "F32" && $names[$i] =~ /decoder\.model/) {
					my @v = unpack("f<*", $bytes);
					$bytes = $dt eq "BF16" ? pack("v*", map { unpack("V", pack("f<", $_)) >> 16 } @v)
					                       : pack("v*", map { f2h($_) } @v);
					$d = $dt;
				}
				$out{$names[$i]} = { dtype => $d, shape => $t->{shape},
				                     data_offsets => [length($buf), length($buf) + length($bytes)] };
				$buf .= $bytes; $map{$names[$i]} = $file;
			}
			my $j = JSON::PP->new->canonical->encode(\%out); $j .= " " while length($j) % 8;
			open(my $o, ">", "$dir/$file") or die; binmode $o;
			print $o pack("Q<", length $j), $j, $buf; close $o or die;
		}
		if ($nsh > 1) {
			open(my $o, ">", "$dir/model.safetensors.index.json") or die;
			print $o JSON::PP->new->canonical->encode({ metadata => {}, weight_map => \%map }); close $o;
		}
		# float -> half, round to nearest even (finite, normal range of the test weights)
		sub f2h {
			my $x = unpack("V", pack("f<", $_[0])); my $s = ($x >> 16) & 0x8000;
			my $a = $x & 0x7fffffff; return $s if $a < 0x38800000;
			my $r = $a - 0x38000000; my $h = $r >> 13; my $rem = $r & 0x1fff;
			$h++ if $rem > 0x1000 || ($rem == 0x1000 && ($h & 1)); return $s | $h;
		}' "$@"
}
for layout in "2 F32" "3 F16" "1 BF16"; do
	set -- $layout
	d=$tmp/layout-$1-$2
	mkdir -p "$d"
	cp "$base/config.json" "$base/generation_config.json" "$d/"
	if ! rewrite "$base/model.safetensors" "$d" "$1" "$2"; then
		not_ok "rewriting tinyb as $1 file(s), decoder in $2"
		continue
	fi
	if [ "$1" -gt 1 ]; then shards="model.safetensors.index.json"; else shards="model.safetensors"; fi
	if [ "$2" = F32 ]; then storage="storage        F32 (100.0%)"; else storage="$2 ("; fi
	expect_ok "tinyb as $1 file(s) ($shards), decoder stored as $2" "$d" "total 462,581 (255 tensors)" "$storage"
done

# ---- usage ----
run info --help
if [ "$rc" -eq 0 ] && grep -q 'Usage: musicgen-tui info --model PATH' "$tmp/out"; then ok "info --help: exit 0, usage on stdout"; else not_ok "info --help (exit $rc)"; fi
run info --version
if [ "$rc" -eq 0 ] && grep -q '^musicgen-tui [0-9]' "$tmp/out"; then ok "info --version: exit 0"; else not_ok "info --version (exit $rc)"; fi
expect_usage "info without --model" info
expect_usage "info --model without a value" info --model
expect_usage "info with an unknown option" info --model "$base" --frobnicate
expect_usage "info with a stray argument" info --model "$base" extra

echo "1..$n"
[ "$failed" -eq 0 ]
