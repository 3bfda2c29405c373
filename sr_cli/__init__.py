"""srtool: command-line image and video super-resolution built on PyTorch."""

__version__ = "0.1.0"

__all__ = ["Upscaler", "__version__"]


def __getattr__(name: str) -> object:
    """``sr_cli.Upscaler``, imported on first use (the command line's --help never loads torch)."""
    if name == "Upscaler":
        from sr_cli.pipeline import Upscaler

        return Upscaler
    raise AttributeError(f"module 'sr_cli' has no attribute {name!r}")
