"""The portrait side of the LivePortrait pipelines: crop, appearance features, keypoints, paste-back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..face.crop import SOURCE_SCALE, SOURCE_VY, PasteBack, crop_face, face_box
from ..face.landmarks import Face, FaceMeshDetector
from ..motion.keypoints import KeypointInfo, source_keypoints
from ..renderer.liveportrait import LivePortraitRenderer, to_tensor


@dataclass(frozen=True)
class PreparedSource:
    """A portrait ready for the LivePortrait renderer; computed once, never changed."""

    image: np.ndarray  # the portrait, (H, W, 3)
    features: torch.Tensor  # f_s
    info: KeypointInfo
    x_s: torch.Tensor  # (1, 21, 3)
    paste: PasteBack
    face: Face  # the portrait's landmarks (eye- and lip-open ratios for retargeting)


def prepare_source(image: np.ndarray, name: str, renderer: LivePortraitRenderer,
                   detector: FaceMeshDetector) -> PreparedSource:
    """Crop the largest face (scale 2.3, shifted up 0.125), extract its features and keypoints once."""
    device = next(renderer.parameters()).device
    face = detector.largest(image, name)
    crop = crop_face(image, face_box(face, SOURCE_SCALE, SOURCE_VY), renderer.config.output_size)
    network_input = to_tensor([crop.network_input(renderer.config.image_size)], device)
    info = renderer.keypoint_info(network_input)
    return PreparedSource(image, renderer.source_features(network_input), info, source_keypoints(info),
                          PasteBack(image, crop), face)
