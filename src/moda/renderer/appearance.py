"""F: the appearance feature extractor, source image -> 3-D feature volume."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import DownBlock2d, ResBlock3d, SameBlock2d
from .config import AppearanceConfig


class AppearanceFeatureExtractor(nn.Module):
    """(B, 3, S, S) RGB in [0, 1] -> f_s (B, C, D, S/4, S/4); released: (B, 32, 16, 64, 64)."""

    def __init__(self, config: AppearanceConfig = AppearanceConfig()):
        super().__init__()
        self.config = config
        e, m = config.block_expansion, config.max_features
        self.first = SameBlock2d(config.image_channel, e)
        self.down_blocks = nn.ModuleList(
            DownBlock2d(min(m, e * 2**i), min(m, e * 2 ** (i + 1))) for i in range(config.num_down_blocks)
        )
        self.second = nn.Conv2d(min(m, e * 2**config.num_down_blocks), m, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(config.num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(config.reshape_channel))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = self.first(image)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        batch, _, height, width = out.shape
        # channel c * D + d of the 2-D map becomes (c, d) of the volume
        volume = out.view(batch, self.config.reshape_channel, self.config.reshape_depth, height, width)
        return self.resblocks_3d(volume)
