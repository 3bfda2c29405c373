"""Usage errors are one line on stderr, ``srtool: error: <message>``, and exit 2: Click's own (unknown option or
command, bad value, missing or extra argument) for every command, srtool's option checks, unknown model names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.registry import MODELS

runner = CliRunner()
REGISTRY = ", ".join(MODELS)
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("srtool"))


def srtool(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_usage_error(args: tuple[str, ...], line: str) -> None:
    """``srtool *args`` prints exactly ``line`` on stderr and exits 2."""
    code, _, err = srtool(*args)
    assert (code, err) == (2, line + "\n")


def _png(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("command", ["upscale", "video", "bench", "train", "distill", "models", "models fetch",
                                     "models add", "help", ""])
def test_an_unknown_option_of_any_command(command: str) -> None:
    path = f"srtool {command}".strip()
    assert_usage_error((*command.split(), "--zzzz"), f"srtool: error: No such option: --zzzz (see '{path} --help')")


@pytest.mark.parametrize(("args", "line"), [
    (("models", "--jsn"), "No such option: --jsn (Possible options: --json) (see 'srtool models --help')"),
    (("upscale", "a.png", "-s", "x"), ("Invalid value for '--scale' / '-s': Input should be a valid integer, unable "
                                       "to parse string as an integer (see 'srtool upscale --help')")),
    (("upscale", "a.png", "--batch-size", "0"),
     "Invalid value for '--batch-size': Input should be greater than or equal to 1 (see 'srtool upscale --help')"),
    (("train", "--steps", "x"), ("Invalid value for '--steps': Input should be a valid integer, unable to parse "
                                 "string as an integer (see 'srtool train --help')")),
    (("video",), "Missing argument 'INPUT'. (see 'srtool video --help')"),
    (("models", "fetch"), "Missing argument 'names'. (see 'srtool models fetch --help')"),
    (("video", "a.mp4", "b.mp4"), "Got unexpected extra argument(s) (b.mp4) (see 'srtool video --help')"),
    (("models", "add", "a", "b", "c"), "Got unexpected extra argument(s) (c) (see 'srtool models add --help')"),
    (("upscal",), "No such command 'upscal'. Did you mean 'upscale'? (see 'srtool --help')"),
    (("models", "fetchh"), "No such command 'fetchh'. Did you mean 'fetch'? (see 'srtool models --help')"),
])
def test_click_usage_errors_are_one_line(args: tuple[str, ...], line: str) -> None:
    assert_usage_error(args, f"srtool: error: {line}")


def test_a_file_name_that_starts_with_a_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``-x.png`` reads as options: the error says to put ``--`` before it, and that works."""
    monkeypatch.chdir(tmp_path)
    _png(tmp_path / "-x.png")
    assert_usage_error(("upscale", "-x.png"), "srtool: error: No such option: -x (file names that start with '-' "
                                              "go after --, as in 'srtool upscale -- -x.png')")
    assert_usage_error(("-x.png",), "srtool: error: No such option: -x (see 'srtool --help')")  # no files there
    code, _, err = srtool("upscale", "-m", "bicubic", "-s", "2", "--", "-x.png")
    assert code == 0, err
    assert Image.open(tmp_path / "-x_bicubic_x2.png").size == (22, 18)


def test_option_values_srtool_checks_exit_2(tmp_path: Path) -> None:
    src = str(_png(tmp_path / "a.png"))
    for args, line in [(("--tile", "big"), "--tile must be auto, 0 or a positive integer, got 'big'"),
                       (("--tile", "-3"), "--tile must be auto, 0 or a positive integer, got '-3'"),
                       (("--max-memory", "lots"), "--max-memory takes a size like 1.5G, 800M or 2048K, got 'lots'"),
                       (("-m", "csd", "--width", "2"), "--width is a fraction in (0, 1], got 2")]:
        assert_usage_error(("upscale", src, "-m", "bicubic", "-s", "2", *args), f"srtool: error: {line}")
    assert not (tmp_path / "a_bicubic_x2.png").exists()


def test_unknown_model_names_say_the_closest(tmp_path: Path) -> None:
    src = str(_png(tmp_path / "a.png"))
    published = ", or a published model (srtool models lists them)"
    assert_usage_error(("upscale", src, "-m", "edsrr"), "srtool: error: unknown model 'edsrr' (did you mean 'edsr'?): "
                                                        f"choose one of {REGISTRY}{published}")
    assert_usage_error(("upscale", src, "-m", "RealESRGAN_x4plu"), "srtool: error: unknown model 'RealESRGAN_x4plu' "
                       f"(did you mean 'realesrgan-x4plus'?): choose one of {REGISTRY}{published}")
    assert_usage_error(("upscale", src, "-m", "qqq"), f"srtool: error: unknown model 'qqq': choose one of {REGISTRY}"
                                                      f"{published}")
    assert_usage_error(("train", "-m", "espnc"),
                       f"srtool: error: unknown model 'espnc' (did you mean 'espcn'?): choose one of {REGISTRY}")
    code, _, err = srtool("models", "fetch", "realesrgan-x4plu")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("srtool: error: unknown published model 'realesrgan-x4plu' (did you mean "
                          "'realesrgan-x4plus'?): choose one of edsr-baseline-x2, ")


@pytest.mark.parametrize("words", [(), ("upscale",), ("models",), ("models", "fetch")])
def test_help_command_is_the_help(words: tuple[str, ...]) -> None:
    code, out, err = srtool("help", *words)
    assert (code, err) == (0, "") and out == srtool(*words, "--help")[1]
    assert f"Usage: {' '.join(('srtool', *words))} [OPTIONS]" in out


def test_help_of_an_unknown_command() -> None:
    assert_usage_error(("help", "upscal"), "srtool: error: No such command 'upscal'. Did you mean 'upscale'? "
                                           "(see 'srtool --help')")
    assert_usage_error(("help", "upscale", "tiles"), "srtool: error: No such command 'tiles': srtool upscale has no "
                                                     "commands. (see 'srtool upscale --help')")


def test_no_arguments_still_show_the_help() -> None:
    code, out, err = srtool()
    assert (code, err) == (2, "") and "Usage: srtool [OPTIONS] COMMAND [ARGS]..." in out


# Runs srtool's main() in a fresh interpreter, then adds a last stderr line naming the heavy modules it imported.
PROBE = """
import sys
from sr_cli.__main__ import main
sys.argv[0] = "srtool"
try:
    main()
except SystemExit as done:
    code = done.code
print("loaded:", sorted(m for m in ("torch", "numpy", "PIL") if m in sys.modules), "exit:", code, file=sys.stderr)
"""


@pytest.mark.parametrize(("args", "line"), [
    (("upscale", "--zzzz", "x.png"), "No such option: --zzzz (see 'srtool upscale --help')"),
    (("upscale", "-x.png"), ("No such option: -x (file names that start with '-' go after --, as in "
                             "'srtool upscale -- -x.png')")),
    (("upscal",), "No such command 'upscal'. Did you mean 'upscale'? (see 'srtool --help')"),
    (("models", "fetch"), "Missing argument 'names'. (see 'srtool models fetch --help')"),
])
def test_usage_errors_load_no_torch(args: tuple[str, ...], line: str) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.stderr.splitlines() == [f"srtool: error: {line}", "loaded: [] exit: 2"]


def test_help_command_loads_no_torch() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, "help", "models", "fetch"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.stderr == "loaded: [] exit: 0\n" and "srtool models fetch" in done.stdout


@pytest.mark.parametrize("command", [[CONSOLE_SCRIPT], [sys.executable, "-m", "sr_cli"]], ids=["srtool", "python -m"])
def test_the_installed_commands(command: list[str]) -> None:
    """The console script and ``python -m sr_cli`` (whose program name Click shows as such)."""
    prog = "srtool" if command == [CONSOLE_SCRIPT] else "python -m sr_cli"
    for args, line in [(("upscale", "--zzzz"), f"No such option: --zzzz (see '{prog} upscale --help')"),
                       (("upscal",), f"No such command 'upscal'. Did you mean 'upscale'? (see '{prog} --help')"),
                       (("upscale", "a.png", "-s", "x"), ("Invalid value for '--scale' / '-s': Input should be a "
                        f"valid integer, unable to parse string as an integer (see '{prog} upscale --help')"))]:
        done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, check=False)
        assert (done.returncode, done.stderr) == (2, f"srtool: error: {line}\n")
