"""``srtool models``: the registry as a table or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from sr_cli.cli.common import out_console, print_json, run_command
from sr_cli.errors import WeightsError
from sr_cli.registry import MODELS, ModelSpec, shipped_weights
from sr_cli.weights import read_metadata


def _count(spec: ModelSpec, scale: int, **options: Any) -> int:
    return sum(p.numel() for p in spec.build(scale, **options).parameters())


def _options(path: Path) -> dict[str, Any]:
    """A shipped file's network options ({} when unreadable: using it then says what is wrong)."""
    try:
        return read_metadata(path).get("options") or {}
    except WeightsError:
        return {}


def describe(spec: ModelSpec) -> dict[str, Any]:
    """One registry entry as plain data: ``params`` of the registry's (the paper's) network, ``weights_params``
    of the network each shipped file holds (its own options: csd ships a smaller student)."""
    params = {s: _count(spec, s) for s in spec.scales} if spec.learned else {}
    shipped = {s: _options(path) for s in spec.scales
               if spec.learned and (path := shipped_weights(spec, s)).is_file()}
    return {
        "name": spec.name,
        "summary": spec.summary,
        "scales": list(spec.scales),
        "space": spec.space,
        "overlap": spec.overlap(),
        "learned": spec.learned,
        "params": params,
        "paper_params": spec.paper_params,
        "weights_params": {s: _count(spec, s, **opts) if opts else params[s] for s, opts in shipped.items()},
        "weights": {s: not spec.learned or s in shipped for s in spec.scales},
        "discriminator": spec.discriminator is not None,
    }


def models(json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """List every model: scales, colour space, overlap, parameters (of the shipped network where weights ship),
    and which scales have shipped weights."""
    def body() -> None:
        rows = [describe(spec) for spec in MODELS.values()]
        if json_out:
            print_json(rows)
            return
        table = Table(title="srtool models", caption="params: of the shipped network where weights ship, else of "
                      "the registry's (the paper's)")
        for col in ("model", "scales (* = weights)", "space", "overlap", "params", "description"):
            table.add_column(col)
        for r in rows:
            scales = " ".join(f"x{s}{'*' if r['weights'][s] else ''}" for s in r["scales"])
            count = max((r["weights_params"] or r["params"] or {0: 0}).values())
            params = "-" if not count else f"{count / 1e6:.3g}M" if count >= 1e5 else f"{count:,}"
            table.add_row(r["name"], scales, r["space"], str(r["overlap"]), params, r["summary"])
        out_console.print(table)

    run_command(body)


def register(app: typer.Typer) -> None:
    """Add ``models`` to the app."""
    app.command("models")(models)
