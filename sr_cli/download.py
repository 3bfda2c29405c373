"""Checked, atomic, resumable HTTP downloads (standard library only) with a rich progress bar.

A file is fetched to ``<dest>.part`` and renamed to ``dest`` only after its size and sha256 match. The sha256
may be a prefix (at least 8 hex digits: torch.hub's ``check_hash`` rule for EDSR-PyTorch's file names) and the
size unknown (``None``: the server's announced length is checked instead).
An existing ``.part`` is continued with an HTTP Range request; a server that ignores Range is read
again from the start. A mismatch removes the ``.part``; an interrupted transfer keeps it for resume.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import platformdirs
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from sr_cli.errors import DownloadError

try:
    import fcntl
except ImportError:  # Windows: no lock between processes
    fcntl = None  # type: ignore[assignment]

TIMEOUT = 30.0  # seconds for connecting and for each read
CHUNK = 1 << 16
USER_AGENT = "srtool/0.1 (+urllib)"


class Download(NamedTuple):
    """One file to fetch: its address, where it goes, and what it must be."""

    url: str
    dest: Path
    sha256: str  # full, or a prefix of at least 8 hex digits
    size: int | None  # None: not known in advance


class Unreachable(DownloadError):
    """The server could not be reached at all (offline, DNS failure, connection refused, timeout)."""

    def __init__(self, host: str, reason: str, url: str, folder: Path) -> None:
        super().__init__(f"cannot reach {host} ({reason}): fetch {url} into {folder}")
        self.host = host
        self.reason = reason


def data_home() -> Path:
    """srtool's data folder: ``$SRTOOL_DATA_DIR`` if set, else the platform's user data dir."""
    return Path(os.environ.get("SRTOOL_DATA_DIR") or platformdirs.user_data_dir("srtool"))


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, dest: Path, sha256: str, size: int | None, *, quiet: bool = False) -> Path:
    """Fetch ``url`` to ``dest`` (checked against ``sha256`` and ``size``) and return ``dest``.

    An existing ``dest`` is verified instead of fetched again. Raises DownloadError.
    """
    download_files([Download(url, Path(dest), sha256, size)], label=Path(dest).name, quiet=quiet)
    return Path(dest)


def download_files(items: Sequence[Download], *, label: str, quiet: bool = False) -> None:
    """Fetch several files in turn under one progress bar of ``label`` (total bytes)."""
    with _progress(quiet) as progress:
        sizes = [item.size for item in items]
        task = progress.add_task(label, total=None if None in sizes else sum(s for s in sizes if s is not None))
        for item in items:
            _fetch(item, lambda n: progress.advance(task, n))


@contextlib.contextmanager
def _progress(quiet: bool) -> Iterator[Progress]:
    """A transient byte progress bar on stderr; silent when quiet or stderr is not a terminal."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=quiet or not sys.stderr.isatty(),
    )
    with progress:
        yield progress


def _fetch(item: Download, advance: Callable[[int], None]) -> None:
    """Download one item to ``<dest>.part``, check it, rename it into place; one process at a time per file (a
    second waits on ``<dest>.lock``, then finds the file in place)."""
    made = [folder for folder in item.dest.parents if not folder.exists()]  # deepest first
    item.dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _exclusive(item.dest.with_name(item.dest.name + ".lock")):
            _fetch_locked(item, advance)
    finally:
        for folder in made:  # a failure leaves no empty folder behind
            try:
                folder.rmdir()
            except OSError:
                break


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (made for it, removed after): one holder at a time."""
    while True:
        lock = open(path, "a")  # noqa: SIM115 - held across the yield
        if fcntl is None:
            break
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino:
                break  # still the lock file: the previous holder removed the one it held
        lock.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        lock.close()


def _fetch_locked(item: Download, advance: Callable[[int], None]) -> None:
    dest = item.dest
    if dest.exists():
        _check(dest, item, remove=False)
        advance(dest.stat().st_size)
        return
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    if item.size is not None and start > item.size:
        part.unlink()
        start = 0
    advance(start)
    if item.size is None or start < item.size:
        _transfer(item, part, start, advance)
    _check(part, item, remove=True)
    os.replace(part, dest)


def _transfer(item: Download, part: Path, start: int, advance: Callable[[int], None]) -> None:
    """Append the bytes from ``start`` on to ``part`` (from zero if the server ignores the Range)."""
    request = urllib.request.Request(item.url, headers={"User-Agent": USER_AGENT})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # the .part is not a prefix the server recognises: start over
            part.unlink()
            advance(-start)
            _transfer(item, part, 0, advance)
            return
        raise DownloadError(f"{item.url} answered HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        host = urlsplit(item.url).hostname or item.url
        raise Unreachable(host, _reason(err.reason), item.url, item.dest.parent) from None
    except (OSError, http.client.HTTPException) as err:
        raise _interrupted(item, start, err) from None
    with response:
        if start and response.status != 206:  # Range ignored: the body is the whole file
            advance(-start)
            start = 0
        total = _announced_total(response, start)
        if item.size is not None and total is not None and total != item.size:
            part.unlink(missing_ok=True)
            raise DownloadError(f"size mismatch for {item.dest.name}: expected {item.size} bytes, server has "
                                f"{total} ({item.url})")
        _stream(item, response, part, start, item.size if item.size is not None else total, advance)


def _announced_total(response: http.client.HTTPResponse, start: int) -> int | None:
    """The whole file's length as the response announces it (None when it does not)."""
    total = None
    content_range = response.headers.get("Content-Range", "")
    if response.status == 206 and "/" in content_range:
        with contextlib.suppress(ValueError):
            total = int(content_range.rsplit("/", 1)[1])
    elif response.headers.get("Content-Length", "").isdigit():
        total = start + int(response.headers["Content-Length"])
    return total


def _stream(item: Download, response: http.client.HTTPResponse, part: Path, start: int, size: int | None,
            advance: Callable[[int], None]) -> None:
    """Copy the response body to ``part`` after its first ``start`` bytes; raise if it ends before ``size``
    (read to the end when the size is not known)."""
    got = start
    part.parent.mkdir(parents=True, exist_ok=True)
    with part.open("r+b" if start else "wb") as f:
        f.truncate(start)
        f.seek(start)
        try:
            while size is None or got <= size:
                block = response.read(CHUNK if size is None else min(CHUNK, size + 1 - got))
                if not block:
                    break
                f.write(block)
                got += len(block)
                advance(len(block))
        except (OSError, http.client.HTTPException) as err:
            raise _interrupted(item, got, err) from None
    if size is not None and got < size:
        raise _interrupted(item, got, None)


def mismatch(path: Path, name: str, sha256: str, size: int | None) -> str | None:
    """What is wrong with ``path`` against the expected ``sha256`` (full or prefix) and ``size``; None if nothing."""
    got = path.stat().st_size
    if size is not None and got != size:
        return f"size mismatch for {name}: expected {size} bytes, got {got}"
    digest = sha256_of(path)
    if not digest.startswith(sha256.lower()):
        expected = sha256 if len(sha256) == 64 else f"{sha256}..."
        return f"checksum mismatch for {name}: expected sha256 {expected}, got {digest}"
    return None


def _check(path: Path, item: Download, *, remove: bool) -> None:
    """Raise DownloadError unless ``path`` has the item's size and sha256 (removing it if ``remove``)."""
    problem = mismatch(path, item.dest.name, item.sha256, item.size)
    if problem is None:
        return
    if remove:
        path.unlink()
        raise DownloadError(f"{problem} ({item.url}); the download was discarded")
    raise DownloadError(f"{problem} in {path}; delete it to download it again")


def _interrupted(item: Download, got: int, err: BaseException | None) -> DownloadError:
    """The error for a transfer cut short; the ``.part`` stays for the next run to resume."""
    why = f" ({_reason(err)})" if err is not None else " (connection closed early)"
    of = f" of {item.size}" if item.size is not None else ""
    return DownloadError(
        f"download of {item.dest.name} interrupted at {got}{of} bytes{why}; "
        "run the command again to resume it"
    )


def _reason(err: object) -> str:
    """A short one-line description of a network error."""
    text = str(err).strip() or type(err).__name__
    return " ".join(text.split())
