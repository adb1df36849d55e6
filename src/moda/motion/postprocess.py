"""Between the generator and the renderer, as the released pipeline does it.

Flow: source keypoint info -> `source_prev_motion` (the 1-frame motion prompt and the rescale ratio);
generated motion -> `modulate_lip` around a silent reference frame -> trim the silent tail ->
`split_motion` -> `moda.renderer.driving.driving_keypoints` (partial expression transfer, stitching).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .keypoints import LIP_ROWS, KeypointInfo
from .stats import MotionStats
from .vector import EXPRESSION, HeadMotion, expression, from_generator_space, rescale_ratio, to_generator_space


def source_prev_motion(source: KeypointInfo, stats: MotionStats) -> tuple[torch.Tensor, torch.Tensor]:
    """The source frame as a normalised motion prompt (1, 1, 70), and the rescale ratio rr (1, 1).

    rr maps the source's face size onto the dataset's (`moda.motion.vector.rescale_ratio`); the prompt is in
    generator space, and `split_motion` maps generated motion back.
    """
    ratio = rescale_ratio(source.scale, stats.mean_scale)
    prompt = to_generator_space(source.to_vector(), ratio)
    return stats.normalize(prompt).reshape(1, 1, -1), ratio


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
    exp = expression(motion)
    reference = exp[reference_index]
    delta = exp - reference
    distance = (delta[:, LIP_ROWS] ** 2).reshape(frames, -1).sum(dim=1, keepdim=True)
    weight = (torch.sigmoid(alpha * distance) - 0.5) / (beta * distance.max() + 0.05)
    modulated_exp = exp.clone()
    modulated_exp[:, LIP_ROWS] = reference[LIP_ROWS] + delta[:, LIP_ROWS] * (1 + weight[:, :, None])
    modulated = motion.clone()
    modulated[:, EXPRESSION] = modulated_exp.reshape(frames, -1)
    return LipModulation(modulated, distance, weight)


def split_motion(motion: torch.Tensor, stats: MotionStats, ratio: torch.Tensor) -> HeadMotion:
    """De-normalise (N, 70) motion and split it; scale and t are multiplied back by the source's rescale ratio."""
    return HeadMotion.from_vector(from_generator_space(stats.denormalize(motion), ratio))
