"""Face crop (LivePortrait geometry) and paste-back with a soft mask.

The crop is a similarity transform: rotated so the eye-centre -> lip-centre direction points down,
square around the face's landmarks scaled by `scale`, shifted by `vy` times its size (negative: toward the
forehead). LivePortrait measures the box on 106-point landmarks (brows to chin); MediaPipe's mesh also
covers the forehead, so points above the eyebrows are left out of the box to keep the released framing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import MoDAError
from ..media.video import read_frames
from .landmarks import EYEBROWS, Face, FaceMeshDetector

SOURCE_SCALE, SOURCE_VY = 2.3, -0.125
DRIVING_SCALE, DRIVING_VY = 2.2, -0.1
CROP_SIZE = 512
MASK_MARGIN = 16


@dataclass
class CropBox:
    center: np.ndarray  # (2,) image coordinates
    size: float  # side of the square, in image pixels
    angle: float  # radians; rotation of the crop's x axis in the image

    def transform(self, dsize: int) -> np.ndarray:
        """M_o2c (2, 3): image -> crop coordinates for a dsize x dsize crop."""
        s = dsize / self.size
        c, si = np.cos(self.angle), np.sin(self.angle)
        cx, cy = self.center
        return np.array([[s * c, s * si, dsize / 2 - s * (c * cx + si * cy)],
                         [-s * si, s * c, dsize / 2 - s * (-si * cx + c * cy)]], dtype=np.float64)


def face_box(face: Face, scale: float, vy: float, rotate: bool = True) -> CropBox:
    """The square crop box of LivePortrait's `parse_rect_from_landmark` (vx is 0, as released)."""
    uy = face.lip_center - face.eye_center
    length = np.linalg.norm(uy)
    uy = uy / length if rotate and length > 1e-3 else np.array([0.0, 1.0])
    ux = np.array([uy[1], -uy[0]])
    angle = np.arccos(np.clip(ux[0], -1, 1)) * (-1 if ux[1] < 0 else 1)
    points = face.landmarks.astype(np.float64)
    center0 = points.mean(0)
    rotated = (points - center0) @ np.stack([ux, uy]).T
    brow_line = ((points[EYEBROWS] - center0) @ np.stack([ux, uy]).T)[:, 1].min()
    rotated = rotated[rotated[:, 1] >= brow_line]
    lt, rb = rotated.min(0), rotated.max(0)
    center1 = (lt + rb) / 2
    size = max(rb - lt) * scale
    center = center0 + ux * center1[0] + uy * center1[1] + uy * (vy * size)
    return CropBox(center, float(size), float(angle))


@dataclass
class FaceCrop:
    image: np.ndarray  # (dsize, dsize, 3) uint8
    o2c: np.ndarray  # (2, 3) original -> crop
    c2o: np.ndarray  # (3, 3) crop -> original

    def resized(self, size: int) -> np.ndarray:
        """The crop resized for the networks (INTER_AREA, as released: 512 -> 256)."""
        return cv2.resize(self.image, (size, size), interpolation=cv2.INTER_AREA)


def crop_face(image: np.ndarray, box: CropBox, dsize: int = CROP_SIZE) -> FaceCrop:
    o2c = box.transform(dsize)
    crop = cv2.warpAffine(image, o2c, (dsize, dsize), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
    c2o = np.linalg.inv(np.vstack([o2c, [0, 0, 1]]))
    return FaceCrop(crop, o2c, c2o)


def mask_template(size: int = CROP_SIZE, margin: int = MASK_MARGIN) -> np.ndarray:
    """(size, size) float32 in [0, 1]: 1 inside [margin, size - margin], linear ramps to 0 at the border."""
    ramp = np.clip(np.minimum(np.arange(size), size - 1 - np.arange(size)) / margin, 0, 1).astype(np.float32)
    return np.minimum(ramp[:, None], ramp[None, :])


class PasteBack:
    """Blends rendered crops back into the original image with the mask warped once per source."""

    def __init__(self, original: np.ndarray, crop: FaceCrop):
        self.original = original.astype(np.float32)
        self.c2o = crop.c2o[:2]
        height, width = original.shape[:2]
        size = crop.image.shape[0]
        self.mask = cv2.warpAffine(mask_template(size), self.c2o, (width, height), flags=cv2.INTER_LINEAR)[..., None]

    def __call__(self, rendered: np.ndarray) -> np.ndarray:
        """rendered: (S, S, 3) uint8 in crop space -> full image (H, W, 3) uint8."""
        height, width = self.original.shape[:2]
        warped = cv2.warpAffine(rendered, self.c2o, (width, height), flags=cv2.INTER_LINEAR).astype(np.float32)
        blended = self.mask * warped + (1 - self.mask) * self.original
        return np.clip(blended + 0.5, 0, 255).astype(np.uint8)  # rounded (LivePortrait truncates)


def average_driving_box(path: str | Path, detector: FaceMeshDetector) -> CropBox:
    """One unrotated box for the whole driving video, the mean of the per-frame boxes."""
    boxes = [face_box(faces[0], DRIVING_SCALE, DRIVING_VY, rotate=False)
             for faces in (detector.detect(frame) for frame in read_frames(path)) if faces]
    if not boxes:
        raise MoDAError(f"no face found in any frame of {path}; give a driving video of a face")
    return CropBox(np.mean([b.center for b in boxes], axis=0), float(np.mean([b.size for b in boxes])), 0.0)
