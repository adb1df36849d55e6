import pytest
import torch

from moda.errors import MoDAError
from moda.shards import Clip, load_clip, save_clip, shard_paths


def test_clip_round_trip_and_validation(tmp_path):
    clip = Clip(torch.randn(30, 70), torch.randn(30, 4, 80), torch.randn(63), 5, "x.mp4")
    loaded = load_clip(save_clip(tmp_path / "x.clip.safetensors", clip))
    assert torch.equal(loaded.motion, clip.motion) and torch.equal(loaded.audio, clip.audio)
    assert (loaded.emotion, loaded.source) == (5, "x.mp4")
    with pytest.raises(ValueError, match="frames"):
        save_clip(tmp_path / "bad.clip.safetensors", Clip(torch.randn(30, 70), torch.randn(29, 4, 80), torch.randn(63)))
    assert not list(tmp_path.glob(".*partial"))
    with pytest.raises(MoDAError, match="moda preprocess"):
        shard_paths(tmp_path / "empty")
