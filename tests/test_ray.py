"""``--ray`` on a real two-node Ray cluster on this machine: a head and a second node started with ``ray start`` as
separate processes (one CPU each, so each node runs one worker), torn down at the end.

Checked against the local run of the same command: images byte for byte, the JSON report, the error lines and the
exit code; a video's every packet (FFV1 frames, timestamps, audio); a lost node's work redone on the other.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sr_cli.cli.app import app
from sr_cli.video.ffmpeg import ffmpeg_exe

runner = CliRunner()
RAY = shutil.which("ray", path=str(Path(sys.executable).parent))
needs_ray = pytest.mark.skipif(RAY is None, reason='needs Ray: pip install "srtool[ray]"')
# Every process of the test cluster: no token authentication (a ~/.ray/auth_token that a local ``ray.init()`` left
# would otherwise turn it on for some processes and not others), no usage report, no other cluster's address.
ENV = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_AUTH_MODE": "disabled",
       "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_node(log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``ray start ... --block`` in a session of its own (every process of the node shares it); waits until up."""
    proc = subprocess.Popen([RAY, "start", "--block", "--num-cpus=1", "--disable-usage-stats",
                             f"--dashboard-agent-listen-port={_port()}", *args], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True, env=ENV)
    deadline = time.monotonic() + 60
    while b"Ray runtime started" not in log.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.2)
    return proc


def _session(proc: subprocess.Popen[bytes]) -> list[int]:
    """The processes of the session ``proc`` leads (a Ray node: raylet, agents, workers)."""
    pids = []
    for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()):
        try:
            if os.getsid(pid) == proc.pid:
                pids.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    return pids


def _kill_session(proc: subprocess.Popen[bytes], sig: int) -> None:
    for pid in _session(proc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _upscaling(proc: subprocess.Popen[bytes]) -> bool:
    """Whether a worker of the node ``proc`` leads is inside a picture (Ray titles it ``ray::Worker.image``)."""
    for pid in _session(proc):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::Worker.image"):
                return True
    return False


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """(head address, the second node's process)."""
    temp = Path(tempfile.mkdtemp(prefix="srray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port = _port()
    nodes = []
    try:
        nodes.append(_start_node(temp / "head.log", "--head", f"--port={port}", f"--temp-dir={temp}",
                                 "--include-dashboard=false", f"--dashboard-port={_port()}"))
        nodes.append(_start_node(temp / "node.log", f"--address=127.0.0.1:{port}"))
        yield f"127.0.0.1:{port}", nodes[1]
    finally:
        for proc in reversed(nodes):
            proc.terminate()  # the node drains and stops its processes
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            _kill_session(proc, signal.SIGKILL)  # what outlived it
        shutil.rmtree(temp, ignore_errors=True)


def on_ray(address: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command with ``--ray`` in a process of its own (its Ray driver leaves nothing in this one)."""
    return subprocess.run([sys.executable, "-m", "sr_cli", *args, "--ray-address", address, "--ray-cpus", "1"],
                          cwd=cwd, capture_output=True, text=True, timeout=240, env=ENV)


def here(cwd: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _pictures(folder: Path, count: int, side: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (side, side + i, 3), dtype=np.uint8)).save(folder / f"p{i:02d}.png")


def test_ray_not_installed_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    for args in (["upscale", str(tmp_path / "x.png"), "--ray"], ["video", str(tmp_path / "x.mp4"), "--ray"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and result.stderr == \
            'srtool: error: --ray needs Ray, an optional extra: pip install "srtool[ray]"\n'


@needs_ray
def test_an_address_where_no_cluster_answers_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"")
    port = _port()  # closed again: nothing listens there
    result = runner.invoke(app, ["upscale", str(tmp_path / "x.png"), "--ray-address", f"127.0.0.1:{port}"])
    assert result.exit_code == 2 and result.stderr.startswith(
        f"srtool: error: no Ray cluster answers at 127.0.0.1:{port} (Connection refused)")


@needs_ray
def test_a_folder_with_bad_files_equals_the_local_run_and_skip_existing_continues(
        cluster: tuple[str, subprocess.Popen[bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths as given (the workers run in the driver's folder), 8- and 16-bit, gray and alpha, a JPEG;
    two bad files: one line each, the batch goes on, exit 3 as here."""
    src = tmp_path / "src" / "in"
    _pictures(src, 3, 20)
    Image.fromarray(np.arange(16 * 18, dtype=np.uint16).reshape(16, 18) * 200).save(src / "deep.png")
    Image.fromarray(np.full((15, 21, 4), 90, np.uint8)).save(src / "alpha.png")
    Image.fromarray(np.full((17, 9), 40, np.uint8)).convert("RGB").save(src / "photo.jpg", quality=90)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    (src / "empty.png").write_bytes(b"")
    for run in ("local", "ray"):
        shutil.copytree(src, tmp_path / run / "in")
    args = ["upscale", "in", "-o", "out", "-m", "espcn", "-s", "2", "--json"]
    code, out, err = here(tmp_path / "local", monkeypatch, *args)
    done = on_ray(cluster[0], tmp_path / "ray", *args)
    assert code == 3 and done.returncode == 3, done.stderr
    assert json.loads(done.stdout) == json.loads(out)
    assert len(err.splitlines()) == 2 and sorted(done.stderr.splitlines()) == sorted(err.splitlines())
    written = sorted(p.name for p in (tmp_path / "local" / "out").iterdir())
    assert len(written) == 6 and sorted(p.name for p in (tmp_path / "ray" / "out").iterdir()) == written
    for name in written:
        assert (tmp_path / "ray" / "out" / name).read_bytes() == (tmp_path / "local" / "out" / name).read_bytes()

    for name in written[:2]:  # a job stopped part way: --skip-existing does the rest
        (tmp_path / "ray" / "out" / name).unlink()
    again = on_ray(cluster[0], tmp_path / "ray", *args, "--skip-existing")
    assert again.returncode == 3, again.stderr
    statuses = {Path(f["input"]).name: f["status"] for f in json.loads(again.stdout)["files"]}
    assert sorted(statuses.values()) == ["error", "error", "ok", "ok", "skipped", "skipped", "skipped", "skipped"]
    for name in written:
        assert (tmp_path / "ray" / "out" / name).read_bytes() == (tmp_path / "local" / "out" / name).read_bytes()


def _packets(path: Path) -> list[str]:
    """Every packet of every stream: stream, dts, pts, duration, size, checksum (FFV1: the frames exactly)."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0", "-c", "copy", "-f", "framemd5",
                          "-"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if not line.startswith("#")]


@needs_ray
def test_a_video_equals_the_local_run(cluster: tuple[str, subprocess.Popen[bytes]], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """24 frames at 24000/1001 with AAC audio, in chunks of 5: five tasks over the two nodes, joined and muxed here."""
    clip = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "testsrc=size=63x47:rate=24000/1001:duration=1", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv444p", "-c:a", "aac",
                    str(clip)], check=True)
    args = ["video", str(clip), "-m", "espcn", "-s", "2", "-c", "ffv1", "--chunk-frames", "5", "--json"]
    code, out, _ = here(tmp_path, monkeypatch, *args, "-o", str(tmp_path / "local.mkv"))
    done = on_ray(cluster[0], tmp_path, *args, "-o", str(tmp_path / "ray.mkv"))
    assert code == 0 and done.returncode == 0, done.stderr
    mine, theirs = json.loads(out), json.loads(done.stdout)
    for key in ("output", "seconds", "fps"):
        del mine[key], theirs[key]
    assert theirs == mine and theirs["frames"] == 24
    packets = _packets(tmp_path / "ray.mkv")
    assert len([p for p in packets if p.startswith("0,")]) == 24 and any(p.startswith("1,") for p in packets)
    assert packets == _packets(tmp_path / "local.mkv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "local.mkv", "ray.mkv"]


@needs_ray
def test_a_node_killed_mid_job_loses_nothing(cluster: tuple[str, subprocess.Popen[bytes]], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Every process of the second node SIGKILLed while its worker is inside a picture: that picture is redone on
    the head's worker, and the job ends as the local run does. (Last: the cluster is one node after it.)"""
    _pictures(tmp_path / "in", 20, 96)  # ~0.3 s each: the second node's worker starts well before the end
    args = ["upscale", "in", "-m", "edsr", "-s", "2", "--json"]
    code, _, _ = here(tmp_path, monkeypatch, *args, "-o", "local")
    job = subprocess.Popen([sys.executable, "-m", "sr_cli", *args, "-o", "out", "--ray-address", cluster[0],
                            "--ray-cpus", "1"],
                           cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 120
    while not _upscaling(cluster[1]):
        assert job.poll() is None and time.monotonic() < deadline, \
            ("the job ended before the second node's worker took a picture", job.communicate())
        time.sleep(0.01)
    _kill_session(cluster[1], signal.SIGKILL)
    stdout, stderr = job.communicate(timeout=180)
    assert code == 0 and job.returncode == 0, stderr
    warnings = stderr.splitlines()  # one line, srtool's, for the lost worker; none of Ray's own
    assert warnings and all(line.startswith("srtool: warning: a Ray worker was lost (") for line in warnings)
    assert [f["status"] for f in json.loads(stdout)["files"]] == ["ok"] * 20
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in (tmp_path / "local").iterdir())
    for p in (tmp_path / "local").iterdir():
        assert (tmp_path / "out" / p.name).read_bytes() == p.read_bytes()
