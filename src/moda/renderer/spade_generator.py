"""G: the SPADE decoder, warped feature map -> 512x512 RGB."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import SPADEResnetBlock
from .config import SpadeConfig


class SPADEDecoder(nn.Module):
    """(B, 256, 64, 64) -> (B, 3, 512, 512) in [0, 1]; the input is also every SPADE's segmentation map."""

    def __init__(self, config: SpadeConfig = SpadeConfig()):
        super().__init__()
        self.config = config
        c = config.input_channels
        self.fc = nn.Conv2d(c, 2 * c, kernel_size=3, padding=1)
        for i in range(config.num_middle_blocks):
            self.add_module(f"G_middle_{i}", SPADEResnetBlock(2 * c, 2 * c, c, config.spade_hidden))
        self.up_0 = SPADEResnetBlock(2 * c, c, c, config.spade_hidden)
        self.up_1 = SPADEResnetBlock(c, config.out_channels, c, config.spade_hidden)
        # As released: any upscale > 1 means conv to 12 channels and PixelShuffle(2); otherwise a plain conv.
        self.conv_img: nn.Module = (
            nn.Sequential(nn.Conv2d(config.out_channels, 3 * 2**2, kernel_size=3, padding=1), nn.PixelShuffle(2))
            if config.upscale > 1 else nn.Conv2d(config.out_channels, 3, kernel_size=3, padding=1)
        )

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = self.fc(feature)
        for i in range(self.config.num_middle_blocks):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))
