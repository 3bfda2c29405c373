"""The srtool Typer application: wires every command module together."""

from __future__ import annotations

import importlib

import typer

from sr_cli import __version__

app = typer.Typer(
    name="srtool",
    help="Super-resolution for images and video: upscale, bench, train, distill.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

COMMANDS = ("upscale", "video", "bench", "train", "distill", "models")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"srtool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Super-resolution for images and video."""


for _name in COMMANDS:
    try:
        _module = importlib.import_module(f"sr_cli.cli.{_name}")
    except ModuleNotFoundError as _err:
        if _err.name != f"sr_cli.cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
