"""What bf16 costs each shipped model: Set5 Y-PSNR in bf16 against fp32, written to ``sr_cli/data/bf16_set5.json``.

``--precision auto`` on a CPU with native bf16 runs a shipped model in bf16 only where this table says the Set5
PSNR changes by less than ``sr_cli.registry.BF16_MAX_SET5_CHANGE_DB`` (see ``sr_cli.device``). bf16 rounding does
not depend on the machine, so one run on any CPU with native bf16 fills the table (elsewhere it is emulated: slow).

    python benchmarks/bf16_quality.py [--models compact]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from precision import cpu_flags  # benchmarks/precision.py

from sr_cli.registry import BF16_TABLE, MODELS, shipped_weights


def set5_psnr(model: str, scale: int, precision: str) -> float:
    out = subprocess.run([sys.executable, "-m", "sr_cli", "bench", "-d", "set5", "-m", model, "-s", str(scale),
                          "--precision", precision, "--json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["results"][0]["psnr"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", help="measure only these models; keep the table's other rows")
    args = ap.parse_args()
    print(f"CPU: {cpu_flags()}")
    table: dict[str, dict[str, float]] = json.loads(BF16_TABLE.read_text()) if args.models else {}
    for spec in MODELS.values():
        for scale in spec.scales:
            if spec.learned and shipped_weights(spec, scale).is_file() and spec.name in (args.models or [spec.name]):
                fp32, bf16 = set5_psnr(spec.name, scale, "fp32"), set5_psnr(spec.name, scale, "bf16")
                table.setdefault(spec.name, {})[f"x{scale}"] = round(bf16 - fp32, 4)
                print(f"{spec.name:9} x{scale}: Set5 {fp32:.4f} dB fp32, {bf16:.4f} bf16 ({bf16 - fp32:+.4f})", flush=True)
    Path(BF16_TABLE).write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
