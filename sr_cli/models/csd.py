"""The width-switchable EDSR of CSD (Wang et al. 2021, "channel-splitting network"), official CSD names.

One set of weights serves every width: at width ``w`` each convolution uses only its first ``int(C·w)``
input and output channels, which makes the network a dense EDSR of ``int(C·w)`` features (the student).
The image channels (the head's input, the tail's output) are never sliced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sr_cli.constants import DIV2K_MEAN
from sr_cli.models.blocks import MeanShift
from sr_cli.upsampling import check_scale, stage_factors

_MEAN_SHIFT = ("sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias")


def width_channels(n_feats: int, width: float) -> int:
    """Feature channels at ``width`` (a fraction in (0, 1]); ValueError outside it or below one channel."""
    if not 0 < width <= 1:
        raise ValueError(f"width must be in (0, 1], got {width}")
    c = int(n_feats * width)
    if c < 1:
        raise ValueError(f"width {width} leaves no channel of {n_feats}")
    return c


class _SlimConv2d(nn.Conv2d):
    """A 'same' convolution that runs on the first input channels it is given and the first ``out`` outputs."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, out: int | None = None) -> torch.Tensor:
        out = self.out_channels if out is None else out
        return F.conv2d(x, self.weight[:out, : x.shape[1]], self.bias[:out], padding=self.padding)


class _SlimResBlock(nn.Module):
    """``x + res_scale · conv2(relu(conv1(x)))`` at the width of ``x``."""

    def __init__(self, n_feats: int, res_scale: float) -> None:
        super().__init__()
        self.conv1 = _SlimConv2d(n_feats, n_feats)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = _SlimConv2d(n_feats, n_feats)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return x + self.conv2(self.act(self.conv1(x, c)), c) * self.res_scale


class _SlimUpsampler(nn.Module):
    """Sub-pixel upsampler; at width ``c`` a stage's conv keeps its first ``r²·c`` outputs, exactly the
    channels PixelShuffle(r) turns into the first ``c`` feature maps (output channel ``k·r² + i`` → map ``k``)."""

    def __init__(self, scale: int, n_feats: int) -> None:
        super().__init__()
        self.factors = stage_factors(scale)
        self.blocks = nn.ModuleList(_SlimConv2d(n_feats, r * r * n_feats) for r in self.factors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r, block in zip(self.factors, self.blocks, strict=True):
            x = F.pixel_shuffle(block(x, r * r * x.shape[1]), r)
        return x


class CSDEDSR(nn.Module):
    """EDSR (default 32 × 256, ``res_scale`` 0.1) whose width ``set_width`` switches; full width by default."""

    def __init__(self, scale: int, n_blocks: int = 32, n_feats: int = 256, res_scale: float = 0.1,
                 num_channels: int = 3) -> None:
        super().__init__()
        check_scale(scale)
        if num_channels != len(DIV2K_MEAN):
            raise ValueError(f"CSDEDSR takes RGB input, not {num_channels} channels")
        self.n_feats = n_feats
        self.active_channels = n_feats
        self.sub_mean = MeanShift(DIV2K_MEAN, sign=-1)
        self.add_mean = MeanShift(DIV2K_MEAN, sign=1)
        self.head = _SlimConv2d(num_channels, n_feats)
        self.body = nn.ModuleList(_SlimResBlock(n_feats, res_scale) for _ in range(n_blocks))
        self.body_conv = _SlimConv2d(n_feats, n_feats)
        self.upsampler = _SlimUpsampler(scale, n_feats)
        self.tail_conv = _SlimConv2d(n_feats, num_channels)

    def set_width(self, width: float) -> None:
        """Run with the first ``int(n_feats · width)`` feature channels from now on."""
        self.active_channels = width_channels(self.n_feats, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x), self.active_channels)
        res = x
        for block in self.body:
            res = block(res)
        x = x + self.body_conv(res, self.active_channels)
        return self.add_mean(self.tail_conv(self.upsampler(x)))

    def active_params(self, width: float) -> int:
        """Parameters used at ``width`` (those of the dense EDSR it equals; mean shifts excluded)."""
        return sum(v.numel() for k, v in _sliced_views(self.state_dict(), width).items() if k not in _MEAN_SHIFT)


def slice_state_dict(csd_state: dict[str, torch.Tensor], width: float) -> dict[str, torch.Tensor]:
    """The dense EDSR (EDSR-PyTorch names) that a CSDEDSR state dict runs at ``width``: load it into
    ``EDSR(scale, n_blocks, int(n_feats · width), res_scale)``. Tensors are contiguous copies."""
    return {k: v.clone() for k, v in _sliced_views(csd_state, width).items()}


def narrow_state_dict(csd_state: dict[str, torch.Tensor], width: float) -> dict[str, torch.Tensor]:
    """:func:`slice_state_dict` with the CSD names kept: the state of ``CSDEDSR(scale, n_blocks,
    int(n_feats · width))`` (a standalone student). Tensors are contiguous copies."""
    return {k: v.clone() for k, v in _narrow_views(csd_state, width).items()}


def _narrow_views(csd_state: dict[str, torch.Tensor], width: float) -> dict[str, torch.Tensor]:
    """Each tensor of ``csd_state`` cut to the channels used at ``width`` (views, CSD names)."""
    n_feats = csd_state["head.weight"].shape[0]
    c = width_channels(n_feats, width)
    out: dict[str, torch.Tensor] = {}
    for key, t in csd_state.items():
        if key in _MEAN_SHIFT:
            out[key] = t
            continue
        layer = key.rsplit(".", 1)[0]
        rows = None if layer == "tail_conv" else t.shape[0] // n_feats * c  # r²·c for the upsampler stages
        cols = None if layer == "head" or t.ndim == 1 else c
        out[key] = t[:rows] if t.ndim == 1 else t[:rows, :cols]
    return out


def _sliced_views(csd_state: dict[str, torch.Tensor], width: float) -> dict[str, torch.Tensor]:
    """``slice_state_dict`` as views into ``csd_state``: :func:`_narrow_views` under EDSR-PyTorch names."""
    views = _narrow_views(csd_state, width)
    n_blocks = sum(1 for k in csd_state if k.startswith("body.") and k.endswith(".conv1.weight"))
    names = {"head": "head.0", "body_conv": f"body.{n_blocks}", "tail_conv": "tail.1"}
    for i in range(n_blocks):
        names[f"body.{i}.conv1"], names[f"body.{i}.conv2"] = f"body.{i}.body.0", f"body.{i}.body.2"
    for j in range(sum(1 for k in csd_state if k.startswith("upsampler.blocks.") and k.endswith(".weight"))):
        names[f"upsampler.blocks.{j}"] = f"tail.0.{2 * j}"
    out = {}
    for key, t in views.items():
        layer, kind = key.rsplit(".", 1)
        out[key if key in _MEAN_SHIFT else f"{names[layer]}.{kind}"] = t
    return out
