"""Training losses: pixel (l1, mse, charbonnier), perceptual (VGG19 features) and adversarial (vanilla, RaGAN),
composed with weights from an expression such as ``1*l1+0.006*perceptual+0.001*gan``.

- ``charbonnier``: ``mean(sqrt((sr - hr)² + eps²))`` with eps = 1e-3 (LapSRN).
- ``perceptual``: L1 distance of VGG19 features at one layer (default ``conv5_4`` before its ReLU, as ESRGAN;
  SRGAN's φ5,4 is ``relu5_4``), features of [0, 1] RGB normalised as the weights expect.
- ``gan``: the generator's adversarial term; the discriminator's own loss is :meth:`Adversarial.discriminator_loss`.
  ``vanilla`` (SRGAN): D minimises ``BCE(D(hr), 1) + BCE(D(sr), 0)``, G minimises ``BCE(D(sr), 1)``.
  ``ragan`` (ESRGAN, as its official code): with ``C`` the raw critic, ``r = C(hr) - mean C(sr)`` and
  ``f = C(sr) - mean C(hr)``, D minimises ``(BCE(r, 1) + BCE(f, 0)) / 2`` and G ``(BCE(r, 0) + BCE(f, 1)) / 2``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sr_cli.errors import UsageError

PIXEL_TERMS = ("l1", "mse", "charbonnier")
TERMS = (*PIXEL_TERMS, "perceptual", "gan")
GAN_TYPES = ("vanilla", "ragan")
CHARBONNIER_EPS = 1e-3
_TERM = re.compile(r"^(?:(?P<w>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class Term:
    """One weighted loss term."""

    weight: float
    name: str


def parse_loss(expr: str) -> list[Term]:
    """``"1*l1+0.006*perceptual"`` → terms; a bare name has weight 1. Bad expressions are UsageErrors."""
    terms: list[Term] = []
    for part in expr.replace(" ", "").split("+"):
        match = _TERM.match(part)
        if not match:
            raise UsageError(f"cannot read loss term {part!r} in --loss {expr!r}: write terms like 0.01*l1+1*perceptual")
        name = match["name"].lower()
        if name not in TERMS:
            raise UsageError(f"unknown loss term {name!r} in --loss {expr!r}: choose from {', '.join(TERMS)}")
        if any(t.name == name for t in terms):
            raise UsageError(f"loss term {name!r} appears twice in --loss {expr!r}")
        weight = float(match["w"]) if match["w"] else 1.0
        if not (math.isfinite(weight) and weight > 0):
            raise UsageError(f"loss term {name!r} needs a positive weight, got {match['w']}")
        terms.append(Term(weight, name))
    return terms


def charbonnier(sr: Tensor, hr: Tensor, eps: float = CHARBONNIER_EPS) -> Tensor:
    """Mean Charbonnier distance ``sqrt(d² + eps²)``."""
    return torch.sqrt((sr - hr) ** 2 + eps * eps).mean()


PIXEL: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"l1": F.l1_loss, "mse": F.mse_loss, "charbonnier": charbonnier}


class Perceptual(nn.Module):
    """Mean absolute difference of ``features(sr)`` and ``features(hr)`` at one layer (hr side without grad)."""

    def __init__(self, features: nn.Module, layer: str) -> None:
        super().__init__()
        self.features = features
        self.layer = layer

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.features(hr)[self.layer]
        return F.l1_loss(self.features(sr)[self.layer].float(), target.float())


class Adversarial(nn.Module):
    """Holds the discriminator and both sides' losses for ``gan_type`` (see the module notes)."""

    def __init__(self, discriminator: nn.Module, gan_type: str = "ragan") -> None:
        super().__init__()
        if gan_type not in GAN_TYPES:
            raise UsageError(f"unknown --gan-type {gan_type!r}: choose {' or '.join(GAN_TYPES)}")
        self.discriminator = discriminator
        self.gan_type = gan_type

    @staticmethod
    def _bce(logits: Tensor, real: bool) -> Tensor:
        logits = logits.float()
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    def generator_loss(self, sr: Tensor, hr: Tensor) -> Tensor:
        """The generator's adversarial loss (gradients reach ``sr``; the discriminator should be frozen)."""
        fake = self.discriminator(sr)
        if self.gan_type == "vanilla":
            return self._bce(fake, True)
        real = self.discriminator(hr).detach()
        return (self._bce(real - fake.mean(), False) + self._bce(fake - real.mean(), True)) / 2

    def discriminator_loss(self, sr: Tensor, hr: Tensor, critic: nn.Module | None = None) -> Tensor:
        """The discriminator's loss on real ``hr`` and generated ``sr`` (detached here); ``critic`` is the
        discriminator as called for this step (its DistributedDataParallel wrapper under torchrun)."""
        critic = critic or self.discriminator
        real, fake = critic(hr), critic(sr.detach())
        if self.gan_type == "vanilla":
            return self._bce(real, True) + self._bce(fake, False)
        return (self._bce(real - fake.mean(), True) + self._bce(fake - real.mean(), False)) / 2


class Criterion(nn.Module):
    """The weighted sum of parsed terms; returns the total and each term's unweighted value."""

    def __init__(self, terms: list[Term], perceptual: Perceptual | None = None,
                 adversarial: Adversarial | None = None) -> None:
        super().__init__()
        self.terms = terms
        names = {t.name for t in terms}
        if "perceptual" in names and perceptual is None:
            raise ValueError("a perceptual term needs a Perceptual module")
        if "gan" in names and adversarial is None:
            raise ValueError("a gan term needs an Adversarial module")
        self.perceptual = perceptual
        self.adversarial = adversarial

    def forward(self, sr: Tensor, hr: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        values: dict[str, Tensor] = {}
        for term in self.terms:
            if term.name in PIXEL:
                values[term.name] = PIXEL[term.name](sr.float(), hr.float())
            elif term.name == "perceptual":
                values[term.name] = self.perceptual(sr, hr)
            else:
                values[term.name] = self.adversarial.generator_loss(sr, hr)
        total = sum(t.weight * values[t.name] for t in self.terms)
        return total, values
