"""Decode → infer → encode in three threads joined by bounded queues, so the model never waits on ffmpeg.

Memory stays bounded: at most ``QUEUE_DEPTH`` batches wait between two stages. Batches never cross a chunk
boundary, so the encoder thread can finish a chunk file (atomically renamed) the moment its last frame lands.
A stop (SIGINT/SIGTERM in the main thread) does not wait for a model call to return: the command exits without
that thread (see sr_cli/signals.py), and the finished chunk files are what --resume continues from.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
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
class Chunk:
    """Timeline slots ``[a, b)`` encoded into ``path``."""

    a: int
    b: int
    path: Path


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


def _runs(chunks: list[Chunk]) -> Iterator[list[Chunk]]:
    """Chunks grouped into runs of adjacent ranges, each decoded by one ffmpeg process."""
    run: list[Chunk] = []
    for chunk in chunks:
        if run and run[-1].b != chunk.a:
            yield run
            run = []
        run.append(chunk)
    if run:
        yield run


def run_pipeline(
    read: Callable[[int, int], FrameReader],
    upscale: Upscale,
    open_writer: Callable[[Chunk, Path], ChunkWriter],
    chunks: list[Chunk],
    out_shape: tuple[int, int, int],
    batch: int,
    on_frames: Callable[[int], None] | None = None,
    on_frame: Callable[[int, np.ndarray], None] | None = None,
) -> Counts:
    """Upscale the frames of ``chunks`` and encode each chunk to its file; returns the counts.

    ``on_frames(n)`` is called after every encoded batch (progress), ``on_frame(slot, frame)`` for every
    upscaled frame (PNG export). An error in any stage stops all three and is raised here.
    """
    decoded: queue.Queue[Any] = queue.Queue(QUEUE_DEPTH)
    upscaled: queue.Queue[Any] = queue.Queue(QUEUE_DEPTH)
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = Counts()

    def decode() -> None:
        for run in _runs(chunks):
            reader = read(run[0].a, run[-1].b)
            frames = iter(reader)
            try:
                for chunk in run:
                    for start in range(chunk.a, chunk.b, batch):
                        items = [next(frames) for _ in range(min(batch, chunk.b - start))]
                        _put(decoded, (chunk, start, np.stack([f for f, _ in items]), sum(r for _, r in items)),
                             stop)
            finally:
                reader.close()
        _put(decoded, _DONE, stop)

    def infer() -> None:
        while (item := _get(decoded, stop)) is not _DONE:
            chunk, start, frames, repeated = item
            out = upscale(frames)
            if out.shape != (len(frames), *out_shape) or out.dtype != np.uint8:
                raise SrtoolError(f"the model returned frames of shape {out.shape} {out.dtype}, "
                                  f"expected {(len(frames), *out_shape)} uint8")
            _put(upscaled, (chunk, start, out, repeated), stop)
        _put(upscaled, _DONE, stop)

    def encode() -> None:
        for chunk in chunks:
            with atomic_path(chunk.path) as tmp:
                writer = open_writer(chunk, tmp)
                try:
                    done = chunk.a
                    while done < chunk.b:
                        item = _get(upscaled, stop)
                        if item is _DONE:
                            raise SrtoolError(f"the frames ran out before the end of chunk {chunk.path.name}")
                        _, start, frames, repeated = item
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
            counts.chunks.append(chunk.path)

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
