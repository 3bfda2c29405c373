"""Video super-resolution: ffmpeg decoding and encoding around the upscaler, streamed in chunks.

``run_video(request, upscale, scale, model)`` does a whole job; the modules each do one part: ``probe``
(streams and exact frame timing), ``reader`` and ``writer`` (ffmpeg pipes), ``pipeline`` (three threads),
``codecs`` (encoder defaults), ``mux`` (join and audio), ``workdir`` (chunks and resume), ``dist`` (ranks).
"""

from __future__ import annotations

from sr_cli.choices import DEFAULT_VIDEO_MODEL, DEFAULT_VIDEO_SCALE
from sr_cli.video.job import VideoReport, VideoRequest, default_output, run_video

__all__ = ["DEFAULT_VIDEO_MODEL", "DEFAULT_VIDEO_SCALE", "VideoReport", "VideoRequest", "default_output",
           "run_video"]
