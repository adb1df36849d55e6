"""A fast CPU renderer for the landmark motion space: a thin-plate-spline image warp plus a mouth interior.

The portrait's 21 motion keypoints move with the generated expression and pose; points around the head
move rigidly with the pose; points on the image border stay put. A thin-plate spline through those
correspondences gives a smooth backward map, sampled on a coarse grid and upsampled, then `cv2.remap`
warps the portrait. Where the inner lips part, a mouth interior is painted in: a cavity that darkens toward
the back of the mouth, upper teeth under the upper lip and, for wide openings, lower teeth; its soft edge
scales with the face, so it reads the same at 512 and 1024 px.

The mouth is driven in absolute terms: generated motion describes a mouth that is closed at rest, so the
portrait's own opening (a photo taken mid-word or with an open smile) is taken out first
(`moda.motion.landmark_space.MOUTH_OPENING`); such a portrait closes on M / B / P and in pauses. Lips that
nearly touch meet (`lip_contact`): an opening under LIP_CONTACT eases to closed, as lips in contact do, instead
of leaving a sliver of a gap. No network and no weights.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..errors import MoDAError
from ..face.landmarks import Face
from ..motion.keypoints import head_rotation, transform_keypoints
from ..motion.landmark_space import (
    INNER_GAP_PER_OPENING,
    LEFT_MOUTH_CORNER,
    LOWER_INNER_LIP,
    RIGHT_MOUTH_CORNER,
    UPPER_INNER_LIP,
    FaceFrame,
    lip_closing_offsets,
)
from ..motion.vector import MOTION_DIM, NUM_KEYPOINTS, SCALE, HeadMotion

# MediaPipe face-oval ring, and the inner-lip ring (upper arc from corner to corner, then the lower arc back).
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
INNER_LOWER = [308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78]
LIP_CONTROLS = [1, 2, 3, 4, 6, 7, 8, 9]  # contour points that steer the warp (not the corners, not the keypoints)
CLOSED_GAP = 0.02  # motion units: an inner-lip gap below this is a closed mouth (landmark noise)
PRESS = 1.25  # a portrait's open mouth is closed this much beyond its gap, so the lips meet, not just touch
LIP_CONTACT = 0.25  # mouth-opening units (`MOUTH_OPENING`) below which the lips are drawn together (measured on
# real speech, 42 pairs: 0.15 closed 60 % of M / B / P frames, 0.25 67 % at the same d; 0.35 lowers d)
SEAM_DARKNESS = 0.55  # how much the line where closed lips meet darkens them
CAVITY_EDGE = np.array([95, 35, 40], np.float32)  # inside the lips
CAVITY_BACK = np.array([28, 8, 12], np.float32)  # the back of the mouth
TEETH = np.array([232, 226, 214], np.float32)
HEAD_MARGIN = 1.35  # the oval pushed outward so hair and ears move with the head
BODY_MARGIN = 2.2  # the lower oval pushed this far out is the neck and shoulders, which do not move
GRID_STEP = 8  # pixels between evaluated warp samples, at least
GRID_PER_MOUTH = 6  # ... and about this many across half the mouth's width (a large face is sampled as coarsely)
# Away from the head the map is smooth: there it is evaluated at every other grid sample, and interpolated, where
# that still samples half the mouth's width this many times (large faces; measured at 1280 px: a frame in 8.7 ms
# instead of 11.5 on one core, within 2 levels of evaluating every sample, mean 0.006)
FAR_PER_MOUTH = 3
RING_REACH = 0.2  # the head ring's box, grown by this share of its size, is evaluated at every sample


def _without_mouth_interior(image: np.ndarray, face: Face) -> np.ndarray:
    """The portrait with the area between its inner lips inpainted from the lips."""
    mask = np.zeros(image.shape[:2], np.uint8)
    contour = face.landmarks[INNER_UPPER + INNER_LOWER[1:-1]].round().astype(np.int32)
    cv2.fillPoly(mask, [contour], 255)
    lip_width = float(np.linalg.norm(face.landmarks[INNER_UPPER[0]] - face.landmarks[INNER_UPPER[-1]]))
    grow = 2 * max(int(0.02 * lip_width), 1) + 1
    grown = cv2.dilate(mask, np.ones((grow, grow), np.uint8))
    return cv2.inpaint(image, grown, max(int(0.05 * lip_width), 3), cv2.INPAINT_TELEA)


EVALUATION_BLOCK = 1024  # points per block when a spline is evaluated


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-12)), 0.0)


class ThinPlateSpline:
    """2-D -> 2-D thin-plate spline through control points, lightly regularised.

    Solved in float64; evaluated in float32 (points on a pixel grid: an error far below a pixel), with the
    squared distances as |p|^2 + |s|^2 - 2 p.s, one matrix product for all points.
    """

    def __init__(self, source: np.ndarray, target: np.ndarray, regularization: float = 1e-3):
        n = len(source)
        source = source.astype(np.float64)
        self.scale = np.ptp(source, axis=0).max() or 1.0
        s = source / self.scale
        kernel = _tps_kernel(((s[:, None] - s[None]) ** 2).sum(-1)) + regularization * np.eye(n)
        affine = np.hstack([np.ones((n, 1)), s])
        system = np.zeros((n + 3, n + 3))
        system[:n, :n], system[:n, n:], system[n:, :n] = kernel, affine, affine.T
        rhs = np.zeros((n + 3, 2))
        rhs[:n] = target
        coefficients = np.linalg.solve(system, rhs)
        self._centres = s.astype(np.float32)  # (n, 2)
        self._weights = coefficients[:n].astype(np.float32)  # (n, 2)
        self._affine = coefficients[n:].astype(np.float32)  # (3, 2): offset, then the linear part

    def __call__(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, np.float32) / np.float32(self.scale)  # (m, 2)
        out = p @ self._affine[1:] + self._affine[0]  # (m, 2)
        centres_norm = (self._centres * self._centres).sum(1)[None]  # (1, n)
        # in blocks whose (block, n) temporaries stay in cache: 3x faster than one pass over a 1280 px grid
        for start in range(0, len(p), EVALUATION_BLOCK):
            block = p[start : start + EVALUATION_BLOCK]
            r2 = block @ self._centres.T  # (block, n)
            r2 *= -2
            r2 += (block * block).sum(1)[:, None]
            r2 += centres_norm
            np.maximum(r2, np.float32(1e-12), out=r2)  # rounding can make a coincident point's r2 < 0
            kernel = np.log(r2)
            kernel *= r2
            out[start : start + EVALUATION_BLOCK] += kernel @ self._weights
        return out


def lip_contact(opening: np.ndarray | float) -> np.ndarray:
    """The opening lips show for a driven opening: unchanged from LIP_CONTACT up, easing to 0 below it
    (smoothstep), so nearly closed lips close and the curve stays smooth."""
    t = np.clip(np.asarray(opening, np.float32) / LIP_CONTACT, 0.0, 1.0)
    return np.where(t < 1.0, opening * t * t * (3 - 2 * t), opening).astype(np.float32)


class LandmarkWarpRenderer:
    """Renders (T, 70) landmark-space motion (de-normalised) on one portrait."""

    def __init__(self, image: np.ndarray, face: Face, absolute_mouth: bool = True):
        self.frame = FaceFrame.from_face(face)
        opening = self.frame.mouth_opening
        closed = opening * INNER_GAP_PER_OPENING < CLOSED_GAP or not absolute_mouth
        # taken out of every frame's expression: the portrait's own mouth opening
        self.rest_offsets = lip_closing_offsets(0.0 if closed else PRESS * opening)
        # the warp source: with an open mouth closed, what showed between the lips (teeth, tongue) is filled
        # from the lips around it, so the closed lips meet in lip colour and no teeth are ever duplicated
        self.image = image if closed else _without_mouth_interior(image, face)
        # warped with a fourth (unused) channel: OpenCV's vectorised remap handles 4 channels, not 3 (1280 px:
        # 2.5 ms instead of 5), into a buffer reused by every frame
        self.source_rgba = cv2.cvtColor(self.image, cv2.COLOR_RGB2RGBA)
        self._warped_buffer = np.empty_like(self.source_rgba)
        self.seamless = not closed  # the filled-in lips have no line where they meet: it is drawn (`_lip_seam`)
        # a black-and-white photo gets a grey mouth interior
        pixels = image.reshape(-1, 3)[:: max(len(image.reshape(-1, 3)) // 20000, 1)].astype(np.int16)
        self.grayscale = float(np.ptp(pixels, axis=1).mean()) < 4
        height, width = image.shape[:2]
        depth = face.depth if face.depth is not None else np.zeros(len(face.landmarks), np.float32)
        mesh = np.concatenate([face.landmarks, depth[:, None]], axis=1).astype(np.float64)
        mesh = (mesh - self.frame.center) / self.frame.unit  # the whole mesh in motion space
        oval = mesh[FACE_OVAL]
        center = oval.mean(0)
        self.head_points = (center + (oval - center) * HEAD_MARGIN).astype(np.float32)  # rigid with the pose
        border = [(x, y) for x in (0, width / 2, width - 1) for y in (0, height / 2, height - 1)
                  if (x, y) != (width / 2, height / 2)]
        # neck and shoulders stay where they are: fixed points below the face, well outside the head ring
        direction = oval[:, :2] - center[:2]
        below = oval[direction[:, 1] > np.linalg.norm(direction, axis=1) * np.cos(np.radians(40))]  # chin and jaw
        body = self.frame.to_pixels((center + (below - center) * BODY_MARGIN).astype(np.float32))
        body = body[(body[:, 0] > 0) & (body[:, 0] < width - 1) & (body[:, 1] > 0) & (body[:, 1] < height - 1)]
        self.border = np.concatenate([np.array(border, dtype=np.float32), body])
        self.inner_upper = face.landmarks[INNER_UPPER].astype(np.float32)
        self.inner_lower = face.landmarks[INNER_LOWER[::-1]].astype(np.float32)  # paired with the upper points
        # keypoints move with expression and pose, the head ring with the pose only
        self.points = torch.from_numpy(np.concatenate([self.frame.kp, self.head_points]))[None]
        rest = torch.zeros(1, MOTION_DIM)
        rest[:, SCALE] = 1.0  # no expression offset, unit scale, centred, frontal
        self.source_points = self._control_points(HeadMotion.from_vector(rest))
        left, right = self.source_points[LEFT_MOUTH_CORNER, 0], self.source_points[RIGHT_MOUTH_CORNER, 0]
        self.mouth_center_x, self.mouth_half = float(left + right) / 2, max(float(abs(right - left)) / 2, 1.0)
        # The backward map is evaluated at the centres of grid_step blocks, where cv2.resize puts samples when it
        # upsamples by grid_step. Its samples go into a grid one block larger on every side (the displacement
        # held at the edge's), so that bilinear upsampling of positions gives the identity plus the upsampled
        # displacement right up to the image's edges, with no full-size identity map to add.
        self.grid_step = step = max(GRID_STEP, int(self.mouth_half / GRID_PER_MOUTH))
        ys, xs = np.mgrid[-1 : -(-height // step) + 1, -1 : -(-width // step) + 1] * step + (step - 1) / 2
        self.padded_grid = np.stack([xs, ys], axis=-1).astype(np.float32)  # (gh + 2, gw + 2, 2)
        self.grid_shape = (ys.shape[0] - 2, ys.shape[1] - 2, 2)
        # Two levels: the spline is evaluated at every grid sample where the map bends (the head ring's box, where
        # the keypoints move; around each fixed point; along the image's edges) and, elsewhere, at the centres of
        # 2 x 2 blocks of samples, upsampled bilinearly (on small faces, at every sample everywhere)
        self.far_field = 2 * step * FAR_PER_MOUTH <= self.mouth_half
        coarse_rows, coarse_cols = -(-self.grid_shape[0] // 2), -(-self.grid_shape[1] // 2)
        ys, xs = np.mgrid[:coarse_rows, :coarse_cols] * 2 * step + (2 * step - 1) / 2
        self.coarse_grid = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32)
        self.coarse_shape = (coarse_rows, coarse_cols, 2)
        self.exact = (self._bending_cells(self.frame.to_pixels(self.head_points)) if self.far_field
                      else np.ones(self.grid_shape[:2], bool))  # (gh, gw)
        self.exact_grid = self.padded_grid[1:-1, 1:-1][self.exact]  # (m, 2)
        # the upsampled map, reused by every frame (a fresh 13 MB array a frame at 1280 px costs more in page
        # faults than the warp itself): a renderer renders one frame at a time
        self._map_buffer = np.empty(((self.grid_shape[0] + 2) * step, (self.grid_shape[1] + 2) * step, 2), np.float32)

    def _bending_cells(self, ring: np.ndarray) -> np.ndarray:
        """(gh, gw) grid samples the spline is evaluated at exactly: the head ring's box, the image's edges and
        the cells around each fixed point, each with a margin of two fine samples."""
        rows, cols = self.grid_shape[:2]
        step, margin = self.grid_step, 2
        exact = np.zeros((rows, cols), bool)
        exact[[0, -1]] = exact[:, [0, -1]] = True
        reach = np.ptp(ring, axis=0) * RING_REACH
        for low, high in [(ring.min(0) - reach, ring.max(0) + reach), *((point, point) for point in self.border)]:
            x0, y0 = np.clip(np.floor(low / step).astype(int) - margin, 0, None)
            x1, y1 = np.floor(high / step).astype(int) + margin + 1
            exact[y0:y1, x0:x1] = True
        return exact

    def _control_points(self, motion: HeadMotion) -> np.ndarray:
        """Pixel positions of keypoints (expression + pose), head ring (pose only) and border (fixed)."""
        exp = torch.cat([motion.exp, motion.exp.new_zeros(1, len(self.head_points), 3)], dim=1)
        moved = transform_keypoints(self.points, head_rotation(motion), exp, motion.scale, motion.t)[0].numpy()
        return np.concatenate([self.frame.to_pixels(moved[:NUM_KEYPOINTS]), self.frame.to_pixels(moved[NUM_KEYPOINTS:]),
                               self.border])

    def render(self, motion: np.ndarray) -> np.ndarray:
        """One frame (H, W, 3) uint8 for a 70-d motion vector."""
        vector = torch.from_numpy(np.asarray(motion, np.float32))[None]
        if not torch.isfinite(vector).all():  # a last guard: cv2.remap never returns on NaN maps
            raise MoDAError("the motion to render is not finite (NaN or infinite); check the audio and guidance")
        parts = HeadMotion.from_vector(vector)
        parts.exp = parts.exp - torch.from_numpy(self.rest_offsets)
        gap = float(parts.exp[0, LOWER_INNER_LIP, 1] - parts.exp[0, UPPER_INNER_LIP, 1])
        opening = max(gap / INNER_GAP_PER_OPENING + self.frame.mouth_opening, 0.0)  # the mouth's own, absolute
        parts.exp = parts.exp - torch.from_numpy(lip_closing_offsets(opening - float(lip_contact(opening))))
        driven = self._control_points(parts)
        upper, lower = self._lips(driven)
        lips = np.concatenate([upper[LIP_CONTROLS], lower[LIP_CONTROLS]])
        source_lips = np.concatenate([self.inner_upper[LIP_CONTROLS], self.inner_lower[LIP_CONTROLS]])
        backward = ThinPlateSpline(np.concatenate([driven, lips]), np.concatenate([self.source_points, source_lips]))
        height, width, step = *self.image.shape[:2], self.grid_step
        if self.far_field:
            coarse = (backward(self.coarse_grid) - self.coarse_grid).reshape(self.coarse_shape)
            upsampled = cv2.resize(coarse, (2 * self.coarse_shape[1], 2 * self.coarse_shape[0]),
                                   interpolation=cv2.INTER_LINEAR)
            displacement = upsampled[: self.grid_shape[0], : self.grid_shape[1]]
        else:
            displacement = np.empty(self.grid_shape, np.float32)
        displacement[self.exact] = backward(self.exact_grid) - self.exact_grid
        positions = self.padded_grid + np.pad(displacement, ((1, 1), (1, 1), (0, 0)), mode="edge")  # read from
        cv2.resize(positions, self._map_buffer.shape[1::-1], dst=self._map_buffer, interpolation=cv2.INTER_LINEAR)
        maps = self._map_buffer[step : step + height, step : step + width]  # (H, W, 2), interleaved x, y
        cv2.remap(self.source_rgba, maps, None, cv2.INTER_LINEAR, dst=self._warped_buffer,
                  borderMode=cv2.BORDER_REFLECT)
        frame = cv2.cvtColor(self._warped_buffer, cv2.COLOR_RGBA2RGB)
        return self._paint_mouth(frame, upper, lower)

    def _lips(self, driven: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The driven inner-lip contours, upper and lower (paired points, left to right), in pixels.

        The lips' midline moves like the mouth's middle keypoints, blending into the corners' motion; the lips
        part around it by the driven gap, in a rounded opening that closes toward the corners. So a portrait's
        open mouth closes along its whole width, and a closed one opens in a natural shape.
        """
        displacement = driven[:NUM_KEYPOINTS] - self.source_points[:NUM_KEYPOINTS]
        center_x, half = self.mouth_center_x, self.mouth_half
        midline = (self.inner_upper + self.inner_lower) / 2
        weight = np.clip(np.abs(midline[:, 0] - center_x) / half, 0, 1)[:, None] ** 2
        corner = np.where((midline[:, 0] < center_x)[:, None], displacement[LEFT_MOUTH_CORNER],
                          displacement[RIGHT_MOUTH_CORNER])
        middle = (displacement[UPPER_INNER_LIP] + displacement[LOWER_INNER_LIP]) / 2
        moved = midline + weight * corner + (1 - weight) * middle
        gap = max(float(driven[LOWER_INNER_LIP, 1] - driven[UPPER_INNER_LIP, 1]), 0.0)
        shape = np.clip(1 - ((midline[:, 0] - center_x) / half) ** 2, 0, 1)[:, None]
        half_gap = np.concatenate([np.zeros_like(shape), gap / 2 * shape], axis=1)
        return (moved - half_gap).astype(np.float32), (moved + half_gap).astype(np.float32)

    def _lip_seam(self, frame: np.ndarray, midline: np.ndarray, gap: float) -> np.ndarray:
        """The shadow where closed lips meet, along the lips' midline, fading as they part (a portrait whose
        open mouth was filled in has none of its own)."""
        strength = SEAM_DARKNESS * max(1.0 - gap / (0.25 * self.mouth_half), 0.0)
        if strength <= 0:
            return frame
        thickness = max(self.mouth_half * 0.035, 1.0)
        x0, y0 = np.floor(midline.min(0) - 3 * thickness).astype(int)
        x1, y1 = np.ceil(midline.max(0) + 3 * thickness).astype(int)
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            return frame
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        points = np.round((midline - [x0, y0]) * 4).astype(np.int32)
        cv2.polylines(mask, [points], False, 1.0, thickness=max(int(round(thickness)), 1), lineType=cv2.LINE_AA, shift=2)
        blur = 2 * max(int(thickness), 1) + 1
        mask = cv2.GaussianBlur(mask, (blur, blur), 0)[..., None]
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(region * (1 - strength * mask) + 0.5, 0, 255).astype(np.uint8)
        return frame

    def _paint_mouth(self, frame: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """Fill the gap between the driven inner lips with the mouth interior."""
        center_x, half = self.mouth_center_x, self.mouth_half
        gap = float(np.max(lower[:, 1] - upper[:, 1]))
        if self.seamless:
            frame = self._lip_seam(frame, (upper + lower) / 2, gap)
        if gap < 1.0:
            return frame
        # work in a box around the mouth only
        polygon = np.concatenate([upper, lower[::-1]])
        margin = int(0.2 * half) + 4
        x0, y0 = np.floor(polygon.min(0)).astype(int) - margin
        x1, y1 = np.ceil(polygon.max(0)).astype(int) + margin
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            return frame
        offset = np.array([x0, y0], np.float32)
        size = (y1 - y0, x1 - x0)

        def fill(points: np.ndarray) -> np.ndarray:
            mask = np.zeros(size, np.uint8)
            cv2.fillPoly(mask, [np.round((points - offset) * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
            return mask

        mouth = fill(polygon)

        def teeth_band(lip: np.ndarray, height: float, direction: float) -> np.ndarray | None:
            """A row of teeth along a lip, tallest in the middle, gone before the corners."""
            if height < 1:
                return None
            taper = np.clip(1 - ((lip[:, 0] - center_x) / (0.8 * half)) ** 2, 0, 1)[:, None]
            edge = lip + [0, direction * height] * taper
            return fill(np.concatenate([lip, edge[::-1]])) & mouth

        upper_teeth = teeth_band(upper, min(gap * 0.38, 0.2 * half), 1.0)
        lower_teeth = teeth_band(lower, max(gap - 0.8 * half, 0.0) * 0.25, -1.0)  # only when wide open

        blur = 2 * max(int(0.025 * half), 1) + 1  # soft edge in proportion to the mouth
        soft = cv2.GaussianBlur(mouth, (blur, blur), 0).astype(np.float32)[..., None] / 255
        depth = cv2.distanceTransform((mouth > 127).astype(np.uint8), cv2.DIST_L2, 3)
        depth = np.clip(depth / max(gap * 0.45, 1.0), 0, 1)[..., None]  # 0 at the lips, 1 deep inside
        interior = CAVITY_EDGE * (1 - depth) + CAVITY_BACK * depth
        for teeth, shade in ((upper_teeth, 1.0 - 0.25 * depth), (lower_teeth, 0.65 - 0.2 * depth)):
            if teeth is None:
                continue
            alpha = cv2.GaussianBlur(teeth, (blur, blur), 0).astype(np.float32)[..., None] / 255
            interior = interior * (1 - alpha) + TEETH * shade * alpha
        region = frame[y0:y1, x0:x1].astype(np.float32)
        if self.grayscale:
            interior = interior.mean(-1, keepdims=True)
        frame[y0:y1, x0:x1] = np.clip(region * (1 - soft) + interior * soft + 0.5, 0, 255).astype(np.uint8)
        return frame
