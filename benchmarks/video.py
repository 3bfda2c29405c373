"""Video throughput: end-to-end fps of ``srtool video`` against the model's own fps, per model and frame size.

For each (model, scale) and input size, a testsrc2 clip at 24000/1001 fps (with sine audio) is made with ffmpeg.
"model only" times ``Upscaler.upscale_frames`` on the already-decoded frames in batches; "end to end" times the
whole job (probe, preflight, decode → infer → encode threads, join and audio mux) with the same upscaler, batch and
device, and the encoder settings ``srtool video`` picks (on CPU: x264's ultrafast preset, ``codecs.CPU_PRESET``;
``--preset`` overrides). The two are interleaved (model, job, model, job, ...) and the medians kept: the machine
may be shared. Models without weights on this machine get random weights FOR TIMING ONLY (labelled "random").

    python benchmarks/video.py [--cases espcn:2:640x360:24 ...] [--device auto] [--batch 4] [--preset P]
                               [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sr_cli.pipeline import Upscaler
from sr_cli.registry import get_spec, shipped_weights
from sr_cli.video import VideoRequest, run_video
from sr_cli.video.codecs import plan_encoding
from sr_cli.video.ffmpeg import ffmpeg_exe
from sr_cli.video.probe import Colour
from sr_cli.video.reader import SWS_FLAGS
from sr_cli.weights import save_weights

CASES = ["espcn:2:640x360:96", "espcn:2:1280x720:24", "compact:4:640x360:12", "compact:4:1280x720:4"]


def make_clip(path: Path, size: tuple[int, int], frames: int) -> np.ndarray:
    """Write the clip and return its decoded frames."""
    seconds = frames * 1001 / 24000
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size[0]}x{size[1]}:rate=24000/1001", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds:.3f}", "-frames:v", str(frames), "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)], check=True)
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-sws_flags", SWS_FLAGS,
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, size[1], size[0], 3).copy()


def upscaler_for(name: str, scale: int, folder: Path, device: str) -> tuple[Upscaler, str]:
    """The model with its shipped weights, or with random weights saved to ``folder`` (timing only)."""
    spec = get_spec(name)
    if not spec.learned or shipped_weights(spec, scale).is_file():
        return Upscaler(name, scale, device=device), "shipped"
    torch.manual_seed(0)
    path = save_weights(folder / f"{name}_x{scale}_random.safetensors", spec.build(scale).state_dict(),
                        {"architecture": name, "scale": scale})
    return Upscaler(name, scale, weights=path, device=device), "random (timing only)"


def cpu_flags() -> str:
    """The CPU's model and its SIMD flags that matter here, from lscpu."""
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = [f for f in fields.get("Flags", "").split() if f.startswith(("avx", "amx"))]
    return f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs: {' '.join(flags)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=CASES, help="MODEL:SCALE:WxH:FRAMES")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--preset", default=None, help="x264 preset (default: what srtool video picks)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; medians are kept")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for case in args.cases:
            name, scale_text, size_text, frames_text = case.split(":")
            scale, size = int(scale_text), tuple(int(v) for v in size_text.split("x"))
            upscaler, source = upscaler_for(name, scale, folder, args.device)
            clip = folder / f"clip_{size_text}_{frames_text}.mp4"
            frames = make_clip(clip, size, int(frames_text))
            on_cpu = upscaler.device.type == "cpu"
            out_size = (size[0] * scale, size[1] * scale)
            encoding = plan_encoding(None, None, args.preset, None, [], out_size, Colour(), "mp4", cpu_model=on_cpu)

            def upscale(batch: np.ndarray, up: Upscaler = upscaler) -> np.ndarray:
                with torch.inference_mode():
                    out = up.upscale_frames(batch)
                if up.device.type == "cuda":
                    torch.cuda.synchronize()
                return out

            upscale(frames[: args.batch])  # warm-up
            model, e2e = [], []
            for _ in range(args.repeats):
                began = time.perf_counter()
                for i in range(0, len(frames), args.batch):
                    upscale(frames[i:i + args.batch])
                model.append(len(frames) / (time.perf_counter() - began))
                began = time.perf_counter()
                run_video(VideoRequest(clip, folder / f"{name}.mp4", preset=args.preset, batch=args.batch,
                                       overwrite=True, cpu_model=on_cpu), upscale, scale, name)
                e2e.append(len(frames) / (time.perf_counter() - began))
            rows.append((f"{name} x{scale}", source, f"{size_text}", str(upscaler.device), str(upscaler.dtype)[6:],
                         len(frames), statistics.median(model), statistics.median(e2e),
                         " ".join(encoding.args[:encoding.args.index("-crf") + 4])))
    print(f"srtool video benchmark ({args.repeats} interleaved rounds, medians); batch {args.batch}")
    print(f"CPU: {cpu_flags()}")
    print(f"{'model':11} {'weights':21} {'input':9} {'device':6} {'dtype':8} {'frames':>6} {'model fps':>10} "
          f"{'e2e fps':>8} {'ratio':>6}  encoder")
    for name, source, size, device, dtype, n, model_fps, e2e_fps, enc in rows:
        print(f"{name:11} {source:21} {size:9} {device:6} {dtype:8} {n:>6} {model_fps:>10.3f} {e2e_fps:>8.3f} "
              f"{e2e_fps / model_fps:>6.2f}  {enc}")


if __name__ == "__main__":
    main()
