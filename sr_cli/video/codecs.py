"""Encoders and containers: per-codec defaults, odd-size pixel formats, colour flags, what each container holds."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from sr_cli.errors import UsageError
from sr_cli.video import ffmpeg
from sr_cli.video.probe import Colour

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".gif": "gif"}
ALIASES = {"h264": "libx264", "x264": "libx264", "avc": "libx264", "h265": "libx265", "hevc": "libx265",
           "x265": "libx265", "vp9": "libvpx-vp9"}
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
# Video encoders each container can hold (None: any).
VIDEO_IN = {"mp4": {"libx264", "libx265", "libvpx-vp9"}, "mov": {"libx264", "libx265"},
            "webm": {"libvpx-vp9"}, "matroska": None, "gif": {"gif"}}
RGB_PIX_FMTS = ("gbrp", "gbrp10le", "gbrp12le", "gbrp16le", "rgb24", "bgr24", "bgr0", "rgb0", "gbrap", "rgba", "bgra")


@dataclass(frozen=True)
class Defaults:
    """A codec's defaults: quality (CRF), speed preset, pixel format for even and for odd frame sizes, and the
    same for a source of more than 8 bits (None: the encoder takes 8 bits only)."""

    crf: int | None
    preset: str | None
    pix_fmt: str
    pix_fmt_odd: str
    extra: tuple[str, ...] = ()
    deep: tuple[str, str] | None = None  # (even, odd) pixel formats for a deep source
    cpu_preset: str | None = None  # the preset when the model runs on the CPU: the encoder shares its cores


TEN_BIT = ("yuv420p10le", "yuv444p10le")
CPU_PRESET = "ultrafast"  # benchmarks/video.py: the preset at which the encoder leaves ESPCN x2 >= 0.9 of its fps
CODECS = {
    "libx264": Defaults(18, "medium", "yuv420p", "yuv444p", deep=TEN_BIT, cpu_preset=CPU_PRESET),
    "libx265": Defaults(20, "medium", "yuv420p", "yuv444p", ("-x265-params", "log-level=error"), TEN_BIT,
                        CPU_PRESET),
    "libvpx-vp9": Defaults(31, "4", "yuv420p", "yuv444p", ("-b:v", "0", "-row-mt", "1", "-deadline", "good"),
                           TEN_BIT),
    "ffv1": Defaults(None, None, "gbrp", "gbrp", ("-level", "3"), ("gbrp16le", "gbrp16le")),
}
GENERIC = Defaults(None, None, "yuv420p", "yuv444p")


@dataclass
class Encoding:
    """How every chunk is encoded: ffmpeg output options and the filters that tag colour and aspect."""

    codec: str
    pix_fmt: str
    args: list[str]
    colour: list[str]  # output colour flags, applied at encode and again at the final mux
    filters: list[str]
    notes: list[str] = field(default_factory=list)


def container_of(path: Path) -> str:
    """The container format for an output file name; UsageError for an extension srtool does not write."""
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise UsageError(f"cannot write video as '{path.suffix or path.name}': use one of "
                         f"{', '.join(CONTAINERS)}") from None


def default_codec(container: str) -> str:
    """The encoder used when --codec is not given."""
    return {"webm": "libvpx-vp9", "gif": "gif"}.get(container, "libx264")


def _subsampled(pix_fmt: str) -> tuple[bool, bool]:
    """(width must be even, height must be even) for a pixel format."""
    if pix_fmt.startswith(("nv12", "nv21", "p010", "p016")) or "420" in pix_fmt or "410" in pix_fmt:
        return True, True
    if "422" in pix_fmt or "411" in pix_fmt or pix_fmt in ("yuyv422", "uyvy422"):
        return True, False
    return False, False


def colour_flags(colour: Colour, pix_fmt: str) -> tuple[list[str], list[str]]:
    """(output flags, frame-tag filters) carrying range, primaries, transfer and matrix to the output.

    YUV → YUV keeps the input's matrix and range; RGB output is tagged RGB full range; an RGB source (PNG,
    GIF) encoded as YUV gets the encoder's default matrix and range. Primaries and transfer always pass.
    """
    if pix_fmt in RGB_PIX_FMTS:
        flags = ["-colorspace", "rgb", "-color_range", "pc"]
    elif colour.space == "gbr":
        flags = []
    else:
        flags = (["-colorspace", colour.space] if colour.space else []) + (
            ["-color_range", colour.range] if colour.range else [])
    tags = [f"color_primaries={colour.primaries}"] if colour.primaries else []
    tags += [f"color_trc={colour.trc}"] if colour.trc else []
    flags += ["-color_primaries", colour.primaries] if colour.primaries else []
    flags += ["-color_trc", colour.trc] if colour.trc else []
    return flags, [f"setparams={':'.join(tags)}"] if tags else []


def plan_encoding(codec: str | None, crf: int | None, preset: str | None, pix_fmt: str | None,
                  ffmpeg_args: list[str], size: tuple[int, int], colour: Colour, container: str,
                  depth: int = 8, cpu_model: bool = False) -> Encoding:
    """Check the encoder options against the output size and container, and fill in the codec's defaults (for
    a source of more than 8 bits, ``depth``, the codec's deep pixel formats: 10-bit YUV, 16-bit RGB for ffv1;
    when the model runs on the CPU, ``cpu_model``, the codec's fast preset, so the encoder leaves it the cores)."""
    if container == "gif":
        if codec not in (None, "gif"):
            raise UsageError(f"a .gif output is encoded as GIF; --codec {codec} needs a video extension")
        if crf is not None or preset is not None or pix_fmt is not None:
            raise UsageError("--crf, --preset and --pix-fmt do not apply to a .gif output")
        codec = "ffv1"  # lossless chunks; the GIF is made from them at the end
    name = ALIASES.get((codec or default_codec(container)).lower(), codec or default_codec(container))
    if ffmpeg.encoders().get(name) != "V":
        raise UsageError(f"this ffmpeg has no video encoder '{name}' (try libx264, libx265, libvpx-vp9 or ffv1)")
    allowed = VIDEO_IN[container]
    if allowed is not None and name not in allowed and container != "gif":
        raise UsageError(f"{name} cannot go in a .{container.replace('matroska', 'mkv')} file: "
                         f"use {', '.join(sorted(allowed))}, or a .mkv output")
    defaults = CODECS.get(name, GENERIC)
    notes: list[str] = []
    width, height = size
    if pix_fmt is None:
        odd = width % 2 or height % 2
        even_fmt, odd_fmt = defaults.deep if depth > 8 and defaults.deep else (defaults.pix_fmt, defaults.pix_fmt_odd)
        pix_fmt = odd_fmt if odd else even_fmt
        if odd and pix_fmt != even_fmt:
            notes.append(f"odd output size {width}x{height}: encoding {pix_fmt} ({even_fmt} needs even sizes)")
        if depth > 8 and container != "gif":
            notes.append(f"a {depth}-bit source: frames carried in 16 bits, encoded {pix_fmt}"
                         + ("" if defaults.deep else f" ({name} takes 8 bits)"))
    need_w, need_h = _subsampled(pix_fmt)
    if (need_w and width % 2) or (need_h and height % 2):
        raise UsageError(f"--pix-fmt {pix_fmt} needs an even {'width' if need_w and width % 2 else 'height'}, "
                         f"but the output is {width}x{height}: use yuv444p")
    args = ["-c:v", name, "-pix_fmt", pix_fmt, *defaults.extra]
    if crf is not None and name == "ffv1":
        raise UsageError("--crf does not apply to ffv1 (lossless)")
    crf = defaults.crf if crf is None else crf
    if crf is not None:
        args += ["-crf", str(crf)]
    if preset is None:
        preset = defaults.cpu_preset if cpu_model and defaults.cpu_preset else defaults.preset
    if preset is not None:
        args += _preset_args(name, preset)
    flags, filters = colour_flags(colour, pix_fmt)
    extra = [arg for value in ffmpeg_args for arg in shlex.split(value)]
    return Encoding(name, pix_fmt, args + flags + extra, flags, filters, notes)


def _preset_args(codec: str, preset: str) -> list[str]:
    """``--preset`` for each encoder: x264/x265 preset names, VP9 cpu-used 0..8."""
    if codec in ("libx264", "libx265"):
        if preset not in X264_PRESETS:
            raise UsageError(f"--preset {preset} is not a {codec} preset: use one of {', '.join(X264_PRESETS)}")
        return ["-preset", preset]
    if codec == "libvpx-vp9":
        if not preset.isdigit() or int(preset) > 8:
            raise UsageError(f"--preset for libvpx-vp9 is its speed, 0 (best) to 8 (fastest); got '{preset}'")
        return ["-cpu-used", preset]
    if codec in CODECS:
        raise UsageError(f"--preset does not apply to {codec}")
    return ["-preset", preset]
