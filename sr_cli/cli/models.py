"""``srtool models``: the registry and the weights catalogue as tables or JSON; ``fetch`` and ``add`` fill the cache."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from sr_cli import catalogue
from sr_cli.cli.common import (
    err_console,
    interactive,
    out_console,
    print_json,
    run_command,
)
from sr_cli.errors import WeightsError

if TYPE_CHECKING:
    from sr_cli.modelspec import ModelSpec


PARAM_TABLE = Path(__file__).resolve().parents[1] / "data" / "params.json"


@functools.lru_cache(maxsize=1)
def _known_counts() -> dict[str, int]:
    return json.loads(PARAM_TABLE.read_text()) if PARAM_TABLE.is_file() else {}


def _key(name: str, scale: int, options: dict[str, Any]) -> str:
    return f"{name} x{scale} {json.dumps(options, sort_keys=True)}"


def _build_count(spec: ModelSpec, scale: int, **options: Any) -> int:
    """Parameters of the network, built on the meta device: shapes only, no memory, no initialisation work."""
    import torch

    with torch.device("meta"):
        return sum(p.numel() for p in spec.build(scale, **options).parameters())


def _count(spec: ModelSpec, scale: int, **options: Any) -> int:
    """Parameters of the network: from ``data/params.json`` (``param_table``, tested equal to building each
    network), else built on the meta device (some 0.9 s for the whole registry: the listing would wait on it)."""
    known = _known_counts().get(_key(spec.name, scale, options))
    return known if known is not None else _build_count(spec, scale, **options)


def param_table() -> dict[str, int]:
    """Every parameter count ``srtool models`` shows, built: each learned registry model at each scale with its
    default options and with the options of each shipped file (``python benchmarks/zoo.py params`` writes it)."""
    from sr_cli.registry import MODELS, shipped_weights

    table = {}
    for spec in MODELS.values():
        if not spec.learned:
            continue
        for scale in spec.scales:
            table[_key(spec.name, scale, {})] = _build_count(spec, scale)
            path = shipped_weights(spec, scale)
            if path.is_file() and (options := _options(path)):
                table[_key(spec.name, scale, options)] = _build_count(spec, scale, **options)
    return table


def _options(path: Path) -> dict[str, Any]:
    """A shipped file's network options ({} when unreadable: using it then says what is wrong)."""
    from sr_cli.metadata import read_metadata

    try:
        return read_metadata(path).get("options") or {}
    except WeightsError:
        return {}


def describe(spec: ModelSpec) -> dict[str, Any]:
    """One registry entry as plain data: ``params`` of the registry's (the paper's) network, ``weights_params``
    of the network each shipped file holds (its own options: csd ships a smaller student)."""
    from sr_cli.registry import shipped_weights

    params = {s: _count(spec, s) for s in spec.scales} if spec.learned else {}
    shipped = {s: _options(path) for s in spec.scales
               if spec.learned and (path := shipped_weights(spec, s)).is_file()}
    return {
        "name": spec.name,
        "summary": spec.summary,
        "scales": list(spec.scales),
        "space": spec.space,
        "overlap": {str(s): spec.overlap(s) for s in spec.scales},
        "learned": spec.learned,
        "params": params,
        "paper_params": spec.paper_params,
        "weights_params": {s: _count(spec, s, **opts) if opts else params[s] for s, opts in shipped.items()},
        "weights": {s: not spec.learned or s in shipped for s in spec.scales},
        "discriminator": spec.discriminator is not None,
    }


def catalogue_row(entry: catalogue.Entry) -> dict[str, Any]:
    """One catalogue entry as plain data (``set5_psnr``: the paper's, at the entry's largest scale)."""
    set5 = entry.published.get("set5", {})
    return {"name": entry.name, "architecture": entry.architecture, "scales": list(entry.scales), "size": entry.size,
            "licence": entry.licence, "source": entry.source, "cached": entry.cached,
            "set5_psnr": set5.get(f"x{max(entry.scales)}"), "url": entry.url, "sha256": entry.sha256}


models_app = typer.Typer(help="The registry and the catalogue of published weights; fetch or add those.",
                         invoke_without_command=True, no_args_is_help=False)


@models_app.callback()
def models(ctx: typer.Context,
           json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False) -> None:
    """List every model (scales, colour space, overlap, parameters of the shipped network where weights ship,
    which scales have shipped weights) and every catalogue entry of published weights (`-m NAME` runs one)."""
    if ctx.invoked_subcommand is not None:
        return

    def body() -> None:
        from sr_cli.registry import (
            MODELS,  # here, not at the top: --help never loads torch
        )

        rows = [describe(spec) for spec in MODELS.values()]
        published = [catalogue_row(e) for e in catalogue.catalogue().values()]
        if json_out:
            print_json({"registry": rows, "catalogue": published})
            return
        table = Table(title="srtool models", caption="params: of the shipped network where weights ship, else of "
                      "the registry's (the paper's)")
        for col in ("model", "scales (* = weights)", "space", "overlap", "params", "description"):
            table.add_column(col)
        for r in rows:
            scales = " ".join(f"x{s}{'*' if r['weights'][s] else ''}" for s in r["scales"])
            count = max((r["weights_params"] or r["params"] or {0: 0}).values())
            params = "-" if not count else f"{count / 1e6:.3g}M" if count >= 1e5 else f"{count:,}"
            table.add_row(r["name"], scales, r["space"], "/".join(map(str, r["overlap"].values())), params, r["summary"])
        out_console.print(table)
        table = Table(title="published weights (srtool upscale -m NAME fetches on first use; srtool models fetch NAME)",
                      caption=f"cache: {catalogue.cache_dir()}; Set5 PSNR: the paper's, not measured here")
        for col in ("name", "runs as", "scale", "size", "licence", "cached", "Set5 PSNR"):
            table.add_column(col, no_wrap=col == "name")
        for r in published:
            size = f"{r['size'] / 2**20:.1f} MiB" if r["size"] else "?"
            table.add_row(r["name"], r["architecture"], "/".join(f"x{s}" for s in r["scales"]), size, r["licence"],
                          "yes" if r["cached"] else "no", f"{r['set5_psnr']:.2f}" if r["set5_psnr"] else "-")
        out_console.print(table)

    run_command(body)


@models_app.command("fetch")
def fetch(names: Annotated[list[str], typer.Argument(help="Catalogue names (srtool models lists them).")]) -> None:
    """Download published weights into the cache (resumable; checked by sha256 before they are ever used)."""
    def body() -> None:
        for name in names:
            entry = catalogue.lookup(name)
            path = catalogue.ensure(entry, quiet=not interactive())
            err_console.print(f"{entry.name}: {path}", soft_wrap=True)

    run_command(body)


@models_app.command("add")
def add(name: Annotated[str, typer.Argument(help="Catalogue name.")],
        file: Annotated[Path, typer.Argument(help="A copy of its file, carried over by hand.")]) -> None:
    """Register a file brought to an offline machine: checked against the catalogue's sha256, copied into the
    cache."""
    def body() -> None:
        entry = catalogue.lookup(name)
        err_console.print(f"{entry.name}: {catalogue.register(entry, file)}", soft_wrap=True)

    run_command(body)


def register(app: typer.Typer) -> None:
    """Add ``models`` (a group: the listing, ``fetch``, ``add``) to the app."""
    app.add_typer(models_app, name="models")
