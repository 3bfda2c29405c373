"""The training pictures: HR images found recursively and decoded once (optionally kept in ``--cache-dir`` as
memory-mapped .npy files), each degraded whole once for the deterministic degradations, or paired with its LR file
(``--data-lr``)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sr_cli.atomic import atomic_path
from sr_cli.datasets import folder_dataset
from sr_cli.degrade import DEGRADATIONS, crop_to_scale, degrade
from sr_cli.errors import InputError, UsageError
from sr_cli.images import read_image

THREADS = min(8, os.cpu_count() or 1)  # decoding and degrading threads (numpy, Pillow and torch release the GIL)


def find_images(folders: Sequence[str | Path]) -> list[Path]:
    """Every image under ``folders`` (recursively), in a stable order; a folder without images is an InputError."""
    if not folders:
        raise UsageError("no training data: pass --data DIR (a folder of HR images)")
    found: list[Path] = []
    for folder in folders:
        found += folder_dataset(Path(folder))
    return found


def to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8/uint16 with C in 1..4 → (H, W, 3) uint8 (gray repeated, alpha dropped, 16-bit rounded)."""
    if pixels.dtype == np.uint16:
        pixels = np.round(pixels.astype(np.float64) / 257.0).astype(np.uint8)
    colour = pixels[:, :, :3] if pixels.shape[2] >= 3 else pixels[:, :, :1]
    return np.ascontiguousarray(np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else colour)


def cache_key(path: Path) -> str:
    """The cache name of an image file: its resolved path, size and modification time, hashed."""
    stat = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()


def _cached(path: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
    """The array saved at ``path`` (memory-mapped), made and saved atomically first if missing."""
    if not path.is_file():
        with atomic_path(path) as tmp:
            np.save(tmp, make(), allow_pickle=False)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _decode(path: Path, cache_dir: Path | None) -> np.ndarray:
    """Decoded RGB uint8 pixels of ``path``; with ``cache_dir``, kept there as .npy and memory-mapped."""
    if cache_dir is None:
        return to_rgb8(read_image(path).pixels)
    return _cached(cache_dir / f"{cache_key(path)}.npy", lambda: to_rgb8(read_image(path).pixels))


def degrade_images(images: Sequence[np.ndarray], scale: int, degradation: str, *,
                   keys: Sequence[str] | None = None, cache_dir: Path | None = None) -> list[np.ndarray]:
    """Each image cropped to a multiple of ``scale`` and degraded whole, in threads; with ``cache_dir`` (and one
    ``keys`` entry per image) kept there as .npy and memory-mapped, so resumes and later runs reuse them."""
    if degradation not in DEGRADATIONS:
        raise UsageError(f"unknown --degradation {degradation!r}; choose one of: {', '.join(DEGRADATIONS)}")

    def one(i: int) -> np.ndarray:
        def make() -> np.ndarray:
            return degrade(images[i], scale, degradation)  # degrade crops to a multiple of the scale itself
        if cache_dir is None or keys is None:
            return make()
        return _cached(cache_dir / f"{keys[i]}_x{scale}_{degradation}.npy", make)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(one, range(len(images))))


@dataclass(frozen=True)
class ImageSet:
    """Decoded HR images (RGB uint8) big enough for the patch, and how many were too small."""

    images: list[np.ndarray]
    paths: list[Path]
    skipped: int


def load_images(paths: Sequence[Path], hr_patch: int, scale: int, *, cache_dir: Path | None = None,
                threads: int | None = None) -> ImageSet:
    """Decode ``paths`` once (in threads) and keep those of at least ``hr_patch`` pixels each way (after cropping
    to a multiple of ``scale``); if none is, an InputError naming the largest size."""
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=threads or THREADS) as pool:
        decoded = list(pool.map(lambda p: _decode(p, cache_dir), paths))
    keep = [i for i, img in enumerate(decoded) if min(crop_to_scale(img, scale).shape[:2]) >= hr_patch]
    if not keep:
        h, w = max((img.shape[:2] for img in decoded), key=lambda hw: min(hw))
        raise InputError(
            f"patch size {hr_patch} HR pixels is too large for every training image (the largest fitting side is "
            f"{min(h, w)} px, in a {w}x{h} image): lower --patch"
        )
    return ImageSet([decoded[i] for i in keep], [paths[i] for i in keep], len(paths) - len(keep))


def _lr_index(folder: Path) -> dict[Path, list[Path]]:
    """The images under ``folder`` by their relative path less the extension."""
    index: dict[Path, list[Path]] = {}
    for path in folder_dataset(folder):
        index.setdefault(path.relative_to(folder).with_suffix(""), []).append(path)
    return index


def paired_lr_images(hr_paths: Sequence[Path], hr_images: Sequence[np.ndarray], data: Sequence[str | Path],
                     data_lr: Sequence[str | Path], scale: int, *, cache_dir: Path | None = None) -> list[np.ndarray]:
    """The LR image of each HR image, as DIV2K pairs them: for ``hr_paths[i]`` under ``data[j]``, the image under
    ``data_lr[j]`` at the same relative path and stem, the stem optionally followed by ``x{scale}``
    (``0001.png`` → ``0001x4.png``), any image extension. Each must be exactly the HR image (cropped to a
    multiple of ``scale``) over ``scale``; a missing, ambiguous or mis-sized LR image is an InputError naming it."""
    folders = [Path(d).expanduser() for d in data]
    lr_folders = [Path(d).expanduser() for d in data_lr]
    indexes = [_lr_index(folder) for folder in lr_folders]

    def find(hr: Path) -> Path:
        j = next(j for j, folder in enumerate(folders) if hr.is_relative_to(folder))
        rel = hr.relative_to(folders[j]).with_suffix("")
        for stem in (rel.with_name(f"{rel.name}x{scale}"), rel):
            found = indexes[j].get(stem, [])
            if len(found) > 1:
                raise InputError(f"{len(found)} LR images for {hr} in {lr_folders[j]}: "
                                 f"{', '.join(p.name for p in found)}; keep one")
            if found:
                return found[0]
        raise InputError(f"no LR image for {hr} in {lr_folders[j]} (looked for {rel}x{scale}.* and {rel}.*)")

    lr_paths = [find(path) for path in hr_paths]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        low = list(pool.map(lambda p: _decode(p, cache_dir), lr_paths))
    for hr_path, hr, lr_path, lr in zip(hr_paths, hr_images, lr_paths, low):
        want = (hr.shape[0] // scale, hr.shape[1] // scale)
        if lr.shape[:2] != want:
            raise InputError(f"{lr_path}: LR is {lr.shape[1]}x{lr.shape[0]}, expected {want[1]}x{want[0]} "
                             f"(x{scale} of {hr_path}, {hr.shape[1]}x{hr.shape[0]})")
    return low
