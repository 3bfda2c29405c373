"""Join the encoded chunks without re-encoding and mux the input's audio and subtitles beside them.

Chunks are joined by the concat demuxer; each chunk's exact start is given as a ``duration`` line, rounded
to the microsecond from the exact (fractional) time so that rounding never accumulates across chunks. Audio
and subtitles are copied where the container holds their codec, else converted (and said so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from sr_cli.errors import OutputError
from sr_cli.video import ffmpeg
from sr_cli.video.probe import VideoInfo
from sr_cli.video.timing import Timeline, microseconds

AUDIO_COPY = {"mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
              "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be"},
              "webm": {"opus", "vorbis"}}
AUDIO_ENCODE = {"mp4": ("aac", "192k"), "mov": ("aac", "192k"), "webm": ("libopus", "128k")}
TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
SUBTITLE_CODEC = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt"}
MUXER_FLAGS = {"mp4": ["-movflags", "+faststart"], "mov": ["-movflags", "+faststart"]}


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
            "-map", "0:v", *plan.maps, "-c:v", "copy", *colour_flags, *plan.options]
    if plan.maps and start:  # the seek lands on a video keyframe: drop the audio and subtitles before --start
        args += ["-copypriorss:a", "0", "-copypriorss:s", "0"]
    args += ["-tag:v", "hvc1"] if codec == "libx265" and container in ("mp4", "mov") else []
    return [*args, *MUXER_FLAGS.get(container, []), "-f", container, "-y", str(target)]


def mux(concat: Path, info: VideoInfo, container: str, colour_flags: list[str], plan: StreamPlan,
        start: Fraction, duration: Fraction | None, codec: str, target: Path) -> None:
    """Run ``mux_command``; OutputError with ffmpeg's reason when it fails."""
    _run(mux_command(concat, info, container, colour_flags, plan, start, duration, codec, target),
         f"writing {target.suffix} output")


def make_gif(concat: Path, palette: Path, target: Path) -> None:
    """Two passes over the joined chunks: one palette for the whole animation, then the GIF itself."""
    _run(["-f", "concat", "-safe", "0", "-i", str(concat), "-vf", "palettegen=stats_mode=full", "-frames:v", "1",
          "-update", "1", "-y", str(palette)], "making the GIF palette")
    _run(["-f", "concat", "-safe", "0", "-i", str(concat), "-i", str(palette), "-lavfi",
          "[0:v][1:v]paletteuse=dither=sierra2_4a", "-fps_mode", "passthrough", "-loop", "0", "-f", "gif", "-y",
          str(target)], "writing the GIF")
