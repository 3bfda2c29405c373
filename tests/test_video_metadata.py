"""``srtool video`` keeps what the frames do not show: GIF frame delays and loop count, stream tags and dispositions.

Clips are tiny (32x24, a dozen frames) and upscaled with ``-m nearest -s 2``; outputs are read back with
Pillow (GIF delays) and ``ffmpeg -i`` (tags and dispositions, through the probe's own reading).
"""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image, ImageSequence
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.video.ffmpeg import ffmpeg_exe
from sr_cli.video.mux import gif_delays, set_gif_delays
from sr_cli.video.probe import Stream, read_header
from sr_cli.video.timing import Timeline

runner = CliRunner()
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


def upscale(src: Path, out: Path) -> None:
    result = runner.invoke(app, ["video", str(src), "-o", str(out), "-m", "nearest", "-s", "2"])
    assert result.exit_code == 0, result.stderr


def ff(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *args], check=True)


def make_gif(path: Path, delays: list[int], **options: int) -> Path:
    frames = [Image.new("RGB", (32, 24), colour) for colour in COLOURS[:len(delays)]]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=delays, **options)
    return path


def gif_timing(path: Path) -> tuple[list[int], int | None]:
    """(each frame's delay in ms, loop count or None) as Pillow reads them."""
    with Image.open(path) as gif:
        return [frame.info["duration"] for frame in ImageSequence.Iterator(gif)], gif.info.get("loop")


def frame_times(path: Path) -> list[Fraction]:
    err = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-vf", "showinfo",
                          "-fps_mode", "passthrough", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    tb = Fraction(*map(int, re.search(r"config in time_base: (\d+)/(\d+)", err).groups()))
    return [int(p) * tb for p in re.findall(r"\] n:\s*\d+ pts:\s*(-?\d+)", err)]


def test_gif_keeps_each_frame_delay_and_the_loop_count(tmp_path: Path) -> None:
    delays = [50, 20, 20, 30, 70, 40]
    src = make_gif(tmp_path / "in.gif", delays, loop=2)
    upscale(src, tmp_path / "out.gif")
    got, loop = gif_timing(tmp_path / "out.gif")
    assert got == delays and sum(got) == sum(delays) and loop == 2
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.size == (64, 48) and gif.n_frames == 6


def test_gif_that_plays_once_still_plays_once(tmp_path: Path) -> None:
    upscale(make_gif(tmp_path / "in.gif", [30, 60, 20]), tmp_path / "out.gif")
    assert gif_timing(tmp_path / "out.gif") == ([30, 60, 20], None)


def test_gif_from_30_fps_rounds_the_running_total(tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    ff("-f", "lavfi", "-i", "testsrc=size=32x24:rate=30", "-frames:v", "12", "-c:v", "libx264", str(src))
    upscale(src, tmp_path / "out.gif")
    delays, loop = gif_timing(tmp_path / "out.gif")
    assert len(delays) == 12 and loop == 0
    total = 0
    for i, delay in enumerate(delays):
        total += delay
        assert abs(total - Fraction(1000 * (i + 1), 30)) <= 5  # frame i + 1 starts within 5 ms of its time
    assert sum(delays) == 400 and delays[:3] == [30, 40, 30]


def test_gif_delays_round_the_running_total_even_to_zero() -> None:
    fast = Timeline(Fraction(1, 240), Fraction(240), tuple(range(12)), frozenset(), 1)
    assert gif_delays(fast) == [0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0]  # 5 cs: 12/240 s
    vfr = Timeline(Fraction(1, 1000), None, (0, 33, 67, 100), frozenset(), 35)
    assert gif_delays(vfr) == [3, 4, 3, 4]


def test_set_gif_delays_writes_every_frame(tmp_path: Path) -> None:
    gif = make_gif(tmp_path / "in.gif", [100, 100, 100, 100], loop=0)
    set_gif_delays(gif, [0, 7, 65535, 2])
    assert gif_timing(gif) == ([0, 70, 655350, 20], 0)


def test_gif_in_keeps_its_timing_in_mkv_and_mp4(tmp_path: Path) -> None:
    src = make_gif(tmp_path / "in.gif", [50, 20, 20, 30, 70, 40])
    want = [Fraction(t, 100) for t in (0, 5, 7, 9, 12, 19)]
    for name in ("out.mkv", "out.mp4"):
        upscale(src, tmp_path / name)
        assert frame_times(tmp_path / name) == want


def test_gif_in_keeps_its_last_frame_length_in_mkv(tmp_path: Path) -> None:
    upscale(make_gif(tmp_path / "in.gif", [50, 20, 20, 30, 70, 40]), tmp_path / "out.mkv")
    err = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / "out.mkv")], capture_output=True,
                         text=True, check=False).stderr  # ffmpeg -i alone exits 1: no output named
    assert "Duration: 00:00:00.23," in err


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An mkv whose video is English, titled "Main" with a two-line comment, with French default audio and German
    forced subtitles."""
    folder = tmp_path_factory.mktemp("tagged")
    subs = folder / "subs.srt"
    subs.write_text("1\n00:00:00,000 --> 00:00:00,300\nHallo\n")
    src = folder / "in.mkv"
    ff("-f", "lavfi", "-i", "testsrc=size=32x24:rate=24", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5",
       "-i", str(subs), "-map", "0:v", "-map", "1:a", "-map", "2:s", "-frames:v", "12", "-c:v", "libx264",
       "-c:a", "aac", "-c:s", "subrip", "-metadata:s:v:0", "language=eng", "-metadata:s:v:0", "title=Main",
       "-metadata:s:v:0", "comment=first line\nsecond line",
       "-metadata:s:a:0", "language=fra", "-metadata:s:s:0", "language=deu", "-disposition:v:0", "default",
       "-disposition:a:0", "default", "-disposition:s:0", "forced", str(src))
    return src


def streams(path: Path) -> dict[str, Stream]:
    return {s.kind: s for s in read_header(path)[2]}


def test_probe_reads_languages_titles_and_dispositions(tagged: Path) -> None:
    got = streams(tagged)
    assert got["video"].tags["language"] == "eng" and got["video"].tags["title"] == "Main"
    assert got["video"].dispositions == ["default"] and not got["video"].attached_pic
    assert got["video"].tags["COMMENT"] == "first line\nsecond line"  # Matroska writes tag names in capitals
    assert (got["audio"].tags["language"], got["audio"].dispositions) == ("fra", ["default"])
    assert (got["subtitle"].tags["language"], got["subtitle"].dispositions) == ("deu", ["forced"])


@pytest.mark.parametrize("name", ["out.mkv", "out.mp4"])
def test_stream_tags_and_dispositions_kept(tagged: Path, tmp_path: Path, name: str) -> None:
    upscale(tagged, tmp_path / name)
    got = streams(tmp_path / name)
    video = got["video"]
    assert video.tags["language"] == "eng" and video.dispositions == ["default"]
    assert video.tags.get("title", video.tags.get("name")) == "Main"  # MP4 reads a track title back as "name"
    assert (got["audio"].tags["language"], got["audio"].dispositions) == ("fra", ["default"])
    assert got["subtitle"].tags["language"] == "deu" and "forced" in got["subtitle"].dispositions
    if name == "out.mkv":
        assert video.tags["COMMENT"] == "first line\nsecond line"
    else:
        assert video.tags["handler_name"] == "VideoHandler"


def test_mp4_tags_and_text_subtitles_kept_in_mkv(tagged: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    ff("-i", str(tagged), "-map", "0", "-c:v", "copy", "-c:a", "copy", "-c:s", "mov_text", str(src))
    upscale(src, tmp_path / "out.mkv")
    got = streams(tmp_path / "out.mkv")
    assert got["video"].tags["language"] == "eng" and got["video"].tags["title"] == "Main"
    assert got["subtitle"].codec == "subrip" and got["subtitle"].tags["language"] == "deu"
    assert "forced" in got["subtitle"].dispositions and got["audio"].tags["language"] == "fra"


def test_stale_video_tags_left_behind(tagged: Path, tmp_path: Path) -> None:
    src = tmp_path / "stats.mkv"
    ff("-i", str(tagged), "-map", "0", "-c", "copy", "-metadata:s:v:0", "BPS-eng=12345",
       "-metadata:s:v:0", "NUMBER_OF_FRAMES=99", "-metadata:s:v:0", "comment=keep me", str(src))
    upscale(src, tmp_path / "out.mkv")
    tags = streams(tmp_path / "out.mkv")["video"].tags
    assert tags["COMMENT"] == "keep me"
    assert "BPS-eng" not in tags and "NUMBER_OF_FRAMES" not in tags
    assert len(frame_times(tmp_path / "out.mkv")) == 12
