"""Validation during training, scored as ``srtool bench`` scores: each HR image cropped to a multiple of the
scale, LR made by the run's degradation, one whole-image pass through the engine, the output rounded to 8 bits,
Y-PSNR/SSIM with ``scale`` pixels shaved (``sr_cli.metrics``). Y models see the luma of the LR image and their
output is recombined with MATLAB-bicubic chroma, as ``sr_cli.pipeline`` does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sr_cli.colour import rgb_to_ycbcr, ycbcr_to_rgb
from sr_cli.datasets import dataset_images, folder_dataset
from sr_cli.degrade import crop_to_scale, degrade
from sr_cli.engine import upscale_tensor
from sr_cli.evaluate import score
from sr_cli.images import read_image
from sr_cli.interp import Bicubic
from sr_cli.train.data import to_rgb8


@dataclass
class ValImage:
    """One validation pair, prepared once: the model input and, for Y models, the upscaled chroma."""

    hr: np.ndarray  # (H, W, 3) uint8, cropped to a multiple of the scale
    x: torch.Tensor  # (1, C, h, w) float32 model input
    chroma: torch.Tensor | None  # (1, 2, H, W) bicubic CbCr for Y models


def load_val_set(name: str, folder: str | None, scale: int, degradation: str, space: str) -> list[ValImage]:
    """The validation images of data set ``name`` (or the images under ``folder``)."""
    paths = folder_dataset(Path(folder)) if folder else dataset_images(name)
    out = []
    for path in paths:
        hr = np.ascontiguousarray(crop_to_scale(to_rgb8(read_image(path).pixels), scale))
        lr = torch.from_numpy(degrade(hr, scale, degradation)).permute(2, 0, 1)[None].float() / 255
        if space == "y":
            ycc = rgb_to_ycbcr(lr)
            out.append(ValImage(hr, ycc[:, :1].contiguous(), Bicubic(scale, levels=None)(ycc[:, 1:])))
        else:
            out.append(ValImage(hr, lr, None))
    return out


def evaluate(model: nn.Module, images: list[ValImage], scale: int, overlap: int, device: torch.device,
             ) -> tuple[float, float]:
    """Mean Y-PSNR and SSIM of ``model`` (left in eval mode) over ``images``."""
    psnrs, ssims = [], []
    for image in images:
        out = upscale_tensor(model, image.x, scale, overlap=overlap, tile=0, device=device)
        if image.chroma is not None:
            out = ycbcr_to_rgb(out, image.chroma)
        sr = out[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        p, q = score(sr, image.hr, scale)
        psnrs.append(p)
        ssims.append(q)
    return float(np.mean(psnrs)), float(np.mean(ssims))
