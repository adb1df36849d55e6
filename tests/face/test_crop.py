import warnings

import cv2
import numpy as np
import pytest

from moda.face.crop import SOURCE_SCALE, SOURCE_VY, PasteBack, crop_face, face_box, mask_template
from moda.face.landmarks import FaceMeshDetector, NoFaceError
from tests.helpers import portrait


@pytest.fixture(scope="module")
def detector():
    with FaceMeshDetector() as detector:
        yield detector


def test_finds_the_face_and_its_landmarks(detector):
    face = detector.largest(portrait())
    assert face.landmarks.shape == (478, 2)
    x0, y0, x1, y1 = face.box
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 250  # the astronaut's face
    assert face.eye_center[1] < face.lip_center[1]
    left, right = face.eye_ratios()
    assert 0.1 < left < 0.6 and 0.1 < right < 0.6
    assert 0.0 <= face.lip_ratio() < 0.6


def test_crop_then_paste_back_returns_the_original(detector):
    image = portrait()
    crop = crop_face(image, face_box(detector.largest(image), SOURCE_SCALE, SOURCE_VY))
    assert crop.image.shape == (512, 512, 3) and crop.network_input(256).shape == (256, 256, 3)
    restored = PasteBack(image, crop)(crop.image)
    difference = np.abs(restored.astype(int) - image.astype(int))
    assert difference.mean() < 1.0
    assert np.percentile(difference, 99) <= 6  # two bilinear resamplings blur the sharpest edges a little
    torch_face = crop.image[200:300, 200:300].mean()
    assert 100 < torch_face < 230  # skin, not background


def test_crop_follows_head_rotation(detector):
    image = portrait()
    upright = face_box(detector.largest(image), SOURCE_SCALE, SOURCE_VY)
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D((225, 130), 20, 1.0), (512, 512))
    tilted = face_box(detector.largest(turned), SOURCE_SCALE, SOURCE_VY)
    assert np.degrees(upright.angle - tilted.angle) == pytest.approx(20, abs=3)
    assert tilted.size == pytest.approx(upright.size, rel=0.1)


def test_no_face_and_several_faces(detector):
    with pytest.raises(NoFaceError, match="no face found in blank.png"):
        detector.largest(np.full((300, 300, 3), 127, dtype=np.uint8), "blank.png")
    image = portrait()
    smaller = cv2.resize(image, (400, 400))
    pair = np.concatenate([image, np.pad(smaller, ((56, 56), (0, 0), (0, 0)))], axis=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        face = detector.largest(pair, "pair.png")
    assert any("2 faces found in pair.png" in str(w.message) for w in caught)
    assert face.box[2] < 512  # the larger face, on the left


def test_mask_template_is_the_released_one_and_resizes_with_the_crop():
    mask = mask_template()
    assert mask.shape == (512, 512) and mask.dtype == np.uint8
    assert mask[256, 256] == 255 and mask[0, 0] == 0 and mask[256, 0] == 0  # solid face, clear border
    assert mask_template(128).shape == (128, 128)


def test_small_face_in_a_large_image(detector):
    image = portrait()
    padded = np.pad(image, ((400, 400), (600, 200), (0, 0)))
    near, far = detector.largest(image), detector.largest(padded)
    np.testing.assert_allclose(far.landmarks - [600, 400], near.landmarks, atol=4)
