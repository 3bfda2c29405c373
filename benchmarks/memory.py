"""Peak memory and time of whole ``srtool upscale`` runs: the default (blocks under ``--max-memory``) against
``--tile 0`` (one pass), side by side.

Each run is its own process, which reports its own peak RSS (``VmHWM`` of its memory map; ``ru_maxrss`` would count
the parent's too, inherited through fork) as it exits; runs of one case are
interleaved (default, tile 0, default, ...) and the medians printed with the time ratio. Pictures: Set14 content
tiled to the size asked, written as PNG. ``--skip-tile0-above`` leaves out one-pass runs whose LR pixel count is
larger (one pass of EDSR x4 on 4000x4000 needs tens of GB).

    python benchmarks/memory.py [--cases espcn:768x512 edsr:768x512 espcn:3000x2000 ...] [--scale 4]
                                [--repeats 2] [--max-memory 1.5G] [--skip-tile0-above 6000000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peers import picture  # benchmarks/peers.py
from PIL import Image
from precision import cpu_flags  # benchmarks/precision.py

REPO = Path(__file__).resolve().parents[1]
PROBE = ("import re, sys\nfrom sr_cli.__main__ import main\nsys.argv = ['srtool'] + sys.argv[1:]\ntry:\n"
         "    main()\nexcept SystemExit as done:\n    code = done.code\n"
         "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1]\n"
         "print('PEAK', int(hwm) * 1024, code, file=sys.stderr)")


def run(args: list[str]) -> tuple[float, int]:
    """Seconds and peak RSS bytes of one ``srtool`` run in a fresh process."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - began
    _, rss, code = done.stderr.strip().splitlines()[-1].split()
    if code not in ("0", "None"):
        raise SystemExit(f"srtool {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds, int(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["espcn:768x512", "edsr:768x512", "espcn:3000x2000",
                                                   "edsr:3000x2000", "espcn:4000x4000", "edsr:4000x4000"])
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-memory", default="1.5G")
    ap.add_argument("--skip-tile0-above", type=int, default=6_000_000, help="LR pixels")
    args = ap.parse_args()
    print(f"CPU: {cpu_flags()}")
    print(f"x{args.scale}, --max-memory {args.max_memory} (cap = it + the 8-bit output picture); medians of "
          f"{args.repeats} interleaved runs; peak RSS of the srtool process")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            model, size = case.split(":")
            width, height = (int(v) for v in size.split("x"))
            source = Path(tmp, f"{size}.png")
            if not source.exists():
                Image.fromarray(picture(width, height, seed=3)).save(source)
            base = ["upscale", str(source), "-m", model, "-s", str(args.scale), "-o", str(Path(tmp, "out.png")),
                    "--overwrite"]
            configs = {"default": [*base, "--max-memory", args.max_memory]}
            if width * height <= args.skip_tile0_above:
                configs["tile 0"] = [*base, "--tile", "0"]
            results: dict[str, list[tuple[float, int]]] = {k: [] for k in configs}
            for _ in range(args.repeats):
                for key, cmd in configs.items():
                    results[key].append(run(cmd))
            output_mib = width * height * args.scale**2 * 3 / 2**20
            cells = []
            for key, runs in results.items():
                seconds = statistics.median(r[0] for r in runs)
                peak = statistics.median(r[1] for r in runs) / 2**20
                cells.append(f"{key}: {seconds:.1f} s, peak {peak:.0f} MiB")
            line = f"{model} {size} (output {output_mib:.0f} MiB): " + "; ".join(cells)
            if "tile 0" in results:
                ratio = statistics.median(r[0] for r in results["default"]) / \
                    statistics.median(r[0] for r in results["tile 0"])
                line += f"; time default / tile 0 = {ratio:.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
