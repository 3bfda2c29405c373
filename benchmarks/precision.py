"""One forward pass per precision and memory layout, side by side: fp32 and bf16, contiguous and channels_last.

Interleaved runs (A, B, C, D, A, B, ...), medians, ratios to fp32 contiguous; the CPU's flags are printed first.
Random weights (timing only: the layout and dtype decide the kernels, not the values).

    python benchmarks/precision.py [--models espcn:128 edsr:64] [--scale 4] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import torch

from sr_cli.device import cpu_has_native_bf16
from sr_cli.registry import get_spec

CONFIGS = [(torch.float32, False), (torch.float32, True), (torch.bfloat16, False), (torch.bfloat16, True)]


def cpu_flags() -> str:
    """The model name and the SIMD flags that decide the kernels (from lscpu)."""
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = [f for f in fields.get("Flags", "").split() if f.startswith(("avx2", "avx512", "amx"))]
    return f"{fields.get('Model name', '?').strip()}; {' '.join(flags)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["espcn:128", "edsr:64"], help="name:LR size")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_flags()}; torch {torch.__version__}, capability {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16 {cpu_has_native_bf16()}, {args.threads} threads")
    for item in args.models:
        name, size = item.split(":")
        spec = get_spec(name)
        base = spec.build(args.scale).eval()
        x = torch.rand(1, spec.channels, int(size), int(size))
        runs = {}
        for dtype, cl in CONFIGS:
            fmt = torch.channels_last if cl else torch.contiguous_format
            runs[(dtype, cl)] = (spec.build(args.scale).eval().to(dtype, memory_format=fmt),
                                 x.to(dtype).contiguous(memory_format=fmt))
            runs[(dtype, cl)][0].load_state_dict(base.state_dict())
        times: dict[tuple[torch.dtype, bool], list[float]] = {k: [] for k in runs}
        with torch.inference_mode():
            for model, xi in runs.values():  # warm-up: oneDNN builds its kernels on the first call
                model(xi)
            for _ in range(args.repeats):
                for key, (model, xi) in runs.items():
                    began = time.perf_counter()
                    model(xi)
                    times[key].append(time.perf_counter() - began)
        base_s = statistics.median(times[(torch.float32, False)])
        cells = [f"{'bf16' if d == torch.bfloat16 else 'fp32'}{' channels_last' if cl else ''} "
                 f"{base_s / statistics.median(times[(d, cl)]):.2f}x" for d, cl in CONFIGS]
        print(f"{name} x{args.scale} on {size}x{size} LR: fp32 {base_s * 1000:.0f} ms; " + ", ".join(cells))


if __name__ == "__main__":
    main()
