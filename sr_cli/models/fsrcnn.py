"""FSRCNN (Dong et al. 2016): feature extraction, shrinking, mapping, expanding, deconvolution upsampler."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sr_cli.models.blocks import conv
from sr_cli.upsampling import check_scale

_DECONV = 9  # deconvolution kernel size
_PAD = _DECONV // 2


def subpixel_form(weight: torch.Tensor, scale: int, pad: int) -> tuple[torch.Tensor, int, int]:
    """A stride-``scale`` transposed convolution (``weight`` (C_in, C_out, K, K), ``padding`` ``pad``,
    ``output_padding`` ``scale - 1``) as a convolution at LR to ``C_out·scale²`` channels and a pixel shuffle:
    the same sums, without the transposed convolution's scatter (several times faster on CPU).

    Output pixel ``s·Y + p`` takes input ``Y - t`` through tap ``k = s·t + p + pad``; the convolution reads input
    ``Y + j - left`` with ``j = left - t``. Returns (conv weight (C_out·s², C_in, J, J), left pad, right pad).
    """
    k = weight.shape[-1]
    t_lo = min(-((p + pad) // scale) for p in range(scale))  # ceil((-p - pad) / s)
    t_hi = max((k - 1 - p - pad) // scale for p in range(scale))
    size = t_hi - t_lo + 1
    taps = torch.full((scale, size), k, dtype=torch.long)  # index k = a zero tap
    for p in range(scale):
        for t in range(t_lo, t_hi + 1):
            if 0 <= scale * t + p + pad < k:
                taps[p, t_hi - t] = scale * t + p + pad
    padded = F.pad(weight, (0, 1, 0, 1))  # (C_in, C_out, K + 1, K + 1), the last row and column zero
    rows = padded[:, :, taps.flatten()].unflatten(2, (scale, size))  # (C_in, C_out, s, J, K + 1)
    grid = rows[..., taps.flatten()].unflatten(-1, (scale, size))  # (C_in, C_out, s, J, s, J)
    conv_weight = grid.permute(1, 2, 4, 0, 3, 5).reshape(weight.shape[1] * scale * scale, weight.shape[0], size, size)
    return conv_weight, t_hi, size - 1 - t_hi


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
        features = self.mid_part(self.first_part(x))
        deconv = self.last_part
        scale = deconv.stride[0]
        weight, left, right = subpixel_form(deconv.weight, scale, _PAD)
        bias = deconv.bias.repeat_interleave(scale * scale) if deconv.bias is not None else None
        if left == right:  # the convolution's own zero padding (a padded copy costs as much as the convolution)
            return F.pixel_shuffle(F.conv2d(features, weight, bias, padding=left), scale)
        return F.pixel_shuffle(F.conv2d(F.pad(features, (left, right, left, right)), weight, bias), scale)
