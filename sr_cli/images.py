"""Reading and writing image files: bit depth, gray, alpha, EXIF orientation, ICC/EXIF carry-over, atomic writes.

Reading
  * The format is recognised from the file's bytes, not its name: PNG, JPEG, WebP and BMP are decoded by Pillow,
    16-bit PNG by pypng (Pillow keeps only the high byte of 48/64-bit PNG), TIFF by tifffile (unsigned samples of
    up to 16 bits; LZW, JPEG and CCITT compression and bit-packed samples other than 1-bit need the optional
    imagecodecs package, and say so).
  * The bit depth comes from the header (PNG IHDR, TIFF BitsPerSample), never from the pixel values; TIFF samples
    of 2 to 15 bits are stretched to the full 8 or 16 bits.
  * A pipe or device (``/dev/stdin``, a FIFO) is read once into memory, at most ``8 * max_pixels`` bytes plus
    ``STREAM_SLACK``, and decoded from there; a FIFO with no writer reads as no data instead of waiting for one.
  * Animated PNG and WebP are refused (``srtool video`` upscales animations), not read as their first frame.
  * Channels are kept: gray (C=1), gray+alpha (2), RGB (3), RGBA (4); palette and bilevel images become
    RGB/RGBA/gray, CMYK and YCbCr become RGB.
  * The EXIF orientation (the TIFF Orientation tag for TIFF) is applied; the EXIF kept on the picture says 1.
  * The pixel count is checked from the header before any pixel is decoded (``DEFAULT_MAX_PIXELS``,
    configurable per call); Pillow's own decompression-bomb limit is replaced by this one, so no
    DecompressionBombWarning is shown. Truncated files are refused (Pillow's LOAD_TRUNCATED_IMAGES stays False).
  * What a file gets wrong without stopping the read comes back in ``Picture.notes``, one line each: EXIF tags
    that cannot be written back are dropped (the whole EXIF when it cannot be parsed), and the libraries' warnings
    and tifffile's log records are collected and restated there instead of printed.

Writing (format from the suffix, always through ``atomic_path``)
  * PNG and TIFF keep 16 bits; JPEG, WebP and BMP are 8-bit formats, so 16-bit pictures are rounded to 8 bits.
  * Alpha is kept by PNG, TIFF and WebP. JPEG and BMP have none (Pillow's 32-bit BMP alpha is not read back by
    common readers): the picture is composited on white, as an image viewer would show it.
  * WebP has no gray: gray is written as RGB (RGBA with alpha).
  * The ICC profile is written to PNG (an iCCP chunk, 16-bit too), JPEG, WebP and TIFF, when its colour space
    (GRAY or RGB) matches the pixels written; BMP gets none. EXIF goes to PNG, JPEG and WebP with orientation 1
    and the pixel size updated; TIFF and BMP outputs carry no EXIF.
  * JPEG uses 4:4:4 chroma (no subsampling: upscaled detail is the point); JPEG/WebP quality defaults to 95.
  * 8-bit PNG is deflated at zlib level 1 with run-length matching (``PNG_OPTIONS``): several times faster than
    Pillow's default, within a few per cent of its size.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import png
import tifffile
from PIL import (
    ExifTags,
    Image,
    ImageFile,
    TiffImagePlugin,
    TiffTags,
    UnidentifiedImageError,
)

from sr_cli.atomic import atomic_path
from sr_cli.choices import (
    DEFAULT_MAX_PIXELS,  # 64 MP: a 61 MP photo passes; decoding costs <= 512 MB (16-bit RGBA)
    DEFAULT_QUALITY,
)
from sr_cli.errors import InputError, OutputError

# Suffix → format written.
FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                           ".tif": "TIFF", ".tiff": "TIFF"}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(FORMATS)
# zlib settings of 8-bit PNGs (lossless whatever they are): run-length matching at level 1 encodes x4 upscales of
# Set14 pictures 3.2-5.6x faster than Pillow's default (level 6, default strategy) at -1 % to +5 % of its bytes
# (baboon 0.23 s / 5.48 MB against 1.31 s / 5.55 MB; ppt3 0.16 s / 2.12 MB against 0.51 s / 2.04 MB).
PNG_OPTIONS: dict[str, object] = {"compress_level": 1, "compress_type": zlib.Z_RLE}
# Bytes a pipe or device may hold beyond its pixels' raw size (16-bit RGBA): headers, ICC profile, EXIF.
STREAM_SLACK = 16 << 20

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PILLOW_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
_ANIMATED_FORMATS = ("PNG", "WEBP")  # their extra frames are an animation (a JPEG's MPO frames are not)
_KNOWN = "a PNG, JPEG, WebP, BMP or TIFF image"
# Pillow mode → mode kept, without and with a transparent colour or palette entry (PNG tRNS).
_PILLOW_MODES = {"1": ("L", "LA"), "L": ("L", "LA"), "LA": ("LA", "LA"), "P": ("RGB", "RGBA"),
                 "RGB": ("RGB", "RGBA"), "RGBA": ("RGBA", "RGBA"), "CMYK": ("RGB", "RGB")}
# TIFF photometric interpretation → channel counts read (gray and RGB, each with an optional alpha).
_TIFF_CHANNELS = {tifffile.PHOTOMETRIC.MINISWHITE: (1, 2), tifffile.PHOTOMETRIC.MINISBLACK: (1, 2),
                  tifffile.PHOTOMETRIC.RGB: (3, 4), tifffile.PHOTOMETRIC.PALETTE: (1,)}
_ORIENTATION = ExifTags.Base.Orientation
# The sub-IFDs EXIF writes back: Exif and GPS, pointed to by IFD0, and Interop, pointed to by Exif.
_EXIF_IFDS = (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # Windows has no FIFOs
_read_lock = threading.Lock()


@dataclass
class Picture:
    """Decoded pixels (H, W, C) uint8 or uint16 with what the file said about them."""

    pixels: np.ndarray
    bit_depth: int
    icc: bytes | None = None
    exif: bytes | None = None
    source_format: str = ""
    notes: tuple[str, ...] = ()  # what reading the file dropped or put up with, one line each

    def __post_init__(self) -> None:
        dtype = {8: np.uint8, 16: np.uint16}.get(self.bit_depth)
        if dtype is None or self.pixels.dtype != dtype:
            raise ValueError(f"bit depth {self.bit_depth} does not fit {self.pixels.dtype} pixels")
        if self.pixels.ndim != 3 or self.pixels.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"pixels must be (H, W, C) with C in 1..4, not {self.pixels.shape}")

    @property
    def max_value(self) -> int:
        """255 or 65535."""
        return (1 << self.bit_depth) - 1


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has a suffix srtool reads and writes."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


# ---------------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Source:
    """An input: a regular file, read by path, or a pipe or device, whose bytes are read once (``data``)."""

    path: Path
    head: bytes
    data: bytes | None = None

    def open(self) -> BinaryIO:
        """A fresh binary stream from the first byte."""
        return self.path.open("rb") if self.data is None else io.BytesIO(self.data)


def read_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode ``path``; InputError (one line naming the file) if it is missing, not an image, corrupt,
    empty, animated or over ``max_pixels`` (checked from the header, before decoding). What the file gets wrong
    without stopping the read is in the picture's ``notes``."""
    path = Path(path)
    with _reading() as heard:
        picture = _decode(_source(path, max_pixels), max_pixels)
    if heard:
        more = f" (and {len(heard) - 1} more)" if len(heard) > 1 else ""
        picture.notes += (f"{path}: read in spite of a problem its decoder reported: {heard[0]}{more}",)
    return picture


def _decode(source: _Source, max_pixels: int) -> Picture:
    """The picture in ``source``, by the reader its first bytes call for."""
    if source.head.startswith(_PNG_SIGNATURE):
        width, height, depth = _png_header(source.path, source.head)
        _check_size(source.path, width, height, max_pixels)
        if depth == 16:
            return _read_png16(source)
    elif source.head[:4] in _TIFF_MAGICS:
        return _read_tiff(source, max_pixels)
    return _read_pillow(source, max_pixels)


@contextlib.contextmanager
def _reading() -> Iterator[list[str]]:
    """One read at a time, with Pillow's decompression-bomb limit off (ours is checked instead) and truncated
    files refused; the libraries' warnings and tifffile's log records are collected in the list yielded (first
    lines, each once, filled in on exit) instead of being printed."""
    heard: list[str] = []
    log, collector = logging.getLogger("tifffile"), _Collector()
    with _read_lock, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, log.propagate
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, log.propagate = None, False, False
        log.addHandler(collector)
        try:
            yield heard
        finally:
            log.removeHandler(collector)
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, log.propagate = saved
            messages = [str(w.message) for w in caught] + collector.messages
            heard.extend(dict.fromkeys(m.strip().splitlines()[0] for m in messages if m.strip()))


class _Collector(logging.Handler):
    """Keeps the messages of the records it handles."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _source(path: Path, max_pixels: int) -> _Source:
    """``path`` checked to be a readable, non-empty file, pipe or device, with its first bytes."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{path}: is a folder, not an image file")
        if stat.S_ISREG(mode):
            with path.open("rb") as f:
                source = _Source(path, f.read(32))
        else:
            data = _read_stream(path, 8 * max_pixels + STREAM_SLACK)
            source = _Source(path, data[:32], data)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if not source.head:
        raise InputError(f"{path}: empty file (0 bytes), not an image" if source.data is None else
                         f"{path}: no data came from this pipe or device")
    return source


def _read_stream(path: Path, limit: int) -> bytes:
    """All the bytes of a pipe or device, read once, at most ``limit``. It is opened without waiting for a writer,
    so a FIFO that nobody writes to reads as empty instead of hanging (the reads then wait for a writer that is
    slow to send); a terminal is refused."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    try:
        if os.isatty(fd):
            raise InputError(f"{path}: is a terminal, not an image file")
        if _NONBLOCK:
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(fd, 1 << 20)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise InputError(f"{path}: more than {limit:,} bytes from a pipe or device (the most --max-pixels allows)")
    return b"".join(chunks)


def _png_header(path: Path, head: bytes) -> tuple[int, int, int]:
    """Width, height and bit depth from the IHDR chunk."""
    if len(head) < 26 or head[12:16] != b"IHDR":
        raise InputError(f"{path}: truncated or corrupt PNG (no IHDR header)")
    width, height, depth = struct.unpack(">IIB", head[16:25])
    return width, height, depth


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width == 0 or height == 0:
        raise InputError(f"{path}: image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise InputError(f"{path}: {width}x{height} image ({width * height:,} pixels) is over the limit of "
                         f"{max_pixels:,} pixels (raise it with --max-pixels)")


def _corrupt(path: Path, err: BaseException) -> InputError:
    detail = str(err).splitlines()[0] if str(err) else type(err).__name__
    return InputError(f"{path}: truncated or corrupt image ({detail})")


def _open_pillow(path: Path, stream: BinaryIO) -> Image.Image:
    """Open (header only) with Pillow, limited to the formats srtool supports; animations are refused."""
    try:
        im = Image.open(stream, formats=_PILLOW_FORMATS)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not {_KNOWN}") from None
    except Exception as err:  # any decoder failure on foreign bytes is the file's fault
        raise _corrupt(path, err) from None
    frames = getattr(im, "n_frames", 1)
    if im.format in _ANIMATED_FORMATS and frames > 1:
        im.close()
        raise InputError(f"{path}: animated {im.format} ({frames} frames): `srtool upscale` reads still images, "
                         "use `srtool video` for animations")
    return im


def _read_pillow(source: _Source, max_pixels: int) -> Picture:
    path = source.path
    with source.open() as stream, _open_pillow(path, stream) as im:
        _check_size(path, im.width, im.height, max_pixels)
        try:
            im.load()
        except Exception as err:  # truncation, bad CRC, bad Huffman data, ...
            raise _corrupt(path, err) from None
        fmt = "JPEG" if im.format == "MPO" else str(im.format)
        icc, raw_exif = im.info.get("icc_profile") or None, im.info.get("exif") or None
        if im.mode not in _PILLOW_MODES:
            raise InputError(f"{path}: unsupported {fmt} pixel mode {im.mode}")
        mode = _PILLOW_MODES[im.mode]["transparency" in im.info]
        pixels = np.array(im if im.mode == mode else im.convert(mode))  # a writable copy
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return _finish(path, pixels, 8, icc, raw_exif, fmt)


def _read_png16(source: _Source) -> Picture:
    """A 16-bit PNG: pixels by pypng, ICC and EXIF from Pillow's header parse."""
    path = source.path
    with source.open() as stream, _open_pillow(path, stream) as im:
        icc, raw_exif = im.info.get("icc_profile") or None, im.info.get("exif") or None
    try:
        with source.open() as stream:
            width, height, rows, info = png.Reader(file=stream).read()
            pixels = np.stack([np.frombuffer(row, dtype=np.uint16) for row in rows])
    except Exception as err:  # pypng's FormatError/ChunkError, zlib errors, short reads
        raise _corrupt(path, err) from None
    if pixels.shape[0] != height:
        raise InputError(f"{path}: truncated or corrupt image ({pixels.shape[0]} of {height} rows)")
    pixels = pixels.reshape(height, width, info["planes"])
    if "transparent" in info:  # tRNS: one colour marked fully transparent
        opaque = np.any(pixels != np.asarray(info["transparent"], dtype=np.uint16), axis=2, keepdims=True)
        pixels = np.concatenate([pixels, np.where(opaque, 65535, 0).astype(np.uint16)], axis=2)
    return _finish(path, pixels, 16, icc, raw_exif, "PNG")


def _read_tiff(source: _Source, max_pixels: int) -> Picture:
    path = source.path
    with source.open() as stream:
        try:
            tif = tifffile.TiffFile(stream)
        except Exception as err:  # not a parsable TIFF structure
            raise _corrupt(path, err) from None
        with tif:
            if not tif.pages:  # the file ends before its first page
                raise _corrupt(path, ValueError("it holds no image"))
            page = tif.pages.first
            _check_size(path, page.imagewidth, page.imagelength, max_pixels)
            try:
                pixels = page.asarray()
            except Exception as err:  # truncated strips, a codec that needs imagecodecs, ...
                raise (_codec_missing(path, page) if "imagecodecs" in str(err) else _corrupt(path, err)) from None
            tags = page.tags
            icc_tag, orient_tag = tags.get("InterColorProfile"), tags.get("Orientation")
            icc = bytes(icc_tag.value) if icc_tag is not None else None
            orientation = int(orient_tag.value) if orient_tag is not None else 1
            photometric, extrasamples, axes, colormap = page.photometric, page.extrasamples, page.axes, page.colormap
            bits = page.bitspersample
            pages = len(tif.pages)
    pixels = _tiff_layout(path, pixels, axes)
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: {pixels.dtype} TIFF samples are not supported "
                         "(unsigned 8- and 16-bit integers only: uint8, uint16)")
    allowed = _TIFF_CHANNELS.get(photometric, ())
    if pixels.shape[2] not in allowed or (photometric == tifffile.PHOTOMETRIC.PALETTE and colormap is None):
        name = getattr(photometric, "name", photometric)
        raise InputError(f"{path}: {name} TIFF with {pixels.shape[2]} samples per pixel is not supported")
    if photometric != tifffile.PHOTOMETRIC.PALETTE and 1 < bits < pixels.dtype.itemsize * 8:
        top = np.iinfo(pixels.dtype).max  # 2- to 15-bit samples stretched to the full range
        pixels = np.rint(pixels * (top / ((1 << bits) - 1))).astype(pixels.dtype)
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        pixels = np.concatenate([np.iinfo(pixels.dtype).max - pixels[:, :, :1], pixels[:, :, 1:]], axis=2)
    elif photometric == tifffile.PHOTOMETRIC.PALETTE:
        pixels = np.rint(colormap.T[pixels[:, :, 0]] / 257).astype(np.uint8)
    if extrasamples and extrasamples[0] == tifffile.EXTRASAMPLE.ASSOCALPHA and pixels.shape[2] in (2, 4):
        pixels = _unassociate(pixels)
    notes = (f"{path}: a TIFF of {pages} pages: only the first is upscaled",) if pages > 1 else ()
    return Picture(np.ascontiguousarray(_orient(pixels, orientation)), 16 if pixels.dtype == np.uint16 else 8,
                   icc, None, "TIFF", notes)


def _codec_missing(path: Path, page: tifffile.TiffPage) -> InputError:
    """The error for a TIFF that tifffile decodes only with the optional imagecodecs package, naming what needs it."""
    if page.compression not in tifffile.TIFF.DECOMPRESSORS:
        feature = f"{getattr(page.compression, 'name', page.compression)} compression"
    elif page.predictor not in tifffile.TIFF.UNPREDICTORS:
        feature = f"the {getattr(page.predictor, 'name', page.predictor)} predictor"
    else:
        feature = f"{page.bitspersample}-bit samples"
    return InputError(f"{path}: uses {feature}, which needs the optional imagecodecs package: pip install imagecodecs")


def _tiff_layout(path: Path, pixels: np.ndarray, axes: str) -> np.ndarray:
    """tifffile's array as (H, W, C)."""
    if axes == "YX":
        return pixels[:, :, None]
    if axes == "YXS":
        return pixels
    if axes == "SYX":
        return np.moveaxis(pixels, 0, -1)
    raise InputError(f"{path}: TIFF layout {axes} is not supported (one 2-D image expected)")


def _unassociate(pixels: np.ndarray) -> np.ndarray:
    """Premultiplied (associated) alpha → straight alpha, rounded."""
    top = float(np.iinfo(pixels.dtype).max)
    colour, alpha = pixels[:, :, :-1].astype(np.float64), pixels[:, :, -1:].astype(np.float64)
    straight = np.where(alpha > 0, colour * top / np.maximum(alpha, 1), 0)
    return np.concatenate([np.rint(np.clip(straight, 0, top)).astype(pixels.dtype), pixels[:, :, -1:]], axis=2)


def _finish(path: Path, pixels: np.ndarray, bit_depth: int, icc: bytes | None, raw_exif: bytes | None,
            fmt: str) -> Picture:
    """Apply the EXIF orientation and keep the EXIF with orientation 1, less what cannot be written back (noted)."""
    exif, orientation = _load_exif(raw_exif)
    pixels = np.ascontiguousarray(_orient(pixels, orientation))
    data, dropped = _exif_bytes(exif) if exif is not None else (None, [])
    notes: tuple[str, ...] = ()
    if raw_exif and data is None:
        notes = (f"{path}: its EXIF cannot be read, so it is left out (the picture is kept)",)
    elif dropped:
        notes = (f"{path}: malformed EXIF {', '.join(dropped)} left out (the rest of the EXIF is kept)",)
    return Picture(pixels, bit_depth, icc, data, fmt, notes)


def _load_exif(raw: bytes | None) -> tuple[Image.Exif | None, int]:
    """Parsed EXIF (None when absent or unparsable) and its orientation (1 when absent or invalid)."""
    if not raw:
        return None, 1
    exif = Image.Exif()
    try:
        exif.load(raw)
    except Exception:  # malformed EXIF must not stop the image from being read
        return None, 1
    orientation = exif.get(_ORIENTATION, 1)
    return exif, orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def _exif_bytes(exif: Image.Exif) -> tuple[bytes | None, list[str]]:
    """``exif`` with orientation 1, serialised, and the tags left out because their values cannot be written
    back (text where a number belongs, ...); None when it cannot be serialised even then."""
    try:
        if _ORIENTATION in exif:
            exif[_ORIENTATION] = 1
        present = [ifd for ifd in _EXIF_IFDS[:2] if ifd in exif]
        if ExifTags.IFD.Exif in present and ExifTags.IFD.Interop in exif.get_ifd(ExifTags.IFD.Exif):
            present.append(ExifTags.IFD.Interop)
        dropped = []
        for group, tags in ((None, exif), *((ifd, exif.get_ifd(ifd)) for ifd in present)):
            bad = [tag for tag, value in tags.items() if tag not in _EXIF_IFDS and not _writable(tag, value, group)]
            for tag in bad:
                del tags[tag]
                name = TiffTags.lookup(tag, group).name
                dropped.append(name if name != "unknown" else f"tag 0x{tag:04x}")
        return exif.tobytes(), dropped
    except Exception:  # a structure Pillow cannot write back at all
        return None, []


def _writable(tag: int, value: object, group: int | None) -> bool:
    """Whether Pillow can write ``value`` as ``tag`` of the IFD ``group``."""
    ifd = TiffImagePlugin.ImageFileDirectory_v2(group=group)
    try:
        ifd[tag] = value
        ifd.tobytes()
    except Exception:
        return False
    return True


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF ``orientation`` (1..8) to (H, W, C), as ``PIL.ImageOps.exif_transpose`` does."""
    if orientation in (2, 3, 4, 5, 7):  # the flips: 2 left-right, 4 top-bottom, 3 both (180°)
        pixels = pixels[::-1 if orientation in (3, 4, 7) else 1, ::-1 if orientation in (2, 3, 7) else 1]
    if orientation in (5, 7):  # transpose, transverse
        return pixels.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(pixels, k=-1)
    if orientation == 8:
        return np.rot90(pixels, k=1)
    return pixels


# ---------------------------------------------------------------------------------------------------- writing


def write_image(picture: Picture, path: str | os.PathLike[str], *, overwrite: bool = False,
                quality: int | None = None) -> None:
    """Encode ``picture`` atomically in the format of ``path``'s suffix (see the module notes for what each
    format keeps); OutputError if the file exists (without ``overwrite``) or cannot be written."""
    target = Path(path)
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise OutputError(f"{target}: cannot write '{target.suffix}' images "
                          f"(use one of {', '.join(sorted(SUPPORTED_SUFFIXES))})")
    if target.is_dir():
        raise OutputError(f"{target} is a folder")
    if target.exists() and not overwrite:
        raise OutputError(f"{target} exists (pass --overwrite to replace it)")
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"output folder {folder} is not writable")
    pixels = _pixels_for(picture, fmt)
    channels = pixels.shape[2]
    icc = picture.icc if fmt != "BMP" and _icc_fits(picture.icc, channels) else None
    exif = _exif_for(picture.exif, pixels.shape[1], pixels.shape[0]) if fmt in ("PNG", "JPEG", "WEBP") else None
    try:
        with atomic_path(target) as tmp:
            if fmt == "TIFF":
                _write_tiff(tmp, pixels, icc)
            elif fmt == "PNG" and pixels.dtype == np.uint16:
                _write_png16(tmp, pixels, icc, exif)
            else:
                _write_pillow(tmp, pixels, fmt, icc, exif, DEFAULT_QUALITY if quality is None else quality)
    except PermissionError:
        raise OutputError(f"output folder {folder} is not writable") from None
    except OSError as err:
        raise OutputError(f"cannot write {target}: {err.strerror or err}") from None


def _pixels_for(picture: Picture, fmt: str) -> np.ndarray:
    """The pixels the format can hold: 8-bit for JPEG/WebP/BMP, no alpha for JPEG/BMP, no gray for WebP."""
    pixels = picture.pixels
    if fmt in ("JPEG", "WEBP", "BMP") and pixels.dtype == np.uint16:
        pixels = np.rint(pixels / 257.0).astype(np.uint8)
    channels = pixels.shape[2]
    if fmt in ("JPEG", "BMP") and channels in (2, 4):
        alpha = pixels[:, :, -1:].astype(np.float32) / 255
        pixels = np.rint(pixels[:, :, :-1] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    elif fmt == "WEBP" and channels in (1, 2):
        pixels = np.concatenate([pixels[:, :, :1]] * 3 + [pixels[:, :, 1:]], axis=2)
    return pixels


def _icc_fits(icc: bytes | None, channels: int) -> bool:
    """Whether the profile's colour space (header bytes 16..20) is that of the pixels written."""
    return icc is not None and len(icc) >= 20 and icc[16:20] == (b"GRAY" if channels <= 2 else b"RGB ")


def _exif_for(raw: bytes | None, width: int, height: int) -> bytes | None:
    """EXIF to write: orientation 1 and, where present, the EXIF pixel size set to the written size."""
    exif, _ = _load_exif(raw)
    if exif is None:
        return None
    sub = exif.get_ifd(ExifTags.IFD.Exif) if ExifTags.IFD.Exif in exif else {}
    for tag, value in ((ExifTags.Base.ExifImageWidth, width), (ExifTags.Base.ExifImageHeight, height)):
        if tag in sub:
            sub[tag] = value
    return _exif_bytes(exif)[0]


def _write_pillow(tmp: Path, pixels: np.ndarray, fmt: str, icc: bytes | None, exif: bytes | None,
                  quality: int) -> None:
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    options: dict[str, object] = {}
    if icc:
        options["icc_profile"] = icc
    if exif:
        options["exif"] = exif
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        options["quality"] = quality
    elif fmt == "PNG":
        options.update(PNG_OPTIONS)
    image.save(tmp, format=fmt, **options)


def _write_png16(tmp: Path, pixels: np.ndarray, icc: bytes | None, exif: bytes | None) -> None:
    """16-bit PNG by pypng, with iCCP and eXIf chunks put right after IHDR."""
    height, width, channels = pixels.shape
    writer = png.Writer(width, height, greyscale=channels <= 2, alpha=channels in (2, 4), bitdepth=16)
    buffer = io.BytesIO()
    writer.write_packed(buffer, (row.tobytes() for row in pixels.astype(">u2").reshape(height, -1)))
    data = buffer.getvalue()
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00"))
    ihdr_end = len(_PNG_SIGNATURE) + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    tmp.write_bytes(data[:ihdr_end] + extra + data[ihdr_end:])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_tiff(tmp: Path, pixels: np.ndarray, icc: bytes | None) -> None:
    channels = pixels.shape[2]
    options: dict[str, object] = {"photometric": "minisblack" if channels <= 2 else "rgb",
                                  "compression": "zlib", "metadata": None}
    if channels in (2, 4):
        options["extrasamples"] = ("unassalpha",)
    if icc:
        options["iccprofile"] = icc
    tifffile.imwrite(tmp, pixels[:, :, 0] if channels == 1 else pixels, **options)
