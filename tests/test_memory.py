"""Bounded memory: pictures upscaled in blocks sized from the budget and the model's measured footprint, joined
exactly as one pass; the budget parsed, checked and obeyed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from testdata import HR, read
from tolerances import FLIPPED_LEVELS, FLIPPED_SHARE

from sr_cli.errors import UsageError
from sr_cli.memory import ALLOCATOR_SLACK, activation_bytes, parse_size, resident_bytes, work_budget
from sr_cli.pipeline import Upscaler, block_spans
from sr_cli.registry import get_spec
from sr_cli.weights import save_weights

REPO = Path(__file__).resolve().parents[1]


def test_block_spans_cover_the_axis_with_halos_only_between_blocks() -> None:
    assert block_spans(512, 374, 36) == [(0, 256, 0, 292), (256, 512, 220, 512)]
    assert block_spans(10, 0, 3) == [(0, 10, 0, 10)]
    spans = block_spans(101, 30, 38, cell=2)  # a pixel-unshuffling model: boundaries on whole 2x2 cells
    assert [a for a, *_ in spans] == [0, 26, 50, 76] and spans[-1][1] == 101
    assert all(a % 2 == 0 and w % 2 == 0 for a, _, w, _ in spans)


@pytest.mark.parametrize(("name", "options"), [("espcn", {}), ("bicubic", {}), ("edsr", {"n_blocks": 2}),
                                               ("esrgan", {"num_block": 1, "unshuffle": 2})])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_blocks_join_as_one_pass(name: str, options: dict[str, int], channels: int, tmp_path: Path) -> None:
    """Gray, RGB and RGBA pictures in 4x3 blocks against one pass (random weights where none ship: the join is
    what is tested). A network's sums run in another order on another window shape (other kernels), so a value
    that straddles a rounding boundary may land one 8-bit level apart; MATLAB bicubic, rounded to integers as it
    goes, is exact."""
    rgb = read(HR / "Set5" / "baby.png")[:61, :47]
    pixels = {1: rgb[..., :1], 3: rgb, 4: np.concatenate([rgb, rgb[..., :1]], axis=2)}[channels]
    scale = 2
    spec = get_spec(name)
    weights = None
    if options:
        torch.manual_seed(0)
        weights = save_weights(tmp_path / "w.safetensors", spec.build(scale, **options).state_dict(),
                               {"architecture": name, "scale": scale, "options": options})
    whole = Upscaler(name, scale, device="cpu", precision="fp32", tile=0, weights=weights).upscale_picture(pixels, 8)
    out = Upscaler(name, scale, device="cpu", precision="fp32", tile=16, weights=weights).upscale_picture(pixels, 8)
    assert out.shape == whole.shape == (61 * scale, 47 * scale, channels)
    diff = np.abs(out.astype(int) - whole.astype(int))
    assert diff.max() <= FLIPPED_LEVELS and (diff > 0).mean() <= FLIPPED_SHARE
    if name == "bicubic":
        assert diff.max() == 0


def test_block_size_follows_the_budget_and_the_footprint() -> None:
    """The budget is what --max-memory leaves beyond what the process holds (this test process: whatever it is)."""
    up = Upscaler("edsr", 4, device="cpu", precision="fp32")
    up.max_memory = resident_bytes() + (400 << 20)
    small = up.block_size(1000, 1000, 3)
    up.max_memory = resident_bytes() + (1200 << 20)
    large = up.block_size(1000, 1000, 3)
    assert 16 <= small < large
    assert up.block_size(20, 20, 3) == 0  # a picture that fits goes in one pass
    espcn = Upscaler("espcn", 4, device="cpu", precision="fp32", max_memory=resident_bytes() + (400 << 20))
    assert espcn.block_size(1000, 1000, 3) > small  # a lighter network takes larger blocks


def test_activation_bytes_count_the_tensors_alive_at_once() -> None:
    """A chain conv 1→8 then conv 8→2 on a 24x24 fp32 probe: the peak holds the first output (8 channels) and the
    second (2 channels) at once, (8 + 2) · 4 bytes per pixel, plus twice the final output (2 · 2 · 4), times the
    allocator slack; a ReLU in place adds nothing (the same storage)."""
    chain = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(inplace=True),
                                torch.nn.Conv2d(8, 2, 3, padding=1))
    per_pixel = activation_bytes(chain, 1, torch.device("cpu"), torch.float32, torch.contiguous_format)
    assert per_pixel == pytest.approx(((8 + 2) * 4 + 2 * 2 * 4) * ALLOCATOR_SLACK)


def test_sizes_parse_and_a_budget_already_spent_is_refused() -> None:
    assert parse_size("1.5G") == 3 << 29 and parse_size("800M") == 800 << 20 and parse_size("2048k") == 2 << 20
    assert parse_size("123") == 123 and parse_size("2GiB") == 2 << 30 and parse_size("1.5 GB") == 3 << 29
    with pytest.raises(UsageError, match="takes a size like 1.5G"):
        parse_size("lots")
    with pytest.raises(UsageError, match=r"--max-memory 10 MiB leaves no room: srtool already holds \d+ MiB"):
        work_budget(10 << 20)


def test_the_command_stays_under_its_cap(tmp_path: Path) -> None:
    """ESPCN x4 of a 1200x1000 picture (a 4800x4000 output, 57.6 MB as 8-bit) under --max-memory 600M: the
    child's peak RSS stays under the cap plus the output picture; with --tile 0 it would not."""
    big = np.tile(read(HR / "Set14" / "baboon.png"), (3, 3, 1))[:1000, :1200]
    from PIL import Image

    Image.fromarray(big).save(tmp_path / "big.png")
    # VmHWM, the peak of this process's own memory map: ru_maxrss would also count the parent's peak, which a
    # (v)forked child inherits until its exec
    probe = ("import re, sys; from sr_cli.__main__ import main; sys.argv = ['srtool'] + sys.argv[1:]\n"
             "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
             "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1]\n"
             "print(int(hwm) * 1024, code, file=sys.stderr)")

    def peak(*extra: str) -> int:
        done = subprocess.run([sys.executable, "-c", probe, "upscale", str(tmp_path / "big.png"), "-m", "espcn", "-s",
                               "4", "-o", str(tmp_path / "out.png"), "--overwrite", *extra], capture_output=True,
                              text=True, timeout=300, cwd=REPO)
        rss, code = done.stderr.strip().splitlines()[-1].split()
        assert code in ("0", "None"), done.stderr
        return int(rss)

    output = 4800 * 4000 * 3
    assert peak("--max-memory", "600M") <= (600 << 20) + output
    assert peak("--tile", "0") > (600 << 20) + output  # the negative control: one pass needs more
