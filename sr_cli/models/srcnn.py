"""SRCNN 9-1-5 (Dong et al. 2014): three convolutions on an already bicubic-upsampled image."""

from __future__ import annotations

import torch
from torch import nn

from sr_cli.models.blocks import conv


class SRCNN(nn.Module):
    """conv9 64, ReLU, conv1 32, ReLU, conv5 ``num_channels``; zero 'same' padding, output size = input size.

    The input is the bicubic upsample of the LR image (the registry wraps this module with the upsampler).
    Layer names (``conv1``..``conv3``) follow the common PyTorch port's checkpoints.
    """

    def __init__(self, num_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = conv(num_channels, 64, 9)
        self.conv2 = conv(64, 32, 1)
        self.conv3 = conv(32, num_channels, 5)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.relu(self.conv2(self.relu(self.conv1(x)))))
