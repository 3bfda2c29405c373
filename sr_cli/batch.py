"""Batches of image files: expanding inputs (files, folders, globs), naming outputs, upscaling one file."""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sr_cli.engine import Progress
from sr_cli.errors import EXIT_OK, InputError, OutputError, SrtoolError, UsageError
from sr_cli.images import FORMATS, SUPPORTED_SUFFIXES, Picture, read_image, write_image
from sr_cli.pipeline import Upscaler
from sr_cli.sizing import FILTER, OutputSize, resize_picture


@dataclass(frozen=True)
class Source:
    """One input file and its place under an output folder: its path below the folder or glob base named (the
    tree kept), or its bare name for a file named on its own."""

    path: Path
    rel: Path


@dataclass(frozen=True)
class Job:
    """One input file and where its result goes."""

    source: Path
    target: Path


@dataclass(frozen=True)
class Naming:
    """How outputs are named: ``<stem><suffix>.<ext>``, the suffix ``_<model>_<size>`` unless given, the extension
    the input's unless ``fmt`` (png, jpg, webp, tif, bmp) is given."""

    label: str  # "<model>_<size>", e.g. espcn_x2, edsr_x1.5, edsr_w1920
    suffix: str | None = None
    fmt: str | None = None

    def name(self, source: Path) -> str:
        """The output file name for ``source``."""
        suffix = f"_{self.label}" if self.suffix is None else self.suffix
        ext = f".{self.fmt}" if self.fmt is not None else source.suffix
        return f"{source.stem}{suffix}{ext}"


def expand_inputs(inputs: list[str], recursive: bool) -> tuple[list[Source], list[InputError]]:
    """Files named, images inside folders (recursively with ``recursive``) and glob matches, in order.

    Returns the sources found and one InputError for each input that matched nothing, so a batch can go on.
    """
    found: dict[Path, Source] = {}
    problems: list[InputError] = []
    for item in inputs:
        try:
            for source in _expand(item, recursive, problems):
                found.setdefault(source.path, source)
        except OSError as err:  # a folder on the way that cannot be searched (permissions, a broken mount)
            problems.append(InputError(f"{item}: cannot be read ({err.strerror or err})"))
    return list(found.values()), problems


def _expand(item: str, recursive: bool, problems: list[InputError]) -> list[Source]:
    """The files one input names (see :func:`expand_inputs`); a problem is appended to ``problems``."""
    path = Path(item)
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        images = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                        and not p.name.startswith("."))
        if not images:
            hint = "" if recursive else " (use --recursive for sub-folders)"
            problems.append(InputError(f"{path}: no images in this folder{hint}"))
        return [Source(p, p.relative_to(path)) for p in images]
    if path.exists() or not glob.has_magic(item):
        return [Source(path, Path(path.name))]  # a missing file is reported when it is read
    base = Path(*[part for part in itertools.takewhile(lambda part: not glob.has_magic(part), path.parts)])
    matches = sorted(Path(p) for p in glob.glob(item, recursive=recursive) if Path(p).is_file())
    if not matches:
        problems.append(InputError(f"{item}: no file matches this pattern"))
    return [Source(p, p.relative_to(base)) for p in matches]


def plan_jobs(sources: list[Source], output: Path | None, naming: Naming) -> list[Job]:
    """Where each source's result goes: beside it, into the folder ``output`` (the tree below each folder named
    mirrored), or to the file ``output``. Two inputs bound for one file, or an output that would replace its
    own input, are refused before anything runs."""
    as_folder = output is not None and (len(sources) > 1 or output.is_dir() or str(output).endswith(os.sep)
                                        or output.suffix == "")
    if output is not None and not as_folder:
        if output.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise UsageError(f"-o {output}: unsupported image type '{output.suffix}' "
                             f"(use one of {', '.join(sorted(SUPPORTED_SUFFIXES))})")
        if naming.fmt is not None and FORMATS[output.suffix.lower()] != FORMATS[f".{naming.fmt}"]:
            raise UsageError(f"-o {output} and --format {naming.fmt} disagree: give one of them")
        jobs = [Job(sources[0].path, output)]
    else:
        jobs = []
        for source in sources:
            if output is None and source.path.exists() and not source.path.is_file():
                raise UsageError(f"{source.path} is a pipe or device: name the output with -o")
            place = source.path.parent if output is None else output / source.rel.parent
            jobs.append(Job(source.path, place / naming.name(source.path)))
    _check_targets(jobs)
    return jobs


def _check_targets(jobs: list[Job]) -> None:
    """UsageError when two jobs write one file or a job would write over its own input."""
    seen: dict[Path, Path] = {}
    for job in jobs:
        target = Path(os.path.abspath(job.target))
        if target == Path(os.path.abspath(job.source)):
            raise UsageError(f"{job.source}: its output would replace it (choose another --suffix, --format or -o)")
        if target in seen:
            raise UsageError(f"{seen[target]} and {job.source} would both be written to {job.target} "
                             "(name the output folder with -o to keep the tree, or set --suffix)")
        seen[target] = job.source


def prepare_folder(folder: Path) -> None:
    """Create ``folder`` if needed; an OutputError when it cannot be made or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create output folder {folder}: {err.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise OutputError(f"output folder {folder} is not writable")


def output_exists(job: Job) -> bool:
    """Whether the job's output exists; an output path the system refuses (a name too long, a folder that cannot
    be searched) is an OutputError naming it."""
    try:
        return job.target.exists()
    except OSError as err:
        raise OutputError(f"{job.target}: cannot be written ({err.strerror or err})") from None


class ModelAtScales:
    """The model at the scale each picture needs: at ``scales[0]`` when that is the only one, else the smallest
    that reaches the ``size`` asked for; one Upscaler per scale, built on first use."""

    def __init__(self, make: Callable[[int], Upscaler], scales: Sequence[int], size: OutputSize) -> None:
        self.make, self.scales, self.size = make, tuple(scales), size
        self.built: dict[int, Upscaler] = {}

    def scale_for(self, width: int, height: int) -> int:
        """The model scale for a picture of ``width`` x ``height``."""
        if len(self.scales) == 1:
            return self.scales[0]
        return self.size.model_scale(width, height, self.scales)

    def get(self, scale: int) -> Upscaler:
        """The upscaler at ``scale`` (built now if it is the first)."""
        if scale not in self.built:
            self.built[scale] = self.make(scale)
        return self.built[scale]


@dataclass(frozen=True)
class Result:
    """One upscaled picture and what was done to it: the model's scale, and the size it was resized from."""

    picture: Picture
    scale: int
    resized_from: tuple[int, int] | None


def read_and_upscale(models: ModelAtScales, job: Job, *, overwrite: bool, max_pixels: int,
                     progress: Progress | None = None) -> Result:
    """Read and upscale one image (refused first when its output exists and ``overwrite`` is off), then resize it
    to the size asked for, if any; the caller writes the picture with ``write_image``, which checks again."""
    if output_exists(job) and not overwrite:
        raise OutputError(f"{job.target} exists: pass --overwrite to replace it or --skip-existing to keep it")
    prepare_folder(job.target.parent)
    picture = read_image(job.source, max_pixels=max_pixels)
    h, w = picture.pixels.shape[:2]
    if min(h, w) < 1:
        raise InputError(f"{job.source}: image has zero size")
    scale = models.scale_for(w, h)
    pixels = models.get(scale).upscale_picture(picture.pixels, picture.bit_depth, progress)
    resized_from = None
    if models.size.active and (size := models.size.target(w, h)) != (w * scale, h * scale):
        pixels, resized_from = resize_picture(pixels, picture.bit_depth, size), (w * scale, h * scale)
    return Result(Picture(pixels, picture.bit_depth, picture.icc, picture.exif, picture.source_format, picture.notes),
                  scale, resized_from)


def done_entry(job: Job, result: Result) -> dict[str, Any]:
    """The report entry (``--json``) of a picture written."""
    picture = result.picture
    h, w = picture.pixels.shape[:2]
    resized = None if result.resized_from is None else {"from": list(result.resized_from), "filter": FILTER}
    return {"input": str(job.source), "output": str(job.target), "status": "ok", "size": [w, h],
            "model_scale": result.scale, "resized": resized, "bit_depth": picture.bit_depth,
            "warnings": list(picture.notes)}


def skipped_entry(job: Job) -> dict[str, Any]:
    """The report entry of an input whose output exists (``--skip-existing``)."""
    return {"input": str(job.source), "output": str(job.target), "status": "skipped"}


def error_entry(source: str, err: SrtoolError) -> dict[str, Any]:
    """The report entry of an input that failed."""
    return {"input": source, "status": "error", "error": str(err)}


def upscale_file(models: ModelAtScales, job: Job, *, overwrite: bool, skip_existing: bool, max_pixels: int,
                 quality: int) -> tuple[dict[str, Any], int]:
    """One job start to finish, as the local batch does it (less its writer thread): its report entry and exit
    code (0 when written or skipped). A Ray worker's unit of work."""
    try:
        if skip_existing and output_exists(job):
            return skipped_entry(job), EXIT_OK
        result = read_and_upscale(models, job, overwrite=overwrite, max_pixels=max_pixels)
        write_image(result.picture, job.target, overwrite=overwrite, quality=quality)
    except SrtoolError as err:
        return error_entry(str(job.source), err), err.exit_code
    return done_entry(job, result), EXIT_OK
