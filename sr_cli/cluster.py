"""``--ray``: ``upscale`` and ``video`` spread over a Ray cluster (``pip install "srtool[ray]"``).

The driver (the srtool command) keeps everything but the pictures: it expands the inputs, plans, reports, and for
a video probes, plans the encoding, joins the chunks and muxes the audio (sr_cli/video/job.py), as a local run
does. The pictures go to a pool of Ray actors, one per GPU (or per ``--ray-cpus`` cores on a cluster without
GPUs), each holding the model, built once by the same ``Upscaler`` a local run builds; an item is handed to
whichever worker is free, one at a time. A worker that dies (its node lost, killed, out of memory) takes nothing
with it: its item is redone on another worker (at most ``MAX_ATTEMPTS`` times), and a replacement worker is asked
for. Every file is written atomically (sr_cli/atomic.py) and a redone item may replace only what its lost attempt
wrote, so a retry is harmless. Files are read and written by the workers, on a file system every node shares; the
workers run in the driver's working directory, so relative paths name the same files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sr_cli.atomic import remove_stale
from sr_cli.batch import Job, ModelAtScales, error_entry, upscale_file
from sr_cli.errors import EXIT_FAILED, SrtoolError, UsageError
from sr_cli.video import workdir
from sr_cli.video.job import Encode, Plan, VideoRequest, encode_spans
from sr_cli.video.pipeline import Counts

INSTALL = 'pip install "srtool[ray]"'
MAX_ATTEMPTS = 3  # an item whose worker is lost this often is reported failed (say, a file that crashes its reader)
WAIT_S = 1.0  # the driver wakes at least this often (Ctrl-C is answered between waits)


def import_ray() -> ModuleType:
    """The ``ray`` module; a UsageError saying how to install it when it is missing."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs Ray, an optional extra: {INSTALL}") from None
    return ray


@contextlib.contextmanager
def connect(address: str | None) -> Iterator[None]:
    """Join the Ray cluster at ``address`` (else ``$RAY_ADDRESS``; neither: start a local Ray runtime on this
    machine's cores) for the block. Ray's driver prints the cluster's messages (a node died, with 20 lines of its
    log, ...) on stdout from a thread of its own: they are dropped, so that stdout holds the ``--json`` report
    alone and stderr srtool's one-line warnings (a worker lost) and errors."""
    ray = import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    host, colon, port = address.rpartition(":")
    if colon and port.isdigit() and "://" not in address:  # Ray itself would retry for minutes
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as err:
            raise UsageError(f"no Ray cluster answers at {address} ({err.strerror or err})") from None
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False,
                 **({"include_dashboard": False} if address == "local" else {}))
    except (ConnectionError, ValueError, RuntimeError) as err:
        raise UsageError(f"no Ray cluster answers at {address} ({_reason(err)})") from None
    with open(os.devnull, "w") as drop, contextlib.redirect_stdout(drop):
        try:
            yield
        finally:
            ray.shutdown()  # which stops that thread


@dataclass(frozen=True)
class Lost:
    """An item whose worker was lost ``MAX_ATTEMPTS`` times."""

    attempts: int
    reason: str

    def __str__(self) -> str:
        return f"its Ray worker was lost {self.attempts} times (last: {self.reason})"


class Worker:
    """A Ray actor: one process holding the model (built on first use, at once for a single scale, so a model
    that cannot load fails before the batch), doing one item at a time."""

    def __init__(self, models: ModelAtScales, device: str | None, cwd: str, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(OSError):  # a node without the driver's folder: absolute paths still work
            os.chdir(cwd)
        self.models, self.device = models, device
        self.failure: SrtoolError | None = None
        try:
            if len(models.scales) == 1:
                models.get(models.scales[0])
        except SrtoolError as err:
            self.failure = err

    def ready(self) -> dict[str, Any] | SrtoolError:
        """What runs here (device; model name and dtype when built), or why the model cannot load."""
        from sr_cli.device import select_device

        if self.failure is not None:
            return self.failure
        built = next(iter(self.models.built.values()), None)
        return {"device": str(select_device(self.device)), "model": built and built.spec.name,
                "dtype": built and str(built.dtype)}

    def image(self, job: Job, settings: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """One picture, read, upscaled and written: its report entry and exit code."""
        return upscale_file(self.models, job, **settings)

    def frames(self, root: Path, plan: Plan, request: VideoRequest, a: int, b: int) -> Counts | SrtoolError:
        """The chunk files of timeline slots ``[a, b)`` not yet in ``root`` (a redone task skips what its lost
        attempt finished), or the error that stopped them."""
        todo = workdir.missing_spans(a, b, workdir.finished_chunks(root))
        try:
            return encode_spans(root, plan, request, todo, upscale=self.models.get(self.models.scales[0])
                                .upscale_frames)
        except SrtoolError as err:
            return err


class Pool:
    """The Ray actors of one job: started as items need them (one per GPU, else one per ``cpus`` cores, at most
    a node's), killed when the block ends. ``notice`` prints a warning line."""

    def __init__(self, models: ModelAtScales, device: str | None, cpus: int, notice: Callable[[str], None]) -> None:
        self.ray = import_ray()
        self.models, self.device, self.notice = models, device, notice
        self.slots, resources = _worker_slots(self.ray, cpus, device)
        self.threads = int(resources["num_cpus"])
        self.actor_class = self.ray.remote(Worker).options(max_restarts=0, **resources)
        self.idle: list[Any] = []
        self.running: dict[Any, tuple[Any, int]] = {}  # task → (actor, item)
        self.starting: dict[Any, Any] = {}  # ready() call → actor
        self.info: dict[str, Any] | None = None
        self.lost = 0  # workers lost so far

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        for actor in [*self.idle, *(a for a, _ in self.running.values()), *self.starting.values()]:
            self.ray.kill(actor, no_restart=True)

    def _start(self) -> None:
        actor = self.actor_class.remote(self.models, self.device, os.getcwd(), self.threads)
        self.starting[actor.ready.remote()] = actor

    def grow(self, items: int) -> None:
        """Start workers up to the cluster's slots, or ``items``, whichever is fewer (they load the model meanwhile)."""
        for _ in range(min(self.slots, items) - len(self.idle) - len(self.running) - len(self.starting)):
            self._start()

    def _started(self, ref: Any) -> None:
        """A worker answered ready(): in the pool, or (the model cannot load) the job fails with its error."""
        actor = self.starting.pop(ref)
        try:
            info = self.ray.get(ref)
        except self.ray.exceptions.RayError as err:  # it died starting: srtool missing there, its node lost
            self.ray.kill(actor, no_restart=True)
            if not (self.idle or self.running or self.starting):
                raise SrtoolError(f"no Ray worker could start: {_reason(err)}") from None
            self.notice(f"a Ray worker could not start: {_reason(err)}")
            return
        if isinstance(info, SrtoolError):
            raise info
        self.info = self.info or info
        self.idle.append(actor)

    def describe(self) -> dict[str, Any]:
        """What the workers run (see ``Worker.ready``), from the first to start."""
        self.grow(1)
        while self.info is None:
            ready, _ = self.ray.wait(list(self.starting), num_returns=1, timeout=WAIT_S)
            for ref in ready:
                self._started(ref)
        return self.info

    def map(self, method: str, count: int, args: Callable[[int, int], tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        """Call ``method(*args(i, attempt))`` on a free worker for each item ``i < count``; yields ``(i, result)``
        as each finishes, the result a :class:`Lost` for an item whose worker was lost ``MAX_ATTEMPTS`` times."""
        self.grow(count)
        queue: deque[int] = deque(range(count))
        attempts: Counter[int] = Counter()
        waiting = False
        while queue or self.running:
            while queue and self.idle:
                actor, i = self.idle.pop(), queue.popleft()
                attempts[i] += 1
                self.running[getattr(actor, method).remote(*args(i, attempts[i]))] = actor, i
            ready, _ = self.ray.wait([*self.running, *self.starting], num_returns=1, timeout=WAIT_S)
            if not ready and self.lost and not (self.running or self.idle or waiting):
                self.notice("every Ray worker is lost: waiting for the cluster to place another")
                waiting = True
            for ref in ready:
                if ref in self.starting:
                    self._started(ref)
                    waiting = False
                    continue
                actor, i = self.running.pop(ref)
                try:
                    result = self.ray.get(ref)
                except self.ray.exceptions.RayTaskError:  # srtool itself failed there: as a local run would
                    raise
                except self.ray.exceptions.RayError as err:  # the worker is lost: the item goes to another
                    self.ray.kill(actor, no_restart=True)
                    self.lost += 1
                    self._start()  # its replacement, used once the cluster places it
                    if attempts[i] < MAX_ATTEMPTS:
                        self.notice(f"a Ray worker was lost ({_reason(err)}): its work is done again elsewhere")
                        queue.appendleft(i)
                        continue
                    result = Lost(attempts[i], _reason(err))
                else:
                    self.idle.append(actor)
                yield i, result


def _worker_slots(ray: ModuleType, cpus: int, device: str | None) -> tuple[int, dict[str, float]]:
    """How many workers the cluster's live nodes hold, and each one's resources: a GPU (and a core) each, unless
    the cluster has none or the device asked for is the CPU; else ``cpus`` cores each (at most a node's)."""
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    gpus = sum(int(node.get("GPU", 0)) for node in nodes)
    if gpus and (device or os.environ.get("SRTOOL_DEVICE") or "auto").lower() != "cpu":
        return gpus, {"num_cpus": 1, "num_gpus": 1}
    per = min(cpus, max((int(node.get("CPU", 0)) for node in nodes), default=0))
    if per < 1:
        raise SrtoolError("the Ray cluster has no CPU to run a worker on")
    return sum(int(node.get("CPU", 0)) // per for node in nodes), {"num_cpus": per}


def _reason(err: BaseException) -> str:
    """The last line of a (Ray) error's message, which names the cause."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(err).__name__


def upscale_files(pool: Pool, jobs: list[Job], **settings: Any) -> Iterator[tuple[int, dict[str, Any], int]]:
    """``srtool upscale``'s jobs on the pool: yields ``(index, report entry, exit code)`` as each finishes.

    ``settings`` are ``batch.upscale_file``'s. A redone job may replace its output only when that did not exist
    before its first attempt (the file is then the lost attempt's); at the end, the temporary files of lost
    workers are removed.
    """
    fresh: dict[int, bool] = {}

    def args(i: int, attempt: int) -> tuple[Any, ...]:
        if attempt == 1:
            try:
                fresh[i] = not jobs[i].target.exists()
            except OSError:
                fresh[i] = False
        again = attempt > 1 and fresh[i]
        return jobs[i], {**settings, "overwrite": settings["overwrite"] or again,
                         "skip_existing": settings["skip_existing"] and not again}

    for i, result in pool.map("image", len(jobs), args):
        if isinstance(result, Lost):
            result = error_entry(str(jobs[i].source), SrtoolError(f"{jobs[i].source}: {result}")), EXIT_FAILED
        yield i, *result
    for folder in dict.fromkeys(job.target.parent for job in jobs):
        remove_stale(folder)


def video_encoder(pool: Pool) -> Encode:
    """``run_video``'s encoding on the pool: each chunk of the missing spans a task (``--chunk-frames`` slots);
    a chunk lost with its worker is redone from its last finished chunk file."""

    def encode(root: Path, plan: Plan, request: VideoRequest, todo: list[tuple[int, int]],
               on_frames: Callable[[int], None] | None) -> Counts:
        step = request.chunk_frames
        spans = [(a, min(a + step, y)) for x, y in todo for a in range(x, y, step)]
        counts = Counts()
        for i, result in pool.map("frames", len(spans), lambda i, _: (root, plan, request, *spans[i])):
            a, b = spans[i]
            if isinstance(result, (Lost, SrtoolError)):
                raise result if isinstance(result, SrtoolError) else SrtoolError(f"frames {a}-{b}: {result}")
            counts.frames += result.frames
            counts.repeated += result.repeated
            counts.chunks += result.chunks
            if on_frames is not None:
                on_frames(b - a)
        return counts

    return encode
