"""Decode a range of the timeline to RGB frames, one at a time, through an ffmpeg pipe.

ffmpeg seeks to a keyframe a little before the range, and a ``select`` on the exact tick drops the frames
before it (timestamps are kept with ``-copyts``), so a range starts on the right frame in any container.
A slot whose frame could not be decoded gets a copy of the nearest earlier good frame (``--on-error keep``).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator

import numpy as np

from sr_cli import signals
from sr_cli.errors import InputError
from sr_cli.video import ffmpeg
from sr_cli.video.probe import VideoInfo

SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int"


def frame_format(deep: bool) -> str:
    """The raw frames' pixel format between ffmpeg and srtool: 16 bits a channel for a source of more than 8."""
    return "rgb48le" if deep else "rgb24"


class FrameReader:
    """Frames of timeline slots ``[a, b)`` as (H, W, 3) arrays (uint8; uint16 for a source of more than 8 bits),
    each with a flag: repeated for a bad slot."""

    def __init__(self, info: VideoInfo, a: int, b: int) -> None:
        self.info, self.a, self.b = info, a, b
        holes = info.timeline.missing
        before = next((i for i in range(a - 1, -1, -1) if i not in holes), None) if a in holes else None
        # decoding starts at slot a, at the good frame a bad slot a repeats, or (no good frame before it)
        # at the first good frame after it
        self.first = before if before is not None else next(i for i in range(a, len(info.timeline))
                                                             if i not in holes)
        self.count = max(1, sum(1 for i in range(self.first, b) if i not in holes))
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The ffmpeg command decoding exactly the frames needed."""
        t = self.info.timeline
        seek = t.seconds(self.first) - self.info.start - 1
        return ffmpeg.command(
            "-v", "error", "-copyts", *(["-ss", ffmpeg.seconds(seek), "-noaccurate_seek"] if seek > 0 else []),
            "-i", str(self.info.path), "-map", f"0:{self.info.stream}",
            "-vf", f"select='gte(pts,{t.pts[self.first]})'", "-fps_mode", "passthrough", "-frames:v",
            str(self.count), "-sws_flags", SWS_FLAGS, "-f", "rawvideo", "-pix_fmt", frame_format(self.info.deep), "pipe:1")

    def __iter__(self) -> Iterator[tuple[np.ndarray, bool]]:
        holes = self.info.timeline.missing
        shape = (self.info.height, self.info.width, 3)
        pending = max(0, min(self.first, self.b) - self.a)  # bad slots waiting for a later good frame
        previous: np.ndarray | None = None
        with tempfile.TemporaryFile() as log:
            self._proc = signals.spawn(self.command(), stdout=subprocess.PIPE, stderr=log)
            try:
                for slot in range(self.first, max(self.b, self.first + 1)):
                    if slot in holes:
                        if slot >= self.a:
                            yield previous, True
                        continue
                    previous = self._read(shape)
                    if previous is None:
                        log.seek(0)
                        raise InputError(f"{self.info.path}: decoding stopped before the frame at "
                                         f"{float(self.info.timeline.seconds(slot)):.3f}s "
                                         f"({ffmpeg.error_line(log.read().decode(errors='replace'))})")
                    for _ in range(pending):
                        yield previous, True
                    pending = 0
                    if self.a <= slot < self.b:
                        yield previous, False
            finally:
                self.close()

    def _read(self, shape: tuple[int, int, int]) -> np.ndarray | None:
        assert self._proc is not None and self._proc.stdout is not None
        frame = np.empty(shape, np.uint16 if self.info.deep else np.uint8)
        view = memoryview(frame).cast("B")
        got = 0
        while got < len(view):
            n = self._proc.stdout.readinto(view[got:])
            if not n:
                return None
            got += n
        return frame

    def close(self) -> None:
        """Stop the decoder (it may still be running when the consumer stops early)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        if self._proc is not None:
            self._proc.wait()
            if self._proc.stdout:
                self._proc.stdout.close()
