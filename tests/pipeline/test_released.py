"""The released-models path (`--weights DIR`) end to end, on small random weights in the released layout."""

import json
import os
import subprocess
import sys

import av
import pytest
import torch
from transformers import HubertConfig

from moda.audio.hubert import HubertFrameEncoder
from moda.generator.config import DiTConfig
from moda.generator.model import MotionGenerator
from moda.renderer.config import LivePortraitConfig
from moda.renderer.liveportrait import LivePortraitRenderer, export_liveportrait
from moda.samples import sample_path
from tests.helpers import randomize


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """moda/net-200.pth + mean.pt, chinese-hubert-base/, liveportrait/: the layout `moda download` writes."""
    root = tmp_path_factory.mktemp("weights")
    (root / "moda").mkdir()
    torch.manual_seed(0)
    config = DiTConfig(hidden_size=32, num_heads=2, audio_blocks=2, audio_dim=16, four_stream_blocks=1,
                       two_stream_blocks=1, single_stream_blocks=1)
    generator = randomize(MotionGenerator(config), std=0.05)
    torch.save(dict(generator.state_dict()), root / "moda" / "net-200.pth")  # a plain dict, as released
    (root / "moda" / "generator.json").write_text(json.dumps({"model": config.to_dict()}))
    std = torch.full((1, 70), 0.01)
    std[0, 66] = 0
    mean = torch.zeros(1, 70)
    mean[0, 63] = 1.5
    torch.save({"mean": mean, "std": std}, root / "moda" / "mean.pt")
    hubert = HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                          conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    HubertFrameEncoder.from_config(hubert).model.save_pretrained(root / "chinese-hubert-base")
    export_liveportrait(LivePortraitRenderer(LivePortraitConfig.tiny()), root / "liveportrait")
    return root


def test_generate_with_released_layout_weights(weights, tmp_path):
    out = tmp_path / "released.mp4"
    run = subprocess.run([sys.executable, "-m", "moda", "generate", "--image", str(sample_path("portrait.jpg")),
                          "--audio", str(sample_path("speech.wav")), "--out", str(out), "--weights", str(weights),
                          "--emotion", "sad", "--device", "cpu", "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert container.streams.audio[0].codec_context.name == "aac"
    speech_frames = int(6.685 * 25)
    assert abs(len(frames) - speech_frames) <= 1 and frames[0].shape == (512, 512, 3)  # the silent tail is trimmed


def test_incomplete_weights_folder_and_offline_download(tmp_path):
    run = subprocess.run([sys.executable, "-m", "moda", "generate", "--image", str(sample_path("portrait.jpg")),
                          "--audio", str(sample_path("speech.wav")), "--out", str(tmp_path / "x.mp4"),
                          "--weights", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 2 and "weights folder incomplete" in run.stderr and "moda download" in run.stderr
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    run = subprocess.run([sys.executable, "-m", "moda", "download", "--out", str(tmp_path / "w")], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 2 and "when offline, copy it to" in run.stderr and str(tmp_path / "w" / "moda") in run.stderr
