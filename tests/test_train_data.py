"""Training data: recursive folders, aligned patch pairs, augmentation, determinism, shards, skipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from sr_cli.degrade import crop_to_scale, degrade
from sr_cli.errors import InputError, UsageError
from sr_cli.train.data import (PatchPairs, ScaleCycle, StepBatches, WorkerInit, augment, cache_key, degrade_images,
                               find_images, load_images, to_rgb8)
from testdata import TRAIN



def _save(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture(scope="module")
def hr_images() -> list[np.ndarray]:
    """Three T91 crops of different sizes."""
    paths = TRAIN[:3]
    return [np.asarray(Image.open(p).convert("RGB"))[:60 + 7 * i, :70 - 5 * i].copy() for i, p in enumerate(paths)]


def test_find_images_recursive_and_errors(tmp_path: Path, hr_images: list[np.ndarray]) -> None:
    _save(tmp_path / "a" / "x.png", hr_images[0])
    _save(tmp_path / "a" / "deep" / "er" / "y.png", hr_images[1])
    (tmp_path / "a" / "notes.txt").write_text("hi")
    found = find_images([tmp_path / "a"])
    assert [p.name for p in found] == ["y.png", "x.png"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no images here")
    with pytest.raises(InputError, match="no images in"):
        find_images([tmp_path / "a", tmp_path / "empty"])
    with pytest.raises(UsageError, match="--data"):
        find_images([])


def test_to_rgb8() -> None:
    gray = np.array([[[0], [255]]], dtype=np.uint8)
    assert to_rgb8(gray).tolist() == [[[0, 0, 0], [255, 255, 255]]]
    rgba = np.array([[[1, 2, 3, 4]]], dtype=np.uint8)
    assert to_rgb8(rgba).tolist() == [[[1, 2, 3]]]
    sixteen = np.array([[[65535, 257, 128]]], dtype=np.uint16)
    assert to_rgb8(sixteen).tolist() == [[[255, 1, 0]]]


def test_bicubic_pairs_are_crops_of_the_whole_degraded_image(hr_images: list[np.ndarray]) -> None:
    scale, patch = 3, 8
    ds = PatchPairs(hr_images, patch, scale, seed=5, augment=False)
    whole = [degrade(crop_to_scale(img, scale), scale) for img in hr_images]
    positions = set()
    for i in range(30):
        hr, lr = (t.permute(1, 2, 0).numpy() for t in ds[i])
        assert hr.shape == (patch * scale, patch * scale, 3) and lr.shape == (patch, patch, 3)
        img = hr_images[ds.image_index(i)]
        matches = [(y, x) for y in range(img.shape[0] // scale - patch + 1)
                   for x in range(img.shape[1] // scale - patch + 1)
                   if np.array_equal(img[y * scale:(y + patch) * scale, x * scale:(x + patch) * scale], hr)]
        assert matches, "the HR patch is an aligned crop of its image"
        y, x = matches[0]
        assert np.array_equal(whole[ds.image_index(i)][y:y + patch, x:x + patch], lr)
        positions.add((ds.image_index(i), y, x))
    assert len(positions) > 20


def test_augmentation_transforms_both_sides_alike(hr_images: list[np.ndarray]) -> None:
    plain = PatchPairs(hr_images, 8, 2, seed=1, augment=False)
    aug = PatchPairs(hr_images, 8, 2, seed=1, augment=True)
    codes = set()
    for i in range(40):
        hr, lr = (t.permute(1, 2, 0).numpy() for t in plain[i])
        hr_a, lr_a = (t.permute(1, 2, 0).numpy() for t in aug[i])
        found = [c for c in range(8) if np.array_equal(augment(hr, c), hr_a) and np.array_equal(augment(lr, c), lr_a)]
        assert found
        codes.add(found[0])
    assert len(codes) == 8
    arr = np.arange(6).reshape(2, 3, 1)
    assert augment(arr, 5)[:, :, 0].tolist() == [[3, 0], [4, 1], [5, 2]]  # rows flipped, then transposed


def test_samples_depend_on_seed_and_index_only(hr_images: list[np.ndarray]) -> None:
    a, b, c = (PatchPairs(hr_images, 8, 2, seed=s) for s in (7, 7, 8))
    for i in (0, 5, 123):
        assert all(torch.equal(x, y) for x, y in zip(a[i], b[i]))
    assert not all(torch.equal(a[i][0], c[i][0]) for i in range(5))
    # every epoch (len(images) consecutive samples) sees each image once, in a new order per epoch
    n = len(hr_images)
    epochs = [[a.image_index(e * n + k) for k in range(n)] for e in range(6)]
    assert all(sorted(e) == list(range(n)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1


def test_loader_is_the_same_for_any_number_of_workers(hr_images: list[np.ndarray]) -> None:
    ds = PatchPairs(hr_images, 8, 2, seed=3)

    def first_batches(workers: int, start: int) -> list[torch.Tensor]:
        loader = DataLoader(ds, batch_sampler=StepBatches(4, start), num_workers=workers,
                            worker_init_fn=WorkerInit(3, 0))
        out = []
        for hr, _ in loader:
            out.append(hr)
            if len(out) == 3:
                return out
        raise AssertionError

    zero, two = first_batches(0, 0), first_batches(2, 0)
    assert all(torch.equal(x, y) for x, y in zip(zero, two))
    resumed = first_batches(0, 1)  # restarting at step 1 continues the same stream
    assert all(torch.equal(x, y) for x, y in zip(zero[1:], resumed[:2]))


def test_ranks_take_disjoint_samples() -> None:
    seen: list[int] = []
    for rank in range(3):
        it = iter(StepBatches(4, start_step=2, rank=rank, world=3))
        for _ in range(5):
            seen += next(it)
    assert len(seen) == len(set(seen)) == 60
    assert sorted(seen) == list(range(2 * 3 * 4, 2 * 3 * 4 + 60))  # together: the one-process stream


def test_small_images_are_skipped_and_counted(tmp_path: Path, hr_images: list[np.ndarray]) -> None:
    paths = [_save(tmp_path / f"{i}.png", img) for i, img in enumerate(hr_images)]  # (h, w): (60, 70), (67, 65), (74, 60)
    paths.append(_save(tmp_path / "tiny.png", hr_images[0][:20, :20]))
    loaded = load_images(paths, 62, 2)  # only the 67x65 image (cropped to 66x64) holds a 62-pixel patch
    assert loaded.skipped == 3 and loaded.paths == [paths[1]]
    with pytest.raises(InputError, match="patch size 80 HR pixels is too large for every training image"):
        load_images(paths, 80, 2)


def test_disk_cache_memory_maps_decoded_images(tmp_path: Path, hr_images: list[np.ndarray]) -> None:
    paths = [_save(tmp_path / "img" / f"{i}.png", img) for i, img in enumerate(hr_images)]
    cache = tmp_path / "cache"
    first = load_images(paths, 16, 2, cache_dir=cache)
    assert len(list(cache.glob("*.npy"))) == 3
    again = load_images(paths, 16, 2, cache_dir=cache)
    assert isinstance(again.images[0], np.memmap)
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(again.images, hr_images))
    assert all(np.array_equal(a, b) for a, b in zip(first.images, again.images))
    keys = [cache_key(p) for p in paths]
    low = degrade_images(again.images, 3, "bicubic", keys=keys, cache_dir=cache)
    assert sorted(p.name for p in cache.glob("*_x3_bicubic.npy")) == sorted(f"{k}_x3_bicubic.npy" for k in keys)
    reread = degrade_images(again.images, 3, "bicubic", keys=keys, cache_dir=cache)
    assert all(isinstance(a, np.memmap) for a in reread)
    for a, b, img in zip(low, reread, hr_images):
        assert np.array_equal(a, b) and np.array_equal(a, degrade(crop_to_scale(img, 3), 3))
    pairs = PatchPairs(hr_images, 8, 3, seed=2, lr_images=reread)  # the same samples as degrading in memory
    assert all(torch.equal(x, y) for i in range(5) for x, y in zip(pairs[i], PatchPairs(hr_images, 8, 3, seed=2)[i]))


def test_scale_cycle_gives_each_step_one_scale_in_turn(hr_images: list[np.ndarray]) -> None:
    sets = [PatchPairs(hr_images, 6, s, seed=3) for s in (2, 3, 4)]
    cycle = ScaleCycle(sets, step_samples=2)
    sizes = [cycle[i][0].shape[-1] for i in range(8)]
    assert sizes == [12, 12, 18, 18, 24, 24, 12, 12]  # samples 0-1 are step 0 (x2), 2-3 step 1 (x3), ...
    for i, s in [(0, 0), (3, 1), (5, 2), (7, 0)]:
        assert all(torch.equal(a, b) for a, b in zip(cycle[i], sets[s][i]))
    batches = DataLoader(cycle, batch_sampler=StepBatches(2, start_step=4), num_workers=0)
    hr, lr = next(iter(batches))  # step 4 → x3
    assert hr.shape == (2, 3, 18, 18) and lr.shape == (2, 3, 6, 6)
