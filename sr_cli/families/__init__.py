"""Model families: each module is one family's home (its registry entries and its foreign checkpoint layouts).

A family module holds ``SPECS`` (its ``ModelSpec``s, whose tile overlap is the module's own receptive radius, a
formula here) and ``LAYOUTS`` (detectors that recognise its official checkpoints and convert them to srtool's names
and range). Its published weights are the catalogue entries (``data/catalogue.json``) whose architecture is one of
its names. ``models/`` stays pure torch, and this package imports none: builders import their network when called,
so listing the registry (``srtool models``) loads no torch. Adding a family: a module in ``models/``, a module here,
a line in ``FAMILIES``.
"""

from __future__ import annotations

from sr_cli.families import (
    compact,
    csd,
    edsr,
    espcn,
    esrgan,
    fsrcnn,
    interpolation,
    srcnn,
    srresnet,
)
from sr_cli.families.layouts import Found, State
from sr_cli.modelspec import ModelSpec

FAMILIES = (interpolation, srcnn, fsrcnn, espcn, srresnet, edsr, esrgan, compact, csd)
SPECS: list[ModelSpec] = [spec for family in FAMILIES for spec in family.SPECS]


def convert(state: State) -> Found:
    """``state`` in srtool's names and range with its info (architecture, scale, options, layout), or None when no
    family's layout matches (srtool's own names, whose scale the tensors do not tell, fall there too)."""
    for family in FAMILIES:
        for detector in family.LAYOUTS:
            found = detector(state)
            if found is not None:
                return found
    return None
