"""FSRCNN (Dong et al. 2016): feature extraction, shrinking, mapping, expanding, deconvolution upsampler."""

from __future__ import annotations

import math

import torch
from torch import nn

from sr_cli.models.blocks import check_scale, conv

_DECONV = 9  # deconvolution kernel size
_PAD = _DECONV // 2


class FSRCNN(nn.Module):
    """FSRCNN(d, s, m) on LR input; PReLU per channel; a 9×9 transposed conv with stride ``scale``.

    Layer names (``first_part``, ``mid_part``, ``last_part``) follow the common PyTorch port's checkpoints.
    The paper's parameter figure (12,464 for (56, 12, 4)) counts convolution weights only.
    """

    def __init__(self, scale: int, num_channels: int = 1, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__()
        check_scale(scale)
        self.first_part = nn.Sequential(conv(num_channels, d, 5), nn.PReLU(d))
        mid: list[nn.Module] = [conv(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            mid += [conv(s, s, 3), nn.PReLU(s)]
        mid += [conv(s, d, 1), nn.PReLU(d)]
        self.mid_part = nn.Sequential(*mid)
        self.last_part = nn.ConvTranspose2d(d, num_channels, _DECONV, stride=scale, padding=_PAD,
                                            output_padding=scale - 1)
        self._init_weights()

    def _init_weights(self) -> None:
        """He init for the convolutions, N(0, 0.001) for the deconvolution, zero biases (as in the paper). A network
        built on the meta device (shapes only, e.g. to count parameters) has no values to draw."""
        if self.last_part.weight.is_meta:
            return
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.out_channels * module.weight.shape[2:].numel()
                nn.init.normal_(module.weight, std=math.sqrt(2 / fan_out))
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.last_part.weight, std=0.001)
        nn.init.zeros_(self.last_part.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_part(self.mid_part(self.first_part(x)))

    @staticmethod
    def receptive_radius(scale: int, m: int = 4) -> int:
        """Radius in LR pixels: conv5 (2) + m conv3, plus the deconvolution's reach beyond a tile's edge.

        HR pixel ``Y`` reads LR pixels ``x`` with ``|Y - scale·x| <= 4``: past the right edge of a tile that is
        ``floor(3 / scale) + 1`` pixels, past the left edge ``floor(4 / scale)``.
        """
        return 2 + m + max(_PAD // scale, (_PAD - 1) // scale + 1)
