"""Image reading and writing: real files in tmp_path, exact values."""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps

from sr_cli import atomic, images
from sr_cli.errors import InputError, OutputError
from sr_cli.images import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_SUFFIXES,
    Picture,
    is_image_path,
    read_image,
    write_image,
)

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
# 16-bit values whose high bytes repeat: an 8-bit reader would make them equal.
LOW_BYTE = np.array([0x1234, 0x1235, 0x12FF, 0x1200, 0x0001, 0xFF00, 0xFFFE, 0xFFFF], dtype=np.uint16)


def rgb8(h: int = 6, w: int = 10) -> np.ndarray:
    """A smooth (lossy-codec friendly) but position-unique 8-bit RGB image."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 8 + 30, y * 10 + 20, 200 - x * 4 - y * 3], axis=2).astype(np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, idat: bytes = b"") -> bytes:
    """An 8-bit RGB PNG with the given header size and IDAT payload (may not match the size)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(idat))
            + png_chunk(b"IEND", b""))


def exif_bytes(orientation: int, make: str = "srtool-test") -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = make
    return exif.tobytes()


# ------------------------------------------------------------------------------------------- bit depth, channels


def test_rgb16_png_round_trip_keeps_low_byte(tmp_path: Path) -> None:
    px = np.stack([LOW_BYTE.reshape(2, 4), LOW_BYTE[::-1].reshape(2, 4), (LOW_BYTE ^ 0x00F0).reshape(2, 4)], axis=2)
    out = tmp_path / "rgb16.png"
    write_image(Picture(px, 16), out)
    data = out.read_bytes()
    assert data[24:26] == bytes([16, 2])  # IHDR: bit depth 16, colour type RGB
    back = read_image(out)
    assert back.bit_depth == 16 and back.pixels.dtype == np.uint16 and back.source_format == "PNG"
    np.testing.assert_array_equal(back.pixels, px)


def test_gray16_png_stays_one_16bit_channel(tmp_path: Path) -> None:
    px = LOW_BYTE.reshape(2, 4, 1)
    out = tmp_path / "gray16.png"
    write_image(Picture(px, 16), out)
    assert out.read_bytes()[24:26] == bytes([16, 0])  # gray
    back = read_image(out)
    assert back.pixels.shape == (2, 4, 1) and back.bit_depth == 16
    np.testing.assert_array_equal(back.pixels, px)


def test_gray16_png_written_by_pypng_reads_exactly(tmp_path: Path) -> None:
    path = tmp_path / "ext16.png"
    with path.open("wb") as f:
        png.Writer(4, 2, greyscale=True, bitdepth=16).write(f, LOW_BYTE.reshape(2, 4).tolist())
    np.testing.assert_array_equal(read_image(path).pixels[:, :, 0], LOW_BYTE.reshape(2, 4))


def test_png16_transparent_colour_becomes_alpha(tmp_path: Path) -> None:
    path = tmp_path / "trns16.png"
    with path.open("wb") as f:
        png.Writer(2, 1, greyscale=False, bitdepth=16, transparent=(1, 2, 3)).write(f, [[1, 2, 3, 1, 2, 4]])
    np.testing.assert_array_equal(read_image(path).pixels, [[[1, 2, 3, 0], [1, 2, 4, 65535]]])


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_tiff16_round_trip(tmp_path: Path, channels: int) -> None:
    px = np.stack([np.roll(LOW_BYTE, k).reshape(2, 4) for k in range(channels)], axis=2)
    out = tmp_path / "deep.tif"
    write_image(Picture(px, 16), out)
    back = read_image(out)
    assert back.bit_depth == 16 and back.source_format == "TIFF"
    np.testing.assert_array_equal(back.pixels, px)
    with tifffile.TiffFile(out) as tif:  # a real 16-bit file, alpha marked as unassociated
        assert tif.pages.first.dtype == np.uint16
        assert tif.pages.first.extrasamples == ((tifffile.EXTRASAMPLE.UNASSALPHA,) if channels in (2, 4) else ())


def test_tiff_associated_alpha_is_unpremultiplied(tmp_path: Path) -> None:
    path = tmp_path / "assoc.tif"
    tifffile.imwrite(path, np.array([[[10, 20, 30, 51], [0, 0, 0, 0]]], np.uint8), photometric="rgb",
                     extrasamples=["assocalpha"])
    np.testing.assert_array_equal(read_image(path).pixels, [[[50, 100, 150, 51], [0, 0, 0, 0]]])


def test_tiff_miniswhite_and_palette(tmp_path: Path) -> None:
    white = tmp_path / "white.tif"
    tifffile.imwrite(white, np.array([[0, 5, 255]], np.uint8), photometric="miniswhite")
    np.testing.assert_array_equal(read_image(white).pixels[:, :, 0], [[255, 250, 0]])
    pal = tmp_path / "pal.tif"
    cmap = np.zeros((3, 256), np.uint16)
    cmap[:, 1] = (257 * 10, 257 * 20, 257 * 30)
    tifffile.imwrite(pal, np.array([[0, 1]], np.uint8), photometric="palette", colormap=cmap)
    back = read_image(pal)
    assert back.bit_depth == 8
    np.testing.assert_array_equal(back.pixels, [[[0, 0, 0], [10, 20, 30]]])


def test_gray8_stays_one_channel(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.fromarray(np.array([[0, 1, 2], [253, 254, 255]], np.uint8)).save(path)
    back = read_image(path)
    assert back.pixels.shape == (2, 3, 1) and back.bit_depth == 8 and back.pixels.dtype == np.uint8
    assert back.pixels.flags.writeable
    np.testing.assert_array_equal(back.pixels[:, :, 0], [[0, 1, 2], [253, 254, 255]])


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_kept_exactly(tmp_path: Path, mode: str) -> None:
    channels = len(mode)
    px = np.arange(2 * 3 * channels, dtype=np.uint8).reshape(2, 3, channels) * 11
    source = tmp_path / "src.png"
    Image.fromarray(px, mode).save(source)
    picture = read_image(source)
    assert picture.pixels.shape == (2, 3, channels)
    np.testing.assert_array_equal(picture.pixels, px)
    for suffix in (".png", ".tif", ".webp"):
        write_image(picture, tmp_path / f"out{suffix}")
    np.testing.assert_array_equal(read_image(tmp_path / "out.png").pixels, px)
    np.testing.assert_array_equal(read_image(tmp_path / "out.tif").pixels, px)
    webp = read_image(tmp_path / "out.webp").pixels  # WebP has no gray: RGBA, alpha exact
    assert webp.shape == (2, 3, 4)
    np.testing.assert_array_equal(webp[:, :, 3], px[:, :, -1])


def test_la16_png_keeps_alpha(tmp_path: Path) -> None:
    px = np.stack([LOW_BYTE.reshape(2, 4), LOW_BYTE[::-1].reshape(2, 4)], axis=2)
    write_image(Picture(px, 16), tmp_path / "la16.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la16.png").pixels, px)


def test_transparent_colour_of_8bit_png_becomes_alpha(tmp_path: Path) -> None:
    Image.fromarray(np.array([[1, 2]], np.uint8)).save(tmp_path / "l.png", transparency=1)
    np.testing.assert_array_equal(read_image(tmp_path / "l.png").pixels, [[[1, 0], [2, 255]]])
    Image.fromarray(np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)).save(tmp_path / "rgb.png", transparency=(1, 2, 3))
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png").pixels, [[[1, 2, 3, 0], [4, 5, 6, 255]]])


def test_bilevel_bmp_becomes_gray(tmp_path: Path) -> None:
    im = Image.new("1", (2, 1))
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "b.bmp")
    np.testing.assert_array_equal(read_image(tmp_path / "b.bmp").pixels, [[[0], [255]]])


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    back = read_image(tmp_path / "cmyk.jpg")
    assert back.pixels.shape == (8, 8, 3)
    assert np.abs(back.pixels.astype(int) - [255, 0, 0]).max() <= 2  # JPEG at quality 100 still rounds its DCT


def test_palette_becomes_rgb_and_rgba(tmp_path: Path) -> None:
    im = Image.new("P", (2, 1))
    im.putpalette([10, 20, 30, 40, 50, 60])
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png").pixels, [[[10, 20, 30], [40, 50, 60]]])
    im.save(tmp_path / "pt.png", transparency=0)
    np.testing.assert_array_equal(read_image(tmp_path / "pt.png").pixels, [[[10, 20, 30, 0], [40, 50, 60, 255]]])


# ------------------------------------------------------------------------------------------- orientation, metadata


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    path = tmp_path / "rot.png"
    Image.fromarray(np.array([[1, 2, 3], [4, 5, 6]], np.uint8)).save(path, exif=exif_bytes(6))
    picture = read_image(path)
    np.testing.assert_array_equal(picture.pixels[:, :, 0], [[4, 1], [5, 2], [6, 3]])
    exif = Image.Exif()
    exif.load(picture.exif)
    assert exif[ExifTags.Base.Orientation] == 1 and exif[ExifTags.Base.Make] == "srtool-test"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / "o.png"
    Image.fromarray(rgb8(3, 5)).save(path, exif=exif_bytes(orientation))
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(read_image(path).pixels, expected)


def test_orientation_applied_to_16bit_png_and_tiff(tmp_path: Path) -> None:
    px = LOW_BYTE[:6].reshape(2, 3, 1)
    rotated = [[0x1200, 0x1234], [0x0001, 0x1235], [0xFF00, 0x12FF]]  # 90° clockwise
    png16 = tmp_path / "rot16.png"
    images._write_png16(png16, px, None, exif_bytes(6))  # the public writer would reset the orientation
    np.testing.assert_array_equal(read_image(png16).pixels[:, :, 0], rotated)
    tif = tmp_path / "rot16.tif"
    tifffile.imwrite(tif, px[:, :, 0], photometric="minisblack", extratags=[(274, "H", 1, 6, True)])
    np.testing.assert_array_equal(read_image(tif).pixels[:, :, 0], rotated)


@pytest.mark.parametrize("suffix,bit_depth", [(".png", 8), (".png", 16), (".jpg", 8), (".webp", 8),
                                              (".tif", 8), (".tif", 16)])
def test_icc_profile_carried(tmp_path: Path, suffix: str, bit_depth: int) -> None:
    px = rgb8().astype(np.uint16) * 257 if bit_depth == 16 else rgb8()
    out = tmp_path / f"icc{suffix}"
    write_image(Picture(px, bit_depth, SRGB, None, "PNG"), out)
    assert read_image(out).icc == SRGB
    if suffix != ".tif":  # an independent reader sees it too
        with Image.open(out) as im:
            assert im.info["icc_profile"] == SRGB


def test_icc_dropped_where_it_cannot_apply(tmp_path: Path) -> None:
    write_image(Picture(rgb8()[:, :, :1].copy(), 8, SRGB), tmp_path / "gray.png")  # RGB profile, gray pixels
    write_image(Picture(rgb8(), 8, SRGB), tmp_path / "rgb.bmp")  # BMP: no ICC
    assert read_image(tmp_path / "gray.png").icc is None
    assert read_image(tmp_path / "rgb.bmp").icc is None


@pytest.mark.parametrize("suffix,bit_depth", [(".jpg", 8), (".png", 8), (".png", 16), (".webp", 8)])
def test_exif_carried_with_orientation_1_and_new_size(tmp_path: Path, suffix: str, bit_depth: int) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "srtool-test"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ExifImageWidth] = 3
    px = rgb8(4, 8).astype(np.uint16) * 257 if bit_depth == 16 else rgb8(4, 8)
    out = tmp_path / f"exif{suffix}"
    write_image(Picture(px, bit_depth, None, exif.tobytes()), out)
    with Image.open(out) as im:
        written = im.getexif()
    assert written[ExifTags.Base.Orientation] == 1 and written[ExifTags.Base.Make] == "srtool-test"
    assert written.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ExifImageWidth] == 8
    assert read_image(out).pixels.shape[:2] == (4, 8)  # not rotated again


# ------------------------------------------------------------------------------------------- bad input


def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    cases = {
        "missing": (tmp_path / "missing.png", "no such file"),
        "text": (tmp_path / "notes.png", "not a PNG, JPEG, WebP, BMP or TIFF image"),
        "truncated": (tmp_path / "half.png", "truncated or corrupt"),
        "empty": (tmp_path / "empty.png", "empty file (0 bytes)"),
        "zero width": (tmp_path / "zero.png", "zero size (0x5)"),
        "folder": (tmp_path / "dir.png", "is a folder"),
    }
    cases["text"][0].write_text("this is not a picture\n")
    cases["truncated"][0].write_bytes(data[: len(data) // 2])
    cases["empty"][0].write_bytes(b"")
    cases["zero width"][0].write_bytes(raw_png(0, 5))
    cases["folder"][0].mkdir()
    return cases


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "empty", "zero width", "folder"])
def test_bad_input_raises_input_error_naming_the_file(tmp_path: Path, case: str) -> None:
    path, words = bad_inputs(tmp_path)[case]
    with pytest.raises(InputError) as info:
        read_image(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":") and words in message and "\n" not in message


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".bmp", ".tif"])
def test_truncated_files_of_each_format_are_refused(tmp_path: Path, suffix: str) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = tmp_path / f"full{suffix}"
    write_image(Picture(noise, 8), full)
    half = tmp_path / f"half{suffix}"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_image(half)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_unsupported_tiffs_are_refused(tmp_path: Path) -> None:
    floats = tmp_path / "float.tif"
    tifffile.imwrite(floats, np.zeros((2, 2), np.float32))
    with pytest.raises(InputError, match=f"{floats}: float32 TIFF samples are not supported"):
        read_image(floats)
    cmyk = tmp_path / "cmyk.tif"
    tifffile.imwrite(cmyk, np.zeros((2, 2, 4), np.uint8), photometric="separated")
    with pytest.raises(InputError, match=f"{cmyk}: SEPARATED TIFF with 4 samples per pixel is not supported"):
        read_image(cmyk)


def test_truncated_16bit_png_is_refused(tmp_path: Path) -> None:
    full = tmp_path / "full16.png"
    write_image(Picture(np.random.default_rng(2).integers(0, 65536, (32, 32, 3)).astype(np.uint16), 16), full)
    (tmp_path / "half16.png").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match="half16.png: truncated or corrupt"):
        read_image(tmp_path / "half16.png")


def test_decompression_bomb_refused_from_header(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(raw_png(100_000, 100_000))  # 10 gigapixels claimed, a few bytes of data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError) as info:
            read_image(bomb)
    assert str(info.value) == (f"{bomb}: 100000x100000 image (10,000,000,000 pixels) is over the limit of "
                               f"{DEFAULT_MAX_PIXELS:,} pixels (raise it with --max-pixels)")


@pytest.mark.parametrize("suffix,bit_depth", [(".png", 8), (".png", 16), (".jpg", 8), (".tif", 16)])
def test_pixel_limit_checked_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str,
                                             bit_depth: int) -> None:
    px = np.zeros((20, 30, 3), np.uint16 if bit_depth == 16 else np.uint8)
    path = tmp_path / f"big{suffix}"
    write_image(Picture(px, bit_depth), path)

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(png.Reader, "read", no_decoding)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_decoding)
    with pytest.raises(InputError, match=r"30x20 image \(600 pixels\) is over the limit of 599 pixels"):
        read_image(path, max_pixels=599)


def test_pillow_bomb_limit_replaced_by_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.png"
    Image.fromarray(rgb8()).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow would warn above 10 and fail above 20 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_image(path, max_pixels=60).pixels, rgb8())
    assert Image.MAX_IMAGE_PIXELS == 10


# ------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("suffix", sorted(SUPPORTED_SUFFIXES))
def test_every_suffix_round_trips_8bit_rgb(tmp_path: Path, suffix: str) -> None:
    px = rgb8(16, 24)
    out = tmp_path / f"img{suffix}"
    write_image(Picture(px, 8), out)
    back = read_image(out)
    assert back.pixels.shape == (16, 24, 3) and back.bit_depth == 8
    assert back.source_format == images.FORMATS[suffix]
    if suffix in (".jpg", ".jpeg", ".webp"):
        error = np.abs(back.pixels.astype(int) - px)
        assert error.mean() < 2.5 and error.max() < 16
    else:
        np.testing.assert_array_equal(back.pixels, px)


def test_8bit_only_formats_round_16bit(tmp_path: Path) -> None:
    px = np.array([[[0, 257 * 18 + 128, 65535]]], np.uint16)  # 18.498 → 18
    write_image(Picture(px, 16), tmp_path / "x.bmp")
    back = read_image(tmp_path / "x.bmp")
    assert back.bit_depth == 8
    np.testing.assert_array_equal(back.pixels, [[[0, 18, 255]]])


def test_no_alpha_formats_composite_on_white(tmp_path: Path) -> None:
    px = np.array([[[0, 0, 0, 0], [10, 20, 30, 255], [0, 0, 0, 128]]], np.uint8)
    write_image(Picture(px, 8), tmp_path / "flat.bmp")
    np.testing.assert_array_equal(read_image(tmp_path / "flat.bmp").pixels,
                                  [[[255, 255, 255], [10, 20, 30], [127, 127, 127]]])
    write_image(Picture(px, 8), tmp_path / "flat.jpg")
    assert read_image(tmp_path / "flat.jpg").pixels.shape == (1, 3, 3)


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError, match="out.png exists"):
        write_image(Picture(rgb8(), 8), out)
    assert out.read_bytes() == b"precious"
    write_image(Picture(rgb8(), 8), out, overwrite=True)
    np.testing.assert_array_equal(read_image(out).pixels, rgb8())


def test_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")

    def broken_encoder(tmp: Path, *args: object) -> None:
        tmp.write_bytes(b"half an image")
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(images, "_write_pillow", broken_encoder)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_image(Picture(rgb8(), 8), out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert out.read_bytes() == b"precious"


def test_missing_output_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=f"output folder {tmp_path / 'nope'} does not exist"):
        write_image(Picture(rgb8(), 8), tmp_path / "nope" / "out.png")


def test_unwritable_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder is checked before anything is encoded (``os.access`` answers no; a chmod would not stop root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    access = os.access
    monkeypatch.setattr(images.os, "access", lambda path, mode, **kw: (Path(path) != folder or mode != os.W_OK)
                        and access(path, mode, **kw))
    with pytest.raises(OutputError, match=f"output folder {folder} is not writable"):
        write_image(Picture(rgb8(), 8), folder / "out.png")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("error,words", [(PermissionError(13, "Permission denied"), "is not writable"),
                                         (OSError(28, "No space left on device"), "No space left on device")])
def test_os_errors_become_output_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError,
                                        words: str) -> None:
    def failing_mkstemp(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(atomic.tempfile, "mkstemp", failing_mkstemp)
    with pytest.raises(OutputError, match=words):
        write_image(Picture(rgb8(), 8), tmp_path / "out.png")


def test_unsupported_output_suffix(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"cannot write '\.gif' images"):
        write_image(Picture(rgb8(), 8), tmp_path / "out.gif")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- Picture, helpers


def test_picture_rejects_mismatched_depth() -> None:
    with pytest.raises(ValueError):
        Picture(np.zeros((2, 2, 3), np.uint8), 16)
    with pytest.raises(ValueError):
        Picture(np.zeros((2, 2, 5), np.uint8), 8)


def test_is_image_path() -> None:
    assert is_image_path("a/B.PNG") and is_image_path("x.tiff") and is_image_path("x.jpeg")
    assert not is_image_path("x.gif") and not is_image_path("png")
