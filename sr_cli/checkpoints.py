"""Official checkpoints: recognise a foreign state dict's layout and convert it to srtool's names and range.

``convert(state)`` returns the tensors under srtool's names with ``{"architecture", "scale", "options",
"layout"}`` (the architecture is a registry name; the scale is None when one file serves every scale), or None
when no layout below matches (srtool's own names, whose scale the tensors do not tell, fall there too). A layout
that is recognised but that srtool cannot run exactly is a WeightsError saying why. Layouts, from the public code:

- EDSR-PyTorch (``src/model/edsr.py``, ``mdsr.py``, ``common.py``) EDSR and MDSR, and the official CSD code's
  width-switchable EDSR (``model/edsr.py``): srtool's EDSR, MDSR and CSDEDSR use their names already.
- BasicSR EDSR (``basicsr/archs/edsr_arch.py``): renamed to EDSR-PyTorch's names.
- BasicSR / Real-ESRGAN RRDBNet (``basicsr/archs/rrdbnet_arch.py``): srtool's names; x4, and x2, which
  pixel-unshuffles its input by 2 first (srtool's esrgan with ``unshuffle`` 2); x1 (unshuffle 4) is refused.
- ESRGAN (``xinntao/ESRGAN`` ``RRDBNet_arch.py``, BSRGAN's x2/x4 variant) ``RRDB_trunk`` names, and the older
  sequential ``model.N`` layout of ``RRDB_ESRGAN_x4_old_arch.pth``: renamed to srtool's.
- BasicSR MSRResNet (``basicsr/archs/srresnet_arch.py``): srtool's srresnet with variant ``basicsr``, its names.
- Real-ESRGAN SRVGGNetCompact (``realesrgan/archs/srvgg_arch.py``, the PReLU models ``realesr-general-x4v3``,
  ``realesr-animevideov3``): srtool's compact, its names.

Range: EDSR-PyTorch and CSD train on [0, rgb_range] (255; read from the mean shift's bias), BasicSR's EDSR scales
``(x - mean)`` by ``img_range`` 255 inside the network; srtool runs on [0, 1]. These networks are convolutions,
ReLUs, pixel shuffles, residual sums and constant scalings, so ``f(c·x; W, c·b) = c·f(x; W, b)`` for ``c > 0``:
dividing every bias (mean shifts included) by the range, weights unchanged, gives ``out(x/255)·255 = official(x)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import torch

from sr_cli.errors import WeightsError
from sr_cli.models.blocks import DIV2K_MEAN, SCALES

State = dict[str, torch.Tensor]
Info = dict[str, Any]
Found = tuple[State, Info] | None


def _info(architecture: str, scale: int | None, options: dict[str, Any], layout: str) -> Info:
    return {"architecture": architecture, "scale": scale, "options": options, "layout": layout}


def _count(state: State, pattern: str) -> int:
    """How many consecutive indices 0, 1, ... have ``pattern.format(i)`` in ``state``."""
    n = 0
    while pattern.format(n) in state:
        n += 1
    return n


def _shuffle_scale(state: State, prefix: str, n_feats: int, layout: str) -> int:
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


def _rename(state: State, rules: list[tuple[str, str]], layout: str) -> State:
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


def _mean_shifts() -> State:
    """srtool's default mean shifts on [0, 1] (DIV2K mean, identity weights)."""
    eye = torch.eye(3).view(3, 3, 1, 1)
    mean = torch.tensor(DIV2K_MEAN)
    return {"sub_mean.weight": eye.clone(), "sub_mean.bias": -mean, "add_mean.weight": eye, "add_mean.bias": mean}


def _unit_range(state: State, layout: str) -> tuple[State, int]:
    """``state`` converted from its rgb_range (read from ``add_mean.bias``; EDSR-PyTorch's 255 with its default
    mean shifts when the file has none) to [0, 1], and that range."""
    if "add_mean.bias" not in state:
        return {**_divide_biases(state, 255), **_mean_shifts()}, 255
    bias = state["add_mean.bias"].double()
    mean = torch.tensor(DIV2K_MEAN, dtype=torch.float64)
    estimate = float(bias @ mean / (mean @ mean))
    for rgb_range in (1, 255):
        if abs(estimate - rgb_range) <= 0.01 * rgb_range:
            return _divide_biases(state, rgb_range), rgb_range
    raise WeightsError(f"{layout}: mean shift {[round(v, 4) for v in bias.tolist()]} fits neither rgb_range 1 nor 255")


def _divide_biases(state: State, rgb_range: int) -> State:
    if rgb_range == 1:
        return state
    return {k: v.float() / rgb_range if k.endswith(".bias") else v for k, v in state.items()}


def _edsr_options(state: State, head: str, block: str) -> tuple[int, int]:
    """(n_blocks, n_feats) of an EDSR-style state dict."""
    return _count(state, block), state[head].shape[0]


def _edsr_arch(n_feats: int) -> str:
    """EDSR with 256 features is the paper's large model (res_scale 0.1, which the tensors cannot show)."""
    return "edsr-large" if n_feats == 256 else "edsr"


def _check_rgb(layout: str, in_ch: int, out_ch: int) -> None:
    if (in_ch, out_ch) != (3, 3):
        raise WeightsError(f"{layout} takes {in_ch} and gives {out_ch} channels: srtool runs it on RGB (3 and 3)")


def _edsr_pytorch(state: State) -> Found:
    """EDSR-PyTorch EDSR: head.0, body.N.body.{0,2}, body.{n_blocks}, tail.0.{0,2}, tail.1, mean shifts."""
    if not {"head.0.weight", "tail.0.0.weight", "tail.1.weight"} <= state.keys():
        return None
    n_blocks, n_feats = _edsr_options(state, "head.0.weight", "body.{}.body.0.weight")
    if n_blocks == 0 or f"body.{n_blocks}.weight" not in state:
        return None
    layout = "EDSR-PyTorch EDSR"
    _check_rgb(layout, state["head.0.weight"].shape[1], state["tail.1.weight"].shape[0])
    scale = _shuffle_scale(state, "tail.0", n_feats, layout)
    state, rgb_range = _unit_range(state, layout)
    return state, _info(_edsr_arch(n_feats), scale, {"n_blocks": n_blocks, "n_feats": n_feats},
                        f"{layout} {n_blocks}x{n_feats} x{scale}, rgb_range {rgb_range}")


def _mdsr(state: State) -> Found:
    """EDSR-PyTorch MDSR: per-scale pre_process.I and upsample.I around a shared body; branches reordered to
    srtool's x2, x3, x4."""
    if not {"head.0.weight", "pre_process.0.0.body.0.weight", "upsample.0.0.weight", "tail.0.weight"} <= state.keys():
        return None
    layout = "EDSR-PyTorch MDSR"
    n_blocks, n_feats = _edsr_options(state, "head.0.weight", "body.{}.body.0.weight")
    _check_rgb(layout, state["head.0.weight"].shape[1], state["tail.0.weight"].shape[0])
    branches = [_shuffle_scale(state, f"upsample.{i}", n_feats, layout)
                for i in range(_count(state, "upsample.{}.0.weight"))]
    if sorted(branches) != list(SCALES):
        have = ", ".join(f"x{s}" for s in branches)
        raise WeightsError(f"{layout} with branches for {have}: srtool's mdsr needs one each for x2, x3 and x4")
    order = {str(i): str(SCALES.index(s)) for i, s in enumerate(branches)}
    state = {re.sub(r"^(pre_process|upsample)\.(\d+)\.", lambda m: f"{m[1]}.{order[m[2]]}.", k): v
             for k, v in state.items()}
    state, rgb_range = _unit_range(state, layout)
    return state, _info("mdsr", None, {"n_blocks": n_blocks, "n_feats": n_feats},
                        f"{layout} {n_blocks}x{n_feats} x2/x3/x4, rgb_range {rgb_range}")


def _csd(state: State) -> Found:
    """Official CSD: head, body.N.conv{1,2}, body_conv, upsampler.blocks.J, tail_conv (full width)."""
    if not {"head.weight", "body_conv.weight", "upsampler.blocks.0.weight", "tail_conv.weight"} <= state.keys():
        return None
    layout = "CSD"
    n_blocks, n_feats = _edsr_options(state, "head.weight", "body.{}.conv1.weight")
    _check_rgb(layout, state["head.weight"].shape[1], state["tail_conv.weight"].shape[0])
    scale = _shuffle_scale(state, "upsampler.blocks", n_feats, layout)
    state, rgb_range = _unit_range(state, layout)
    return state, _info("csd", scale, {"n_blocks": n_blocks, "n_feats": n_feats, "sliced": False},
                        f"{layout} {n_blocks}x{n_feats} x{scale}, rgb_range {rgb_range}")


def _basicsr_edsr(state: State) -> Found:
    """BasicSR EDSR: conv_first, body.N.conv{1,2}, conv_after_body, upsample.{0,2}, conv_last; its mean
    (not saved) is the DIV2K default and its img_range 255 is divided out of the biases."""
    if not {"conv_first.weight", "conv_after_body.weight", "upsample.0.weight", "conv_last.weight"} <= state.keys():
        return None
    layout = "BasicSR EDSR"
    n_blocks, n_feats = _edsr_options(state, "conv_first.weight", "body.{}.conv1.weight")
    _check_rgb(layout, state["conv_first.weight"].shape[1], state["conv_last.weight"].shape[0])
    scale = _shuffle_scale(state, "upsample", n_feats, layout)
    rules = [(r"^conv_first\.", "head.0."), (r"^body\.(\d+)\.conv1\.", r"body.\1.body.0."),
             (r"^body\.(\d+)\.conv2\.", r"body.\1.body.2."), (r"^conv_after_body\.", f"body.{n_blocks}."),
             (r"^upsample\.(\d+)\.", r"tail.0.\1."), (r"^conv_last\.", "tail.1.")]
    state = {**_divide_biases(_rename(state, rules, layout), 255), **_mean_shifts()}
    return state, _info(_edsr_arch(n_feats), scale, {"n_blocks": n_blocks, "n_feats": n_feats},
                        f"{layout} {n_blocks}x{n_feats} x{scale}, img_range 255")


def _msrresnet(state: State) -> Found:
    """BasicSR MSRResNet: conv_first, body.N.conv{1,2}, upconv1[, upconv2], conv_hr, conv_last (its own names,
    on [0, 1]); srtool's srresnet with variant ``basicsr``."""
    if not {"conv_first.weight", "body.0.conv1.weight", "upconv1.weight", "conv_hr.weight",
            "conv_last.weight"} <= state.keys():
        return None
    layout = "BasicSR MSRResNet"
    n_blocks, n_feats = _edsr_options(state, "conv_first.weight", "body.{}.conv1.weight")
    _check_rgb(layout, state["conv_first.weight"].shape[1], state["conv_last.weight"].shape[0])
    stages = {f"up.{i}.weight": state[f"upconv{i + 1}.weight"] for i in (0, 1) if f"upconv{i + 1}.weight" in state}
    scale = _shuffle_scale(stages, "up", n_feats, layout)
    return state, _info("srresnet", scale, {"variant": "basicsr", "n_blocks": n_blocks, "n_feats": n_feats},
                        f"{layout} {n_blocks}x{n_feats} x{scale}")


def _rrdb_info(state: State, scale: int, layout: str, unshuffle: int = 1) -> Info:
    """Options of an RRDBNet state dict in srtool's names (``unshuffle``: its input's pixel-unshuffle factor)."""
    num_block, num_feat = _edsr_options(state, "conv_first.weight", "body.{}.rdb1.conv1.weight")
    _check_rgb(layout, state["conv_first.weight"].shape[1] // unshuffle**2, state["conv_last.weight"].shape[0])
    grow = state["body.0.rdb1.conv1.weight"].shape[0]
    options = {"num_block": num_block, "num_feat": num_feat, "num_grow_ch": grow}
    shuffled = {"unshuffle": unshuffle} if unshuffle > 1 else {}
    return _info("esrgan", scale, {**options, **shuffled}, f"{layout} {num_block}x{num_feat} (growth {grow}) x{scale}"
                 + (f", pixel-unshuffle {unshuffle}" if shuffled else ""))


def _basicsr_rrdb(state: State) -> Found:
    """BasicSR RRDBNet: always two nearest ×2 stages; x2 and x1 models pixel-unshuffle their input by 2 and 4
    first, which conv_first's input channels (4 and 16 per colour) tell."""
    if not {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_up2.weight",
            "conv_last.weight"} <= state.keys():
        return None  # without conv_up2 it is srtool's own x2/x3 layout, whose scale the tensors do not tell
    layout = "BasicSR RRDBNet"
    in_ch, out_ch = state["conv_first.weight"].shape[1], state["conv_last.weight"].shape[0]
    if in_ch == 16 * out_ch:
        raise WeightsError(f"{layout} x1 (pixel-unshuffle input: conv_first takes {in_ch} channels) is not "
                           "supported: srtool upscales x2, x3 or x4")
    unshuffle = 2 if in_ch == 4 * out_ch else 1
    return state, _rrdb_info(state, 4 // unshuffle, layout, unshuffle)


def _esrgan(state: State) -> Found:
    """xinntao/ESRGAN RRDBNet_arch (and BSRGAN): RRDB_trunk.N.RDBk.convj, trunk_conv, upconv1[, upconv2], HRconv."""
    if not {"conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight", "trunk_conv.weight", "upconv1.weight",
            "conv_last.weight"} <= state.keys():
        return None
    layout = "ESRGAN RRDB_trunk"
    rules = [(r"^conv_first\.", "conv_first."), (r"^RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.", r"body.\1.rdb\2.conv\3."),
             (r"^trunk_conv\.", "conv_body."), (r"^upconv(\d)\.", r"conv_up\1."), (r"^HRconv\.", "conv_hr."),
             (r"^conv_last\.", "conv_last.")]
    state = _rename(state, rules, layout)
    return state, _rrdb_info(state, 4 if "conv_up2.weight" in state else 2, layout)


def _esrgan_old(state: State) -> Found:
    """The sequential ``model.N`` layout: model.0 conv_first, model.1.sub.N RRDBs (convs as ``.convj.0``) and
    model.1.sub.NB the trunk conv, then (upsample, conv, act) per stage at model.3, model.6, conv_hr and conv_last
    two and four places after the last stage. One stage is read as x2, as the old code's 2x models have it."""
    if not {"model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"} <= state.keys():
        return None
    layout = "ESRGAN old (model.N)"
    num_block = _count(state, "model.1.sub.{}.RDB1.conv1.0.weight")
    top = sorted(int(m[1]) for k in state if (m := re.fullmatch(r"model\.(\d+)\.weight", k)) and int(m[1]) >= 2)
    stages = len(top) - 2
    if stages not in (1, 2) or top != [3 * (j + 1) for j in range(stages)] + [3 * stages + 2, 3 * stages + 4]:
        at = ", ".join(f"model.{i}" for i in top)
        raise WeightsError(f"{layout} layout with convolutions at {at} after the trunk: not x2 or x4 nearest "
                           "upsampling")
    num_feat = state["model.0.weight"].shape[0]
    if any(state[f"model.{3 * (j + 1)}.weight"].shape[0] != num_feat for j in range(stages)):
        raise WeightsError(f"{layout} with a pixel-shuffle upsampler is not supported: srtool's esrgan upsamples "
                           "by nearest neighbour")
    rules = [(r"^model\.0\.", "conv_first."),
             (r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.", r"body.\1.rdb\2.conv\3."),
             (rf"^model\.1\.sub\.{num_block}\.", "conv_body."), (r"^model\.3\.", "conv_up1."),
             (r"^model\.6\.", "conv_up2."), (rf"^model\.{3 * stages + 2}\.", "conv_hr."),
             (rf"^model\.{3 * stages + 4}\.", "conv_last.")]
    state = _rename(state, rules, layout)
    return state, _rrdb_info(state, 4 if stages == 2 else 2, layout)


def _compact(state: State) -> Found:
    """Real-ESRGAN SRVGGNetCompact: only ``body.N`` tensors, conv (even N) and PReLU (odd N) in turn, the last conv
    to ``3·scale²`` channels for the pixel shuffle (its own names)."""
    if "body.0.weight" not in state or not all(re.fullmatch(r"body\.\d+\.(weight|bias)", k) for k in state):
        return None
    layout = "Real-ESRGAN SRVGGNetCompact"
    n = _count(state, "body.{}.weight")
    want = {f"body.{i}.{kind}" for i in range(n) for kind in (("weight",) if i % 2 else ("weight", "bias"))}
    if n < 3 or n % 2 == 0 or state.keys() != want or any(
            state[f"body.{i}.weight"].dim() != (1 if i % 2 else 4) for i in range(n)):
        raise WeightsError(f"{layout} layout whose body.N tensors are not conv, PReLU, ..., conv: srtool's compact "
                           "runs the PReLU models (act_type prelu)")
    num_feat, in_ch = state["body.0.weight"].shape[:2]
    out = state[f"body.{n - 1}.weight"].shape[0]
    scales = [s for s in SCALES if out == 3 * s * s]
    if in_ch != 3 or not scales:
        raise WeightsError(f"{layout} takes {in_ch} channels and its last convolution gives {out}: srtool runs it on "
                           "RGB, x2, x3 or x4 (3 in, 12, 27 or 48 out)")
    num_conv = (n - 3) // 2
    return state, _info("compact", scales[0], {"num_feat": num_feat, "num_conv": num_conv},
                        f"{layout} {num_conv}x{num_feat} x{scales[0]}")


_LAYOUTS: tuple[Callable[[State], Found], ...] = (
    _csd, _mdsr, _edsr_pytorch, _basicsr_edsr, _msrresnet, _basicsr_rrdb, _esrgan, _esrgan_old, _compact)


def convert(state: State) -> Found:
    """``state`` in srtool's names and range with its info, or None when no known layout matches."""
    for layout in _LAYOUTS:
        found = layout(state)
        if found is not None:
            return found
    return None
