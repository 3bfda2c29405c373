"""Training throughput of ``srtool train``: steps per second for EDSR (baseline) x2, batch 16, 48x48 LR patches
(EDSR's recipe), fp32 against the ``auto`` training precision on this machine (``--precisions fp32 auto bf16``
adds forced bf16: on a CPU without native bf16 it is several times slower than fp32, which is why auto avoids it).

Each precision gets a fresh Trainer on the same data (T91 from ../shared/data/train by default, one DataLoader
worker); the full step is timed (batch fetch, forward, loss, backward, Adam), after warm-up steps, in rounds that
alternate the precisions so that a busy machine affects them alike. The median of the rounds is reported.

    python benchmarks/train.py [--model edsr] [--scale 2] [--batch 16] [--patch 48] [--steps 2] [--rounds 1]
                               [--precisions fp32 auto]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sr_cli.device import precision_name
from sr_cli.train.config import TrainConfig
from sr_cli.train.loop import Trainer
from sr_cli.device import cpu_has_native_bf16

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="edsr")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=48, help="LR patch size")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per round")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "auto"], choices=["fp32", "auto", "bf16", "fp16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()

    precisions = list(dict.fromkeys(["fp32", "auto", *args.precisions]))
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {}
        for name in precisions:
            config = TrainConfig(model=args.model, scale=args.scale, data=[str(args.data)], batch=args.batch,
                                 patch=args.patch, steps=10**9, precision=name, device=args.device, workers=1,
                                 val_data=str(Path(__file__).resolve().parents[1] / "sr_cli" / "data" / "Set5"))
            trainer = Trainer(config, Path(tmp) / name)
            trainer.model.train()
            trainers[name] = (trainer, trainer._batches())
        resolved = {name: precision_name(t.amp_dtype) for name, (t, _) in trainers.items()}
        print(f"{args.model} x{args.scale}, batch {args.batch}, {args.patch}x{args.patch} LR patches, "
              f"device {args.device}, {torch.get_num_threads()} threads; auto = {resolved['auto']} "
              f"(native bf16 on this CPU: {cpu_has_native_bf16()})", flush=True)
        for trainer, batches in trainers.values():
            for _ in range(args.warmup):
                trainer.train_step(*next(batches))
        times: dict[str, list[float]] = {name: [] for name in precisions}
        for _ in range(args.rounds):
            for name, (trainer, batches) in trainers.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    trainer.train_step(*next(batches))
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times[name].append((time.perf_counter() - start) / args.steps)
        for _, batches in trainers.values():
            batches.close()

    print(f"{'precision':<12}{'s/step':>10}{'steps/s':>10}")
    rate = {}
    for name in precisions:
        seconds = statistics.median(times[name])
        rate[name] = 1 / seconds
        print(f"{name + (' (' + resolved[name] + ')' if name == 'auto' else ''):<12}{seconds:>10.3f}"
              f"{rate[name]:>10.3f}")
    print("speed ratio vs fp32: " + "   ".join(f"{name} {rate[name] / rate['fp32']:.2f}x" for name in precisions[1:]))


if __name__ == "__main__":
    main()
