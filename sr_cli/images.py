"""Reading and writing image files: bit depth, gray, alpha, EXIF orientation, ICC/EXIF carry-over, atomic writes.

Reading
  * The format is recognised from the file's bytes, not its name: PNG, JPEG, WebP and BMP are decoded by Pillow,
    16-bit PNG by pypng (Pillow keeps only the high byte of 48/64-bit PNG), TIFF by tifffile (8 or 16 bit).
  * The bit depth comes from the header (PNG IHDR, TIFF BitsPerSample), never from the pixel values.
  * Channels are kept: gray (C=1), gray+alpha (2), RGB (3), RGBA (4); palette and bilevel images become
    RGB/RGBA/gray, CMYK and YCbCr become RGB.
  * The EXIF orientation (the TIFF Orientation tag for TIFF) is applied; the EXIF kept on the picture says 1.
  * The pixel count is checked from the header before any pixel is decoded (``DEFAULT_MAX_PIXELS``,
    configurable per call); Pillow's own decompression-bomb limit is replaced by this one, so no
    DecompressionBombWarning is shown. Truncated files are refused (Pillow's LOAD_TRUNCATED_IMAGES stays False).

Writing (format from the suffix, always through ``atomic_path``)
  * PNG and TIFF keep 16 bits; JPEG, WebP and BMP are 8-bit formats, so 16-bit pictures are rounded to 8 bits.
  * Alpha is kept by PNG, TIFF and WebP. JPEG and BMP have none (Pillow's 32-bit BMP alpha is not read back by
    common readers): the picture is composited on white, as an image viewer would show it.
  * WebP has no gray: gray is written as RGB (RGBA with alpha).
  * The ICC profile is written to PNG (an iCCP chunk, 16-bit too), JPEG, WebP and TIFF, when its colour space
    (GRAY or RGB) matches the pixels written; BMP gets none. EXIF goes to PNG, JPEG and WebP with orientation 1
    and the pixel size updated; TIFF and BMP outputs carry no EXIF.
  * JPEG uses 4:4:4 chroma (no subsampling: upscaled detail is the point); JPEG/WebP quality defaults to 95.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import png
import tifffile
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from sr_cli.atomic import atomic_path
from sr_cli.errors import InputError, OutputError

# Suffix → format written.
FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                           ".tif": "TIFF", ".tiff": "TIFF"}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(FORMATS)
# 64 megapixels: a 61 MP camera photo passes; decoding one costs at most 512 MB (16-bit RGBA).
DEFAULT_MAX_PIXELS = 64_000_000
DEFAULT_QUALITY = 95

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PILLOW_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
_KNOWN = "a PNG, JPEG, WebP, BMP or TIFF image"
# Pillow mode → mode kept, without and with a transparent colour or palette entry (PNG tRNS).
_PILLOW_MODES = {"1": ("L", "LA"), "L": ("L", "LA"), "LA": ("LA", "LA"), "P": ("RGB", "RGBA"),
                 "RGB": ("RGB", "RGBA"), "RGBA": ("RGBA", "RGBA"), "CMYK": ("RGB", "RGB")}
# TIFF photometric interpretation → channel counts read (gray and RGB, each with an optional alpha).
_TIFF_CHANNELS = {tifffile.PHOTOMETRIC.MINISWHITE: (1, 2), tifffile.PHOTOMETRIC.MINISBLACK: (1, 2),
                  tifffile.PHOTOMETRIC.RGB: (3, 4), tifffile.PHOTOMETRIC.PALETTE: (1,)}
_ORIENTATION = ExifTags.Base.Orientation
_pillow_lock = threading.Lock()


@dataclass
class Picture:
    """Decoded pixels (H, W, C) uint8 or uint16 with what the file said about them."""

    pixels: np.ndarray
    bit_depth: int
    icc: bytes | None = None
    exif: bytes | None = None
    source_format: str = ""

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

    def to_float(self) -> np.ndarray:
        """(H, W, C) float32 in [0, 1]."""
        return self.pixels.astype(np.float32) / np.float32(self.max_value)

    @classmethod
    def from_float(cls, arr: np.ndarray, bit_depth: int, icc: bytes | None = None, exif: bytes | None = None,
                   fmt: str = "") -> Picture:
        """Round (H, W, C) floats in [0, 1] (clipped; NaN → 0) to ``bit_depth`` integers."""
        top = (1 << bit_depth) - 1
        values = np.rint(np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0) * top)
        return cls(values.astype(np.uint16 if bit_depth == 16 else np.uint8), bit_depth, icc, exif, fmt)


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has a suffix srtool reads and writes."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


# ---------------------------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode ``path``; InputError (one line naming the file) if it is missing, not an image, corrupt,
    empty or over ``max_pixels`` (checked from the header, before decoding)."""
    path = Path(path)
    head = _read_head(path)
    if head.startswith(_PNG_SIGNATURE):
        width, height, depth = _png_header(path, head)
        _check_size(path, width, height, max_pixels)
        if depth == 16:
            return _read_png16(path)
    elif head[:4] in _TIFF_MAGICS:
        return _read_tiff(path, max_pixels)
    return _read_pillow(path, max_pixels)


def _read_head(path: Path) -> bytes:
    """The first bytes of the file, after checking it is a readable, non-empty file."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file")
    try:
        with path.open("rb") as f:
            head = f.read(32)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if not head:
        raise InputError(f"{path}: empty file (0 bytes), not an image")
    return head


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


@contextlib.contextmanager
def _pillow_guarded() -> Iterator[None]:
    """Pillow with its decompression-bomb limit off (ours is checked instead) and truncated files refused."""
    with _pillow_lock:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = None, False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _open_pillow(path: Path) -> Image.Image:
    """Open (header only) with Pillow, limited to the formats srtool supports."""
    try:
        return Image.open(path, formats=_PILLOW_FORMATS)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not {_KNOWN}") from None
    except Exception as err:  # any decoder failure on foreign bytes is the file's fault
        raise _corrupt(path, err) from None


def _read_pillow(path: Path, max_pixels: int) -> Picture:
    with _pillow_guarded(), _open_pillow(path) as im:
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
    return _finish(pixels, 8, icc, raw_exif, fmt)


def _read_png16(path: Path) -> Picture:
    """A 16-bit PNG: pixels by pypng, ICC and EXIF from Pillow's header parse."""
    with _pillow_guarded(), _open_pillow(path) as im:
        icc, raw_exif = im.info.get("icc_profile") or None, im.info.get("exif") or None
    try:
        with path.open("rb") as f:
            width, height, rows, info = png.Reader(file=f).read()
            pixels = np.stack([np.frombuffer(row, dtype=np.uint16) for row in rows])
    except Exception as err:  # pypng's FormatError/ChunkError, zlib errors, short reads
        raise _corrupt(path, err) from None
    if pixels.shape[0] != height:
        raise InputError(f"{path}: truncated or corrupt image ({pixels.shape[0]} of {height} rows)")
    pixels = pixels.reshape(height, width, info["planes"])
    if "transparent" in info:  # tRNS: one colour marked fully transparent
        opaque = np.any(pixels != np.asarray(info["transparent"], dtype=np.uint16), axis=2, keepdims=True)
        pixels = np.concatenate([pixels, np.where(opaque, 65535, 0).astype(np.uint16)], axis=2)
    return _finish(pixels, 16, icc, raw_exif, "PNG")


def _read_tiff(path: Path, max_pixels: int) -> Picture:
    try:
        tif = tifffile.TiffFile(path)
    except Exception as err:  # not a parsable TIFF structure
        raise _corrupt(path, err) from None
    with tif:
        page = tif.pages.first
        _check_size(path, page.imagewidth, page.imagelength, max_pixels)
        try:
            pixels = page.asarray()
        except Exception as err:  # truncated strips, unsupported compression, ...
            raise _corrupt(path, err) from None
        tags = page.tags
        icc_tag, orient_tag = tags.get("InterColorProfile"), tags.get("Orientation")
        icc = bytes(icc_tag.value) if icc_tag is not None else None
        orientation = int(orient_tag.value) if orient_tag is not None else 1
        photometric, extrasamples, axes, colormap = page.photometric, page.extrasamples, page.axes, page.colormap
    pixels = _tiff_layout(path, pixels, axes)
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: {pixels.dtype} TIFF samples are not supported (8- or 16-bit integers only)")
    allowed = _TIFF_CHANNELS.get(photometric, ())
    if pixels.shape[2] not in allowed or (photometric == tifffile.PHOTOMETRIC.PALETTE and colormap is None):
        name = getattr(photometric, "name", photometric)
        raise InputError(f"{path}: {name} TIFF with {pixels.shape[2]} samples per pixel is not supported")
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        pixels = np.concatenate([np.iinfo(pixels.dtype).max - pixels[:, :, :1], pixels[:, :, 1:]], axis=2)
    elif photometric == tifffile.PHOTOMETRIC.PALETTE:
        pixels = np.rint(colormap.T[pixels[:, :, 0]] / 257).astype(np.uint8)
    if extrasamples and extrasamples[0] == tifffile.EXTRASAMPLE.ASSOCALPHA and pixels.shape[2] in (2, 4):
        pixels = _unassociate(pixels)
    return Picture(np.ascontiguousarray(_orient(pixels, orientation)), 16 if pixels.dtype == np.uint16 else 8,
                   icc, None, "TIFF")


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


def _finish(pixels: np.ndarray, bit_depth: int, icc: bytes | None, raw_exif: bytes | None, fmt: str) -> Picture:
    """Apply the EXIF orientation and keep the EXIF with orientation 1."""
    exif, orientation = _load_exif(raw_exif)
    pixels = np.ascontiguousarray(_orient(pixels, orientation))
    if exif is not None and _ORIENTATION in exif:
        exif[_ORIENTATION] = 1
    return Picture(pixels, bit_depth, icc, exif.tobytes() if exif is not None else None, fmt)


def _load_exif(raw: bytes | None) -> tuple[Image.Exif | None, int]:
    """Parsed EXIF and its orientation (1 when absent); unparsable EXIF is dropped, not fatal."""
    if not raw:
        return None, 1
    exif = Image.Exif()
    try:
        exif.load(raw)
        orientation = int(exif.get(_ORIENTATION, 1))
    except Exception:  # malformed EXIF must not stop the image from being read
        return None, 1
    return exif, orientation if 1 <= orientation <= 8 else 1


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
    if _ORIENTATION in exif:
        exif[_ORIENTATION] = 1
    sub = exif.get_ifd(ExifTags.IFD.Exif) if ExifTags.IFD.Exif in exif else {}
    for tag, value in ((ExifTags.Base.ExifImageWidth, width), (ExifTags.Base.ExifImageHeight, height)):
        if tag in sub:
            sub[tag] = value
    return exif.tobytes()


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
