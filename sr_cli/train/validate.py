"""Validation during training, scored exactly as ``srtool bench`` scores: each HR image read and cropped as bench
reads it (``evaluate.load_hr``: gray stays one channel, alpha dropped), LR made by the run's degradation, the live
network wrapped in the one picture path (``pipeline.Upscaler.around``), Y-PSNR/SSIM by ``evaluate.score``.
A multi-scale model is validated at each of its scales, and scored by their mean."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sr_cli.datasets import dataset_images, folder_dataset
from sr_cli.evaluate import Degradation, load_hr, score
from sr_cli.pipeline import Upscaler
from sr_cli.registry import ModelSpec
from sr_cli.train.config import TrainConfig


@dataclass
class ValImage:
    """One validation pair, prepared once: HR cropped to a multiple of the scale and its LR, both (H, W, C) uint8."""

    hr: np.ndarray
    lr: np.ndarray


def load_val_set(name: str, folder: str | None, scale: int, degradation: str) -> list[ValImage]:
    """The validation pairs of data set ``name`` (or of the images under ``folder``)."""
    paths = folder_dataset(Path(folder)) if folder else dataset_images(name)
    make = Degradation(degradation)
    pairs = []
    for path in paths:
        hr = load_hr(path, scale)
        pairs.append(ValImage(hr, make.make(hr, scale, path)))
    return pairs


def evaluate(model: nn.Module, images: list[ValImage], name: str, scale: int, options: dict[str, Any],
             device: torch.device) -> tuple[float, float]:
    """Mean Y-PSNR and SSIM over ``images`` of the live network ``model`` of registry model ``name`` built with
    ``options`` (left in eval mode)."""
    upscaler = Upscaler.around(name, scale, model, device, options)
    scores = [score(upscaler.upscale_uint8(image.lr), image.hr, scale) for image in images]
    return float(np.mean([p for p, _ in scores])), float(np.mean([q for _, q in scores]))


class Validation:
    """The validation pairs of a run at each of ``scales`` (loaded once) and the scores of its live network on them;
    ``note`` says a multi-scale model's scores per scale."""

    def __init__(self, config: TrainConfig, spec: ModelSpec, scales: tuple[int, ...], device: torch.device,
                 note: Callable[[str], None]) -> None:
        self.sets = {s: load_val_set(config.val_set, config.val_data, s, config.degradation) for s in scales}
        self.spec, self.options, self.device, self.note = spec, config.model_options, device, note

    def score(self, model: nn.Module, scale: int) -> tuple[float, float]:
        """Mean Y-PSNR and SSIM of ``model`` at ``scale`` (left in eval mode)."""
        return evaluate(model, self.sets[scale], self.spec.name, scale, self.options, self.device)

    def run(self, model: nn.Module, step: int) -> dict[str, float]:
        """The validation of ``model`` at ``step``: ``psnr`` and ``ssim`` (means over the scales), ``step``, and a
        multi-scale model's ``psnr_x<scale>``."""
        scores = {}
        for scale in self.sets:
            if self.spec.multi_scale:
                model.set_scale(scale)
            scores[scale] = self.score(model, scale)
        psnr, ssim = (float(np.mean([v[i] for v in scores.values()])) for i in (0, 1))
        val = {"psnr": psnr, "ssim": ssim, "step": step}
        if self.spec.multi_scale:
            val.update({f"psnr_x{s}": v[0] for s, v in scores.items()})
            self.note("validation per scale: " + ", ".join(f"x{s} {v[0]:.3f} dB" for s, v in scores.items()))
        return val
