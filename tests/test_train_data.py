"""Training data: recursive folders, aligned patch pairs, augmentation, determinism, shards, skipping, the data
sets per degradation and --data-lr pairing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from testdata import TRAIN
from torch.utils.data import DataLoader

from sr_cli.choices import ALL_DEGRADATIONS, DEGRADATIONS
from sr_cli.degrade import crop_to_scale, degrade
from sr_cli.errors import InputError, UsageError
from sr_cli.train.config import TrainConfig
from sr_cli.train.data import (
    PatchPairs,
    RealWorldPairs,
    ScaleCycle,
    StepBatches,
    WorkerInit,
    augment,
    training_sets,
)
from sr_cli.train.sources import (
    cache_key,
    degrade_images,
    find_images,
    load_images,
    paired_lr_images,
    to_rgb8,
)


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


def _config(data: list[Path], **changes: object) -> TrainConfig:
    return TrainConfig(model="espcn", scale=2, data=[str(d) for d in data], patch=8, **changes)


def test_training_sets_per_degradation(tmp_path: Path, hr_images: list[np.ndarray]) -> None:
    paths = [tmp_path / f"{i}.png" for i in range(len(hr_images))]  # only read with --data-lr or --cache-dir
    notes: list[str] = []
    plain = training_sets(_config([tmp_path], seed=4), hr_images, paths, (2, 3), notes.append)
    assert [type(s) for s in plain] == [PatchPairs, PatchPairs] and [s.scale for s in plain] == [2, 3]
    assert all(torch.equal(x, y) for x, y in zip(plain[1][6], PatchPairs(hr_images, 8, 3, seed=4)[6]))
    real = training_sets(_config([tmp_path], seed=4, degradation="realesrgan"), hr_images, paths, (2, 3),
                         notes.append)
    assert [type(s) for s in real] == [RealWorldPairs, RealWorldPairs] and [s.scale for s in real] == [2, 3]
    assert "on the fly (realesrgan)" in notes[-1]


def test_degradation_choices() -> None:
    assert "realesrgan" in ALL_DEGRADATIONS and "realesrgan" not in DEGRADATIONS  # random: never whole images once
    with pytest.raises(UsageError, match="unknown --degradation 'blurry'"):
        _config([Path("hr")], degradation="blurry")
    with pytest.raises(UsageError, match="unknown degradation 'realesrgan'"):
        degrade(np.zeros((8, 8, 3), np.uint8), 2, "realesrgan")  # the whole-image degradations


def test_data_lr_pairs_by_relative_stem(tmp_path: Path, hr_images: list[np.ndarray]) -> None:
    """DIV2K pairing: ``0001.png`` ↔ ``0001x2.png`` or ``0001.*`` in the --data-lr folder of the same position."""
    hr_dirs, lr_dirs = [tmp_path / "hr_a", tmp_path / "hr_b"], [tmp_path / "lr_a", tmp_path / "lr_b"]
    rng = np.random.default_rng(0)
    lows = [rng.integers(0, 256, (img.shape[0] // 2, img.shape[1] // 2, 3), dtype=np.uint8) for img in hr_images]
    paths = [_save(hr_dirs[0] / "0001.png", hr_images[0]), _save(hr_dirs[0] / "sub" / "0002.png", hr_images[1]),
             _save(hr_dirs[1] / "0001.png", hr_images[2])]
    _save(lr_dirs[0] / "0001x2.png", lows[0])  # with the scale suffix
    _save(lr_dirs[0] / "0001.png", lows[1])  # the plain stem counts only without a suffixed one
    _save(lr_dirs[0] / "sub" / "0002.bmp", lows[1])  # same relative folder, any image extension
    _save(lr_dirs[1] / "0001x2.png", lows[2])
    config = _config(hr_dirs, data_lr=[str(d) for d in lr_dirs], augment=False, seed=1)
    notes: list[str] = []
    [pairs] = training_sets(config, hr_images, paths, (2,), notes.append)
    assert isinstance(pairs, PatchPairs) and "LR images" in notes[0]
    assert all(np.array_equal(a, b) for a, b in zip(pairs.lr_images, lows))  # the files' pixels exactly
    for i in range(12):
        k, y, x, _ = pairs.place(i)
        hr, lr = (t.permute(1, 2, 0).numpy() for t in pairs[i])
        assert np.array_equal(lr, lows[k][y:y + 8, x:x + 8])
        assert np.array_equal(hr, crop_to_scale(hr_images[k], 2)[2 * y:2 * y + 16, 2 * x:2 * x + 16])


def test_data_lr_errors(tmp_path: Path, hr_images: list[np.ndarray]) -> None:
    hr = [_save(tmp_path / "hr" / f"{i}.png", img) for i, img in enumerate(hr_images[:2])]  # 70x60, 65x67
    _save(tmp_path / "lr" / "0x2.png", hr_images[0][:30, :35])

    def pair() -> list[np.ndarray]:
        return paired_lr_images(hr, hr_images[:2], [tmp_path / "hr"], [tmp_path / "lr"], 2)

    with pytest.raises(InputError) as missing:
        pair()
    assert str(missing.value) == (f"no LR image for {hr[1]} in {tmp_path / 'lr'} (looked for 1x2.* and 1.*)")
    _save(tmp_path / "lr" / "1.png", hr_images[1][:33, :33])  # HR 65x67 crops to 64x66: LR must be 32x33
    with pytest.raises(InputError) as wrong:
        pair()
    assert str(wrong.value) == (f"{tmp_path / 'lr' / '1.png'}: LR is 33x33, expected 32x33 (x2 of {hr[1]}, 65x67)")
    _save(tmp_path / "lr" / "1.png", hr_images[1][:33, :32])
    assert [lr.shape for lr in pair()] == [(30, 35, 3), (33, 32, 3)]
    _save(tmp_path / "lr" / "1.bmp", hr_images[1][:33, :32])
    with pytest.raises(InputError, match=r"2 LR images for .*1\.png in .*: 1\.bmp, 1\.png; keep one"):
        pair()
    with pytest.raises(UsageError, match="one LR folder with each --data folder: got 2 for 1"):
        _config([tmp_path / "hr"], data_lr=["a", "b"])
    with pytest.raises(UsageError, match="--data-lr gives the LR images: --degradation bilinear cannot apply"):
        _config([tmp_path / "hr"], data_lr=["a"], degradation="bilinear")
