"""Best/patience tracking of a run's validation results: the last and the best validation (by Y-PSNR) and how many
validations have passed without a new best (``--patience`` stops the run after that many)."""

from __future__ import annotations

from typing import Any


class Tracker:
    """The validation results of a run (rank 0); ``patience`` 0 never stops it."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best: dict[str, float] | None = None
        self.last: dict[str, float] | None = None
        self.bad = 0  # validations since the best

    def add(self, val: dict[str, float]) -> bool:
        """Record the validation ``val`` (``psnr``, ``ssim``, ``step``, ...); whether it is the best so far."""
        self.last = val
        improved = self.best is None or val["psnr"] > self.best["psnr"]
        if improved:
            self.best = dict(val)
            self.bad = 0
        else:
            self.bad += 1
        return improved

    @property
    def out_of_patience(self) -> bool:
        """Whether ``patience`` validations in a row brought no new best."""
        return self.patience > 0 and self.bad >= self.patience

    def row(self) -> dict[str, float]:
        """The metrics CSV cells of the last validation (a multi-scale model's per-scale PSNR too)."""
        if self.last is None:
            return {}
        per_scale = {f"val_{k}": v for k, v in self.last.items() if k.startswith("psnr_x")}
        return {"val_psnr": self.last["psnr"], "val_ssim": self.last["ssim"], **per_scale}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint keys of the tracking."""
        return {"best": self.best, "last_val": self.last, "bad_validations": self.bad}

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` from a whole checkpoint."""
        self.best, self.last = checkpoint["best"], checkpoint["last_val"]
        self.bad = int(checkpoint["bad_validations"])
