"""Usage errors as one line: the app's group class, and ``srtool help [COMMAND]...``.

Click's usage errors (unknown option or command, bad value, missing or extra argument), raised by the app, a
group under it or any command, print as ``srtool: error: <Click's message> (see '<command> --help')`` and exit 2,
as every other srtool error does (``common.error``). Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from sr_cli.cli.common import error

try:  # recent Typer carries its own copy of Click
    from typer._click import Context
    from typer._click import exceptions as click_errors
except ImportError:  # earlier Typer runs on Click itself
    from click import Context
    from click import exceptions as click_errors

_HELP_SHOWN = getattr(click_errors, "NoArgsIsHelpError", ())  # `srtool` alone: the help (Click < 8.2 raises none)
_WORDS = "srtool.words"  # ctx.meta key: the command line's words, as typed


class OneLineErrors(TyperGroup):
    """The app's group: a Click error anywhere below it is one ``srtool: error:`` line and Click's exit code (2
    for usage errors)."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        ctx.meta[_WORDS] = tuple(args)
        return super().parse_args(ctx, args)

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        with _one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        with _one_line():
            return super().invoke(ctx)


@contextmanager
def _one_line() -> Iterator[None]:
    """Turn a Click error into its one line and ``typer.Exit`` with its code."""
    try:
        yield
    except _HELP_SHOWN:
        raise
    except click_errors.ClickException as err:
        error(message(err))
        raise typer.Exit(err.exit_code) from None


def message(err: click_errors.ClickException) -> str:
    """Click's message and where to look next: the command's help, or ``--`` before a file name that starts with
    a dash (``-x.png`` reads as options)."""
    text = err.format_message()
    ctx: Context | None = getattr(err, "ctx", None)
    if ctx is None:
        return text
    if isinstance(err, click_errors.NoSuchOption) and (name := _dash_file(err.option_name, ctx)):
        return f"{text} (file names that start with '-' go after --, as in '{ctx.command_path} -- {name}')"
    return f"{text} (see '{ctx.command_path} --help')"


def _dash_file(option: str, ctx: Context) -> str | None:
    """The word behind the unknown ``option`` when ``ctx``'s command takes arguments and the word looks like a file
    name: it exists, holds a '/', or ends in an extension such as .png (not ``--opt=value``)."""
    if not any(param.param_type_name == "argument" for param in ctx.command.params):
        return None
    for word in ctx.meta.get(_WORDS, ()):
        if word.startswith(option) and "=" not in word and (
                "/" in word or Path(word).suffix[1:].isalpha() or Path(word).exists()):
            return word
    return None


def help_command(ctx: typer.Context, words: Annotated[list[str] | None, typer.Argument(
        metavar="[COMMAND]...", help="A command, or a group's command: srtool help models fetch.",
        show_default=False)] = None) -> None:
    """Show the help of srtool, or of a command: the same as --help."""
    target = ctx.find_root()
    for word in words or []:
        target = _sub_context(target, word)
    typer.echo(target.get_help(), color=target.color)


def _sub_context(parent: Context, word: str) -> Context:
    """The context of ``parent``'s command ``word`` (an unknown one is Typer's "No such command", with its guess)."""
    group = parent.command
    if not isinstance(group, TyperGroup):
        parent.fail(f"No such command {word!r}: {parent.command_path} has no commands.")
    name, command, _ = group.resolve_command(parent, [word])
    return command.context_class(command, info_name=name, parent=parent)


def register(app: typer.Typer) -> None:
    """Add ``help`` (hidden: `srtool --help` lists the commands that do the work) to the app."""
    app.command("help", hidden=True)(help_command)
