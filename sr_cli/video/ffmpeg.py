"""The ffmpeg binary that imageio-ffmpeg ships: finding it, running it, and reading its error lines.

Every ffmpeg runs as a child that dies with srtool and that a stop kills (see sr_cli/signals.py).
"""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from functools import cache

from sr_cli import signals

_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)+")
_TELLING = re.compile(r"error|invalid|unrecognized|undefined|not |no |unable|cannot|could not|unknown|"
                      r"unsupported|fail|must", re.I)


@cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg executable bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def command(*args: str) -> list[str]:
    """An ffmpeg command line: quiet banner, never reading the terminal."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg with ``args`` to completion; stdout and stderr are captured as text."""
    line = command(*args)
    with signals.spawn(line, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace") as proc:
        out, err = proc.communicate()
    return subprocess.CompletedProcess(line, proc.returncode, out, err)


def error_line(stderr: str) -> str:
    """The line of ffmpeg's stderr that best names what went wrong, without its ``[ctx @ 0x..]`` prefix."""
    lines = [_PREFIX.sub("", line).strip() for line in stderr.splitlines()]
    lines = [line.split(": ", 1)[-1] if line.startswith("Error opening") else line for line in lines
             if line and (": " in line or not line.startswith(("Error opening", "Conversion failed")))]
    telling = [line for line in lines if _TELLING.search(line)]
    return (telling or lines or ["ffmpeg failed without a message"])[0]


@cache
def encoders() -> dict[str, str]:
    """Encoder name → kind letter (V video, A audio, S subtitle) for this ffmpeg build."""
    out = run(["-encoders"]).stdout
    found = {}
    for line in out.splitlines():
        match = re.match(r"^ ([VAS])[.A-Z]{5} (\S+)", line)
        if match and match.group(2) != "=":
            found[match.group(2)] = match.group(1)
    return found


def seconds(value: Fraction) -> str:
    """A time in seconds as ffmpeg reads it, to the microsecond."""
    return f"{float(value):.6f}"
