"""Model weights: srtool's safetensors format (tensors + metadata), loading, and architecture checks.

A weights file that does not fit the model asked for is a ``WeightsError`` saying what it is and what was
expected; a learned model without weights is a ``WeightsError`` naming the missing file and the
``srtool train`` command that makes it — srtool never runs a model with random weights. Official checkpoints
(EDSR-PyTorch, CSD, BasicSR, ESRGAN) are converted on loading by ``sr_cli.checkpoints``, which also tells
their architecture, scale and options.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from sr_cli import __version__
from sr_cli.atomic import atomic_path
from sr_cli.errors import WeightsError
from sr_cli.families import convert
from sr_cli.metadata import read_metadata
from sr_cli.registry import MODELS, ModelSpec, shipped_weights

State = dict[str, torch.Tensor]
# How torch.save's files begin: a zip archive, or the legacy format's pickled magic number (protocol 2).
_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


def save_weights(path: str | Path, state: State, metadata: dict[str, Any], *, half: bool = False) -> Path:
    """Write ``state`` as safetensors with ``metadata`` (values JSON-encoded), atomically."""
    path = Path(path)
    tensors = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous() for k, v in state.items()}
    meta = {"srtool_version": __version__, **metadata}
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=encoded)
    return path


def _unwrap(obj: Any, path: Path) -> State:
    """The state dict inside a checkpoint object (plain, or under the usual wrapper keys)."""
    for key in ("params_ema", "params", "model_state_dict", "state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return _unwrap(obj[key], path)
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {k.removeprefix("module."): v for k, v in obj.items()}
    raise WeightsError(f"{path} holds no recognisable state dict")


def load_state(path: str | Path) -> tuple[State, dict[str, Any]]:
    """Tensors and metadata of a weights file: srtool safetensors, or a PyTorch pickle read with weights_only.

    A file without srtool's metadata whose layout ``sr_cli.checkpoints`` recognises comes back in srtool's names
    and [0, 1] range, with ``architecture``, ``scale``, ``options`` and ``layout`` as its metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            state, meta = load_file(str(path)), read_metadata(path)
        except (SafetensorError, OSError) as err:
            raise WeightsError(f"cannot read weights {path}: {err}") from None
        if "architecture" in meta:
            return state, meta
    else:
        state, meta = _unwrap(_load_pickle(path), path), {}
    try:
        found = convert(state)
    except WeightsError as err:
        raise WeightsError(f"{path}: {err}") from None
    return (found[0], {**meta, **found[1]}) if found is not None else (state, meta)


def _load_pickle(path: Path) -> Any:
    """A PyTorch pickle read with weights_only (tensors and plain containers, no code). torch's warnings (about
    pickle protocols, ...) are not shown: the weights loaded, or the one-line error, say what matters."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise WeightsError(f"cannot read weights {path}: {err.strerror or err}") from None
    except Exception as err:
        raise _pickle_error(path, err) from None


def _pickle_error(path: Path, err: Exception) -> WeightsError:
    """What a failed ``torch.load`` means: code to run, a checkpoint torch cannot read, or not a checkpoint."""
    if "Unsupported global" in str(err):
        return WeightsError(f"refusing {path}: it needs arbitrary code to load (not a plain weights file)")
    with path.open("rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if not head.startswith(_ZIP_MAGIC) and head != _LEGACY_MAGIC:
        return WeightsError(f"{path} is not a weights file (neither safetensors nor a PyTorch checkpoint)")
    if isinstance(err, pickle.UnpicklingError):
        reason = "its pickle uses instructions torch's safe loader (weights_only) does not support"
    elif isinstance(err, EOFError):
        reason = "it is truncated"
    else:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return WeightsError(f"cannot read weights {path}: {reason}")


def held_model(path: str | Path) -> tuple[str, int | None]:
    """The registry name and scale (None: every scale, as MDSR) of the model a weights file holds, from its
    metadata or its recognised layout; a WeightsError when neither tells."""
    state, meta = load_state(path)
    if meta.get("architecture") is None:
        names = ", ".join(list(state)[:3])
        raise WeightsError(f"cannot tell which model {path} holds: its tensors ({names}, ...) match no layout srtool "
                           "recognises; name it with --model (and --scale)")
    arch, scale = str(meta["architecture"]), meta.get("scale")
    if "scales" in meta or (arch in MODELS and MODELS[arch].multi_scale):
        return arch, None
    return arch, int(scale) if scale is not None else None


def missing_weights_error(spec: ModelSpec, scale: int, path: Path) -> WeightsError:
    """The error for a learned model without weights: names the file and the command that makes it."""
    return WeightsError(
        f"{spec.name} x{scale} has no weights ({path} not found): train them with "
        f"`srtool train --model {spec.name}{'' if spec.multi_scale else f' --scale {scale}'} --data DIR` and pass "
        "--weights RUN_DIR/best.safetensors"
    )


def _layout(meta: dict[str, Any]) -> str:
    return f" (detected layout: {meta['layout']})" if meta.get("layout") else ""


def check_held(spec: ModelSpec, scale: int, path: Path, meta: dict[str, Any]) -> None:
    """Raise a WeightsError when ``meta`` says the file holds another architecture or scale than asked for."""
    arch, got_scale = meta.get("architecture"), meta.get("scale")
    if (arch is not None and arch != spec.name) or (got_scale is not None and not spec.multi_scale
                                                    and int(got_scale) != scale):
        held = f"{arch or spec.name}" + (f" x{got_scale}" if got_scale is not None else "")
        raise WeightsError(f"{path} holds {held} weights, expected {spec.name} x{scale}{_layout(meta)}")


def check_state(model: nn.Module, state: State, spec: ModelSpec, scale: int, path: Path, meta: dict[str, Any]) -> None:
    """Raise a WeightsError saying what ``state`` is and what ``model`` expected when they do not fit."""
    check_held(spec, scale, path, meta)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"{len(missing)} missing tensors (e.g. {missing[0]})" if missing else
                  f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})" if unexpected else
                  f"shape of {wrong[0]} is {tuple(state[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
        raise WeightsError(f"{path} does not fit {spec.name} x{scale}: {detail}{_layout(meta)}")


def load_model(spec: ModelSpec, scale: int, weights: str | Path | None = None, **options: Any) -> nn.Module:
    """``spec``'s module at ``scale`` in eval mode, holding ``weights`` (or the shipped ones) in float32."""
    return load_model_options(spec, scale, weights, **options)[0]


def load_model_options(spec: ModelSpec, scale: int, weights: str | Path | None = None, *,
                       blend: tuple[Path, float] | None = None, **options: Any) -> tuple[nn.Module, dict[str, Any]]:
    """``load_model`` and the build options it used: the weights' own (metadata or detected layout), then
    ``options``. ``blend`` = (file, w): every tensor becomes (1 - w) · the weights' + w · the file's (same layout)."""
    spec.check_scale(scale)
    if not spec.learned:
        return spec.build(scale, **options).eval(), options
    path = Path(weights) if weights is not None else shipped_weights(spec, scale)
    if weights is None and not path.is_file():
        raise missing_weights_error(spec, scale, path)
    state, meta = load_state(path)
    check_held(spec, scale, path, meta)
    saved = meta.get("options") or {}
    if saved.get("sliced") and "width" in options and float(options["width"]) != float(saved.get("width", -1)):
        raise WeightsError(f"{path} is a width-{saved['width']:g} {spec.name} network: run it at --width "
                           f"{saved['width']:g} (a full-width file runs at any width)")
    build_opts = {**saved, **options}
    model = spec.build(scale, **build_opts)
    check_state(model, state, spec, scale, path, meta)
    if blend is not None:
        other, _ = load_state(blend[0])
        if {k: v.shape for k, v in other.items()} != {k: v.shape for k, v in state.items()}:
            raise WeightsError(f"{blend[0]} does not hold the same network as {path}: they cannot be blended")
        state = {k: (1 - blend[1]) * v.double() + blend[1] * other[k].double() if v.is_floating_point() else v
                 for k, v in state.items()}
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval(), build_opts
