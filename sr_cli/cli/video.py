"""``srtool video``: upscale a video (or animated GIF) frame by frame, keeping its timing, audio and colour."""

from __future__ import annotations

import contextlib
import functools
import os
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
)
from rich.table import Table

from sr_cli.choices import DEFAULT_VIDEO_MODEL, DEFAULT_VIDEO_SCALE
from sr_cli.cli.common import (
    CompileOpt,
    DenoiseOpt,
    EtaColumn,
    RateColumn,
    DeviceOpt,
    OfflineOpt,
    PrecisionOpt,
    RayAddressOpt,
    RayCpusOpt,
    RayOpt,
    TileOpt,
    WidthOpt,
    choose_model,
    err_console,
    interactive,
    model_options,
    out_console,
    parse_tile,
    print_json,
    run_command,
    warn,
)
from sr_cli.errors import InputError, UsageError
from sr_cli.signals import Stopped

if TYPE_CHECKING:
    from sr_cli.video import VideoReport


def _device(device: str | None) -> str | None:
    """Under torchrun each rank takes its own GPU unless a device is named."""
    from sr_cli.train.distributed import local_rank, rank_and_world

    if (device or os.environ.get("SRTOOL_DEVICE") or "auto") != "auto" or rank_and_world()[1] == 1:
        return device
    import torch

    return f"cuda:{local_rank() % torch.cuda.device_count()}" if torch.cuda.is_available() else device


def _show(report: VideoReport) -> None:
    for note in report.notes:
        err_console.print(f"[cyan]srtool: note:[/cyan] {note}", soft_wrap=True)
    table = Table(show_header=False, box=None)
    for key in ("output", "frames", "size", "output_size", "frame_rate", "codec", "pix_fmt", "fps"):
        table.add_row(key.replace("_", " "), str(getattr(report, key)))
    if report.repeated_frames:
        table.add_row("repeated frames", str(report.repeated_frames))
    if report.chunks_reused:
        table.add_row("chunks resumed", str(report.chunks_reused))
    out_console.print(table)


def video(
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="Video file or animated GIF.", show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output file; its extension picks the "
                                                "container (.mp4 .mkv .mov .webm .gif). Default: beside INPUT as "
                                                "<stem>_<model>_x<scale>.<ext>.", show_default=False)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name (see `srtool models`). Default: the "
                                              f"model --weights holds, else {DEFAULT_VIDEO_MODEL}.",
                                              show_default=False)] = None,
    scale: Annotated[int | None, typer.Option("--scale", "-s", help="Upscaling factor. Default: without --model, "
                                              f"the scale --weights holds; else {DEFAULT_VIDEO_SCALE}.",
                                              show_default=False)] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Load this checkpoint instead of the shipped "
                                                 "weights: srtool's, or an official EDSR/MDSR/CSD/BasicSR/ESRGAN "
                                                 "checkpoint.", show_default=False)] = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
    tile: TileOpt = "auto",
    width: WidthOpt = None,
    denoise: DenoiseOpt = None,
    offline: OfflineOpt = False,
    ensemble: Annotated[bool, typer.Option("--ensemble", help="x8 self-ensemble (8x slower).")] = False,
    compile_net: CompileOpt = False,
    batch: Annotated[int, typer.Option("--batch", help="Frames per inference batch.", min=1)] = 4,
    codec: Annotated[str | None, typer.Option("--codec", "-c", help="Video encoder: libx264 (default), libx265, "
                                              "libvpx-vp9 (default for .webm), ffv1 (lossless, .mkv), or any "
                                              "ffmpeg encoder.", show_default=False)] = None,
    crf: Annotated[int | None, typer.Option("--crf", help="Quality (lower is better). Default: x264 18, x265 20, "
                                            "VP9 31.", show_default=False)] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="x264/x265 preset (default medium; ultrafast when "
                                               "the model runs on the CPU, whose cores the encoder shares); VP9 "
                                               "speed 0-8 (default 4).", show_default=False)] = None,
    pix_fmt: Annotated[str | None, typer.Option("--pix-fmt", help="Output pixel format. Default: yuv420p, or "
                                                "yuv444p when the output size is odd; gbrp for ffv1.",
                                                show_default=False)] = None,
    ffmpeg_arg: Annotated[list[str] | None, typer.Option("--ffmpeg-arg", help="Extra encoder options, e.g. "
                                                         "--ffmpeg-arg='-tune film' (repeatable).",
                                                         show_default=False)] = None,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Do not copy audio and subtitles.")] = False,
    start: Annotated[str | None, typer.Option("--start", help="Start here: seconds or [HH:]MM:SS[.fff].",
                                              show_default=False)] = None,
    duration: Annotated[str | None, typer.Option("--duration", help="Process this long: seconds or "
                                                 "[HH:]MM:SS[.fff].", show_default=False)] = None,
    frames_dir: Annotated[Path | None, typer.Option("--frames-dir", help="Also write the upscaled frames here as "
                                                    "frame_NNNNNN.png.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output (and discard an "
                                            "interrupted run's chunks).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its finished "
                                         "chunks.")] = False,
    on_error: Annotated[str, typer.Option("--on-error", help="A frame ffmpeg cannot decode: fail (default), or "
                                          "keep (repeat the previous good frame, counted in the report).")]
    = "fail",
    chunk_frames: Annotated[int, typer.Option("--chunk-frames", help="Most frames per chunk (the unit of --resume).",
                                              min=1)] = 240,
    chunk_seconds: Annotated[float, typer.Option("--chunk-seconds", help="Most seconds of work per chunk: a stop "
                                                 "loses at most about this much.", min=0.001)] = 60.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON report on stdout.")] = False,
    use_ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    ray_cpus: RayCpusOpt = 4,
) -> None:
    """Upscale a video: streamed, pipelined, exact frame timing, audio and subtitles copied.

    Under torchrun each rank upscales a contiguous range of frames; rank 0 joins them. With --ray each chunk is a
    task on a Ray cluster; this process joins them. Ctrl-C or SIGTERM stops within a second or two (exit 130 or
    143), keeping the finished chunks for --resume.
    """
    def body() -> None:
        from sr_cli.pipeline import (
            Upscaler,  # here, not at the top: --help never loads torch
        )
        from sr_cli.registry import get_spec
        from sr_cli.train.distributed import rank_and_world
        from sr_cli.video import VideoRequest, run_video
        from sr_cli.video.timing import parse_time

        on_ray = use_ray or ray_address is not None
        if on_ray:
            from sr_cli.cluster import import_ray

            import_ray()  # not installed: say how, before anything runs
            if rank_and_world()[1] > 1:
                raise UsageError("--ray spreads the job itself: run it without torchrun")
        begin = parse_time(start, "--start") if start else None
        length = parse_time(duration, "--duration") if duration else None
        if length is not None and length <= 0:
            raise UsageError("--duration must be more than 0")
        if not source.is_file():
            raise InputError(f"{source}: no such file")
        picked = choose_model(model, scale, weights, DEFAULT_VIDEO_MODEL, DEFAULT_VIDEO_SCALE, offline=offline,
                              denoise=denoise)
        name, factor = picked.name, picked.scale
        make = functools.partial(Upscaler, name, weights=picked.weights, blend=picked.blend, precision=precision,
                                 tile=parse_tile(tile), ensemble=ensemble, compile_net=compile_net,
                                 **model_options(get_spec(name).name, width))
        rank = rank_and_world()[0]
        bar_on = interactive() and not json_out and rank == 0  # asked before the Ray block swaps stdout
        with contextlib.ExitStack() as stack:
            if on_ray:
                from sr_cli import cluster
                from sr_cli.batch import ModelAtScales
                from sr_cli.sizing import OutputSize

                stack.enter_context(cluster.connect(ray_address))
                models = ModelAtScales(functools.partial(make, device=device), [factor], OutputSize())
                pool = stack.enter_context(cluster.Pool(models, device, ray_cpus, warn))
                there = pool.describe()  # the first worker's model: its dtype and device
                model_name, dtype, on_cpu = there["model"], there["dtype"], there["device"].startswith("cpu")
                upscale, encode = None, cluster.video_encoder(pool)
            else:
                upscaler = make(factor, device=_device(device))
                model_name, dtype, on_cpu = upscaler.spec.name, str(upscaler.dtype), upscaler.device.type == "cpu"
                upscale, encode = upscaler.upscale_frames, None
            tag = (f"{model_name} x{factor} weights={picked.weights.resolve() if picked.weights else 'shipped'} "
                   f"blend={picked.blend} {dtype} tile={tile} ensemble={ensemble}")
            request = VideoRequest(source, output, codec, crf, preset, pix_fmt, list(ffmpeg_arg or []), not no_audio,
                                   begin or Fraction(0), length, frames_dir, overwrite, resume, on_error, chunk_frames,
                                   batch, chunk_seconds, on_cpu)
            columns = [TextColumn(f"[bold]{source.name}[/bold]"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("frames"), RateColumn(), EtaColumn()]
            with Progress(*columns, console=err_console, disable=not bar_on) as bar:
                task = bar.add_task("frames", total=None, unit="frames")

                def progress(done: int, total: int) -> None:
                    if bar.tasks[0].total is None:  # the first call: frames a resumed run reuses are not its speed
                        bar.reset(task, total=total, completed=done, base=done)
                    bar.update(task, completed=done, at=bar.get_time())

                try:
                    report = run_video(request, upscale, factor, tag, on_progress=progress, encode=encode)
                except Stopped as stopped:
                    raise Stopped(stopped.signum, "interrupted: run the same command with --resume to continue "
                                                  "from the finished chunks") from None
        if json_out:
            print_json(report.to_json())
        elif rank == 0:
            _show(report)

    run_command(body)


def register(app: typer.Typer) -> None:
    """Add ``video`` to the app."""
    app.command("video")(video)
