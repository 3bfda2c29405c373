"""``python -m sr_cli`` and the ``srtool`` console script."""

import signal


def main() -> None:
    """Run the srtool command line. Until a command installs its own handlers (``sr_cli/signals.py``), Ctrl-C ends
    srtool at once as the signal's default does, without a traceback: importing torch takes seconds."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from sr_cli.cli.app import app

    app()


if __name__ == "__main__":
    main()
