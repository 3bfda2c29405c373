"""What every command shares: the consoles, error reporting, JSON output and the common options."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)

from sr_cli import catalogue, signals
from sr_cli.errors import EXIT_INTERRUPTED, SrtoolError, UsageError

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)

T = TypeVar("T")

DeviceOpt = Annotated[str | None, typer.Option(
    "--device", help="auto|cpu|cuda|cuda:N|mps; auto = CUDA, else MPS, else CPU. Default: $SRTOOL_DEVICE or auto.",
    show_default=False)]
PrecisionOpt = Annotated[str, typer.Option(
    "--precision", help="auto|fp32|fp16|bf16 (fp16 is GPU-only); auto = fp16 on CUDA, on CPU bf16 where the CPU has "
                        "native bf16 (AVX-512 BF16, AMX) and the shipped model loses < 0.01 dB in it, else fp32.")]
CompileOpt = Annotated[bool, typer.Option(
    "--compile", help="Compile the network with torch.compile first (tens of seconds, then once per new input size): "
                      "for long runs of same-size inputs (video) on a GPU; on CPU it measured 0.7-1.15x.")]
TileOpt = Annotated[str, typer.Option(
    "--tile", help="LR tile size in pixels: auto (the largest that fits --max-memory), 0 (whole image at once) or N.")]
MaxMemoryOpt = Annotated[str, typer.Option(
    "--max-memory", help="Peak memory of the run, not counting the output picture (held as 8/16-bit): 1.5G, 800M, "
                         "... Pictures are upscaled in blocks that fit; more memory, fewer blocks (each block "
                         "recomputes its model's receptive field at its edges).")]
RayOpt = Annotated[bool, typer.Option(
    "--ray", help="Run on a Ray cluster (pip install \"srtool\\[ray]\"): the one --ray-address or RAY_ADDRESS names, "
                  "else a local Ray runtime on this machine. Inputs, outputs and the weights must sit on a file system "
                  "every node shares.")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="The Ray cluster, HOST:PORT of its head (implies --ray). Default: $RAY_ADDRESS.",
    show_default=False)]
RayCpusOpt = Annotated[int, typer.Option(
    "--ray-cpus", min=1, help="On a cluster without GPUs, CPU cores per Ray worker (at most a node's), each worker "
                              "holding the model once; with GPUs, one worker per GPU.")]
WidthOpt = Annotated[float | None, typer.Option(
    "--width", help="CSD width fraction in (0, 1] (csd only; a full-width CSD file runs narrower).",
    show_default=False)]


def width_models() -> tuple[str, ...]:
    """The width-switchable registry models (``--width``)."""
    from sr_cli.registry import (
        MODELS,  # here, not at the top: --help and usage errors never load torch
    )

    return tuple(name for name, spec in MODELS.items() if "width" in spec.options)


def model_options(name: str, width: float | None) -> dict[str, Any]:
    """The build options the command line gives ``name``: ``--width`` for CSD, refused for any other model."""
    if width is None:
        return {}
    if name not in width_models():
        raise UsageError(f"--width applies to {', '.join(width_models())} only, not {name}")
    if not 0 < width <= 1:
        raise UsageError(f"--width is a fraction in (0, 1], got {width:g}")
    return {"width": width}


def interactive() -> bool:
    """True when stdout is a terminal: progress bars and chatter only then."""
    return sys.stdout.isatty()


def one_line(text: str) -> str:
    """``text`` with control characters (a newline in a file name) written as escapes: a message stays one line."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def error(message: str) -> None:
    """Print one error line on stderr."""
    err_console.print(f"[red]srtool: error:[/red] {escape(one_line(message))}", soft_wrap=True)


def warn(message: str) -> None:
    """Print one warning line on stderr."""
    err_console.print(f"[yellow]srtool: warning:[/yellow] {escape(one_line(message))}", soft_wrap=True)


def print_json(doc: Any) -> None:
    """Write ``doc`` as JSON on stdout, alone."""
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    sys.stdout.flush()


def parse_tile(tile: str) -> int | None:
    """``auto`` → None, else a non-negative integer."""
    if tile == "auto":
        return None
    try:
        value = int(tile)
    except ValueError:
        raise UsageError(f"--tile must be auto, 0 or a positive integer, got '{tile}'") from None
    if value < 0:
        raise UsageError(f"--tile must be auto, 0 or a positive integer, got '{tile}'")
    return value


OfflineOpt = Annotated[bool, typer.Option(
    "--offline", help="Never download: a catalogue model must be in the cache already (also SRTOOL_OFFLINE=1).")]
DenoiseOpt = Annotated[float | None, typer.Option(
    "--denoise", min=0.0, max=1.0, help="realesr-general-x4v3 only: denoise strength 0..1, a weight-by-weight blend "
                                        "with its -wdn twin (Real-ESRGAN's -dn).", show_default=False)]


def catalogue_file(value: str | Path | None) -> Path | None:
    """A weights option's value (--init, --teacher): a file as given, or a catalogue name, fetched into the cache
    on first use."""
    if value is None or Path(value).exists() or (entry := catalogue.find(str(value))) is None:
        return None if value is None else Path(value)
    return catalogue.ensure(entry, quiet=not interactive())


@dataclass(frozen=True)
class ModelChoice:
    """The model to run: registry name, scale, weights file, and the file blended in with its weight."""

    name: str
    scale: int
    weights: Path | None
    blend: tuple[Path, float] | None = None


def choose_model(model: str | None, scale: int | None, weights: Path | None, default_model: str, default_scale: int,
                 *, offline: bool = False, denoise: float | None = None) -> ModelChoice:
    """--model, --scale and --weights resolved. A registry name runs as given; a catalogue name (``srtool
    models``) runs its published file, fetched into the cache on first use; without --model, the model that
    --weights holds (and, without --scale, its scale); else the command's defaults."""
    from sr_cli.registry import MODELS, unknown_model
    from sr_cli.weights import held_model

    entry = catalogue.find(model) if model is not None and model.lower() not in MODELS else None
    if model is not None and model.lower() not in MODELS and entry is None:
        raise unknown_model(model, catalogue.catalogue())
    if entry is not None and weights is not None:
        raise UsageError(f"{entry.name} is a catalogue model: it brings its own weights, so --weights cannot go with it")
    if entry is None:
        if denoise is not None:
            raise UsageError("--denoise goes with a catalogue model that has a denoise twin "
                             f"({', '.join(e.name for e in catalogue.catalogue().values() if e.denoise_pair)})")
        if model is None and weights is not None:
            model, held = held_model(weights)
            scale = scale if scale is not None else held
        return ModelChoice(model or default_model, scale if scale is not None else default_scale, weights)
    entry, scale = catalogue.resolve(entry.name, scale)
    path = catalogue.ensure(entry, offline_only=offline, quiet=not interactive())
    if denoise is None:
        return ModelChoice(entry.architecture, scale, path)
    if entry.denoise_pair is None:
        raise UsageError(f"--denoise: {entry.name} has no denoise twin to blend with")
    twin = catalogue.ensure(catalogue.catalogue()[entry.denoise_pair], offline_only=offline, quiet=not interactive())
    return ModelChoice(entry.architecture, scale, path, (twin, 1 - denoise))


def run_command(fn: Callable[[], T]) -> T:
    """Run a command body: an SrtoolError becomes one line and its exit code; SIGINT (Ctrl-C) and SIGTERM stop
    the children and exit 130 and 143 (see sr_cli/signals.py)."""
    try:
        with signals.handling(signals.stop):
            return fn()
    except SrtoolError as err:
        error(str(err))
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt as err:
        error(str(err) or "interrupted")
        code = err.exit_code if isinstance(err, signals.Stopped) else EXIT_INTERRUPTED
        signals.end_after_stop(code)


def _rate(task: Task) -> float | None:
    """Units done a second from the task's (re)start (less its ``base`` field, units it began with) to its last
    unit done (its ``at`` field, the bar's clock when it was updated; else now): known from the first unit (rich's
    own speed waits for two samples, so a picture of few blocks had no ETA until its second)."""
    done = task.completed - task.fields.get("base", 0)  # units the task began with are not its speed
    if done <= 0 or task.start_time is None:
        return None
    took = task.fields.get("at", task.get_time()) - task.start_time
    return done / took if took > 0 else None


class RateColumn(ProgressColumn):
    """Units a second (the task's ``unit`` field, e.g. images), or seconds a unit when slower."""

    def render(self, task: Task) -> Text:
        rate = _rate(task)
        if rate is None:
            return Text("")
        unit = task.fields.get("unit", "")
        return Text(f"{rate:.3g} {unit}/s" if rate >= 1 else f"{1 / rate:.3g} s/{unit.rstrip('s')}")


class EtaColumn(ProgressColumn):
    """Time left at the rate so far, from the first unit done."""

    def render(self, task: Task) -> Text:
        rate = _rate(task)
        if rate is None or task.total is None or task.finished:
            return Text("-:--:--" if not task.finished else "", style="progress.remaining")
        left = int((task.total - task.completed) / rate)
        return Text(f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}", style="progress.remaining")


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress]:
    """A rich progress bar on stderr (disabled when not interactive)."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
               TimeElapsedColumn(), EtaColumn()]
    with Progress(*columns, console=err_console, disable=not enabled, transient=False) as bar:
        yield bar
