"""SRVGGNetCompact: Real-ESRGAN's compact real-world SR network (``realesrgan/archs/srvgg_arch.py``), with its names.

Every convolution runs at LR; the last one gives ``3·scale²`` channels for a PixelShuffle, and the input upscaled by
nearest neighbour is added to the output. ``realesr-general-x4v3`` is 64 features × 32 convolutions,
``realesr-animevideov3`` 64 × 16; both use PReLU, the only activation their files hold parameters for.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sr_cli.models.blocks import conv
from sr_cli.upsampling import check_scale


class SRVGGNetCompact(nn.Module):
    """``body``: conv3 + PReLU, ``num_conv`` × (conv3 + PReLU), conv3 to ``num_out_ch·scale²``; PixelShuffle;
    plus nearest(x). Default PyTorch init, as Real-ESRGAN's."""

    def __init__(self, scale: int, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_conv: int = 32) -> None:
        super().__init__()
        check_scale(scale)
        self.scale = scale
        layers: list[nn.Module] = [conv(num_in_ch, num_feat, 3), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [conv(num_feat, num_feat, 3), nn.PReLU(num_feat)]
        layers.append(conv(num_feat, num_out_ch * scale * scale, 3))
        self.body = nn.Sequential(*layers)
        self.upsampler = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsampler(self.body(x)) + F.interpolate(x, scale_factor=self.scale, mode="nearest")
