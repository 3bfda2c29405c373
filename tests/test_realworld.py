"""Real-ESRGAN's random degradation (``--degradation realesrgan``): kernels, the drawn plan, applying it, and
determinism per (seed, sample index) — across data set objects, DataLoader workers and a resumed run."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from testdata import TRAIN
from torch.utils.data import DataLoader

from sr_cli.degrade import crop_to_scale, jpeg_roundtrip
from sr_cli.errors import UsageError
from sr_cli.realworld import (
    KERNEL_KINDS,
    KernelParams,
    Noise,
    Plan,
    RealWorldParams,
    Stage,
    _noisy,
    apply_plan,
    degrade_realworld,
    draw_plan,
    gaussian_kernel,
    plateau_kernel,
    random_kernel,
    sinc_kernel,
)
from sr_cli.train import runs
from sr_cli.train.config import TrainConfig
from sr_cli.train.data import RealWorldPairs, StepBatches, WorkerInit, augment
from sr_cli.train.loop import Trainer
from sr_cli.train.state import resume_config


@pytest.fixture(scope="module")
def hr_images() -> list[np.ndarray]:
    """Three T91 crops of different sizes."""
    return [np.asarray(Image.open(p).convert("RGB"))[:60 + 7 * i, :70 - 5 * i].copy() for i, p in enumerate(TRAIN[:3])]


def _sums_to_one(kernel: np.ndarray) -> bool:
    """The float32 entries sum to 1 up to their own rounding: each entry of the exactly normalised float64 kernel
    moves by at most 2^-24 of its size when stored as float32, so the float64 sum of the stored entries is within
    2^-24 · Σ|k| of 1 (Σ|k| > 1 for the sinc kernels' negative lobes), plus float64 summation error."""
    total = kernel.astype(np.float64).sum()
    return abs(total - 1.0) <= 2.0 ** -24 * np.abs(kernel).astype(np.float64).sum() + 1e-12


def _only(kind: str, **changes: object) -> KernelParams:
    """Kernel draws of one kind only (``sinc``, or one of KERNEL_KINDS)."""
    if kind == "sinc":
        return KernelParams(sinc_prob=1.0, **changes)
    return KernelParams(probs=tuple(float(k == kind) for k in KERNEL_KINDS), sinc_prob=0.0, **changes)


@pytest.mark.parametrize("kind", ["sinc", *KERNEL_KINDS])
def test_every_kernel_kind_is_odd_normalised_and_iso_ones_symmetric(kind: str) -> None:
    rng = np.random.default_rng(0)
    sizes = RealWorldParams().kernel_sizes
    assert sizes == (7, 9, 11, 13, 15, 17, 19, 21)
    for i in range(40):
        size = sizes[i % len(sizes)]
        got, kernel = random_kernel(rng, _only(kind), size)
        assert got == kind
        assert kernel.dtype == np.float32 and kernel.shape == (size, size) and size % 2 == 1 and size <= 21
        assert np.isfinite(kernel).all() and _sums_to_one(kernel)
        if kind in ("sinc", "iso", "generalized_iso", "plateau_iso"):
            assert np.array_equal(kernel, kernel.T)
            assert np.array_equal(kernel, kernel[::-1]) and np.array_equal(kernel, kernel[:, ::-1])


def test_kernel_shapes_follow_their_formulas() -> None:
    t = np.arange(7) - 3
    d2 = t[:, None] ** 2 + t[None, :] ** 2
    expected = np.exp(-d2 / (2 * 1.3 ** 2))
    np.testing.assert_allclose(gaussian_kernel(7, 1.3, 1.3, 0.0), expected / expected.sum(), rtol=1e-6)
    plateau = 1 / ((d2 / 1.3 ** 2) ** 1.5 + 1)
    np.testing.assert_allclose(plateau_kernel(7, 1.3, 1.3, 0.0, 1.5), plateau / plateau.sum(), rtol=1e-6)
    # rotating an anisotropic kernel by 90 degrees swaps its axes
    np.testing.assert_allclose(gaussian_kernel(9, 0.7, 2.5, math.pi / 2), gaussian_kernel(9, 2.5, 0.7, 0.0),
                               atol=1e-7)
    wide = gaussian_kernel(9, 2.5, 0.7, 0.0)
    assert wide[4, 0] > wide[0, 4]  # sigma_x runs along the columns
    # the sinc: centre ω²/(4π), at r = 1 ω·J1(ω)/(2π); J1(π) = 0.28461534317975
    sinc = sinc_kernel(21, math.pi)
    assert sinc[10, 11] / sinc[10, 10] == pytest.approx(2 * 0.28461534317975 / math.pi, rel=1e-5)
    assert sinc.min() < 0


def test_plans_stay_in_the_published_ranges() -> None:
    rng = np.random.default_rng(1)
    params = RealWorldParams()
    plans = [draw_plan(rng, params) for _ in range(600)]
    for stage, sp in ((lambda p: p.first, params.stage1), (lambda p: p.second, params.stage2)):
        stages = [stage(p) for p in plans]
        qualities = [s.quality for s in stages]
        assert all(isinstance(q, int) for q in qualities) and (min(qualities), max(qualities)) == (30, 95)
        sigmas = [s.noise.amount for s in stages if s.noise.gaussian]
        scales = [s.noise.amount for s in stages if not s.noise.gaussian]
        assert sp.noise_range[0] <= min(sigmas) and max(sigmas) <= sp.noise_range[1]
        assert sp.poisson_scale_range[0] <= min(scales) and max(scales) <= sp.poisson_scale_range[1]
        assert 0.4 < len(sigmas) / len(stages) < 0.6  # gaussian_noise_prob 0.5
        assert 0.3 < np.mean([s.noise.gray for s in stages]) < 0.5  # gray_noise_prob 0.4
        factors = np.array([s.resize for s in stages])
        assert sp.resize_range[0] <= factors.min() and factors.max() <= sp.resize_range[1]
        shares = [(factors > 1).mean(), (factors < 1).mean(), (factors == 1).mean()]
        np.testing.assert_allclose(shares, sp.resize_prob, atol=0.07)
        assert {s.mode for s in stages} == {"area", "bilinear", "bicubic"}
        assert len({s.noise.seed for s in stages}) == len(stages)
    assert all(p.first.kernel is not None for p in plans)
    assert 0.72 < np.mean([p.second.kernel is not None for p in plans]) < 0.88  # second_blur_prob 0.8
    assert 0.72 < np.mean([p.sinc is not None for p in plans]) < 0.88  # final_sinc_prob 0.8
    assert 0.4 < np.mean([p.jpeg_first for p in plans]) < 0.6
    sizes = {p.first.kernel.shape[0] for p in plans}
    assert sizes == set(params.kernel_sizes)


def _neutral(quality: int) -> Stage:
    """No blur, no resize beyond the stage's base size, no noise."""
    return Stage(None, 1.0, "area", Noise(True, 0.0, False, 0), quality)


def test_applying_a_neutral_plan_is_two_jpegs(hr_images: list[np.ndarray]) -> None:
    hr = hr_images[0][:32, :48]
    plan = Plan(_neutral(60), _neutral(90), "area", None, jpeg_first=True)
    assert np.array_equal(apply_plan(hr, 1, plan), jpeg_roundtrip(jpeg_roundtrip(hr, 60), 90))
    # at x2 the second stage's (area) resize to the LR size averages 2x2 blocks; the final JPEG comes last here
    plan = Plan(_neutral(60), _neutral(90), "area", None, jpeg_first=False)
    once = jpeg_roundtrip(hr, 60).astype(np.float64)
    blocks = once.reshape(16, 2, 24, 2, 3).mean(axis=(1, 3))
    assert np.array_equal(apply_plan(hr, 2, plan), jpeg_roundtrip(np.floor(blocks + 0.5).astype(np.uint8), 90))


def test_noise_fields() -> None:
    img = np.full((3, 64, 64), 128.0, dtype=np.float32)
    gray = _noisy(img, Noise(True, 5.0, True, 7)) - img
    assert np.array_equal(gray[0], gray[1]) and np.array_equal(gray[1], gray[2])
    assert gray.std() == pytest.approx(5.0, rel=0.05)
    colour = _noisy(img, Noise(True, 5.0, False, 7)) - img
    assert not np.array_equal(colour[0], colour[1])
    assert np.array_equal(_noisy(img, Noise(True, 5.0, False, 7)), _noisy(img, Noise(True, 5.0, False, 7)))
    # Poisson at 2 levels (values 0 and 255): counts of 2 · x/255 scaled back, so a pixel of 255 stays at the
    # Poisson(2)/2 multiples of 255, clipped
    two = np.zeros((3, 64, 64), dtype=np.float32)
    two[:, :, 32:] = 255.0
    out = _noisy(two, Noise(False, 1.0, False, 3))
    assert np.array_equal(out[:, :, :32], two[:, :, :32])  # Poisson(0) is 0
    assert set(np.unique(out[:, :, 32:])) == {0.0, 127.5, 255.0}


def test_the_same_seed_and_index_give_the_same_bytes(hr_images: list[np.ndarray]) -> None:
    scale, patch = 4, 12
    hr = np.ascontiguousarray(hr_images[1][:patch * scale, :patch * scale])
    lr = degrade_realworld(hr, scale, np.random.default_rng([5, 2, 9]))
    assert lr.dtype == np.uint8 and lr.shape == (patch, patch, 3)
    assert lr.tobytes() == degrade_realworld(hr, scale, np.random.default_rng([5, 2, 9])).tobytes()
    assert lr.tobytes() != degrade_realworld(hr, scale, np.random.default_rng([5, 2, 10])).tobytes()

    a, b = RealWorldPairs(hr_images, patch, scale, seed=5), RealWorldPairs(hr_images, patch, scale, seed=5)
    for i in (0, 7, 31):
        hr_t, lr_t = a[i]
        assert hr_t.dtype == lr_t.dtype == torch.uint8
        assert hr_t.shape == (3, patch * scale, patch * scale) and lr_t.shape == (3, patch, patch)
        assert all(torch.equal(x, y) for x, y in zip(a[i], b[i]))
        assert all(torch.equal(x, y) for x, y in zip(a[i], a[i]))
        # the HR side is the augmented crop, and the LR its degradation drawn from (seed, 2, index)
        k, y, x, code = a.place(i)
        crop = np.ascontiguousarray(augment(a.hr_patch(k, y, x), code))
        assert np.array_equal(hr_t.permute(1, 2, 0).numpy(), crop)
        assert np.array_equal(lr_t.permute(1, 2, 0).numpy(),
                              degrade_realworld(crop, scale, np.random.default_rng([5, 2, i])))
    assert not torch.equal(a[0][1], a[1][1])
    assert not torch.equal(a[3][1], RealWorldPairs(hr_images, patch, scale, seed=6)[3][1])


def test_loader_with_workers_matches_no_workers(hr_images: list[np.ndarray]) -> None:
    ds = RealWorldPairs(hr_images, 8, 2, seed=3)

    def batches(workers: int) -> list[list[torch.Tensor]]:
        loader = DataLoader(ds, batch_sampler=StepBatches(4), num_workers=workers, worker_init_fn=WorkerInit(3, 0))
        out = []
        for pair in loader:
            out.append(pair)
            if len(out) == 4:
                return out
        raise AssertionError

    zero, two = batches(0), batches(2)
    assert all(torch.equal(x, y) for a, b in zip(zero, two) for x, y in zip(a, b))


def test_resume_is_bitwise_identical(tmp_path: Path) -> None:
    """4 steps == 2 steps, checkpoint, resume, 2 steps, with patches degraded on the fly."""
    data = tmp_path / "train"
    data.mkdir()
    for i, path in enumerate(TRAIN[:3]):
        Image.open(path).convert("RGB").crop((0, 0, 40, 40)).save(data / f"{i}.png")
    config = TrainConfig(model="espcn", scale=2, data=[str(data)], steps=4, batch=2, patch=8, lr=1e-3,
                         val_data=str(data), val_every=4, checkpoint_every=2, log_every=2, workers=0, seed=0,
                         degradation="realesrgan")
    Trainer(config, tmp_path / "straight").run()
    Trainer(dataclasses.replace(config, steps=2), tmp_path / "resumed").run()
    Trainer(resume_config(tmp_path / "resumed", {"steps": 4}), tmp_path / "resumed", resume=True).run()
    a, b = (torch.load(tmp_path / run / runs.CHECKPOINT, weights_only=True)["model"] for run in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bench_pictures_get_one_seeded_degradation_each(hr_images: list[np.ndarray]) -> None:
    from sr_cli.evaluate import Degradation
    from sr_cli.realworld import degrade_picture

    hr = crop_to_scale(hr_images[0], 4)
    lr = degrade_picture(hr, 4, 0, "a.png")
    assert lr.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3) and lr.dtype == np.uint8
    assert lr.tobytes() == Degradation("realesrgan").make(hr, 4, Path("x/a.png")).tobytes()  # by file name
    assert lr.tobytes() != degrade_picture(hr, 4, 0, "b.png").tobytes()
    assert lr.tobytes() != degrade_picture(hr, 4, 1, "a.png").tobytes()
    gray = degrade_picture(hr[..., :1], 4, 0, "a.png")
    assert gray.shape == (*lr.shape[:2], 1)
    with pytest.raises(UsageError, match="draws its own blur, noise and JPEG"):
        Degradation("realesrgan", noise_sigma=5.0)


def test_bench_with_realesrgan_is_the_same_twice_and_refuses_extras() -> None:
    from typer.testing import CliRunner

    from sr_cli.cli.app import app

    args = ["bench", "-d", "set5", "-m", "bicubic", "-s", "4", "--degradation", "realesrgan", "--json"]
    first, second = (CliRunner().invoke(app, args) for _ in range(2))
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["results"][0]["psnr"] == json.loads(second.stdout)["results"][0]["psnr"]
    refused = CliRunner().invoke(app, [*args, "--jpeg", "75"])
    assert refused.exit_code == 2 and refused.stderr.startswith("srtool: error: --degradation realesrgan draws")
