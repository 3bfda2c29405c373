"""Atomic file writes: write to a temporary file beside the target, then rename over it.

The temporary file is ``.<target name>.<8 random characters>.part<target suffix>``. While it is written, the writing
process holds an exclusive advisory lock (``flock``) on it; the kernel drops that lock however the process ends,
``kill -9`` included. So a temporary file of that name that nobody holds locked is one whose writer is gone, and
``remove_stale`` deletes it. A lock, rather than a process id in the name or an age threshold: a process id says
nothing about a writer on another machine sharing the folder (NFS locks do), and can be reused; an age threshold
either leaves fresh leftovers or deletes a slow writer's file. Where locks are not available (Windows, a file system
without them), files are written unlocked and never removed: leaving litter is the safe failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_UMASK = os.umask(0)
os.umask(_UMASK)
# mkstemp's names: the prefix, 8 characters from [a-z0-9_], the suffix.
_PART = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.part(?P<suffix>(\.[^.]*)?)")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None,
                final: Callable[[], Path] | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder, locked while it is written; on success rename it to
    ``target``, or to the name ``final()`` gives once the file is written (in the same folder: a video chunk's
    last frame is known only then).

    On any exception the temporary file is removed and the target is left untouched.
    ``suffix`` defaults to the target's own suffix so that format-by-extension writers work.
    """
    target = Path(target)
    # made as ``….new`` and renamed to its ``.part`` name once locked: ``remove_stale`` never sees it unlocked
    fd, fresh = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".new", dir=target.parent)
    tmp_path = Path(fresh.removesuffix(".new") + (suffix if suffix is not None else ".part" + target.suffix))
    try:
        if fcntl is None:  # and Windows cannot rename a file that is open
            os.close(fd)
        else:
            with contextlib.suppress(OSError):  # no locks on this file system: written unlocked
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(fresh, tmp_path)
        yield tmp_path
        # mkstemp makes 0600 (and some writers, safetensors', make their own file): the usual permissions
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target if final is None else final())
    except BaseException:
        for leftover in (fresh, tmp_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
        raise
    finally:
        if fcntl is not None:
            os.close(fd)  # releases the lock, after the rename


def remove_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files ``atomic_path`` left in ``folder`` (not its sub-folders) when their writer died;
    the paths deleted. Files of other names, and files a live writer holds, are left alone; so is everything
    when ``folder`` cannot be listed."""
    if fcntl is None:
        return []
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.is_file(follow_symlinks=False)]
    except OSError:
        return []
    removed = []
    for name in names:
        match = _PART.fullmatch(name)
        if match and match["suffix"] == Path(match["target"]).suffix and _remove_unlocked(Path(folder) / name):
            removed.append(Path(folder) / name)
    return removed


def _remove_unlocked(path: Path) -> bool:
    """Delete ``path`` if no process holds its lock (holding it while deleting); whether it was deleted."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:  # gone already (renamed by its writer), or not ours to read
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink()
    except OSError:  # locked by a live writer, renamed meanwhile, or not ours to delete
        return False
    finally:
        os.close(fd)
    return True
