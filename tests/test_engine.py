"""The tiled engine: tiled == untiled for every registry model, OOM halving, fp16 redo, self-ensemble."""

from __future__ import annotations

import pytest
import torch
from tolerances import DEEP_NET_ABS, NET_ABS
from torch import nn

from sr_cli import engine as engine_module
from sr_cli.engine import MIN_TILE, Engine, spans
from sr_cli.errors import SrtoolError
from sr_cli.memory import ALLOCATOR_SLACK
from sr_cli.registry import MODELS, get_spec

# Deep models are checked at reduced depth (same family, same overlap formula) to keep CI fast; the overlap
# formula itself is checked against the measured receptive field below.
SMALL = {
    "srresnet": {"n_blocks": 2},
    "edsr": {"n_blocks": 2},
    "edsr-large": {"n_blocks": 2, "n_feats": 32},
    "mdsr": {"n_blocks": 2},
    "esrgan": {"num_block": 1},
    "csd": {"n_blocks": 2},
    "compact": {"num_conv": 4},
}


def _model(name: str, scale: int) -> tuple[nn.Module, int]:
    spec = get_spec(name)
    torch.manual_seed(0)
    opts = SMALL.get(name, {})
    model = spec.build(scale, **opts).eval()
    return model, spec.overlap(scale, **opts)


def _image(channels: int, h: int = 101, w: int = 93) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand((1, channels, h, w), generator=g)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("tile", [32, 45])
def test_tiled_equals_untiled(name: str, tile: int) -> None:
    spec = get_spec(name)
    scale = 2 if name != "srcnn" else 3
    model, overlap = _model(name, scale)
    x = _image(spec.channels)
    whole = Engine(model, scale, overlap, torch.device("cpu"), tile=0).run(x)
    tiled_engine = Engine(model, scale, overlap, torch.device("cpu"), tile=tile, batch_size=3)
    tiles = []
    tiled = tiled_engine.run(x, progress=lambda done, total: tiles.append((done, total)))
    assert tiled.shape == (1, spec.channels, 101 * scale, 93 * scale)
    assert tiles[-1][0] == tiles[-1][1] > 1, "the image must really be cut into several tiles"
    assert (tiled - whole).abs().max().item() < DEEP_NET_ABS


# The build options the receptive field is measured at: for the depth-dependent formulas two depths, 1 and one
# deep enough that a halved slope (n + 8 for 2·n + 8) falls short too; wide models made narrow (the overlap does not
# depend on the width).
RF_OPTIONS: dict[str, tuple[dict[str, object], ...]] = {
    "nearest": ({},), "bilinear": ({},), "bicubic": ({},), "espcn": ({},), "fsrcnn": ({},), "srcnn": ({},),
    "edsr": ({"n_blocks": 1}, {"n_blocks": 3}),
    "mdsr": ({"n_blocks": 1}, {"n_blocks": 3}),
    "esrgan": ({"num_block": 1},),
    "edsr-large": ({"n_blocks": 1, "n_feats": 16}, {"n_blocks": 6, "n_feats": 16}),
    "csd": ({"n_blocks": 1, "n_feats": 16}, {"n_blocks": 6, "n_feats": 16}),
    "compact": ({"num_conv": 1, "num_feat": 16}, {"num_conv": 6, "num_feat": 16}),
    "srresnet": ({"n_blocks": 1}, {"n_blocks": 6}, {"n_blocks": 1, "variant": "basicsr"},
                 {"n_blocks": 6, "variant": "basicsr"}),
}


@pytest.mark.parametrize("name", list(RF_OPTIONS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_overlap_is_the_measured_receptive_field(name: str, scale: int) -> None:
    """The gradient of one output pixel reaches exactly as far as the registry's overlap (the module's own radius):
    no further (tiles would differ from the whole) and no less (the overlap would waste work)."""
    spec = get_spec(name)
    for opts in RF_OPTIONS[name]:
        torch.manual_seed(0)
        model = spec.build(scale, **opts).eval()
        size = 2 * spec.overlap(scale, **opts) + 9
        centre = size // 2
        if spec.learned:  # the LR pixels the gradient of one LR cell's output pixels reaches
            x = torch.rand(1, spec.channels, size, size, requires_grad=True)
            cell = slice(centre * scale, (centre + 1) * scale)
            model(x)[0, :, cell, cell].sum().backward()
            rows = torch.nonzero(x.grad[0].abs().sum(0).sum(1)).flatten()
        else:  # interpolators round to 8 bits (no gradient): the LR cells whose output one changed pixel changes
            x = torch.full((1, spec.channels, size, size), 0.5)
            bright = x.clone()
            bright[..., centre, centre] = 1.0
            changed = torch.nonzero((model(bright) - model(x))[0].abs().sum(0).sum(1)).flatten()
            rows = torch.unique(changed // scale)
        radius = max(centre - rows.min().item(), rows.max().item() - centre)
        assert radius == spec.overlap(scale, **opts), (name, opts, radius)


def test_spans_cover_and_windows_have_equal_size() -> None:
    cut = spans(100, 32, 10)
    assert [(a, b) for a, b, _ in cut] == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert [w for _, _, w in cut] == [0, 22, 48, 48]
    for a, b, w in cut:
        assert w <= max(a - 10, 0) and min(b + 10, 100) <= w + 52


class _Flaky(nn.Module):
    """Doubles the size; raises CUDA-style OOM when a batch holds more than ``limit`` pixels."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.calls: list[tuple[int, ...]] = []
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        if x.numel() > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return nn.functional.interpolate(x, scale_factor=2, mode="nearest") * self.w


def test_out_of_memory_halves_batch_then_tile_and_gives_the_same_result() -> None:
    x = _image(3, 64, 64)
    expected = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    model = _Flaky(limit=3 * 40 * 40)
    out = Engine(model, 2, 0, torch.device("cpu"), tile=64, batch_size=4).run(x)
    assert torch.equal(out, expected)
    sizes = [c[-1] for c in model.calls]
    assert sizes[0] == 64 and sizes[-1] == 32  # whole image failed, then 32-pixel tiles
    assert model.calls[-1][0] == 1  # the batch was halved first


def test_out_of_memory_at_the_smallest_tile_is_a_clear_error() -> None:
    with pytest.raises(SrtoolError, match="out of memory"):
        Engine(_Flaky(limit=1), 2, 0, torch.device("cpu"), tile=64, batch_size=1).run(_image(3, 64, 64))


class _Overflow(nn.Module):
    """Overflows fp16 in tiles whose mean is high."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big = (x * self.w * 1e5).amax(dim=(1, 2, 3), keepdim=True)  # inf in fp16 (max 65504)
        return nn.functional.interpolate(x * self.w, scale_factor=2, mode="nearest") + (big - big)


def test_fp16_tiles_that_overflow_are_redone_in_fp32() -> None:
    x = _image(3, 40, 40)
    engine = Engine(_Overflow(), 2, 0, torch.device("cpu"), dtype=torch.float16, tile=20)
    out = engine.run(x)
    assert torch.isfinite(out).all()
    assert engine.redone_tiles == 4
    assert (out - nn.functional.interpolate(x, scale_factor=2, mode="nearest")).abs().max() < NET_ABS


def test_self_ensemble_of_an_equivariant_model_is_the_model() -> None:
    model, overlap = _model("bicubic", 2)
    model.levels = None  # float bicubic: flips and transposes commute with it (8-bit rounding between passes not)
    x = _image(3, 30, 22)
    plain = Engine(model, 2, overlap, torch.device("cpu"), tile=0).run(x)
    plus = Engine(model, 2, overlap, torch.device("cpu"), tile=16, ensemble=True).run(x)
    assert (plain - plus).abs().max() < NET_ABS


def test_self_ensemble_averages_the_eight_transforms() -> None:
    model, overlap = _model("espcn", 2)
    x = _image(1, 24, 20)
    plus = Engine(model, 2, overlap, torch.device("cpu"), tile=0, ensemble=True).run(x)
    with torch.no_grad():
        outs = []
        for t in (False, True):
            for fh in (False, True):
                for fw in (False, True):
                    d = [a for a, on in ((-2, fh), (-1, fw)) if on]
                    xi = x.flip(d) if d else x
                    xi = xi.transpose(-2, -1) if t else xi
                    yi = model(xi)
                    yi = yi.transpose(-2, -1) if t else yi
                    outs.append(yi.flip(d) if d else yi)
    assert (plus - torch.stack(outs).mean(0)).abs().max() < NET_ABS


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_basicsr_srresnet_variant_tiles_exactly_within_its_overlap(scale: int) -> None:
    """MSRResNet (srresnet variant basicsr, which adds a bilinear image skip) under srresnet's overlap."""
    spec, opts = get_spec("srresnet"), {"variant": "basicsr", "n_blocks": 2}
    torch.manual_seed(0)
    model, overlap = spec.build(scale, **opts).eval(), spec.overlap(scale, **opts)
    x = _image(3)
    whole = Engine(model, scale, overlap, torch.device("cpu"), tile=0).run(x)
    tiled = Engine(model, scale, overlap, torch.device("cpu"), tile=32).run(x)
    assert (tiled - whole).abs().max().item() < DEEP_NET_ABS
    probe = torch.rand(1, 3, 2 * overlap + 9, 2 * overlap + 9, requires_grad=True)
    centre = probe.shape[-1] * scale // 2
    model(probe)[0, :, centre, centre].sum().backward()
    rows = torch.nonzero(probe.grad[0].abs().sum(0).sum(1)).flatten()
    assert max(centre // scale - rows.min().item(), rows.max().item() - centre // scale) <= overlap


def test_a_window_that_spans_an_axis_runs_once_along_it() -> None:
    """Tile 16 with overlap 40: each window would span the whole height, so the rows are not repeated."""
    model, _ = _model("edsr", 2)
    cpu = torch.device("cpu")
    for width, jobs in ((50, 1), (200, 13)):  # 16 + 2·40 ≥ 30 rows (and 50 columns); 200 columns: 13 cores
        x = _image(3, 30, width)
        totals = []
        out = Engine(model, 2, 40, cpu, tile=16).run(x, progress=lambda done, total: totals.append(total))
        assert set(totals) == {jobs}
        assert (out - Engine(model, 2, 40, cpu, tile=0).run(x)).abs().max().item() < DEEP_NET_ABS


def test_auto_tile_fits_the_budget_by_the_measured_footprint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1x1 convolution 3 → 12 at x2 in fp32: its 48-byte output per LR pixel and twice that for a functional tail
    (times the allocator slack), the input window (3 channels, on the host and on the device) and the output window
    (12 values, on the device and as float32 on the host); on CPU one window at a time, as large as the budget
    allows, less its overlap."""
    engine = Engine(nn.Conv2d(3, 12, 1), 2, 4, torch.device("cpu"), batch_size=4)
    per_pixel = engine.bytes_per_pixel(3)
    assert per_pixel == pytest.approx(3 * 48 * ALLOCATOR_SLACK + 3 * (4 + 4) + 12 * (4 + 4))
    monkeypatch.setattr(engine_module, "default_budget", lambda: int(per_pixel * 100**2))
    assert engine.auto_tile(3) == (92, 1)
    monkeypatch.setattr(engine_module, "default_budget", lambda: int(per_pixel * 10**2))
    assert engine.auto_tile(3) == (MIN_TILE, 1)  # never below the smallest tile
