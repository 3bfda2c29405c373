"""Validation during training, scored exactly as ``srtool bench`` scores: each HR image read and cropped as bench
reads it (``evaluate.load_hr``: gray stays one channel, alpha dropped), LR made by the run's degradation, the live
network wrapped in the one picture path (``pipeline.Upscaler.around``), Y-PSNR/SSIM by ``evaluate.score``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sr_cli.datasets import dataset_images, folder_dataset
from sr_cli.evaluate import Degradation, load_hr, score
from sr_cli.pipeline import Upscaler


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
