#!/usr/bin/env python3
"""How the cost grows: ddpmkit beside PyTorch over batch, resolution and width.

Runs benchmarks/compare_torch.sh (alternating rounds, medians) at each point of three sweeps
of the reference U-Net (ch 32, mult 1,2,2, 2 blocks, attention at the smallest side):

  batch       1, 8, 64, 256                 (28x28, 1 channel)
  resolution  28, 32, 64 with 3 channels    (batch 64; attention at res / 4)
  width       ch 16, 32, 64                 (batch 64, 28x28; ch 32 is batch 64's point)

and writes OUT.csv (one row per point), OUT.md (the table) and OUT.svg (the ratios
ddpmkit / PyTorch of the train step, the sample step and the peak memory, as bars).

  benchmarks/sweep_torch.py [--rounds 3] [--steps 5] [--threads 2] [--out sweep]
                            [--only batch,resolution,width] [--ddpmkit build/ddpmkit]
"""
import argparse
import csv
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
METRICS = [("train_step_s", "train step"), ("sample_step_s", "sample step"), ("process_peak_rss_mb", "peak memory")]
COLOURS = {"train_step_s": "#3b75af", "sample_step_s": "#ef8636", "process_peak_rss_mb": "#519e3e"}


def points(only):
    """(sweep, label, batch, flags) for every point asked for, in order."""
    out = []
    if "batch" in only:
        out += [("batch", str(b), b, []) for b in (1, 8, 64, 256)]
    if "resolution" in only:
        out += [("resolution", f"{r}x{r}x3", 64, ["--res", str(r), "--in-ch", "3", "--attn", str(r // 4)]) for r in (28, 32, 64)]
    if "width" in only:
        out += [("width", f"ch {c}", 64, ["--ch", str(c)]) for c in (16, 32, 64)]
    return out


def measure(args, batch, flags):
    cmd = [os.path.join(HERE, "compare_torch.sh"), "--ddpmkit", args.ddpmkit, "--rounds", str(args.rounds), "--steps",
           str(args.steps), "--threads", str(args.threads), "--batch", str(batch), "--no-scaling"] + flags
    print("+ benchmarks/compare_torch.sh " + " ".join(cmd[1:]), flush=True)
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"sweep_torch.py: {' '.join(cmd)} failed:\n{run.stdout}{run.stderr}")
    print("\n".join(run.stdout.strip().splitlines()[-5:-1]), flush=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def write_markdown(rows, path, cpu, args):
    lines = [f"{cpu}, {args.threads} threads, medians of {args.rounds} alternated rounds of {args.steps} steps; "
             "ratio = ddpmkit / PyTorch (below 1: ddpmkit is faster or smaller).", "",
             "| sweep | point | params | train step (s) ddpmkit / PyTorch | ratio | sample step (s) ddpmkit / PyTorch | ratio "
             "| peak memory (MB) ddpmkit / PyTorch | ratio |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['sweep']} | {r['point']} | {r['params']:,} "
                     f"| {r['train_step_s_ddpmkit']:.3f} / {r['train_step_s_torch']:.3f} | {r['train_step_s_ratio']:.2f} "
                     f"| {r['sample_step_s_ddpmkit']:.3f} / {r['sample_step_s_torch']:.3f} | {r['sample_step_s_ratio']:.2f} "
                     f"| {r['process_peak_rss_mb_ddpmkit']:.0f} / {r['process_peak_rss_mb_torch']:.0f} "
                     f"| {r['process_peak_rss_mb_ratio']:.2f} |")
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


def write_svg(rows, path, cpu):
    """Three panels (one per sweep) of grouped bars, one group per point, with a line at parity."""
    sweeps = [s for s in ("batch", "resolution", "width") if any(r["sweep"] == s for r in rows)]
    top = max(1.2, max(r[m + "_ratio"] for r in rows for m, _ in METRICS) * 1.1)
    bar, gap, pad = 14, 16, 50  # bar width, gap between groups, panel margin
    plot_h, y0 = 260, 60        # plot height, its top
    widths = [pad + sum(1 for r in rows if r["sweep"] == s) * (3 * bar + gap) for s in sweeps]
    width = sum(widths) + 40
    height = y0 + plot_h + 70
    y = lambda v: y0 + plot_h * (1 - v / top)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">ddpmkit / PyTorch, reference U-Net and its variations (below 1: ddpmkit is faster or smaller)</text>',
           f'<text x="{width / 2}" y="34" text-anchor="middle" fill="#555">{cpu}, 2 threads</text>']
    legend_x = 40
    for m, label in METRICS:
        out.append(f'<rect x="{legend_x}" y="42" width="10" height="10" fill="{COLOURS[m]}"/>'
                   f'<text x="{legend_x + 14}" y="51">{label}</text>')
        legend_x += 110
    x = 40
    for s, w in zip(sweeps, widths):
        left = x + pad - 10
        for tick in [t / 4 for t in range(0, int(top * 4) + 1)]:
            out.append(f'<line x1="{left}" x2="{x + w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e5e5"/>'
                       f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">{tick:g}</text>')
        out.append(f'<line x1="{left}" x2="{x + w}" y1="{y(1):.1f}" y2="{y(1):.1f}" stroke="#b22" stroke-width="1.5"/>')
        gx = x + pad
        for r in (r for r in rows if r["sweep"] == s):
            for k, (m, _) in enumerate(METRICS):
                v = r[m + "_ratio"]
                out.append(f'<rect x="{gx + k * bar}" y="{y(v):.1f}" width="{bar - 2}" height="{y(0) - y(v):.1f}" fill="{COLOURS[m]}">'
                           f'<title>{s} {r["point"]}: {v:.2f}</title></rect>')
            out.append(f'<text x="{gx + 1.5 * bar}" y="{y(0) + 16:.1f}" text-anchor="middle">{r["point"]}</text>')
            gx += 3 * bar + gap
        out.append(f'<text x="{x + pad + (w - pad) / 2}" y="{y(0) + 40:.1f}" text-anchor="middle" font-size="13">{s}</text>')
        x += w
    out.append(f'<text x="{width - 10}" y="{y(1) - 4:.1f}" text-anchor="end" fill="#b22">PyTorch = 1</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="sweep", help="path prefix of the .csv, .md and .svg files")
    p.add_argument("--only", default="batch,resolution,width")
    p.add_argument("--ddpmkit", default=os.path.join(HERE, "..", "build", "ddpmkit"))
    args = p.parse_args()
    only = set(args.only.split(","))
    if not only <= {"batch", "resolution", "width"}:
        sys.exit(f"sweep_torch.py: --only takes batch, resolution, width, not {args.only}")

    rows, done, cpu = [], {}, ""
    for sweep, point, batch, flags in points(only):
        key = (batch, tuple(flags) if flags != ["--ch", "32"] else ())  # ch 32 is the reference: measured once
        if key not in done:
            done[key] = measure(args, batch, flags)
        summary = done[key]
        cpu = summary["cpu"]
        row = {"sweep": sweep, "point": point, "batch": batch, "flags": " ".join(flags), "params": summary["params"]}
        for m, _ in METRICS:
            for who in ("ddpmkit", "torch", "ratio"):
                row[f"{m}_{who}"] = summary[m][who]
        rows.append(row)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print("\n" + write_markdown(rows, args.out + ".md", cpu, args))
    write_svg(rows, args.out + ".svg", cpu)
    print(f"wrote {args.out}.csv, {args.out}.md, {args.out}.svg")


if __name__ == "__main__":
    main()
