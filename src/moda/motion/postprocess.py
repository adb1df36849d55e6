"""From generated (normalised) motion to the renderer's driving keypoints, as the released pipeline does it.

Flow: source keypoint info -> `source_prev_motion` (the 1-frame motion prompt and the scale ratio);
generated motion -> `modulate_lip` around a silent reference frame -> trim the silent tail ->
`split_motion` -> `driving_keypoints` (partial expression transfer, source scale, stitching).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..renderer.stitching import StitchingRetargetingNetwork, stitch
from .keypoints import LIP_ROWS, NUM_KEYPOINTS, HeadMotion, KeypointInfo, source_keypoints
from .stats import STD_EPS, MotionStats

# Rows of the 21x3 expression taken wholly from the generated motion; the rest keep the source's
# values except the single coordinates in DRIVEN_COORDINATES.
DRIVEN_ROWS = [1, 2, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
DRIVEN_COORDINATES = [(3, 1), (4, 1), (5, 2), (8, 2), (9, 1), (9, 2)]


def source_prev_motion(source: KeypointInfo, stats: MotionStats) -> tuple[torch.Tensor, torch.Tensor]:
    """The source frame as a normalised motion prompt (1, 1, 70), and the rescale ratio rr (1, 1).

    rr = (scale + 1e-5) / (mean scale + 1e-5) maps the source's face size onto the dataset's; generated
    scale and translation are divided by it here and multiplied back in `split_motion`. tz is zeroed.
    """
    t = source.t.clone()
    t[:, 2] = 0
    rescale_ratio = (source.scale + STD_EPS) / (stats.mean_scale + STD_EPS)
    unnormalized = torch.cat(
        [source.exp.reshape(1, -1), source.scale / rescale_ratio, t / rescale_ratio, source.pitch, source.yaw,
         source.roll],
        dim=1,
    )
    return stats.normalize(unnormalized).reshape(1, 1, -1), rescale_ratio


def silent_reference_index(num_frames: int, silent_frames: int) -> int:
    """The frame inside the appended silence used as the closed-mouth reference for `modulate_lip`."""
    return num_frames - max(silent_frames * 3 // 4, 1)


@dataclass
class LipModulation:
    motion: torch.Tensor  # (T, 70)
    distance: torch.Tensor  # (T, 1) squared lip distance to the reference frame
    weight: torch.Tensor  # (T, 1) extra gain applied to the lip deltas


def modulate_lip(motion: torch.Tensor, reference_index: int, alpha: float = 5.0, beta: float = 0.1) -> LipModulation:
    """Exaggerate lip motion away from a silent reference frame, more where the mouth moves more.

    w = (sigmoid(alpha * d) - 0.5) / (beta * max(d) + 0.05) with d the squared lip distance per frame;
    lip rows become reference + delta * (1 + w). Works on normalised motion (T, 70).
    """
    frames = motion.shape[0]
    exp = motion[:, : 3 * NUM_KEYPOINTS].reshape(frames, NUM_KEYPOINTS, 3)
    reference = exp[reference_index]
    delta = exp - reference
    distance = (delta[:, LIP_ROWS] ** 2).reshape(frames, -1).sum(dim=1, keepdim=True)
    weight = (torch.sigmoid(alpha * distance) - 0.5) / (beta * distance.max() + 0.05)
    modulated_exp = exp.clone()
    modulated_exp[:, LIP_ROWS] = reference[LIP_ROWS] + delta[:, LIP_ROWS] * (1 + weight[:, :, None])
    modulated = motion.clone()
    modulated[:, : 3 * NUM_KEYPOINTS] = modulated_exp.reshape(frames, -1)
    return LipModulation(modulated, distance, weight)


def split_motion(motion: torch.Tensor, stats: MotionStats, rescale_ratio: torch.Tensor) -> HeadMotion:
    """De-normalise (N, 70) motion and split it; scale and t are multiplied back by the source's ratio."""
    d = stats.denormalize(motion)
    frames = d.shape[0]
    return HeadMotion(
        exp=d[:, : 3 * NUM_KEYPOINTS].reshape(frames, NUM_KEYPOINTS, 3),
        scale=d[:, 63:64] * rescale_ratio,
        t=d[:, 64:67] * rescale_ratio,
        pitch=d[:, 67:68],
        yaw=d[:, 68:69],
        roll=d[:, 69:70],
    )


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
    t_new = motion.t.clone()
    t_new[:, 2] = 0
    x_d = source.scale[:, :, None] * (source.kp @ motion.rotation + delta) + t_new[:, None, :]
    stitched = stitch(stitching, x_s.expand_as(x_d), x_d) if stitching is not None else x_d
    final = x_s + (stitched - x_s) * driving_multiplier
    return DrivingKeypoints(x_s=x_s, before_stitching=x_d, x_d=final)
