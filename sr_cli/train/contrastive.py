"""The contrastive loss of CSD (Wang et al. 2021, official ``loss/contrast_loss.py``, distance "L1").

For frozen features φ at relu1_1 … relu5_1 (weights 1/32, 1/16, 1/8, 1/4, 1), a student output ``s``, the
teacher output ``t`` and K negatives ``n_k``, each layer contributes

    d_ts = mean|φ(t) − φ(s)|                 (teacher side without gradient: ``--contrast_t_detach``)
    d_sn = mean over elements of Σ_k |φ(n_k) − φ(s)|
    term = d_ts / (d_sn + 1e-7)

and the loss is the weighted sum. The same K negatives serve every sample of the batch (broadcast), so a sample's
own blurry upsample may be one of them. ``d_sn`` is computed as Σ_k mean|φ(n_k) − φ(s)| (equal, as the mean is
linear), which never holds all K difference maps at once in the forward pass.

Negatives are K LR patches of the batch in random order, upsampled with srtool's MATLAB bicubic
(:func:`sr_cli.resize.imresize`): the official code used ``nn.Upsample(mode='bicubic')`` (Keys a = −0.75), but
srtool keeps one resize (its LR patches are made by the same MATLAB bicubic, so a negative is exactly what
``srtool upscale --model bicubic`` would give).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from sr_cli.errors import UsageError
from sr_cli.resize import imresize
from sr_cli.train.vgg import load_vgg

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
EPS = 1e-7


def load_feature_net(vgg_weights: str | Path | None = None, *, quiet: bool = False) -> nn.Module:
    """Frozen VGG19 at :data:`LAYERS` (``--vgg-weights`` or the cached/downloaded file; see ``train.vgg``)."""
    return load_vgg(list(LAYERS), vgg_weights, quiet=quiet)


def negatives(lr: Tensor, k: int, scale: int) -> Tensor:
    """``k`` LR patches of the batch in random order (``lr[randperm(B)[:k]]``, the global torch RNG),
    MATLAB-bicubic upsampled ×``scale``, without gradient: (k, C, H·scale, W·scale) float32."""
    if k > lr.shape[0]:
        raise UsageError(f"{k} negatives need a batch of at least {k} patches, got {lr.shape[0]}")
    pick = torch.randperm(lr.shape[0])[:k].to(lr.device)
    with torch.no_grad():
        return imresize(lr.detach()[pick].float(), scale=scale)


@dataclass
class Anchors:
    """Features (one tensor per layer, float32, no gradient) of the teacher output and of the negatives."""

    teacher: list[Tensor]
    negatives: list[Tensor]


class ContrastiveLoss(nn.Module):
    """CSD's contrastive loss over a frozen feature net that maps an image batch to one map per weight (a dict
    in layer order, as :class:`sr_cli.train.vgg.VGGFeatures` returns, or a sequence)."""

    def __init__(self, features: nn.Module, weights: tuple[float, ...] = LAYER_WEIGHTS) -> None:
        super().__init__()
        self.features = features.requires_grad_(False).eval()
        self.weights = tuple(weights)

    def train(self, mode: bool = True) -> ContrastiveLoss:
        """The feature net always stays in eval mode."""
        return super().train(False)

    def taps(self, x: Tensor) -> list[Tensor]:
        """The feature maps of ``x`` in float32, one per weight."""
        out = self.features(x)
        maps = list(out.values()) if isinstance(out, dict) else list(out)
        if len(maps) != len(self.weights):
            raise ValueError(f"the feature net gives {len(maps)} maps for {len(self.weights)} layer weights")
        return [m.float() for m in maps]

    def anchors(self, teacher: Tensor, negatives: Tensor) -> Anchors:
        """The teacher's and the negatives' features, computed once per step (shared by every student width)."""
        with torch.no_grad():
            return Anchors(self.taps(teacher.detach()), self.taps(negatives))

    def forward(self, student: Tensor, anchors: Anchors) -> Tensor:
        """The weighted sum over layers of ``d_ts / (d_sn + 1e-7)`` (see the module notes)."""
        total = student.new_zeros((), dtype=torch.float32)
        for weight, s, t, n in zip(self.weights, self.taps(student), anchors.teacher, anchors.negatives,
                                   strict=True):
            d_ts = (t - s).abs().mean()
            d_sn = s.new_zeros(())
            for n_k in n:  # (C, h, w), broadcast over the batch
                d_sn = d_sn + (n_k - s).abs().mean()
            total = total + weight * d_ts / (d_sn + EPS)
        return total
