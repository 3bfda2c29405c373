"""``srtool upscale``: images, folders and globs, tiled, written atomically."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sr_cli.atomic import remove_stale
from sr_cli.choices import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MODEL,
    DEFAULT_SCALE,
)
from sr_cli.cli.common import (
    CompileOpt,
    DenoiseOpt,
    DeviceOpt,
    MaxMemoryOpt,
    OfflineOpt,
    PrecisionOpt,
    TileOpt,
    WidthOpt,
    choose_model,
    error,
    interactive,
    model_options,
    out_console,
    parse_tile,
    print_json,
    progress_bar,
    run_command,
    warn,
)
from sr_cli.errors import EXIT_FAILED, EXIT_OK, SrtoolError, UsageError

if TYPE_CHECKING:
    from sr_cli.batch import Job
    from sr_cli.images import Picture

EXAMPLE = "butterfly.png"


def example_image() -> Path:
    """The embedded example picture (Set5 butterfly)."""
    return Path(str(resources.files("sr_cli") / "data" / "Set5" / EXAMPLE))


def upscale(
    inputs: Annotated[list[str] | None, typer.Argument(help="Image files, folders or glob patterns.",
                                                       show_default=False)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name (see `srtool models`). Default: the "
                                              f"model --weights holds, else {DEFAULT_MODEL}.", show_default=False)]
    = None,
    scale: Annotated[int | None, typer.Option("--scale", "-s", help="Upscaling factor: 2, 3 or 4. Default: without "
                                              f"--model, the scale --weights holds; else {DEFAULT_SCALE}.",
                                              show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output file (one input) or folder. "
                                                "Default: beside each input as <stem>_<model>_x<scale>.<ext>.",
                                                show_default=False)] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Search folders recursively.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    skip_existing: Annotated[bool, typer.Option("--skip-existing", help="Skip inputs whose output exists.")] = False,
    weights: Annotated[Path | None, typer.Option("--weights", help="Load this checkpoint instead of the shipped "
                                                 "weights: srtool's, or an official EDSR/MDSR/CSD/BasicSR/ESRGAN "
                                                 "checkpoint.", show_default=False)] = None,
    width: WidthOpt = None,
    denoise: DenoiseOpt = None,
    offline: OfflineOpt = False,
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
    tile: TileOpt = "auto",
    max_memory: MaxMemoryOpt = DEFAULT_MAX_MEMORY,
    ensemble: Annotated[bool, typer.Option("--ensemble", help="x8 flip/transpose self-ensemble (EDSR+).")] = False,
    compile_net: CompileOpt = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Tiles per forward pass (at most: --tile auto "
                                            "batches fewer when memory is short).", min=1)] = 4,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Refuse inputs with more pixels than this.",
                                            min=1)] = DEFAULT_MAX_PIXELS,
    example: Annotated[bool, typer.Option("--example", help="Upscale the embedded example picture "
                                          f"({EXAMPLE}).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON report on stdout.")] = False,
) -> None:
    """Upscale images (default: --model {model} --scale {scale}, or what --weights holds); a batch goes on past a
    bad file."""
    def body() -> int:
        from sr_cli.batch import (  # torch
            expand_inputs,
            output_exists,
            plan_jobs,
            prepare_folder,
            read_and_upscale,
        )
        from sr_cli.images import write_image
        from sr_cli.memory import parse_size
        from sr_cli.pipeline import Upscaler
        from sr_cli.registry import get_spec

        items = list(inputs or []) + ([str(example_image())] if example else [])
        if not items:
            raise UsageError("no input: name image files, folders or globs, or pass --example")
        if overwrite and skip_existing:
            raise UsageError("--overwrite and --skip-existing exclude each other")
        sources, problems = expand_inputs(items, recursive)
        target = output
        if example and output is None:
            target = Path.cwd()
        picked = choose_model(model, scale, weights, DEFAULT_MODEL, DEFAULT_SCALE, offline=offline, denoise=denoise)
        name, factor = picked.name, picked.scale
        jobs = plan_jobs(sources, target, name, factor) if sources else []
        if target is not None and jobs and jobs[0].target.parent == target:
            prepare_folder(target)
        for folder in dict.fromkeys(job.target.parent for job in jobs):
            remove_stale(folder)  # what a killed run left half-written
        options = model_options(get_spec(name).name, width)
        upscaler = Upscaler(name, factor, weights=picked.weights, blend=picked.blend, device=device, precision=precision,
                            tile=parse_tile(tile), ensemble=ensemble, compile_net=compile_net,
                            batch_size=batch_size, max_memory=parse_size(max_memory), **options)
        report, codes = [], []
        for problem in problems:
            error(str(problem))
            codes.append(problem.exit_code)
            report.append({"input": str(problem).split(":")[0], "status": "error", "error": str(problem)})
        def failed(job: Job, err: SrtoolError) -> None:
            error(str(err))
            codes.append(err.exit_code)
            report.append({"input": str(job.source), "status": "error", "error": str(err)})

        def settle(job: Job, picture: Picture, written: Future[None]) -> None:
            """Report a job once its write has finished."""
            try:
                written.result()
            except SrtoolError as err:
                failed(job, err)
                return
            for note in picture.notes:
                warn(note)
            h, w = picture.pixels.shape[:2]
            report.append({"input": str(job.source), "output": str(job.target), "status": "ok",
                           "size": [w, h], "bit_depth": picture.bit_depth, "warnings": list(picture.notes)})

        # One writer thread: encoding picture k overlaps upscaling picture k + 1; at most one write waits, and
        # leaving the block (Ctrl-C included) lets it finish.
        with progress_bar(interactive() and not json_out) as bar, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="srtool-write") as writer:
            images = bar.add_task("images", total=len(jobs))
            tiles = bar.add_task("tiles", total=None)
            pending: list[tuple[Job, Picture, Future[None]]] = []  # the write in flight, reported in input order

            def flush() -> None:
                while pending:
                    settle(*pending.pop())
                    bar.advance(images)

            for job in jobs:
                bar.reset(tiles, description=f"{job.source.name}")
                try:
                    if skip_existing and output_exists(job):
                        flush()
                        report.append({"input": str(job.source), "output": str(job.target), "status": "skipped"})
                        bar.advance(images)
                        continue
                    picture = read_and_upscale(upscaler, job, overwrite=overwrite, max_pixels=max_pixels,
                                               progress=lambda done, total: bar.update(tiles, completed=done,
                                                                                       total=total))
                except SrtoolError as err:
                    flush()
                    failed(job, err)
                    bar.advance(images)
                    continue
                written = writer.submit(write_image, picture, job.target, overwrite=overwrite)
                flush()
                pending.append((job, picture, written))
            flush()
        if json_out:
            print_json({"model": upscaler.spec.name, "scale": factor, "device": str(upscaler.device),
                        "files": report})
        elif interactive():
            done = sum(r["status"] == "ok" for r in report)
            out_console.print(f"upscaled {done} of {len(report)} image(s) with {upscaler.spec.name} x{factor}")
        if not codes:
            return EXIT_OK
        return codes[0] if len(set(codes)) == 1 else EXIT_FAILED

    code = run_command(body)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``upscale`` to the app."""
    upscale.__doc__ = (upscale.__doc__ or "").format(model=DEFAULT_MODEL, scale=DEFAULT_SCALE)
    app.command("upscale")(upscale)
