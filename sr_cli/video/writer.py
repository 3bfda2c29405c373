"""Encode RGB frames from a pipe into one chunk file (NUT: any codec, exact rational timestamps)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from sr_cli import signals
from sr_cli.errors import OutputError
from sr_cli.video import ffmpeg
from sr_cli.video.codecs import Encoding
from sr_cli.video.reader import SWS_FLAGS, frame_format
from sr_cli.video.timing import Timeline, pts_expression


def timing_args(timeline: Timeline, a: int, b: int) -> tuple[list[str], list[str], list[str]]:
    """(input options, filters, output options) that time slots ``[a, b)`` exactly.

    Constant rate: the raw input runs at the exact rational rate. VFR: the frames get their own ticks in the
    input's time base through ``settb`` + ``setpts``, and the encoder keeps that time base.
    """
    if timeline.rate is not None:
        rate = timeline.rate
        return ["-framerate", f"{rate.numerator}/{rate.denominator}"], [], []
    tb = timeline.time_base
    filters = [f"settb=expr={tb.numerator}/{tb.denominator}", f"setpts='{pts_expression(timeline.ticks(a, b))}'"]
    last = 1 / (timeline.last_duration * tb)  # the raw input's rate sets the length of the video's last frame
    return ["-framerate", f"{last.numerator}/{last.denominator}"], filters, \
        ["-enc_time_base", f"{tb.numerator}:{tb.denominator}"]


def encode_command(path: Path, size: tuple[int, int], timeline: Timeline, a: int, b: int, encoding: Encoding,
                   sar: str | None, deep: bool = False) -> list[str]:
    """The ffmpeg command that reads frames of ``size`` on stdin (rgb24, or rgb48 when ``deep``) and writes chunk
    ``path`` (its slots from ``a``, at most to ``b``)."""
    inputs, filters, outputs = timing_args(timeline, a, b)
    filters = filters + encoding.filters + ([f"setsar={sar}"] if sar else [])
    return ffmpeg.command(
        "-v", "error", "-f", "rawvideo", "-pix_fmt", frame_format(deep), "-s", f"{size[0]}x{size[1]}", *inputs, "-i", "pipe:0",
        *(["-vf", ",".join(filters)] if filters else []), "-sws_flags", SWS_FLAGS, "-fps_mode", "passthrough",
        *outputs, "-map_metadata", "-1", *encoding.args, "-f", "nut", "-y", str(path))


class ChunkWriter:
    """An ffmpeg encoder process fed frame by frame; ``close`` checks that it finished the file."""

    def __init__(self, command: list[str], path: Path) -> None:
        self.path = path
        self._log = tempfile.TemporaryFile()
        self._proc = signals.spawn(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)

    def write(self, frame: np.ndarray) -> None:
        """Send one (H, W, 3) uint8 or uint16 frame."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except BrokenPipeError:
            self._proc.wait()
            raise OutputError(f"the encoder stopped writing {self.path.name}: {self._error()}") from None

    def close(self) -> None:
        """Finish the file; OutputError when ffmpeg failed."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        code = self._proc.wait()
        message = self._error()
        self._log.close()
        if code != 0:
            raise OutputError(f"the encoder failed on {self.path.name}: {message}")

    def abort(self) -> None:
        """Stop the encoder and remove its partial file."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._log.close()
        if self.path.exists():
            os.unlink(self.path)

    def _error(self) -> str:
        self._log.seek(0)
        return ffmpeg.error_line(self._log.read().decode(errors="replace"))
