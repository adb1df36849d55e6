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
from .keypoints import angles_from_rotation
from .stats import MotionStats
from .vector import ANGLES, EXPRESSION, MOTION_DIM, SCALE, TRANSLATION, expression

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
RIGID_ROWS = [0, 3, 4, 7, 10, 18]  # nose tip, cheeks, nose bridge, forehead, eye corner: speech does not move them
LEFT_MOUTH_CORNER, RIGHT_MOUTH_CORNER = 12, 14
BROWS = (1, 2)
EYELIDS = ((11, 13), (15, 16))  # (upper, lower), left and right

# What one unit of mouth opening does to the keypoints: (row, axis, offset). The lower lip drops and the jaw
# follows; the upper lip lifts a little. The synthetic corpus opens mouths with it, and the renderer uses it to
# close a portrait photographed with an open mouth.
MOUTH_OPENING = ((LOWER_INNER_LIP, 1, 0.32), (17, 1, 0.30), (5, 1, 0.22), (8, 1, 0.08), (9, 1, 0.08),
                 (UPPER_INNER_LIP, 1, -0.05), (6, 1, -0.03), (LEFT_MOUTH_CORNER, 1, 0.04),
                 (RIGHT_MOUTH_CORNER, 1, 0.04))
INNER_GAP_PER_OPENING = 0.32 + 0.05  # inner-lip gap (motion units) of one unit of opening


JAW_ROWS = (5, 8, 9)  # chin and jaw


def lip_closing_offsets(amount: np.ndarray | float) -> np.ndarray:
    """The lip part of `opening_offsets` (the jaw stays): what closes a portrait's open mouth by `amount`."""
    offsets = opening_offsets(amount)
    offsets[..., JAW_ROWS, :] = 0
    return offsets


def opening_offsets(amount: np.ndarray | float) -> np.ndarray:
    """(T,) mouth opening -> (T, 21, 3) expression offsets."""
    amount = np.asarray(amount, np.float32)
    offsets = np.zeros((*amount.shape, 21, 3), np.float32)
    for row, axis, weight in MOUTH_OPENING:
        offsets[..., row, axis] = weight * amount
    return offsets


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

    @property
    def mouth_opening(self) -> float:
        """How open the portrait's own mouth is, in units of `MOUTH_OPENING` (0: lips together)."""
        return max(float(self.kp[LOWER_INNER_LIP, 1] - self.kp[UPPER_INNER_LIP, 1]), 0.0) / INNER_GAP_PER_OPENING

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) motion-space points -> (N, 2) pixel coordinates (orthographic)."""
        return (points[:, :2] * self.unit + self.center[:2]).astype(np.float32)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale, R, t) with target ~ scale * source @ R + t for (N, 3) row-vector points (least squares, R proper)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    x, y = source - mu_s, target - mu_t
    u, singular, vt = np.linalg.svd(x.T @ y)
    d = np.sign(np.linalg.det(u @ vt))
    correction = np.diag([1.0, 1.0, d])
    rotation = u @ correction @ vt
    scale = float((singular * np.diag(correction)).sum() / (x**2).sum())
    return scale, rotation, mu_t - scale * mu_s @ rotation


def landmark_motion(faces: list[Face]) -> np.ndarray:
    """(T, 70) motion of a tracked face (a driving video) in the landmark space, relative to its first frame.

    Head pose is the similarity transform of the rigid keypoints (nose, cheeks, forehead, eye corner) from the
    first frame; expression is what remains, in the head's frame. The first frame's own mouth opening is added
    back, so the motion's mouth is absolute, as the generator's is.
    """
    first = FaceFrame.from_face(faces[0])
    rest = opening_offsets(first.mouth_opening)
    motions = np.zeros((len(faces), MOTION_DIM), np.float32)
    for index, face in enumerate(faces):
        depth = face.depth if face.depth is not None else np.zeros(len(face.landmarks), np.float32)
        points = np.concatenate([face.landmarks, depth[:, None]], axis=1)[KEYPOINT_MESH_INDEX]
        points = (points.astype(np.float64) - first.center) / first.unit
        scale, rotation, t = similarity_transform(first.kp[RIGID_ROWS].astype(np.float64), points[RIGID_ROWS])
        exp = (points - t) / scale - first.kp @ rotation
        motions[index, EXPRESSION] = (exp + rest).reshape(-1)
        motions[index, SCALE] = scale
        motions[index, TRANSLATION.start : TRANSLATION.start + 2] = t[:2]
        motions[index, ANGLES] = angles_from_rotation(rotation)
    return motions


def mouth_opening(motion: np.ndarray) -> np.ndarray:
    """Inner-lip gap per frame from (T, 70) motion: lower minus upper inner-lip expression offset, in y."""
    exp = expression(motion)
    return exp[:, LOWER_INNER_LIP, 1] - exp[:, UPPER_INNER_LIP, 1]


def neutral_prompt(stats: MotionStats) -> torch.Tensor:
    """The portrait at rest as the motion prompt (1, 1, 70): no expression offset, mean scale, centred, frontal."""
    motion = torch.zeros(1, MOTION_DIM)
    motion[:, SCALE] = stats.mean_scale
    return stats.normalize(motion).reshape(1, 1, MOTION_DIM)
