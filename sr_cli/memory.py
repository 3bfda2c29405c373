"""Memory: the budget a run may use, and what a model's forward pass needs per LR pixel, measured.

The budget (``--max-memory``, default ``DEFAULT_MAX_MEMORY`` on CPU) is the peak resident memory of the process,
not counting the output picture (held as 8/16-bit integers). What the process already holds when the work starts
(the interpreter, torch, the weights, the decoded input) is subtracted; the rest is for the work: the network's
activations and the float pictures around it, block by block.
"""

from __future__ import annotations

import os
import re
import weakref

import torch
from torch import nn

from sr_cli import choices
from sr_cli.errors import UsageError

MIN_WORK_MEMORY = 64 << 20  # what any block needs at the least; a smaller --max-memory budget is refused
DEFAULT_MIN_WORK = 1 << 30  # the work budget without --max-memory, however much the process holds
_PROBE = 24  # LR side of the probe pass (a multiple of every pixel-unshuffle cell)
# Peak RSS growth of a 256x256 forward pass over the bytes counted on the probe (x4, channels_last, bf16; fsrcnn
# fp32): espcn 0.76, edsr 1.03, compact 1.14, fsrcnn 1.15, esrgan 1.22-1.27 (oneDNN scratch and reorders).
ALLOCATOR_SLACK = 1.3
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``1.5G``, ``800M``, ``2048K`` or plain bytes → bytes (powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if match is None:
        raise UsageError(f"--max-memory takes a size like 1.5G, 800M or 2048K, got '{text}'")
    return int(float(match[1]) * _UNITS[match[2]])


DEFAULT_MAX_MEMORY = parse_size(choices.DEFAULT_MAX_MEMORY)


def resident_bytes() -> int:
    """The process's resident memory now (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def default_budget() -> int:
    """Bytes the work may allocate without ``--max-memory``: what ``DEFAULT_MAX_MEMORY`` leaves, and at least
    ``DEFAULT_MIN_WORK`` (a long-lived process, such as a test run or a bench over many models, may already hold
    more than the default cap)."""
    return max(DEFAULT_MAX_MEMORY - resident_bytes(), DEFAULT_MIN_WORK)


def work_budget(max_memory: int) -> int:
    """Bytes the work may still allocate under ``max_memory``; a cap the process already fills is an error."""
    held = resident_bytes()
    if max_memory - held < MIN_WORK_MEMORY:
        raise UsageError(f"--max-memory {max_memory / 2**20:.0f} MiB leaves no room: srtool already holds "
                         f"{held / 2**20:.0f} MiB (torch, the weights, the input); give at least "
                         f"{(held + MIN_WORK_MEMORY) / 2**20:.0f} MiB")
    return max_memory - held


def activation_bytes(model: nn.Module, channels: int, device: torch.device, dtype: torch.dtype,
                     memory_format: torch.memory_format) -> float:
    """Peak bytes per LR pixel of one forward pass of ``model``, measured on a small probe: the outputs of its
    layers alive at once (each storage counted once, from the layer that makes it until it is freed), plus twice
    the final output (the functional tail a forward may add, such as a skip connection's sum), times
    ``ALLOCATOR_SLACK``."""
    live: dict[int, int] = {}
    peak = 0

    def hook(_: nn.Module, __: object, out: object) -> None:
        nonlocal peak
        if isinstance(out, torch.Tensor) and (pointer := out.untyped_storage().data_ptr()) not in live:
            live[pointer] = out.untyped_storage().nbytes()
            peak = max(peak, sum(live.values()))
            weakref.finalize(out, live.pop, pointer, 0)

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    probe = torch.zeros(1, channels, _PROBE, _PROBE, device=device, dtype=dtype).contiguous(memory_format=memory_format)
    try:
        with torch.inference_mode():
            out = model(probe)
    finally:
        for h in handles:
            h.remove()
    return (peak + 2 * out.numel() * out.element_size()) * ALLOCATOR_SLACK / _PROBE**2
