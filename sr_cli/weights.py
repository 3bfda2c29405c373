"""Model weights: srtool's safetensors format (tensors + metadata), loading, and architecture checks.

A weights file that does not fit the model asked for is a ``WeightsError`` saying what it is and what was
expected; a learned model without weights is a ``WeightsError`` naming the missing file and the
``srtool train`` command that makes it — srtool never runs a model with random weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from sr_cli import __version__
from sr_cli.atomic import atomic_path
from sr_cli.errors import WeightsError
from sr_cli.registry import ModelSpec, shipped_weights

State = dict[str, torch.Tensor]


def save_weights(path: str | Path, state: State, metadata: dict[str, Any], *, half: bool = False) -> Path:
    """Write ``state`` as safetensors with ``metadata`` (values JSON-encoded), atomically."""
    path = Path(path)
    tensors = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous() for k, v in state.items()}
    meta = {"srtool_version": __version__, **metadata}
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=encoded)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an srtool safetensors file, JSON values decoded."""
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise WeightsError(f"cannot read weights {path}: {err}") from None
    out: dict[str, Any] = {}
    for k, v in raw.items():
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _unwrap(obj: Any, path: Path) -> State:
    """The state dict inside a checkpoint object (plain, or under the usual wrapper keys)."""
    for key in ("params_ema", "params", "model_state_dict", "state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return _unwrap(obj[key], path)
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {k.removeprefix("module."): v for k, v in obj.items()}
    raise WeightsError(f"{path} holds no recognisable state dict")


def load_state(path: str | Path) -> tuple[State, dict[str, Any]]:
    """Tensors and metadata of a weights file: srtool safetensors, or a PyTorch pickle read with weights_only."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path)), read_metadata(path)
        except (SafetensorError, OSError) as err:
            raise WeightsError(f"cannot read weights {path}: {err}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle errors come in many types
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise WeightsError(f"refusing {path}: it needs arbitrary code to load (not a plain weights file)") from None
        raise WeightsError(f"cannot read weights {path}: {msg}") from None
    return _unwrap(obj, path), {}


def missing_weights_error(spec: ModelSpec, scale: int, path: Path) -> WeightsError:
    """The error for a learned model without weights: names the file and the command that makes it."""
    return WeightsError(
        f"{spec.name} x{scale} has no weights ({path} not found): train them with "
        f"`srtool train --model {spec.name} --scale {scale} --data DIR` and pass --weights RUN_DIR/best.safetensors"
    )


def check_state(model: nn.Module, state: State, spec: ModelSpec, scale: int, path: Path, meta: dict[str, Any]) -> None:
    """Raise a WeightsError saying what ``state`` is and what ``model`` expected when they do not fit."""
    arch, got_scale = meta.get("architecture"), meta.get("scale")
    if arch is not None and arch != spec.name:
        raise WeightsError(f"{path} holds {arch} x{got_scale} weights, expected {spec.name} x{scale}")
    if got_scale is not None and not spec.multi_scale and int(got_scale) != scale:
        raise WeightsError(f"{path} holds {arch or spec.name} x{got_scale} weights, expected {spec.name} x{scale}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"{len(missing)} missing tensors (e.g. {missing[0]})" if missing else
                  f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})" if unexpected else
                  f"shape of {wrong[0]} is {tuple(state[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
        raise WeightsError(f"{path} does not fit {spec.name} x{scale}: {detail}")


def load_model(spec: ModelSpec, scale: int, weights: str | Path | None = None, **options: Any) -> nn.Module:
    """``spec``'s module at ``scale`` in eval mode, holding ``weights`` (or the shipped ones) in float32."""
    spec.check_scale(scale)
    if not spec.learned:
        return spec.build(scale, **options).eval()
    path = Path(weights) if weights is not None else shipped_weights(spec, scale)
    if weights is None and not path.is_file():
        raise missing_weights_error(spec, scale, path)
    state, meta = load_state(path)
    build_opts = {**{k: v for k, v in (meta.get("options") or {}).items()}, **options}
    model = spec.build(scale, **build_opts)
    check_state(model, state, spec, scale, path, meta)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()
