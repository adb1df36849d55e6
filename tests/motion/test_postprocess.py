import torch

from moda.motion.keypoints import HeadMotion, KeypointInfo
from moda.motion.postprocess import (
    DRIVEN_ROWS,
    LIP_ROWS,
    EyeOffsets,
    driving_keypoints,
    modulate_lip,
    silent_reference_index,
    source_prev_motion,
    split_motion,
    transfer_expression,
)
from moda.motion.stats import MotionStats
from moda.renderer.stitching import STITCHING, StitchingRetargetingNetwork


def _source() -> KeypointInfo:
    g = torch.Generator().manual_seed(0)
    return KeypointInfo(kp=torch.randn(1, 21, 3, generator=g), exp=0.01 * torch.randn(1, 21, 3, generator=g),
                        scale=torch.tensor([[1.4]]), t=torch.tensor([[0.02, -0.05, 0.3]]),
                        pitch=torch.tensor([[5.0]]), yaw=torch.tensor([[-10.0]]), roll=torch.tensor([[2.0]]))


def _stats() -> MotionStats:
    g = torch.Generator().manual_seed(1)
    std = torch.rand(1, 70, generator=g) + 0.1
    std[0, 66] = 0  # tz never varies
    mean = torch.randn(1, 70, generator=g)
    mean[0, 63] = 1.2
    return MotionStats(mean, std)


def test_prev_motion_round_trips_through_split_motion():
    """The source as a motion prompt, de-normalised and split again, gives back the source's values."""
    source, stats = _source(), _stats()
    prev, ratio = source_prev_motion(source, stats)
    torch.testing.assert_close(ratio, (1.4 + 1e-5) / (1.2 + 1e-5) * torch.ones(1, 1))
    motion = split_motion(prev[0], stats, ratio)
    torch.testing.assert_close(motion.exp, source.exp, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(motion.scale, source.scale, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(motion.t[:, :2], source.t[:, :2], atol=1e-6, rtol=1e-5)
    assert abs(motion.t[0, 2].item()) < 1e-4  # tz was zeroed
    torch.testing.assert_close(motion.yaw, source.yaw)


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


def test_lip_modulation_scales_lip_deltas_only():
    motion = torch.randn(10, 70)
    result = modulate_lip(motion, reference_index=3)
    torch.testing.assert_close(result.motion[3], motion[3])
    exp, new = motion[:, :63].reshape(10, 21, 3), result.motion[:, :63].reshape(10, 21, 3)
    other = [r for r in range(21) if r not in LIP_ROWS]
    assert torch.equal(new[:, other], exp[:, other]) and torch.equal(result.motion[:, 63:], motion[:, 63:])
    expected = exp[3, LIP_ROWS] + (exp[:, LIP_ROWS] - exp[3, LIP_ROWS]) * (1 + result.weight[:, :, None])
    torch.testing.assert_close(new[:, LIP_ROWS], expected)
    assert torch.all(result.weight >= 0) and result.weight[3].item() == 0
    assert silent_reference_index(120, 50) == 83


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
