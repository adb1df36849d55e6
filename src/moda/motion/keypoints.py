"""LivePortrait implicit-keypoint math: head pose, rotations, keypoint transforms.

Keypoints are row vectors in normalised coordinates (x right, y down, z into the image); a rotation matrix
`R` here is the transposed one, so a rotated keypoint is `kp @ R`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .vector import NUM_KEYPOINTS, HeadMotion

POSE_BINS = 66
LIP_ROWS = [6, 12, 14, 17, 19, 20]  # keypoint rows LivePortrait treats as the lips


def headpose_to_degrees(pose: torch.Tensor) -> torch.Tensor:
    """66-bin logits (B, 66) -> degrees (B, 1): 3 * E[bin] - 97.5. Values already in degrees (B, 1) pass through."""
    if pose.shape[-1] != POSE_BINS:
        return pose
    bins = torch.arange(POSE_BINS, dtype=pose.dtype, device=pose.device)
    return (torch.softmax(pose, dim=-1) * bins).sum(dim=-1, keepdim=True) * 3 - 97.5


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Angles in degrees, (B,) or (B, 1) -> (B, 3, 3) = (Rz(roll) @ Ry(yaw) @ Rx(pitch))^T."""
    x, y, z = (a.reshape(-1, 1) / 180 * np.pi for a in (pitch, yaw, roll))
    ones, zeros = torch.ones_like(x), torch.zeros_like(x)
    rot_x = torch.cat([ones, zeros, zeros, zeros, x.cos(), -x.sin(), zeros, x.sin(), x.cos()], dim=1)
    rot_y = torch.cat([y.cos(), zeros, y.sin(), zeros, ones, zeros, -y.sin(), zeros, y.cos()], dim=1)
    rot_z = torch.cat([z.cos(), -z.sin(), zeros, z.sin(), z.cos(), zeros, zeros, zeros, ones], dim=1)
    batch = x.shape[0]
    rot = rot_z.reshape(batch, 3, 3) @ rot_y.reshape(batch, 3, 3) @ rot_x.reshape(batch, 3, 3)
    return rot.transpose(1, 2)


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a (3, 3) rotation in `rotation_matrix`'s convention (the inverse of it
    for yaw within +-90 degrees)."""
    m = np.asarray(rotation, np.float64).T  # Rz(roll) @ Ry(yaw) @ Rx(pitch)
    yaw = np.arcsin(np.clip(-m[2, 0], -1, 1))
    pitch, roll = np.arctan2(m[2, 1], m[2, 2]), np.arctan2(m[1, 0], m[0, 0])
    return float(np.degrees(pitch)), float(np.degrees(yaw)), float(np.degrees(roll))


def head_rotation(motion: HeadMotion) -> torch.Tensor:
    """(B, 3, 3) rotation of a batch of head poses."""
    return rotation_matrix(motion.pitch, motion.yaw, motion.roll)


@dataclass
class KeypointInfo(HeadMotion):
    """Motion-extractor output in degrees and 21x3 layout (`get_kp_info` in LivePortrait), plus the
    canonical keypoints kp (B, 21, 3) of the face."""

    kp: torch.Tensor = field(kw_only=True)

    @classmethod
    def from_extractor(cls, raw: dict[str, torch.Tensor]) -> KeypointInfo:
        """From the raw motion-extractor dict (pose as 66-bin logits, kp/exp as (B, 63))."""
        batch = raw["kp"].shape[0]
        return cls(
            kp=raw["kp"].reshape(batch, NUM_KEYPOINTS, 3),
            exp=raw["exp"].reshape(batch, NUM_KEYPOINTS, 3),
            scale=raw["scale"],
            t=raw["t"],
            pitch=headpose_to_degrees(raw["pitch"]),
            yaw=headpose_to_degrees(raw["yaw"]),
            roll=headpose_to_degrees(raw["roll"]),
        )


def transform_keypoints(
    kp: torch.Tensor, rotation: torch.Tensor, exp: torch.Tensor, scale: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The keypoint transform x = scale * (kp @ R + exp) + (tx, ty, 0): tz is ignored.

    Shapes (B, K, 3), (B, 3, 3), (B, K, 3), (B, 1), (B, 3); kp and exp may also be (1, K, 3) / (B, K, 3) to broadcast.
    """
    x = (kp @ rotation + exp) * scale.reshape(-1, 1, 1)
    x[..., :2] += t[:, None, :2]
    return x


def source_keypoints(info: KeypointInfo) -> torch.Tensor:
    """x_s: the source's implicit keypoints (B, 21, 3)."""
    return transform_keypoints(info.kp, head_rotation(info), info.exp, info.scale, info.t)
