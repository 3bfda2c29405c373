"""Where the tests' data lives: all of it in this repository, except the large optional files of ``../shared``.

``HR``: Set5 and Set14 as the package ships them (``sr_cli/data``). ``DATA`` (``tests/data``, see its
``SOURCES.md``): the MATLAB-bicubic LR sets, RCAN's reference outputs, four training images and the first four
VGG19 convolutions. ``SHARED``: ``../shared/data`` beside the checkout, when there is one; tests that need its
large files (the whole 39 MB VGG19) carry ``needs_shared`` and are skipped with a one-line reason without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from PIL import Image

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
HR = ROOT / "sr_cli" / "data"
DATA = ROOT / "tests" / "data"
TRAIN = sorted((DATA / "train").glob("*.png"))
VGG_TO_RELU2_2 = DATA / "vgg19_to_relu2_2_fp16.safetensors"
SHARED = ROOT.parent / "shared" / "data"
VGG_FULL = SHARED / "vgg19" / "vgg19_features_fp16.safetensors"


def needs_shared(path: Path) -> Callable[[T], T]:
    """Marks a test (``shared``) that reads ``path`` of ``../shared/data``; skipped, saying so, when it is absent."""
    skip = pytest.mark.skipif(not path.is_file(), reason=f"needs {path.relative_to(SHARED)} from ../shared/data")
    return lambda test: pytest.mark.shared(skip(test))


def read(path: Path) -> np.ndarray:
    """An 8-bit PNG as (H, W, 3) RGB or (H, W) gray, as stored."""
    with Image.open(path) as im:
        assert im.mode in ("RGB", "L"), (path, im.mode)
        return np.asarray(im)


def crop(hr: np.ndarray, s: int) -> np.ndarray:
    """``hr`` cropped to a multiple of ``s`` each way (top-left kept)."""
    return hr[: hr.shape[0] - hr.shape[0] % s, : hr.shape[1] - hr.shape[1] % s]


SUMMARY = re.compile(r"srtool: (wrote .+ \(.+\)|upscaled \d+ of \d+ images with .+)\n\Z")


def without_summary(err: str) -> str:
    """``upscale``'s stderr less its closing summary line (written when stdout is not a terminal and something was
    written or skipped; ``test_upscale_cli`` checks the line itself): the lines the rest of a test is about."""
    match = SUMMARY.search(err)
    return err[:match.start()] if match else err


def train_folders(root: Path, images: int, side: int) -> tuple[Path, Path]:
    """``root/train`` with the first ``images`` T91 pictures cropped to ``side``x``side``, and ``root/val`` with a
    48x48 crop of Set5's bird: a tiny training run's data."""
    (root / "train").mkdir()
    (root / "val").mkdir()
    for i, path in enumerate(TRAIN[:images]):
        Image.open(path).convert("RGB").crop((0, 0, side, side)).save(root / "train" / f"{i}.png")
    Image.open(HR / "Set5" / "bird.png").crop((0, 0, 48, 48)).save(root / "val" / "bird.png")
    return root / "train", root / "val"
