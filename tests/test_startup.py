"""Instant start: help, the version and usage errors are answered without importing torch (or numpy, PIL)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Runs the CLI in a fresh interpreter, then prints which heavy modules the run imported.
PROBE = """
import sys
from sr_cli.cli.app import app
try:
    app(sys.argv[1:], prog_name="srtool")
except SystemExit as done:
    code = done.code
print("loaded:", sorted(m for m in ("torch", "numpy", "PIL") if m in sys.modules), "exit:", code, file=sys.stderr)
"""


def _run(*args: str) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    return done.stdout, done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("upscale", "--help"), ("video", "--help"),
                                  ("bench", "--help"), ("train", "--help"), ("distill", "--help"),
                                  ("models", "--help"), ("models", "fetch", "--help")])
def test_help_and_version_load_no_torch(args: tuple[str, ...]) -> None:
    out, last = _run(*args)
    assert last == "loaded: [] exit: 0"
    assert ("srtool" in out) if args != ("--version",) else out.startswith("srtool ")


@pytest.mark.parametrize("args", [("upscale", "--no-such-option"), ("upscale", "--scale", "two"),
                                  ("train", "--steps", "x"), ("nonsense",)])
def test_usage_errors_load_no_torch(args: tuple[str, ...]) -> None:
    assert _run(*args)[1] == "loaded: [] exit: 2"


def test_a_command_that_runs_does_load_torch() -> None:
    """The probe can see torch being loaded (the negative control of the tests above)."""
    assert _run("models", "--json")[1] == "loaded: ['numpy', 'torch'] exit: 0"


def test_the_parameter_table_is_what_building_gives() -> None:
    """``srtool models`` reads its counts from data/params.json instead of building 33 networks: the table must be
    exactly what building them gives (after shipping weights of new options: python benchmarks/zoo.py params)."""
    import json  # noqa: PLC0415

    from sr_cli.cli.models import PARAM_TABLE, param_table  # noqa: PLC0415

    assert json.loads(PARAM_TABLE.read_text()) == param_table()
