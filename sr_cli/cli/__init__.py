"""The srtool command line: one thin module per command, wired together in ``app.py``."""
