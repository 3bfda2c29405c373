"""srtool: command-line image and video super-resolution built on PyTorch."""

__version__ = "0.1.0"
