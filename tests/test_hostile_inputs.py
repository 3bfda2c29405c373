"""Files that try to break a batch: malformed EXIF, pipes and devices, killed writes, exotic TIFFs, animations,
foreign weights, noisy libraries. Each is upscaled or refused in one line; the batch goes on. Every input is made
here, in tmp_path."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pickle
import pty
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import tifffile.tifffile
from PIL import ExifTags, Image
from testdata import without_summary
from typer.testing import CliRunner

from sr_cli.atomic import atomic_path
from sr_cli.cli.app import app
from sr_cli.errors import InputError
from sr_cli.images import STREAM_SLACK, read_image

runner = CliRunner()
no_imagecodecs = pytest.mark.skipif(importlib.util.find_spec("imagecodecs") is not None,
                                    reason="imagecodecs is installed: these TIFFs decode")


X2 = ("-m", "bicubic", "-s", "2")


def srtool(*args: str) -> tuple[int, str, str]:
    """``srtool upscale ARGS`` in this process."""
    result = runner.invoke(app, ["upscale", *args])
    return result.exit_code, result.stdout, without_summary(result.stderr)


def srtool_process(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """``srtool upscale ARGS`` in its own process: stderr exactly as a user sees it (no pytest capture of warnings
    and logs), and a hang fails the test instead of stalling the suite."""
    done = subprocess.run([sys.executable, "-m", "sr_cli", "upscale", *args], input=stdin, capture_output=True,
                          timeout=120, env={**os.environ, "SRTOOL_DEVICE": "cpu"})
    done.stderr = without_summary(done.stderr.decode()).encode()
    return done


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png(path: Path, h: int = 10, w: int = 12) -> Path:
    Image.fromarray(_noise(h, w)).save(path)
    return path


def _ifd0(*entries: tuple[int, int, int, bytes]) -> bytes:
    """EXIF (with its ``Exif\\0\\0`` header) holding one little-endian IFD of (tag, type, count, 4 value bytes)."""
    body = b"".join(struct.pack("<HHI", tag, kind, count) + value for tag, kind, count, value in entries)
    return b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, len(entries)) + body + struct.pack("<I", 0)


# Make "Cam" (ASCII), Orientation 6 (SHORT), and XResolution stored as the text "72" where a RATIONAL belongs.
BAD_EXIF = _ifd0((0x010F, 2, 4, b"Cam\x00"), (0x0112, 3, 1, struct.pack("<HH", 6, 0)), (0x011A, 2, 3, b"72\x00\x00"))


def _tiff(path: Path, width: int, height: int, bits: int, data: bytes, *extra: tuple[int, int, int, int]) -> Path:
    """A minimal little-endian gray TIFF, one uncompressed strip; ``extra`` tags as (tag, type, count, value)."""
    tags = sorted([(256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, bits), (259, 3, 1, 1), (262, 3, 1, 1),
                   (273, 4, 1, 0), (277, 3, 1, 1), (278, 3, 1, height), (279, 4, 1, len(data)), *extra])
    data_at = 8 + 2 + 12 * len(tags) + 4
    ifd = b"".join(struct.pack("<HHI", tag, kind, count) + struct.pack("<I", data_at if tag == 273 else value)
                   for tag, kind, count, value in tags)
    path.write_bytes(b"II*\x00" + struct.pack("<IH", 8, len(tags)) + ifd + struct.pack("<I", 0) + data)
    return path


# ---------------------------------------------------------------------------------------------------- EXIF


def test_malformed_exif_tag_is_left_out_with_one_warning_and_the_rest_kept(tmp_path: Path) -> None:
    src = tmp_path / "bad.jpg"
    Image.fromarray(_noise(60, 100)).save(src, exif=BAD_EXIF)
    code, out, err = srtool(*X2, str(src), "-o", str(tmp_path / "out.jpg"), "--json")
    assert code == 0
    note = f"{src}: malformed EXIF XResolution left out (the rest of the EXIF is kept)"
    assert err == f"srtool: warning: {note}\n"
    assert json.loads(out)["files"][0]["warnings"] == [note]
    with Image.open(tmp_path / "out.jpg") as result:
        assert result.size == (120, 200)  # orientation 6 applied: 100x60 turned upright, then x2
        exif = result.getexif()
    assert exif[ExifTags.Base.Make] == "Cam" and exif[ExifTags.Base.Orientation] == 1
    assert ExifTags.Base.XResolution not in exif


def test_a_folder_goes_on_past_malformed_exif(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.jpg", "c.jpg"):
        Image.fromarray(_noise(8, 8)).save(folder / name)
    Image.fromarray(_noise(8, 8)).save(folder / "b.jpg", exif=BAD_EXIF)
    code, _, err = srtool(*X2, str(folder), "-o", str(tmp_path / "out"))
    assert code == 0 and err.count("\n") == 1 and "b.jpg: malformed EXIF XResolution" in err
    sizes = {p.name: Image.open(p).size for p in (tmp_path / "out").iterdir()}
    assert sizes == {"a_bicubic_x2.jpg": (16, 16), "b_bicubic_x2.jpg": (16, 16), "c_bicubic_x2.jpg": (16, 16)}


def test_unparsable_exif_is_dropped_with_a_note(tmp_path: Path) -> None:
    src = tmp_path / "garbage.jpg"
    Image.fromarray(_noise(4, 4)).save(src, exif=b"Exif\x00\x00garbage!")
    picture = read_image(src)
    assert picture.exif is None and picture.pixels.shape == (4, 4, 3)
    assert picture.notes == (f"{src}: its EXIF cannot be read, so it is left out (the picture is kept)",)


# ---------------------------------------------------------------------------------------------------- pipes


def test_fifo_without_a_writer_reads_as_no_data_instead_of_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "in.png"
    os.mkfifo(fifo)
    done = srtool_process(*X2, str(fifo), "-o", str(tmp_path / "out.png"))
    assert done.returncode == 3
    assert done.stderr.decode() == f"srtool: error: {fifo}: no data came from this pipe or device\n"
    assert not (tmp_path / "out.png").exists()


def test_fifo_is_read_once_and_decoded(tmp_path: Path) -> None:
    fifo = tmp_path / "in.png"
    os.mkfifo(fifo)
    data = (_png(tmp_path / "src.png")).read_bytes()
    keep = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader keeps the pipe's bytes once the writer is gone
    try:
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        assert os.write(writer, data) == len(data)
        os.close(writer)
        code, _, err = srtool(*X2, str(fifo), "-o", str(tmp_path / "out.png"))
    finally:
        os.close(keep)
    assert code == 0, err
    assert Image.open(tmp_path / "out.png").size == (24, 20)


def test_stdin_pipe_is_upscaled(tmp_path: Path) -> None:
    data = _png(tmp_path / "a.png").read_bytes()
    done = srtool_process(*X2, "/dev/stdin", "-o", str(tmp_path / "out.png"), stdin=data)
    assert done.returncode == 0 and done.stderr == b""
    assert Image.open(tmp_path / "out.png").size == (24, 20)


def test_terminals_and_endless_devices_are_refused() -> None:
    leader, follower = pty.openpty()
    try:
        with pytest.raises(InputError, match=r"is a terminal, not an image file"):
            read_image(os.ttyname(follower))
    finally:
        os.close(leader)
        os.close(follower)
    with pytest.raises(InputError) as refused:
        read_image("/dev/zero", max_pixels=2)
    assert str(refused.value) == (f"/dev/zero: more than {16 + STREAM_SLACK:,} bytes from a pipe or device "
                                  "(the most --max-pixels allows)")


# ---------------------------------------------------------------------------------------------------- temporary files


def test_next_run_removes_stale_temporary_files_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    src = _png(tmp_path / "a.png")
    (out / "a_bicubic_x2.png").write_bytes(b"done before")
    # a writer killed with -9 half-way through a write, as a real srtool process
    killed = ("import os, signal, sys; from sr_cli.atomic import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'half')\n    os.kill(os.getpid(), 9)")
    died = subprocess.run([sys.executable, "-c", killed, str(out / "b_bicubic_x2.png")], timeout=60)
    assert died.returncode == -9
    [stale] = out.glob(".b_bicubic_x2.png.*.part.png")
    users = [".a_bicubic_x2.png.part.png", "a_bicubic_x2.png.abcd1234.part.png",
             ".a_bicubic_x2.png.abcd1234.part.jpg", ".notes.abcd1234.part.png", ".a_bicubic_x2.png.abcd12345.part.png"]
    for name in users:
        (out / name).write_bytes(b"mine")
    with atomic_path(out / "c_bicubic_x2.png") as live:  # a write in progress elsewhere
        live.write_bytes(b"writing")
        code, _, err = srtool(*X2, str(src), "-o", str(out), "--skip-existing")
        assert code == 0, err
        assert not stale.exists() and live.read_bytes() == b"writing"
    assert (out / "a_bicubic_x2.png").read_bytes() == b"done before"
    assert all((out / name).read_bytes() == b"mine" for name in users)
    assert sorted(p.name for p in out.iterdir()) == sorted(users + ["a_bicubic_x2.png", "c_bicubic_x2.png"])


def test_atomic_path_holds_a_lock_while_writing(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.png") as tmp:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        tmp.write_bytes(b"x")
    assert (tmp_path / "x.png").read_bytes() == b"x"


# ---------------------------------------------------------------------------------------------------- TIFF


@no_imagecodecs
@pytest.mark.parametrize(("compression", "mode", "named"), [("jpeg", "RGB", "JPEG"), ("tiff_lzw", "RGB", "LZW"),
                                                            ("group4", "1", "CCITTFAX4")])
def test_tiff_codec_needing_imagecodecs_is_named_not_called_corrupt(tmp_path: Path, compression: str, mode: str,
                                                                    named: str) -> None:
    src = tmp_path / "x.tif"
    Image.fromarray(_noise(8, 8)).convert(mode).save(src, compression=compression)
    with pytest.raises(InputError) as refused:
        read_image(src)
    assert str(refused.value) == (f"{src}: uses {named} compression, which needs the optional imagecodecs package: "
                                  "pip install imagecodecs")


def _pack12(values: list[int]) -> bytes:
    """12-bit samples packed two to three bytes, most significant bits first."""
    a, b = np.array(values[0::2], np.uint32), np.array(values[1::2], np.uint32)
    return np.stack([a >> 4, ((a & 15) << 4) | (b >> 8), b & 255], axis=1).astype(np.uint8).tobytes()


def _unpack12(data: bytes, dtype: object, bitspersample: int, runlen: int = 0, out: object = None) -> np.ndarray:
    """imagecodecs.packints_decode for 12 bits, for a machine without imagecodecs."""
    t = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.uint16)
    return np.stack([(t[:, 0] << 4) | (t[:, 1] >> 4), ((t[:, 1] & 15) << 8) | t[:, 2]], axis=1).ravel()


@no_imagecodecs
def test_twelve_bit_tiff_names_the_missing_codec(tmp_path: Path) -> None:
    src = _tiff(tmp_path / "x.tif", 4, 2, 12, _pack12([0, 1, 2048, 4095] * 2))
    with pytest.raises(InputError) as refused:
        read_image(src)
    assert str(refused.value) == (f"{src}: uses 12-bit samples, which needs the optional imagecodecs package: "
                                  "pip install imagecodecs")


def test_twelve_bit_tiff_is_stretched_to_sixteen_bits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tifffile.tifffile.imagecodecs, "packints_decode", _unpack12)
    picture = read_image(_tiff(tmp_path / "x.tif", 4, 2, 12, _pack12([0, 1, 2048, 4095, 4095, 2048, 1, 0])))
    assert picture.bit_depth == 16
    np.testing.assert_array_equal(picture.pixels[:, :, 0], [[0, 16, 32776, 65535], [65535, 32776, 16, 0]])


@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_signed_tiff_is_refused_without_contradiction(tmp_path: Path, dtype: str) -> None:
    src = tmp_path / "x.tif"
    tifffile.imwrite(src, np.zeros((2, 2), dtype))
    with pytest.raises(InputError) as refused:
        read_image(src)
    assert str(refused.value) == (f"{src}: {dtype} TIFF samples are not supported "
                                  "(unsigned 8- and 16-bit integers only: uint8, uint16)")


def test_tifffile_log_lines_become_one_srtool_warning(tmp_path: Path) -> None:
    # a Software tag (305) of data type 99, which does not exist: tifffile logs it and reads the pixels
    src = _tiff(tmp_path / "x.tif", 4, 2, 8, bytes(range(8)), (305, 99, 1, 0))
    done = srtool_process(*X2, str(src), "-o", str(tmp_path / "out.png"))
    assert done.returncode == 0
    [line] = done.stderr.decode().splitlines()
    assert line.startswith(f"srtool: warning: {src}: read in spite of a problem its decoder reported: ")
    assert "invalid data type 99" in line
    assert Image.open(tmp_path / "out.png").size == (8, 4)


# ---------------------------------------------------------------------------------------------------- animations


@pytest.mark.parametrize(("suffix", "named"), [(".png", "PNG"), (".webp", "WEBP")])
def test_animation_is_refused_pointing_to_video_and_the_batch_goes_on(tmp_path: Path, suffix: str,
                                                                      named: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    frames = [Image.fromarray(_noise(8, 8, seed)) for seed in range(3)]
    frames[0].save(folder / f"anim{suffix}", save_all=True, append_images=frames[1:])
    _png(folder / "still.png")
    code, _, err = srtool(*X2, str(folder), "-o", str(tmp_path / "out"))
    assert code == 3
    assert err == (f"srtool: error: {folder / f'anim{suffix}'}: animated {named} (3 frames): `srtool upscale` "
                   "reads still images, use `srtool video` for animations\n")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["still_bicubic_x2.png"]


def test_pillow_apng_warning_is_restated_not_leaked(tmp_path: Path) -> None:
    data = _png(tmp_path / "a.png").read_bytes()
    actl = b"acTL" + struct.pack(">II", 0, 0)  # an animation of 0 frames: Pillow warns and reads the still image
    ihdr_end = 8 + 8 + 13 + 4
    src = tmp_path / "b.png"
    src.write_bytes(data[:ihdr_end] + struct.pack(">I", 8) + actl + struct.pack(">I", zlib.crc32(actl))
                    + data[ihdr_end:])
    with warnings.catch_warnings(record=True) as leaked:
        warnings.simplefilter("always")
        picture = read_image(src)
    assert leaked == []
    np.testing.assert_array_equal(picture.pixels, _noise(10, 12))
    assert picture.notes == (f"{src}: read in spite of a problem its decoder reported: Invalid APNG, will use "
                             "default PNG image if possible",)


# ---------------------------------------------------------------------------------------------------- weights


def test_random_bytes_are_not_a_weights_file(tmp_path: Path) -> None:
    weights = tmp_path / "w.pth"
    weights.write_bytes(np.random.default_rng(1).bytes(4096))
    code, _, err = srtool(str(_png(tmp_path / "a.png")), "--weights", str(weights))
    assert code == 4
    assert err == f"srtool: error: {weights} is not a weights file (neither safetensors nor a PyTorch checkpoint)\n"


def test_torch_pickle_warning_is_not_shown(tmp_path: Path) -> None:
    weights = tmp_path / "w.pth"
    weights.write_bytes(pickle.dumps({"conv.weight": [1.0]}, protocol=4))  # torch warns about protocol 4
    done = srtool_process(str(_png(tmp_path / "a.png")), "-m", "edsr", "-s", "2", "--weights", str(weights))
    assert done.returncode == 4
    assert done.stderr.decode() == (f"srtool: error: {weights} is not a weights file (neither safetensors nor a "
                                    "PyTorch checkpoint)\n")


def test_a_pipe_without_an_output_name_is_refused_before_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "in.png"
    os.mkfifo(fifo)  # no writer: reading it first would wait for one
    code, _, err = srtool(str(fifo), "-m", "bicubic", "-s", "2")
    assert code == 2 and "is a pipe or device: name the output with -o" in err
    assert [p.name for p in tmp_path.iterdir()] == ["in.png"]


def test_a_tiff_that_ends_before_its_first_page_is_one_line(tmp_path: Path) -> None:
    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, np.zeros((8, 8, 3), np.uint8), compression="zlib")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[:8])  # the header alone: it points at a first page that is not there
    code, _, err = srtool(str(cut), "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "out.png"))
    assert code == 3 and err.strip() == f"srtool: error: {cut}: truncated or corrupt image (it holds no image)"


def test_an_input_that_cannot_be_searched_does_not_stop_the_batch(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(np.full((6, 5, 3), 90, np.uint8)).save(good)
    locked = tmp_path / "locked" / "in.png"
    real = Path.is_dir

    def is_dir(self: Path) -> bool:  # what a folder with mode 000 does for a user who is not root
        if "locked" in self.parts:
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "is_dir", is_dir)
    code, _, err = srtool(str(locked), str(good), "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "out"))
    assert code == 3 and err.strip() == f"srtool: error: {locked}: cannot be read (Permission denied)"
    assert Image.open(tmp_path / "out" / "good_bicubic_x2.png").size == (10, 12)


def test_a_multi_page_tiff_says_only_its_first_page_is_upscaled(tmp_path: Path) -> None:
    src = tmp_path / "pages.tif"
    tifffile.imwrite(src, np.arange(4 * 6 * 5, dtype=np.uint8).reshape(4, 6, 5), photometric="minisblack")
    code, _, err = srtool(str(src), "-m", "nearest", "-s", "2", "-o", str(tmp_path / "out.png"))
    assert code == 0 and err.strip() == f"srtool: warning: {src}: a TIFF of 4 pages: only the first is upscaled"
    with Image.open(tmp_path / "out.png") as out:
        assert np.array_equal(np.asarray(out), np.arange(30, dtype=np.uint8).reshape(6, 5).repeat(2, 0).repeat(2, 1))


def test_an_output_name_too_long_for_the_file_system_is_one_error(tmp_path: Path) -> None:
    long = tmp_path / ("L" * 250 + ".png")  # 250 + "_bicubic_x2" is over the 255-byte limit of a name
    Image.fromarray(np.full((6, 5, 3), 90, np.uint8)).save(long)
    good = tmp_path / "good.png"
    Image.fromarray(np.full((6, 5, 3), 90, np.uint8)).save(good)
    for extra in ([], ["--skip-existing"]):
        code, _, err = srtool(str(long), str(good), "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "out"), *extra)
        assert code == 5 and err.strip().endswith("_bicubic_x2.png: cannot be written (File name too long)"), err
        assert len(err.strip().splitlines()) == 1 and (tmp_path / "out" / "good_bicubic_x2.png").exists()
