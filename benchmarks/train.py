"""Training throughput of ``srtool train``: steps/s, GFLOP/s and the share of each step spent waiting for data, for
EDSR (baseline) x2 (EDSR's recipe: batch 16, 48x48 LR patches, bicubic) and the real-world compact x4 (64 features,
16 convolutions; batch 16, 32x32 LR patches, the realesrgan degradation made per patch in the DataLoader worker),
fp32 against the ``auto`` training precision on this machine (the shared rule of ``sr_cli/device.py``: bf16 +
channels_last where the CPU computes bf16 natively).

Each (case, precision) gets its own Trainer on the same data (T91 from ../shared/data/train by default, one
DataLoader worker, as ``srtool train --workers 1``); after warm-up steps the rounds alternate the precisions
(A, B, A, B), so a busy machine affects them alike, and medians are printed. A step's time is the wait for its
batch (``next`` on the loader) plus ``train_step`` (forward, loss, backward, optimiser, EMA). GFLOP/s counts
3x the forward's FLOPs (forward + backward), as torch's FlopCounterMode counts a forward of the batch.

    python benchmarks/train.py [--cases edsr:2 compact:4] [--steps 3] [--rounds 3] [--precisions fp32 auto]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from precision import cpu_flags  # benchmarks/precision.py
from torch.utils.flop_counter import FlopCounterMode

from sr_cli.device import cpu_has_native_bf16, precision_name
from sr_cli.train.config import TrainConfig
from sr_cli.train.loop import Trainer

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "train"
SET5 = REPO / "sr_cli" / "data" / "Set5"
# name: (model, scale, batch, LR patch, degradation, network options)
CASES = {
    "edsr:2": ("edsr", 2, 16, 48, "bicubic", {}),
    "compact:4": ("compact", 4, 16, 32, "realesrgan", {"num_feat": 64, "num_conv": 16}),
}


def step_flops(trainer: Trainer, lr: torch.Tensor) -> float:
    """FLOPs of one training step on the batch ``lr``: 3x a forward's (the backward costs about twice it)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        trainer.model(lr.float())
    return 3.0 * counter.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--steps", type=int, default=3, help="timed steps per round")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "auto"], choices=["fp32", "auto", "bf16", "fp16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()

    print(f"CPU flags: {cpu_flags()}; native bf16: {cpu_has_native_bf16()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; device {args.device}; medians of {args.rounds} interleaved rounds "
          f"of {args.steps} steps", flush=True)
    print(f"{'case':<12}{'precision':<14}{'s/step':>8}{'steps/s':>9}{'GFLOP/s':>9}{'data wait':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            model, scale, batch, patch, degradation, options = CASES[case]
            runs = {}
            for name in args.precisions:
                config = TrainConfig(model=model, scale=scale, data=[str(args.data)], model_options=options,
                                     batch=batch, patch=patch, degradation=degradation, steps=10**9, precision=name,
                                     device=args.device, workers=1, val_data=str(SET5))
                trainer = Trainer(config, Path(tmp) / f"{model}_{name}")
                trainer.model.train()
                batches = trainer._batches()
                for _ in range(args.warmup):
                    trainer.train_step(*next(batches))
                lr, _ = next(batches)
                runs[name] = (trainer, batches, step_flops(trainer, lr))
            waits: dict[str, list[float]] = {name: [] for name in runs}
            totals: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.rounds):
                for name, (trainer, batches, _) in runs.items():
                    wait = 0.0
                    start = time.perf_counter()
                    for _ in range(args.steps):
                        fetched = time.perf_counter()
                        lr, hr = next(batches)
                        wait += time.perf_counter() - fetched
                        trainer.train_step(lr, hr)
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    totals[name].append((time.perf_counter() - start) / args.steps)
                    waits[name].append(wait / args.steps)
            for name, (trainer, batches, flops) in runs.items():
                batches.close()
                seconds = statistics.median(totals[name])
                share = statistics.median(w / t for w, t in zip(waits[name], totals[name], strict=True))
                label = f"{name} ({precision_name(trainer.amp_dtype)})" if name == "auto" else name
                print(f"{case:<12}{label:<14}{seconds:>8.3f}{1 / seconds:>9.3f}{flops / seconds / 1e9:>9.1f}"
                      f"{share:>10.1%}", flush=True)
            if "fp32" in runs:
                base = statistics.median(totals["fp32"])
                print(f"{case:<12}speed vs fp32: " + "   ".join(
                    f"{name} {base / statistics.median(totals[name]):.2f}x" for name in runs if name != "fp32"))


if __name__ == "__main__":
    main()
