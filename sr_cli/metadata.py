"""The metadata of srtool's safetensors weights files, read without torch (``srtool models`` reads each shipped
file's network options)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from sr_cli.errors import WeightsError


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an srtool safetensors file, JSON values decoded."""
    try:
        with safe_open(str(path), framework="numpy") as f:  # "pt" would import torch, only to read the header
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
