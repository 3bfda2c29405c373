"""Throughput of srtool's MATLAB-exact bicubic imresize against a plain Python loop and Pillow.

Run: ``python benchmarks/resize.py``. Prints, asserts nothing. The test image is Set14 ``baboon.png`` (shipped
in the package) tiled to 2040×1356 RGB; the two jobs are ×1/4 (2040×1356 → 510×339) and ×4 (510×339 →
2040×1356). Throughput is counted in megapixels of the 2040×1356 side per second, for both jobs, best of a few
runs. The Python-loop reference (one output pixel at a time, in pure Python) is far too slow for the full image:
it is timed on a 128×128 crop (×4: a 32×32 LR) and normalised per megapixel the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import sr_cli
from sr_cli.resize import imresize

HR_SIZE = (1356, 2040)  # (height, width)
CROP = 128
REPEATS = 5


def cubic(t: float) -> float:
    a = abs(t)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def loop_pass(img: list, out_len: int, scale: float) -> list:
    """One MATLAB bicubic pass over the first axis of nested lists, one output pixel at a time (uint8 rounding)."""
    in_len = len(img)
    width = 4 / scale if scale < 1 else 4.0
    out = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = []
        for j in range(left, left + math.ceil(width) + 2):
            w = scale * cubic(scale * (u - j)) if scale < 1 else cubic(u - j)
            k = (j - 1) % (2 * in_len)
            taps.append((w, k if k < in_len else 2 * in_len - 1 - k))
        total = sum(w for w, _ in taps)
        taps = [(w / total, k) for w, k in taps]
        row = []
        for col in range(len(img[0])):
            pixel = []
            for c in range(len(img[0][0])):
                v = sum(w * img[k][col][c] for w, k in taps)
                pixel.append(min(max(math.floor(v + 0.5), 0), 255))
            row.append(pixel)
        out.append(row)
    return out


def loop_imresize(img: np.ndarray, out_hw: tuple[int, int], scale: float) -> np.ndarray:
    """Height pass, then width pass (transposing the nested lists between them)."""
    rows = loop_pass(img.tolist(), out_hw[0], scale)
    cols = loop_pass([list(c) for c in zip(*rows)], out_hw[1], scale)
    return np.array([list(r) for r in zip(*cols)], dtype=np.uint8)


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def best_time(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_image() -> np.ndarray:
    path = Path(sr_cli.__file__).parent / "data" / "Set14" / "baboon.png"
    with Image.open(path) as im:
        tile = np.asarray(im.convert("RGB"))
    reps = (-(-HR_SIZE[0] // tile.shape[0]), -(-HR_SIZE[1] // tile.shape[1]), 1)
    return np.ascontiguousarray(np.tile(tile, reps)[: HR_SIZE[0], : HR_SIZE[1]])


def main() -> None:
    hr = test_image()
    lr = imresize(hr, scale=0.25)
    mp = hr.shape[0] * hr.shape[1] / 1e6
    lr_wh, hr_wh = (lr.shape[1], lr.shape[0]), (hr.shape[1], hr.shape[0])
    print(f"image: Set14 baboon tiled to {hr_wh[0]}x{hr_wh[1]} RGB ({mp:.2f} MP); ×1/4 -> {lr_wh[0]}x{lr_wh[1]}, ×4 back")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; MP/s = megapixels of the "
          f"{hr_wh[0]}x{hr_wh[1]} side per second, best of {REPEATS}")

    crop_hr = hr[:CROP, :CROP]
    crop_lr = imresize(crop_hr, scale=0.25)
    loop_lr, loop_down = timed(lambda: loop_imresize(crop_hr, crop_lr.shape[:2], 0.25))
    loop_hr, loop_up = timed(lambda: loop_imresize(crop_lr, crop_hr.shape[:2], 4.0))
    crop_mp = CROP * CROP / 1e6
    agrees = np.array_equal(loop_lr, crop_lr) and np.array_equal(loop_hr, imresize(crop_lr, scale=4.0))
    print(f"Python-loop reference timed on a {CROP}x{CROP} crop (×4 from {CROP // 4}x{CROP // 4}), normalised per "
          f"megapixel; same bytes as srtool there: {agrees}")

    pil_hr, pil_lr = Image.fromarray(hr), Image.fromarray(lr)
    t_hr = torch.from_numpy(hr).permute(2, 0, 1)[None].float().div(255)
    t_lr = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)
    rows: list[tuple[str, float, float]] = [
        ("Python loop (reference, per output pixel)", crop_mp / loop_down, crop_mp / loop_up),
        ("PIL Image.resize(BICUBIC)", mp / best_time(lambda: pil_hr.resize(lr_wh, Image.BICUBIC)),
         mp / best_time(lambda: pil_lr.resize(hr_wh, Image.BICUBIC))),
        ("srtool imresize numpy uint8 (MATLAB-exact)", mp / best_time(lambda: imresize(hr, scale=0.25)),
         mp / best_time(lambda: imresize(lr, scale=4.0))),
        ("srtool imresize torch float32 NCHW (CPU)", mp / best_time(lambda: imresize(t_hr, scale=0.25)),
         mp / best_time(lambda: imresize(t_lr, scale=4.0))),
    ]
    if torch.cuda.is_available():
        g_hr, g_lr = t_hr.cuda(), t_lr.cuda()

        def on_gpu(x: torch.Tensor, scale: float) -> None:
            imresize(x, scale=scale)
            torch.cuda.synchronize()

        on_gpu(g_hr, 0.25), on_gpu(g_lr, 4.0)  # warm-up
        rows.append((f"srtool imresize torch float32 NCHW ({torch.cuda.get_device_name()})",
                     mp / best_time(lambda: on_gpu(g_hr, 0.25)), mp / best_time(lambda: on_gpu(g_lr, 4.0))))

    loop, pil = rows[0], rows[1]
    print(f"{'implementation':<46}{'×1/4 MP/s':>11}{'×4 MP/s':>11}  {'vs loop (×1/4, ×4)':>20}  {'vs PIL (×1/4, ×4)':>18}")
    for name, down, up in rows:
        print(f"{name:<46}{down:>11.3f}{up:>11.3f}  {down / loop[1]:>9.0f}x {up / loop[2]:>8.0f}x  "
              f"{down / pil[1]:>8.2f}x {up / pil[2]:>7.2f}x")


if __name__ == "__main__":
    main()
