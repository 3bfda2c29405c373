"""Benchmark data sets: Set5/Set14 shipped in the package, B100/Urban100/DIV2K-valid downloaded on first
use from the registry lists, and any folder of images (Manga109 and the user's own)."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from importlib.resources import files
from pathlib import Path, PurePosixPath
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from sr_cli.download import Download, Unreachable, data_home, download_file, download_files
from sr_cli.errors import DownloadError, InputError, UsageError

DATASETS: tuple[str, ...] = ("set5", "set14", "b100", "urban100", "div2k-valid", "manga109")
PACKAGED = {"set5": "Set5", "set14": "Set14"}
REGISTERED = ("b100", "urban100", "div2k-valid")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
PACKAGE_DATA = Path(str(files("sr_cli") / "data"))
REGISTRY = PACKAGE_DATA / "registry"


class Entry(NamedTuple):
    """One registered file: its sha256, size in bytes, address, and the name it is stored under."""

    sha256: str
    size: int
    url: str
    filename: str


def registry_entries(name: str) -> list[Entry]:
    """The files of a registered data set, read from ``REGISTRY/<name>.tsv`` (``sha256 bytes url`` lines)."""
    if name not in REGISTERED:
        raise UsageError(f"{name!r} has no download list; registered data sets: {', '.join(REGISTERED)}")
    path = REGISTRY / f"{name}.tsv"
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3 or not fields[1].isdigit():
            raise DownloadError(f"malformed line {number} in {path}: expected 'sha256 bytes url'")
        sha256, size, url = fields
        entries.append(Entry(sha256.lower(), int(size), url, unquote(PurePosixPath(urlsplit(url).path).name)))
    return entries


def dataset_images(
    name: str, data_dir: Path | None = None, *, download: bool = True, quiet: bool = False
) -> list[Path]:
    """Sorted HR image paths of data set ``name``; ``data_dir`` (a folder of images) overrides its source.

    Registered sets are downloaded into ``<data home>/datasets/<name>`` on first use when ``download``.
    """
    key = name.lower()
    if data_dir is not None:  # any name labels a folder of the user's
        return folder_dataset(Path(data_dir))
    if key not in DATASETS:
        raise UsageError(f"unknown data set {name!r}; known: {', '.join(DATASETS)} (or any name with --data-dir)")
    if key in PACKAGED:
        return folder_dataset(PACKAGE_DATA / PACKAGED[key])
    if key not in REGISTERED:
        raise UsageError(f"{key} is licensed on request and cannot be downloaded: pass --data-dir with its images")
    entries = registry_entries(key)
    root = data_home() / "datasets"
    if len(entries) == 1 and entries[0].filename.lower().endswith(".zip"):
        return _zip_dataset(key, entries[0], root, download=download, quiet=quiet)
    return _files_dataset(key, entries, root / key, download=download, quiet=quiet)


def folder_dataset(path: Path) -> list[Path]:
    """All images under ``path`` (recursively, hidden entries skipped), sorted; InputError if there are none."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise InputError(f"data set folder {path} does not exist or is not a folder")
    found = [
        p for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    images = sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)
    if images:
        return images
    if not found:
        raise InputError(f"no images in {path}: the folder is empty")
    suffixes = " ".join(sorted(IMAGE_SUFFIXES))
    raise InputError(f"no images in {path}: {len(found)} files, none of them {suffixes}")


def _files_dataset(name: str, entries: list[Entry], folder: Path, *, download: bool, quiet: bool) -> list[Path]:
    """A data set of individually registered images, fetching the missing ones."""
    missing = [e for e in entries if not _present(folder / e.filename, e.size)]
    if missing:
        listed = f"the files listed in {REGISTRY / f'{name}.tsv'} ({len(missing)} of {len(entries)} missing)"
        if not download:
            raise InputError(f"data set {name} is not downloaded: fetch {listed} into {folder}")
        try:
            download_files(
                [Download(e.url, folder / e.filename, e.sha256, e.size) for e in missing], label=name, quiet=quiet
            )
        except Unreachable as err:
            raise DownloadError(f"cannot reach {err.host}: fetch {listed} into {folder} (or pass --data-dir)") from None
    return sorted(folder / e.filename for e in entries)


def _zip_dataset(name: str, entry: Entry, root: Path, *, download: bool, quiet: bool) -> list[Path]:
    """A data set shipped as one zip: fetched to ``root``, extracted to ``root/name`` atomically, zip removed."""
    folder = root / name
    if not folder.exists():
        archive = root / entry.filename
        if not download and not archive.exists():
            raise InputError(f"data set {name} is not downloaded: fetch {entry.url} into {root}")
        try:
            download_file(entry.url, archive, entry.sha256, entry.size, quiet=quiet)
        except Unreachable as err:
            hint = f"fetch {entry.url} into {root} (or pass --data-dir)"
            raise DownloadError(f"cannot reach {err.host}: {hint}") from None
        _extract(archive, folder)
        archive.unlink()
    return folder_dataset(folder)


def _extract(archive: Path, folder: Path) -> None:
    """Unpack ``archive`` into a temporary folder beside ``folder``, then rename it to ``folder``."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        os.replace(tmp, folder)
    except zipfile.BadZipFile as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive} is not a readable zip ({err})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _present(path: Path, size: int) -> bool:
    """Whether a downloaded file is in place (only verified files are renamed into place, so size suffices)."""
    return path.is_file() and path.stat().st_size == size
