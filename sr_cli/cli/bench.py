"""``srtool bench``: Y-PSNR/SSIM of models on data sets, the published protocol."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sr_cli import catalogue
from sr_cli.atomic import atomic_path
from sr_cli.choices import ALL_DEGRADATIONS
from sr_cli.cli.common import (
    DeviceOpt,
    OfflineOpt,
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
    width_models,
)
from sr_cli.datasets import DATASETS, dataset_images
from sr_cli.errors import EXIT_FAILED, SrtoolError, UsageError

if TYPE_CHECKING:
    from sr_cli.evaluate import RunScore
    from sr_cli.pipeline import Upscaler


def default_models(scales: list[int] | None) -> tuple[list[str], dict[str, list[int]]]:
    """bicubic plus every model with shipped weights, at each of its shipped scales (within ``scales``)."""
    from sr_cli.registry import MODELS, shipped_weights

    chosen: dict[str, list[int]] = {}
    for spec in MODELS.values():
        wanted = [s for s in spec.scales if scales is None or s in scales]
        have = wanted if spec.name == "bicubic" else [s for s in wanted if spec.learned and
                                                      shipped_weights(spec, s).is_file()]
        if have:
            chosen[spec.name] = have
    return list(chosen), chosen


def write_csv(results: list[RunScore], path: Path) -> None:
    """One row per image, plus the means as image '(mean)'."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "model", "scale", "image", "psnr", "ssim", "seconds"])
        for r in results:
            for i in r.images:
                w.writerow([r.dataset, r.model, r.scale, i.image, f"{i.psnr:.4f}", f"{i.ssim:.4f}", f"{i.seconds:.4f}"])
            w.writerow([r.dataset, r.model, r.scale, "(mean)", f"{r.psnr:.4f}", f"{r.ssim:.4f}",
                        f"{r.seconds_per_image:.4f}"])


def bench(
    dataset: Annotated[list[str], typer.Option("--dataset", "-d", help=f"Data set(s): {', '.join(DATASETS)}, "
                                               "or 'folder' with --data-dir.")] = ["set5"],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model(s); default: the model --weights "
                                                    "holds, else bicubic and every model with shipped weights.",
                                                    show_default=False)] = None,
    scale: Annotated[list[int] | None, typer.Option("--scale", "-s", help="Scale(s); default: without --model, the "
                                                    "scale --weights holds; else each model's.",
                                                    show_default=False)] = None,
    degradation: Annotated[str, typer.Option("--degradation", help=f"How LR is made: {', '.join(ALL_DEGRADATIONS)} "
                                             "(Real-ESRGAN's random pipeline: one degradation per picture, drawn "
                                             "from --seed and its file name).")]
    = "bicubic",
    blur_sigma: Annotated[float | None, typer.Option("--blur-sigma", help="Gaussian sigma for blur-decimate.",
                                                     show_default=False)] = None,
    noise: Annotated[float, typer.Option("--noise", help="Additive Gaussian noise sigma (0-255 units).")] = 0.0,
    jpeg: Annotated[int | None, typer.Option("--jpeg", help="JPEG quality applied to LR.", show_default=False)]
    = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the noise (and of realesrgan).")] = 0,
    lr_dir: Annotated[Path | None, typer.Option("--lr-dir", help="Read LR from this folder (X<s>/<name>x<s>.png) "
                                                "instead of degrading.", show_default=False)] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Folder of HR images (manga109 or any).",
                                                  show_default=False)] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Checkpoint for the (single) learned --model: "
                                                 "srtool's, or an official EDSR/MDSR/CSD/BasicSR/ESRGAN file.",
                                                 show_default=False)] = None,
    width: WidthOpt = None,
    ensemble: Annotated[bool, typer.Option("--ensemble", help="x8 self-ensemble (the '+' figures).")] = False,
    device: DeviceOpt = None,
    offline: OfflineOpt = False,
    precision: Annotated[str, typer.Option(
        "--precision", help="fp32 (default: the protocol's scores on any machine)|auto|fp16|bf16; auto as in "
                            "upscale.")] = "fp32",
    tile: TileOpt = "auto",
    save_images: Annotated[Path | None, typer.Option("--save-images", help="Write SR outputs here.",
                                                     show_default=False)] = None,
    compare: Annotated[Path | None, typer.Option("--compare", help="Write one side-by-side PNG per image here "
                                                 "(HR | bicubic | each model).", show_default=False)] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write per-image rows to this CSV.",
                                                  show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
    = False,
) -> None:
    """Score models on data sets: mean Y-PSNR/SSIM (scale shaved), time per image, megapixels/s, parameters."""
    failures: list[SrtoolError] = []

    def report(err: SrtoolError) -> None:
        failures.append(err)
        error(str(err))

    def body() -> list[RunScore]:
        from sr_cli.evaluate import (  # here, not at the top: --help never loads torch
            Degradation,
            run_bench,
        )
        from sr_cli.pipeline import Upscaler
        from sr_cli.registry import MODELS, get_spec
        from sr_cli.weights import held_model

        wanted_models, wanted_scales, weights_file = model, scale, weights
        published = [m for m in model or [] if m.lower() not in MODELS and catalogue.find(m) is not None]
        if published:  # a catalogue model takes the place of --weights
            if len(published) > 1 or weights is not None:
                raise UsageError("bench runs one catalogue model at a time, without --weights")
            picked = choose_model(published[0], scale[0] if scale and len(scale) == 1 else None, None, "", 0,
                                  offline=offline)
            weights_file = picked.weights
            wanted_models = [picked.name if m == published[0] else m for m in model or []]
            wanted_scales = scale or [picked.scale]
        elif not model and weights is not None:
            arch, held = held_model(weights)
            wanted_models, wanted_scales = [arch], scale or ([held] if held is not None else None)
        if wanted_models:
            names = [get_spec(m).name for m in wanted_models]
            chosen = {n: [s for s in get_spec(n).scales if wanted_scales is None or s in wanted_scales]
                      or list(wanted_scales or []) for n in names}
        else:
            names, chosen = default_models(scale)
        learned = [n for n in names if get_spec(n).learned]
        options = {n: model_options(n, width) for n in names if width is None or n in width_models()}
        if width is not None and not options:
            model_options(names[0], width)  # the error naming the model
        if weights_file is not None and len(learned) != 1:
            raise UsageError("--weights needs exactly one learned --model (interpolations may be added)")
        sets: list[tuple[str, list[Path]]] = []
        for name in dataset:
            try:
                sets.append((name, dataset_images(name, data_dir, quiet=json_out or not interactive())))
            except SrtoolError as err:
                report(err)
        tile_px = parse_tile(tile)

        def make(name: str, s: int) -> Upscaler:
            return Upscaler(name, s, weights=weights_file if weights_file is not None and name in learned else None,
                            device=device,
                            precision=precision, tile=tile_px, ensemble=ensemble, **options.get(name, {}))

        deg = Degradation(degradation, blur_sigma, noise, jpeg, seed, lr_dir)
        total = sum(len(p) for _, p in sets) * len({s for v in chosen.values() for s in v})
        with progress_bar(interactive() and not json_out) as bar:
            task = bar.add_task("bench", total=total)
            results = run_bench(sets, names, chosen, make, degradation=deg, save_dir=save_images,
                                compare_dir=compare, on_error=report, on_image=lambda: bar.advance(task))
        return results

    results = run_command(body)
    if csv_path is not None:
        run_command(lambda: write_csv(results, csv_path))
    if json_out:
        print_json({"protocol": "Y-PSNR/SSIM (BT.601), scale pixels shaved, HR cropped to a multiple of the scale",
                    "degradation": degradation, "results": [r.as_dict() for r in results], "errors": [str(f) for f in failures]})
    else:
        table = Table(title="srtool bench")
        for col in ("dataset", "model", "scale", "PSNR", "SSIM", "s/image", "MP/s", "params"):
            table.add_column(col, justify="right" if col not in ("dataset", "model") else "left")
        for r in results:
            table.add_row(r.dataset, r.model, f"x{r.scale}", f"{r.psnr:.4f}", f"{r.ssim:.4f}",
                          f"{r.seconds_per_image:.3f}", f"{r.megapixels_per_second:.2f}", f"{r.params:,}")
        out_console.print(table)
    if failures:
        raise typer.Exit(EXIT_FAILED if results else failures[0].exit_code)


def register(app: typer.Typer) -> None:
    """Add ``bench`` to the app."""
    app.command("bench")(bench)
