"""The one precision rule, on every kind of CPU: AVX2, AVX-512, AVX-512 BF16 and AMX-BF16 are simulated by
answering torch's two capability queries, so the same checks run on whichever machine runs the suite."""

from __future__ import annotations

import json

import pytest
import torch
from testdata import HR, TRAIN

from sr_cli import registry
from sr_cli.device import select_precision, use_channels_last
from sr_cli.errors import UsageError
from sr_cli.pipeline import Upscaler
from sr_cli.registry import get_spec
from sr_cli.train.config import TrainConfig
from sr_cli.train.loop import Trainer

CPU = torch.device("cpu")
# (AVX-512 BF16 instructions, AMX tiles) → what auto picks on CPU
MACHINES = {"avx2": (False, False, torch.float32), "avx512": (False, False, torch.float32),
            "avx512_bf16": (True, False, torch.bfloat16), "amx_bf16": (True, True, torch.bfloat16),
            "amx_only": (False, True, torch.bfloat16)}


@pytest.fixture(params=sorted(MACHINES))
def machine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> torch.dtype:
    """This CPU made to answer like ``request.param``; the dtype ``auto`` must pick there."""
    avx512_bf16, amx, want = MACHINES[request.param]
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    return want


def test_auto_follows_the_cpu_and_explicit_choices_hold(machine: torch.dtype) -> None:
    assert select_precision("auto", CPU) == machine
    assert select_precision(None, CPU) == machine
    assert use_channels_last(CPU)  # every CPU, fp32 and bf16 alike
    assert select_precision("fp32", CPU) == torch.float32 and select_precision("bf16", CPU) == torch.bfloat16
    with pytest.raises(UsageError, match="fp16 does not run on CPU"):
        select_precision("fp16", CPU)


def test_upscale_and_training_share_the_rule(machine: torch.dtype, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "bf16.json"  # as benchmarks/bf16_quality.py writes it
    table.write_text(json.dumps({"espcn": {"x2": -0.0072, "x3": -0.0376}}))
    monkeypatch.setattr(registry, "BF16_TABLE", table)
    upscaler = Upscaler("espcn", 2, device="cpu", precision="auto")
    assert upscaler.dtype == machine and upscaler.engine._channels_last
    for other in (Upscaler("espcn", 3, device="cpu"),  # measured: loses too much in bf16
                  Upscaler("espcn", 4, device="cpu"),  # not measured
                  Upscaler("espcn", 2, device="cpu", weights=registry.shipped_weights(get_spec("espcn"), 2)),
                  Upscaler("bicubic", 2, device="cpu")):  # other weights: not measured; interpolation: nothing to gain
        assert other.engine.dtype == torch.float32
        assert other.engine._channels_last == (other.spec.name != "bicubic")  # interpolation: no convolutions
    assert Upscaler("espcn", 3, device="cpu", precision="bf16").engine.dtype == torch.bfloat16  # asked for
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "a.png").write_bytes(TRAIN[0].read_bytes())
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "b.png").write_bytes((HR / "Set5" / "bird.png").read_bytes())
    trainer = Trainer(TrainConfig(model="espcn", scale=2, data=[str(tmp_path / "hr")], steps=1, patch=8, batch=2,
                                  val_data=str(tmp_path / "val"), workers=0), tmp_path / "run")
    assert trainer.amp_dtype == machine and trainer.channels_last


@pytest.mark.parametrize(("cap", "native"), [("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True),
                                             ("AVX512_CORE_AMX", True), ("", True)])
def test_a_onednn_isa_cap_below_bf16_means_fp32(cap: str, native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """ONEDNN_MAX_CPU_ISA=AVX2 on a bf16 CPU makes oneDNN emulate bf16 (measured 0.01x of fp32): auto stays fp32."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert select_precision("auto", CPU) == (torch.bfloat16 if native else torch.float32)
