import math

import pytest
import torch

from moda.motion.keypoints import (
    KeypointInfo,
    headpose_to_degrees,
    rotation_matrix,
    source_keypoints,
    transform_keypoints,
)


def test_headpose_bins_to_degrees_by_hand():
    uniform = torch.zeros(1, 66)
    assert headpose_to_degrees(uniform).item() == pytest.approx(3 * 32.5 - 97.5)  # = 0
    for index in (0, 10, 65):
        one_hot = torch.full((1, 66), -1e4)
        one_hot[0, index] = 0
        assert headpose_to_degrees(one_hot).item() == pytest.approx(3 * index - 97.5)
    two = torch.full((1, 66), -1e4)
    two[0, 30] = two[0, 40] = 0  # equal mass on bins 30 and 40 -> bin 35
    assert headpose_to_degrees(two).item() == pytest.approx(3 * 35 - 97.5)
    degrees = torch.tensor([[12.5]])
    assert headpose_to_degrees(degrees) is degrees


def test_rotation_is_transposed_rz_ry_rx():
    zero = torch.zeros(1)
    torch.testing.assert_close(rotation_matrix(zero, zero, zero), torch.eye(3).unsqueeze(0))
    # yaw 90: R = Ry(90) = [[0,0,1],[0,1,0],[-1,0,0]]; returned transposed.
    r = rotation_matrix(zero, torch.tensor([90.0]), zero)[0]
    torch.testing.assert_close(r, torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]).T, atol=1e-6, rtol=0)
    # A row vector pointing right (x) turns into -z (out of the image) under +90 yaw: x_row @ R = (R_col x)^T.
    torch.testing.assert_close(torch.tensor([[1.0, 0, 0]]) @ r, torch.tensor([[0.0, 0, -1]]), atol=1e-6, rtol=0)
    # roll 90: Rz(90) = [[0,-1,0],[1,0,0],[0,0,1]]
    r = rotation_matrix(zero, zero, torch.tensor([90.0]))[0]
    torch.testing.assert_close(r, torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]).T, atol=1e-6, rtol=0)


def test_rotation_composition_order_and_orthonormality():
    p, y, r = torch.tensor([20.0]), torch.tensor([-35.0]), torch.tensor([10.0])
    rx = rotation_matrix(p, torch.zeros(1), torch.zeros(1))[0].T
    ry = rotation_matrix(torch.zeros(1), y, torch.zeros(1))[0].T
    rz = rotation_matrix(torch.zeros(1), torch.zeros(1), r)[0].T
    full = rotation_matrix(p, y, r)[0]
    torch.testing.assert_close(full, (rz @ ry @ rx).T)
    torch.testing.assert_close(full @ full.T, torch.eye(3), atol=1e-6, rtol=0)
    assert torch.linalg.det(full).item() == pytest.approx(1.0, abs=1e-6)


def test_transform_keypoints_by_hand():
    kp = torch.tensor([[[1.0, 2.0, 3.0]]])
    exp = torch.tensor([[[0.5, 0.0, -1.0]]])
    rotation = torch.eye(3).unsqueeze(0)
    x = transform_keypoints(kp, rotation, exp, torch.tensor([[2.0]]), torch.tensor([[0.1, 0.2, 9.0]]))
    # 2 * (kp + exp) = (3, 4, 4); t adds to x and y only (tz ignored)
    torch.testing.assert_close(x, torch.tensor([[[3.1, 4.2, 4.0]]]))


def test_source_keypoints_from_extractor_output():
    logits = torch.full((1, 66), -1e4)
    logits[0, 45] = 0  # 37.5 degrees
    raw = {"kp": torch.randn(1, 63), "exp": torch.randn(1, 63), "scale": torch.tensor([[1.5]]),
           "t": torch.tensor([[0.1, -0.2, 0.3]]), "pitch": torch.zeros(1, 66), "yaw": logits, "roll": torch.zeros(1, 66)}
    info = KeypointInfo.from_extractor(raw)
    assert info.kp.shape == (1, 21, 3) and info.yaw.item() == pytest.approx(37.5)
    angle = math.radians(37.5)
    ry = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    expected = 1.5 * (info.kp @ ry.T + info.exp)
    expected[..., :2] += torch.tensor([0.1, -0.2])
    torch.testing.assert_close(source_keypoints(info), expected, atol=1e-5, rtol=1e-5)
