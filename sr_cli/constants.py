"""Constants the networks, the registry and the checkpoint layouts share (torch-free: listing the registry reads
them)."""

SCALES = (2, 3, 4)
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)  # EDSR's RGB mean shift, on [0, 1]
