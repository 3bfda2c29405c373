"""The srtool Typer application: wires every command module together."""

from __future__ import annotations

import typer

from sr_cli import __version__
from sr_cli.cli import bench, compare, distill, models, train, upscale, usage, video

app = typer.Typer(
    name="srtool",
    cls=usage.OneLineErrors,
    help="Super-resolution for images and video: upscale, video, compare, bench, train, distill, models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"srtool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Super-resolution for images and video."""


for _command in (upscale, video, compare, bench, train, distill, models):
    _command.register(app)
usage.register(app)
