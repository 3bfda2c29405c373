"""The benchmark scripts that must not rot between uses: gpu_check's CPU dry run, and peers without OpenCV."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, cwd=REPO)


def test_gpu_check_dry_run_passes_every_check_on_the_cpu() -> None:
    done = _run("gpu_check.py", "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["check", "status", "measured"]
    names = ["device", "auto tile", "fp16 redo", "OOM halving", "channels_last + bf16/fp16", "conv roofline",
             "inference edsr x4", "inference espcn x4", "inference compact x4", "bf16 training"]
    assert [line[:26].strip() for line in lines[1:]] == names
    assert all(line[27:33].strip() == "ok" for line in lines[1:])
    assert "1 of 16 tiles redone in fp32" in done.stdout  # the overflowing corner, and only it


def test_gpu_check_without_cuda_and_without_dry_run_says_so() -> None:
    done = _run("gpu_check.py", env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 2
    assert done.stdout.strip() == "no CUDA device: run with --dry-run to exercise the script on the CPU"


def test_peers_skips_cleanly_without_opencv_superres(tmp_path: Path) -> None:
    (tmp_path / "cv2.py").write_text("")  # an OpenCV without the contrib dnn_superres module
    done = _run("peers.py", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ("OpenCV with dnn_superres is not installed: "
                                   "pip install opencv-contrib-python-headless==4.14.0.94")
