import pytest
import torch

from moda.generator.chaining import (
    ChainingConfig,
    MotionStream,
    audio_windows,
    blend_overlap,
    generate_motion,
    smooth_pose,
)
from moda.generator.model import MotionGenerator
from moda.generator.sampler import Guidance, sample_window
from tests.helpers import tiny_config


class RecordingDiT(torch.nn.Module):
    """Stand-in DiT whose prediction encodes which conditions it saw: audio mean + 10 * emotion id."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def forward(self, motion, times, audio, emo, audio_cond, motion_only_last_block=False):
        self.batches.append((audio.clone(), emo.clone()))
        value = audio.mean(dim=(1, 2, 3, 4)) + 10 * emo.float()
        return value.reshape(-1, 1, 1).expand(-1, motion.shape[1], 70)


def _window_inputs():
    return (torch.ones(1, 80, 1, 2, 8), torch.zeros(1, 63), torch.zeros(1, 1, 70), torch.tensor([4]),
            torch.zeros(1, 80, 70))


def _first_prediction(model, guidance):
    recorded = []
    sample_window(model, *_window_inputs(), guidance=guidance, on_step=recorded.append)
    return recorded[0].guided_prediction[0, 0, 0].item(), model.talking_head_dit.batches[0]


@pytest.fixture
def stub_model():
    model = MotionGenerator(tiny_config())
    model.null_audio_feat = torch.full((1, 1, 1, 2, 8), 0.5)
    model.talking_head_dit = RecordingDiT()
    return model


def test_joint_guidance_batches_uncond_then_cond(stub_model):
    pred, (audio, emo) = _first_prediction(stub_model, Guidance(audio=2.0))
    assert emo.tolist() == [8, 4]
    assert audio[0].unique().tolist() == [0.5] and audio[1].unique().tolist() == [1.0]
    uncond, cond = 0.5 + 80, 1.0 + 40
    assert pred == pytest.approx(uncond + 2.0 * (cond - uncond))


def test_scale_at_most_one_runs_the_conditional_branch_only(stub_model):
    pred, (audio, emo) = _first_prediction(stub_model, Guidance(audio=1.0))
    assert emo.tolist() == [4] and audio.shape[0] == 1
    assert pred == pytest.approx(41.0)


def test_separate_audio_and_emotion_guidance(stub_model):
    pred, (audio, emo) = _first_prediction(stub_model, Guidance(audio=1.5, emotion=3.0))
    assert emo.tolist() == [8, 8, 4]
    uncond, audio_only, full = 0.5 + 80, 1.0 + 80, 1.0 + 40
    assert pred == pytest.approx(uncond + 1.5 * (audio_only - uncond) + 3.0 * (full - audio_only))


def test_smooth_pose_averages_only_pose_dims_with_truncated_edges():
    motion = torch.arange(5 * 70, dtype=torch.float32).reshape(5, 70) ** 1.5
    smoothed = smooth_pose(motion)
    torch.testing.assert_close(smoothed[:, :63], motion[:, :63])
    torch.testing.assert_close(smoothed[2, 63:], motion[1:4, 63:].mean(0))
    torch.testing.assert_close(smoothed[0, 63:], motion[0:2, 63:].mean(0))
    torch.testing.assert_close(smoothed[4, 63:], motion[3:5, 63:].mean(0))


def test_blend_overlap_cross_fades_with_weights_k_over_overlap():
    previous, current = torch.zeros(1, 20, 70), torch.ones(1, 20, 70)
    blended = blend_overlap(previous, current, overlap=16)
    assert torch.equal(blended[0, :4], torch.zeros(4, 70))
    torch.testing.assert_close(blended[0, 4:, 0], torch.arange(16) / 16)


def test_audio_windows_gather_neighbouring_frames():
    audio = torch.arange(6, dtype=torch.float32).reshape(6, 1, 1)
    assert torch.equal(audio_windows(audio, 1)[:, 0], audio)
    wide = audio_windows(audio, 3)
    assert wide.shape == (6, 3, 1, 1)
    assert wide[0, :, 0, 0].tolist() == [0, 0, 1] and wide[5, :, 0, 0].tolist() == [4, 5, 0]


@pytest.mark.parametrize("frames,windows", [(1, 1), (80, 1), (81, 2), (144, 2), (145, 3), (200, 3)])
def test_chaining_window_count_and_padding(frames, windows):
    chaining = ChainingConfig()
    assert chaining.num_windows(frames) == windows
    assert 80 + 64 * (windows - 1) >= frames > 64 * (windows - 1) + 16 - (windows == 1) * 16


def test_generate_returns_one_motion_per_frame_reproducibly(tiny_generator):
    audio = torch.randn(150, 2, 8)
    args = (audio, torch.randn(1, 63), torch.zeros(1, 1, 70))
    first = generate_motion(tiny_generator, *args, rng=torch.Generator().manual_seed(7))
    again = generate_motion(tiny_generator, *args, rng=torch.Generator().manual_seed(7))
    other = generate_motion(tiny_generator, *args, rng=torch.Generator().manual_seed(8))
    assert first.shape == (150, 70) and first.dtype == torch.float32
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_generate_conditions_each_window_on_frame_63_of_the_previous(tiny_generator):
    windows = {}
    audio = torch.randn(144, 2, 8)
    generate_motion(tiny_generator, audio, torch.randn(1, 63), torch.zeros(1, 1, 70),
                    rng=torch.Generator().manual_seed(0),
                    on_window=lambda i, record: windows.__setitem__(i, record))
    assert sorted(windows) == [0, 1]
    assert torch.equal(windows[1]["prev_motion"], windows[0]["smoothed"][:, 63:64])
    assert torch.equal(windows[0]["audio"][0, :, 0], audio[:80])
    assert torch.equal(windows[1]["audio"][0, :, 0], audio[64:144])  # stride 64


def test_generate_rejects_empty_audio(tiny_generator):
    with pytest.raises(ValueError, match="no frames"):
        generate_motion(tiny_generator, torch.zeros(0, 2, 8), torch.zeros(1, 63), torch.zeros(1, 1, 70))


@pytest.mark.parametrize("frames", [30, 80, 144, 150, 231])
def test_streaming_equals_offline_generation(tiny_generator, frames):
    audio = torch.randn(frames, 2, 8, generator=torch.Generator().manual_seed(frames))
    args = (torch.randn(1, 63, generator=torch.Generator().manual_seed(1)), torch.zeros(1, 1, 70))
    offline = generate_motion(tiny_generator, audio, *args, rng=torch.Generator().manual_seed(4))
    stream = MotionStream(tiny_generator, *args, rng=torch.Generator().manual_seed(4))
    pieces, start = [], 0
    for size in [7, 33, 1, 60, 25] * 20:
        if start >= frames:
            break
        pieces.append(stream.push(audio[start : start + size]))
        start += size
    pieces.append(stream.finish())
    assert torch.equal(torch.cat(pieces), offline)


def test_streaming_latency_is_one_window(tiny_generator):
    stream = MotionStream(tiny_generator, torch.zeros(1, 63), torch.zeros(1, 1, 70))
    assert stream.push(torch.randn(79, 2, 8)).shape[0] == 0  # not a full window yet
    assert stream.push(torch.randn(1, 2, 8)).shape[0] == 63  # 80 frames in: 63 final frames out
    assert stream.push(torch.randn(64, 2, 8)).shape[0] == 64
    assert stream.finish().shape[0] == 144 - 127
