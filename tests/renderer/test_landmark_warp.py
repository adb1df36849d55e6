from pathlib import Path

import cv2
import numpy as np
import pytest

from moda.face.landmarks import Face, FaceMeshDetector
from moda.motion.landmark_space import LOWER_INNER_LIP
from moda.renderer.landmark_warp import LandmarkWarpRenderer, ThinPlateSpline
from moda.samples import sample_portrait
from tests.helpers import SHARED


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
    np.testing.assert_allclose(spline(source), target, atol=1e-3)  # evaluated in float32: a thousandth of a pixel
    affine = ThinPlateSpline(source, source * 2 + 5, regularization=0.0)
    np.testing.assert_allclose(affine(np.array([[50.0, 50.0]])), [[105.0, 105.0]], atol=1e-3)


def test_rest_motion_reproduces_the_portrait(renderer):
    """Exactly with the portrait's own mouth; in absolute terms (the default) only the mouth closes."""
    with FaceMeshDetector() as detector:
        relative = LandmarkWarpRenderer(renderer.image, detector.largest(renderer.image), absolute_mouth=False)
    frame = relative.render(rest())
    difference = np.abs(frame.astype(int) - renderer.image.astype(int))
    assert frame.shape == renderer.image.shape and difference.mean() < 1.0
    closed = np.abs(renderer.render(rest()).astype(int) - renderer.image.astype(int)).mean(-1)
    x0, y0 = renderer.source_points[[12, 14, 19, 20]].min(0).astype(int) - 20
    x1, y1 = renderer.source_points[[12, 14, 5]].max(0).astype(int) + 20
    outside = closed.copy()
    outside[y0:y1, x0:x1] = 0
    assert outside.mean() < 0.5


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


def _mouth_gap(detector, frame) -> float:
    points = detector.largest(frame).landmarks
    iod = np.linalg.norm(points[[33, 133, 159, 145]].mean(0) - points[[263, 362, 386, 374]].mean(0))
    return float(np.linalg.norm(points[13] - points[14]) / iod)


@pytest.mark.parametrize("name", ["s1.jpg", "s12.jpg"])  # an open smile with teeth; a closed mouth
def test_the_mouth_is_driven_in_absolute_terms(name):
    """At rest the mouth is closed whatever the photo shows; a vowel opens it, both measured by the face mesh."""
    from moda.media.image import limit_size, load_image
    from moda.motion.landmark_space import opening_offsets

    image = limit_size(load_image(SHARED / "real" / "faces" / name))
    with FaceMeshDetector() as detector:
        renderer = LandmarkWarpRenderer(image, detector.largest(image))
        opened = rest()
        opened[:63] = opening_offsets(0.8).reshape(-1)
        assert _mouth_gap(detector, renderer.render(rest())) < 0.03
        assert _mouth_gap(detector, renderer.render(opened)) > 0.1


def test_the_mouth_interior_reads_as_a_mouth(renderer):
    """A dark cavity that is darkest inside, upper teeth just under the upper lip, lips outside untouched."""
    from moda.motion.landmark_space import opening_offsets

    opened = rest()
    opened[:63] = opening_offsets(1.0).reshape(-1)
    frame = renderer.render(opened).astype(float)
    upper, lower = renderer.source_points[19], renderer.source_points[20]
    x = int(upper[0])
    column = frame[int(upper[1]) : int(lower[1]) + int(0.4 * renderer.frame.unit), x].mean(-1)
    assert column.min() < 50  # the cavity
    assert column[: max(len(column) // 5, 2)].max() > 150  # teeth right under the upper lip


def test_non_finite_motion_is_refused_instead_of_hanging():
    """In a subprocess with a time limit: without the guard, cv2.remap on NaN maps never returns."""
    import subprocess
    import sys

    code = ("import numpy as np\n"
            "from moda.errors import MoDAError\n"
            "from moda.face.landmarks import FaceMeshDetector\n"
            "from moda.renderer.landmark_warp import LandmarkWarpRenderer\n"
            "from moda.samples import sample_portrait\n"
            "image = sample_portrait()\n"
            "with FaceMeshDetector() as detector:\n"
            "    renderer = LandmarkWarpRenderer(image, detector.largest(image))\n"
            "for bad in (np.nan, np.inf):\n"
            "    motion = np.zeros(70, np.float32); motion[63] = 1.0; motion[5] = bad\n"
            "    try:\n"
            "        renderer.render(motion)\n"
            "    except MoDAError as exc:\n"
            "        assert 'not finite' in str(exc)\n"
            "    else:\n"
            "        raise SystemExit('rendered non-finite motion')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_lips_that_nearly_touch_meet(renderer):
    """Below LIP_CONTACT the shown opening eases to 0, smoothly; above it the driven opening is kept."""
    from moda.motion.landmark_space import opening_offsets
    from moda.renderer.landmark_warp import LIP_CONTACT, lip_contact

    openings = np.linspace(0, 1, 201, dtype=np.float32)
    shown = lip_contact(openings)
    assert shown[0] == 0 and np.all(np.diff(shown) >= 0) and np.abs(np.diff(shown)).max() < 0.02
    np.testing.assert_array_equal(shown[openings >= LIP_CONTACT], openings[openings >= LIP_CONTACT])
    assert lip_contact(np.float32(LIP_CONTACT / 3)) < 0.3 * LIP_CONTACT / 3
    with FaceMeshDetector() as detector:
        gaps = {}
        for amount in (0.0, 0.06, 0.4):
            motion = rest()
            motion[:63] = opening_offsets(amount).reshape(-1)
            gaps[amount] = _mouth_gap(detector, renderer.render(motion))
    # the sample photo smiles with open lips: closed, its filled-in lips get the line where lips meet, and the face
    # mesh reads them as closed; nearly closed reads as closed too; a vowel stays open
    assert gaps[0.0] < 0.03 and gaps[0.06] < 0.03 and gaps[0.4] > 0.05, gaps


REFERENCE = Path(__file__).parent / "data"
# Frames may differ from the renderer they were made with (README in data/) by rounding, the spline being
# evaluated in float32, and on large faces by the coarser warp grid (a few levels on sharp edges in hair).
REFERENCE_MEAN_LEVELS = 0.05  # mean absolute difference, 0-255 levels
REFERENCE_CLOSE_LEVELS, REFERENCE_CLOSE_SHARE = 3, 0.9999  # this share of the values within this many levels
REFERENCE_MAX_LEVELS = 10


def _reference(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(REFERENCE / f"reference_{name}.webp")), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("portrait", ["sample", "s1", "s1_full"])
def test_frames_match_the_reference_renderer(portrait):
    """The sample portrait (512 px), an open-smile photo at 640 px and at its own 1145 px (a coarser warp grid):
    closed and open mouth, the widest head turn of a generated clip, and a strong turn with an open mouth."""
    motion = np.load(REFERENCE / "reference_motion.npy")
    from moda.media.image import load_image

    if portrait == "sample":
        image = sample_portrait()
    else:
        image = load_image(SHARED / "real" / "faces" / "s1.jpg")
        if portrait == "s1":
            image = cv2.resize(image, (640, 640), interpolation=cv2.INTER_AREA)
    # the face mesh the frames were made with: the detector's own landmarks move by hundredths of a pixel with
    # OpenCV's resampling (5.1's warpAffine), enough to change the anti-aliased tip of a thin row of teeth
    faces = np.load(REFERENCE / "reference_faces.npz")
    renderer = LandmarkWarpRenderer(image, Face(faces[f"{portrait}_landmarks"], faces[f"{portrait}_depth"]))
    # the large face's map is evaluated at every other sample away from the head (`FAR_PER_MOUTH`)
    assert renderer.far_field == (portrait == "s1_full")
    indices = [3] if portrait == "s1_full" else range(len(motion))
    for index in indices:
        difference = np.abs(renderer.render(motion[index]).astype(int) - _reference(f"{portrait}_{index}").astype(int))
        assert difference.mean() <= REFERENCE_MEAN_LEVELS and difference.max() <= REFERENCE_MAX_LEVELS, (
            portrait, index, difference.mean(), difference.max())
