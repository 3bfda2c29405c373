"""Device and precision choice, shared by every command.

``auto`` device: CUDA, else MPS, else CPU; the ``SRTOOL_DEVICE`` environment variable sets the default.
``auto`` precision: fp16 on CUDA (tiles that overflow are redone in fp32 by the engine), fp32 on MPS,
and on CPU the choice measured in ``benchmarks/upscale.py`` (see ``CPU_AUTO_DTYPE``).
"""

from __future__ import annotations

import os

import torch

from sr_cli.errors import UsageError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# Measured on this project's CPU (AVX-512 BF16): see README "Precision" and benchmarks/upscale.py.
CPU_AUTO_DTYPE = torch.float32


def select_device(name: str | None = None) -> torch.device:
    """Resolve ``auto|cpu|cuda|cuda:N|mps`` (default: ``$SRTOOL_DEVICE`` or ``auto``) to a usable device."""
    name = (name or os.environ.get("SRTOOL_DEVICE") or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device '{name}': use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device '{name}' asked for, but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device '{name}' asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError("device 'mps' asked for, but MPS is not available here")
    elif device.type != "cpu":
        raise UsageError(f"unsupported device '{name}': use auto, cpu, cuda, cuda:N or mps")
    return device


def select_precision(name: str | None, device: torch.device) -> torch.dtype:
    """Resolve ``auto|fp32|fp16|bf16`` for ``device``; fp16 never runs on CPU."""
    name = (name or "auto").strip().lower()
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision '{name}': use one of {', '.join(PRECISIONS)}")
    if name == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "mps":
            return torch.float32
        return CPU_AUTO_DTYPE
    dtype = DTYPES[name]
    if dtype == torch.float16 and device.type == "cpu":
        raise UsageError("fp16 does not run on CPU: use --precision bf16 or fp32")
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError(f"bf16 is not supported on {torch.cuda.get_device_name(device)}: use fp16 or fp32")
    return dtype


def precision_name(dtype: torch.dtype) -> str:
    """The short name (fp32, fp16, bf16) of a dtype."""
    return {v: k for k, v in DTYPES.items()}[dtype]


def use_channels_last(device: torch.device) -> bool:
    """Whether to run convolutions in channels_last memory format on ``device`` (faster on CUDA tensor cores)."""
    return device.type == "cuda"
