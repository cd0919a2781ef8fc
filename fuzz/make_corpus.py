#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into fuzz/corpus/<target>/: a few valid minimal
inputs and a few near-valid ones (one rule broken), a few KB per target. Deterministic: run
it again and nothing changes (gzip without a time stamp). python3 fuzz/make_corpus.py"""
import gzip
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# ---------------------------------------------------------------- JSON
HEADER = ('{"__metadata__":{"format":"pt","ch":"16"},'
          '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
          '"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]},'
          '"c":{"dtype":"F64","shape":[1,0,3],"data_offsets":[16,16]}}')
put("json", "values.json", '{"s":"q\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00 \xc3\xa9","n":[0,18446744073709551615,'
    '-1,1.5e3,1E-2,-0.0,1e-400],"t":true,"f":false,"z":null,"e":{},"a":[[]]}'.encode("latin-1"))
put("json", "header.json", HEADER)
put("json", "nested.json", "[" * 20 + "1" + "]" * 20)
put("json", "trailing_comma.json", '{"a":[1,2,],}')
put("json", "bad_surrogate.json", '["\\ud800x", "\\udc00"]')
put("json", "big_numbers.json", '[18446744073709551616, 1e999, -1e-999, 0.1e400, 01]')

# ---------------------------------------------------------------- safetensors


def safetensors(header, data=b"", pad=True):
    h = header.encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


DATA = struct.pack("<2f", 1.5, -2.0) + struct.pack("<q", 42)
put("safetensors", "three_tensors.safetensors", safetensors(HEADER, DATA))
CRCS = ",".join("%08x" % zlib.crc32(d) for d in (DATA[:8], DATA[8:], b""))  # a, b, c
put("safetensors", "checksums.safetensors", safetensors(HEADER.replace('"ch":"16"', '"ddpmkit.crc32":"%s"' % CRCS), DATA))
put("safetensors", "bad_checksum.safetensors", safetensors(HEADER.replace('"ch":"16"', '"ddpmkit.crc32":"00000000,1"'), DATA))
put("safetensors", "empty.safetensors", safetensors('{"__metadata__":{"format":"pt"}}'))
put("safetensors", "bare.safetensors", safetensors("{}", pad=False))
put("safetensors", "gap.safetensors", safetensors(
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
    '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', bytes(12)))
put("safetensors", "overflow.safetensors", safetensors(
    '{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'))
put("safetensors", "header_too_long.safetensors", struct.pack("<Q", 1000) + b"{}")
# Found by fuzz_safetensors: 2^32 x 42949672 x 0 elements of F64 passed the 64-bit byte check,
# then Tensor's 2^48-element limit threw std::length_error from get().
put("safetensors", "above_2_48_elements.safetensors", safetensors(
    '{"w":{"dtype":"F64","shape":[4294967296,42949672,0],"data_offsets":[0,0]}}'))

# ---------------------------------------------------------------- IDX


def idx(dims, data, dtype=0x08):
    return bytes([0, 0, dtype, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


IMAGES = idx([2, 3, 4], range(24))
LABELS = idx([5], [3, 1, 4, 1, 5])
for target in ("idx", "idx_gzip"):
    put(target, "images.idx", IMAGES)
    put(target, "labels.idx", LABELS)
    put(target, "empty.idx", idx([0, 28, 28], []))
    put(target, "short.idx", idx([2, 3], range(5)))
    put(target, "float.idx", idx([1], [0, 0, 0, 0], 0x0D))
    put(target, "huge.idx", idx([65536, 65536], range(8)))
put("idx", "images.idx.gz", gz(IMAGES))
put("idx", "two_members.gz", gz(IMAGES[:10]) + gz(IMAGES[10:]))
put("idx", "extra.gz", gz(LABELS) + gz(bytes(4000)))
put("idx", "truncated.gz", gz(IMAGES)[:25])

# ---------------------------------------------------------------- CIFAR-10


def record(label, seed):
    return bytes([label]) + bytes((seed + k) % 256 for k in range(3072))


put("cifar", "one_record.bin", record(3, 0))
put("cifar", "two_records.bin.gz", gz(record(0, 1) + record(9, 2)))
put("cifar", "label_10.bin", record(10, 3))
put("cifar", "one_byte_more.bin", record(1, 4) + b"\x00")

# ---------------------------------------------------------------- checkpoint metadata
# What TrainConfig::to_metadata writes for the defaults of the ddpmkit program.
DEFAULT = {
    "attn": "7", "batch": "64", "blocks": "2", "ch": "16", "cond_ch": "0", "data": "Fashion-MNIST (train)",
    "dropout": "0.000000", "ema_decay": "0.995000", "flip": "0", "grad_clip": "1.000000", "groups": "8",
    "heads": "1", "in_ch": "1", "kind": "ddpmkit-checkpoint", "label_dropout": "0.100000", "loss": "simple",
    "lr": "0.001000", "lr_decay": "0", "min_snr_gamma": "0.000000", "mult": "1,2,2", "num_classes": "0",
    "out_ch": "1", "output": "eps", "res": "28", "schedule": "linear", "seed": "0", "superres_factor": "0",
    "timestep_sampler": "uniform", "timesteps": "1000", "variance": "large", "warmup": "200",
}


def lines(m):
    return "".join(f"{k}={v}\n" for k, v in sorted(m.items()))


put("checkpoint_metadata", "default.txt", lines(DEFAULT))
put("checkpoint_metadata", "conditional.txt", lines({**DEFAULT, "num_classes": "10", "in_ch": "3", "out_ch": "6",
                                                      "variance": "learned", "loss": "hybrid", "mult": "1,2",
                                                      "res": "32", "attn": "16,8", "heads": "4"}))
put("checkpoint_metadata", "odd_ch.txt", lines({**DEFAULT, "ch": "15"}))
put("checkpoint_metadata", "trailing_text.txt", lines({**DEFAULT, "timesteps": "12abc"}))
put("checkpoint_metadata", "not_a_checkpoint.txt", lines({k: v for k, v in DEFAULT.items() if k != "kind"}))

# ---------------------------------------------------------------- pictures (first byte: channels)


def png(width, height, color_type, rows, interlace=0):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    if interlace:  # Adam7: seven sub-pictures one after the other (PNG specification, 8.2)
        k = len(rows[0]) // width
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        rows = [[v for x in range(x0, width, dx) for v in rows[y][k * x:k * x + k]]
                for x0, y0, dx, dy in passes for y in range(y0, height, dy) if x0 < width]
    raw = b"".join(b"\x00" + bytes(r) for r in rows)  # filter 0 on every row
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, interlace))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


GRAY = png(4, 3, 0, [[(16 * y + 40 * x) % 256 for x in range(4)] for y in range(3)])
RGB = png(3, 2, 2, [[(y * 50 + k * 20) % 256 for k in range(9)] for y in range(2)])
put("image", "gray_as_gray.png", b"\x00" + GRAY)
put("image", "gray_as_rgb.png", b"\x01" + GRAY)
put("image", "rgb_as_gray.png", b"\x00" + RGB)
put("image", "rgb_as_rgb.png", b"\x01" + RGB)
put("image", "bad_crc.png", b"\x01" + RGB[:-5] + b"\x00" + RGB[-4:])
put("image", "truncated.png", b"\x00" + GRAY[:40])
put("image", "pgm.pgm", b"\x00P5\n3 2\n255\n" + bytes(range(0, 240, 40)))
put("image", "pgm16_comment.pgm", b"\x01P5 # two bytes a sample\n2 1\n1000\n" + bytes([1, 244, 3, 232]))
put("image", "ppm.ppm", b"\x00P6\n2 1\n255\n" + bytes([255, 0, 0, 0, 255, 51]))
put("image", "interlaced_rgb.png", b"\x01" + png(5, 5, 2, [[(x * 13 + y) % 256 for x in range(15)] for y in range(5)], 1))
