"""The catalogue of official published weights (``sr_cli/data/catalogue.json``) and the user cache they live in.

An entry names one published file: the registry architecture it runs as, its scales, URL, size (when known) and
sha256 (full, or EDSR-PyTorch's 8-hex prefix), licence, source and the paper's Set5 PSNR. A file is fetched once into
the cache (``$SRTOOL_CACHE``, else the platform's user cache folder, ``weights/``), checked before it is ever
loaded, and placed atomically (``sr_cli.download``). ``--offline`` / ``SRTOOL_OFFLINE=1`` never touches the network;
``SRTOOL_WEIGHTS_MIRROR`` (a base URL) replaces each file's host and path with ``<mirror>/<file name>``.
A file carried over by hand is registered with :func:`register` (checked against the same hash).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import platformdirs

from sr_cli.atomic import atomic_path
from sr_cli.download import download_file, mismatch
from sr_cli.errors import (
    DownloadError,
    InputError,
    OutputError,
    UsageError,
    did_you_mean,
)


@dataclass(frozen=True)
class Entry:
    """One published weights file."""

    name: str
    architecture: str
    scales: tuple[int, ...]
    url: str
    sha256: str
    size: int | None
    file: str
    licence: str
    source: str
    summary: str
    published: dict[str, dict[str, float]] = field(default_factory=dict)  # data set → "x4" → Y-PSNR
    denoise_pair: str | None = None  # the entry --denoise blends with

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Entry:
        (item,) = doc["files"]
        return cls(doc["name"], doc["architecture"], tuple(doc["scales"]), item["url"], item["sha256"],
                   item.get("size"), item.get("file") or item["url"].rsplit("/", 1)[1], doc["licence"],
                   doc["source"], doc["summary"], doc.get("published", {}), doc.get("denoise_pair"))

    @property
    def path(self) -> Path:
        """Where the checked file lives in the cache."""
        return cache_dir() / self.file

    @property
    def cached(self) -> bool:
        return self.path.is_file()

    def source_url(self) -> str:
        """The URL to fetch from: the mirror's when ``SRTOOL_WEIGHTS_MIRROR`` is set."""
        mirror = os.environ.get("SRTOOL_WEIGHTS_MIRROR", "").strip()
        return f"{mirror.rstrip('/')}/{self.file}" if mirror else self.url

    def hash_text(self) -> str:
        return self.sha256 if len(self.sha256) == 64 else f"{self.sha256}... (prefix)"


def cache_dir() -> Path:
    """The weights cache: ``$SRTOOL_CACHE`` if set, else the platform's user cache folder of srtool."""
    return Path(os.environ.get("SRTOOL_CACHE") or platformdirs.user_cache_dir("srtool")) / "weights"


def canonical(name: str) -> str:
    """Names compare without case, ``_`` and ``-`` alike (``RealESRGAN_x4plus`` = ``realesrgan-x4plus``)."""
    return name.strip().lower().replace("_", "-")


@cache
def catalogue() -> dict[str, Entry]:
    """Every entry of the packaged catalogue, by canonical name."""
    doc = json.loads(resources.files("sr_cli").joinpath("data", "catalogue.json").read_text())
    return {canonical(e["name"]): Entry.from_json(e) for e in doc["entries"]}


def find(name: str) -> Entry | None:
    """The entry called ``name`` (any case, ``_`` or ``-``), or None."""
    return catalogue().get(canonical(name))


def lookup(name: str) -> Entry:
    """The entry called ``name``; an unknown name is a UsageError naming the closest entry and listing them all."""
    entry = find(name)
    if entry is None:
        names = catalogue()
        raise UsageError(f"unknown published model '{name}'{did_you_mean(canonical(name), names)}: choose one of "
                         f"{', '.join(e.name for e in names.values())}")
    return entry


def offline() -> bool:
    return os.environ.get("SRTOOL_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def ensure(entry: Entry, *, offline_only: bool = False, quiet: bool = False) -> Path:
    """The checked cached file of ``entry``, fetched first if it is not there yet (never when offline); a cached
    file is checked again (size and sha256) every time, before it is loaded."""
    if entry.cached:
        problem = mismatch(entry.path, entry.file, entry.sha256, entry.size)
        if problem:
            raise DownloadError(f"{entry.name}: {problem} in the cache: delete {entry.path} to fetch it again")
        return entry.path
    hint = (f"fetch {entry.source_url()} (sha256 {entry.hash_text()}) to {entry.path}, or register a copy with "
            f"'srtool models add {entry.name} FILE'")
    if offline_only or offline():
        raise DownloadError(f"{entry.name} is not in the cache and srtool is offline: {hint}")
    try:
        download_file(entry.source_url(), entry.path, entry.sha256, entry.size, quiet=quiet)
    except DownloadError as err:
        raise DownloadError(f"{entry.name}: {err} ({hint})") from None
    except OSError as err:
        raise OutputError(f"cannot write the weights cache {cache_dir()}: {err.strerror or err}") from None
    return entry.path


def register(entry: Entry, file: Path) -> Path:
    """Copy ``file`` (checked against the entry's size and sha256) into the cache; the cached path."""
    file = Path(file).expanduser()
    if not file.is_file():
        raise InputError(f"{file} does not exist")
    try:
        entry.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(entry.path) as tmp:
            shutil.copyfile(file, tmp)
            problem = mismatch(tmp, entry.file, entry.sha256, entry.size)  # the copy is what gets used
            if problem:
                raise InputError(f"{file} is not {entry.name}: {problem}")
    except OSError as err:
        raise OutputError(f"cannot copy {file} into the weights cache {cache_dir()}: {err.strerror or err}") from None
    return entry.path


def resolve(name: str, scale: int | None) -> tuple[Entry, int]:
    """The entry called ``name`` and the scale to run it at (its only one, or ``scale`` among its scales)."""
    entry = lookup(name)
    if scale is None:
        if len(entry.scales) > 1:
            raise UsageError(f"{entry.name} holds x{', x'.join(map(str, entry.scales))}: pass --scale")
        return entry, entry.scales[0]
    if scale not in entry.scales:
        raise UsageError(f"{entry.name} is x{', x'.join(map(str, entry.scales))} only, not x{scale}")
    return entry, scale
