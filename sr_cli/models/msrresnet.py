"""MSRResNet: BasicSR's "modified SRResNet" (``basicsr/archs/srresnet_arch.py``), run so its checkpoints load as
they are.

It differs from the paper's SRResNet: a 3×3 head, residual blocks without batch norm (conv, ReLU, conv), no long
skip, LeakyReLU 0.1 around the upsampler, two 3×3 convolutions at HR, and the bilinearly upscaled input added to
the output. Tensor names are BasicSR's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sr_cli.models.blocks import conv, scaled_kaiming_
from sr_cli.upsampling import check_scale, stage_factors


class _ResBlockNoBN(nn.Module):
    """BasicSR ``ResidualBlockNoBN``: x + conv2(relu(conv1(x)))."""

    def __init__(self, n_feats: int) -> None:
        super().__init__()
        self.conv1 = conv(n_feats, n_feats, 3)
        self.conv2 = conv(n_feats, n_feats, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class MSRResNet(nn.Module):
    """conv_first, ``n_blocks`` residual blocks, ``upconv1`` (×2 or ×3) [and ``upconv2`` for ×4] with
    PixelShuffle and LeakyReLU, conv_hr, conv_last, plus bilinear(x)."""

    def __init__(self, scale: int, num_channels: int = 3, n_feats: int = 64, n_blocks: int = 16) -> None:
        super().__init__()
        check_scale(scale)
        self.scale = scale
        self.factors = stage_factors(scale)
        self.conv_first = conv(num_channels, n_feats, 3)
        self.body = nn.Sequential(*[_ResBlockNoBN(n_feats) for _ in range(n_blocks)])
        for i, f in enumerate(self.factors, start=1):
            self.add_module(f"upconv{i}", conv(n_feats, n_feats * f * f, 3))
        self.conv_hr = conv(n_feats, n_feats, 3)
        self.conv_last = conv(n_feats, num_channels, 3)
        scaled_kaiming_([m for m in self.modules() if isinstance(m, nn.Conv2d)], 0.1)  # BasicSR's init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(F.leaky_relu(self.conv_first(x), 0.1))
        for i, f in enumerate(self.factors, start=1):
            out = F.leaky_relu(F.pixel_shuffle(getattr(self, f"upconv{i}")(out), f), 0.1)
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
