"""CSD teacher against student, and the ablation of the number of negatives.

Default: the paper-size CSD network (32 blocks x 256 features, x4) at width 1.0 (teacher) and as the exported
width-0.25 student (a dense 64-feature network): active parameters, multiply-adds per LR pixel (convolutions
counted by ``torch.utils.flop_counter.FlopCounterMode`` on the real shapes, FLOPs / 2), and the time of one
256x256 LR tile at x4, fp32, on the CPU (and CUDA when there is one); the two networks run alternately, one
each per round after a warm-up, and the median of the rounds is reported. Set OMP_NUM_THREADS for the threads.

    python benchmarks/distill.py [--tile 256] [--rounds 3] [--warmup 1] [--no-cpu]

``--ablation``: trains the same small CSD (``--blocks 4 --feats 64``, batch 16, 12x12 LR patches, x4, T91,
fixed ``--steps``, Adam at ``--lr`` 1e-3 with a cosine schedule, all else equal) once per number of negatives K
in ``--ks`` (default 0 1 5 10; K = 0 is no contrastive term), each run in its own ``srtool distill`` process,
and prints the student's and the teacher's final Set5 x4 Y-PSNR, the median time per step (from metrics.csv)
and the process's peak resident memory
(``ru_maxrss`` of that child, from ``os.wait4``).

    python benchmarks/distill.py --ablation --steps 2000 --out runs/ablation_k [--ks 0 1 5 10]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sr_cli.models import CSDEDSR

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SCALE, WIDTH = 4, 0.25


def macs_per_pixel(model: nn.Module, size: int = 16) -> float:
    """Multiply-adds per LR pixel of one forward (every convolution, mean shifts included)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 2 / size**2


def _timer(model: nn.Module, x: torch.Tensor, device: torch.device, half: bool) -> Callable[[], float]:
    model = model.to(device).eval()
    x = x.to(device)

    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device.type, torch.float16, enabled=half):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) * 1000

    return run


def compare(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    teacher = CSDEDSR(SCALE)  # width 1.0
    student = CSDEDSR(SCALE, n_feats=int(teacher.n_feats * WIDTH))  # what --export-width 0.25 writes
    nets = {"teacher (width 1.0)": teacher, f"student (width {WIDTH:g})": student}
    params = {name: teacher.active_params(w) for name, w in zip(nets, (1.0, WIDTH))}
    macs = {name: macs_per_pixel(net) for name, net in nets.items()}
    print(f"CSD {len(teacher.body)} blocks x {teacher.n_feats} features, x{SCALE}; "
          f"{args.tile}x{args.tile} LR tile -> {args.tile * SCALE}x{args.tile * SCALE}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads", flush=True)
    rows = []
    targets = ([("cpu", False)] if args.cpu else []) + \
        ([("cuda", False), ("cuda", True)] if torch.cuda.is_available() else [])
    x = torch.rand(1, 3, args.tile, args.tile)
    for kind, half in targets:
        device = torch.device(kind)
        timers = {name: _timer(net, x, device, half) for name, net in nets.items()}
        for _ in range(args.warmup):
            for run in timers.values():
                run()
        times: dict[str, list[float]] = {name: [] for name in nets}
        for _ in range(args.rounds):
            for name, run in timers.items():
                times[name].append(run())
        label = f"{kind} {'fp16' if half else 'fp32'}"
        if kind == "cuda":
            label += f" ({torch.cuda.get_device_name()})"
        rows.append((label, {name: statistics.median(t) for name, t in times.items()}))
        print(f"  {label}: " + ", ".join(f"{name} {statistics.median(t):.1f} ms" for name, t in times.items()),
              flush=True)
    names = list(nets)
    print(f"\n| | {names[0]} | {names[1]} | ratio |\n|---|---|---|---|")
    print(f"| parameters (active) | {params[names[0]]:,} | {params[names[1]]:,} | "
          f"{params[names[0]] / params[names[1]]:.1f}x |")
    print(f"| multiply-adds per LR pixel | {macs[names[0]]:,.0f} | {macs[names[1]]:,.0f} | "
          f"{macs[names[0]] / macs[names[1]]:.1f}x |")
    for label, ms in rows:
        print(f"| {label} ms per {args.tile}x{args.tile} LR tile (median of {args.rounds}) | {ms[names[0]]:,.1f} | "
              f"{ms[names[1]]:,.1f} | {ms[names[0]] / ms[names[1]]:.1f}x |")


def _median_step_ms(metrics: Path) -> float:
    with metrics.open() as f:
        rates = [float(r["steps_per_s"]) for r in csv.DictReader(f) if r["steps_per_s"]]
    return 1000 / statistics.median(rates)


def ablation(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = ["distill", "--data", str(args.data), "--scale", str(SCALE), "--blocks", str(args.blocks),
              "--feats", str(args.feats), "--batch", str(args.batch), "--patch", str(args.patch),
              "--steps", str(args.steps), "--lr", str(args.lr), "--schedule", "cosine", "--val-every", str(args.steps),
              "--checkpoint-every", str(args.steps), "--log-every", str(max(1, args.steps // 20)),
              "--workers", str(args.workers), "--seed", str(args.seed), "--device", args.device,
              "--vgg-weights", str(args.vgg_weights), "--json"]
    print(f"srtool {' '.join(common[:-1])} --negatives K -o {out}/kK", flush=True)
    print("\n| K | student Set5 x4 Y-PSNR | teacher Y-PSNR | ms/step (median) | peak RSS (MiB) |\n"
          "|---|---|---|---|---|", flush=True)
    for k in args.ks:
        run = out / f"k{k}"
        log = out / f"k{k}.log"
        with log.open("w") as f:
            proc = subprocess.Popen([sys.executable, "-m", "sr_cli", *common, "--negatives", str(k), "-o", str(run)],
                                    stdout=subprocess.PIPE, stderr=f, text=True)
            summary_text = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            print(f"| {k} | failed (exit {proc.returncode}, see {log}) | | | |", flush=True)
            continue
        summary = json.loads(summary_text)
        print(f"| {k} | {summary['last_psnr']:.3f} | {summary['teacher_psnr']:.3f} | "
              f"{_median_step_ms(run / 'metrics.csv'):.0f} | {usage.ru_maxrss / 1024:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tile", type=int, default=256, help="LR tile size")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--no-cpu", dest="cpu", action="store_false", help="only the CUDA rows")
    ap.add_argument("--ablation", action="store_true", help="train once per K instead (see above)")
    ap.add_argument("--ks", type=int, nargs="+", default=[0, 1, 5, 10])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine schedule)")
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--feats", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=12)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", type=Path, default=SHARED / "train")
    ap.add_argument("--vgg-weights", type=Path, default=SHARED / "vgg19" / "vgg19_features_fp16.safetensors")
    ap.add_argument("--out", type=Path, default=Path("runs") / "ablation_negatives")
    args = ap.parse_args()
    if args.ablation:
        ablation(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
