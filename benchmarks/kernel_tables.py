#!/usr/bin/env python3
"""kernel_tables.py — bench_kernels' JSON as the README's Markdown tables.

    OMP_NUM_THREADS=2 ./build/benchmarks/bench_kernels --benchmark_repetitions=3 \\
        --benchmark_format=json > kernels.json
    python3 benchmarks/kernel_tables.py kernels.json

Each figure is the median of the repetitions (Google Benchmark's median aggregate when the run
has one). FLOPS figures are also given as a share of fma_peak, the chip's measured FMA peak on
the same threads (the convolutions count the multiply-adds of a direct convolution, so Winograd
can pass 100 %). A benchmark whose check failed is listed with its error, and the script exits 1.
"""
import json
import statistics
import sys


def load(path):
    with open(path) as f:
        data = json.load(f)
    runs, errors = {}, []
    aggregated = any(b.get("run_type") == "aggregate" for b in data["benchmarks"])
    for b in data["benchmarks"]:
        name = b.get("run_name", b["name"])
        if b.get("error_occurred"):
            errors.append((name, b.get("error_message", "")))
            continue
        if aggregated and b.get("aggregate_name") != "median":
            continue
        if not aggregated and b.get("run_type", "iteration") != "iteration":
            continue
        runs.setdefault(name, []).append(b)
    figures = {}
    for name, bs in runs.items():
        parts = [p for p in name.split("/") if p != "real_time"]
        family = "/".join(p for p in parts if ":" not in p)
        args = tuple(int(p.split(":")[1]) for p in parts if ":" in p)
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[bs[0]["time_unit"]]
        figures[(family, args)] = {
            "seconds": statistics.median(b["real_time"] for b in bs) * scale,
            "flops": statistics.median(b["FLOPS"] for b in bs) if "FLOPS" in bs[0] else None,
            "bytes": statistics.median(b["bytes"] for b in bs) if "bytes" in bs[0] else None,
            "images": statistics.median(b["images"] for b in bs) if "images" in bs[0] else None,
        }
    return data.get("context", {}), figures, errors


def milliseconds(seconds):
    """A time in ms with 3 decimals, or 3 significant digits below 0.1 ms (never 0.000)."""
    ms = seconds * 1e3
    return f"{ms:.3f} ms" if ms >= 0.1 else f"{ms:.3g} ms"


def rate(f):
    """A figure's time and rate, as a table cell."""
    if not f:
        return "–"
    if f["flops"]:
        return f"{milliseconds(f['seconds'])}, {f['flops'] / 1e9:.0f} GFLOP/s"
    if f["bytes"]:
        return f"{milliseconds(f['seconds'])}, {f['bytes'] / 1e9:.1f} GB/s"
    if f["images"]:
        return f"{milliseconds(f['seconds'])}, {f['images']:.0f} images/s"
    return milliseconds(f["seconds"])


def speed_up(ours, ref):
    """By rate when both have one (the layers' reference runs a smaller batch), else by time."""
    for key in ("flops", "bytes", "images"):
        if ours[key] and ref[key]:
            return ours[key] / ref[key]
    return ref["seconds"] / ours["seconds"]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    context, fig, errors = load(sys.argv[1])
    get = lambda family, args=(): fig.get((family, tuple(args)))
    gflops = lambda f: f"{f['flops'] / 1e9:.0f}" if f else "–"
    peak = get("fma_peak")
    share = lambda f: f" ({100 * f['flops'] / peak['flops']:.0f} %)" if f and peak else ""

    print(f"Machine: {context.get('host_name', '?')}, {context.get('num_cpus', '?')} CPUs at "
          f"{context.get('mhz_per_cpu', '?')} MHz; ddpmkit kernels {context.get('ddpmkit_arch', '?')}, "
          f"{context.get('threads', '?')} threads.")
    if peak:
        print(f"\nFMA peak (registers only, every thread): {peak['flops'] / 1e9:.0f} GFLOP/s.")

    kinds = (("conv3x3", "3x3 convolution (Winograd), C -> O at H x W", "forward: ours (im2col)"),
             ("conv1x1", "1x1 convolution, C -> O at H x W", "forward"),
             ("conv3x3s2", "3x3 convolution, stride 2, C -> O from H x W", "forward"))
    for prefix, title, first in kinds:
        convs = sorted({a for (fam, a) in fig if fam == f"{prefix}_fwd/ours"}, key=lambda a: (-a[2], a[0]))
        if not convs:
            continue
        print(f"\n| {title} | {first} | input gradient | weight gradient |")
        print("| --- | --- | --- | --- |")
        for a in convs:
            cells = []
            for pas in ("fwd", "bwd_data", "bwd_weight"):
                ours, im2col = get(f"{prefix}_{pas}/ours", a), get(f"{prefix}_{pas}/im2col", a)
                cells.append(f"{gflops(ours)}{share(ours)}" + (f" ({gflops(im2col)})" if im2col else ""))
            print(f"| {a[0]} -> {a[1]} at {a[2]}x{a[2]} | " + " | ".join(cells) + " |")

    gemms = [a for (fam, a) in fig if fam == "gemm/ours"]
    if gemms:
        print("\n| GEMM M x N x K | ddpmkit GFLOP/s | Eigen | ratio |")
        print("| --- | --- | --- | --- |")
        for a in gemms:
            ours, eigen = get("gemm/ours", a), get("gemm/eigen", a)
            ratio = f"{ours['flops'] / eigen['flops']:.2f}" if eigen else "–"
            print(f"| {a[0]} x {a[1]} x {a[2]} | {gflops(ours)}{share(ours)} | {gflops(eigen)} | {ratio} |")

    pairs = sorted({(fam[: -len("/scalar")], a) for (fam, a) in fig if fam.endswith("/scalar")})
    if pairs:
        print("\n| kernel (shape) | ddpmkit | scalar reference | speed-up |")
        print("| --- | --- | --- | --- |")
        for base, a in pairs:
            ref = get(f"{base}/scalar", a)
            ours, shape = get(f"{base}/ours", a) or get(base, a), "/".join(map(str, a))
            others = [b for (fam, b) in fig if fam == f"{base}/ours"]
            if not ours and len(others) == 1:  # a layer: ours at batch 64, the reference at a smaller one
                ours, shape = get(f"{base}/ours", others[0]), f"batch {others[0][0]}, reference {a[0]}"
            speed = f"{speed_up(ours, ref):.1f}x" if ours else "–"
            print(f"| {base}{' (' + shape + ')' if shape else ''} | {rate(ours)} | {rate(ref)} | {speed} |")

    if errors:
        print("\nFailed checks:")
        for name, message in errors:
            print(f"- {name}: {message}")
        sys.exit(1)


if __name__ == "__main__":
    main()
