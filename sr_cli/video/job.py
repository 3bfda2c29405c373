"""One ``srtool video`` job: probe, plan, upscale this rank's chunks, then join and mux into OUTPUT.

The job always works in chunks (one file per chunk in the work folder, closed after ``chunk_frames`` frames or
``chunk_seconds`` of work, whichever comes first), so an interrupted run resumes from its finished chunks, losing
at most about a chunk's minute of work, and torchrun ranks each fill their own contiguous range (or Ray workers
fill the missing spans chunk by chunk: sr_cli/cluster.py). Rank 0 joins the chunks without re-encoding, muxes the
audio, renames the result onto OUTPUT, and removes the work folder. Nothing is written at OUTPUT until the whole
video is done.
"""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from sr_cli.atomic import atomic_path, remove_stale
from sr_cli.errors import InputError, OutputError, UsageError
from sr_cli.images import Picture, write_image
from sr_cli.video import codecs, mux, workdir
from sr_cli.video.dist import Group, rank_range
from sr_cli.video.pipeline import ChunkLimits, Counts, Upscale, run_pipeline
from sr_cli.video.probe import VideoInfo, probe
from sr_cli.video.reader import FrameReader
from sr_cli.video.writer import ChunkWriter, encode_command

ON_ERROR = ("fail", "keep")
KEEP_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".gif"}


@dataclass
class VideoRequest:
    """What the user asked for (the model is passed separately, as a frames → frames callable)."""

    input: Path
    output: Path | None = None
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    ffmpeg_args: list[str] = field(default_factory=list)
    audio: bool = True
    start: Fraction = Fraction(0)
    duration: Fraction | None = None
    frames_dir: Path | None = None
    overwrite: bool = False
    resume: bool = False
    on_error: str = "fail"
    chunk_frames: int = 240
    batch: int = 4
    chunk_seconds: float = 60.0
    cpu_model: bool = False  # the model runs on the CPU: x264/x265 default to their fast preset


@dataclass
class VideoReport:
    """What the job did, for the table or --json."""

    input: str
    output: str
    frames: int
    size: str
    output_size: str
    frame_rate: str  # exact fraction, or "variable"
    codec: str
    pix_fmt: str
    seconds: float
    fps: float
    repeated_frames: int = 0
    decode_errors: int = 0
    chunks_reused: int = 0
    rank: int = 0
    world: int = 1
    range: list[int] = field(default_factory=list)  # this rank's timeline slots [a, b)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def default_output(source: Path, model: str, scale: int) -> Path:
    """``<stem>_<model>_x<scale>.<ext>`` beside the input; inputs in other containers get ``.mkv``."""
    ext = source.suffix.lower() if source.suffix.lower() in KEEP_EXTENSIONS else ".mkv"
    return source.with_name(f"{source.stem}_{model}_x{scale}{ext}")


def _check_paths(request: VideoRequest, output: Path) -> None:
    if output.resolve() == request.input.resolve():
        raise OutputError(f"{output}: the output would replace the input")
    if output.exists() and not request.overwrite:
        raise OutputError(f"{output} exists (pass --overwrite to replace it)")
    if not output.parent.is_dir():
        raise OutputError(f"output folder {output.parent} does not exist")
    if request.on_error not in ON_ERROR:
        raise UsageError(f"--on-error must be fail or keep, not '{request.on_error}'")
    if request.chunk_frames < 1 or request.batch < 1:
        raise UsageError("--chunk-frames and --batch must be at least 1")
    if not request.chunk_seconds > 0:
        raise UsageError(f"--chunk-seconds must be more than 0, got {request.chunk_seconds}")
    frames_dir = request.frames_dir
    if frames_dir is not None and frames_dir.exists() and not (request.overwrite or request.resume) \
            and any(frames_dir.glob("frame_*.png")):
        raise OutputError(f"{frames_dir} already holds frame_*.png files (pass --overwrite to replace them)")


def _check_decoding(info: VideoInfo, on_error: str) -> list[str]:
    """Fail on frames ffmpeg could not decode unless --on-error keep; the note says what keep did."""
    holes = sorted(info.timeline.missing)
    if not info.decode_errors and not holes:
        return []
    if holes:
        at = float(info.timeline.seconds(holes[0]) - info.start)
        problem = f"{len(holes)} frame(s) cannot be decoded (first: frame {holes[0]} at {at:.3f}s)"
        keep = "replaces each with the previous good frame"
    else:
        problem = f"ffmpeg reported {len(info.decode_errors)} decode error(s) and concealed them"
        keep = "keeps the frames as ffmpeg concealed them"
    if on_error == "fail":
        detail = f": {info.decode_errors[0]}" if info.decode_errors else ""
        raise InputError(f"{info.path}: {problem}{detail}; --on-error keep {keep}")
    return [f"{problem}: kept, --on-error keep {keep}"]


def _fingerprint(request: VideoRequest, model: str, encoding: codecs.Encoding, container: str) -> dict[str, Any]:
    stat = request.input.stat()
    return {"input": str(request.input.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "start": str(request.start), "duration": str(request.duration), "model": model,
            "encoding": encoding.args + encoding.filters, "container": container, "on_error": request.on_error,
            "frames_dir": str(request.frames_dir.resolve()) if request.frames_dir else None}


def _preflight(root: Path, info: VideoInfo, size: tuple[int, int], encoding: codecs.Encoding, container: str,
               plan: mux.StreamPlan, request: VideoRequest) -> None:
    """Encode one black frame and mux it like the real output: a bad option fails now, not after hours."""
    probe_chunk = root / "preflight.nut"
    sar = str(info.sar) if info.sar and info.sar != 1 else None
    writer = ChunkWriter(encode_command(probe_chunk, size, info.timeline, 0, 1, encoding, sar, info.deep),
                         probe_chunk)
    writer.write(np.zeros((size[1], size[0], 3), np.uint16 if info.deep else np.uint8))
    try:
        writer.close()
    except OutputError as err:
        raise UsageError(f"the encoder refuses these options: {str(err).split(': ', 1)[-1]}") from None
    if container != "gif":
        concat = mux.write_concat_list(root / "preflight.ffconcat", [(probe_chunk, 0, 1)], info.timeline)
        target = root / "preflight.out"
        try:
            mux.mux(concat, info, container, encoding.colour, plan, request.start, Fraction(1), encoding.codec,
                    target)
        except OutputError as err:
            raise UsageError(f"the output cannot be written this way: {str(err).split(': ', 1)[-1]}") from None
        target.unlink()
        concat.unlink()
    probe_chunk.unlink()


@dataclass
class Plan:
    """Everything decided before the first frame: the probe, output size, encoder and stream options."""

    info: VideoInfo
    size: tuple[int, int]
    encoding: codecs.Encoding
    streams: mux.StreamPlan
    notes: list[str]


def _plan(info: VideoInfo, request: VideoRequest, container: str, scale: int) -> Plan:
    notes = _check_decoding(info, request.on_error)
    size = (info.width * scale, info.height * scale)
    encoding = codecs.plan_encoding(request.codec, request.crf, request.preset, request.pix_fmt,
                                    request.ffmpeg_args, size, info.colour, container, info.depth,
                                    request.cpu_model)
    streams = mux.plan_streams(info, container, request.audio)
    return Plan(info, size, encoding, streams, encoding.notes + streams.notes + notes)


def _same_input(old: dict[str, Any] | None, request: VideoRequest) -> bool:
    """Whether an earlier run's probe describes this input and range (so --resume need not decode it again)."""
    if old is None:
        return False
    job, stat = old.get("job", {}), request.input.stat()
    return (job.get("input"), job.get("size"), job.get("mtime_ns"), job.get("start"), job.get("duration")) == (
        str(request.input.resolve()), stat.st_size, stat.st_mtime_ns, str(request.start), str(request.duration))


def _prepare(group: Group, root: Path, request: VideoRequest, container: str, scale: int, model: str) -> Plan:
    """Rank 0 probes, checks and readies the work folder; the other ranks then read its manifest."""
    if group.rank == 0:
        old = workdir.read_manifest(root) if request.resume else None
        info = VideoInfo.from_json(old["probe"]) if old is not None and _same_input(old, request) else \
            probe(request.input, request.start, request.duration)
        if container == "gif":
            info.depth = 8  # a GIF's palette holds 8 bits a channel: deep frames would gain nothing
        plan = _plan(info, request, container, scale)
        job = _fingerprint(request, model, plan.encoding, container)
        workdir.prepare(root, job, request.resume, request.overwrite)
        _preflight(root, info, plan.size, plan.encoding, container, plan.streams, request)
        workdir.write_manifest(root, {"job": job, "probe": info.to_json()})
        group.barrier()
        return plan
    group.barrier()
    doc = workdir.read_manifest(root)
    if doc is None:
        raise OutputError(f"rank {group.rank}: rank 0 left no manifest in {root}")
    return _plan(VideoInfo.from_json(doc["probe"]), request, container, scale)


# Encodes the missing timeline spans into chunk files of the work folder, calling back with each count of frames
# done: (work folder, plan, request, spans, on_frames) → counts.
Encode = Callable[[Path, Plan, VideoRequest, list[tuple[int, int]], Callable[[int], None] | None], Counts]


def run_video(request: VideoRequest, upscale: Upscale | None, scale: int, model: str, *,
              on_progress: Callable[[int, int], None] | None = None, encode: Encode | None = None) -> VideoReport:
    """Upscale ``request.input`` with ``upscale`` (uint8 (N,H,W,3) → (N,sH,sW,3)); returns the report.

    ``model`` identifies the model, weights and precision for the resume check (its first word names the
    default output); ``on_progress(done, total)`` follows this rank's frames. ``encode`` makes the chunks
    elsewhere (on Ray workers) instead of with ``upscale`` here. A failed run keeps its finished chunks for
    --resume; a work folder with none is removed.
    """
    began = time.perf_counter()
    request.output = request.output or default_output(request.input, model.split()[0], scale)
    container = codecs.container_of(request.output)
    _check_paths(request, request.output)
    group = Group()
    root = workdir.work_dir(request.output)
    if group.rank == 0:  # what a killed run left half-written: its output's and its chunks' temporary files
        remove_stale(request.output.parent)
        remove_stale(root)
    try:
        plan = _prepare(group, root, request, container, scale, model)
        report = _run_rank(group, root, plan, request, container,
                           encode or functools.partial(encode_spans, upscale=upscale), on_progress)
    except BaseException:
        if group.rank == 0 and root.is_dir() and not any(root.glob("chunk-*.nut")):
            shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        group.close()
    report.seconds = round(time.perf_counter() - began, 3)
    return report


def encode_spans(root: Path, plan: Plan, request: VideoRequest, todo: list[tuple[int, int]],
                 on_frames: Callable[[int], None] | None = None, *, upscale: Upscale) -> Counts:
    """Upscale the timeline spans ``todo`` with ``upscale`` into chunk files in ``root`` (and PNGs into
    ``--frames-dir``); ``on_frames(n)`` after every batch encoded."""
    info, size = plan.info, plan.size
    sar = str(info.sar) if info.sar and info.sar != 1 else None
    frames_dir = request.frames_dir
    if frames_dir is not None:
        frames_dir.mkdir(parents=True, exist_ok=True)

    def write_frame(slot: int, frame: np.ndarray) -> None:
        assert frames_dir is not None
        depth = 16 if frame.dtype == np.uint16 else 8
        write_image(Picture(frame, depth, source_format="video"), frames_dir / f"frame_{slot:06d}.png", overwrite=True)

    return run_pipeline(
        lambda x, y: FrameReader(info, x, y), upscale,
        lambda x, end, tmp: ChunkWriter(encode_command(tmp, size, info.timeline, x, end, plan.encoding, sar,
                                                       info.deep), tmp),
        lambda x, y: workdir.chunk_path(root, x, y), todo, ChunkLimits(request.chunk_frames, request.chunk_seconds),
        (size[1], size[0], 3), np.dtype(np.uint16 if info.deep else np.uint8), request.batch, on_frames,
        write_frame if frames_dir else None)


def _run_rank(group: Group, root: Path, plan: Plan, request: VideoRequest, container: str, encode: Encode,
              on_progress: Callable[[int, int], None] | None) -> VideoReport:
    """Upscale this rank's chunks that are not done yet; rank 0 then joins everything into OUTPUT."""
    began = time.perf_counter()
    info, size = plan.info, plan.size
    a, b = rank_range(info.frames, group.rank, group.world)
    reused = [(x, y) for x, y in workdir.finished_chunks(root) if a <= x and y <= b]
    todo = workdir.missing_spans(a, b, reused)
    done = (b - a) - sum(y - x for x, y in todo)

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(done, b - a)

    advance(0)
    counts = encode(root, plan, request, todo, advance)
    fps = counts.frames / (time.perf_counter() - began)
    group.barrier()
    if group.rank == 0:
        _finish(root, plan, container, request)
    rate, gif = info.timeline.rate, container == "gif"
    return VideoReport(
        str(request.input), str(request.output), info.frames, f"{info.width}x{info.height}", f"{size[0]}x{size[1]}",
        f"{rate.numerator}/{rate.denominator}" if rate else "variable", "gif" if gif else plan.encoding.codec,
        "pal8" if gif else plan.encoding.pix_fmt, 0.0, round(fps, 3), counts.repeated, len(info.decode_errors),
        len(reused), group.rank, group.world, [a, b], plan.notes)


def _finish(root: Path, plan: Plan, container: str, request: VideoRequest) -> None:
    """Join every rank's chunks and mux them into OUTPUT (atomically), then drop the work folder."""
    done = workdir.finished_chunks(root)
    missing = workdir.missing_spans(0, plan.info.frames, done)
    if missing or any(x != y for (_, x), (y, _) in zip(done, done[1:])):
        gaps = ", ".join(f"{x}-{y}" for x, y in missing[:3]) or "overlapping chunk files"
        raise OutputError(f"chunks missing in {root} (frames {gaps}); rerun with --resume")
    chunks = [(workdir.chunk_path(root, x, y), x, y) for x, y in done]
    concat = mux.write_concat_list(root / "chunks.ffconcat", chunks, plan.info.timeline)
    assert request.output is not None
    with atomic_path(request.output) as tmp:
        if container == "gif":
            mux.make_gif(concat, root / "palette.png", tmp, plan.info)
        else:
            mux.mux(concat, plan.info, container, plan.encoding.colour, plan.streams, request.start,
                    request.duration, plan.encoding.codec, tmp)
    shutil.rmtree(root, ignore_errors=True)
