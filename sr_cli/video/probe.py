"""What a video holds, read from ffmpeg itself (there is no ffprobe).

``ffmpeg -i`` names the container and the streams. One decoding pass with ``showinfo`` gives every frame's
exact timestamp, the time base, the frame rate as a fraction, the size and the colour tags; a packet pass
(``-c copy -f framecrc``) gives the timestamps the decoder should have produced, so a frame that failed to
decode is found and placed instead of vanishing.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections import deque
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from sr_cli import signals
from sr_cli.errors import InputError
from sr_cli.video import ffmpeg
from sr_cli.video.timing import Timeline

_INPUT = re.compile(r"^Input #0, (.+), from '")
_START = re.compile(r"Duration: .*, start: (-?\d+(?:\.\d+)?)")
_STREAM = re.compile(r"^(\s*)Stream #0:(\d+)(?:\[[^\]]*\])?(?:\(([^)]*)\))?: (\w+): ([^\s,]+)")
_DISPOSITIONS = re.compile(r"(?: \((?:default|dub|original|comment|lyrics|karaoke|forced|hearing impaired|"
                           r"visual impaired|clean effects|attached pic|timed thumbnails|non-diegetic|captions|"
                           r"descriptions|metadata|dependent|still image|multilayer)\))+$")
_CONFIG = re.compile(r"config in time_base: (\d+)/(\d+), frame_rate: (\d+)/(\d+)")
_FRAME = re.compile(r"\] n:\s*\d+ pts:\s*(-?\d+|NOPTS) .*?duration:\s*(-?\d+) .* sar:(\d+)/(\d+) s:(\d+)x(\d+)")
_FMT = re.compile(r" fmt:(\S+)")
_DEPTH = re.compile(r"(\d+)(?:le|be)$")
_SIXTEEN_BIT_PACKED = ("rgb48", "bgr48", "rgba64", "bgra64")
_COLOUR = re.compile(r"color_range:(\S+) color_space:(\S+) color_primaries:(\S+) color_trc:(\S+)")
_DECODE_ERROR = re.compile(r"error submitting packet to decoder|decoding error|error while decoding|concealing", re.I)
_NOPTS = -(2**63)


@dataclass(frozen=True)
class Stream:
    """One stream of the input as ``ffmpeg -i`` lists it."""

    index: int
    kind: str  # video | audio | subtitle | data | attachment
    codec: str
    attached_pic: bool = False
    tags: dict[str, str] = field(default_factory=dict)  # its metadata, the language among them
    dispositions: list[str] = field(default_factory=list)  # in -disposition spelling: default, forced, ...


@dataclass
class Colour:
    """Colour tags of the video stream in ffmpeg's option spelling; None where unknown."""

    range: str | None = None
    space: str | None = None
    primaries: str | None = None
    trc: str | None = None


@dataclass
class VideoInfo:
    """The input's container, streams and the video stream's frames in the selected time range."""

    path: Path
    container: str
    start: Fraction  # container start time in seconds
    streams: list[Stream]
    stream: int  # index of the video stream used
    codec: str
    width: int
    height: int
    sar: Fraction | None
    colour: Colour
    timeline: Timeline
    decode_errors: list[str] = field(default_factory=list)
    depth: int = 8  # bits a sample of the decoded frames

    @property
    def deep(self) -> bool:
        """Whether frames travel as 16 bits a channel (the source has more than 8)."""
        return self.depth > 8

    @property
    def frames(self) -> int:
        """Frames to process (decoded and undecodable slots)."""
        return len(self.timeline.pts)

    def others(self, kind: str) -> list[Stream]:
        """Streams of one kind other than the video used."""
        return [s for s in self.streams if s.kind == kind and s.index != self.stream]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form, stored in the work folder for other ranks and --resume."""
        return {"path": str(self.path), "container": self.container, "start": str(self.start),
                "streams": [asdict(s) for s in self.streams], "stream": self.stream, "codec": self.codec,
                "width": self.width, "height": self.height, "sar": str(self.sar) if self.sar else None,
                "colour": asdict(self.colour), "timeline": self.timeline.to_json(),
                "decode_errors": self.decode_errors, "depth": self.depth}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> VideoInfo:
        """Inverse of ``to_json``."""
        return cls(Path(doc["path"]), doc["container"], Fraction(doc["start"]),
                   [Stream(**s) for s in doc["streams"]], doc["stream"], doc["codec"], doc["width"],
                   doc["height"], Fraction(doc["sar"]) if doc["sar"] else None, Colour(**doc["colour"]),
                   Timeline.from_json(doc["timeline"]), doc["decode_errors"], doc.get("depth", 8))


def read_header(path: Path) -> tuple[str, Fraction, list[Stream]]:
    """Container name, start time and streams from ``ffmpeg -i``; InputError when it is not readable media."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    stderr = ffmpeg.run(["-i", str(path)]).stderr
    container = next((m.group(1) for m in map(_INPUT.match, stderr.splitlines()) if m), None)
    if container is None:
        raise InputError(f"{path}: not a video ffmpeg can read ({ffmpeg.error_line(stderr)})")
    start = next((Fraction(m.group(1)) for m in map(_START.search, stderr.splitlines()) if m), Fraction(0))
    return container, start, _streams(stderr.splitlines())


def _streams(lines: list[str]) -> list[Stream]:
    """The streams ``ffmpeg -i`` lists, each with its language, dispositions and the tags under its line."""
    streams: list[Stream] = []
    indent: int | None = None  # the current stream line's indentation (None: outside a stream's block)
    tags_at: int | None = None  # its "Metadata:" line's indentation while in that block
    key = ""
    for line in lines:
        depth = len(line) - len(line.lstrip())
        if (m := _STREAM.match(line)) is not None:
            flags = _DISPOSITIONS.search(line)
            dispositions = [f.replace(" ", "_").replace("-", "_")
                            for f in re.findall(r"\(([^)]+)\)", flags.group(0) if flags else "")]
            streams.append(Stream(int(m.group(2)), m.group(4).lower(), m.group(5), "attached_pic" in dispositions,
                                  {"language": m.group(3)} if m.group(3) else {}, dispositions))
            indent, tags_at = depth, None
        elif indent is None or depth <= indent:
            indent = tags_at = None
        elif line.strip() == "Metadata:":
            tags_at, key = depth, ""
        elif tags_at is not None and depth > tags_at and ":" in line:
            name, _, value = line.strip().partition(":")
            if name.strip():
                key = name.strip()
                streams[-1].tags[key] = value.strip()
            elif key:  # the next line of a value
                streams[-1].tags[key] += "\n" + value.strip()
        else:
            tags_at = None
    return streams


def video_stream(path: Path, container: str, streams: list[Stream]) -> Stream:
    """The stream to upscale: the first video stream that is not cover art."""
    if container == "image2" or container.endswith("_pipe"):
        raise InputError(f"{path}: a still image, not a video (use `srtool upscale` for images)")
    video = [s for s in streams if s.kind == "video" and not s.attached_pic]
    if not video:
        raise InputError(f"{path}: no video stream (streams: {', '.join(s.kind for s in streams) or 'none'})")
    if video[0].codec == "none":
        raise InputError(f"{path}: the video stream's codec is unknown to this ffmpeg, which cannot decode it")
    return video[0]


def _seek_args(start: Fraction) -> list[str]:
    """Fast seek a second before ``start`` (relative to the container start); frames are then picked by time."""
    at = start - 1
    return ["-ss", ffmpeg.seconds(at), "-noaccurate_seek"] if at > 0 else []


@dataclass
class _Decoded:
    """What the decoding pass saw."""

    time_base: Fraction = Fraction(1)
    rate: Fraction = Fraction(0)
    frames: list[tuple[int, int, Fraction, int, int]] = field(default_factory=list)  # pts, duration, sar, w, h
    colour: Colour | None = None
    errors: list[str] = field(default_factory=list)
    configured: bool = False
    pix_fmt: str | None = None


def _decode_pass(path: Path, index: int, seek: list[str], end: Fraction | None) -> _Decoded:
    """Decode the stream once, reading every frame's timestamp, size and colour tags from ``showinfo``."""
    args = ffmpeg.command("-copyts", *seek, "-i", str(path), "-map", f"0:{index}", "-vf", "showinfo=checksum=0",
                          "-fps_mode", "passthrough", "-f", "null", "-")
    seen, tail = _Decoded(), deque(maxlen=20)
    with signals.spawn(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       errors="replace") as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            # showinfo writes a frame's line in several parts, so a decoder error can land inside it: look first
            if (error := _DECODE_ERROR.search(line)) is not None:
                seen.errors.append(ffmpeg.error_line(line[error.start():]))
            if (m := _FRAME.search(line)) is not None:
                pts = int(m.group(1)) if m.group(1) != "NOPTS" else None
                if pts is None or (end is not None and pts * seen.time_base >= end):
                    proc.terminate()
                    if pts is None:
                        raise InputError(f"{path}: a decoded frame has no timestamp (remux the file first)")
                    break
                seen.frames.append((pts, int(m.group(2)), Fraction(int(m.group(3)), int(m.group(4)) or 1),
                                    int(m.group(5)), int(m.group(6))))
                if seen.pix_fmt is None and (fmt := _FMT.search(line)) is not None:
                    seen.pix_fmt = fmt.group(1)
            elif not seen.configured and (m := _CONFIG.search(line)) is not None:
                num, den, rate_num, rate_den = map(int, m.groups())
                seen.time_base, seen.configured = Fraction(num, den), True
                seen.rate = Fraction(rate_num, rate_den) if rate_den else Fraction(0)
            elif seen.colour is None and (m := _COLOUR.search(line)) is not None:
                seen.colour = Colour(*[None if tag in ("unknown", "unspecified", "reserved") else tag
                                       for tag in m.groups()])
            elif error is None:
                tail.append(line)
    if not seen.frames and proc.returncode not in (0, -signal.SIGTERM):
        raise InputError(f"{path}: ffmpeg cannot decode the video stream ({ffmpeg.error_line(''.join(tail))})")
    return seen


def _packet_pts(path: Path, index: int, seek: list[str], end: Fraction | None) -> tuple[Fraction, list[int]]:
    """Presentation timestamps of the stream's packets (no decoding): what the decoder should have produced."""
    args = ffmpeg.command("-v", "error", "-copyts", *seek, "-i", str(path), "-map", f"0:{index}", "-c", "copy",
                          "-f", "framecrc", "-")
    tb, pts = Fraction(0), []
    with signals.spawn(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        for line in proc.stdout or ():
            if line.startswith("#tb 0:"):
                num, den = line.split(":")[1].strip().split("/")
                tb = Fraction(int(num), int(den))
            elif not line.startswith("#"):
                fields = [f.strip() for f in line.split(",")]
                dts, value = int(fields[1]), int(fields[2])
                if end is not None and dts != _NOPTS and dts * tb >= end:
                    proc.terminate()
                    break
                pts.append(value)
        proc.wait()
    return tb, pts


def probe(path: Path, start: Fraction = Fraction(0), duration: Fraction | None = None) -> VideoInfo:
    """Read the input's streams and the video frames in ``[start, start + duration)`` (seconds from its start)."""
    path = Path(path)
    container, origin, streams = read_header(path)
    stream = video_stream(path, container, streams)
    seek = _seek_args(start)
    begin = origin + start
    end = None if duration is None else begin + duration
    seen = _decode_pass(path, stream.index, seek, end)
    tb = seen.time_base
    frames = [f for f in seen.frames if f[0] * tb >= begin]
    if not frames:
        raise InputError(f"{path}: no video frames {'after --start' if start else 'could be decoded'}")
    sizes = list(dict.fromkeys((f[3], f[4]) for f in frames))
    if len(sizes) > 1:
        raise InputError(f"{path}: the frame size changes mid-stream ({' → '.join(f'{w}x{h}' for w, h in sizes)}), "
                         "which srtool does not support")
    decoded = [f[0] for f in frames]
    missing: list[int] = []
    if seen.errors:  # place the frames that failed to decode, from the packets' timestamps
        ptb, packets = _packet_pts(path, stream.index, seek, end)
        wanted = {p * ptb for p in packets if p != _NOPTS and p * ptb >= begin}
        have = {p * tb for p in decoded}
        if ptb and have <= wanted:
            missing = sorted(int(t / tb) for t in wanted - have if (t / tb).denominator == 1)
    timeline = Timeline.build(tb, seen.rate, decoded, missing, last_duration=frames[-1][1])
    w, h = sizes[0]
    return VideoInfo(path, container, origin, streams, stream.index, stream.codec, w, h, frames[0][2] or None,
                     seen.colour or Colour(), timeline, seen.errors, bit_depth(seen.pix_fmt or ""))


def bit_depth(pix_fmt: str) -> int:
    """Bits a sample of an ffmpeg pixel format, at most 16: 10 for yuv420p10le, 16 for rgb48le, gray16be or
    gbrpf32le, else 8."""
    if pix_fmt.startswith(_SIXTEEN_BIT_PACKED):
        return 16
    m = _DEPTH.search(pix_fmt)
    return min(int(m.group(1)), 16) if m and int(m.group(1)) > 8 else 8  # float formats (f32) carried as 16
