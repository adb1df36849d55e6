import numpy as np
import pytest

from moda.face.landmarks import FaceMeshDetector
from moda.motion.landmark_space import LOWER_INNER_LIP
from moda.renderer.landmark_warp import LandmarkWarpRenderer, ThinPlateSpline
from moda.samples import sample_portrait


@pytest.fixture(scope="module")
def renderer():
    image = sample_portrait()
    with FaceMeshDetector() as detector:
        return LandmarkWarpRenderer(image, detector.largest(image))


def rest() -> np.ndarray:
    motion = np.zeros(70, np.float32)
    motion[63] = 1.0
    return motion


def test_thin_plate_spline_interpolates_its_control_points():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (12, 2))
    target = source + rng.normal(0, 3, (12, 2))
    spline = ThinPlateSpline(source, target, regularization=0.0)
    np.testing.assert_allclose(spline(source), target, atol=1e-6)
    affine = ThinPlateSpline(source, source * 2 + 5, regularization=0.0)
    np.testing.assert_allclose(affine(np.array([[50.0, 50.0]])), [[105.0, 105.0]], atol=1e-6)


def test_rest_motion_reproduces_the_portrait(renderer):
    frame = renderer.render(rest())
    difference = np.abs(frame.astype(int) - renderer.image.astype(int))
    assert frame.shape == renderer.image.shape and difference.mean() < 1.0


def test_open_mouth_darkens_the_mouth_and_head_turn_moves_the_face(renderer):
    opened = rest()
    opened[LOWER_INNER_LIP * 3 + 1] = 0.3  # lower inner lip down
    opened[17 * 3 + 1] = 0.28
    closed_frame, open_frame = renderer.render(rest()), renderer.render(opened)
    lips = renderer.source_points[[19, 20]].mean(0).astype(int)
    box = (slice(lips[1] - 3, lips[1] + 12), slice(lips[0] - 10, lips[0] + 10))
    assert open_frame[box].mean() < closed_frame[box].mean() - 15
    turned = rest()
    turned[68] = 20.0  # yaw
    moved = np.abs(renderer.render(turned).astype(int) - closed_frame.astype(int)).mean(-1)
    x0, y0 = renderer.source_points[:21].min(0).astype(int)
    x1, y1 = renderer.source_points[:21].max(0).astype(int)
    assert moved[y0:y1, x0:x1].mean() > 10  # the face moves
    assert moved[0, 0] < 2 and moved[-1, -1] < 2  # the image corners are anchored
