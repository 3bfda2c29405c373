"""``Reporter``: what a training loop tells the outside world (torch-free: the command line subclasses it)."""

from __future__ import annotations

from pathlib import Path


class Reporter:
    """What the loop tells the outside world (rank 0 only); the default says nothing. The CLI draws a bar."""

    def start(self, run_dir: Path, total: int, done: int) -> None:
        """Training is about to run steps ``done + 1 … total``."""

    def step(self, step: int, loss: float, lr: float) -> None:
        """Step ``step`` (1-based) finished with this loss at this learning rate."""

    def validated(self, step: int, psnr: float, ssim: float, best: bool) -> None:
        """A validation finished; ``best`` when it is the best so far."""

    def note(self, message: str) -> None:
        """Something worth one line."""

    def warn(self, message: str) -> None:
        """Something wrong but not fatal."""
