"""Upscale throughput and peak memory: tiled vs untiled, fp32 vs bf16 vs auto precision, side by side.

Each configuration runs in its own process (so peak RSS is its own), configurations interleaved over
``--repeats`` rounds; the script prints medians and the ratios. Learned models use their shipped weights when
present, otherwise random weights FOR TIMING ONLY (labelled "random" in the table); the bf16 quality change is
reported only with real weights, on Set5.

    python benchmarks/upscale.py [--size 1024] [--scale 4] [--models bicubic espcn edsr compact] [--repeats 3] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from sr_cli.engine import Engine
from sr_cli.registry import get_spec
from sr_cli.weights import load_model
from sr_cli.errors import WeightsError
name, scale, size, tile, prec = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
spec = get_spec(name)
try:
    model, source = load_model(spec, scale), "shipped" if spec.learned else "none"
except WeightsError:
    torch.manual_seed(0); model, source = spec.build(scale).eval(), "random"
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[prec]
x = torch.rand(1, spec.channels, size, size, generator=torch.Generator().manual_seed(0))
engine = Engine(model, scale, spec.overlap(scale), torch.device("cpu"), dtype, tile=tile)
engine.run(x[..., :64, :64])  # warm-up
t = time.perf_counter(); engine.run(x); dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "mpx_s": (size * scale) ** 2 / 1e6 / dt, "source": source,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(name: str, scale: int, size: int, tile: int, prec: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(scale), str(size), str(tile), prec],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--models", nargs="+", default=["bicubic", "espcn", "edsr", "compact"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bf16", action="store_true", help="also time bf16 (when auto is fp32)")
    args = ap.parse_args()
    import torch
    from precision import cpu_flags  # benchmarks/precision.py

    from sr_cli.device import precision_name, select_precision

    auto = precision_name(select_precision("auto", torch.device("cpu")))
    configs = [("untiled", 0, "fp32"), ("tiled", args.tile, "fp32")]
    if auto != "fp32" or args.bf16:
        configs.append(("tiled", args.tile, "bf16"))
    print(f"CPU: {cpu_flags()}")
    print(f"input {args.size}x{args.size} at x{args.scale}, CPU, tile {args.tile}, auto precision on CPU = {auto}, "
          f"median of {args.repeats} interleaved runs; MP/s = output megapixels per second")
    print(f"{'model':10} {'config':14} {'weights':8} {'MP/s':>8} {'s':>7} {'peak MiB':>9}")
    for name in args.models:
        results: dict[tuple[str, str], list[dict]] = {(c, p): [] for c, _, p in configs}
        for _ in range(args.repeats):
            for label, tile, prec in configs:
                results[(label, prec)].append(run(name, args.scale, args.size, tile, prec))
        med = {k: {f: statistics.median(r[f] for r in v) for f in ("mpx_s", "seconds", "peak_mib")}
               for k, v in results.items()}
        source = results[("tiled", "fp32")][0]["source"]
        for (label, prec), m in med.items():
            print(f"{name:10} {label + ' ' + prec:14} {source:8} {m['mpx_s']:8.2f} {m['seconds']:7.2f} "
                  f"{m['peak_mib']:9.0f}", flush=True)
        t, u, a = med[("tiled", "fp32")], med[("untiled", "fp32")], med[("tiled", auto)]
        line = (f"{name:10} ratios: tiled/untiled speed {t['mpx_s'] / u['mpx_s']:.2f}x, "
                f"peak memory {t['peak_mib'] / u['peak_mib']:.2f}x; auto({auto})/fp32 speed {a['mpx_s'] / t['mpx_s']:.2f}x")
        if ("tiled", "bf16") in med:
            line += f"; bf16/fp32 speed {med[('tiled', 'bf16')]['mpx_s'] / t['mpx_s']:.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
