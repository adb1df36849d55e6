import numpy as np
import pytest
import torch

from moda.face.landmarks import Face, FaceMeshDetector
from moda.motion.keypoints import angles_from_rotation, rotation_matrix
from moda.motion.landmark_space import FaceFrame, landmark_motion, mouth_opening, opening_offsets
from moda.samples import sample_portrait


@pytest.fixture(scope="module")
def face():
    with FaceMeshDetector() as detector:
        return detector.largest(sample_portrait())


def test_angles_round_trip_through_the_rotation_convention():
    for pitch, yaw, roll in ((10.0, -25.0, 4.0), (-30.0, 60.0, -15.0), (0.0, 0.0, 0.0)):
        rotation = rotation_matrix(torch.tensor([pitch]), torch.tensor([yaw]), torch.tensor([roll]))[0].numpy()
        np.testing.assert_allclose(angles_from_rotation(rotation), (pitch, yaw, roll), atol=1e-4)


def test_driving_motion_recovers_head_pose_and_mouth_opening(face):
    """A mesh turned by a known pose and with its jaw dropped: pose and opening come back from the landmarks."""
    frame = FaceFrame.from_face(face)
    points = np.concatenate([face.landmarks, face.depth[:, None]], axis=1).astype(np.float64)
    rotation = rotation_matrix(torch.tensor([8.0]), torch.tensor([-15.0]), torch.tensor([5.0]))[0].numpy()
    turned = (points - frame.center) @ rotation * 1.1 + frame.center + [12.0, -6.0, 0.0]
    opened = points.copy()
    opened[[14, 17, 152], 1] += 0.3 * frame.unit  # lower inner lip, lower outer lip, chin
    faces = [face, Face(turned[:, :2], turned[:, 2]), Face(opened[:, :2], opened[:, 2])]
    motion = landmark_motion(faces)
    np.testing.assert_allclose(motion[0, 63], 1.0, atol=1e-6)
    np.testing.assert_allclose(motion[1, 67:70], (8.0, -15.0, 5.0), atol=0.05)
    np.testing.assert_allclose(motion[1, 63], 1.1, atol=1e-3)
    gap = mouth_opening(motion)
    assert gap[2] > gap[0] + 0.25 and abs(gap[1] - gap[0]) < 0.01


def test_opening_offsets_open_the_inner_lips_by_their_gap():
    offsets = opening_offsets(np.array([0.0, 1.0]))
    motion = np.zeros((2, 70), np.float32)
    motion[:, :63] = offsets.reshape(2, -1)
    np.testing.assert_allclose(mouth_opening(motion), [0.0, 0.37], atol=1e-6)
