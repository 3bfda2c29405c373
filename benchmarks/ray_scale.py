"""``--ray`` on this machine: one worker process against two, and one worker against a local run.

A one-node Ray cluster is started here (``ray start --head --num-cpus N``, N = this machine's cores, torn down at
the end); every case is a whole ``srtool`` command in a fresh process (import, model load, the work, the report),
timed by the wall clock:

- ``local``: the command without ``--ray`` (torch on every core of the process);
- ``ray x1``: ``--ray --ray-cpus N``: one worker process holding every core;
- ``ray x2``: ``--ray --ray-cpus N/2``: two worker processes, half the cores each;
- ``ray local runtime`` (images only): ``--ray`` with no cluster named, so each command starts and stops a Ray
  runtime of its own.

Images: Set5 and Set14 (19 photos) copied ``--copies`` times, upscaled by ``--model`` at ``--scale``. Video: a
testsrc2 clip with AAC audio, ``--frames`` frames of ``--size``, ESPCN x2 to FFV1, chunks of ``--chunk`` frames
(each chunk a task under ``--ray``). Cases are interleaved round by round and the medians kept (the machine may be
shared: the load average is printed beside the figures, and the CPU).

    python benchmarks/ray_scale.py [--rounds 3] [--model espcn] [--scale 2] [--copies 3]
                                   [--frames 240] [--size 320x240] [--chunk 24]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sr_cli.video.ffmpeg import ffmpeg_exe

DATA = Path(__file__).resolve().parents[1] / "sr_cli" / "data"
RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
ENV = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_AUTH_MODE": "disabled",
       "RAY_USAGE_STATS_ENABLED": "0"}


def cpu() -> str:
    """lscpu's model name, core count and SIMD flags."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = [f for f in fields.get("Flags", "").split() if f.startswith(("avx", "amx", "fma"))]
    return f"{fields.get('Model name', '?').strip()}, {os.cpu_count()} cores; flags: {' '.join(flags)}"


def start_cluster(temp: Path, cpus: int) -> tuple[subprocess.Popen[bytes], str]:
    """A Ray head on this machine holding ``cpus`` cores, and its address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = temp / "head.log"
    head = subprocess.Popen([RAY, "start", "--head", "--block", f"--port={port}", f"--num-cpus={cpus}",
                             f"--temp-dir={temp}", "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, env=ENV)
    while b"Ray runtime started" not in log.read_bytes():
        if head.poll() is not None:
            sys.exit(f"ray start failed:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return head, f"127.0.0.1:{port}"


def stop_cluster(head: subprocess.Popen[bytes]) -> None:
    head.send_signal(signal.SIGTERM)
    try:
        head.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)


def timed(args: list[str], cwd: Path) -> tuple[float, dict]:
    """Wall seconds of one srtool command, and its JSON report."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sr_cli", *args, "--json"], cwd=cwd, capture_output=True, text=True,
                          env=ENV)
    took = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return took, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="espcn")
    parser.add_argument("--scale", default="2")
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--chunk", type=int, default=24)
    opts = parser.parse_args()
    if RAY is None:
        sys.exit('needs Ray: pip install "srtool[ray]"')
    cores = os.cpu_count() or 2
    temp = Path(tempfile.mkdtemp(prefix="srraybench", dir="/tmp"))  # short: Ray's socket paths
    ENV["RAY_TMPDIR"] = str(temp)  # the local runtimes' session folders, removed with it
    photos = temp / "in"
    photos.mkdir()
    for copy in range(opts.copies):
        for path in sorted((DATA / "Set5").glob("*.png")) + sorted((DATA / "Set14").glob("*.png")):
            shutil.copy(path, photos / f"{path.stem}_{copy}.png")
    count = len(list(photos.iterdir()))
    clip = temp / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={opts.size}:rate=24",
                    "-f", "lavfi", "-i", "sine=frequency=440", "-frames:v", str(opts.frames), "-shortest",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)], check=True)
    head, address = start_cluster(temp, cores)
    ray = {"local": [], "ray x1": ["--ray-address", address, "--ray-cpus", str(cores)],
           "ray x2": ["--ray-address", address, "--ray-cpus", str(max(1, cores // 2))]}
    image_cases = {**ray, "ray local runtime": ["--ray", "--ray-cpus", str(cores)]}
    seconds: dict[tuple[str, str], list[float]] = {}
    frames = 0
    load = os.getloadavg()[0]
    try:
        for _ in range(opts.rounds):
            for name, extra in image_cases.items():
                out = temp / "out"
                shutil.rmtree(out, ignore_errors=True)
                took, _ = timed(["upscale", "in", "-o", "out", "-m", opts.model, "-s", opts.scale, *extra], temp)
                seconds.setdefault(("images", name), []).append(took)
            for name, extra in ray.items():
                (temp / "out.mkv").unlink(missing_ok=True)
                took, report = timed(["video", "clip.mp4", "-o", "out.mkv", "-m", "espcn", "-s", "2", "-c", "ffv1",
                                      "--chunk-frames", str(opts.chunk), *extra], temp)
                frames = report["frames"]
                seconds.setdefault(("video", name), []).append(took)
    finally:
        stop_cluster(head)
        shutil.rmtree(temp, ignore_errors=True)
    print(f"CPU: {cpu()}")
    print(f"load average (1 min): {load:.2f} before, {os.getloadavg()[0]:.2f} after; medians of {opts.rounds} rounds, "
          "interleaved")
    print(f"images: {count} photos (Set5 + Set14 x{opts.copies}), {opts.model} x{opts.scale}; video: {frames} frames "
          f"of {opts.size}, espcn x2 to ffv1, chunks of {opts.chunk}")
    print(f"{'case':<20}{'images s (min-max)':>22}{'images/s':>10}{'video s (min-max)':>22}{'fps':>7}")
    median = {key: statistics.median(values) for key, values in seconds.items()}

    def cell(kind: str, name: str, units: int) -> str:
        runs = seconds.get((kind, name))
        if not runs:
            return ""
        spread = f"{median[(kind, name)]:.2f} ({min(runs):.2f}-{max(runs):.2f})"
        return f"{spread:>22}{units / median[(kind, name)]:>{10 if kind == 'images' else 7}.2f}"

    for name in image_cases:
        print(f"{name:<20}{cell('images', name, count)}{cell('video', name, frames)}")
    for kind in ("images", "video"):
        one, two, here = (median[(kind, n)] for n in ("ray x1", "ray x2", "local"))
        print(f"{kind}: ray x2 / ray x1 throughput {one / two:.2f}x; ray x1 / local {here / one:.2f}x "
              f"({one - here:+.2f} s a command)")
    print(f"images: ray local runtime / local {median[('images', 'local')] / median[('images', 'ray local runtime')]:.2f}x "
          f"({median[('images', 'ray local runtime')] - median[('images', 'local')]:+.2f} s a command)")


if __name__ == "__main__":
    main()
