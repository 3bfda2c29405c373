"""The names and defaults the command line shows, in a module that loads nothing heavy: ``--help`` and usage
errors never import torch (the modules that act on these values import them from here)."""

from __future__ import annotations

DEFAULT_MODEL = "edsr"  # a bare `srtool upscale`: the shipped model with the best Set5 x4 score (weights/README.md)
DEFAULT_SCALE = 4
DEFAULT_VIDEO_MODEL = "espcn"  # the fastest learned model per pixel (all convolutions at LR): video frame counts
DEFAULT_VIDEO_SCALE = 2
DEFAULT_MAX_PIXELS = 64_000_000  # input pixels refused above this unless --max-pixels says otherwise
DEFAULT_MAX_MEMORY = "1.5G"  # peak memory of a picture's upscale, less the output picture (see memory.py)
DEGRADATIONS: tuple[str, ...] = ("bicubic", "blur-decimate", "bilinear", "nearest")  # how LR is made from HR
# and realesrgan: Real-ESRGAN's random pipeline, a new degradation for every training patch, one per picture in
# bench (seeded), never by degrade()
ALL_DEGRADATIONS: tuple[str, ...] = (*DEGRADATIONS, "realesrgan")
DEFAULT_QUALITY = 95  # JPEG and WebP quality unless --quality says otherwise
# --format values and the extension each writes.
OUTPUT_FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp", "tif": "tif", "tiff": "tif", "bmp": "bmp"}
