"""M: the motion extractor, a ConvNeXt-V2 with heads for canonical keypoints, pose, translation, expression."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import MotionExtractorConfig


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of (B, C, H, W), eps 1e-6 (ConvNeXt's `channels_first` variant)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """Global response normalisation on channels-last input (B, H, W, C)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 -> LayerNorm -> MLP (GELU, GRN) -> residual."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).permute(0, 2, 3, 1)
        h = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(h)))))
        return x + h.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    def __init__(self, config: MotionExtractorConfig):
        super().__init__()
        dims = config.dims
        stem = nn.Sequential(nn.Conv2d(config.image_channel, dims[0], kernel_size=4, stride=4),
                             ChannelsFirstLayerNorm(dims[0]))
        self.downsample_layers = nn.ModuleList(
            [stem] + [nn.Sequential(ChannelsFirstLayerNorm(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
                      for i in range(len(dims) - 1)]
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(dim) for _ in range(depth))) for dim, depth in zip(dims, config.depths)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        k, bins = config.num_kp, config.num_bins
        self.fc_kp = nn.Linear(dims[-1], 3 * k)
        self.fc_scale = nn.Linear(dims[-1], 1)
        self.fc_pitch = nn.Linear(dims[-1], bins)
        self.fc_yaw = nn.Linear(dims[-1], bins)
        self.fc_roll = nn.Linear(dims[-1], bins)
        self.fc_t = nn.Linear(dims[-1], 3)
        self.fc_exp = nn.Linear(dims[-1], 3 * k)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        features = self.norm(x.mean(dim=(-2, -1)))
        return {name: getattr(self, f"fc_{name}")(features) for name in ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")}


class MotionExtractor(nn.Module):
    """(B, 3, S, S) RGB in [0, 1] -> dict: kp (B, 63), exp (B, 63), pitch/yaw/roll (B, 66) bin logits,
    t (B, 3), scale (B, 1). No activation on any head."""

    def __init__(self, config: MotionExtractorConfig = MotionExtractorConfig()):
        super().__init__()
        self.config = config
        self.detector = ConvNeXtV2(config)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.detector(image)
