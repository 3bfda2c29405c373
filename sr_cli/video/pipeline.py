"""Decode → infer → encode in three threads joined by bounded queues, so the model never waits on ffmpeg.

Memory stays bounded: at most ``QUEUE_DEPTH`` batches wait between two stages. The encoder thread closes a chunk
file (atomically renamed to the slots it holds) after a batch once the chunk has its frames or its minutes of work
(``ChunkLimits``), so a stop loses at most about that much work.
A stop (SIGINT/SIGTERM in the main thread) does not wait for a model call to return: the command exits without
that thread (see sr_cli/signals.py), and the finished chunk files are what --resume continues from.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sr_cli import signals
from sr_cli.atomic import atomic_path
from sr_cli.errors import SrtoolError
from sr_cli.video.reader import FrameReader
from sr_cli.video.writer import ChunkWriter

QUEUE_DEPTH = 2
STOP_GRACE_S = 0.5  # how long a stop waits for the stages before it leaves them behind
Upscale = Callable[[np.ndarray], np.ndarray]
_DONE = object()


@dataclass(frozen=True)
class ChunkLimits:
    """When a chunk closes: after ``frames`` frames or once its frames took ``seconds`` to make (the most work a
    stop can lose), whichever comes first; a chunk always holds whole batches."""

    frames: int
    seconds: float


@dataclass
class Counts:
    """What the pipeline did: frames encoded, and how many of them repeat a frame that could not be decoded."""

    frames: int = 0
    repeated: int = 0
    chunks: list[Path] = field(default_factory=list)


class _Stop(Exception):
    """Another stage failed; this one stops quietly."""


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


def run_pipeline(
    read: Callable[[int, int], FrameReader],
    upscale: Upscale,
    open_writer: Callable[[int, int, Path], ChunkWriter],
    chunk_path: Callable[[int, int], Path],
    spans: list[tuple[int, int]],
    limits: ChunkLimits,
    out_shape: tuple[int, int, int],
    out_dtype: np.dtype[Any],
    batch: int,
    on_frames: Callable[[int], None] | None = None,
    on_frame: Callable[[int, np.ndarray], None] | None = None,
) -> Counts:
    """Upscale the frames of the timeline ``spans`` and encode them into chunk files of ``chunk_path(a, b)``,
    each closed by ``limits`` and renamed into place once complete; returns the counts.

    ``open_writer(a, end, tmp)`` starts an encoder for slots from ``a`` (at most to ``end``) into ``tmp``.
    ``on_frames(n)`` is called after every encoded batch (progress), ``on_frame(slot, frame)`` for every
    upscaled frame (PNG export). An error in any stage stops all three and is raised here.
    """
    decoded: queue.Queue[Any] = queue.Queue(QUEUE_DEPTH)
    upscaled: queue.Queue[Any] = queue.Queue(QUEUE_DEPTH)
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = Counts()

    def decode() -> None:
        for a, b in spans:
            reader = read(a, b)
            frames = iter(reader)
            try:
                for first in range(a, b, limits.frames):  # batches never cross a frame-count boundary
                    last = min(first + limits.frames, b)
                    for start in range(first, last, batch):
                        items = [next(frames) for _ in range(min(batch, last - start))]
                        _put(decoded, (start, np.stack([f for f, _ in items]), sum(r for _, r in items)), stop)
            finally:
                reader.close()
        _put(decoded, _DONE, stop)

    def infer() -> None:
        while (item := _get(decoded, stop)) is not _DONE:
            start, frames, repeated = item
            out = upscale(frames)
            if out.shape != (len(frames), *out_shape) or out.dtype != out_dtype:
                raise SrtoolError(f"the model returned frames of shape {out.shape} {out.dtype}, "
                                  f"expected {(len(frames), *out_shape)} {np.dtype(out_dtype)}")
            _put(upscaled, (start, out, repeated), stop)
        _put(upscaled, _DONE, stop)

    def encode_chunk(a: int, end: int) -> int:
        """Encode slots from ``a`` until ``limits`` close the chunk or ``end``; returns the chunk's end."""
        done = a
        with atomic_path(chunk_path(a, end), final=lambda: chunk_path(a, done)) as tmp:
            writer = open_writer(a, end, tmp)
            opened = time.monotonic()
            try:
                while done < end and done - a < limits.frames and time.monotonic() - opened < limits.seconds:
                    item = _get(upscaled, stop)
                    if item is _DONE:
                        raise SrtoolError(f"the frames ran out at slot {done}, before {end}")
                    start, frames, repeated = item
                    for i, frame in enumerate(frames):
                        writer.write(frame)
                        if on_frame is not None:
                            on_frame(start + i, frame)
                    done += len(frames)
                    counts.frames += len(frames)
                    counts.repeated += repeated
                    if on_frames is not None:
                        on_frames(len(frames))
                writer.close()
            except BaseException:
                writer.abort()
                raise
        counts.chunks.append(chunk_path(a, done))
        return done

    def encode() -> None:
        for a, b in spans:
            while a < b:
                a = encode_chunk(a, b)

    def guard(stage: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                stage()
            except _Stop:
                pass
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(err)
                stop.set()
        return body

    workers = [signals.Worker(guard(stage), f"srtool-{stage.__name__}") for stage in (decode, infer, encode)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.done.wait()
    except BaseException:  # a stop (Ctrl-C): the stages get STOP_GRACE_S to end; one inside the model cannot
        stop.set()
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in workers:
            worker.done.wait(max(0.0, deadline - time.monotonic()))
        raise
    if errors:
        raise errors[0]
    return counts
