"""Driving keypoints for the LivePortrait renderer: from generated motion (the released MoDA pipeline) and
from a driving video (LivePortrait's relative animation), both stitched to keep the face in its crop."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..motion.keypoints import KeypointInfo, head_rotation, source_keypoints, transform_keypoints
from ..motion.vector import HeadMotion
from .stitching import StitchingRetargetingNetwork, retarget_lip, stitch

# Rows of the 21x3 expression taken wholly from the generated motion; the rest keep the source's
# values except the single coordinates in DRIVEN_COORDINATES.
DRIVEN_ROWS = [1, 2, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
DRIVEN_COORDINATES = [(3, 1), (4, 1), (5, 2), (8, 2), (9, 1), (9, 2)]


@dataclass(frozen=True)
class EyeOffsets:
    """Fixed eyeball / eyelid offsets the released pipeline adds to every generated frame.

    gaze (x, y) shifts the eyeball keypoints (rows 11 and 15); blink lowers the upper lids (rows 11, 13, 15, 16).
    The defaults are the released values.
    """

    gaze_x: float = 0.0
    gaze_y: float = -5.0
    blink: float = 2.5

    def apply(self, exp: torch.Tensor) -> torch.Tensor:
        """exp (N, 21, 3) -> offset copy; the additions happen in the released order (it matters in float32)."""
        exp = exp.clone()
        exp[:, 11, 0] += self.gaze_x * 0.001
        exp[:, 11, 1] += -self.gaze_y * 0.001
        exp[:, 15, 0] += self.gaze_x * 0.0007
        exp[:, 15, 1] += -self.gaze_y * 0.001
        exp[:, 11, 1] += -0.001 * self.blink
        exp[:, 13, 1] += 0.0003 * self.blink
        exp[:, 15, 1] += -0.001 * self.blink
        exp[:, 16, 1] += 0.0003 * self.blink
        return exp


def transfer_expression(source_exp: torch.Tensor, driving_exp: torch.Tensor) -> torch.Tensor:
    """Source expression (1, 21, 3) with the driven rows and coordinates replaced by the generated ones (N, 21, 3)."""
    delta = source_exp.expand_as(driving_exp).clone()
    delta[:, DRIVEN_ROWS] = driving_exp[:, DRIVEN_ROWS]
    for row, axis in DRIVEN_COORDINATES:
        delta[:, row, axis] = driving_exp[:, row, axis]
    return delta


@dataclass
class DrivingKeypoints:
    x_s: torch.Tensor  # (1, 21, 3) source keypoints
    before_stitching: torch.Tensor  # (N, 21, 3)
    x_d: torch.Tensor  # (N, 21, 3) what the warping network receives


def driving_keypoints(
    source: KeypointInfo,
    motion: HeadMotion,
    stitching: StitchingRetargetingNetwork | None,
    driving_multiplier: float = 1.0,
    eye_offsets: EyeOffsets | None = EyeOffsets(),
) -> DrivingKeypoints:
    """Renderer keypoints for every generated frame (LivePortrait non-relative mode, animation region "all").

    The generated scale is ignored (the source's is used), tz is dropped, and the stitching network, when
    given, keeps the face aligned with the pasted-back crop.
    """
    x_s = source_keypoints(source)
    exp = eye_offsets.apply(motion.exp) if eye_offsets is not None else motion.exp
    delta = transfer_expression(source.exp, exp)
    x_d = transform_keypoints(source.kp, head_rotation(motion), delta, source.scale.expand(len(delta), 1), motion.t)
    stitched = stitch(stitching, x_s.expand_as(x_d), x_d) if stitching is not None else x_d
    final = x_s + (stitched - x_s) * driving_multiplier
    return DrivingKeypoints(x_s=x_s, before_stitching=x_d, x_d=final)


@dataclass(frozen=True)
class RelativeMotion:
    """LivePortrait's relative animation of one batch of driving frames, with its named parts."""

    rotation: torch.Tensor  # (N, 3, 3) R_new = (R_d R_d0^T) R_s
    exp: torch.Tensor  # (N, 21, 3) delta_new = exp_s + (exp_d - exp_d0)
    scale: torch.Tensor  # (N, 1) scale_s * scale_d / scale_d0
    t: torch.Tensor  # (N, 3) t_s + (t_d - t_d0), tz = 0
    keypoints: torch.Tensor  # (N, 21, 3) x_d before stitching


def relative_motion(source: KeypointInfo, driving: KeypointInfo, first: KeypointInfo) -> RelativeMotion:
    """LivePortrait's relative animation (image source, video driving, animation region "all"): the source
    moves by the driving video's change since its first frame. driving: (N, ...) frames; source, first: batch 1."""
    rotation = head_rotation(driving) @ head_rotation(first).transpose(1, 2) @ head_rotation(source)
    exp = source.exp + (driving.exp - first.exp)
    scale = source.scale * (driving.scale / first.scale)
    t = source.t + (driving.t - first.t)
    t[:, 2] = 0
    return RelativeMotion(rotation, exp, scale, t, transform_keypoints(source.kp, rotation, exp, scale, t))


def relative_driving_keypoints(source: KeypointInfo, driving: KeypointInfo, first: KeypointInfo) -> torch.Tensor:
    """(N, 21, 3) keypoints of `relative_motion`, before stitching."""
    return relative_motion(source, driving, first).keypoints


# LivePortrait normalises the source's lip only when it is open at least this much (`lip_normalize_threshold`).
LIP_NORMALIZE_THRESHOLD = 0.03


def eye_retargeting_input(source_eyes: torch.Tensor, driving_eyes: torch.Tensor) -> torch.Tensor:
    """[source left, source right, driving LEFT] (B, 3), as LivePortrait builds it: (B, 2) eye-close ratios
    each. The driving right eye is ignored by the released code; kept so that the released network sees
    what it was trained with."""
    return torch.cat([source_eyes, driving_eyes[:, :1]], dim=1)


def lip_retargeting_input(source_lip: torch.Tensor, driving_lip: torch.Tensor) -> torch.Tensor:
    """[source, driving] lip-close ratios, (B, 2)."""
    return torch.cat([source_lip, driving_lip], dim=1)


def lip_normalization(network: StitchingRetargetingNetwork, x_s: torch.Tensor, source_lip: float) -> torch.Tensor | None:
    """The offset that closes the source's mouth before animation (LivePortrait's `flag_normalize_lip`, on by
    default): retarget_lip(x_s, [c_s_lip, 0]) when the source lip ratio is >= 0.03, else None."""
    if source_lip < LIP_NORMALIZE_THRESHOLD:
        return None
    ratios = lip_retargeting_input(torch.tensor([[source_lip]], dtype=x_s.dtype), torch.zeros(1, 1, dtype=x_s.dtype))
    return retarget_lip(network, x_s, ratios.to(x_s.device))
