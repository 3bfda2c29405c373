"""The work folder beside the output: finished chunk files and the job's manifest, for --resume and ranks.

``.<output name>.srtool-chunks/job.json`` records what the job is (input identity, range, model, encoder
options) and the probe, so a resumed job or another rank skips the decoding pass. A chunk file exists only
once complete (it is renamed into place), so every chunk file present is reusable.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from sr_cli.atomic import atomic_path
from sr_cli.errors import OutputError, UsageError

MANIFEST = "job.json"


def work_dir(output: Path) -> Path:
    """The hidden work folder of ``output``."""
    return output.parent / f".{output.name}.srtool-chunks"


_CHUNK = re.compile(r"chunk-(?P<a>\d{9})-(?P<b>\d{9})\.nut")


def chunk_path(root: Path, a: int, b: int) -> Path:
    """The chunk file holding timeline slots ``[a, b)``."""
    return root / f"chunk-{a:09d}-{b:09d}.nut"


def finished_chunks(root: Path) -> list[tuple[int, int]]:
    """The slot ranges ``[a, b)`` of the chunk files in ``root``, in order (a chunk file exists only once its
    encoder finished it: it is renamed into place)."""
    found = (_CHUNK.fullmatch(p.name) for p in root.glob("chunk-*.nut")) if root.is_dir() else ()
    return sorted((int(m["a"]), int(m["b"])) for m in found if m)


def missing_spans(a: int, b: int, done: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[a, b)`` that no range of ``done`` covers, in order."""
    spans, cursor = [], a
    for x, y in done:
        if y <= cursor or x >= b:
            continue
        if x > cursor:
            spans.append((cursor, x))
        cursor = max(cursor, y)
    if cursor < b:
        spans.append((cursor, b))
    return spans


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of an earlier run, or None."""
    try:
        return json.loads((root / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def prepare(root: Path, job: dict[str, Any], resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """Create the work folder, or reuse it for --resume when it holds the same job; returns the old manifest.

    A folder left by an interrupted run is never discarded silently: it needs --resume (same job) or
    --overwrite (start over).
    """
    old = read_manifest(root) if root.exists() else None
    done = len(list(root.glob("chunk-*.nut"))) if root.exists() else 0
    if root.exists() and not resume:
        if done and not overwrite:
            raise OutputError(f"an interrupted run left {done} finished chunk(s) in {root}: add --resume to "
                              "continue it, or --overwrite to start over")
        shutil.rmtree(root)
        old = None
    if resume and old is not None and old.get("job") != job:
        changed = sorted(k for k in job if old.get("job", {}).get(k) != job[k])
        raise UsageError(f"--resume: {root} holds a different job (changed: {', '.join(changed)}); "
                         "run with --overwrite to start over")
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".*.part*"):
        stale.unlink()
    return old


def write_manifest(root: Path, doc: dict[str, Any]) -> None:
    """Write the manifest atomically."""
    with atomic_path(root / MANIFEST) as tmp:
        tmp.write_text(json.dumps(doc))
