import torch

from moda.motion.keypoints import LIP_ROWS, KeypointInfo
from moda.motion.postprocess import modulate_lip, silent_reference_index, source_prev_motion, split_motion
from moda.motion.stats import MotionStats


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
