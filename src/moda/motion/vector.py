"""The 70-number motion vector, the one place its layout is defined.

Per video frame: 63 expression deltas (21 keypoints x 3, point-major), scale, translation (tx, ty, tz) and
head pose (pitch, yaw, roll in degrees), all in LivePortrait's implicit-keypoint units. Everything that slices a
motion vector uses the names here.

Generator space: the generator sees every face at the dataset's mean size. A face's rescale ratio
rr = (scale + eps) / (mean scale + eps) divides its scale and translation on the way in
(`to_generator_space`) and multiplies them back on the way out (`from_generator_space`); tz is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self, TypeVar

import numpy as np
import torch

NUM_KEYPOINTS = 21
EXPRESSION_DIM = 3 * NUM_KEYPOINTS  # 63
MOTION_DIM = EXPRESSION_DIM + 7  # 70

EXPRESSION = slice(0, EXPRESSION_DIM)  # 21x3 deltas
SCALE = slice(63, 64)
TRANSLATION = slice(64, 67)  # tx, ty, tz
TZ = 66
ANGLES = slice(67, 70)  # pitch, yaw, roll (degrees)
PITCH, YAW, ROLL = 67, 68, 69
POSE = slice(63, 70)  # scale, translation and angles: everything but the expression
SCALE_AND_TRANSLATION = slice(63, 67)

# tz has zero variance in the released statistics; every (de)normalisation and rescale adds this to std / scale.
STD_EPS = 1e-5


Vectors = TypeVar("Vectors", torch.Tensor, np.ndarray)


def expression(motion: Vectors) -> Vectors:
    """(..., 70) tensor or array -> (..., 21, 3) expression deltas (a view where the memory layout allows)."""
    return motion[..., EXPRESSION].reshape(*motion.shape[:-1], NUM_KEYPOINTS, 3)


def rescale_ratio(scale: torch.Tensor, mean_scale: torch.Tensor | float) -> torch.Tensor:
    """rr = (scale + eps) / (mean scale + eps): how much larger this face is than the dataset's mean face."""
    return (scale + STD_EPS) / (mean_scale + STD_EPS)


def to_generator_space(motion: torch.Tensor, ratio: torch.Tensor | float) -> torch.Tensor:
    """(N, 70) renderer-space motion -> generator space: tz zeroed, scale and translation divided by `ratio`."""
    motion = motion.clone()
    motion[..., TZ] = 0
    motion[..., SCALE_AND_TRANSLATION] = motion[..., SCALE_AND_TRANSLATION] / ratio
    return motion


def clip_to_generator_space(motion: torch.Tensor, mean_scale: torch.Tensor | float) -> torch.Tensor:
    """A clip's (T, 70) motion in generator space with its first frame's ratio: where inference puts the source."""
    return to_generator_space(motion, rescale_ratio(motion[0, SCALE.start], mean_scale))


def from_generator_space(motion: torch.Tensor, ratio: torch.Tensor | float) -> torch.Tensor:
    """The inverse of `to_generator_space` (tz stays whatever the generator produced)."""
    motion = motion.clone()
    motion[..., SCALE_AND_TRANSLATION] = motion[..., SCALE_AND_TRANSLATION] * ratio
    return motion


@dataclass
class HeadMotion:
    """Expression and pose of a batch of frames: exp (B, 21, 3) deltas; scale (B, 1); t (B, 3);
    pitch / yaw / roll (B, 1) in degrees."""

    exp: torch.Tensor
    scale: torch.Tensor
    t: torch.Tensor
    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor

    @classmethod
    def from_vector(cls, motion: torch.Tensor) -> HeadMotion:
        """(B, 70) motion vectors -> their parts (views of `motion`)."""
        return cls(
            exp=expression(motion),
            scale=motion[:, SCALE],
            t=motion[:, TRANSLATION],
            pitch=motion[:, PITCH : PITCH + 1],
            yaw=motion[:, YAW : YAW + 1],
            roll=motion[:, ROLL : ROLL + 1],
        )

    def to_vector(self) -> torch.Tensor:
        """(B, 70): expression (63), scale, tx, ty, tz, pitch, yaw, roll."""
        batch = self.exp.shape[0]
        return torch.cat([self.exp.reshape(batch, -1), self.scale, self.t, self.pitch, self.yaw, self.roll], dim=1)

    def __getitem__(self, index: slice) -> Self:
        """The same fields for a slice of the batch."""
        return type(self)(**{f.name: getattr(self, f.name)[index] for f in fields(self)})
