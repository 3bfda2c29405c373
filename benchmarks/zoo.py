"""The model zoo: ship a trained run's weights into ``weights/`` and regenerate the model card from ``srtool bench``.

    python benchmarks/zoo.py ship RUN_DIR [--weights best.safetensors]   # bench, pick fp16/fp32, write weights/
    python benchmarks/zoo.py card [--models compact]                     # bench every shipped file, write the card
    python benchmarks/zoo.py params                                      # the parameter counts srtool models lists

``ship`` benches the run's weights on Set5 and Set14 with ``srtool bench --json`` in fp32 storage and in fp16
storage, keeps fp16 when no mean PSNR moves by 0.005 dB or more, refuses weights that do not beat bicubic, and
writes ``weights/<model>_x<scale>.safetensors`` with metadata: architecture, scale, options, the training command
(the weights' own ``command``, or for older runs ``TrainConfig.command_line`` of their ``config.json``), data, steps, training
time (from ``metrics.csv``), device, the bench figures and the storage dtype.

A multi-scale file (MDSR) is benched at each of its scales; its ``bench`` and ``fp16_psnr_change_db`` are then
keyed by ``x2``/``x3``/``x4``.

``card`` benches every shipped file exactly as a user gets it (``srtool bench -m M -s S``, no ``--weights``) and
writes ``weights/README.md``: the table is generated here from the bench JSON, never typed by hand.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"
DATASETS = ("set5", "set14")
FP16_TOLERANCE_DB = 0.005
# How a real-world model (trained with --degradation realesrgan) is benched: on LR made by the same random pipeline,
# one seeded degradation per picture (bench --degradation realesrgan), not the clean bicubic it was not trained for.
REAL_WORLD_BENCH = ["--degradation", "realesrgan"]
# Set5 Y-PSNR floors of the model-zoo issue (published figure in brackets in REFERENCE §4).
FLOORS = {("srcnn", 3): 32.3, ("espcn", 3): 32.5, ("fsrcnn", 3): 32.8, ("edsr", 2): 37.3, ("edsr", 4): 31.5,
          ("srresnet", 4): 31.5, ("mdsr", 4): 31.5, ("csd", 4): 31.3}


def bench(model: str, scale: int, weights: Path | None = None, extra: list[str] | None = None) -> dict[str, Any]:
    """``srtool bench --json`` on Set5 and Set14: {dataset: result row}."""
    cmd = [sys.executable, "-m", "sr_cli", "bench", "-m", model, "-s", str(scale), "--json", "--device", "cpu",
           "--precision", "fp32"]
    for d in DATASETS:
        cmd += ["-d", d]
    if weights is not None:
        cmd += ["--weights", str(weights)]
    cmd += extra or []
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench failed ({shlex.join(cmd)}): {out.stderr.strip()}")
    doc = json.loads(out.stdout)
    return {r["dataset"]: r for r in doc["results"]}


def train_seconds(run: Path) -> float:
    """Wall time of the logged steps: each metrics row's interval divided by its steps/s (validation and
    checkpoints between rows included)."""
    total, last = 0.0, 0
    with (run / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            step, rate = int(row["step"]), row["steps_per_s"]
            if rate and float(rate) > 0 and step > last:
                total += (step - last) / float(rate)
            last = max(last, step)
    return total


def init_record(path: Path) -> dict[str, Any]:
    """What a fine-tuned run started from (``--init``): the file and its own metadata, with the command that
    trained it (so a chain of runs stays reproducible once the run folders are gone)."""
    from sr_cli.weights import read_metadata

    meta = read_metadata(path) if path.suffix == ".safetensors" and path.is_file() else {}
    record = {k: meta[k] for k in ("architecture", "scale", "steps", "val_psnr", "command") if k in meta}
    return {"file": str(path), **record}


def device_label(config: dict[str, Any]) -> str:
    """Where the run trained (this machine's CPU unless the config asked for CUDA)."""
    if str(config.get("device", "auto")).startswith("cuda"):
        return config["device"]
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def ship(run: Path, weights_name: str) -> None:
    """Bench a run's weights in fp32 and fp16 storage and write the chosen one into ``weights/``."""
    from sr_cli.registry import get_spec
    from sr_cli.train.config import TrainConfig
    from sr_cli.weights import load_state, save_weights

    src = run / weights_name
    state, meta = load_state(src)
    config = json.loads((run / "config.json").read_text())
    spec, scale = get_spec(meta["architecture"]), int(meta["scale"])
    if spec.multi_scale and "scales" not in meta:
        sys.exit(f"not shipping {src}: a {spec.name} file must be trained at every scale (its metadata has no "
                 "'scales': made before multi-scale training?)")
    scales = [int(x) for x in meta.get("scales", [scale])]  # a multi-scale file (MDSR) is benched at each
    extra = REAL_WORLD_BENCH if config.get("degradation") == "realesrgan" else []
    with tempfile.TemporaryDirectory() as tmp:
        half = Path(tmp) / "half.safetensors"
        save_weights(half, state, meta, half=True)
        full = {(s, d): r for s in scales for d, r in bench(spec.name, s, src, extra).items()}
        reduced = {(s, d): r for s in scales for d, r in bench(spec.name, s, half, extra).items()}
    base = {(s, d): r for s in scales for d, r in bench("bicubic", s, extra=extra).items()}
    delta = {k: abs(reduced[k]["psnr"] - full[k]["psnr"]) for k in full}
    use_half = all(v < FP16_TOLERANCE_DB for v in delta.values())
    chosen = reduced if use_half else full
    for (s, d), row in chosen.items():
        if row["psnr"] <= base[s, d]["psnr"]:
            sys.exit(f"not shipping {src}: {d} x{s} {row['psnr']:.4f} dB does not beat bicubic "
                     f"{base[s, d]['psnr']:.4f} dB")

    def scores(s: int) -> dict[str, Any]:
        return {d: {k: round(chosen[s, d][k], 4) for k in ("psnr", "ssim")} for d in DATASETS}

    def per_scale(make: Any) -> dict[str, Any]:
        return make(scale) if len(scales) == 1 else {f"x{s}": make(s) for s in scales}

    record = {
        **{k: meta[k] for k in ("architecture", "scale", "scales", "options", "steps", "data", "ema") if k in meta},
        "training_command": meta.get("command") or TrainConfig.from_dict(config).command_line(),
        "train_seconds": round(train_seconds(run)),
        **({"init": init_record(Path(config["init"]))} if config.get("init") else {}),
        "device": device_label(config),
        "storage": "fp16" if use_half else "fp32",
        **({"bench_degradation": extra} if extra else {}),
        "fp16_psnr_change_db": per_scale(lambda s: {d: round(delta[s, d], 5) for d in DATASETS}),
        "bench": per_scale(scores),
    }
    dest = WEIGHTS / spec.weights_name(scale)
    save_weights(dest, state, record, half=use_half)
    for s in scales:
        print(f"{dest.name} x{s}: {record['storage']} (fp16 change "
              + ", ".join(f"{d} {delta[s, d]:.5f}" for d in DATASETS) + " dB); "
              + ", ".join(f"{d} {chosen[s, d]['psnr']:.4f}/{chosen[s, d]['ssim']:.4f}" for d in DATASETS)
              + "; bicubic " + ", ".join(f"{d} {base[s, d]['psnr']:.4f}" for d in DATASETS))


def steps_cell(meta: dict[str, Any]) -> str:
    """This run's steps, after the steps of the weights it started from when those were the same architecture
    (``2,000 + 1,200``: x3 from x2, or a fine-tune at a new learning rate)."""
    steps, init = meta.get("steps"), meta.get("init") or {}
    if not isinstance(steps, int):
        return "?"
    if init.get("architecture") == meta.get("architecture") and isinstance(init.get("steps"), int):
        return f"{init['steps']:,} + {steps:,}"
    return f"{steps:,}"


def card_rows(text: str) -> dict[tuple[str, str], tuple[bool, list[str]]]:
    """The rows of a card written by :func:`card`: (model, "xS") → (in the real-world table, cells)."""
    rows, real = {}, False
    for line in text.splitlines():
        if line.startswith("## "):
            real = line == "## Real-world models"
        elif line.startswith("| ") and not line.startswith("| model |"):
            cells = [c.strip() for c in line.strip()[1:-1].split("|")]
            rows[cells[0], cells[1]] = (real, cells)
    return rows


def card(only: list[str] | None = None) -> None:
    """Bench every shipped file as users get it and write ``weights/README.md``; with ``only``, bench those models'
    files and keep the other rows and training commands as the card has them."""
    from sr_cli.registry import MODELS
    from sr_cli.weights import read_metadata

    old = (WEIGHTS / "README.md").read_text() if only else ""
    kept, kept_notes = card_rows(old), [line for line in old.splitlines() if line.startswith("- `")]
    rows, real_rows, notes = [], [], []
    for spec in MODELS.values():
        for scale in spec.scales:
            path = WEIGHTS / spec.weights_name(scale)
            if not spec.learned or not path.is_file():
                continue
            if only and spec.name not in only:
                real, cells = kept[spec.name, f"x{scale}"]
                (real_rows if real else rows).append(cells)
                notes += [n for n in kept_notes if n.startswith(f"- `{path.name}`") and n not in notes]
                continue
            meta = read_metadata(path)
            extra = meta.get("bench_degradation") or []
            res, base = bench(spec.name, scale, extra=extra), bench("bicubic", scale, extra=extra)
            floor = None if extra else FLOORS.get((spec.name, scale))
            s5 = res["set5"]["psnr"]
            status = "" if floor is None else (f"floor {floor} met" if s5 >= floor else f"**below floor {floor}**")
            (real_rows if extra else rows).append([spec.name, f"x{scale}", f"{res['set5']['params']:,}",
                         f"{s5:.2f} / {res['set5']['ssim']:.4f}",
                         f"{res['set14']['psnr']:.2f} / {res['set14']['ssim']:.4f}",
                         f"{base['set5']['psnr']:.2f} / {base['set14']['psnr']:.2f}",
                         f"{1000 / res['set14']['megapixels_per_second']:.0f}",
                         meta.get("storage", "?"), steps_cell(meta), f"{meta.get('train_seconds', 0) / 60:.0f} min", status])
            init = meta.get("init")
            start = (f"; started from {init.get('architecture', '?')} x{init.get('scale', '?')} weights at step "
                     f"{init.get('steps', '?')} (Set5 {init.get('val_psnr') or float('nan'):.2f} dB, `{init['file']}`"
                     + (f", trained by `{init['command']}`" if init.get("command") else "") + ")" if init else "")
            opts = f" (network options {json.dumps(meta['options'])})" if meta.get("options") else ""
            if any(f"`{path.name}`" in n for n in notes):
                continue  # a multi-scale file: one training command for its rows
            notes.append(f"- `{path.name}` ({meta.get('device', '?')}){opts}: `{meta.get('training_command', '?')}`"
                         f"{start}")
    unshipped = [spec.name for spec in MODELS.values() if spec.learned
                 and not any((WEIGHTS / spec.weights_name(s)).is_file() for s in spec.scales)]
    head = ["model", "scale", "params", "Set5 PSNR / SSIM", "Set14 PSNR / SSIM", "bicubic Set5 / Set14",
            "ms per MP (CPU)", "stored", "steps", "train time", "quality floor"]
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    real_table = ["| " + " | ".join(head[:-1]) + " |", "|" + "---|" * (len(head) - 1)]
    real_table += ["| " + " | ".join(r[:len(head) - 1]) + " |" for r in real_rows]
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    cpu = f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads {threads}"
    text = "\n".join([
        "# srtool model zoo",
        "",
        "Weights trained by srtool itself with `srtool train` (`srtool distill` for csd) on T91 + BSD200 "
        "(`../shared/data/train`, `train_extra`), bicubic (MATLAB) degradation. Generated by `python benchmarks/zoo.py card` from "
        "`srtool bench -d set5 -d set14 -m MODEL -s SCALE --json` run on the shipped files; do not edit by hand.",
        "",
        "PSNR/SSIM: Y channel (BT.601), `scale` pixels shaved, as in REFERENCE §1. ms per MP: output megapixels, "
        f"Set14 through the engine on {cpu}, fp32. Steps `A + B`: B steps "
        "started from weights trained A steps (the training commands below say which). Train time: this run's logged "
        "steps' wall time, validation included.",
        "",
        *table,
        "",
        *(["## Real-world models", "",
           "Trained with `--degradation realesrgan` (Real-ESRGAN's random second-order blur, resize, noise and JPEG, "
           "a new one for every patch), so benched on LR made the same way: one degradation per picture, drawn from "
           "seed 0 and its file name (`srtool bench --degradation realesrgan`), with bicubic interpolation of the "
           "same LR beside it.", "", *real_table, ""] if real_rows else []),
        f"Not shipped: {', '.join(unshipped) or 'none'} (the model-zoo issue trains these on a GPU only, and no GPU "
        f"has been lent to this project). Every row above was trained on the device its training command lists; a "
        "row below its quality floor is the best that budget reached, and says so in the last column.",
        "",
        "## Training commands",
        "",
        *notes,
        "",
        *published_section(),
    ])
    from sr_cli.train.runs import write_text

    write_text(WEIGHTS / "README.md", text)
    print("\n".join(table))


PUBLISHED = "## Published weights (catalogue)"


def published_section() -> list[str]:
    """The card's table of the catalogue's official weights: the papers' figures, not measured here."""
    from sr_cli.catalogue import catalogue

    rows = ["| name | runs as | scale | size | licence | source | paper Set5 PSNR |", "|---|---|---|---|---|---|---|"]
    for e in catalogue().values():
        set5 = ", ".join(f"{k} {v:.2f}" for k, v in e.published.get("set5", {}).items()) or "-"
        size = f"{e.size / 2**20:.1f} MiB" if e.size else "-"
        rows.append(f"| {e.name} | {e.architecture} | {'/'.join(f'x{s}' for s in e.scales)} | {size} | {e.licence} | "
                    f"{e.source} | {set5} |")
    return [PUBLISHED, "", "Official files srtool fetches on demand (`srtool upscale -m NAME`, `srtool models fetch "
            "NAME`), checked by sha256. Their scores are the papers' (REFERENCE §4): none was fetched or measured "
            "here. `srtool bench -m NAME -d set5` measures one on a connected machine.", "", *rows, ""]


def published() -> None:
    """Rewrite only the card's published-weights section (no bench runs)."""
    from sr_cli.train.runs import write_text

    text = (WEIGHTS / "README.md").read_text()
    text = text.split(PUBLISHED)[0].rstrip("\n") + "\n\n" + "\n".join(published_section())
    write_text(WEIGHTS / "README.md", text)


def params() -> None:
    """Rewrite ``sr_cli/data/params.json``, the parameter counts ``srtool models`` lists without building."""
    from sr_cli.cli.models import PARAM_TABLE, param_table
    from sr_cli.train.runs import write_text

    write_text(PARAM_TABLE, json.dumps(param_table(), indent=1, sort_keys=True) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ship", help="bench a run's weights and copy them into weights/")
    s.add_argument("run", type=Path)
    s.add_argument("--weights", default="best.safetensors", help="file inside the run folder")
    c = sub.add_parser("card", help="regenerate weights/README.md")
    c.add_argument("--models", nargs="+", help="bench only these models' files; keep the card's other rows")
    sub.add_parser("published", help="regenerate only the card's published-weights table")
    sub.add_parser("params", help="regenerate sr_cli/data/params.json (after shipping weights of new options)")
    args = ap.parse_args()
    if args.cmd == "ship":
        ship(args.run, args.weights)
    elif args.cmd == "published":
        published()
    elif args.cmd == "params":
        params()
    else:
        card(args.models)


if __name__ == "__main__":
    main()
