"""A fast CPU renderer for the landmark motion space: a thin-plate-spline image warp plus a mouth interior.

The portrait's 21 motion keypoints move with the generated expression and pose; points around the head
move rigidly with the pose; points on the image border stay put. A thin-plate spline through those
correspondences gives a smooth backward map, sampled on a coarse grid and upsampled, then `cv2.remap`
warps the portrait. Where the inner lips part, a mouth cavity with a hint of upper teeth is painted in.
No network and no weights: about 10 ms a frame at 512 px.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..face.landmarks import Face
from ..motion.keypoints import head_rotation, transform_keypoints
from ..motion.landmark_space import LOWER_INNER_LIP, UPPER_INNER_LIP, FaceFrame
from ..motion.vector import MOTION_DIM, NUM_KEYPOINTS, SCALE, HeadMotion

# MediaPipe face-oval ring, and the inner-lip ring (upper arc from corner to corner, then the lower arc back).
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
INNER_LOWER = [308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78]
LEFT_CORNER, RIGHT_CORNER = 12, 14  # keypoint rows of the mouth corners
HEAD_MARGIN = 1.35  # the oval pushed outward so hair and ears move with the head
GRID_STEP = 8  # pixels between evaluated warp samples


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-12)), 0.0)


class ThinPlateSpline:
    """2-D -> 2-D thin-plate spline through control points, lightly regularised."""

    def __init__(self, source: np.ndarray, target: np.ndarray, regularization: float = 1e-3):
        n = len(source)
        self.source = source.astype(np.float64)
        scale = np.ptp(self.source, axis=0).max() or 1.0
        self.scale = scale
        s = self.source / scale
        kernel = _tps_kernel(((s[:, None] - s[None]) ** 2).sum(-1)) + regularization * np.eye(n)
        affine = np.hstack([np.ones((n, 1)), s])
        system = np.zeros((n + 3, n + 3))
        system[:n, :n], system[:n, n:], system[n:, :n] = kernel, affine, affine.T
        rhs = np.zeros((n + 3, 2))
        rhs[:n] = target
        self.coefficients = np.linalg.solve(system, rhs)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        p = points.astype(np.float64) / self.scale
        s = self.source / self.scale
        kernel = _tps_kernel(((p[:, None] - s[None]) ** 2).sum(-1))
        n = len(s)
        return kernel @ self.coefficients[:n] + np.hstack([np.ones((len(p), 1)), p]) @ self.coefficients[n:]


class LandmarkWarpRenderer:
    """Renders (T, 70) landmark-space motion (de-normalised) on one portrait."""

    def __init__(self, image: np.ndarray, face: Face):
        self.image = image
        self.frame = FaceFrame.from_face(face)
        height, width = image.shape[:2]
        depth = face.depth if face.depth is not None else np.zeros(len(face.landmarks), np.float32)
        mesh = np.concatenate([face.landmarks, depth[:, None]], axis=1).astype(np.float64)
        mesh = (mesh - self.frame.center) / self.frame.unit  # the whole mesh in motion space
        oval = mesh[FACE_OVAL]
        center = oval.mean(0)
        self.head_points = (center + (oval - center) * HEAD_MARGIN).astype(np.float32)  # rigid with the pose
        border = [(x, y) for x in (0, width / 2, width - 1) for y in (0, height / 2, height - 1)
                  if (x, y) != (width / 2, height / 2)]
        self.border = np.array(border, dtype=np.float32)
        self.inner_upper = face.landmarks[INNER_UPPER].astype(np.float32)
        self.inner_lower = face.landmarks[INNER_LOWER].astype(np.float32)
        # samples at the centres of GRID_STEP blocks, where cv2.resize puts them when upsampling
        ys, xs = np.mgrid[0 : -(-height // GRID_STEP), 0 : -(-width // GRID_STEP)] * GRID_STEP + (GRID_STEP - 1) / 2
        self.grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
        self.grid_shape = ys.shape
        self.identity = np.stack(np.meshgrid(np.arange(width), np.arange(height)), axis=-1).astype(np.float32)
        # keypoints move with expression and pose, the head ring with the pose only
        self.points = torch.from_numpy(np.concatenate([self.frame.kp, self.head_points]))[None]
        rest = torch.zeros(1, MOTION_DIM)
        rest[:, SCALE] = 1.0  # no expression offset, unit scale, centred, frontal
        self.source_points = self._control_points(HeadMotion.from_vector(rest))

    def _control_points(self, motion: HeadMotion) -> np.ndarray:
        """Pixel positions of keypoints (expression + pose), head ring (pose only) and border (fixed)."""
        exp = torch.cat([motion.exp, motion.exp.new_zeros(1, len(self.head_points), 3)], dim=1)
        moved = transform_keypoints(self.points, head_rotation(motion), exp, motion.scale, motion.t)[0].numpy()
        return np.concatenate([self.frame.to_pixels(moved[:NUM_KEYPOINTS]), self.frame.to_pixels(moved[NUM_KEYPOINTS:]),
                               self.border])

    def render(self, motion: np.ndarray) -> np.ndarray:
        """One frame (H, W, 3) uint8 for a 70-d motion vector."""
        driven = self._control_points(HeadMotion.from_vector(torch.from_numpy(np.asarray(motion, np.float32))[None]))
        backward = ThinPlateSpline(driven, self.source_points)
        height, width = self.image.shape[:2]
        displacement = (backward(self.grid) - self.grid).reshape(*self.grid_shape, 2).astype(np.float32)
        upsampled = cv2.resize(displacement, (self.grid_shape[1] * GRID_STEP, self.grid_shape[0] * GRID_STEP),
                               interpolation=cv2.INTER_LINEAR)[:height, :width]
        maps = self.identity + upsampled
        frame = cv2.remap(self.image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return self._paint_mouth(frame, driven)

    def _paint_mouth(self, frame: np.ndarray, driven: np.ndarray) -> np.ndarray:
        """Fill the gap between the driven inner lips with a dark cavity and a band of upper teeth."""
        source, moved = self.source_points, driven
        displacement = moved[:21] - source[:21]
        left, right = source[LEFT_CORNER, 0], source[RIGHT_CORNER, 0]
        center_x, half = (left + right) / 2, max(abs(right - left) / 2, 1.0)

        def follow(points: np.ndarray, middle_row: int) -> np.ndarray:
            w = np.clip(np.abs(points[:, 0] - center_x) / half, 0, 1)[:, None]
            corner = np.where((points[:, 0] < center_x)[:, None], displacement[LEFT_CORNER], displacement[RIGHT_CORNER])
            return points + w * corner + (1 - w) * displacement[middle_row]

        upper, lower = follow(self.inner_upper, UPPER_INNER_LIP), follow(self.inner_lower, LOWER_INNER_LIP)
        gap = float(np.min(lower[3:8, 1]) - np.max(upper[3:8, 1])) if len(upper) > 8 else 0.0
        if gap < 1.0:
            return frame
        polygon = np.concatenate([upper, lower]).round().astype(np.int32)
        mask = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillPoly(mask, [polygon], 255)
        teeth = np.zeros_like(mask)
        band = np.concatenate([upper, upper[::-1] + [0, min(gap * 0.35, 0.08 * half * 2)]]).round().astype(np.int32)
        cv2.fillPoly(teeth, [band], 255)
        teeth &= mask
        soft = cv2.GaussianBlur(mask, (5, 5), 0).astype(np.float32)[..., None] / 255
        soft_teeth = cv2.GaussianBlur(teeth, (3, 3), 0).astype(np.float32)[..., None] / 255
        cavity = np.array([60, 20, 25], np.float32)
        teeth_color = np.array([225, 220, 210], np.float32)
        interior = cavity * (1 - soft_teeth) + teeth_color * soft_teeth
        return (frame.astype(np.float32) * (1 - soft) + interior * soft).round().astype(np.uint8)
