"""Frame timing kept exact: a constant rate as a fraction (24000/1001), or every input timestamp for VFR.

A constant-rate input is re-timed from its rational rate (frame i at i/rate), which is exact in any container
whose time base can hold it. A variable-rate input keeps each frame's own timestamp: every chunk is encoded in
the input's time base with a ``setpts`` expression that gives frame N its original tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sr_cli.errors import UsageError


@dataclass(frozen=True)
class Timeline:
    """The frames to process, in display order: their ticks in ``time_base`` and which could not be decoded."""

    time_base: Fraction
    rate: Fraction | None  # exact frame rate when the stream is constant-rate, else None
    pts: tuple[int, ...]
    missing: frozenset[int]  # timeline indices with no decoded frame
    last_duration: int  # ticks

    @classmethod
    def build(cls, time_base: Fraction, rate: Fraction, decoded: list[int], missing: list[int],
              last_duration: int) -> Timeline:
        """Merge decoded and undecodable timestamps; decide constant rate or VFR from the timestamps themselves."""
        pts = sorted(set(decoded) | set(missing))
        gone = set(missing) - set(decoded)
        holes = frozenset(i for i, p in enumerate(pts) if p in gone)
        step = 1 / (rate * time_base) if rate > 0 else None
        if last_duration <= 0:
            last_duration = pts[-1] - pts[-2] if len(pts) > 1 else max(1, round(step or 1 / time_base / 25))
        regular = step is not None and all(abs(p - pts[0] - i * step) < 1 for i, p in enumerate(pts))
        return cls(time_base, rate if regular else None, tuple(pts), holes, last_duration)

    @property
    def cfr(self) -> bool:
        """True when frame i sits at i / rate."""
        return self.rate is not None

    def __len__(self) -> int:
        return len(self.pts)

    def seconds(self, i: int) -> Fraction:
        """Absolute time of slot ``i`` in the input, in seconds."""
        return self.pts[i] * self.time_base

    def offset(self, i: int) -> Fraction:
        """Exact output time of slot ``i`` (``i == len`` gives the end), in seconds from the first frame."""
        if self.rate is not None:
            return Fraction(i) / self.rate
        if i == len(self.pts):
            return (self.pts[-1] - self.pts[0] + self.last_duration) * self.time_base
        return (self.pts[i] - self.pts[0]) * self.time_base

    def ticks(self, a: int, b: int) -> list[int]:
        """Timestamps of slots ``[a, b)`` in ticks of ``time_base``, relative to slot ``a`` (VFR chunks)."""
        return [p - self.pts[a] for p in self.pts[a:b]]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (fractions as strings)."""
        return {"time_base": str(self.time_base), "rate": str(self.rate) if self.rate else None,
                "pts": list(self.pts), "missing": sorted(self.missing), "last_duration": self.last_duration}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Timeline:
        """Inverse of ``to_json``."""
        return cls(Fraction(doc["time_base"]), Fraction(doc["rate"]) if doc["rate"] else None, tuple(doc["pts"]),
                   frozenset(doc["missing"]), doc["last_duration"])


def pts_expression(ticks: list[int]) -> str:
    """A ``setpts`` expression of the frame number N giving each frame its tick (runs of equal steps folded)."""
    runs: list[list[int]] = []  # [first N, first tick, step, last N]
    for n, tick in enumerate(ticks):
        if runs:
            first, start, step, last = runs[-1]
            if last == first or tick == start + (n - first) * step:
                runs[-1] = [first, start, tick - start if last == first else step, n]
                continue
        runs.append([n, tick, 0, n])

    def build(part: list[list[int]]) -> str:
        if len(part) == 1:
            first, tick, step, _ = part[0]
            return f"{tick}+(N-{first})*{step}" if step else str(tick)
        mid = len(part) // 2
        return f"if(lt(N,{part[mid][0]}),{build(part[:mid])},{build(part[mid:])})"

    return build(runs)


def microseconds(t: Fraction) -> int:
    """``t`` seconds rounded to whole microseconds (the concat demuxer's unit)."""
    return round(t * 1_000_000)


def parse_time(text: str, option: str) -> Fraction:
    """``90``, ``90.5``, ``1:30`` or ``0:01:30.5`` as exact seconds; UsageError naming ``option`` otherwise."""
    try:
        parts = [Fraction(p) for p in text.strip().split(":")]
        if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts) or any(p >= 60 for p in parts[1:]):
            raise ValueError
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{option} must be seconds or [HH:]MM:SS[.fff], not '{text}'") from None
    total = Fraction(0)
    for part in parts:
        total = total * 60 + part
    return total
