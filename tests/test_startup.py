"""Instant start: help, the version and usage errors are answered without importing torch (or numpy, PIL), and the
listing (``srtool models``) without torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from sr_cli.cli import models as models_cli
from sr_cli.registry import MODELS

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


def test_a_command_that_runs_does_load_torch(tmp_path: Path) -> None:
    """The probe can see torch being loaded (the negative control of the tests above)."""
    Image.new("RGB", (4, 4)).save(tmp_path / "in.png")
    args = ("upscale", str(tmp_path / "in.png"), "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "out.png"))
    assert _run(*args)[1] == "loaded: ['PIL', 'numpy', 'torch'] exit: 0"


@pytest.mark.parametrize("json_out", [False, True])
def test_the_listing_loads_no_torch(json_out: bool) -> None:
    """``srtool models`` takes parameter counts from data/params.json and overlaps from the families' radius formulas:
    no network is built and torch is not imported (numpy is: safetensors reads the shipped files' metadata)."""
    out, last = _run("models", *(["--json"] if json_out else []))
    assert last == "loaded: ['numpy'] exit: 0"
    if json_out:
        edsr = next(row for row in json.loads(out)["registry"] if row["name"] == "edsr")
        assert edsr["params"]["4"] == 1_517_571 and edsr["overlap"] == {"2": 36, "3": 36, "4": 36}
    else:
        assert re.search(r"^│ edsr +│ x2\* x3\* x4\* +│ rgb +│ 36/36/36 +│ 1\.55M +│", out, re.MULTILINE), out


def test_the_listing_is_what_building_the_networks_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """The torch-free ``srtool models --json`` lists what ``describe`` gives with every network built (its parameters
    counted on the meta device instead of read from the table)."""
    monkeypatch.setattr(models_cli, "_known_counts", dict)  # no table: every count built
    built = json.loads(json.dumps([models_cli.describe(spec) for spec in MODELS.values()]))
    assert json.loads(_run("models", "--json")[0])["registry"] == built


def test_the_parameter_table_is_what_building_gives() -> None:
    """``srtool models`` reads its counts from data/params.json instead of building 33 networks: the table must be
    exactly what building them gives (after shipping weights of new options: python benchmarks/zoo.py params)."""
    assert json.loads(models_cli.PARAM_TABLE.read_text()) == models_cli.param_table()
