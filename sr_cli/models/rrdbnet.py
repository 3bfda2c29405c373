"""RRDBNet (ESRGAN generator) and the VGG-style discriminator (Wang et al. 2018), with BasicSR's names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sr_cli.models.blocks import conv, scaled_kaiming_
from sr_cli.upsampling import check_scale, stage_factors


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class ResidualDenseBlock(nn.Module):
    """Five densely connected conv3 layers (growth ``num_grow_ch``), LeakyReLU 0.2, ``x + 0.2 · conv5(...)``."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = conv(num_feat, num_grow_ch, 3)
        self.conv2 = conv(num_feat + num_grow_ch, num_grow_ch, 3)
        self.conv3 = conv(num_feat + 2 * num_grow_ch, num_grow_ch, 3)
        self.conv4 = conv(num_feat + 3 * num_grow_ch, num_grow_ch, 3)
        self.conv5 = conv(num_feat + 4 * num_grow_ch, num_feat, 3)
        self.lrelu = _lrelu()
        scaled_kaiming_([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(self.lrelu(layer(torch.cat(feats, 1))))
        return x + self.conv5(torch.cat(feats, 1)) * 0.2


class RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks, ``x + 0.2 · rdb3(rdb2(rdb1(x)))``."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.rdb3(self.rdb2(self.rdb1(x))) * 0.2


class RRDBNet(nn.Module):
    """conv_first, ``num_block`` RRDBs, conv_body + skip, nearest-neighbour upsampling + conv (LeakyReLU 0.2)
    per stage, conv_hr, conv_last.

    ×4 is BasicSR's layout exactly (two ×2 stages, ``conv_up1`` and ``conv_up2``); ×2 and ×3 use one stage
    (nearest ×scale, ``conv_up1``) and have no ``conv_up2``. ``unshuffle=2`` at ×2 is BasicSR's ×2 layout
    (``RealESRGAN_x2plus``): the input is pixel-unshuffled by 2 (``conv_first`` takes 12 channels), upsampled ×4;
    an odd height or width is first reflect-padded by one pixel at the bottom or right, the output cropped back (as
    Real-ESRGAN's inference does). Its output follows the 2×2 cells, so a tile gives the whole image's result only
    where it starts at an even offset.
    """

    def __init__(self, scale: int, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_block: int = 23, num_grow_ch: int = 32, unshuffle: int = 1) -> None:
        super().__init__()
        check_scale(scale)
        if unshuffle != 1 and scale * unshuffle != 4:
            raise ValueError(f"unshuffle {unshuffle} at x{scale}: the unshuffled input is upsampled x4 (BasicSR's "
                             "x2 layout is unshuffle 2)")
        self.scale, self.unshuffle = scale, unshuffle
        self.factors = stage_factors(scale * unshuffle)
        self.conv_first = conv(num_in_ch * unshuffle**2, num_feat, 3)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = conv(num_feat, num_feat, 3)
        self.conv_up1 = conv(num_feat, num_feat, 3)
        if len(self.factors) == 2:
            self.conv_up2 = conv(num_feat, num_feat, 3)
        self.conv_hr = conv(num_feat, num_feat, 3)
        self.conv_last = conv(num_feat, num_out_ch, 3)
        self.lrelu = _lrelu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.unshuffle > 1:
            pad_h, pad_w = -h % self.unshuffle, -w % self.unshuffle
            if pad_h or pad_w:
                x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > 1 else "replicate")
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        ups = [self.conv_up1, self.conv_up2] if len(self.factors) == 2 else [self.conv_up1]
        for factor, layer in zip(self.factors, ups, strict=True):
            feat = self.lrelu(layer(F.interpolate(feat, scale_factor=factor, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out[..., :h * self.scale, :w * self.scale] if self.unshuffle > 1 else out


class VGGStyleDiscriminator(nn.Module):
    """BasicSR's VGG-style discriminator for 128×128 (or 256×256) patches: conv/BN/LeakyReLU pairs halving
    the size five (six) times to 4×4, then linear 100, LeakyReLU, linear 1 (a logit)."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size not in (128, 256):
            raise ValueError(f"input_size must be 128 or 256, got {input_size}")
        self.input_size = input_size
        self.conv0_0 = conv(num_in_ch, num_feat, 3)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat)
        n_levels = 6 if input_size == 256 else 5
        in_ch = num_feat
        for level in range(1, n_levels):
            out_ch = num_feat * min(2 ** level, 8)
            setattr(self, f"conv{level}_0", conv(in_ch, out_ch, 3, bias=False))
            setattr(self, f"bn{level}_0", nn.BatchNorm2d(out_ch))
            setattr(self, f"conv{level}_1", nn.Conv2d(out_ch, out_ch, 4, 2, 1, bias=False))
            setattr(self, f"bn{level}_1", nn.BatchNorm2d(out_ch))
            in_ch = out_ch
        self.n_levels = n_levels
        self.linear1 = nn.Linear(num_feat * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = _lrelu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(f"expected {self.input_size}×{self.input_size} patches, got {tuple(x.shape[-2:])}")
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for level in range(1, self.n_levels):
            for i in (0, 1):
                feat = getattr(self, f"conv{level}_{i}")(feat)
                feat = self.lrelu(getattr(self, f"bn{level}_{i}")(feat))
        return self.linear2(self.lrelu(self.linear1(feat.flatten(1))))
