"""Command-line options made from a config dataclass (``TrainConfig``, ``DistillConfig``): each field made with
:func:`sr_cli.train.config.setting` is an option of its flags, help and type, default None (not given, so that
``--resume`` sees what was given), and :func:`given_settings` turns what was given back into settings."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Annotated, Any

import typer


def _options(config_cls: type, omit: Collection[str]) -> list[dataclasses.Field]:
    """The fields of ``config_cls`` that are command-line options, less ``omit``."""
    return [f for f in dataclasses.fields(config_cls) if "help" in f.metadata and f.name not in omit]


def _shown(default: Any) -> Any:
    """A default as its help shows it (a list as the comma-separated value the option takes)."""
    return ",".join(map(str, default)) if isinstance(default, list) else default


def _parameter(f: dataclasses.Field, hint: Any) -> inspect.Parameter:
    """The typer parameter of one setting field (``hint``: its type)."""
    meta = f.metadata
    kind = meta["cli"] or next((a for a in typing.get_args(hint) if a is not type(None)), hint)  # X of X | None
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    option = typer.Option(*meta["flags"], help=meta["help"].format(default=_shown(default)), show_default=False)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[kind | None, option])


def with_options(config_cls: type, omit: Collection[str] = ()) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a command whose ``**settings`` takes ``config_cls``'s options (all but ``omit``): typer sees them,
    in field order, before the command's own parameters."""
    hints = typing.get_type_hints(config_cls)

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(command, eval_str=True).parameters.values()
               if p.kind is not inspect.Parameter.VAR_KEYWORD]
        options = [_parameter(f, hints[f.name]) for f in _options(config_cls, omit)]
        command.__signature__ = inspect.Signature([*options, *own])
        return command

    return decorate


def given_settings(config_cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line (None = not given), each read by its field's ``parse``; paths as
    strings."""
    given = {}
    for f in _options(config_cls, ()):
        value = values.get(f.name)
        if value is None:
            continue
        parse = f.metadata["parse"]
        if parse is not None:
            given[f.name] = parse(value)
        elif isinstance(value, (list, tuple)):
            given[f.name] = [str(v) if isinstance(v, Path) else v for v in value]
        else:
            given[f.name] = str(value) if isinstance(value, Path) else value
    return given
