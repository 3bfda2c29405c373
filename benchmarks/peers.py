"""srtool against OpenCV's super-resolution (``cv2.dnn_superres``) and PIL bicubic, as ratios of output MP/s.

Four levels, each measured side by side (A, B, A, B, ...; medians):

- network: srtool's torch module on the Y plane (its auto precision and layout) against OpenCV's dnn forward;
- picture: ``Upscaler.upscale_uint8`` on an RGB picture against ``DnnSuperResImpl.upsample`` (both: Y through
  the network, chroma by bicubic, back to RGB), with PIL's bicubic ``resize`` beside them;
- command: ``srtool upscale IMG -m MODEL -s S -o OUT.png`` against a Python process that reads, upsamples and
  writes the same picture with OpenCV (both start from nothing: interpreter, libraries, weights);
- folder: ``--folder-images`` pictures through one ``srtool upscale FOLDER -o OUT`` call against one OpenCV
  process over the same folder.

OpenCV 4.x reads the TensorFlow graphs in ``--peer-models`` (``ESPCN_x4.pb`` ...: ``../shared/peers/opencv``);
5.x cannot. Without ``cv2.dnn_superres`` (``pip install opencv-contrib-python-headless==4.14.0.94``) the script says
so and stops. Pictures: crops of the embedded Set14 pictures, tiled to ``--size`` (default 480x270: 1920x1080 at x4).

    python benchmarks/peers.py [--models espcn fsrcnn] [--scales 2 3 4] [--size 480x270] [--repeats 5]
                               [--folder-images 50] [--levels network picture command folder]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from precision import cpu_flags  # benchmarks/precision.py

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO.parent / "shared" / "peers" / "opencv"
SET14 = REPO / "sr_cli" / "data" / "Set14"

OPENCV_SCRIPT = r"""
import sys, cv2
from pathlib import Path
model, scale, graph, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
sr = cv2.dnn_superres.DnnSuperResImpl_create()
sr.readModel(graph)
sr.setModel(model, scale)
for name in sys.argv[5:]:
    cv2.imwrite(str(out / Path(name).name), sr.upsample(cv2.imread(name)))
"""


def picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """An RGB picture of ``width`` x ``height`` made of real photo content (Set14 crops, tiled)."""
    files = sorted(SET14.glob("*.png"))
    src = np.asarray(Image.open(files[seed % len(files)]).convert("RGB"))
    reps = (-(-height // src.shape[0]), -(-width // src.shape[1]), 1)
    return np.ascontiguousarray(np.tile(src, reps)[:height, :width])


def interleaved(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each callable, run in turn ``repeats`` times after one warm-up each."""
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            began = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - began)
    return {k: statistics.median(v) for k, v in times.items()}


def opencv_model(cv2: object, name: str, scale: int) -> object:
    sr = cv2.dnn_superres.DnnSuperResImpl_create()  # type: ignore[attr-defined]
    sr.readModel(str(PEERS / f"{name.upper()}_x{scale}.pb"))
    sr.setModel(name, scale)
    return sr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["espcn", "fsrcnn"])
    ap.add_argument("--scales", nargs="+", type=int, default=[2, 3, 4])
    ap.add_argument("--size", default="480x270", help="LR picture WxH")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--folder-images", type=int, default=50)
    ap.add_argument("--levels", nargs="+", default=["network", "picture", "command", "folder"])
    ap.add_argument("--peer-models", type=Path, default=PEERS)
    args = ap.parse_args()
    try:
        import cv2
        cv2.dnn_superres
    except (ImportError, AttributeError):
        print("OpenCV with dnn_superres is not installed: pip install opencv-contrib-python-headless==4.14.0.94")
        return
    import torch

    from sr_cli.colour import rgb_to_ycbcr
    from sr_cli.pipeline import Upscaler

    width, height = (int(v) for v in args.size.split("x"))
    rgb = picture(width, height)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    print(f"CPU: {cpu_flags()}; torch {torch.__version__} ({torch.get_num_threads()} threads), OpenCV {cv2.__version__}"
          f" ({cv2.getNumThreads()} threads)")
    print(f"LR {width}x{height}; ratio = srtool MP/s / OpenCV MP/s (> 1: srtool faster); medians of "
          f"{args.repeats} interleaved runs")
    for name in args.models:
        for scale in args.scales:
            sr = opencv_model(cv2, name, scale)
            up = Upscaler(name, scale, device="cpu")
            mpx = width * height * scale * scale / 1e6
            cells = [f"{name} x{scale} ({up.dtype}, channels_last {up.engine._channels_last})"]
            if "network" in args.levels:
                y = rgb_to_ycbcr(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[:, :1].contiguous()
                net = cv2.dnn.readNetFromTensorflow(str(args.peer_models / f"{name.upper()}_x{scale}.pb"))
                blob = y.numpy()

                def cv_net() -> None:
                    net.setInput(blob)
                    net.forward()

                def torch_net() -> None:
                    with torch.inference_mode():
                        up.engine.run(y)

                t = interleaved({"srtool": torch_net, "opencv": cv_net}, args.repeats)
                cells.append(f"network {t['opencv'] / t['srtool']:.2f}x ({mpx / t['srtool']:.1f} vs "
                             f"{mpx / t['opencv']:.1f} MP/s)")
            if "picture" in args.levels:
                pil = Image.fromarray(rgb)
                t = interleaved({"srtool": lambda: up.upscale_uint8(rgb), "opencv": lambda: sr.upsample(bgr),
                                 "pil": lambda: pil.resize((width * scale, height * scale), Image.BICUBIC)},
                                args.repeats)
                cells.append(f"picture {t['opencv'] / t['srtool']:.2f}x ({mpx / t['srtool']:.1f} vs "
                             f"{mpx / t['opencv']:.1f} MP/s; PIL bicubic {mpx / t['pil']:.0f} MP/s)")
            print("; ".join(cells), flush=True)
    if not {"command", "folder"} & set(args.levels):
        return
    name, scale = args.models[0], max(args.scales)
    graph = str(args.peer_models / f"{name.upper()}_x{scale}.pb")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        folder, out_s, out_c = Path(tmp, "in"), Path(tmp, "srtool"), Path(tmp, "opencv")
        for d in (folder, out_s, out_c):
            d.mkdir()
        for i in range(max(args.folder_images, 1)):
            Image.fromarray(picture(width, height, seed=i)).save(folder / f"p{i:03d}.png")
        one = folder / "p000.png"

        def srtool(*inputs: Path) -> Callable[[], None]:
            cmd = [sys.executable, "-m", "sr_cli", "upscale", *map(str, inputs), "-m", name, "-s", str(scale),
                   "-o", str(out_s / one.name if len(inputs) == 1 and inputs[0].is_file() else out_s),
                   "--overwrite"]
            return lambda: subprocess.run(cmd, env=env, check=True, capture_output=True)

        def opencv(*images: Path) -> Callable[[], None]:
            cmd = [sys.executable, "-c", OPENCV_SCRIPT, name, str(scale), graph, str(out_c), *map(str, images)]
            return lambda: subprocess.run(cmd, check=True, capture_output=True)

        if "command" in args.levels:
            t = interleaved({"srtool": srtool(one), "opencv": opencv(one)}, args.repeats)
            print(f"command, one {width}x{height} PNG, {name} x{scale}: srtool {t['srtool']:.2f} s, OpenCV script "
                  f"{t['opencv']:.2f} s: {t['opencv'] / t['srtool']:.2f}x")
        if "folder" in args.levels:
            images = sorted(folder.glob("*.png"))
            t = interleaved({"srtool": srtool(folder), "opencv": opencv(*images)}, max(1, args.repeats // 2))
            print(f"folder of {len(images)} {width}x{height} PNGs, {name} x{scale}: one srtool call {t['srtool']:.2f} s,"
                  f" one OpenCV process {t['opencv']:.2f} s: {t['opencv'] / t['srtool']:.2f}x")


if __name__ == "__main__":
    main()
