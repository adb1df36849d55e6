import torch

from moda.motion.keypoints import KeypointInfo, source_keypoints
from moda.motion.vector import HeadMotion
from moda.renderer.driving import (
    DRIVEN_ROWS,
    EyeOffsets,
    driving_keypoints,
    relative_driving_keypoints,
    transfer_expression,
)
from moda.renderer.stitching import STITCHING, StitchingRetargetingNetwork


def _info(batch=1, seed=0, yaw=0.0):
    g = torch.Generator().manual_seed(seed)
    return KeypointInfo(kp=torch.randn(batch, 21, 3, generator=g), exp=0.02 * torch.randn(batch, 21, 3, generator=g),
                        scale=1 + torch.rand(batch, 1, generator=g), t=0.1 * torch.randn(batch, 3, generator=g),
                        pitch=torch.zeros(batch, 1), yaw=torch.full((batch, 1), yaw), roll=torch.zeros(batch, 1))


def _source() -> KeypointInfo:
    g = torch.Generator().manual_seed(0)
    return KeypointInfo(kp=torch.randn(1, 21, 3, generator=g), exp=0.01 * torch.randn(1, 21, 3, generator=g),
                        scale=torch.tensor([[1.4]]), t=torch.tensor([[0.02, -0.05, 0.3]]),
                        pitch=torch.tensor([[5.0]]), yaw=torch.tensor([[-10.0]]), roll=torch.tensor([[2.0]]))


def test_source_motion_drives_the_source_pose_exactly():
    """Non-relative driving by the source's own motion reproduces x_s (without eye offsets or stitching)."""
    source = _source()
    t = source.t.clone()
    t[:, 2] = 0
    motion = HeadMotion(exp=source.exp, scale=torch.tensor([[9.9]]), t=t, pitch=source.pitch, yaw=source.yaw,
                           roll=source.roll)
    keypoints = driving_keypoints(source, motion, stitching=None, eye_offsets=None)
    torch.testing.assert_close(keypoints.x_d, keypoints.x_s, atol=1e-6, rtol=1e-5)  # generated scale is ignored


def test_expression_transfer_keeps_undriven_source_values():
    source_exp, driving = torch.zeros(1, 21, 3), torch.ones(2, 21, 3)
    delta = transfer_expression(source_exp, driving)
    assert torch.all(delta[:, DRIVEN_ROWS] == 1)
    assert torch.all(delta[:, [0, 7, 10]] == 0)
    assert delta[0, 3].tolist() == [0, 1, 0] and delta[0, 9].tolist() == [0, 1, 1] and delta[0, 5].tolist() == [0, 0, 1]


def test_eye_offsets_touch_only_eye_rows():
    exp = torch.zeros(1, 21, 3)
    moved = EyeOffsets().apply(exp)
    changed = {tuple(i) for i in torch.nonzero(moved[0]).tolist()}
    assert changed == {(11, 1), (13, 1), (15, 1), (16, 1)}
    torch.testing.assert_close(moved[0, 11, 1], torch.tensor(0.005 - 0.0025))


def test_stitching_adds_keypoint_and_global_translation_deltas():
    network = StitchingRetargetingNetwork(STITCHING)
    with torch.no_grad():
        for p in network.parameters():
            p.zero_()
        network.mlp[6].bias[63:65] = torch.tensor([0.1, -0.2])
        network.mlp[6].bias[0] = 0.5  # keypoint 0, x
    source = _source()
    motion = HeadMotion(exp=torch.zeros(2, 21, 3), scale=torch.ones(2, 1), t=torch.zeros(2, 3),
                           pitch=torch.zeros(2, 1), yaw=torch.zeros(2, 1), roll=torch.zeros(2, 1))
    plain = driving_keypoints(source, motion, None)
    stitched = driving_keypoints(source, motion, network)
    delta = stitched.x_d - plain.x_d
    torch.testing.assert_close(delta[:, 1:, :2], torch.tensor([0.1, -0.2]).expand(2, 20, 2))
    torch.testing.assert_close(delta[:, 0, 0], torch.tensor([0.6, 0.6]))
    assert torch.all(delta[..., 2] == 0)


def test_relative_animation_without_driving_motion_reproduces_the_source():
    source, first = _info(seed=1), _info(seed=2)
    source.t[:, 2] = 0
    torch.testing.assert_close(relative_driving_keypoints(source, first, first), source_keypoints(source),
                               atol=1e-6, rtol=1e-5)


def test_relative_animation_transfers_changes_since_the_first_frame():
    source, first = _info(seed=1), _info(seed=2)
    driving = _info(seed=2, yaw=30.0)  # same face as `first`, turned by 30 degrees
    driving.scale = first.scale * 1.1
    driving.t = first.t + torch.tensor([[0.05, 0.0, 0.3]])
    x_d = relative_driving_keypoints(source, driving, first)
    moved = KeypointInfo(kp=source.kp, exp=source.exp, scale=source.scale * 1.1,
                         t=source.t + torch.tensor([[0.05, 0.0, 0.0]]), pitch=source.pitch, yaw=source.yaw + 30.0,
                         roll=source.roll)
    torch.testing.assert_close(x_d, source_keypoints(moved), atol=1e-5, rtol=1e-5)
