"""Device and precision choice, shared by every command.

``auto`` device: CUDA, else MPS, else CPU; the ``SRTOOL_DEVICE`` environment variable sets the default.
``auto`` precision, read off the machine at run time: fp16 on CUDA (tiles that overflow are redone in fp32 by the
engine), fp32 on MPS; on CPU bf16 where the CPU computes bf16 natively (AVX-512 BF16 or AMX-BF16) and the model is
one whose bf16 cost was measured harmless (the caller says: shipped weights under 0.01 dB on Set5, see
``registry.bf16_harmless``; training always), else fp32 (torch emulates bf16 elsewhere, 10-100x slower than fp32).
Convolutions run in channels_last on CPU and CUDA, whatever the dtype: measured in ``benchmarks/precision.py``. Upscaling, video and training
share this rule; ``bench`` defaults to fp32.
"""

from __future__ import annotations

import os

import torch

from sr_cli.errors import UsageError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}



# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) below which bf16 convolutions are emulated, 10-100x slower than fp32.
_ISAS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX-BF16) and oneDNN is not capped below it."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    if cap in _ISAS_WITHOUT_BF16:
        return False
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


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


def select_precision(name: str | None, device: torch.device, *, bf16_harmless: bool = True) -> torch.dtype:
    """Resolve ``auto|fp32|fp16|bf16`` for ``device``; fp16 never runs on CPU. ``bf16_harmless``: whether ``auto``
    may pick bf16 on a CPU with native bf16 (the model's measured bf16 cost is small enough)."""
    name = (name or "auto").strip().lower()
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision '{name}': use one of {', '.join(PRECISIONS)}")
    if name == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "mps":
            return torch.float32
        return torch.bfloat16 if bf16_harmless and cpu_has_native_bf16() else torch.float32
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
    """Whether convolutions run in channels_last memory format: on CUDA (tensor cores) and on CPU, in fp32 and
    bf16 alike (oneDNN's native layout: 1.08-1.67x over contiguous fp32 for ESPCN, FSRCNN, EDSR and compact with
    AVX-512 and with oneDNN capped at AVX2, and 1.1-1.4x more in bf16; benchmarks/precision.py)."""
    return device.type in ("cuda", "cpu")
