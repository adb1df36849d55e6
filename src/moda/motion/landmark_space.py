"""A landmark motion space in LivePortrait's layout (used by the tiny model and its CPU renderer).

Twenty-one MediaPipe face-mesh points stand in for LivePortrait's implicit keypoints, assigned to the
rows LivePortrait's code treats specially (lips 6, 12, 14, 17, 19, 20; eyes 11, 13, 15, 16, 18; brows 1, 2),
so the 70-d motion vector keeps its meaning: 21x3 expression offsets, scale, translation, pitch/yaw/roll.
Coordinates are centred on the face and scaled so the face is about 2 units wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..face.landmarks import Face
from .stats import MotionStats
from .vector import MOTION_DIM, SCALE, expression

# row -> MediaPipe mesh index
KEYPOINT_MESH_INDEX = [
    1,    # 0 nose tip
    105,  # 1 left brow
    334,  # 2 right brow
    50,   # 3 left cheek
    280,  # 4 right cheek
    152,  # 5 chin
    0,    # 6 upper lip (outer)
    6,    # 7 nose bridge
    172,  # 8 left jaw
    397,  # 9 right jaw
    10,   # 10 forehead
    159,  # 11 left upper eyelid
    61,   # 12 left mouth corner
    145,  # 13 left lower eyelid
    291,  # 14 right mouth corner
    386,  # 15 right upper eyelid
    374,  # 16 right lower eyelid
    17,   # 17 lower lip (outer)
    263,  # 18 right eye outer corner
    13,   # 19 upper lip (inner)
    14,   # 20 lower lip (inner)
]
UPPER_INNER_LIP, LOWER_INNER_LIP = 19, 20


@dataclass
class FaceFrame:
    """The mapping between the landmark motion space and one portrait's pixels."""

    center: np.ndarray  # (3,) pixel-space centre of the 21 points
    unit: float  # pixels per motion-space unit
    kp: np.ndarray  # (21, 3) canonical keypoints in motion space (y down, z into the image)

    @classmethod
    def from_face(cls, face: Face) -> FaceFrame:
        depth = face.depth if face.depth is not None else np.zeros(len(face.landmarks), np.float32)
        points = np.concatenate([face.landmarks, depth[:, None]], axis=1)[KEYPOINT_MESH_INDEX].astype(np.float64)
        center = points.mean(0)
        unit = np.linalg.norm(points[8, :2] - points[9, :2]) / 2  # half the jaw width
        return cls(center, float(unit), ((points - center) / unit).astype(np.float32))

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) motion-space points -> (N, 2) pixel coordinates (orthographic)."""
        return (points[:, :2] * self.unit + self.center[:2]).astype(np.float32)


def mouth_opening(motion: np.ndarray) -> np.ndarray:
    """Inner-lip gap per frame from (T, 70) motion: lower minus upper inner-lip expression offset, in y."""
    exp = expression(motion)
    return exp[:, LOWER_INNER_LIP, 1] - exp[:, UPPER_INNER_LIP, 1]


def neutral_prompt(stats: MotionStats) -> torch.Tensor:
    """The portrait at rest as the motion prompt (1, 1, 70): no expression offset, mean scale, centred, frontal."""
    motion = torch.zeros(1, MOTION_DIM)
    motion[:, SCALE] = stats.mean_scale
    return stats.normalize(motion).reshape(1, 1, MOTION_DIM)
