"""``--init``: a new run starts from other weights, copying every tensor whose name and shape match (×4 from ×2, a
BasicSR file, ...). A file of the run's own model also brings its network shape (a BasicSR MSRResNet fine-tunes as
one); options given on the command line win."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import Tensor, nn

from sr_cli.errors import WeightsError
from sr_cli.train.config import TrainConfig
from sr_cli.weights import load_state

SHAPE_OPTIONS = ("variant", "n_blocks", "n_feats", "num_block", "num_feat", "num_grow_ch", "num_conv", "unshuffle")


def copy_matching(model: nn.Module, state: dict[str, Tensor]) -> tuple[int, list[str]]:
    """Copy every tensor of ``state`` whose name and shape match ``model``'s; returns (copied, not copied)."""
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in fits.items()}})
    skipped = [f"{k} {tuple(v.shape)}" for k, v in own.items() if k not in fits]
    return len(fits), skipped


def init_shape(meta: dict[str, Any], model: str, scale: int) -> dict[str, Any]:
    """The network-shape options of an ``--init`` file holding ``model`` itself (none for another model, and
    never csd's width or slicing, which the run sets; a pixel-unshuffle input only at the file's own scale)."""
    if meta.get("architecture") != model:
        return {}
    same_scale = meta.get("scale") in (None, scale)
    return {k: v for k, v in (meta.get("options") or {}).items()
            if k in SHAPE_OPTIONS and (same_scale or k != "unshuffle")}


class InitWeights:
    """The ``--init`` file of a run of registry model ``model`` at ``scale``: its tensors and network shape."""

    def __init__(self, path: str, model: str, scale: int) -> None:
        self.path = path
        self.state, meta = load_state(path)
        self.shape = init_shape(meta, model, scale)

    def configure(self, config: TrainConfig) -> TrainConfig:
        """``config`` with the file's network shape (its own model options win)."""
        return dataclasses.replace(config, model_options={**self.shape, **config.model_options}) if self.shape \
            else config

    def copy_into(self, model: nn.Module, name: str) -> str:
        """Copy the matching tensors into ``model`` (``name``, e.g. ``edsr x4``, for the messages); the note saying
        what was copied. A WeightsError when nothing fits."""
        copied, skipped = copy_matching(model, self.state)
        if copied == 0:
            raise WeightsError(f"--init {self.path}: no tensor fits {name} (names or shapes differ)")
        message = f"--init: copied {copied} of {copied + len(skipped)} tensors from {self.path}"
        if self.shape:
            message += " into its network (" + ", ".join(f"{k} {v}" for k, v in self.shape.items()) + ")"
        return message + (f"; not copied: {', '.join(skipped)}" if skipped else "")
