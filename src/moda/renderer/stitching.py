"""Stitching and retargeting MLPs of LivePortrait (`stitching_retargeting_module.pth`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..motion.vector import NUM_KEYPOINTS


@dataclass(frozen=True)
class MlpConfig:
    input_size: int
    hidden_sizes: tuple[int, ...]
    output_size: int


STITCHING = MlpConfig(126, (128, 128, 64), 65)  # [x_s, x_d] -> 63 keypoint deltas + global (tx, ty)
LIP_RETARGETING = MlpConfig(65, (128, 128, 64), 63)
EYE_RETARGETING = MlpConfig(66, (256, 256, 128, 128, 64), 63)


class StitchingRetargetingNetwork(nn.Module):
    """Linear/ReLU stack stored as `mlp.{0,2,4,...}`; no activation on the output."""

    def __init__(self, config: MlpConfig):
        super().__init__()
        sizes = (config.input_size, *config.hidden_sizes)
        layers: list[nn.Module] = []
        for in_size, out_size in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(in_size, out_size), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], config.output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def stitch(network: StitchingRetargetingNetwork, x_s: torch.Tensor, x_d: torch.Tensor) -> torch.Tensor:
    """Correct driving keypoints (B, 21, 3) so the animated face stays aligned with the source crop."""
    batch = x_d.shape[0]
    delta = network(torch.cat([x_s.reshape(batch, -1), x_d.reshape(batch, -1)], dim=1))
    stitched = x_d + delta[:, : 3 * NUM_KEYPOINTS].reshape(batch, NUM_KEYPOINTS, 3)
    stitched[..., :2] += delta[:, None, 3 * NUM_KEYPOINTS : 3 * NUM_KEYPOINTS + 2]
    return stitched


def retarget_eyes(network: StitchingRetargetingNetwork, x_s: torch.Tensor, eye_ratios: torch.Tensor) -> torch.Tensor:
    """Keypoint offsets (B, 21, 3) that open / close the eyes; eye_ratios (B, 3) = [source left, source right,
    driving]. Add them to the driving keypoints."""
    batch = x_s.shape[0]
    return network(torch.cat([x_s.reshape(batch, -1), eye_ratios], dim=1)).reshape(batch, NUM_KEYPOINTS, 3)


def retarget_lip(network: StitchingRetargetingNetwork, x_s: torch.Tensor, lip_ratios: torch.Tensor) -> torch.Tensor:
    """Keypoint offsets (B, 21, 3) that open / close the mouth; lip_ratios (B, 2) = [source, driving]."""
    batch = x_s.shape[0]
    return network(torch.cat([x_s.reshape(batch, -1), lip_ratios], dim=1)).reshape(batch, NUM_KEYPOINTS, 3)
