"""Training data: HR images found recursively, decoded once, and random aligned HR/LR patch pairs.

Sample ``i`` is a pure function of ``(seed, i)``: which image (a fresh permutation of the images every
``len(images)`` samples), where the patch is, and which of the 8 flips/rotations it gets. So a run is the same for
any number of DataLoader workers, ranks take disjoint indices, and resuming at step ``t`` only needs ``t``.

The degradations of ``srtool bench`` are deterministic, so each image is degraded whole once, when the data set is
made (in threads), and a sample is two aligned slices: the LR patch is exactly the same crop of the whole degraded
image that ``srtool bench`` would score against. ``--data-lr`` gives those whole LR images instead (read from
files). ``realesrgan`` is random: each HR patch is degraded when it is sampled, from ``(seed, index)`` too.
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
from sr_cli.train.config import TrainConfig
from sr_cli.realworld import DEFAULTS, RealWorldParams, degrade_realworld


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
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        low = list(pool.map(lambda p: _decode(p, cache_dir), lr_paths))
    for hr_path, hr, lr_path, lr in zip(hr_paths, hr_images, lr_paths, low):
        want = (hr.shape[0] // scale, hr.shape[1] // scale)
        if lr.shape[:2] != want:
            raise InputError(f"{lr_path}: LR is {lr.shape[1]}x{lr.shape[0]}, expected {want[1]}x{want[0]} "
                             f"(x{scale} of {hr_path}, {hr.shape[1]}x{hr.shape[0]})")
    return low


def training_sets(config: TrainConfig, images: list[np.ndarray], paths: list[Path], scales: tuple[int, ...],
                  note: Callable[[str], None]) -> list[Dataset]:
    """One patch data set per scale for the decoded training ``images`` (read from ``paths``): paired with the
    LR images of ``--data-lr``, degraded on the fly (``realesrgan``), or degraded whole once (kept in
    ``--cache-dir`` when given). ``note`` tells the user what is being done."""
    if config.degradation == "realesrgan":
        note(f"degrading each patch of the {len(images)} training images on the fly (realesrgan)")
        return [RealWorldPairs(images, config.patch, s, config.seed, config.augment) for s in scales]
    cache = Path(config.cache_dir) if config.cache_dir else None
    keys = [cache_key(p) for p in paths] if cache else None
    sets: list[Dataset] = []
    for s in scales:
        if config.data_lr:
            note(f"reading the x{s} LR images of the {len(images)} training images from {', '.join(config.data_lr)}")
            low = paired_lr_images(paths, images, config.data, config.data_lr, s, cache_dir=cache)
        else:
            note(f"degrading the {len(images)} training images to x{s} ({config.degradation}), "
                 + ("or reading them from --cache-dir" if cache else "once, in memory"))
            low = degrade_images(images, s, config.degradation, keys=keys, cache_dir=cache)
        sets.append(PatchPairs(images, config.patch, s, config.degradation, config.seed, config.augment, low))
    return sets


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


class HRPatches(Dataset):
    """The sampling scheme of every patch data set: sample ``index`` → image, aligned position and augmentation,
    a pure function of ``(seed, index)``; ``images`` are cropped to a multiple of ``scale``."""

    def __init__(self, images: list[np.ndarray], patch: int, scale: int, seed: int = 0, augment: bool = True) -> None:
        self.images = [crop_to_scale(img, scale) for img in images]
        self.patch = patch
        self.scale = scale
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

    def place(self, index: int) -> tuple[int, int, int, int]:
        """Sample ``index``'s image, top-left corner ``(y, x)`` in LR pixels and augmentation code."""
        rng = np.random.default_rng([self.seed, 0, index])
        k = self.image_index(index)
        h, w = (n // self.scale for n in self.images[k].shape[:2])
        y, x = int(rng.integers(0, h - self.patch + 1)), int(rng.integers(0, w - self.patch + 1))
        return k, y, x, int(rng.integers(0, 8)) if self.augment else 0

    def hr_patch(self, k: int, y: int, x: int) -> np.ndarray:
        """The HR patch of image ``k`` at LR position ``(y, x)``."""
        s, p = self.scale, self.patch
        return self.images[k][y * s:(y + p) * s, x * s:(x + p) * s]


class PatchPairs(HRPatches):
    """Random aligned (HR, LR) patch pairs; index ``i`` → uint8 tensors (3, P·s, P·s) and (3, P, P), the LR patch a
    crop of the whole LR image. ``lr_images``: the images already degraded (:func:`degrade_images`) or read
    (:func:`paired_lr_images`), else degraded here."""

    def __init__(self, images: list[np.ndarray], patch: int, scale: int, degradation: str = "bicubic",
                 seed: int = 0, augment: bool = True, lr_images: list[np.ndarray] | None = None) -> None:
        super().__init__(images, patch, scale, seed, augment)
        self.lr_images = lr_images if lr_images is not None else degrade_images(images, scale, degradation)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, y, x, code = self.place(index)
        p = self.patch
        return _chw(augment(self.hr_patch(k, y, x), code)), _chw(augment(self.lr_images[k][y:y + p, x:x + p], code))


class RealWorldPairs(HRPatches):
    """(HR, LR) patch pairs whose LR is made on the fly by Real-ESRGAN's random degradation
    (:mod:`sr_cli.realworld`) of the augmented HR patch, from ``default_rng([seed, 2, index])``."""

    def __init__(self, images: list[np.ndarray], patch: int, scale: int, seed: int = 0, augment: bool = True,
                 params: RealWorldParams = DEFAULTS) -> None:
        super().__init__(images, patch, scale, seed, augment)
        self.params = params

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, y, x, code = self.place(index)
        hr = np.ascontiguousarray(augment(self.hr_patch(k, y, x), code))
        lr = degrade_realworld(hr, self.scale, np.random.default_rng([self.seed, 2, index]), self.params)
        return _chw(hr), _chw(lr)


class ScaleCycle(Dataset):
    """Patch pairs of several scales in turn, one scale per step: sample ``i`` belongs to step
    ``i // step_samples`` (``step_samples`` = batch × processes) and comes from ``sets[step % len(sets)]``, so
    every batch holds patches of one scale. With one set it is that set."""

    def __init__(self, sets: Sequence[Dataset], step_samples: int) -> None:
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
