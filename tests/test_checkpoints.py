"""Official checkpoints load as they are: layouts detected, renamed, range-converted, and run exactly.

Each official layout is made here from the public code's structure (small reference modules below, written from
EDSR-PyTorch ``src/model/{edsr,mdsr,common}.py``, CSD ``model/{edsr,common}.py``, BasicSR ``edsr_arch.py`` at
``img_range`` 255, BasicSR ``rrdbnet_arch.py`` with its pixel-unshuffle input, Real-ESRGAN ``srvgg_arch.py``; the
older RRDBNet layouts by renaming srtool's BasicSR-named model), saved as the real file type, and
loaded through ``load_state``/``load_model``/``srtool upscale``. Full-size layouts are checked on names and
shapes only (meta tensors, nothing run).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from tolerances import (
    DEEP_NET_ABS,
    FLIPPED_LEVELS,
    FLIPPED_SHARE,
    NET_ABS,
    RANGE_255_ABS,
)
from torch import nn
from typer.testing import CliRunner

from sr_cli import atomic
from sr_cli.cli.app import app
from sr_cli.engine import Engine
from sr_cli.errors import WeightsError
from sr_cli.families import convert
from sr_cli.families.esrgan import rrdbnet_radius
from sr_cli.pipeline import Upscaler
from sr_cli.registry import get_spec
from sr_cli.train.init_weights import copy_matching
from sr_cli.video.ffmpeg import ffmpeg_exe
from sr_cli.video.reader import SWS_FLAGS
from sr_cli.weights import held_model, load_model, load_state, save_weights

MEAN = (0.4488, 0.4371, 0.4040)
runner = CliRunner()


def srtool(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


# ------------------------------------------------------------------ reference modules (the public code's layout)


class RefMeanShift(nn.Conv2d):
    """EDSR-PyTorch ``common.MeanShift``: 1×1 conv, identity weight, bias ``sign · rgb_range · mean``."""

    def __init__(self, rgb_range: float, sign: int = -1) -> None:
        super().__init__(3, 3, kernel_size=1)
        self.weight.data = torch.tensor([[float(i == j) for j in range(3)] for i in range(3)]).view(3, 3, 1, 1)
        self.bias.data = torch.tensor([sign * rgb_range * m for m in MEAN])


class RefResBlock(nn.Module):
    """EDSR-PyTorch ``common.ResBlock`` (body = conv, ReLU, conv)."""

    def __init__(self, n: int, k: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n, n, k, padding=k // 2), nn.ReLU(True), nn.Conv2d(n, n, k, padding=k // 2))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mul(self.res_scale) + x


def ref_upsampler(scale: int, n: int) -> nn.Sequential:
    """EDSR-PyTorch ``common.Upsampler`` (no act): (conv to r²n, PixelShuffle r) per stage."""
    layers: list[nn.Module] = []
    for r in [2, 2] if scale == 4 else [scale]:
        layers += [nn.Conv2d(n, r * r * n, 3, padding=1), nn.PixelShuffle(r)]
    return nn.Sequential(*layers)


class RefEDSR(nn.Module):
    """EDSR-PyTorch ``edsr.EDSR`` at ``rgb_range`` (inputs and outputs in [0, rgb_range])."""

    def __init__(self, scale: int, n_blocks: int, n_feats: int, res_scale: float = 1.0, rgb_range: float = 255) -> None:
        super().__init__()
        self.sub_mean = RefMeanShift(rgb_range)
        self.add_mean = RefMeanShift(rgb_range, sign=1)
        self.head = nn.Sequential(nn.Conv2d(3, n_feats, 3, padding=1))
        self.body = nn.Sequential(*[RefResBlock(n_feats, 3, res_scale) for _ in range(n_blocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.tail = nn.Sequential(ref_upsampler(scale, n_feats), nn.Conv2d(n_feats, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        return self.add_mean(self.tail(self.body(x) + x))


class RefMDSR(nn.Module):
    """EDSR-PyTorch ``mdsr.MDSR`` with branches for ``scales`` (in that order), rgb_range 255."""

    def __init__(self, n_blocks: int, n_feats: int, scales: tuple[int, ...] = (2, 3, 4)) -> None:
        super().__init__()
        self.scales, self.scale_idx = scales, 0
        self.sub_mean = RefMeanShift(255)
        self.add_mean = RefMeanShift(255, sign=1)
        self.head = nn.Sequential(nn.Conv2d(3, n_feats, 3, padding=1))
        self.pre_process = nn.ModuleList(nn.Sequential(RefResBlock(n_feats, 5), RefResBlock(n_feats, 5))
                                         for _ in scales)
        self.body = nn.Sequential(*[RefResBlock(n_feats, 3) for _ in range(n_blocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.upsample = nn.ModuleList(ref_upsampler(s, n_feats) for s in scales)
        self.tail = nn.Sequential(nn.Conv2d(n_feats, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_process[self.scale_idx](self.head(self.sub_mean(x)))
        return self.add_mean(self.tail(self.upsample[self.scale_idx](self.body(x) + x)))


class RefCSDBlock(nn.Module):
    """CSD ``common.ResidualBlock``: conv1, ReLU, conv2 sliced to the width."""

    def __init__(self, n: int, res_scale: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(n, n, 3, padding=1)
        self.conv2 = nn.Conv2d(n, n, 3, padding=1)
        self.n, self.res_scale = n, res_scale

    def forward(self, x: torch.Tensor, width_mult: float) -> torch.Tensor:
        w = int(self.n * width_mult)
        r = nn.functional.conv2d(x, self.conv1.weight[:w, :w], self.conv1.bias[:w], padding=1).relu()
        return x + nn.functional.conv2d(r, self.conv2.weight[:w, :w], self.conv2.bias[:w], padding=1) * self.res_scale


class RefCSDUpsampler(nn.Module):
    """CSD ``common.Upsampler``: ``blocks`` of convs to 4n (×2 each) or one to 9n (×3)."""

    def __init__(self, scale: int, n: int) -> None:
        super().__init__()
        self.n, self.r = n, 3 if scale == 3 else 2
        self.blocks = nn.ModuleList(nn.Conv2d(n, self.r * self.r * n, 3, padding=1)
                                    for _ in range(1 if scale == 3 else scale // 2))

    def forward(self, x: torch.Tensor, width_mult: float) -> torch.Tensor:
        w = int(self.n * width_mult)
        for block in self.blocks:
            x = nn.functional.conv2d(x, block.weight[:w * self.r ** 2, :w], block.bias[:w * self.r ** 2], padding=1)
            x = nn.functional.pixel_shuffle(x, self.r)
        return x


class RefCSD(nn.Module):
    """CSD ``edsr.EDSR`` (res_scale 0.1, rgb_range 255), ``forward(x, width_mult)``."""

    def __init__(self, scale: int, n_blocks: int, n_feats: int) -> None:
        super().__init__()
        self.n = n_feats
        self.sub_mean = RefMeanShift(255)
        self.add_mean = RefMeanShift(255, sign=1)
        self.head = nn.Conv2d(3, n_feats, 3, padding=1)
        self.body = nn.ModuleList(RefCSDBlock(n_feats, 0.1) for _ in range(n_blocks))
        self.body_conv = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.upsampler = RefCSDUpsampler(scale, n_feats)
        self.tail_conv = nn.Conv2d(n_feats, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, width_mult: float = 1.0) -> torch.Tensor:
        w = int(self.n * width_mult)
        x = nn.functional.conv2d(self.sub_mean(x), self.head.weight[:w], self.head.bias[:w], padding=1)
        res = x
        for block in self.body:
            res = block(res, width_mult)
        res = nn.functional.conv2d(res, self.body_conv.weight[:w, :w], self.body_conv.bias[:w], padding=1) + x
        x = self.upsampler(res, width_mult)
        return self.add_mean(nn.functional.conv2d(x, self.tail_conv.weight[:, :w], self.tail_conv.bias, padding=1))


class RefBasicSRBlock(nn.Module):
    """BasicSR ``ResidualBlockNoBN``: ``x + conv2(relu(conv1(x))) · res_scale``."""

    def __init__(self, n: int, res_scale: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(n, n, 3, padding=1)
        self.conv2 = nn.Conv2d(n, n, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x).relu()) * self.res_scale


class RefBasicSREDSR(nn.Module):
    """BasicSR ``edsr_arch.EDSR``, img_range 255: runs on [0, 1], ``(x - mean) · 255`` inside."""

    def __init__(self, scale: int, n_blocks: int, n_feats: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        self.conv_first = nn.Conv2d(3, n_feats, 3, padding=1)
        self.body = nn.Sequential(*[RefBasicSRBlock(n_feats, res_scale) for _ in range(n_blocks)])
        self.conv_after_body = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.upsample = ref_upsampler(scale, n_feats)
        self.conv_last = nn.Conv2d(n_feats, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_first((x - self.mean) * 255)
        x = self.conv_last(self.upsample(self.conv_after_body(self.body(x)) + x))
        return x / 255 + self.mean


@dataclass
class Opaque:
    """A class a weights_only load must refuse (pickled by reference: loading it would import code)."""

    note: str


def _randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random weights and large biases (so a bias left in the wrong range changes the output a lot)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "mean" not in name:
                p.copy_(torch.randn_like(p) * (5.0 if name.endswith("bias") else 0.8 / p[0].numel() ** 0.5))
    return model.eval()


def _image255(seed: int = 1, h: int = 6, w: int = 7) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 255


# -------------------------------------------------------------------- EDSR-PyTorch: detection and exact outputs


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_pytorch_detected_and_equal_to_the_official_model_on_0_255(tmp_path: Path, scale: int) -> None:
    ref = _randomise(RefEDSR(scale, n_blocks=2, n_feats=8), seed=scale)
    path = tmp_path / f"edsr_baseline_x{scale}.pt"
    torch.save(ref.state_dict(), path, _use_new_zipfile_serialization=scale != 2)  # x2: pre-1.6 format
    state, meta = load_state(path)
    assert meta == {"architecture": "edsr", "scale": scale, "options": {"n_blocks": 2, "n_feats": 8},
                    "layout": f"EDSR-PyTorch EDSR 2x8 x{scale}, rgb_range 255"}
    official = ref.state_dict()
    for k, v in official.items():  # every bias (mean shifts too) divided by 255, every weight as it was
        assert torch.equal(state[k], v / 255 if k.endswith(".bias") else v), k
    model = load_model(get_spec("edsr"), scale, path)
    x = _image255(scale)
    with torch.no_grad():
        want = ref(x)
        assert want.abs().max() > 50  # a real signal on the 0-255 scale
        assert torch.allclose(model(x / 255) * 255, want, rtol=0, atol=RANGE_255_ABS)
        # srtool's EDSR holding the unconverted tensors is the official network on 0-255 ...
        raw = get_spec("edsr").build(scale, n_blocks=2, n_feats=8).eval()
        raw.load_state_dict(official)
        assert torch.allclose(raw(x), want, rtol=0, atol=RANGE_255_ABS)
        # ... and on [0, 1] it is not (so the conversion above is what makes the outputs equal)
        assert (raw(x / 255) * 255 - want).abs().max() > 10


def test_edsr_large_res_scale_and_missing_mean_shift(tmp_path: Path) -> None:
    ref = _randomise(RefEDSR(2, n_blocks=1, n_feats=256, res_scale=0.1), seed=7)
    path = tmp_path / "edsr_x2.pt"
    torch.save(ref.state_dict(), path)
    assert held_model(path) == ("edsr-large", 2)
    model = load_model(get_spec("edsr-large"), 2, path)
    x = _image255(3, 5, 4)
    with torch.no_grad():
        assert torch.allclose(model(x / 255) * 255, ref(x), rtol=0, atol=RANGE_255_ABS)
    # a file without mean shifts gets EDSR-PyTorch's defaults (rgb_range 255, DIV2K mean), as that code would
    bare = tmp_path / "bare.pt"
    torch.save({k: v for k, v in ref.state_dict().items() if "mean" not in k}, bare)
    state, meta = load_state(bare)
    assert meta["layout"] == "EDSR-PyTorch EDSR 1x256 x2, rgb_range 255"
    assert torch.equal(state["add_mean.bias"], torch.tensor(MEAN))
    assert torch.equal(state["sub_mean.bias"], -torch.tensor(MEAN))
    with torch.no_grad():
        assert torch.allclose(load_model(get_spec("edsr-large"), 2, bare)(x / 255) * 255, ref(x), rtol=0, atol=RANGE_255_ABS)


def test_srtool_names_on_0_1_are_kept_as_they_are(tmp_path: Path) -> None:
    torch.manual_seed(0)
    own = get_spec("edsr").build(3, n_blocks=2, n_feats=8)
    torch.save(own.state_dict(), tmp_path / "plain.pt")
    state, meta = load_state(tmp_path / "plain.pt")
    assert meta["layout"] == "EDSR-PyTorch EDSR 2x8 x3, rgb_range 1"
    assert all(torch.equal(state[k], v) for k, v in own.state_dict().items())


def test_mdsr_one_file_serves_every_scale_and_branches_are_reordered(tmp_path: Path) -> None:
    ref = _randomise(RefMDSR(n_blocks=2, n_feats=8, scales=(4, 2, 3)), seed=11)
    path = tmp_path / "mdsr.pt"
    torch.save(ref.state_dict(), path)
    assert load_state(path)[1] == {"architecture": "mdsr", "scale": None, "options": {"n_blocks": 2, "n_feats": 8},
                                   "layout": "EDSR-PyTorch MDSR 2x8 x2/x3/x4, rgb_range 255"}
    assert held_model(path) == ("mdsr", None)
    x = _image255(5)
    for scale in (2, 3, 4):
        ref.scale_idx = ref.scales.index(scale)
        model = load_model(get_spec("mdsr"), scale, path)
        with torch.no_grad():
            out = model(x / 255) * 255
            assert out.shape[-2:] == (6 * scale, 7 * scale)
            assert torch.allclose(out, ref(x), rtol=0, atol=RANGE_255_ABS)
    partial = RefMDSR(n_blocks=1, n_feats=8, scales=(2, 4))
    torch.save(partial.state_dict(), tmp_path / "mdsr24.pt")
    with pytest.raises(WeightsError, match=r"MDSR with branches for x2, x4: srtool's mdsr needs one each for x2, x3"):
        load_state(tmp_path / "mdsr24.pt")


# ------------------------------------------------------------------------------------------------------ CSD


def test_csd_checkpoint_runs_at_any_width(tmp_path: Path) -> None:
    ref = _randomise(RefCSD(4, n_blocks=2, n_feats=16), seed=3)
    path = tmp_path / "csd_x4.pth"  # as the official trainer saves it: DataParallel names inside a dict
    adam = {"state": {0: {"step": torch.tensor(9.0), "exp_avg": torch.zeros(3, 3, 1, 1)}},
            "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "params": [0, 1, 2]}]}
    torch.save({"epoch": 3, "model_state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()},
                "optimizer_state_dict": adam, "best_psnr": 31.5, "best_psnr_epoch": 2}, path)
    assert load_state(path)[1] == {"architecture": "csd", "scale": 4,
                                   "options": {"n_blocks": 2, "n_feats": 16, "sliced": False},
                                   "layout": "CSD 2x16 x4, rgb_range 255"}
    x = _image255(2, 5, 5)
    for width in (0.25, 0.5, 1.0):
        model = load_model(get_spec("csd"), 4, path, width=width)
        with torch.no_grad():
            assert torch.allclose(model(x / 255) * 255, ref(x, width), rtol=0, atol=RANGE_255_ABS), width
    code, out, err = srtool("upscale", str(_png(tmp_path / "a.png")), "--weights", str(path), "--width", "0.5",
                            "-o", str(tmp_path / "o.png"), "--json", "--device", "cpu")
    assert code == 0, err
    assert json.loads(out)["model"] == "csd" and json.loads(out)["scale"] == 4
    assert Image.open(tmp_path / "o.png").size == (4 * 9, 4 * 7)


# ----------------------------------------------------------------------------------------------- BasicSR EDSR


def test_basicsr_edsr_maps_its_img_range_into_the_biases(tmp_path: Path) -> None:
    ref = _randomise(RefBasicSREDSR(4, n_blocks=2, n_feats=8), seed=5)
    path = tmp_path / "EDSR_Mx4.pth"
    torch.save({"params": ref.state_dict()}, path)
    state, meta = load_state(path)
    assert meta == {"architecture": "edsr", "scale": 4, "options": {"n_blocks": 2, "n_feats": 8},
                    "layout": "BasicSR EDSR 2x8 x4, img_range 255"}
    assert torch.equal(state["body.2.bias"], ref.conv_after_body.bias / 255)
    assert torch.equal(state["tail.0.2.weight"], ref.upsample[2].weight)
    x = _image255(4) / 255
    with torch.no_grad():
        assert torch.allclose(load_model(get_spec("edsr"), 4, path)(x), ref(x), rtol=0, atol=NET_ABS)


# --------------------------------------------------------------------------------------------- RRDBNet layouts


def _rrdb(scale: int, seed: int) -> nn.Module:
    """A small srtool RRDBNet (BasicSR's names) with random weights and biases (its init zeroes the biases)."""
    return _randomise(get_spec("esrgan").build(scale, num_block=2, num_feat=8, num_grow_ch=4), seed)


def _esrgan_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """srtool/BasicSR names → xinntao/ESRGAN ``RRDBNet_arch`` names."""
    table = {"conv_body.": "trunk_conv.", "conv_up1.": "upconv1.", "conv_up2.": "upconv2.", "conv_hr.": "HRconv."}
    out = {}
    for k, v in state.items():
        m = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)", k)
        new = f"RRDB_trunk.{m[1]}.RDB{m[2]}.conv{m[3]}.{m[4]}" if m else k
        for a, b in table.items():
            new = new.replace(a, b) if new.startswith(a) else new
        out[new] = v
    return out


def _old_names(state: dict[str, torch.Tensor], stages: int) -> dict[str, torch.Tensor]:
    """srtool/BasicSR names → the sequential ``model.N`` layout (ESRGAN's transer_RRDB_models.py, reversed)."""
    top = {"conv_first": 0, "conv_up1": 3, "conv_up2": 6, "conv_hr": 3 * stages + 2, "conv_last": 3 * stages + 4}
    num_block = sum(1 for k in state if k.endswith(".rdb1.conv1.weight"))
    out = {}
    for k, v in state.items():
        m = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)", k)
        if m:
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{m[4]}"] = v
        else:
            layer, kind = k.split(".")
            out[f"model.1.sub.{num_block}.{kind}" if layer == "conv_body" else f"model.{top[layer]}.{kind}"] = v
    return out


@pytest.mark.parametrize("layout", ["basicsr", "esrgan", "bsrgan-x2", "old", "old-x2"])
def test_rrdbnet_layouts_give_srtool_esrgan_exactly(tmp_path: Path, layout: str) -> None:
    scale = 2 if layout.endswith("x2") else 4
    own = _rrdb(scale, seed=len(layout))
    state = own.state_dict()
    saved = {"basicsr": lambda: {"params_ema": state, "params": _rrdb(scale, seed=99).state_dict()},
             "esrgan": lambda: _esrgan_names(state), "bsrgan-x2": lambda: _esrgan_names(state),
             "old": lambda: _old_names(state, 2), "old-x2": lambda: _old_names(state, 1)}[layout]()
    path = tmp_path / f"{layout}.pth"
    torch.save(saved, path)
    name = {"basicsr": "BasicSR RRDBNet", "esrgan": "ESRGAN RRDB_trunk", "bsrgan-x2": "ESRGAN RRDB_trunk",
            "old": "ESRGAN old (model.N)", "old-x2": "ESRGAN old (model.N)"}[layout]
    assert load_state(path)[1] == {"architecture": "esrgan", "scale": scale,
                                   "options": {"num_block": 2, "num_feat": 8, "num_grow_ch": 4},
                                   "layout": f"{name} 2x8 (growth 4) x{scale}"}
    x = _image255(6) / 255
    with torch.no_grad():  # params_ema, not params, for BasicSR
        assert torch.equal(load_model(get_spec("esrgan"), scale, path)(x), own(x))


def test_basicsr_x1_rrdbnet_and_pixel_shuffle_old_esrgan_are_refused(tmp_path: Path) -> None:
    state = _rrdb(4, seed=0).state_dict()
    state["conv_first.weight"] = torch.zeros(8, 48, 3, 3)  # pixel-unshuffle by 4: BasicSR's x1
    torch.save({"params_ema": state}, tmp_path / "RealESRGAN_x1.pth")
    with pytest.raises(WeightsError, match=r"BasicSR RRDBNet x1 \(pixel-unshuffle input: conv_first takes 48 "
                                           r"channels\) is not supported: srtool upscales x2, x3 or x4"):
        load_state(tmp_path / "RealESRGAN_x1.pth")
    old = _old_names(_rrdb(4, seed=0).state_dict(), 2)
    old["model.3.weight"] = torch.zeros(32, 8, 3, 3)
    torch.save(old, tmp_path / "old_pixelshuffle.pth")
    with pytest.raises(WeightsError, match="ESRGAN old .model.N. with a pixel-shuffle upsampler is not supported"):
        load_state(tmp_path / "old_pixelshuffle.pth")


# -------------------------------------------------------- Real-ESRGAN: BasicSR RRDBNet x2/x4, SRVGGNetCompact


def ref_pixel_unshuffle(x: torch.Tensor, scale: int) -> torch.Tensor:
    """BasicSR ``arch_util.pixel_unshuffle``: (b, c, s·h, s·w) → (b, c·s², h, w)."""
    b, c, hh, hw = x.size()
    h, w = hh // scale, hw // scale
    return x.view(b, c, h, scale, w, scale).permute(0, 1, 3, 5, 2, 4).reshape(b, c * scale**2, h, w)


class RefRDB(nn.Module):
    """BasicSR ``ResidualDenseBlock``: five dense conv3 (growth ``gc``), LeakyReLU 0.2, ``x5 · 0.2 + x``."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)) * 0.2 + x


class RefRRDB(nn.Module):
    """BasicSR ``RRDB``: ``rdb3(rdb2(rdb1(x))) · 0.2 + x``."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = RefRDB(nf, gc), RefRDB(nf, gc), RefRDB(nf, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RefRRDBNet(nn.Module):
    """BasicSR ``rrdbnet_arch.RRDBNet`` (3 → 3 channels): at ``scale`` 2 (1) the input is pixel-unshuffled by 2 (4),
    conv_first taking 12 (48) channels; always two nearest ×2 stages."""

    def __init__(self, scale: int, num_feat: int, num_block: int, num_grow_ch: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(3 * {1: 16, 2: 4, 4: 1}[scale], num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RefRRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = ref_pixel_unshuffle(x, 2) if self.scale == 2 else ref_pixel_unshuffle(x, 4) if self.scale == 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(nn.functional.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(nn.functional.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def ref_realesrganer(model: RefRRDBNet, x: torch.Tensor) -> torch.Tensor:
    """Real-ESRGAN's ``RealESRGANer`` around an x2 model (pre_pad 0, no tiles): reflect-pad the bottom and right to
    even sizes, run, crop the output back."""
    pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
    out = model(nn.functional.pad(x, (0, pad_w, 0, pad_h), "reflect"))
    return out[..., :out.shape[-2] - 2 * pad_h, :out.shape[-1] - 2 * pad_w]


class RefSRVGGNetCompact(nn.Module):
    """Real-ESRGAN ``srvgg_arch.SRVGGNetCompact`` (3 → 3 channels, act_type prelu): ``body`` = conv, PReLU,
    ``num_conv`` × (conv, PReLU), conv to 3·upscale²; PixelShuffle; ``out += nearest(x)``."""

    def __init__(self, num_feat: int, num_conv: int, upscale: int) -> None:
        super().__init__()
        self.upscale = upscale
        self.body = nn.ModuleList([nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)])
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(nn.PReLU(num_parameters=num_feat))
        self.body.append(nn.Conv2d(num_feat, 3 * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        out += nn.functional.interpolate(x, scale_factor=self.upscale, mode="nearest")
        return out


@pytest.mark.parametrize(("scale", "num_conv"), [(4, 3), (3, 1), (2, 2)])
def test_realesrgan_compact_detected_and_equal_to_the_official_model(tmp_path: Path, scale: int,
                                                                    num_conv: int) -> None:
    ref = _randomise(RefSRVGGNetCompact(num_feat=8, num_conv=num_conv, upscale=scale), seed=40 + scale)
    path = tmp_path / f"realesr-general-x{scale}v3.pth"
    torch.save({"params": ref.state_dict()}, path)
    state, meta = load_state(path)
    assert meta == {"architecture": "compact", "scale": scale, "options": {"num_feat": 8, "num_conv": num_conv},
                    "layout": f"Real-ESRGAN SRVGGNetCompact {num_conv}x8 x{scale}"}
    assert state.keys() == ref.state_dict().keys()
    assert held_model(path) == ("compact", scale)
    x = _image255(scale, 9, 11) / 255
    with torch.no_grad():
        want = ref(x)
        assert torch.allclose(load_model(get_spec("compact"), scale, path)(x), want, rtol=0, atol=NET_ABS)


def test_realesrgan_compact_without_prelu_or_rgb_is_refused(tmp_path: Path) -> None:
    state = RefSRVGGNetCompact(num_feat=8, num_conv=2, upscale=4).state_dict()
    relu = {k: v for k, v in state.items() if not re.fullmatch(r"body\.\d*[13579]\.weight", k)}  # act_type relu
    gray = {**state, "body.6.weight": torch.zeros(16, 8, 3, 3), "body.6.bias": torch.zeros(16)}  # 1 channel out
    for name, bad, message in (("relu", relu, "body.N tensors are not conv, PReLU, ..., conv"),
                               ("gray", gray, "takes 3 channels and its last convolution gives 16")):
        torch.save({"params": bad}, tmp_path / f"{name}.pth")
        with pytest.raises(WeightsError, match=f"Real-ESRGAN SRVGGNetCompact .*{re.escape(message)}"):
            load_state(tmp_path / f"{name}.pth")


def test_realesrgan_x2plus_runs_as_esrgan_x2_with_its_pixel_unshuffle(tmp_path: Path) -> None:
    ref = _randomise(RefRRDBNet(2, num_feat=8, num_block=1, num_grow_ch=4), seed=12)
    path = tmp_path / "RealESRGAN_x2plus.pth"
    torch.save({"params_ema": ref.state_dict(),
                "params": RefRRDBNet(2, num_feat=8, num_block=1, num_grow_ch=4).state_dict()}, path)
    options = {"num_block": 1, "num_feat": 8, "num_grow_ch": 4, "unshuffle": 2}
    assert load_state(path)[1] == {"architecture": "esrgan", "scale": 2, "options": options,
                                   "layout": "BasicSR RRDBNet 1x8 (growth 4) x2, pixel-unshuffle 2"}
    assert held_model(path) == ("esrgan", 2)
    model = load_model(get_spec("esrgan"), 2, path)
    with torch.no_grad():
        for h, w in ((6, 8), (7, 9)):  # odd sizes: padded and cropped as RealESRGANer does
            x = _image255(h * w, h, w) / 255
            out = model(x)
            assert out.shape == (1, 3, 2 * h, 2 * w)
            assert torch.allclose(out, ref_realesrganer(ref, x), rtol=0, atol=NET_ABS), (h, w)
    # tiled: the overlap is the unshuffled network's radius (38 LR pixels, even); the engine keeps every window on
    # the 2×2 cells (odd sides padded as the model pads them, odd tiles rounded up)
    overlap = get_spec("esrgan").overlap(2, **options)
    assert overlap == rrdbnet_radius(2, num_block=1, unshuffle=2) == 38
    for (h, w), tile, count in (((128, 128), 32, 16), ((129, 127), 31, 20)):
        x = _image255(3, h, w) / 255
        whole = Engine(model, 2, overlap, torch.device("cpu"), tile=0).run(x)
        tiles: list[int] = []
        tiled = Engine(model, 2, overlap, torch.device("cpu"), tile=tile).run(x, lambda d, total: tiles.append(total))
        assert tiled.shape == whole.shape == (1, 3, 2 * h, 2 * w)
        assert tiles[-1] == count and (tiled - whole).abs().max().item() < DEEP_NET_ABS, (h, w)


def test_realesrgan_x4plus_anime_6b_counts_its_blocks(tmp_path: Path) -> None:
    ref = _randomise(RefRRDBNet(4, num_feat=8, num_block=6, num_grow_ch=4), seed=6)
    path = tmp_path / "RealESRGAN_x4plus_anime_6B.pth"
    torch.save({"params_ema": ref.state_dict()}, path)
    assert load_state(path)[1] == {"architecture": "esrgan", "scale": 4,
                                   "options": {"num_block": 6, "num_feat": 8, "num_grow_ch": 4},
                                   "layout": "BasicSR RRDBNet 6x8 (growth 4) x4"}
    x = _image255(9, 5, 6) / 255
    with torch.no_grad():
        assert torch.allclose(load_model(get_spec("esrgan"), 4, path)(x), ref(x), rtol=0, atol=NET_ABS)


@pytest.mark.parametrize("name", ["realesr-animevideov3", "RealESRGAN_x2plus"])
def test_upscale_runs_real_esrgan_files_as_they_are(tmp_path: Path, name: str) -> None:
    ref, model, scale = ((_randomise(RefSRVGGNetCompact(8, 2, 4), seed=1), "compact", 4) if name.startswith("realesr")
                         else (_randomise(RefRRDBNet(2, 8, 1, 4), seed=2), "esrgan", 2))
    torch.save({"params": ref.state_dict()}, tmp_path / f"{name}.pth")
    src = _png(tmp_path / "a.png", 23, 19)
    code, out, err = srtool("upscale", str(src), "--weights", str(tmp_path / f"{name}.pth"), "--tile", "8", "--json",
                            "--device", "cpu", "--precision", "fp32")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["model"], doc["scale"]) == (model, scale)
    got = np.asarray(Image.open(doc["files"][0]["output"])).astype(int)
    x = torch.from_numpy(np.array(Image.open(src))).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = (ref(x) if scale == 4 else ref_realesrganer(ref, x)).clamp(0, 1).mul(255).round()
    assert got.shape == (19 * scale, 23 * scale, 3)
    assert np.abs(got - want[0].permute(1, 2, 0).numpy().astype(int)).max() <= FLIPPED_LEVELS


# ---------------------------------------------------------------------------------------- BasicSR MSRResNet


class RefMSRResNet(nn.Module):
    """BasicSR ``srresnet_arch.MSRResNet``: conv_first, lrelu 0.1, ResidualBlockNoBN × n, upconv1 (r²n, ×2/×3)
    or upconv1 + upconv2 (×4) each with pixel shuffle and lrelu, conv_hr, lrelu, conv_last, + bilinear(x)."""

    def __init__(self, scale: int, n_blocks: int, n_feats: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(3, n_feats, 3, 1, 1)
        self.body = nn.Sequential(*[RefBasicSRBlock(n_feats, 1.0) for _ in range(n_blocks)])
        self.upconv1 = nn.Conv2d(n_feats, n_feats * (4 if scale == 4 else scale * scale), 3, 1, 1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(n_feats, n_feats * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2 if scale == 4 else scale)
        self.conv_hr = nn.Conv2d(n_feats, n_feats, 3, 1, 1)
        self.conv_last = nn.Conv2d(n_feats, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.scale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        return out + nn.functional.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_basicsr_msrresnet_detected_and_equal_to_the_official_model(tmp_path: Path, scale: int) -> None:
    ref = _randomise(RefMSRResNet(scale, n_blocks=2, n_feats=8), seed=30 + scale)
    path = tmp_path / f"MSRResNet_x{scale}.pth"
    torch.save({"params": ref.state_dict()}, path)
    assert load_state(path)[1] == {"architecture": "srresnet", "scale": scale,
                                   "options": {"variant": "basicsr", "n_blocks": 2, "n_feats": 8},
                                   "layout": f"BasicSR MSRResNet 2x8 x{scale}"}
    assert held_model(path) == ("srresnet", scale)
    x = _image255(scale, 9, 11) / 255
    with torch.no_grad():
        assert torch.allclose(load_model(get_spec("srresnet"), scale, path)(x), ref(x), rtol=0, atol=NET_ABS)


def test_msrresnet_upscales_tiled_and_fine_tunes_as_itself(tmp_path: Path) -> None:
    ref = _randomise(RefMSRResNet(4, n_blocks=2, n_feats=8), seed=3)
    torch.save({"params_ema": ref.state_dict()}, tmp_path / "MSRResNet_x4.pth")
    src = _png(tmp_path / "a.png", 72, 56)
    outs = []
    for tile in ("0", "8"):  # several windows (exact tiling: test_engine); here float noise may flip a rounding
        out = tmp_path / f"t{tile}.png"
        code, _, err = srtool("upscale", str(src), "--weights", str(tmp_path / "MSRResNet_x4.pth"), "--tile", tile,
                              "-o", str(out), "--device", "cpu", "--precision", "fp32")
        assert code == 0, err
        outs.append(np.asarray(Image.open(out)))
    assert outs[0].shape == (224, 288, 3) and np.abs(outs[0].astype(int) - outs[1]).max() <= FLIPPED_LEVELS
    x = torch.from_numpy(np.array(Image.open(src))).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = ref(x).clamp(0, 1).mul(255).round().squeeze(0).permute(1, 2, 0).numpy()
    assert np.abs(outs[0].astype(int) - want.astype(int)).max() <= FLIPPED_LEVELS
    data = tmp_path / "hr"
    data.mkdir()
    for i in range(2):
        _png(data / f"{i}.png", 48, 48)
    run = tmp_path / "run"
    code, _, err = srtool("train", "-m", "srresnet", "-s", "4", "-d", str(data), "--val-data", str(data),
                          "--init", str(tmp_path / "MSRResNet_x4.pth"), "--steps", "1", "--batch", "1", "--patch", "8",
                          "--val-every", "1", "--workers", "0", "--device", "cpu", "-o", str(run))
    assert code == 0, err
    assert f"--init: copied {len(ref.state_dict())} of {len(ref.state_dict())} tensors" in err
    assert "into its network (variant basicsr, n_blocks 2, n_feats 8)" in err
    assert held_model(run / "best.safetensors") == ("srresnet", 4)
    assert load_state(run / "best.safetensors")[1]["options"] == {"variant": "basicsr", "n_blocks": 2, "n_feats": 8}
    code, _, err = srtool("train", "-m", "edsr", "-s", "4", "-d", str(data), "--init", str(tmp_path / "MSRResNet_x4.pth"),
                          "--steps", "1", "--patch", "8", "--workers", "0", "-o", str(tmp_path / "run2"))
    assert code == 4 and "no tensor fits edsr x4" in err
    assert not (tmp_path / "run2").exists()  # a file that fits nothing leaves no run folder behind


# ------------------------------------------------------------------ full-size layouts: names and shapes, not run


def _meta(module_fn) -> dict[str, torch.Tensor]:
    """The module's state dict with weights on the meta device (shapes only) and real biases (the range
    conversion divides those; arithmetic on meta tensors would load torch's compiler stack, seconds)."""
    with torch.device("meta"):
        state = module_fn().state_dict()
    return {k: torch.zeros(v.shape) if k.endswith(".bias") else v for k, v in state.items()}


@functools.cache
def _meta_build(arch: str, scale: int, options: tuple[tuple[str, int], ...]) -> dict[str, torch.Tensor]:
    """srtool's own module's state dict, built once: on the meta device, but RRDBNet on the CPU (its init on
    meta tensors loads torch's compiler stack, seconds; on the CPU it takes one)."""
    if arch == "esrgan":
        return get_spec(arch).build(scale, **dict(options)).state_dict()
    return _meta(lambda: get_spec(arch).build(scale, **dict(options)))


def _esrgan_x4() -> dict[str, torch.Tensor]:
    return _meta_build("esrgan", 4, (("num_block", 23), ("num_feat", 64), ("num_grow_ch", 32)))


def _with_mean_shifts(state: dict[str, torch.Tensor], rgb_range: float) -> dict[str, torch.Tensor]:
    mean = torch.tensor(MEAN) * rgb_range
    return {**state, "sub_mean.bias": -mean, "add_mean.bias": mean}


FULL = {
    "edsr-baseline-x2": (lambda: _with_mean_shifts(_meta(lambda: RefEDSR(2, 16, 64)), 255),
                         "edsr", 2, {"n_blocks": 16, "n_feats": 64}),
    "edsr-x4": (lambda: _with_mean_shifts(_meta(lambda: RefEDSR(4, 32, 256, 0.1)), 255),
                "edsr-large", 4, {"n_blocks": 32, "n_feats": 256}),
    "mdsr": (lambda: _with_mean_shifts(_meta(lambda: RefMDSR(80, 64)), 255), "mdsr", None,
             {"n_blocks": 80, "n_feats": 64}),
    "csd-x3": (lambda: _with_mean_shifts(_meta(lambda: RefCSD(3, 32, 256)), 255), "csd", 3,
               {"n_blocks": 32, "n_feats": 256, "sliced": False}),
    "basicsr-edsr-L-x3": (lambda: _meta(lambda: RefBasicSREDSR(3, 32, 256)), "edsr-large", 3,
                          {"n_blocks": 32, "n_feats": 256}),
    "realesrgan-x4plus": (_esrgan_x4, "esrgan", 4,
                          {"num_block": 23, "num_feat": 64, "num_grow_ch": 32}),
    "RRDB_ESRGAN_x4": (lambda: _esrgan_names(_esrgan_x4()), "esrgan", 4,
                       {"num_block": 23, "num_feat": 64, "num_grow_ch": 32}),
    "RRDB_ESRGAN_x4_old_arch": (lambda: _old_names(_esrgan_x4(), 2), "esrgan", 4,
                                {"num_block": 23, "num_feat": 64, "num_grow_ch": 32}),
    "MSRResNet_x4": (lambda: _meta(lambda: RefMSRResNet(4, 16, 64)), "srresnet", 4,
                     {"variant": "basicsr", "n_blocks": 16, "n_feats": 64}),
    "RealESRGAN_x2plus": (lambda: _meta(lambda: RefRRDBNet(2, 64, 23, 32)), "esrgan", 2,
                          {"num_block": 23, "num_feat": 64, "num_grow_ch": 32, "unshuffle": 2}),
    "RealESRGAN_x4plus_anime_6B": (lambda: _meta(lambda: RefRRDBNet(4, 64, 6, 32)), "esrgan", 4,
                                   {"num_block": 6, "num_feat": 64, "num_grow_ch": 32}),
    "realesr-general-x4v3": (lambda: _meta(lambda: RefSRVGGNetCompact(64, 32, 4)), "compact", 4,
                             {"num_feat": 64, "num_conv": 32}),
    "realesr-animevideov3": (lambda: _meta(lambda: RefSRVGGNetCompact(64, 16, 4)), "compact", 4,
                             {"num_feat": 64, "num_conv": 16}),
}


@pytest.mark.parametrize("name", list(FULL))
def test_full_size_layouts_convert_to_srtool_names_and_shapes(name: str) -> None:
    make, arch, scale, options = FULL[name]
    found = convert(make())
    assert found is not None
    state, info = found
    assert (info["architecture"], info["scale"], info["options"]) == (arch, scale, options)
    own = _meta_build(arch, scale or 4, tuple(sorted(options.items())))
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in own.items()}


# ------------------------------------------------------------------------------------- the command line and errors


def _png(path: Path, w: int = 9, h: int = 7) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_upscale_takes_model_and_scale_from_the_file(tmp_path: Path) -> None:
    ref = _randomise(RefEDSR(3, n_blocks=2, n_feats=8), seed=21)
    torch.save(ref.state_dict(), tmp_path / "edsr_x3.pt")
    src = _png(tmp_path / "a.png")
    code, out, err = srtool("upscale", str(src), "--weights", str(tmp_path / "edsr_x3.pt"), "--json", "--device", "cpu",
                          "--precision", "fp32")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["model"], doc["scale"]) == ("edsr", 3) and doc["files"][0]["output"].endswith("a_edsr_x3.png")
    got = np.asarray(Image.open(tmp_path / "a_edsr_x3.png")).astype(int)
    x = torch.from_numpy(np.array(Image.open(src))).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        want = ref(x).clamp(0, 255).round()[0].permute(1, 2, 0).numpy().astype(int)
    assert got.shape == (21, 27, 3) and np.abs(got - want).max() <= FLIPPED_LEVELS
    assert (got != want).mean() <= FLIPPED_SHARE


def test_asked_model_or_scale_that_the_file_does_not_hold(tmp_path: Path) -> None:
    torch.save(RefEDSR(2, n_blocks=2, n_feats=8).state_dict(), tmp_path / "edsr_x2.pt")
    src, w = str(_png(tmp_path / "a.png")), str(tmp_path / "edsr_x2.pt")
    code, _, err = srtool("upscale", src, "-m", "edsr", "-s", "4", "--weights", w)
    assert code == 4 and (f"{w} holds edsr x2 weights, expected edsr x4 "
                          "(detected layout: EDSR-PyTorch EDSR 2x8 x2, rgb_range 255)") in err
    code, _, err = srtool("upscale", src, "-m", "esrgan", "--weights", w)  # --scale stays the default, 4
    assert code == 4 and "holds edsr x2 weights, expected esrgan x4" in err
    code, _, err = srtool("upscale", src, "-s", "3", "--weights", w)
    assert code == 4 and "holds edsr x2 weights, expected edsr x3" in err
    assert not list(tmp_path.glob("a_*"))


def test_unknown_layout_and_code_pickles_are_one_line_errors(tmp_path: Path) -> None:
    src = str(_png(tmp_path / "a.png"))
    torch.save({"encoder.0.weight": torch.zeros(4, 3, 3, 3), "decoder.weight": torch.zeros(3, 4, 1, 1)},
               tmp_path / "other.pth")
    code, _, err = srtool("upscale", src, "--weights", str(tmp_path / "other.pth"))
    assert code == 4 and (f"cannot tell which model {tmp_path / 'other.pth'} holds: its tensors (encoder.0.weight, "
                          "decoder.weight, ...) match no layout srtool recognises") in err
    code, _, err = srtool("upscale", src, "-m", "edsr", "-s", "2", "--weights", str(tmp_path / "other.pth"))
    assert code == 4 and "does not fit edsr x2: " in err
    torch.save({"params": {"conv_first.weight": torch.zeros(1)}, "opt": Opaque("x")}, tmp_path / "code.pth")
    for args in ([], ["-m", "esrgan", "-s", "4"]):
        code, _, err = srtool("upscale", src, *args, "--weights", str(tmp_path / "code.pth"))
        assert code == 4 and "it needs arbitrary code to load" in err and len(err.strip().splitlines()) == 1


def test_own_safetensors_unchanged_and_train_init_gets_converted_tensors(tmp_path: Path) -> None:
    ref = _randomise(RefEDSR(2, n_blocks=2, n_feats=8), seed=4)
    torch.save(ref.state_dict(), tmp_path / "edsr_x2.pt")
    state, meta = load_state(tmp_path / "edsr_x2.pt")
    save_weights(tmp_path / "own.safetensors", state, {"architecture": "edsr", "scale": 2,
                                                       "options": {"n_blocks": 2, "n_feats": 8}})
    again, own_meta = load_state(tmp_path / "own.safetensors")
    assert "layout" not in own_meta and own_meta["options"] == {"n_blocks": 2, "n_feats": 8}
    assert all(torch.equal(again[k], v) for k, v in state.items())
    assert held_model(tmp_path / "own.safetensors") == ("edsr", 2)
    save_file(ref.state_dict(), str(tmp_path / "foreign.safetensors"))  # safetensors without srtool's metadata
    assert load_state(tmp_path / "foreign.safetensors")[1]["layout"] == "EDSR-PyTorch EDSR 2x8 x2, rgb_range 255"
    student = get_spec("edsr").build(4, n_blocks=2, n_feats=8)  # the x4 recipe starts from x2
    copied, skipped = copy_matching(student, state)
    assert copied == len(state) and skipped == ["tail.0.2.weight (32, 8, 3, 3)", "tail.0.2.bias (32,)"]
    assert torch.equal(student.head[0].bias, ref.head[0].bias / 255)


def test_upscaler_tile_overlap_follows_the_depth_the_file_holds(tmp_path: Path) -> None:
    torch.save(RefEDSR(2, n_blocks=20, n_feats=4).state_dict(), tmp_path / "deep.pt")
    upscaler = Upscaler("edsr", 2, weights=tmp_path / "deep.pt", device="cpu", precision="fp32")
    assert upscaler.overlap == get_spec("edsr").overlap(2, n_blocks=20) == 44  # not the 16-block default's 36


def test_bench_uses_the_model_and_scales_the_file_holds(tmp_path: Path) -> None:
    ref = _randomise(RefMDSR(n_blocks=1, n_feats=4), seed=8)
    torch.save(ref.state_dict(), tmp_path / "mdsr.pt")
    data = tmp_path / "hr"
    data.mkdir()
    _png(data / "x.png", 24, 24)
    common = ["bench", "-d", "folder", "--data-dir", str(data), "--weights", str(tmp_path / "mdsr.pt"), "--json",
              "--device", "cpu"]
    code, out, err = srtool(*common)
    assert code == 0, err
    rows = json.loads(out)["results"]
    assert [(r["model"], r["scale"]) for r in rows] == [("mdsr", 2), ("mdsr", 3), ("mdsr", 4)]
    assert rows[0]["params"] == sum(p.numel() for p in ref.parameters()) - 2 * 12  # mean shifts are buffers
    code, out, err = srtool(*common, "-s", "3")
    assert code == 0 and [r["scale"] for r in json.loads(out)["results"]] == [3]


def test_video_uses_the_model_and_scale_the_file_holds(tmp_path: Path) -> None:
    torch.save(_randomise(RefEDSR(3, n_blocks=1, n_feats=4), seed=2).state_dict(), tmp_path / "edsr_x3.pt")
    clip = tmp_path / "c.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc=size=16x12:rate=5:duration=0.4", "-c:v", "ffv1", str(clip)], check=True)
    code, out, err = srtool("video", str(clip), "--weights", str(tmp_path / "edsr_x3.pt"), "--json", "--device", "cpu",
                            "--precision", "fp32", "--codec", "ffv1")
    assert code == 0, err
    report = json.loads(out)
    assert report["output"].endswith("c_edsr_x3.mkv") and report["output_size"] == "48x36" and report["frames"] == 2

    def frames(path: Path, w: int, h: int) -> np.ndarray:
        raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-sws_flags", SWS_FLAGS, "-f", "rawvideo",
                              "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        return np.frombuffer(bytearray(raw), np.uint8).reshape(-1, h, w, 3)

    # ffv1 is lossless: the frames are the file's network's, not the shipped weights'
    want = Upscaler("edsr", 3, weights=tmp_path / "edsr_x3.pt", device="cpu", precision="fp32").upscale_frames(
        frames(clip, 16, 12))
    got = frames(Path(report["output"]), 48, 36)
    assert got.shape == want.shape and np.abs(got.astype(int) - want).max() <= FLIPPED_LEVELS


def test_written_weights_get_the_usual_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """safetensors makes its own file (0600): the atomic write still leaves 0666 less the umask, as open() would."""
    umask = os.umask(0o022)
    os.umask(umask)
    path = save_weights(tmp_path / "w.safetensors", {"a": torch.zeros(2)}, {"architecture": "edsr"})
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    # another umask (the one sr_cli.atomic read when it was imported) gives other permissions
    monkeypatch.setattr(atomic, "_UMASK", 0o027)
    path = save_weights(tmp_path / "w2.safetensors", {"a": torch.zeros(2)}, {"architecture": "edsr"})
    assert path.stat().st_mode & 0o777 == 0o640
