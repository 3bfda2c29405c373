"""How srtool stops: SIGINT and SIGTERM, the child processes it starts, and worker threads it cannot wait for.

Inside a command (``run_command`` in sr_cli/cli/common.py) both signals kill every child started with
:func:`spawn` and raise :class:`Stopped` in the main thread; a command that stops more gently (training
finishes its step and checkpoints) installs its own handler with :func:`handling`. The exit status is 130 for
SIGINT and 143 for SIGTERM. Children run in their own session (and so process group), so a terminal's Ctrl-C
reaches srtool alone, which stops them; on Linux they are also SIGKILLed when srtool dies, even by ``kill -9``
(``PR_SET_PDEATHSIG``, which fires when the *thread* that started the child ends: a thread must wait for its
children before it returns). The child sets that itself, in a small Python that then execs the real command: a
``preexec_fn`` would run Python between fork and exec, and with the video pipeline's threads spawning at once
that deadlocks (seen here: two threads stuck in the at-fork handlers' locks).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sr_cli.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}
# Run by a fresh interpreter as the child: SIGKILL me when my parent dies (PR_SET_PDEATHSIG = 1, SIGKILL = 9),
# die now if it already has, then become the real command (the setting survives exec).
_DIE_WITH_PARENT = """\
import ctypes, os, sys
ctypes.CDLL(None).prctl(1, ctypes.c_ulong(9), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
if os.getppid() != int(sys.argv[1]):
    os._exit(137)
os.execvp(sys.argv[2], sys.argv[2:])
"""

_lock = threading.RLock()  # re-entrant: the signal handler runs in the main thread, maybe inside spawn
_children: weakref.WeakSet[subprocess.Popen[Any]] = weakref.WeakSet()


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: ``signum`` says which, ``exit_code`` is the command's exit status, and the
    message is the one line the user sees."""

    def __init__(self, signum: int, message: str = "interrupted") -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = EXIT_CODES[signum]


@contextmanager
def handling(handler: Callable[[int], None]) -> Iterator[None]:
    """Call ``handler(signum)`` on SIGINT and SIGTERM inside the block, then restore the previous handlers
    (nothing happens outside the main thread, where Python cannot take signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, lambda signum, frame: handler(signum)) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)


def stop(signum: int) -> None:
    """The handler inside a command: kill the children, then raise :class:`Stopped` in the main thread."""
    kill_children()
    raise Stopped(signum)


def _child_command(args: list[str]) -> list[str]:
    """``args`` started through :data:`_DIE_WITH_PARENT` on Linux (as they are elsewhere)."""
    if not sys.platform.startswith("linux") or not sys.executable:
        return args
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *args]


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **kwargs)`` for a child that must not outlive srtool: in its own session and, on
    Linux, killed when srtool dies; a stop kills it too."""
    proc = subprocess.Popen(_child_command(args), **kwargs, start_new_session=True)
    with _lock:
        _children.add(proc)
    return proc


def kill_children() -> None:
    """Kill every child from :func:`spawn` that is still running (their owners then see them gone)."""
    with _lock:
        children = list(_children)
    for proc in children:
        proc.kill()  # a no-op for a child already reaped


class Worker:
    """A daemon thread that a stop may leave running (see :func:`end_after_stop`). ``done`` is set once its
    target has returned: wait on it, not on ``join``, which before CPython 3.13 marks a running thread as stopped
    when a signal handler's exception interrupts it."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(target,), name=name, daemon=True)

    def _run(self, target: Callable[[], None]) -> None:
        try:
            target()
        finally:
            self.done.set()

    def start(self) -> None:
        """Start the thread."""
        self.thread.start()


def end_after_stop(code: int) -> None:
    """End the process now with ``code``, after a stop: a worker may still be running (say inside the model), which
    Python's shutdown would wait for or abort under, and even without one that shutdown (freeing torch's state,
    module by module) took seconds on a loaded machine, past the promised stop. Call it last, once every file is
    resumable."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
