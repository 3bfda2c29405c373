"""Training data: HR images found recursively, decoded once, and random aligned HR/LR patch pairs.

Sample ``i`` is a pure function of ``(seed, i)``: which image (a fresh permutation of the images every
``len(images)`` samples), where the patch is, and which of the 8 flips/rotations it gets. So a run is the same for
any number of DataLoader workers, ranks take disjoint indices, and resuming at step ``t`` only needs ``t``.

Every degradation is deterministic, so each image is degraded whole once, when the data set is made (in threads),
and a sample is two aligned slices: the LR patch is exactly the same crop of the whole degraded image that
``srtool bench`` would score against.
Patches are returned as uint8 (C, H, W) RGB; the trainer moves them to the device and converts them.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from sr_cli.atomic import atomic_path
from sr_cli.datasets import folder_dataset
from sr_cli.degrade import DEGRADATIONS, crop_to_scale, degrade
from sr_cli.errors import InputError, UsageError
from sr_cli.images import read_image


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

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
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
    with ThreadPoolExecutor(max_workers=threads or min(8, os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(lambda p: _decode(p, cache_dir), paths))
    keep = [i for i, img in enumerate(decoded) if min(crop_to_scale(img, scale).shape[:2]) >= hr_patch]
    if not keep:
        h, w = max((img.shape[:2] for img in decoded), key=lambda hw: min(hw))
        raise InputError(
            f"patch size {hr_patch} HR pixels is too large for every training image (the largest fitting side is "
            f"{min(h, w)} px, in a {w}x{h} image): lower --patch"
        )
    return ImageSet([decoded[i] for i in keep], [paths[i] for i in keep], len(paths) - len(keep))


def augment(arr: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips/90° rotations of an (H, W, C) array: bit 0 flips rows, bit 1 flips columns, bit 2
    transposes."""
    if code & 1:
        arr = arr[::-1]
    if code & 2:
        arr = arr[:, ::-1]
    if code & 4:
        arr = arr.transpose(1, 0, 2)
    return arr


class PatchPairs(Dataset):
    """Random aligned (HR, LR) patch pairs; index ``i`` → uint8 tensors (3, P·s, P·s) and (3, P, P).
    ``lr_images``: the images already degraded (:func:`degrade_images`), else degraded here."""

    def __init__(self, images: list[np.ndarray], patch: int, scale: int, degradation: str = "bicubic",
                 seed: int = 0, augment: bool = True, lr_images: list[np.ndarray] | None = None) -> None:
        self.lr_images = lr_images if lr_images is not None else degrade_images(images, scale, degradation)
        self.images = [crop_to_scale(img, scale) for img in images]
        self.patch = patch
        self.scale = scale
        self.degradation = degradation
        self.seed = seed
        self.augment = augment
        self._epoch: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.images)

    def image_index(self, index: int) -> int:
        """Which image sample ``index`` uses: position ``index mod n`` of a per-epoch permutation."""
        n = len(self.images)
        epoch = index // n
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, np.random.default_rng([self.seed, 1, epoch]).permutation(n))
        return int(self._epoch[1][index % n])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 0, index])
        s, p = self.scale, self.patch
        k = self.image_index(index)
        lr_img = self.lr_images[k]
        y, x = int(rng.integers(0, lr_img.shape[0] - p + 1)), int(rng.integers(0, lr_img.shape[1] - p + 1))
        code = int(rng.integers(0, 8)) if self.augment else 0
        hr = self.images[k][y * s:(y + p) * s, x * s:(x + p) * s]
        return _chw(augment(hr, code)), _chw(augment(lr_img[y:y + p, x:x + p], code))


class ScaleCycle(Dataset):
    """Patch pairs of several scales in turn, one scale per step: sample ``i`` belongs to step
    ``i // step_samples`` (``step_samples`` = batch × processes) and comes from ``sets[step % len(sets)]``, so
    every batch holds patches of one scale. With one set it is that set."""

    def __init__(self, sets: Sequence[PatchPairs], step_samples: int) -> None:
        self.sets, self.step_samples = list(sets), step_samples

    def __len__(self) -> int:
        return len(self.sets[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sets[(index // self.step_samples) % len(self.sets)][index]


def _chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


class StepBatches(Sampler[list[int]]):
    """Endless batches of sample indices from ``start_step`` on: step ``t`` of rank ``r`` in a world of ``w``
    takes indices ``(t·w + r)·b … (t·w + r)·b + b - 1`` — disjoint across ranks and steps."""

    def __init__(self, batch: int, start_step: int = 0, rank: int = 0, world: int = 1) -> None:
        self.batch, self.start_step, self.rank, self.world = batch, start_step, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            first = (step * self.world + self.rank) * self.batch
            yield list(range(first, first + self.batch))
            step += 1


@dataclass(frozen=True)
class WorkerInit:
    """A ``worker_init_fn``: seeds the worker's global RNGs from (seed, rank, worker) and leaves Ctrl-C to the
    main process, and SIGTERM too (the main process checkpoints and then stops the workers itself)."""

    seed: int
    rank: int

    def __call__(self, worker_id: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C or a process group's SIGTERM
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        state = np.random.SeedSequence([self.seed, self.rank, worker_id]).generate_state(2)
        random.seed(int(state[0]))
        np.random.seed(int(state[1]))
        torch.manual_seed(int(state[0]) << 32 | int(state[1]))
