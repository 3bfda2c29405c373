"""What several tests read from ``../shared/data`` (the benchmark and training images beside the checkout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BENCH = SHARED / "bench"


def read(path: Path) -> np.ndarray:
    """An 8-bit PNG as (H, W, 3) RGB or (H, W) gray, as stored."""
    with Image.open(path) as im:
        assert im.mode in ("RGB", "L"), (path, im.mode)
        return np.asarray(im)


def crop(hr: np.ndarray, s: int) -> np.ndarray:
    """``hr`` cropped to a multiple of ``s`` each way (top-left kept)."""
    return hr[: hr.shape[0] - hr.shape[0] % s, : hr.shape[1] - hr.shape[1] % s]
