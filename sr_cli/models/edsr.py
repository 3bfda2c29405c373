"""EDSR (baseline and large) and MDSR (Lim et al. 2017), with EDSR-PyTorch's state-dict names.

Inputs are RGB in [0, 1] (EDSR-PyTorch's ``rgb_range 1``); official checkpoints, trained with
``rgb_range 255``, need every bias (mean shifts included) divided by 255 to run at this range.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sr_cli.constants import DIV2K_MEAN
from sr_cli.models.blocks import MeanShift, ResBlock, Upsampler, conv
from sr_cli.upsampling import check_scale


def _relu() -> nn.Module:
    return nn.ReLU(inplace=True)


class EDSR(nn.Module):
    """Mean shift, conv3 head, ``n_blocks`` residual blocks (conv ReLU conv, × ``res_scale``), conv3,
    global skip, sub-pixel upsampler, conv3 tail, mean shift back.

    Baseline: 16 blocks × 64 (1.37M / 1.55M / 1.52M parameters at ×2/×3/×4);
    large: 32 × 256, ``res_scale`` 0.1 (40.7M / 43.7M / 43.1M).
    """

    def __init__(self, scale: int, n_blocks: int = 16, n_feats: int = 64, res_scale: float = 1.0,
                 num_channels: int = 3, rgb_mean: Sequence[float] = DIV2K_MEAN) -> None:
        super().__init__()
        check_scale(scale)
        if len(rgb_mean) != num_channels:
            raise ValueError(f"rgb_mean has {len(rgb_mean)} values for {num_channels} channels")
        self.sub_mean = MeanShift(rgb_mean, sign=-1)
        self.add_mean = MeanShift(rgb_mean, sign=1)
        self.head = nn.Sequential(conv(num_channels, n_feats, 3))
        self.body = nn.Sequential(*[ResBlock(n_feats, 3, _relu, res_scale=res_scale) for _ in range(n_blocks)],
                                  conv(n_feats, n_feats, 3))
        self.tail = nn.Sequential(Upsampler(scale, n_feats), conv(n_feats, num_channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        x = x + self.body(x)
        return self.add_mean(self.tail(x))


class MDSR(nn.Module):
    """Multi-scale EDSR: shared head and ``n_blocks`` body, per-scale pre-processing (two 5×5 residual blocks)
    and upsampler, shared tail. ``set_scale`` picks the branch ``forward`` runs (default: the first scale).
    """

    def __init__(self, n_blocks: int = 80, n_feats: int = 64, scales: Sequence[int] = (2, 3, 4)) -> None:
        super().__init__()
        for s in scales:
            check_scale(s)
        self.scales = tuple(scales)
        self.scale_idx = 0
        self.sub_mean = MeanShift(DIV2K_MEAN, sign=-1)
        self.head = nn.Sequential(conv(3, n_feats, 3))
        self.pre_process = nn.ModuleList(
            nn.Sequential(ResBlock(n_feats, 5, _relu), ResBlock(n_feats, 5, _relu)) for _ in self.scales)
        self.body = nn.Sequential(*[ResBlock(n_feats, 3, _relu) for _ in range(n_blocks)], conv(n_feats, n_feats, 3))
        self.upsample = nn.ModuleList(Upsampler(s, n_feats) for s in self.scales)
        self.tail = nn.Sequential(conv(n_feats, 3, 3))
        self.add_mean = MeanShift(DIV2K_MEAN, sign=1)

    @property
    def scale(self) -> int:
        """The scale ``forward`` upsamples by."""
        return self.scales[self.scale_idx]

    def set_scale(self, scale: int) -> None:
        """Run the ``scale`` branch from now on (ValueError if the model has none)."""
        check_scale(scale, self.scales)
        self.scale_idx = self.scales.index(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        x = self.pre_process[self.scale_idx](x)
        x = x + self.body(x)
        x = self.upsample[self.scale_idx](x)
        return self.add_mean(self.tail(x))
