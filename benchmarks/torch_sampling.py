#!/usr/bin/env python3
"""torch_sampling.py — PyTorch drawing samples from a ddpmkit checkpoint: the peer of `ddpmkit sample`.

    /usr/bin/python3 benchmarks/torch_sampling.py CHECKPOINT --sampler ddim --steps 50 --n 1000

Loads the EMA weights and the process (`process.betas`) of a checkpoint written by `ddpmkit
train` into torch_unet.py's U-Net (ddpmkit's parameter names are its state_dict's), checks that
the model is one this script knows (eps prediction, fixed variance, unconditional), then draws
--n samples in batches of --batch with DDIM (eta 0; Song, Meng & Ermon 2021, eq. 12) or
DPM-Solver++(2M) (Lu et al. 2022), on ddpmkit's timestep grid (uniform spacing) with x0_hat
clipped to [-1, 1], as `ddpmkit sample` does by default. Prints one JSON line: samples, steps,
seconds (the sampling loop, model loading excluded) and samples_per_s, and the samples' mean and
standard deviation (a sanity check: a trained model's samples look like its data).
"""
import argparse
import json
import os
import struct
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_unet import UNet  # noqa: E402

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = bytearray(data[base + begin:base + end])
        tensors[name] = torch.frombuffer(raw, dtype=DTYPES[info["dtype"]]).reshape(info["shape"]) if raw else \
            torch.zeros(info["shape"], dtype=DTYPES[info["dtype"]])
    return tensors, metadata


def timestep_grid(T, steps):
    """ddpmkit's uniform grid (diffusion/samplers.hpp, timestep_grid): steps timesteps from T-1 down to 0."""
    if steps == 1:
        return [T - 1]
    grid = []
    for k in range(steps):
        target = k / (steps - 1) * (T - 1)
        lo = 0 if k == 0 else grid[-1] + 1
        grid.append(min(max(int(target + 0.5), lo), T - steps + k))  # llround of a non-negative value
    grid[-1] = T - 1
    return grid[::-1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("--sampler", choices=("ddim", "dpm"), default="dpm")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    tensors, meta = read_safetensors(args.checkpoint)
    if meta.get("kind") != "ddpmkit-checkpoint":
        sys.exit(f"{args.checkpoint}: not a ddpmkit training checkpoint")
    for key, value in {"output": "eps", "num_classes": "0", "cond_ch": "0", "heads": "1"}.items():
        if meta.get(key, value) != value:
            sys.exit(f"{args.checkpoint}: {key} = {meta[key]}; this script samples models with {key} = {value} only")
    if meta.get("variance") == "learned":
        sys.exit(f"{args.checkpoint}: a learned variance; this script samples fixed-variance models only")
    in_ch, res = int(meta["in_ch"]), int(meta["res"])
    model = UNet(in_ch=in_ch, ch=int(meta["ch"]), mult=tuple(int(m) for m in meta["mult"].split(",")),
                 blocks=int(meta["blocks"]), attn_res=tuple(int(a) for a in meta["attn"].split(",") if a),
                 res=res, groups=int(meta["groups"]))
    state = {name[len("ema."):]: t.to(torch.float32) for name, t in tensors.items()
             if name.startswith("ema.") and name != "ema.updates"}
    model.load_state_dict(state)
    model.eval()
    betas = tensors["process.betas"].to(torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    grid = timestep_grid(len(betas), args.steps)

    def x0_and_eps(x, t):
        """x0_hat clipped to [-1, 1], and the eps_hat that goes with it (as ddpmkit's p_mean_variance)."""
        a = float(abar[t])
        eps = model(x, torch.full((x.shape[0],), t, dtype=torch.int64))
        x0 = ((x - (1 - a) ** 0.5 * eps) / a ** 0.5).clamp(-1, 1)
        return x0, (x - a ** 0.5 * x0) / (1 - a) ** 0.5

    def ddim(x):
        for i, t in enumerate(grid):
            x0, eps = x0_and_eps(x, t)
            if i + 1 == len(grid):
                return x0
            a_prev = float(abar[grid[i + 1]])
            x = a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps

    def dpm(x):
        sigma = lambda t: (1 - float(abar[t])) ** 0.5
        lam = lambda t: torch.log(abar[t].sqrt() / (1 - abar[t]).sqrt()).item()
        x0_prev, h_prev = None, 0.0
        for i, t in enumerate(grid):
            x0, _ = x0_and_eps(x, t)
            if i + 1 == len(grid):
                return x0
            nxt = grid[i + 1]
            h = lam(nxt) - lam(t)
            first_order_final = i + 2 == len(grid) and (nxt == 0 or len(grid) < 15)
            D = x0
            if x0_prev is not None and not first_order_final:
                r = h_prev / h
                D = (1 + 0.5 / r) * x0 - (0.5 / r) * x0_prev
            x0_prev, h_prev = x0, h
            x = (sigma(nxt) / sigma(t)) * x - (float(abar[nxt]) ** 0.5 * torch.expm1(torch.tensor(-h)).item()) * D

    sample = ddim if args.sampler == "ddim" else dpm
    outs = []
    start = time.perf_counter()
    with torch.no_grad():
        for b0 in range(0, args.n, args.batch):
            outs.append(sample(torch.randn(min(args.batch, args.n - b0), in_ch, res, res)))
    seconds = time.perf_counter() - start
    samples = torch.cat(outs)
    print(json.dumps({"samples": args.n, "sampler": args.sampler, "steps": args.steps, "batch": args.batch,
                      "threads": args.threads, "seconds": round(seconds, 3), "samples_per_s": round(args.n / seconds, 2),
                      "mean": round(samples.mean().item(), 4), "std": round(samples.std().item(), 4),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
