"""Face crop (LivePortrait geometry) and paste-back with LivePortrait's mask.

The crop is a similarity transform: rotated so the eye-centre -> lip-centre direction points down,
square around the face's landmarks scaled by `scale`, shifted by `vy` times its size (negative: toward the
forehead). The box is always measured in that roll-corrected frame; an unrotated crop (driving videos) only
drops the rotation of the final warp, as LivePortrait does. LivePortrait measures the box on 106-point
landmarks (brows to chin); MediaPipe's mesh also covers the forehead, so points above the eyebrows are left
out of the box to keep the released framing.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import MoDAError
from ..media.video import read_frames
from .landmarks import EYEBROWS, Face, FaceMeshDetector

SOURCE_SCALE, SOURCE_VY = 2.3, -0.125
DRIVING_SCALE, DRIVING_VY = 2.2, -0.1
CROP_SIZE = 512
NETWORK_RESIZE = 256  # LivePortrait resizes every crop to 256 first (INTER_AREA), then to the network input

# Eye and lip centres in LivePortrait's landmark layouts (its crop.py `parse_pt2_from_pt*`), by point count.
LIVEPORTRAIT_EYES_AND_LIPS = {
    106: ([33, 35, 40, 39], [87, 89, 94, 93], [52, 61]),
    203: ([0, 6, 12, 18], [24, 30, 36, 42], [48, 66]),
    68: ([36, 39], [42, 45], [48, 54]),
}


@dataclass(frozen=True)
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

    @property
    def corners(self) -> np.ndarray:
        """(4, 2) unrotated corners: left-top, right-top, right-bottom, left-bottom."""
        half = self.size / 2
        return self.center + np.array([[-half, -half], [half, -half], [half, half], [-half, half]])


def eye_and_lip_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eye centre and lip centre of landmarks in one of LivePortrait's layouts (68, 106 or 203 points)."""
    if len(points) not in LIVEPORTRAIT_EYES_AND_LIPS:
        raise ValueError(f"no LivePortrait landmark layout has {len(points)} points")
    left, right, lips = LIVEPORTRAIT_EYES_AND_LIPS[len(points)]
    return (points[left].mean(0) + points[right].mean(0)) / 2, points[lips].mean(0)


def landmark_box(points: np.ndarray, eye_center: np.ndarray, lip_center: np.ndarray, scale: float, vy: float,
                 rotate: bool = True, brows: np.ndarray | None = None) -> CropBox:
    """LivePortrait's `parse_rect_from_landmark` (vx is 0, as released): the square box around `points` in the
    frame whose y axis runs from the eyes to the lips, `scale` times its larger side, shifted `vy` sizes along y.

    With `rotate` False the crop is axis-aligned but the box is still measured in the rotated frame. Points
    above the highest of `brows` (if given) are ignored. Geometry in float32, as the reference computes it.
    """
    points = points.astype(np.float32)
    uy = (lip_center - eye_center).astype(np.float32)
    length = np.linalg.norm(uy)
    uy = uy / length if length > 1e-3 else np.array([0.0, 1.0], np.float32)
    ux = np.array([uy[1], -uy[0]], np.float32)
    angle = float(np.arccos(np.clip(ux[0], -1, 1))) * (-1 if ux[1] < 0 else 1)
    frame = np.stack([ux, uy])
    center0 = points.mean(0)
    rotated = (points - center0) @ frame.T
    if brows is not None:
        brow_line = ((brows.astype(np.float32) - center0) @ frame.T)[:, 1].min()
        rotated = rotated[rotated[:, 1] >= brow_line]
    lt, rb = rotated.min(0), rotated.max(0)
    center1 = (lt + rb) / 2
    size = float(max(rb - lt) * scale)
    center = center0 + ux * center1[0] + uy * center1[1] + uy * np.float32(vy * size)
    return CropBox(center.astype(np.float64), size, angle if rotate else 0.0)


def face_box(face: Face, scale: float, vy: float, rotate: bool = True) -> CropBox:
    """The crop box of a MediaPipe face (forehead points above the brows left out)."""
    return landmark_box(face.landmarks, face.eye_center, face.lip_center, scale, vy, rotate,
                        brows=face.landmarks[EYEBROWS])


@dataclass(frozen=True)
class FaceCrop:
    image: np.ndarray  # (dsize, dsize, 3) uint8
    o2c: np.ndarray  # (2, 3) original -> crop
    c2o: np.ndarray  # (3, 3) crop -> original

    def network_input(self, size: int) -> np.ndarray:
        """The crop as the networks see it, as released: INTER_AREA to 256 (512 -> 256 at the released size),
        then, only for another input size, cv2's default INTER_LINEAR to `size`."""
        resized = cv2.resize(self.image, (NETWORK_RESIZE, NETWORK_RESIZE), interpolation=cv2.INTER_AREA)
        return resized if size == NETWORK_RESIZE else cv2.resize(resized, (size, size))


def crop_face(image: np.ndarray, box: CropBox, dsize: int = CROP_SIZE) -> FaceCrop:
    o2c = box.transform(dsize)
    crop = cv2.warpAffine(image, o2c, (dsize, dsize), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
    c2o = np.linalg.inv(np.vstack([o2c, [0, 0, 1]]))
    return FaceCrop(crop, o2c, c2o)


def mask_template(size: int = CROP_SIZE) -> np.ndarray:
    """LivePortrait's paste-back mask (uint8, 512 x 512 as released), INTER_AREA-resized to `size`."""
    with resources.as_file(resources.files("moda") / "assets" / "mask_template.png") as path:
        mask = np.array(Image.open(path).convert("L"))
    return mask if size == mask.shape[0] else cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)


def paste_mask(mask_crop: np.ndarray, c2o: np.ndarray, width: int, height: int) -> np.ndarray:
    """The crop-space mask warped into the original image, (H, W, 1) float32 in [0, 1] (`prepare_paste_back`)."""
    warped = cv2.warpAffine(mask_crop, c2o[:2], (width, height), flags=cv2.INTER_LINEAR)
    return (warped.astype(np.float32) / 255)[..., None]


class PasteBack:
    """Blends rendered crops back into the original image with the mask warped once per source.

    As released: clip(mask * warp(rendered) + (1 - mask) * original) in float32, truncated to uint8.
    """

    def __init__(self, original: np.ndarray, crop: FaceCrop, mask_crop: np.ndarray | None = None):
        self.original = original.astype(np.float32)
        self.c2o = crop.c2o[:2]
        height, width = original.shape[:2]
        mask = mask_crop if mask_crop is not None else mask_template(crop.image.shape[0])
        self.mask = paste_mask(mask, self.c2o, width, height)

    def __call__(self, rendered: np.ndarray) -> np.ndarray:
        """rendered: (S, S, 3) uint8 in crop space -> full image (H, W, 3) uint8."""
        height, width = self.original.shape[:2]
        warped = cv2.warpAffine(rendered, self.c2o, (width, height), flags=cv2.INTER_LINEAR).astype(np.float32)
        return np.clip(self.mask * warped + (1 - self.mask) * self.original, 0, 255).astype(np.uint8)


def average_box(boxes: list[CropBox]) -> CropBox:
    """One unrotated box for a whole driving video: the mean of the per-frame [left, top, right, bottom]."""
    left_top = np.mean([b.corners[0] for b in boxes], axis=0)
    right_bottom = np.mean([b.corners[2] for b in boxes], axis=0)
    return CropBox((left_top + right_bottom) / 2, float(right_bottom[0] - left_top[0]), 0.0)


def average_driving_box(path: str | Path, detector: FaceMeshDetector) -> CropBox:
    """The driving video's crop box: per-frame boxes (scale 2.2, vy -0.1, measured roll-corrected), averaged."""
    boxes = [face_box(faces[0], DRIVING_SCALE, DRIVING_VY, rotate=False)
             for faces in (detector.detect(frame) for frame in read_frames(path)) if faces]
    if not boxes:
        raise MoDAError(f"no face found in any frame of {path}; give a driving video of a face")
    return average_box(boxes)
