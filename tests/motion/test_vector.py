import torch

from moda.motion.vector import (
    MOTION_DIM,
    HeadMotion,
    clip_to_generator_space,
    from_generator_space,
    rescale_ratio,
    to_generator_space,
)


def test_generator_space_matches_inference_prompt():
    motion = torch.randn(5, 70)
    motion[:, 63] = torch.tensor([2.0, 2.2, 1.8, 2.0, 2.1])
    out = clip_to_generator_space(motion, mean_scale=1.0)
    ratio = (2.0 + 1e-5) / (1.0 + 1e-5)
    torch.testing.assert_close(out[:, 63], motion[:, 63] / ratio)
    torch.testing.assert_close(out[:, 64:66], motion[:, 64:66] / ratio)
    assert torch.all(out[:, 66] == 0) and torch.equal(out[:, :63], motion[:, :63])


def test_head_motion_round_trips_the_vector_layout():
    motion = torch.randn(4, MOTION_DIM)
    parts = HeadMotion.from_vector(motion)
    assert parts.exp.shape == (4, 21, 3) and torch.equal(parts.exp[:, 1, 2], motion[:, 5])
    assert torch.equal(parts.scale[:, 0], motion[:, 63]) and torch.equal(parts.t, motion[:, 64:67])
    assert torch.equal(torch.cat([parts.pitch, parts.yaw, parts.roll], 1), motion[:, 67:70])
    assert torch.equal(parts.to_vector(), motion)
    assert torch.equal(parts[1:3].to_vector(), motion[1:3])


def test_generator_space_round_trip():
    motion = torch.randn(6, MOTION_DIM)
    ratio = rescale_ratio(torch.tensor([[1.7]]), torch.tensor([[1.2]]))
    there = to_generator_space(motion, ratio)
    assert torch.all(there[:, 66] == 0)
    back = from_generator_space(there, ratio)
    torch.testing.assert_close(back[:, 63:66], motion[:, 63:66])
    assert torch.equal(back[:, :63], motion[:, :63]) and torch.equal(back[:, 67:], motion[:, 67:])
