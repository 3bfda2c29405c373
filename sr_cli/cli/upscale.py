"""``srtool upscale``: images, folders and globs, tiled, written atomically."""

from __future__ import annotations

import collections
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sr_cli.atomic import remove_stale
from sr_cli.choices import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MODEL,
    DEFAULT_QUALITY,
    DEFAULT_SCALE,
    OUTPUT_FORMATS,
)
from sr_cli.cli.common import (
    CompileOpt,
    DenoiseOpt,
    DeviceOpt,
    MaxMemoryOpt,
    OfflineOpt,
    PrecisionOpt,
    RayAddressOpt,
    RayCpusOpt,
    RayOpt,
    TileOpt,
    WidthOpt,
    choose_model,
    err_console,
    error,
    interactive,
    model_options,
    one_line,
    out_console,
    parse_tile,
    print_json,
    progress_bar,
    run_command,
    warn,
)
from sr_cli.errors import EXIT_OK, SrtoolError, UsageError, batch_exit

if TYPE_CHECKING:
    from sr_cli.batch import Job, ModelAtScales, Result
    from sr_cli.cluster import Pool
    from sr_cli.sizing import OutputSize

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
    outscale: Annotated[float | None, typer.Option("--outscale", help="Final size as a factor of the input (e.g. "
                                                   "1.5): the model runs at the nearest scale at or above, then a "
                                                   "Lanczos resize.", show_default=False)] = None,
    out_width: Annotated[int | None, typer.Option("--out-width", help="Final width in pixels, the aspect kept "
                                                  "(with --out-height: the largest size that fits both).", min=1,
                                                  show_default=False)] = None,
    out_height: Annotated[int | None, typer.Option("--out-height", help="Final height in pixels, the aspect kept.",
                                                   min=1, show_default=False)] = None,
    min_side: Annotated[int | None, typer.Option("--min-side", help="Final shorter side at least this many pixels "
                                                 "(never smaller than the input).", min=1, show_default=False)]
    = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="Output format: png, jpg, webp, tif or bmp "
                                            "(default: each input's own).", show_default=False)] = None,
    quality: Annotated[int, typer.Option("--quality", "-q", help="JPEG and WebP quality (JPEG is written 4:4:4).",
                                         min=1, max=100)] = DEFAULT_QUALITY,
    suffix: Annotated[str | None, typer.Option("--suffix", help="Text after each output's stem (default "
                                               "_<model>_x<scale>; --outscale F: _<model>_xF; --out-width W: "
                                               "_<model>_wW; --out-height H: _<model>_hH; both: _<model>_WxH; "
                                               "--min-side N: _<model>_minN).", show_default=False)] = None,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Refuse inputs with more pixels than this.",
                                            min=1)] = DEFAULT_MAX_PIXELS,
    example: Annotated[bool, typer.Option("--example", help="Upscale the embedded example picture "
                                          f"({EXAMPLE}).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON report on stdout.")] = False,
    use_ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    ray_cpus: RayCpusOpt = 4,
) -> None:
    """Upscale images (default: --model {model} --scale {scale}, or what --weights holds); a batch goes on past a
    bad file."""
    def body() -> int:
        from sr_cli.batch import (  # torch
            ModelAtScales,
            Naming,
            error_entry,
            expand_inputs,
            plan_jobs,
            prepare_folder,
        )
        from sr_cli.device import select_device
        from sr_cli.memory import parse_size
        from sr_cli.pipeline import Upscaler
        from sr_cli.registry import get_spec, shipped_weights
        from sr_cli.sizing import OutputSize

        on_ray = use_ray or ray_address is not None
        if on_ray:
            from sr_cli.cluster import import_ray

            import_ray()  # not installed: say how, before anything runs
        items = list(inputs or []) + ([str(example_image())] if example else [])
        if not items:
            raise UsageError("no input: name image files, folders or globs, or pass --example")
        if overwrite and skip_existing:
            raise UsageError("--overwrite and --skip-existing exclude each other")
        size = OutputSize(outscale, out_width, out_height, min_side)
        ext = _output_format(fmt)
        sources, problems = expand_inputs(items, recursive)
        target = output
        if example and output is None:
            target = Path.cwd()
        picked = choose_model(model, scale, weights, DEFAULT_MODEL, DEFAULT_SCALE, offline=offline, denoise=denoise)
        name, factor = picked.name, picked.scale
        spec = get_spec(name)
        jobs = plan_jobs(sources, target, Naming(f"{name}_{_size_label(size, factor)}", suffix, ext)) if sources else []
        if target is not None and jobs and jobs[0].target.parent == target:
            prepare_folder(target)
        for folder in dict.fromkeys(job.target.parent for job in jobs):
            remove_stale(folder)  # what a killed run left half-written
        # a partial, not a closure: a Ray worker receives it pickled
        make = functools.partial(Upscaler, name, weights=picked.weights, blend=picked.blend, device=device,
                                 precision=precision, tile=parse_tile(tile), ensemble=ensemble,
                                 compile_net=compile_net, batch_size=batch_size, max_memory=parse_size(max_memory),
                                 **model_options(spec.name, width))
        free = size.active and scale is None and picked.weights is None  # the model's scale follows each picture
        scales = [s for s in spec.scales if not spec.learned or shipped_weights(spec, s).is_file()] if free else []
        models = ModelAtScales(make, scales or [factor], size)
        report: list[dict[str, Any]] = []
        codes: list[int] = []

        def record(entry: dict[str, Any], code: int) -> None:
            report.append(entry)
            if code:
                codes.append(code)

        settings = {"overwrite": overwrite, "skip_existing": skip_existing, "max_pixels": max_pixels,
                    "quality": quality}
        bar_on = interactive() and not json_out
        with contextlib.ExitStack() as stack:
            if on_ray and jobs:
                from sr_cli import cluster

                stack.enter_context(cluster.connect(ray_address))
                pool = stack.enter_context(cluster.Pool(models, device, ray_cpus, warn))
                pool.grow(len(jobs))
                where = pool.describe()["device"]  # a model that cannot load fails once, before the batch
            else:
                pool = None
                if len(models.scales) == 1:
                    models.get(models.scales[0])  # a model that cannot load fails once, before the batch
                where = str(select_device(device))
            for problem in problems:
                entry = error_entry(str(problem).split(":")[0], problem)
                _show(entry)
                record(entry, problem.exit_code)
            if pool is not None:
                _run_on_ray(pool, jobs, record, settings, bar_on)
            else:
                _run_here(models, jobs, record, bar_on=bar_on, **settings)
        if json_out:
            print_json({"model": spec.name, "scale": None if free else factor,
                        "output_size": _size_label(size, factor), "device": where, "files": report})
        elif any(r["status"] != "error" for r in report):
            line = one_line(_summary(report, f"{spec.name} {_size_label(size, factor)}", target))
            (out_console.print if interactive() else err_console.print)(line, soft_wrap=True, markup=False,
                                                                        highlight=False)
        return batch_exit(codes)

    code = run_command(body)
    if code:
        raise typer.Exit(code)


Record = Callable[[dict[str, Any], int], None]  # a job's report entry and exit code (0: written or skipped)


def _show(entry: dict[str, Any]) -> None:
    """An input's error line, or its warnings."""
    if entry["status"] == "error":
        error(entry["error"])
    for note in entry.get("warnings", []):
        warn(note)


def _run_on_ray(pool: Pool, jobs: list[Job], record: Record, settings: dict[str, Any], bar_on: bool) -> None:
    """The batch on the Ray workers: lines shown as jobs finish, entries recorded in input order."""
    from sr_cli.cluster import upscale_files

    done: dict[int, tuple[dict[str, Any], int]] = {}
    with progress_bar(bar_on) as bar:
        images = bar.add_task("images", total=len(jobs), unit="images")
        for i, entry, code in upscale_files(pool, jobs, **settings):
            _show(entry)
            done[i] = entry, code
            bar.update(images, advance=1, at=bar.get_time())
    for i in range(len(jobs)):
        record(*done[i])


def _run_here(models: ModelAtScales, jobs: list[Job], record: Record, *, overwrite: bool, skip_existing: bool,
              max_pixels: int, quality: int, bar_on: bool) -> None:
    """The batch in this process, its lines shown and its entries recorded in input order."""
    from sr_cli.batch import (
        done_entry,
        error_entry,
        output_exists,
        read_and_upscale,
        skipped_entry,
    )
    from sr_cli.images import write_image

    def report(entry: dict[str, Any], code: int) -> None:
        _show(entry)
        record(entry, code)

    def settle(job: Job, result: Result, written: Future[None]) -> None:
        """Report a job once its write has finished."""
        try:
            written.result()
        except SrtoolError as err:
            report(error_entry(str(job.source), err), err.exit_code)
            return
        report(done_entry(job, result), EXIT_OK)

    # One writer thread: encoding picture k overlaps upscaling picture k + 1; at most one write waits, and
    # leaving the block (Ctrl-C included) lets it finish.
    with progress_bar(bar_on) as bar, ThreadPoolExecutor(max_workers=1, thread_name_prefix="srtool-write") as writer:
        images = bar.add_task("images", total=len(jobs), unit="images")
        tiles = bar.add_task("tiles", total=None, unit="blocks")
        pending: list[tuple[Job, Result, Future[None]]] = []  # the write in flight, reported in input order

        def flush() -> None:
            while pending:
                settle(*pending.pop())
                bar.update(images, advance=1, at=bar.get_time())

        for job in jobs:
            bar.reset(tiles, description=f"{job.source.name}")
            try:
                if skip_existing and output_exists(job):
                    flush()
                    report(skipped_entry(job), EXIT_OK)
                    bar.update(images, advance=1, at=bar.get_time())
                    continue
                result = read_and_upscale(models, job, overwrite=overwrite, max_pixels=max_pixels,
                                          progress=lambda done, total: bar.update(tiles, completed=done, total=total,
                                                                                  at=bar.get_time()))
            except SrtoolError as err:
                flush()
                report(error_entry(str(job.source), err), err.exit_code)
                bar.update(images, advance=1, at=bar.get_time())
                continue
            written = writer.submit(write_image, result.picture, job.target, overwrite=overwrite, quality=quality)
            flush()
            pending.append((job, result, written))
        flush()


def _output_format(fmt: str | None) -> str | None:
    """The extension ``--format`` asks for (None: each input's own)."""
    if fmt is None:
        return None
    if fmt.lower() not in OUTPUT_FORMATS:
        raise UsageError(f"--format {fmt}: choose one of png, jpg, webp, tif, bmp")
    return OUTPUT_FORMATS[fmt.lower()]


def _size_label(size: OutputSize, scale: int) -> str:
    """The output size in names and reports: x4, x1.5, w1920, h1080, 1920x1080, min1000."""
    if size.outscale is not None:
        return f"x{size.outscale:g}"
    if size.min_side is not None:
        return f"min{size.min_side}"
    if size.width and size.height:
        return f"{size.width}x{size.height}"
    if size.width or size.height:
        return f"w{size.width}" if size.width else f"h{size.height}"
    return f"x{scale}"


def _summary(report: list[dict[str, Any]], model: str, folder: Path | None) -> str:
    """One line on what was written where: the file, or the count and the folder (or "beside the inputs")."""
    counts = collections.Counter(r["status"] for r in report)
    done = [r for r in report if r["status"] == "ok"]
    if len(report) == 1 and done:
        return f"srtool: wrote {done[0]['output']} ({model})"
    where = f"into {folder}" if folder is not None else "beside their inputs"
    extra = ", ".join(f"{counts[k]} {k}{'s' if k == 'error' and counts[k] > 1 else ''}"
                      for k in ("skipped", "error") if counts[k])
    return f"srtool: upscaled {counts['ok']} of {len(report)} images with {model} {where}" + \
        (f" ({extra})" if extra else "")


def register(app: typer.Typer) -> None:
    """Add ``upscale`` to the app."""
    upscale.__doc__ = (upscale.__doc__ or "").format(model=DEFAULT_MODEL, scale=DEFAULT_SCALE)
    app.command("upscale")(upscale)
