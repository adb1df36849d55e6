import pytest
import torch

from moda.errors import MoDAError
from moda.motion.landmark_space import neutral_prompt
from moda.motion.stats import MotionStats
from moda.shards import Clip, load_clip, save_clip, shard_paths
from moda.training.windows import WindowSampler, corpus_stats


def write_corpus(folder, clips=3, frames=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    for i in range(clips):
        motion = torch.randn(frames + 10 * i, 70, generator=g)
        motion[:, 63] = 1.5 + 0.1 * torch.rand(frames + 10 * i, generator=g)  # positive scale
        save_clip(folder / f"c{i}.clip.safetensors",
                  Clip(motion, torch.randn(frames + 10 * i, 2, 8, generator=g), torch.randn(63, generator=g), i, f"v{i}.mp4"))
    return shard_paths(folder)


def test_corpus_stats_and_windows(tmp_path):
    paths = write_corpus(tmp_path)
    stats = corpus_stats(paths)
    assert stats.mean.shape == (1, 70) and stats.std[0, 66] == 0
    sampler = WindowSampler(paths, stats, window=80)
    a = sampler.batch(6, torch.Generator().manual_seed(1))
    b = sampler.batch(6, torch.Generator().manual_seed(1))
    assert torch.equal(a.motion, b.motion) and torch.equal(a.audio, b.audio)
    assert a.motion.shape == (6, 80, 70) and a.prev_motion.shape == (6, 1, 70) and a.audio.shape == (6, 80, 1, 2, 8)
    assert a.emo.tolist() and set(a.emo.tolist()) <= {0, 1, 2} and a.ref_kp.shape == (6, 63)


def test_windows_keep_motion_prompt_and_audio_aligned(tmp_path):
    """Frame indices written into motion and audio come back consistent in every sampled window."""
    for i, frames in enumerate((120, 95)):
        motion = torch.zeros(frames, 70)
        motion[:, 0] = torch.arange(frames, dtype=torch.float32)
        motion[:, 63] = 1.0
        audio = torch.arange(frames, dtype=torch.float32).reshape(-1, 1, 1).expand(-1, 2, 8).clone()
        save_clip(tmp_path / f"i{i}.clip.safetensors", Clip(motion, audio, torch.zeros(63)))
    paths = shard_paths(tmp_path)
    stats = corpus_stats(paths)
    sampler = WindowSampler(paths, stats, window=80)
    batch = sampler.batch(16, torch.Generator().manual_seed(3))
    index = stats.denormalize(batch.motion)[..., 0].round()
    prompt = stats.denormalize(batch.prev_motion)[..., 0].round()
    assert torch.equal(index, batch.audio[:, :, 0, 0, 0])
    assert torch.equal(prompt[:, 0], index[:, 0] - 1) and torch.all(index[:, 0] >= 1)
    assert torch.equal(index.diff(dim=1), torch.ones(16, 79))


def test_wide_audio_windows_are_zero_padded_at_clip_edges(tmp_path):
    paths = write_corpus(tmp_path, clips=1, frames=82)
    sampler = WindowSampler(paths, corpus_stats(paths), window=80, audio_unit_len=3)
    audio = load_clip(paths[0]).audio
    window = sampler._audio(0, 1)
    assert window.shape == (80, 3, 2, 8)
    assert torch.equal(window[0, 0], audio[0]) and torch.equal(window[0, 1], audio[1])
    last = sampler._audio(0, 2)
    assert torch.equal(last[-1, 2], torch.zeros(2, 8))  # frame 82 is past the end


def test_short_clips_are_rejected(tmp_path):
    paths = write_corpus(tmp_path, clips=1, frames=50)
    with pytest.raises(MoDAError, match="longer than"):
        WindowSampler(paths, MotionStats(torch.zeros(1, 70), torch.ones(1, 70)), window=80)


def test_rest_prompt_share_replaces_the_prompt_by_the_rest_pose(tmp_path):
    """A share of windows starts from the rest pose, as a clip's first window is generated; 0 keeps every prompt."""
    paths = write_corpus(tmp_path)
    stats = corpus_stats(paths)
    rest = neutral_prompt(stats).reshape(1, 70)
    rng = torch.Generator().manual_seed(0)
    never = WindowSampler(paths, stats, window=80).batch(32, rng).prev_motion
    always = WindowSampler(paths, stats, window=80, rest_prompt_share=1.0).batch(32, rng).prev_motion
    some = WindowSampler(paths, stats, window=80, rest_prompt_share=0.5).batch(64, rng).prev_motion
    is_rest = lambda prompts: torch.all(prompts == rest, dim=-1)[:, 0]  # noqa: E731
    assert not is_rest(never).any() and is_rest(always).all()
    assert 10 < int(is_rest(some).sum()) < 54
