"""Photo collections (#19): the tree kept under -o, any output size, output formats and names, the summary line,
and progress from the first block."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.progress import Progress
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.cli.common import EtaColumn, RateColumn
from sr_cli.pipeline import Upscaler
from sr_cli.sizing import resize_picture

runner = CliRunner()
X2 = ("-m", "bicubic", "-s", "2")


def srtool(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["upscale", *args])
    return result.exit_code, result.stdout, result.stderr


def _picture(path: Path, w: int = 23, h: int = 17, mode: str = "RGB", seed: int = 0) -> Path:
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(path)
    return path


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_the_tree_is_mirrored_and_same_named_files_do_not_collide(tmp_path: Path) -> None:
    for sub in ("a", "b", "b/c"):
        _picture(tmp_path / "in" / sub / "x.png", seed=len(sub))
    code, _, err = srtool(*X2, str(tmp_path / "in"), "-r", "-o", str(tmp_path / "out"))
    assert code == 0, err
    assert _files(tmp_path / "out") == ["a/x_bicubic_x2.png", "b/c/x_bicubic_x2.png", "b/x_bicubic_x2.png"]
    for sub in ("a", "b", "b/c"):  # each output is its own input's
        big = np.asarray(Image.open(tmp_path / "out" / sub / "x_bicubic_x2.png"))
        assert np.array_equal(big, Upscaler("bicubic", 2).upscale_uint8(np.asarray(Image.open(tmp_path / "in" / sub / "x.png"))))
    code, _, err = srtool(*X2, str(tmp_path / "in" / "**" / "x.png"), "-r", "-o", str(tmp_path / "glob"))
    assert code == 0, err  # a glob keeps the tree below its fixed part
    assert _files(tmp_path / "glob") == ["a/x_bicubic_x2.png", "b/c/x_bicubic_x2.png", "b/x_bicubic_x2.png"]


def test_two_inputs_bound_for_one_file_are_refused_before_anything_runs(tmp_path: Path) -> None:
    a, b = _picture(tmp_path / "a" / "x.png"), _picture(tmp_path / "b" / "x.png")
    code, _, err = srtool(*X2, str(a), str(b), "-o", str(tmp_path / "out"))
    assert code == 2 and err == (f"srtool: error: {a} and {b} would both be written to {tmp_path / 'out' / 'x_bicubic_x2.png'} "
                                 "(name the output folder with -o to keep the tree, or set --suffix)\n")
    assert not (tmp_path / "out").exists()
    code, _, err = srtool(*X2, str(a), "--suffix", "")
    assert code == 2 and err == f"srtool: error: {a}: its output would replace it (choose another --suffix, --format or -o)\n"


SIZES = [  # options, output size, model scale, resized from (23 x 17 input)
    (("--outscale", "1.5"), (35, 26), 2, (46, 34)),
    (("--out-width", "50"), (50, 37), 3, (69, 51)),
    (("--out-height", "40"), (54, 40), 3, (69, 51)),
    (("--out-width", "50", "--out-height", "30"), (41, 30), 2, (46, 34)),
    (("--min-side", "40"), (54, 40), 3, (69, 51)),
    (("--outscale", "5"), (115, 85), 4, (92, 68)),
    (("--outscale", "3"), (69, 51), 3, None),
    (("--outscale", "1.5", "-s", "4"), (35, 26), 4, (92, 68)),
]


@pytest.mark.parametrize(("options", "size", "scale", "resized"), SIZES)
def test_any_output_size_on_odd_sizes(tmp_path: Path, options: tuple[str, ...], size: tuple[int, int], scale: int,
                                      resized: tuple[int, int] | None) -> None:
    """The model runs at the smallest scale that reaches the size (or -s), then a Lanczos resize; --json says so."""
    src = _picture(tmp_path / "a.png", mode="RGBA")
    code, out, err = srtool("-m", "espcn", str(src), *options, "--json", "-o", str(tmp_path / "out") + "/")
    assert code == 0, err
    [entry] = json.loads(out)["files"]
    assert (entry["size"], entry["model_scale"]) == (list(size), scale)
    assert entry["resized"] == (None if resized is None else {"from": list(resized), "filter": "lanczos"})
    written = np.asarray(Image.open(entry["output"]))
    model = Upscaler("espcn", scale).upscale_uint8(np.asarray(Image.open(src)))
    expected = model if resized is None else resize_picture(model, 8, size)
    assert written.shape == (size[1], size[0], 4) and np.array_equal(written, expected)


def test_sixteen_bit_is_resized_in_sixteen_bits(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 65536, (17, 23), dtype=np.uint16)
    src = tmp_path / "g16.png"
    Image.fromarray(pixels).save(src)  # 16-bit gray
    code, out, err = srtool(*X2, str(src), "--outscale", "1.5", "--json", "-o", str(tmp_path / "out.png"))
    assert code == 0, err
    written = np.asarray(Image.open(tmp_path / "out.png"))
    expected = resize_picture(Upscaler("bicubic", 2).upscale_picture(pixels[..., None], 16), 16, (35, 26))[..., 0]
    assert written.dtype == np.uint16 and np.array_equal(written, expected)


@pytest.mark.parametrize(("options", "message"), [
    (("--outscale", "1.5", "--min-side", "9"), "--outscale and --min-side exclude each other: give one output size"),
    (("--outscale", "0"), "--outscale must be a number above 0, got 0.0"),
    (("--format", "gif"), "--format gif: choose one of png, jpg, webp, tif, bmp"),
])
def test_size_and_format_mistakes_are_usage_errors(tmp_path: Path, options: tuple[str, ...], message: str) -> None:
    code, _, err = srtool(*X2, str(_picture(tmp_path / "a.png")), *options)
    assert (code, err) == (2, f"srtool: error: {message}\n")


def test_format_quality_and_suffix(tmp_path: Path) -> None:
    src = _picture(tmp_path / "in" / "a.png", 40, 30)
    for quality in ("60", "95"):
        code, _, err = srtool(*X2, str(src), "--format", "jpg", "--quality", quality, "--suffix", f"_q{quality}",
                              "-o", str(tmp_path / "out"))
        assert code == 0, err
    big = Upscaler("bicubic", 2).upscale_uint8(np.asarray(Image.open(src)))
    for quality in (60, 95):
        written = Image.open(tmp_path / "out" / f"a_q{quality}.jpg")
        reference = io.BytesIO()
        Image.fromarray(big).save(reference, format="JPEG", quality=quality, subsampling=0)
        assert written.format == "JPEG" and written.quantization == Image.open(reference).quantization
        assert written.layer == [(1, 1, 1, 0), (2, 1, 1, 1), (3, 1, 1, 1)]  # 4:4:4 (no chroma subsampling)
    code, _, err = srtool(*X2, str(src), "-f", "webp", "-o", str(tmp_path / "out"))
    assert code == 0 and Image.open(tmp_path / "out" / "a_bicubic_x2.webp").format == "WEBP"
    code, _, err = srtool(*X2, str(src), "-f", "tiff", "-o", str(tmp_path / "out" / "b.png"))
    assert (code, err) == (2, f"srtool: error: -o {tmp_path / 'out' / 'b.png'} and --format tif disagree: give one of them\n")


def test_one_summary_line_on_stderr_when_stdout_is_not_a_terminal(tmp_path: Path) -> None:
    good = [_picture(tmp_path / "in" / f"{n}.png") for n in ("a", "b")]
    (tmp_path / "in" / "bad.png").write_bytes(b"not a picture")
    code, out, err = srtool(*X2, str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert code == 3 and out == ""
    assert err.splitlines()[-1] == f"srtool: upscaled 2 of 3 images with bicubic x2 into {tmp_path / 'out'} (1 error)"
    code, out, err = srtool(*X2, str(good[0]), "-o", str(tmp_path / "one.png"))
    assert (code, out, err) == (0, "", f"srtool: wrote {tmp_path / 'one.png'} (bicubic x2)\n")
    code, _, err = srtool(*X2, str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--skip-existing", "--outscale", "3")
    assert err.splitlines()[-1] == f"srtool: upscaled 2 of 3 images with bicubic x3 into {tmp_path / 'out'} (1 error)"


def test_progress_knows_the_block_count_from_the_start(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    calls: list[tuple[int, int]] = []
    Upscaler("espcn", 2, tile=32).upscale_picture(pixels, 8, lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)  # 2 x 3 blocks of 32: the total before the first is done


def test_rate_and_eta_from_the_first_unit() -> None:
    now = [100.0]
    bar = Progress(get_time=lambda: now[0])
    task_id = bar.add_task("x.png", total=20, unit="blocks")
    task = bar.tasks[0]
    assert (str(RateColumn().render(task)), str(EtaColumn().render(task))) == ("", "-:--:--")
    now[0] = 107.5
    bar.update(task_id, completed=1, at=bar.get_time())
    now[0] = 130.0  # later renders keep the rate at the last block done
    assert (str(RateColumn().render(task)), str(EtaColumn().render(task))) == ("7.5 s/block", "0:02:22")
    bar.update(task_id, completed=20, at=110.0)
    now[0] = 151.0
    assert str(RateColumn().render(task)) == "2 blocks/s"
    resumed = bar.add_task("clip.mp4", total=100, completed=40, base=40, unit="frames")  # 40 reused frames
    bar.update(resumed, completed=50, at=now[0] + 5)
    assert (str(RateColumn().render(bar.tasks[1])), str(EtaColumn().render(bar.tasks[1]))) == ("2 frames/s", "0:00:25")


def test_a_newline_in_a_file_name_keeps_every_message_one_line(tmp_path: Path) -> None:
    src = _picture(tmp_path / "a\nb.png")
    code, _, err = srtool(*X2, str(src), "-o", str(tmp_path / "out") + "/")
    assert (code, err) == (0, f"srtool: wrote {tmp_path}/out/a\\nb_bicubic_x2.png (bicubic x2)\n")
    (tmp_path / "c\n.png").write_bytes(b"not a picture")
    code, _, err = srtool(*X2, str(tmp_path / "c\n.png"))
    assert code == 3 and err == f"srtool: error: {tmp_path}/c\\n.png: not a PNG, JPEG, WebP, BMP or TIFF image\n"
