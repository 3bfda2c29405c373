"""Reading foreign state dicts: the helpers each family's layout detectors share.

A detector takes a state dict and returns ``(state in srtool's names and range, info)`` with ``info`` =
``{"architecture", "scale", "options", "layout"}`` (the scale is None when one file serves every scale), or None
when the layout is not its own; a layout it recognises but srtool cannot run exactly is a WeightsError saying why.

Range: EDSR-PyTorch and CSD train on [0, rgb_range] (255; read from the mean shift's bias), BasicSR's EDSR scales
``(x - mean)`` by ``img_range`` 255 inside the network; srtool runs on [0, 1]. These networks are convolutions,
ReLUs, pixel shuffles, residual sums and constant scalings, so ``f(c·x; W, c·b) = c·f(x; W, b)`` for ``c > 0``:
dividing every bias (mean shifts included) by the range, weights unchanged, gives ``out(x/255)·255 = official(x)``.

Torch is imported where tensors are made: the registry imports the families, and listing it needs no torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sr_cli.constants import DIV2K_MEAN
from sr_cli.errors import WeightsError

if TYPE_CHECKING:
    import torch

State = dict[str, "torch.Tensor"]
Info = dict[str, Any]
Found = tuple[State, Info] | None
Detector = Callable[[State], Found]


def info(architecture: str, scale: int | None, options: dict[str, Any], layout: str) -> Info:
    """The info a detector returns beside the converted tensors."""
    return {"architecture": architecture, "scale": scale, "options": options, "layout": layout}


def count(state: State, pattern: str) -> int:
    """How many consecutive indices 0, 1, ... have ``pattern.format(i)`` in ``state``."""
    n = 0
    while pattern.format(n) in state:
        n += 1
    return n


def shuffle_scale(state: State, prefix: str, n_feats: int, layout: str) -> int:
    """The scale of the sub-pixel upsampler whose stage convolutions are ``prefix.K.weight``: one to
    ``r²·n_feats`` (r = 2, 3), or two to ``4·n_feats`` (×4)."""
    found = (re.fullmatch(rf"{re.escape(prefix)}\.(\d+)\.weight", k) for k in state)
    stages = [state[m[0]] for m in sorted((m for m in found if m), key=lambda m: int(m[1]))]
    factors = [w.shape[0] / n_feats for w in stages]
    for scale, want in ((2, [4]), (3, [9]), (4, [4, 4])):
        if factors == want:
            return scale
    outs = ", ".join(str(w.shape[0]) for w in stages) or "none"
    raise WeightsError(f"{layout}: upsampler convolutions with {outs} outputs for {n_feats} features fit no scale "
                       "srtool supports (x2, x3, x4)")


def rename(state: State, rules: list[tuple[str, str]], layout: str) -> State:
    """``state`` with each name rewritten by the first matching ``(regex, replacement)``; unmatched is an error."""
    out: State = {}
    for name, tensor in state.items():
        for pattern, repl in rules:
            new, hits = re.subn(pattern, repl, name)
            if hits:
                out[new] = tensor
                break
        else:
            raise WeightsError(f"{layout} layout with an unexpected tensor {name}")
    return out


def mean_shifts() -> State:
    """srtool's default mean shifts on [0, 1] (DIV2K mean, identity weights)."""
    import torch

    eye = torch.eye(3).view(3, 3, 1, 1)
    mean = torch.tensor(DIV2K_MEAN)
    return {"sub_mean.weight": eye.clone(), "sub_mean.bias": -mean, "add_mean.weight": eye, "add_mean.bias": mean}


def unit_range(state: State, layout: str) -> tuple[State, int]:
    """``state`` converted from its rgb_range (read from ``add_mean.bias``; EDSR-PyTorch's 255 with its default
    mean shifts when the file has none) to [0, 1], and that range."""
    import torch

    if "add_mean.bias" not in state:
        return {**divide_biases(state, 255), **mean_shifts()}, 255
    bias = state["add_mean.bias"].double()
    mean = torch.tensor(DIV2K_MEAN, dtype=torch.float64)
    estimate = float(bias @ mean / (mean @ mean))
    for rgb_range in (1, 255):
        if abs(estimate - rgb_range) <= 0.01 * rgb_range:
            return divide_biases(state, rgb_range), rgb_range
    raise WeightsError(f"{layout}: mean shift {[round(v, 4) for v in bias.tolist()]} fits neither rgb_range 1 nor 255")


def divide_biases(state: State, rgb_range: int) -> State:
    """``state`` with every bias divided by ``rgb_range`` (see the range note above)."""
    if rgb_range == 1:
        return state
    return {k: v.float() / rgb_range if k.endswith(".bias") else v for k, v in state.items()}


def block_options(state: State, head: str, block: str) -> tuple[int, int]:
    """(n_blocks, n_feats) of an EDSR-style state dict."""
    return count(state, block), state[head].shape[0]


def check_rgb(layout: str, in_ch: int, out_ch: int) -> None:
    """A WeightsError unless the network takes and gives 3 channels."""
    if (in_ch, out_ch) != (3, 3):
        raise WeightsError(f"{layout} takes {in_ch} and gives {out_ch} channels: srtool runs it on RGB (3 and 3)")


def edsr_shape(state: State, layout: str, required: set[str], head: str, block: str, last: str,
               upsampler: str) -> tuple[int, int, int] | None:
    """(n_blocks, n_feats, scale) of an EDSR-shaped state dict: ``head`` conv, blocks counted by the ``block``
    pattern, a sub-pixel ``upsampler`` and a ``last`` conv, on RGB; None when a ``required`` tensor is missing."""
    if not required <= state.keys():
        return None
    n_blocks, n_feats = block_options(state, head, block)
    check_rgb(layout, state[head].shape[1], state[last].shape[0])
    return n_blocks, n_feats, shuffle_scale(state, upsampler, n_feats, layout)
