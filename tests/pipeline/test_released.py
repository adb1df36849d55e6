"""The released-models path (`--weights DIR`) end to end, on small random weights in the released layout."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest
import torch
from safetensors.torch import load_file
from transformers import HubertConfig

from moda.audio.hubert import HubertFrameEncoder
from moda.errors import MoDAError
from moda.generator.config import DiTConfig
from moda.generator.model import MotionGenerator
from moda.motion.stats import MotionStats
from moda.pipeline.weights import AUTHORS, download_released, packaged_stats, resolve_released
from moda.renderer.config import LivePortraitConfig
from moda.renderer.liveportrait import LivePortraitRenderer, export_liveportrait
from moda.renderer.loading import BASE_MODEL_FILES, CONFIG_FILE, STITCHING_FILE
from moda.samples import sample_path
from tests.helpers import golden_dir, liveportrait_golden_dir, randomize, write_driving_video


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
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert f"missing {tmp_path / 'moda' / 'net-200.pth'}" in run.stderr and "moda download" in run.stderr
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    run = subprocess.run([sys.executable, "-m", "moda", "download", "--out", str(tmp_path / "w")], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "lixinyizju/moda" in run.stderr and f"to {tmp_path / 'w'}" in run.stderr


@pytest.fixture(scope="module")
def authors_layout(tmp_path_factory):
    """The authors' pretrained_weights/ layout at the golden fixtures' small widths (no mean.pt: it is not in
    their weights repository)."""
    root = tmp_path_factory.mktemp("pretrained_weights")
    lp_golden, moda_golden = liveportrait_golden_dir(), golden_dir()
    first_stage = root / "decode" / "v1" / "first_stage"
    for relative in [*BASE_MODEL_FILES.values(), STITCHING_FILE]:
        (first_stage / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lp_golden / relative, first_stage / relative)
    params = json.loads((lp_golden / "model_params.json").read_text())["model_params"]
    LivePortraitConfig.from_model_params(params, 64).to_json(first_stage / CONFIG_FILE)
    dit_meta = json.loads((moda_golden / "dit_small.json").read_text())
    config = DiTConfig.from_kwargs(dit_meta["constructor_kwargs"])
    generator = MotionGenerator(config)
    generator.talking_head_dit.load_state_dict(load_file(moda_golden / "dit_small.safetensors"))
    (root / "moda").mkdir()
    torch.save(dict(generator.state_dict()), root / "moda" / "net-200.pth")
    (root / "moda" / "generator.json").write_text(json.dumps({"model": config.to_dict()}))
    audio_meta = json.loads((moda_golden / "audio_features.json").read_text())
    hubert = HubertFrameEncoder.from_config(HubertConfig(**audio_meta["config_full_json"]))
    hubert.model.load_state_dict(load_file(moda_golden / "audio_hubert_small.safetensors"))
    hubert.model.save_pretrained(root / "audio" / "chinese-hubert-base")
    return root


def test_the_authors_layout_is_detected_and_mean_pt_falls_back_to_the_package(authors_layout):
    files = resolve_released(authors_layout)
    assert files.layout == AUTHORS and files.stats == packaged_stats()
    assert files.liveportrait == authors_layout / "decode" / "v1" / "first_stage"
    released = load_file(golden_dir() / "mean_stats.safetensors")
    stats = MotionStats.load(files.stats)
    assert torch.equal(stats.mean, released["mean"]) and torch.equal(stats.std, released["std"])


def test_generate_and_reenact_run_on_the_authors_layout(authors_layout, tmp_path):
    out = tmp_path / "generated.mp4"
    run = subprocess.run([sys.executable, "-m", "moda", "generate", "--image", str(sample_path("portrait.jpg")),
                          "--audio", str(sample_path("speech.wav")), "--out", str(out), "--weights",
                          str(authors_layout), "--device", "cpu", "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    with av.open(str(out)) as container:
        assert abs(container.streams.video[0].frames - int(6.685 * 25)) <= 1
    driving = write_driving_video(tmp_path / "driving.mp4", frames=6)
    run = subprocess.run([sys.executable, "-m", "moda", "reenact", "--source", str(sample_path("portrait.jpg")),
                          "--driving", str(driving), "--out", str(tmp_path / "reenacted.mp4"), "--weights",
                          str(authors_layout), "--device", "cpu", "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    with av.open(str(tmp_path / "reenacted.mp4")) as container:
        assert container.streams.video[0].frames == 6


def test_an_incomplete_authors_folder_names_its_first_missing_file(authors_layout, tmp_path):
    partial = tmp_path / "pretrained_weights"
    shutil.copytree(authors_layout, partial)
    (partial / "decode" / "v1" / "first_stage" / "base_models" / "warping_module.pth").unlink()
    with pytest.raises(MoDAError, match="authors' pretrained_weights layout.*missing .*warping_module.pth"):
        resolve_released(partial)


def test_download_takes_only_what_the_pipeline_reads_and_fills_gaps_from_the_other_repositories(tmp_path, monkeypatch):
    """A hub repository that holds only the generator: LivePortrait and HuBERT come from their own repositories."""
    import huggingface_hub

    calls = {"snapshot": [], "file": []}

    def snapshot_download(repo_id, local_dir, allow_patterns):
        calls["snapshot"].append((repo_id, allow_patterns))
        target = Path(local_dir) / "moda" / "net-200.pth"
        target.parent.mkdir(parents=True)
        target.write_bytes(b"weights")
        return local_dir

    def hf_hub_download(repo_id, filename, local_dir):
        calls["file"].append((repo_id, filename))
        target = Path(local_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")
        return str(target)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    folder = download_released(tmp_path / "w")
    (repo, patterns), = calls["snapshot"]
    assert repo == "lixinyizju/moda" and "moda/net-200.pth" in patterns and "audio/chinese-hubert-base/*" in patterns
    assert all(not p.startswith("*") for p in patterns)  # nothing beyond what the pipeline reads
    assert {r for r, _ in calls["file"]} == {"KwaiVGI/LivePortrait", "TencentGameMate/chinese-hubert-base"}
    assert ("KwaiVGI/LivePortrait", "liveportrait/base_models/warping_module.pth") in calls["file"]
    assert (folder / "decode" / "v1" / "first_stage" / "base_models" / "warping_module.pth").is_file()
    assert (folder / "audio" / "chinese-hubert-base" / "config.json").is_file()
    assert not [p for p in folder.rglob("*") if p.is_dir() and p.name.startswith("tmp")]  # staging cleaned up
