"""Batches of image files: expanding inputs (files, folders, globs), naming outputs, upscaling one file."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from sr_cli.engine import Progress
from sr_cli.errors import InputError, OutputError, UsageError
from sr_cli.images import SUPPORTED_SUFFIXES, Picture, read_image
from sr_cli.pipeline import Upscaler


@dataclass(frozen=True)
class Job:
    """One input file and where its result goes."""

    source: Path
    target: Path


def expand_inputs(inputs: list[str], recursive: bool) -> tuple[list[Path], list[InputError]]:
    """Files named, images inside folders (recursively with ``recursive``) and glob matches, in order.

    Returns the paths found and one InputError for each input that matched nothing, so a batch can go on.
    """
    found: list[Path] = []
    problems: list[InputError] = []
    for item in inputs:
        try:
            found.extend(_expand(item, recursive, problems))
        except OSError as err:  # a folder on the way that cannot be searched (permissions, a broken mount)
            problems.append(InputError(f"{item}: cannot be read ({err.strerror or err})"))
    return list(dict.fromkeys(found)), problems


def _expand(item: str, recursive: bool, problems: list[InputError]) -> list[Path]:
    """The files one input names (see :func:`expand_inputs`); a problem is appended to ``problems``."""
    path = Path(item)
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        images = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                        and not p.name.startswith("."))
        if not images:
            hint = "" if recursive else " (use --recursive for sub-folders)"
            problems.append(InputError(f"{path}: no images in this folder{hint}"))
        return images
    if path.exists() or not glob.has_magic(item):
        return [path]  # a missing file is reported when it is read
    matches = sorted(Path(p) for p in glob.glob(item, recursive=recursive) if Path(p).is_file())
    if not matches:
        problems.append(InputError(f"{item}: no file matches this pattern"))
    return matches


def default_name(source: Path, model: str, scale: int) -> str:
    """``<stem>_<model>_x<scale>.<ext>``."""
    return f"{source.stem}_{model}_x{scale}{source.suffix}"


def plan_jobs(sources: list[Path], output: Path | None, model: str, scale: int) -> list[Job]:
    """Where each source's result goes: beside it, into the folder ``output``, or to the file ``output``."""
    as_folder = output is not None and (len(sources) > 1 or output.is_dir() or str(output).endswith(os.sep)
                                        or output.suffix == "")
    if output is not None and not as_folder:
        if output.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise UsageError(f"-o {output}: unsupported image type '{output.suffix}' "
                             f"(use one of {', '.join(sorted(SUPPORTED_SUFFIXES))})")
        return [Job(sources[0], output)]
    jobs = []
    for source in sources:
        if output is None and source.exists() and not source.is_file():
            raise UsageError(f"{source} is a pipe or device: name the output with -o")
        folder = output if output is not None else source.parent
        jobs.append(Job(source, folder / default_name(source, model, scale)))
    return jobs


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


def read_and_upscale(upscaler: Upscaler, job: Job, *, overwrite: bool, max_pixels: int,
                 progress: Progress | None = None) -> Picture:
    """Read and upscale one image (refused first when its output exists and ``overwrite`` is off); returns the
    picture to write (with the notes of the read): the caller writes it with ``write_image``, which checks again."""
    if output_exists(job) and not overwrite:
        raise OutputError(f"{job.target} exists: pass --overwrite to replace it or --skip-existing to keep it")
    prepare_folder(job.target.parent)
    picture = read_image(job.source, max_pixels=max_pixels)
    h, w = picture.pixels.shape[:2]
    if min(h, w) < 1:
        raise InputError(f"{job.source}: image has zero size")
    pixels = upscaler.upscale_picture(picture.pixels, picture.bit_depth, progress)
    return Picture(pixels, picture.bit_depth, picture.icc, picture.exif, picture.source_format, picture.notes)
