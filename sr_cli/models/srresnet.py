"""SRResNet and the SRGAN discriminator (Ledig et al. 2017)."""

from __future__ import annotations

import torch
from torch import nn

from sr_cli.models.blocks import ResBlock, Upsampler, conv


class SRResNet(nn.Module):
    """conv9 PReLU; ``n_blocks`` × (conv3 BN PReLU conv3 BN + skip); conv3 BN + long skip;
    (conv3 r²·n_feats, PixelShuffle r, PReLU) per stage; conv9 to ``num_channels``.

    ``bn=False`` drops every BatchNorm layer. PReLUs have one shared slope each, as in the usual ports.
    """

    def __init__(self, scale: int, num_channels: int = 3, n_feats: int = 64, n_blocks: int = 16,
                 bn: bool = True) -> None:
        super().__init__()
        self.head = nn.Sequential(conv(num_channels, n_feats, 9), nn.PReLU())
        self.body = nn.Sequential(*[ResBlock(n_feats, 3, nn.PReLU, bn=bn) for _ in range(n_blocks)])
        fuse: list[nn.Module] = [conv(n_feats, n_feats, 3)]
        if bn:
            fuse.append(nn.BatchNorm2d(n_feats))
        self.fuse = nn.Sequential(*fuse)
        self.upsampler = Upsampler(scale, n_feats, act=nn.PReLU)
        self.tail = conv(n_feats, num_channels, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        x = x + self.fuse(self.body(x))
        return self.tail(self.upsampler(x))


class SRGANDiscriminator(nn.Module):
    """SRGAN's discriminator: 8 conv3 layers (n, n, 2n, 2n, 4n, 4n, 8n, 8n features, stride 1/2 alternating),
    BatchNorm after all but the first, LeakyReLU 0.2; dense 1024, LeakyReLU, dense 1 (a logit, no sigmoid).

    An adaptive average pool to 6×6 before the dense layers makes it take any patch size ≥ 16; at the
    paper's 96×96 patches the pool is the identity and the network is the paper's.
    """

    def __init__(self, num_channels: int = 3, n_feats: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = num_channels
        for i in range(8):
            out_ch = n_feats * 2 ** (i // 2)
            layers.append(conv(in_ch, out_ch, 3, stride=1 + i % 2))
            if i > 0:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(6)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(in_ch * 36, 1024), nn.LeakyReLU(0.2, inplace=True),
                                        nn.Linear(1024, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))
