"""Join the encoded chunks without re-encoding and mux the input's audio and subtitles beside them.

Chunks are joined by the concat demuxer; each chunk's exact start is given as a ``duration`` line, rounded
to the microsecond from the exact (fractional) time so that rounding never accumulates across chunks. Audio
and subtitles are copied where the container holds their codec, else converted (and said so); every stream
keeps its tags (language, title, ...) and dispositions. A GIF gets each frame's delay from the exact timeline,
rounded on the running total to GIF's centiseconds, and an input GIF's loop count.
"""

from __future__ import annotations

import itertools
import math
import mmap
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from PIL import Image

from sr_cli.errors import OutputError
from sr_cli.video import ffmpeg
from sr_cli.video.probe import Stream, VideoInfo
from sr_cli.video.timing import Timeline, microseconds

AUDIO_COPY = {"mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
              "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be"},
              "webm": {"opus", "vorbis"}}
AUDIO_ENCODE = {"mp4": ("aac", "192k"), "mov": ("aac", "192k"), "webm": ("libopus", "128k")}
TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
SUBTITLE_CODEC = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt"}
MUXER_FLAGS = {"mp4": ["-movflags", "+faststart"], "mov": ["-movflags", "+faststart"]}
# Tags that describe the input's encoding of the video (encoder, statistics), not what it shows: not carried.
STALE_TAG = re.compile(r"(encoder|vendor_id|duration|bps|number_of_frames|number_of_bytes|_statistics_\w+)(-\w+)?",
                       re.IGNORECASE)


@dataclass
class StreamPlan:
    """Which input streams go beside the video, with their codec options, and what was changed."""

    maps: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_streams(info: VideoInfo, container: str, audio: bool) -> StreamPlan:
    """Audio and subtitle streams for ``container``: copied when it holds them, converted or dropped if not."""
    plan = StreamPlan()
    extras = info.others("audio") + info.others("subtitle")
    if container == "gif":
        if extras and audio:
            plan.notes.append("a GIF holds no audio or subtitles: they are not copied")
        return plan
    if not audio:
        return plan
    n_audio = n_subs = 0
    for stream in info.others("audio"):
        plan.maps += ["-map", f"1:{stream.index}"]
        allowed = AUDIO_COPY.get(container)
        if allowed is None or stream.codec in allowed:
            plan.options += [f"-c:a:{n_audio}", "copy"]
        else:
            codec, rate = AUDIO_ENCODE[container]
            plan.options += [f"-c:a:{n_audio}", codec, f"-b:a:{n_audio}", rate]
            plan.notes.append(f"audio stream {stream.index} ({stream.codec}) re-encoded to {codec}: "
                              f"a .{container} file cannot hold {stream.codec}")
        n_audio += 1
    for stream in info.others("subtitle"):
        target = SUBTITLE_CODEC.get(container)
        if container == "matroska" and stream.codec == "mov_text":
            target = "srt"  # Matroska holds every text format but MP4's
        if target is None or stream.codec == target:
            plan.options += [f"-c:s:{n_subs}", "copy"]
        elif stream.codec in TEXT_SUBTITLES:
            plan.options += [f"-c:s:{n_subs}", target]
            plan.notes.append(f"subtitle stream {stream.index} ({stream.codec}) converted to {target}")
        else:
            plan.notes.append(f"subtitle stream {stream.index} ({stream.codec}, a picture format) dropped: "
                              f"a .{container} file cannot hold it (use .mkv)")
            continue
        plan.maps += ["-map", f"1:{stream.index}"]
        n_subs += 1
    if container == "matroska":
        plan.maps += ["-map", "1:t?"]  # fonts for ASS subtitles
    return plan


def write_concat_list(path: Path, chunks: list[tuple[Path, int, int]], timeline: Timeline) -> Path:
    """An ffconcat list of ``(file, a, b)`` chunks whose durations add up to the exact chunk start times."""
    lines = ["ffconcat version 1.0"]
    for file, a, b in chunks:
        length = microseconds(timeline.offset(b)) - microseconds(timeline.offset(a))
        lines += [f"file '{file.name}'", f"duration {length}us"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(args: list[str], what: str) -> None:
    done = ffmpeg.run(["-v", "error", *args])
    if done.returncode != 0:
        raise OutputError(f"{what} failed: {ffmpeg.error_line(done.stderr)}")


def mux_command(concat: Path, info: VideoInfo, container: str, colour_flags: list[str], plan: StreamPlan,
                start: Fraction, duration: Fraction | None, codec: str, target: Path) -> list[str]:
    """Join the chunks (video copied) with the planned streams and the metadata of the input into ``target``."""
    lead = info.timeline.seconds(0) - info.start - start  # the first frame's place against the audio
    args = ["-f", "concat", "-safe", "0", *(["-itsoffset", ffmpeg.seconds(lead)] if plan.maps and lead else []),
            "-i", str(concat), *(["-ss", ffmpeg.seconds(start)] if start else []),
            *(["-t", ffmpeg.seconds(duration)] if duration is not None else []), "-i", str(info.path),
            "-map_metadata", "1", *(["-map_chapters", "1"] if not start and duration is None else []),
            "-map", "0:v", *plan.maps, "-c:v", "copy", *colour_flags, *plan.options,
            *video_metadata(next(s for s in info.streams if s.index == info.stream))]
    if plan.maps and start:  # the seek lands on a video keyframe: drop the audio and subtitles before --start
        args += ["-copypriorss:a", "0", "-copypriorss:s", "0"]
    args += ["-tag:v", "hvc1"] if codec == "libx265" and container in ("mp4", "mov") else []
    return [*args, *MUXER_FLAGS.get(container, []), "-f", container, "-y", str(target)]


def mux(concat: Path, info: VideoInfo, container: str, colour_flags: list[str], plan: StreamPlan,
        start: Fraction, duration: Fraction | None, codec: str, target: Path) -> None:
    """Run ``mux_command``; OutputError with ffmpeg's reason when it fails."""
    _run(mux_command(concat, info, container, colour_flags, plan, start, duration, codec, target),
         f"writing {target.suffix} output")


def video_metadata(stream: Stream) -> list[str]:
    """Output options giving the joined video the input video's tags (less the stale ones) and dispositions.

    The audio and subtitles, mapped from the input itself, get theirs from ffmpeg; the video comes from the
    chunks, which hold none of them. An MP4 track's title reads back as ``name``: it goes back as the title.
    """
    tags = {key: value for key, value in stream.tags.items() if not STALE_TAG.fullmatch(key)}
    if "name" in tags and "title" not in tags:
        tags["title"] = tags.pop("name")
    options = [arg for key, value in tags.items() for arg in ("-metadata:s:v:0", f"{key}={value}")]
    return [*options, "-disposition:v:0", "+".join(stream.dispositions) or "0"]


def gif_delays(timeline: Timeline) -> list[int]:
    """Each frame's delay in centiseconds (GIF's unit), rounded on the running total: frame i shows from its
    exact time rounded half up, so no frame strays 5 ms from its time and the delays add up to the length."""
    marks = [math.floor(timeline.offset(i) * 100 + Fraction(1, 2)) for i in range(len(timeline) + 1)]
    return [b - a for a, b in itertools.pairwise(marks)]


def gif_loop(info: VideoInfo) -> int:
    """The gif muxer's ``-loop`` for this input: an input GIF's own count (-1: it plays once), else 0 (forever)."""
    if info.container != "gif":
        return 0
    try:
        with Image.open(info.path) as gif:
            loop = gif.info.get("loop")
    except OSError:  # a GIF that ffmpeg reads and Pillow does not: loop forever, as GIFs mostly do
        return 0
    return -1 if loop is None else int(loop)


def make_gif(concat: Path, palette: Path, target: Path, info: VideoInfo) -> None:
    """Two passes over the joined chunks: one palette for the whole animation, then the GIF itself. Its frame
    delays are then written from the exact timeline: ffmpeg's come from timestamps rounded on the way, are never
    0, and give the last frame its chunk packet's length."""
    _run(["-f", "concat", "-safe", "0", "-i", str(concat), "-vf", "palettegen=stats_mode=full", "-frames:v", "1",
          "-update", "1", "-y", str(palette)], "making the GIF palette")
    _run(["-f", "concat", "-safe", "0", "-i", str(concat), "-i", str(palette), "-lavfi",
          "[0:v][1:v]paletteuse=dither=sierra2_4a", "-fps_mode", "passthrough", "-loop", str(gif_loop(info)),
          "-f", "gif", "-y", str(target)], "writing the GIF")
    set_gif_delays(target, gif_delays(info.timeline))


def set_gif_delays(path: Path, delays: list[int]) -> None:
    """Write ``delays`` (centiseconds, one a frame) into the GIF's graphic control extensions, in place."""
    with open(path, "r+b") as file, mmap.mmap(file.fileno(), 0) as data:
        try:
            spots = _delay_offsets(data)
        except IndexError:
            raise OutputError("the GIF ffmpeg wrote ends early") from None
        if len(spots) != len(delays):
            raise OutputError(f"the GIF ffmpeg wrote has {len(spots)} frame delays for {len(delays)} frames")
        for spot, delay in zip(spots, delays):
            data[spot:spot + 2] = min(delay, 0xFFFF).to_bytes(2, "little")


def _delay_offsets(data: mmap.mmap) -> list[int]:
    """Where each frame's delay lies in a GIF: the walk over its blocks (GIF89a's layout)."""
    spots: list[int] = []
    at = 13 + _colour_table(data[10])  # past the header, the screen descriptor and the global colours
    while data[at] != 0x3B:  # the trailer
        if data[at] == 0x21:  # an extension: its label, then data blocks
            if data[at + 1] == 0xF9:  # graphic control: size 4, flags, then the delay
                spots.append(at + 4)
            at = _skip_blocks(data, at + 2)
        elif data[at] == 0x2C:  # an image: descriptor, local colours, LZW code size, then data blocks
            at = _skip_blocks(data, at + 10 + _colour_table(data[at + 9]) + 1)
        else:
            raise OutputError(f"the GIF ffmpeg wrote has an unknown block at byte {at}")
    return spots


def _colour_table(flags: int) -> int:
    """Bytes of the colour table that a screen or image descriptor's flags announce."""
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _skip_blocks(data: mmap.mmap, at: int) -> int:
    """The offset after the data blocks (each a size byte, then that many bytes) that start at ``at``."""
    while data[at]:
        at += data[at] + 1
    return at + 1
