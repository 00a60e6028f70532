#!/usr/bin/env python3
"""qa_corpus.py SRC OUT - writes damaged copies of the model directory SRC
under OUT, one directory per defect, for tests/test_qa_model.sh: broken
safetensors (truncated, empty, garbage, absurd header length, broken JSON,
bad offsets, unknown dtype, bad shapes, missing tensors), broken config.json
(missing, empty, wrong types, unknown model_type, causal EnCodec, absurd
sizes), special files (FIFO, directory, symlink loop, device) in place of
the files, and a FIFO spiece.model. Python 3 standard library only."""
import copy
import json
import os
import shutil
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
cfg = json.load(open(os.path.join(src, "config.json")))
hlen = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + hlen])
body = raw[8 + hlen:]
names = sorted(k for k in hdr if k != "__metadata__")


def pack(h):
    t = json.dumps(h).encode()
    t += b" " * ((8 - len(t) % 8) % 8)
    return struct.pack("<Q", len(t)) + t + body


def mk(name, st=raw, conf=cfg, conf_text=None):
    d = os.path.join(out, name)
    os.makedirs(d)
    for f in os.listdir(src):
        if f not in ("model.safetensors", "config.json") and os.path.isfile(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), d)
    if st is not None:
        open(os.path.join(d, "model.safetensors"), "wb").write(st)
    if conf_text is not None:
        open(os.path.join(d, "config.json"), "w").write(conf_text)
    elif conf is not None:
        json.dump(conf, open(os.path.join(d, "config.json"), "w"))
    return d


def hmod(f):
    h = copy.deepcopy(hdr)
    f(h)
    return pack(h)


def cmod(f):
    c = copy.deepcopy(cfg)
    f(c)
    return c


def set_in(h, key, field, value):
    h[key][field] = value


t0, t1 = names[0], names[1]
a0, b0 = hdr[t1]["data_offsets"]
mk("st_truncated", raw[:len(raw) // 2])
mk("st_truncated_header", raw[:8 + hlen // 2])
mk("st_four_bytes", raw[:4])
mk("st_empty", b"")
mk("st_zeros", b"\0" * 4096)
mk("st_garbage", bytes((i * 131 + 7) % 256 for i in range(5000)))
mk("st_header_absurd", struct.pack("<Q", 1 << 62) + raw[8:])
mk("st_header_past_end", struct.pack("<Q", len(raw)) + raw[8:])
mk("st_json_broken", raw[:8] + raw[8:8 + hlen // 3] + b"}" * (hlen - hlen // 3) + body)
mk("st_json_array", pack([1, 2, 3]))
mk("st_offsets_past_end", hmod(lambda h: set_in(h, t0, "data_offsets", [0, len(body) + 64])))
mk("st_offsets_reversed", hmod(lambda h: set_in(h, t1, "data_offsets", [b0, a0])))
mk("st_offsets_size", hmod(lambda h: set_in(h, t1, "data_offsets", [a0, b0 - 4])))
mk("st_offsets_negative", hmod(lambda h: set_in(h, t0, "data_offsets", [-8, 4])))
mk("st_offsets_strings", hmod(lambda h: set_in(h, t0, "data_offsets", ["0", "4"])))
mk("st_dtype_unknown", hmod(lambda h: set_in(h, t0, "dtype", "Q7")))
mk("st_shape_negative", hmod(lambda h: set_in(h, t0, "shape", [-1, 4])))
mk("st_shape_huge", hmod(lambda h: set_in(h, t0, "shape", [1 << 40, 1 << 40])))
# One tensor each part needs (EnCodec's encoder and the quantizer's training
# statistics are not needed to generate).
for part, end in (("text_encoder.", "weight"), ("enc_to_dec_proj.", "weight"), ("decoder.", "weight"),
                  ("audio_encoder.decoder.", "bias"), ("audio_encoder.quantizer.layers.0.", "codebook.embed")):
    key = [k for k in names if k.startswith(part) and k.endswith(end)][-1]
    mk("st_missing_" + part.strip(".").replace(".", "_"), hmod(lambda h: h.pop(key)))
k2 = [k for k in names if k.startswith("decoder.") and len(hdr[k]["shape"]) == 2
      and hdr[k]["shape"][0] != hdr[k]["shape"][1]][0]
mk("st_shape_transposed", hmod(lambda h: set_in(h, k2, "shape", hdr[k2]["shape"][::-1])))

mk("cfg_missing", conf=None)
mk("cfg_empty", conf_text="")
mk("cfg_truncated", conf_text=json.dumps(cfg)[:100])
mk("cfg_array", conf_text="[1, 2]")
mk("cfg_null", conf_text="null")
mk("cfg_deep", conf_text="[" * 50000 + "]" * 50000)
mk("cfg_model_type_bert", conf=cmod(lambda c: c.__setitem__("model_type", "bert")))
mk("cfg_model_type_missing", conf=cmod(lambda c: c.pop("model_type")))
mk("cfg_decoder_missing", conf=cmod(lambda c: c.pop("decoder")))
mk("cfg_decoder_string", conf=cmod(lambda c: c.__setitem__("decoder", "x")))
mk("cfg_hidden_string", conf=cmod(lambda c: c["decoder"].__setitem__("hidden_size", "64")))
mk("cfg_hidden_fraction", conf=cmod(lambda c: c["decoder"].__setitem__("hidden_size", 64.5)))
mk("cfg_hidden_zero", conf=cmod(lambda c: c["decoder"].__setitem__("hidden_size", 0)))
mk("cfg_hidden_huge", conf=cmod(lambda c: c["decoder"].__setitem__("hidden_size", 1 << 40)))
mk("cfg_layers_huge", conf=cmod(lambda c: c["decoder"].__setitem__("num_hidden_layers", 2**31 - 1)))
mk("cfg_codebooks_huge", conf=cmod(lambda c: c["decoder"].__setitem__("num_codebooks", 100000)))
mk("cfg_vocab_huge", conf=cmod(lambda c: c["text_encoder"].__setitem__("vocab_size", 1 << 33)))
mk("cfg_t5_type", conf=cmod(lambda c: c["text_encoder"].__setitem__("model_type", "gpt2")))
mk("cfg_codec_type", conf=cmod(lambda c: c["audio_encoder"].__setitem__("model_type", "dac")))
mk("cfg_codec_causal", conf=cmod(lambda c: c["audio_encoder"].__setitem__("use_causal_conv", True)))
mk("cfg_codec_missing", conf=cmod(lambda c: c.pop("audio_encoder")))
mk("cfg_ratios_zero", conf=cmod(lambda c: c["audio_encoder"].__setitem__("upsampling_ratios", [0, 5])))
mk("cfg_ratios_huge", conf=cmod(lambda c: c["audio_encoder"].__setitem__("upsampling_ratios", [1 << 30, 1 << 30])))
mk("cfg_rate_negative", conf=cmod(lambda c: c["audio_encoder"].__setitem__("sampling_rate", -24000)))

d = mk("fifo_weights", st=None)
os.mkfifo(os.path.join(d, "model.safetensors"))
d = mk("fifo_config", conf=None)
os.mkfifo(os.path.join(d, "config.json"))
d = mk("fifo_spiece")
os.mkfifo(os.path.join(d, "spiece.model"))
d = mk("dir_weights", st=None)
os.mkdir(os.path.join(d, "model.safetensors"))
d = mk("dir_config", conf=None)
os.mkdir(os.path.join(d, "config.json"))
d = mk("dir_spiece")
os.mkdir(os.path.join(d, "spiece.model"))
d = mk("loop_weights", st=None)
os.symlink("model.safetensors", os.path.join(d, "model.safetensors"))
d = mk("loop_config", conf=None)
os.symlink("config.json", os.path.join(d, "config.json"))
d = mk("device_weights", st=None)
os.symlink("/dev/zero", os.path.join(d, "model.safetensors"))
d = mk("device_config", conf=None)
os.symlink("/dev/zero", os.path.join(d, "config.json"))
