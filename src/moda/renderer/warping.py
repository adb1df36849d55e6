"""W: the warping network: dense motion from keypoint pairs, then the warped, occlusion-masked feature."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import DownBlock3d, SameBlock2d, UpBlock3d, make_coordinate_grid
from .config import DenseMotionConfig, WarpingConfig

KP_VARIANCE = 0.01


class HourglassEncoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock3d(in_features if i == 0 else min(max_features, block_expansion * 2**i),
                        min(max_features, block_expansion * 2 ** (i + 1)))
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class HourglassDecoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.up_blocks = nn.ModuleList(
            UpBlock3d((1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1)),
                      min(max_features, block_expansion * 2**i))
            for i in reversed(range(num_blocks))
        )
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)  # [upsampled, skip]
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.encoder = HourglassEncoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = HourglassDecoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def keypoint_gaussians(keypoints: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) keypoints on a (D, H, W, 3) grid -> (B, K, D, H, W) Gaussians with variance 0.01."""
    offset = grid[None, None] - keypoints[:, :, None, None, None, :]
    return torch.exp(-0.5 * offset.pow(2).sum(-1) / KP_VARIANCE)


def keypoint_heatmaps(kp_driving: torch.Tensor, kp_source: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(B, K+1, D, H, W): driving minus source Gaussians per keypoint, after a zero background channel."""
    heatmap = keypoint_gaussians(kp_driving, grid) - keypoint_gaussians(kp_source, grid)
    return torch.cat([heatmap.new_zeros(heatmap.shape[0], 1, *heatmap.shape[2:]), heatmap], dim=1)


class DenseMotionNetwork(nn.Module):
    """Predicts a dense backward deformation (and an occlusion map) from source / driving keypoints."""

    def __init__(self, num_kp: int, feature_channel: int, estimate_occlusion_map: bool, config: DenseMotionConfig):
        super().__init__()
        self.num_kp = num_kp
        self.hourglass = Hourglass(config.block_expansion, (num_kp + 1) * (config.compress + 1), config.num_blocks,
                                   config.max_features)
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, config.compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(config.compress)
        self.occlusion = (
            nn.Conv2d(self.hourglass.out_filters * config.reshape_depth, 1, kernel_size=7, padding=3)
            if estimate_occlusion_map else None
        )

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        feature = F.relu(self.norm(self.compress(feature)))
        batch, channels, depth, height, width = feature.shape
        k = self.num_kp + 1
        grid = make_coordinate_grid(depth, height, width, feature.dtype, feature.device)
        # Sparse motions (B, K+1, D, H, W, 3): identity for the background, a per-keypoint translation otherwise.
        per_keypoint = grid[None, None] - kp_driving[:, :, None, None, None, :] + kp_source[:, :, None, None, None, :]
        sparse_motion = torch.cat([grid[None, None].expand(batch, 1, -1, -1, -1, -1), per_keypoint], dim=1)
        # The grid is built align_corners=True style but sampled with align_corners=False, as released.
        deformed = F.grid_sample(
            feature.unsqueeze(1).expand(-1, k, -1, -1, -1, -1).reshape(batch * k, channels, depth, height, width),
            sparse_motion.reshape(batch * k, depth, height, width, 3),
            align_corners=False,
        ).view(batch, k, channels, depth, height, width)
        heatmap = keypoint_heatmaps(kp_driving, kp_source, grid)
        hourglass_input = torch.cat([heatmap.unsqueeze(2), deformed], dim=2).view(batch, -1, depth, height, width)
        prediction = self.hourglass(hourglass_input)
        mask = F.softmax(self.mask(prediction), dim=1).unsqueeze(-1)  # (B, K+1, D, H, W, 1)
        out = {"deformation": (sparse_motion * mask).sum(dim=1)}  # (B, D, H, W, 3)
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction.flatten(1, 2)))
        return out


class WarpingNetwork(nn.Module):
    """(f_s, kp_source x_s, kp_driving x_d) -> warped feature map (B, 256, 64, 64) for the generator."""

    def __init__(self, config: WarpingConfig = WarpingConfig()):
        super().__init__()
        self.config = config
        self.dense_motion_network = DenseMotionNetwork(config.num_kp, config.reshape_channel,
                                                       config.estimate_occlusion_map, config.dense_motion)
        out_features = config.block_expansion * 2**config.num_down_blocks
        self.third = SameBlock2d(config.max_features, out_features, leaky=True)
        self.fourth = nn.Conv2d(out_features, out_features, kernel_size=1)

    def forward(
        self, feature_3d: torch.Tensor, *, kp_source: torch.Tensor, kp_driving: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Keyword-only keypoints: the released code takes them positionally in the order (driving, source)."""
        dense = self.dense_motion_network(feature_3d, kp_driving, kp_source)
        warped = F.grid_sample(feature_3d, dense["deformation"], align_corners=False)
        out = self.fourth(self.third(warped.flatten(1, 2)))
        if "occlusion_map" in dense:
            out = out * dense["occlusion_map"]
        return {"out": out, **dense}
