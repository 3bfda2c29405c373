"""The model registry: every model name srtool can run (gathered from ``families``), and where shipped weights live."""

from __future__ import annotations

import json
from collections.abc import Collection
from importlib import resources
from pathlib import Path

from sr_cli.errors import UsageError, did_you_mean
from sr_cli.families import SPECS
from sr_cli.modelspec import ModelSpec

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in SPECS}


def get_spec(name: str) -> ModelSpec:
    """The spec for ``name``; an unknown name is a UsageError naming the closest and listing the known ones."""
    try:
        return MODELS[name.lower()]
    except KeyError:
        raise unknown_model(name) from None


def unknown_model(name: str, published: Collection[str] = ()) -> UsageError:
    """The error for ``name``, neither a registry model nor one of ``published`` (the catalogue names, where the
    option takes those too): the closest name, then the registry's."""
    hint = did_you_mean(name.lower(), [*MODELS, *published])
    also = ", or a published model (srtool models lists them)" if published else ""
    return UsageError(f"unknown model '{name}'{hint}: choose one of {', '.join(MODELS)}{also}")


def shipped_weights_dir() -> Path:
    """The folder of the weights that ship with srtool (``weights/`` in the repository, ``sr_cli.zoo`` installed)."""
    try:
        return Path(str(resources.files("sr_cli.zoo")))
    except ModuleNotFoundError:  # running from a source checkout without installing
        return Path(__file__).resolve().parents[1] / "weights"


def shipped_weights(spec: ModelSpec, scale: int) -> Path:
    """Where the shipped weights for ``spec`` at ``scale`` are (the file may not exist)."""
    return shipped_weights_dir() / spec.weights_name(scale)


# Set5 Y-PSNR change of each shipped file run in bf16 instead of fp32 (benchmarks/bf16_quality.py writes it).
BF16_TABLE = Path(__file__).resolve().parent / "data" / "bf16_set5.json"
BF16_MAX_SET5_CHANGE_DB = 0.01


def bf16_harmless(spec: ModelSpec, scale: int) -> bool:
    """Whether the shipped weights of ``spec`` at ``scale`` were measured to lose < 0.01 dB on Set5 in bf16."""
    table = json.loads(BF16_TABLE.read_text()) if BF16_TABLE.is_file() else {}
    change = table.get(spec.name, {}).get(f"x{scale}")
    return change is not None and abs(change) < BF16_MAX_SET5_CHANGE_DB


