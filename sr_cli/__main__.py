"""``python -m sr_cli`` and the ``srtool`` console script."""

import ctypes
import signal

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _return_freed_memory() -> None:
    """Have glibc serve every allocation of 1 MiB or more by its own mmap, so that a freed block buffer goes back
    to the system at once. Left alone, glibc raises that threshold to 32 MiB after the first large free and keeps
    what it frees resident, which --max-memory cannot see (peak RSS, ESPCN x4 on 1200x1000: 716 MB -> 482 MB; EDSR
    x4 on 768x512: 1107 MB -> 781 MB; no slower). A C library without mallopt is left as it is."""
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):
        pass


def main() -> None:
    """Run the srtool command line. Until a command installs its own handlers (``sr_cli/signals.py``), Ctrl-C ends
    srtool at once as the signal's default does, without a traceback: importing torch takes seconds."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _return_freed_memory()
    from sr_cli.cli.app import app

    app()


if __name__ == "__main__":
    main()
