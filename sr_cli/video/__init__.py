"""Video super-resolution: ffmpeg decoding and encoding around the upscaler, streamed in chunks.

``run_video(request, upscale, scale, model)`` does a whole job; the modules each do one part: ``probe``
(streams and exact frame timing), ``reader`` and ``writer`` (ffmpeg pipes), ``pipeline`` (three threads),
``codecs`` (encoder defaults), ``mux`` (join and audio), ``workdir`` (chunks and resume), ``dist`` (ranks).
"""

from __future__ import annotations

from sr_cli.video.job import VideoReport, VideoRequest, default_output, run_video

# The model and scale of a bare `srtool video clip.mp4`: ESPCN with its shipped weights, the fastest learned
# model per pixel (all its convolutions run at LR), which matters at video frame counts.
DEFAULT_VIDEO_MODEL = "espcn"
DEFAULT_VIDEO_SCALE = 2

__all__ = ["DEFAULT_VIDEO_MODEL", "DEFAULT_VIDEO_SCALE", "VideoReport", "VideoRequest", "default_output",
           "run_video"]
