#!/usr/bin/env python3
"""Writes tests/data/optim_golden.safetensors: torch.optim updates of a few parameters of
golden_small.safetensors, for test_train.cpp. Two steps each, with the golden gradient
and then half of it: Adam (lr 1e-3, weight decay 0.01), AdamW (lr 1e-3, weight decay 0.1),
SGD (lr 0.1, momentum 0.9, weight decay 0.01). Run with /usr/bin/python3 (python3-torch)."""
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["conv_in.weight", "down.0.conv1.weight", "mid.1.qkv.weight", "conv_out.bias"]


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dtype = {"F32": torch.float32, "I64": torch.int64}[e["dtype"]]
        out[name] = torch.frombuffer(bytearray(data[b:end]), dtype=dtype).reshape(e["shape"])
    return out


def write(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        raw = tensors[name].contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    g = read(os.path.join(HERE, "golden_small.safetensors"))
    out = {}
    makers = {
        "adam": lambda p: torch.optim.Adam(p, lr=1e-3, weight_decay=0.01),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.1),
        "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    }
    for key, make in makers.items():
        params = [torch.nn.Parameter(g[n].clone()) for n in NAMES]
        opt = make(params)
        for scale in (1.0, 0.5):
            for p, n in zip(params, NAMES):
                p.grad = g["grad." + n] * scale
            opt.step()
        for p, n in zip(params, NAMES):
            out[key + "." + n] = p.detach()
    write(os.path.join(HERE, "optim_golden.safetensors"), out)


if __name__ == "__main__":
    main()
