"""Video throughput: end-to-end fps of ``srtool video`` against the model's own fps, for espcn and edsr x2.

A 640x360 testsrc2 clip at 24000/1001 fps (with sine audio) is made with ffmpeg. For each model, "model only"
times ``Upscaler.upscale_frames`` on the already-decoded frames in batches; "end to end" times the whole job
(probe, decode → infer → encode threads, join and audio mux) with the same upscaler, batch and device. The
ratio shows how much of the model's speed the pipeline keeps (end-to-end includes the probe pass, the
preflight and the final mux, which weigh more on short clips). Models without shipped weights get random
weights FOR TIMING ONLY (labelled "random"); their output is noise.

    python benchmarks/video.py [--frames N] [--models espcn edsr] [--device auto] [--batch 4] [--codec libx264]
                               [--repeats 2]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sr_cli.pipeline import Upscaler
from sr_cli.registry import get_spec, shipped_weights
from sr_cli.video import VideoRequest, run_video
from sr_cli.video.ffmpeg import ffmpeg_exe
from sr_cli.video.reader import SWS_FLAGS
from sr_cli.weights import save_weights

WIDTH, HEIGHT, SCALE = 640, 360, 2


def make_clip(path: Path, frames: int) -> np.ndarray:
    """Write the clip and return its decoded frames."""
    seconds = frames * 1001 / 24000
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={WIDTH}x{HEIGHT}:rate=24000/1001", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds:.3f}", "-frames:v", str(frames), "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)], check=True)
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-sws_flags", SWS_FLAGS,
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, HEIGHT, WIDTH, 3).copy()


def upscaler_for(name: str, folder: Path, device: str, precision: str) -> tuple[Upscaler, str]:
    """The model with its shipped weights, or with random weights saved to ``folder`` (timing only)."""
    spec = get_spec(name)
    if not spec.learned or shipped_weights(spec, SCALE).is_file():
        return Upscaler(name, SCALE, device=device, precision=precision), "shipped"
    torch.manual_seed(0)
    path = save_weights(folder / f"{name}_random.safetensors", spec.build(SCALE).state_dict(),
                        {"architecture": name, "scale": SCALE})
    return Upscaler(name, SCALE, weights=path, device=device, precision=precision), "random (timing only)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=None, help="clip length (default 96 on GPU, 6 on CPU)")
    ap.add_argument("--models", nargs="+", default=["espcn", "edsr"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--codec", default="libx264")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved rounds; the best of each is kept")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows, clips = [], {}
        for name in args.models:
            upscaler, source = upscaler_for(name, folder, args.device, args.precision)
            frames_n = args.frames or (96 if upscaler.device.type == "cuda" else 6)
            if frames_n not in clips:
                clips[frames_n] = (folder / f"clip{frames_n}.mp4", make_clip(folder / f"clip{frames_n}.mp4", frames_n))
            clip, frames = clips[frames_n]

            def upscale(batch: np.ndarray, up: Upscaler = upscaler) -> np.ndarray:
                with torch.inference_mode():
                    out = up.upscale_frames(batch)
                if up.device.type == "cuda":
                    torch.cuda.synchronize()
                return out

            upscale(frames[: args.batch])  # warm-up
            model_fps = e2e_fps = 0.0
            for _ in range(args.repeats):  # interleaved; the best of each (the machine may be shared)
                began = time.perf_counter()
                for i in range(0, len(frames), args.batch):
                    upscale(frames[i:i + args.batch])
                model_fps = max(model_fps, len(frames) / (time.perf_counter() - began))
                began = time.perf_counter()
                run_video(VideoRequest(clip, folder / f"{name}.mp4", codec=args.codec, batch=args.batch,
                                       overwrite=True), upscale, SCALE, name)
                e2e_fps = max(e2e_fps, len(frames) / (time.perf_counter() - began))
            rows.append((name, source, str(upscaler.device), len(frames), model_fps, e2e_fps))
    print(f"srtool video benchmark: {WIDTH}x{HEIGHT} -> {WIDTH * SCALE}x{HEIGHT * SCALE}, x{SCALE}, "
          f"batch {args.batch}, codec {args.codec}")
    print(f"{'model':8} {'weights':22} {'device':8} {'frames':>6} {'model fps':>10} {'end-to-end fps':>15} "
          f"{'ratio':>6}")
    for name, source, device, n, model_fps, e2e_fps in rows:
        print(f"{name:8} {source:22} {device:8} {n:>6} {model_fps:>10.3f} {e2e_fps:>15.3f} "
              f"{e2e_fps / model_fps:>6.2f}")


if __name__ == "__main__":
    main()
