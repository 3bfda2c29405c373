"""``srtool compare``: the same detailed crop of a picture upscaled by each model, in one labelled PNG grid."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sr_cli.atomic import remove_stale
from sr_cli.choices import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS, DEFAULT_MODEL, DEFAULT_SCALE
from sr_cli.cli.common import (
    DeviceOpt,
    MaxMemoryOpt,
    OfflineOpt,
    PrecisionOpt,
    TileOpt,
    choose_model,
    error,
    interactive,
    out_console,
    parse_tile,
    print_json,
    run_command,
)
from sr_cli.errors import InputError, OutputError, SrtoolError, UsageError, batch_exit

if TYPE_CHECKING:
    from sr_cli.pipeline import Upscaler

DEFAULT_MODELS = ("bicubic", DEFAULT_MODEL)


def default_output(image: Path, scale: int) -> Path:
    """``<stem>_compare_x<scale>.png`` beside the input."""
    return image.with_name(f"{image.stem}_compare_x{scale}.png")


def compare(
    image: Annotated[Path, typer.Argument(help="The picture to compare the models on.", show_default=False)],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="A model to compare (repeat): a name from "
                                                    "`srtool models`, a catalogue model or a weights file. Default: "
                                                    f"{' and '.join(DEFAULT_MODELS)}.", show_default=False)] = None,
    scale: Annotated[int, typer.Option("--scale", "-s", help="Upscaling factor of every model; a model without it "
                                       "is skipped.")] = DEFAULT_SCALE,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The grid (a .png). Default: beside the input "
                                                "as <stem>_compare_x<scale>.png.", show_default=False)] = None,
    crop: Annotated[str | None, typer.Option("--crop", help="The crop x,y,w,h in input pixels. Default: the most "
                                             "detailed square of about 384/scale pixels.", show_default=False)]
    = None,
    reference: Annotated[Path | None, typer.Option("--reference", help="The high-resolution original (the input's "
                                                   "size x scale): adds its crop and each model's Y-PSNR/SSIM on "
                                                   "the crop.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing grid.")] = False,
    offline: OfflineOpt = False,
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
    tile: TileOpt = "auto",
    max_memory: MaxMemoryOpt = DEFAULT_MAX_MEMORY,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Refuse inputs with more pixels than this.",
                                            min=1)] = DEFAULT_MAX_PIXELS,
    json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON on stdout.")] = False,
) -> None:
    """Compare models on your own picture: one PNG grid of the same crop upscaled by each (labelled with its time
    per megapixel, and its Y-PSNR/SSIM with --reference); a model that cannot run is reported and skipped."""
    def body() -> int:
        from sr_cli.batch import prepare_folder  # torch
        from sr_cli.compare import compare_grid, default_side, detail_crop, model_label, parse_crop, upscale_crop
        from sr_cli.evaluate import eight_bit, load_hr, score
        from sr_cli.images import Picture, read_image, write_image
        from sr_cli.memory import parse_size
        from sr_cli.pipeline import Upscaler
        from sr_cli.registry import MODELS

        target = output if output is not None else default_output(image, scale)
        if target.suffix.lower() != ".png":
            raise UsageError(f"-o {target}: the grid is a PNG: name a .png file")
        if target.exists() and not overwrite:
            raise OutputError(f"{target} exists: pass --overwrite to replace it")
        picture = read_image(image, max_pixels=max_pixels)
        h, w = picture.pixels.shape[:2]
        box = parse_crop(crop, w, h) if crop is not None else detail_crop(picture.pixels, default_side(scale))
        x, y, bw, bh = box
        lr = eight_bit(picture.pixels[y:y + bh, x:x + bw], picture.bit_depth)
        hr = None
        if reference is not None:
            full = load_hr(reference, scale)
            if full.shape != (h * scale, w * scale, lr.shape[2]):
                raise InputError(f"{reference}: a reference for x{scale} of the {w}x{h} input must be "
                                 f"{w * scale}x{h * scale} with {lr.shape[2]} channel(s), not "
                                 f"{full.shape[1]}x{full.shape[0]} with {full.shape[2]}")
            hr = full[y * scale:(y + bh) * scale, x * scale:(x + bw) * scale]

        def load(name: str) -> tuple[str, Upscaler]:
            """The tile's label and the upscaler of a model name or weights file."""
            weights = Path(name) if Path(name).suffix and Path(name).is_file() else None
            picked = choose_model(None if weights else name, scale, weights, DEFAULT_MODEL, scale, offline=offline)
            upscaler = Upscaler(picked.name, picked.scale, weights=picked.weights, blend=picked.blend, device=device,
                                precision=precision, tile=parse_tile(tile), max_memory=parse_size(max_memory))
            label = weights.name if weights else upscaler.spec.name if name.lower() in MODELS else name
            return label, upscaler

        rows: list[dict[str, Any]] = []
        tiles, codes, errors = [], [], []
        for name in dict.fromkeys(model or DEFAULT_MODELS):
            try:
                label, upscaler = load(name)
                pixels, seconds_per_mp = upscale_crop(upscaler, picture.pixels, picture.bit_depth, box)
            except SrtoolError as err:
                error(str(err))
                codes.append(err.exit_code)
                errors.append(str(err))
                continue
            sr = eight_bit(pixels, picture.bit_depth)
            scores = score(sr, hr, scale) if hr is not None else None
            tiles.append((model_label(label, scale, seconds_per_mp, scores), sr))
            rows.append({"model": label, "architecture": upscaler.spec.name, "scale": scale,
                         "seconds_per_mp": seconds_per_mp, "psnr": scores[0] if scores else None,
                         "ssim": scores[1] if scores else None, "device": str(upscaler.device)})
            del upscaler  # one model in memory at a time
        if tiles:
            grid, boxes = compare_grid(lr, box, scale, tiles, hr)
            prepare_folder(target.parent)
            remove_stale(target.parent)  # what a killed run left half-written
            write_image(Picture(grid, 8), target, overwrite=overwrite)
            for row, tile_box in zip(rows, boxes, strict=True):
                row["tile"] = list(tile_box)
        if json_out:
            print_json({"input": str(image), "output": str(target) if tiles else None, "scale": scale,
                        "crop": list(box), "reference": str(reference) if reference else None, "models": rows,
                        "errors": errors})
        elif interactive() and tiles:
            out_console.print(f"wrote {target}: {len(tiles)} model(s) x{scale} on the crop {x},{y} {bw}x{bh}")
        return batch_exit(codes)

    code = run_command(body)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``compare`` to the app."""
    app.command("compare")(compare)
