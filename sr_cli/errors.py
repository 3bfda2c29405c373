"""The error types srtool raises for bad input, and their stable exit codes.

Every error a user can cause is an ``SrtoolError``: the command line prints its message as one line
and exits with its ``exit_code``; nothing else is shown (no traceback).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Stable exit codes, documented in the README.
EXIT_OK = 0
EXIT_FAILED = 1  # some items of a batch failed; the others were done
EXIT_USAGE = 2  # bad option or argument (Typer uses 2 too)
EXIT_INPUT = 3  # an input file or data set that cannot be used
EXIT_WEIGHTS = 4  # missing or mismatched model weights
EXIT_OUTPUT = 5  # an output that exists (without --overwrite) or cannot be written
EXIT_NETWORK = 6  # a download that failed
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM


class SrtoolError(Exception):
    """A problem the user can fix; its message is one line naming the problem."""

    exit_code = EXIT_FAILED


class UsageError(SrtoolError):
    """An option value that cannot work (unknown model, unsupported scale, ...)."""

    exit_code = EXIT_USAGE


class InputError(SrtoolError):
    """An input that cannot be read: missing, not an image, corrupt, too large, too small."""

    exit_code = EXIT_INPUT


class WeightsError(SrtoolError):
    """Weights that are missing or belong to another architecture or scale."""

    exit_code = EXIT_WEIGHTS


class OutputError(SrtoolError):
    """An output that already exists or cannot be written."""

    exit_code = EXIT_OUTPUT


class DownloadError(SrtoolError):
    """A download that failed or did not match its checksum."""

    exit_code = EXIT_NETWORK


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` naming the one of ``choices`` closest to ``word``, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def batch_exit(codes: list[int]) -> int:
    """A batch's exit code from its items' failures: 0 with none, their code when they share one, else 1."""
    if not codes:
        return EXIT_OK
    return codes[0] if len(set(codes)) == 1 else EXIT_FAILED
