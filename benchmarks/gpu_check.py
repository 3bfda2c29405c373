"""Every CUDA path of srtool in one short run, one table: run it on the GPU machine when one is lent.

Checks, each a row (status ok / FAIL, and what was measured):

- device: name, compute capability, memory;
- auto tile: ``Engine.auto_tile`` sized from ``torch.cuda.mem_get_info``;
- fp16 redo: a model that overflows fp16 on some tiles; the engine redoes exactly those in fp32;
- OOM halving: EDSR on a whole 2048x2048 picture with the process capped to a sliver of the card
  (``set_per_process_memory_fraction``): the engine halves batch and tile until it fits, output equal to a tiled run;
- channels_last + bf16 and fp16: ``Upscaler`` in each precision, layout and dtype as chosen, Y-PSNR against fp32;
- inference: EDSR, ESPCN and compact x4 in auto precision, output MP/s and achieved conv TFLOP/s against the
  roofline (a large 3x3 convolution's TFLOP/s in the same dtype and layout, measured in the same run);
- training: 30 bf16 steps of ``Trainer`` (espcn x2 on the test pictures), steps/s and a finite, falling loss.

``--dry-run`` runs the same code on the CPU with tiny sizes (the CUDA-only parts say so): the test suite runs it,
so the script cannot rot between GPU loans. Random weights where no shipped file exists (timing only).

    python benchmarks/gpu_check.py [--dry-run] [--device cuda]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sr_cli.engine import Engine
from sr_cli.metrics import psnr
from sr_cli.pipeline import Upscaler
from sr_cli.registry import get_spec

Row = tuple[str, bool, str]


class Overflows(nn.Module):
    """Identity upscaler (nearest) whose output is scaled by 1e6 where the input is above 0.99: inf in fp16."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.ones(1))  # learned-looking, so the engine keeps the asked precision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big = torch.where(x > 0.99, x * 1e6, x) * self.weight
        return nn.functional.interpolate(big, scale_factor=self.scale, mode="nearest") / torch.where(
            nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest") > 0.99, 1e6, 1.0).to(x.dtype)


def _timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn`` after one warm-up, synchronising CUDA."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - began)
    return sorted(times)[len(times) // 2]


def _conv_flops(model: nn.Module, x: torch.Tensor) -> float:
    """FLOPs (2 per multiply-add) of the model's convolutions on ``x``, counted by hooks on one pass."""
    total = 0.0

    def hook(module: nn.Module, _: object, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
            total += 2.0 * out.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        model(x)
    for h in handles:
        h.remove()
    return total


def check_device(device: torch.device) -> Row:
    if device.type != "cuda":
        return "device", True, f"CPU dry run ({torch.get_num_threads()} threads): the CUDA rows run on CPU, tiny"
    p = torch.cuda.get_device_properties(device)
    return "device", True, f"{p.name}, capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB"


def check_auto_tile(device: torch.device) -> Row:
    spec = get_spec("edsr")
    engine = Engine(spec.build(4).eval(), 4, spec.overlap(4), device, torch.float32)
    tile, batch = engine.auto_tile(3)
    source = "torch.cuda.mem_get_info" if device.type == "cuda" else "the memory budget and the measured footprint"
    return "auto tile", tile >= 32 and batch >= 1, f"edsr x4: tile {tile}, batch {batch} from {source}"


def check_fp16_redo(device: torch.device, size: int) -> Row:
    torch.manual_seed(0)
    x = torch.rand(1, 3, size, size) * 0.98
    x[..., : size // 4, : size // 4] = 1.0  # one corner overflows fp16
    model = Overflows(2)
    engine = Engine(model, 2, 0, device, torch.float16, tile=size // 4, batch_size=4)
    out = engine.run(x)
    ref = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    ok = engine.redone_tiles >= 1 and bool(torch.isfinite(out).all()) and (out - ref).abs().max().item() < 1e-2
    return "fp16 redo", ok, f"{engine.redone_tiles} of 16 tiles redone in fp32; output finite, equal to the input"


def check_oom_halving(device: torch.device, size: int) -> Row:
    spec = get_spec("edsr")
    torch.manual_seed(0)
    model = spec.build(2, n_blocks=4).eval()
    x = torch.rand(1, 3, size, size)
    if device.type != "cuda":
        return "OOM halving", True, "CUDA only (needs a real device's allocator): skipped in the dry run"
    torch.cuda.empty_cache()
    free, total = torch.cuda.mem_get_info(device)
    torch.cuda.set_per_process_memory_fraction(2.0 * 2**30 / total, device)  # 2 GiB of the card
    try:
        engine = Engine(model, 2, spec.overlap(2, n_blocks=4), device, torch.float32, tile=0, batch_size=4)
        out = engine.run(x)
        ref = Engine(model, 2, spec.overlap(2, n_blocks=4), device, torch.float32, tile=256).run(x)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        torch.cuda.empty_cache()
    diff = (out - ref).abs().max().item()
    return "OOM halving", diff < 1e-4, f"edsr 4 blocks x2 on {size}x{size} with 2 GiB: fits after halving; " \
                                       f"max |tiled - halved| {diff:.1e}"


def check_precisions(device: torch.device, size: int) -> Row:
    import numpy as np
    from PIL import Image

    hr = np.asarray(Image.open(REPO / "sr_cli" / "data" / "Set5" / "butterfly.png").convert("RGB"))
    lr = np.asarray(Image.fromarray(hr).resize((size, size), Image.BICUBIC))
    ref = Upscaler("edsr", 4, device=str(device), precision="fp32").upscale_uint8(lr)
    cells, ok = [], True
    for name in ("bf16", "fp16") if device.type == "cuda" else ("bf16",):
        up = Upscaler("edsr", 4, device=str(device), precision=name)
        out = up.upscale_uint8(lr)
        agree = psnr(out, ref, 4)
        ok &= up.engine._channels_last == (device.type in ("cuda", "cpu")) and agree > 40
        cells.append(f"{name}: channels_last {up.engine._channels_last}, {agree:.1f} dB from fp32")
    return "channels_last + bf16/fp16", ok, "; ".join(cells)


def check_inference(device: torch.device, size: int, repeats: int) -> list[Row]:
    up = Upscaler("edsr", 4, device=str(device), precision="auto")
    dtype = up.dtype
    fmt = torch.channels_last
    peak_conv = nn.Conv2d(64, 64, 3, padding=1).to(device, dtype, memory_format=fmt).eval()
    big = torch.rand(1, 64, 4 * size, 4 * size, device=device, dtype=dtype).contiguous(memory_format=fmt)
    with torch.inference_mode():
        roof = _conv_flops(peak_conv, big) / _timed(lambda: peak_conv(big), device, repeats) / 1e12
    rows: list[Row] = [("conv roofline", roof > 0, f"3x3 64->64 conv on {4 * size}x{4 * size}, {dtype}: "
                                                    f"{roof:.2f} TFLOP/s")]
    for name in ("edsr", "espcn", "compact"):
        spec = get_spec(name)
        up = Upscaler(name, 4, device=str(device), precision="auto") if name != "compact" else None
        model = up.engine._model if up is not None else spec.build(4).eval().to(device, dtype, memory_format=fmt)
        run_dtype = up.dtype if up is not None else dtype
        x = torch.rand(1, spec.channels, size, size, device=device, dtype=run_dtype).contiguous(memory_format=fmt)
        with torch.inference_mode():
            seconds = _timed(lambda: model(x), device, repeats)
            tflops = _conv_flops(model, x) / seconds / 1e12
        mpx = (4 * size) ** 2 / 1e6 / seconds
        rows.append((f"inference {name} x4", math.isfinite(mpx),
                     f"{run_dtype}, {size}x{size} LR: {mpx:.1f} MP/s, {tflops:.2f} TFLOP/s = "
                     f"{100 * tflops / roof:.0f} % of the roofline"))
    return rows


def check_training(device: torch.device, steps: int) -> Row:
    from sr_cli.train.config import TrainConfig
    from sr_cli.train.loop import Trainer

    data = REPO / "tests" / "data" / "train"
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(model="espcn", scale=2, data=[str(data)], steps=steps, batch=8, patch=24, lr=1e-3,
                             precision="bf16", device=str(device), val_data=str(data), val_every=steps,
                             log_every=max(1, steps // 3), workers=0, checkpoint_every=steps)
        trainer = Trainer(config, Path(tmp) / "run")
        began = time.perf_counter()
        result = trainer.run()
        seconds = time.perf_counter() - began
        rows = (Path(tmp) / "run" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    losses = [float(r.split(",")[header.index("loss")]) for r in rows[1:] if r.split(",")[header.index("loss")]]
    ok = result.status == "completed" and len(losses) >= 2 and all(map(math.isfinite, losses)) \
        and losses[-1] < losses[0]
    return "bf16 training", ok, f"espcn x2, {steps} steps, {trainer.amp_dtype} on {trainer.device}: " \
                                f"{steps / seconds:.1f} steps/s, loss {losses[0]:.4f} -> {losses[-1]:.4f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="run every check on the CPU with tiny sizes")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run to exercise the script on the CPU")
        return 2
    device = torch.device("cpu" if args.dry_run else args.device)
    small = args.dry_run
    rows: list[Row] = [check_device(device), check_auto_tile(device), check_fp16_redo(device, 32 if small else 512),
                       check_oom_halving(device, 2048), check_precisions(device, 24 if small else 128),
                       *check_inference(device, 16 if small else 256, 2 if small else 10),
                       check_training(device, 4 if small else 30)]
    width = max(len(name) for name, _, _ in rows)
    print(f"{'check':{width}}  status  measured")
    for name, ok, text in rows:
        print(f"{name:{width}}  {'ok' if ok else 'FAIL':6}  {text}")
    return 0 if all(ok for _, ok, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
