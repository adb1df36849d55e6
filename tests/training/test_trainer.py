import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from moda.errors import MoDAError
from moda.generator.checkpoint import load_motion_generator
from moda.generator.config import DiTConfig
from moda.shards import Clip, save_clip
from moda.training.config import TrainConfig

MODEL = """
[model]
hidden_size = 48
num_heads = 2
audio_blocks = 2
audio_dim = 8
four_stream_blocks = 1
two_stream_blocks = 1
single_stream_blocks = 1
"""


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Motion that follows the audio: the model can learn it, so the loss falls."""
    folder = tmp_path_factory.mktemp("shards")
    g = torch.Generator().manual_seed(0)
    for i in range(4):
        frames = 150
        audio = torch.randn(frames, 2, 8, generator=g)
        motion = torch.zeros(frames, 70)
        motion[:, :63] = audio.reshape(frames, -1)[:, :1].expand(-1, 63) * 0.5  # mouth follows the audio
        motion[:, 63] = 1.5
        motion[:, 67:] = torch.cumsum(0.1 * torch.randn(frames, 3, generator=g), dim=0)  # head motion
        save_clip(folder / f"c{i}.clip.safetensors", Clip(motion, audio, torch.randn(63, generator=g), i % 2))
    return folder


def write_config(path, shards, output, **values):
    lines = [f'shards = "{shards}"', f'output = "{output}"', "batch_size = 4", "log_every = 1",
             "checkpoint_every = 2", "warmup_steps = 2", "learning_rate = 2e-3", "ema_decay = 0.9"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n" + MODEL)
    return path


def moda(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "moda", *args], capture_output=True, text=True, **kwargs)


def losses(output):
    return [json.loads(line)["loss"] for line in (output / "metrics.jsonl").read_text().splitlines()]


def test_training_learns_and_exports_a_loadable_generator(tmp_path, shards):
    config = write_config(tmp_path / "run.toml", shards, tmp_path / "run", steps=60, bf16=True)
    run = moda("train", "--config", str(config), "--quiet")
    assert run.returncode == 0, run.stderr
    curve = losses(tmp_path / "run")
    assert len(curve) == 60 and sum(curve[-10:]) < 0.8 * sum(curve[:10])
    generator = load_motion_generator(tmp_path / "run" / "generator.safetensors",
                                      DiTConfig(**json.loads((tmp_path / "run" / "generator.json").read_text())["model"]))
    exported = load_file(tmp_path / "run" / "generator.safetensors")
    assert torch.equal(generator.null_audio_feat[0, 0, 0, 0], exported["null_audio_feat"].reshape(-1))
    assert (tmp_path / "run" / "tensorboard").is_dir() and (tmp_path / "run" / "stats.safetensors").is_file()
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*")) == [
        "step_00000056", "step_00000058", "step_00000060"]


def test_killed_run_resumes_to_the_same_result(tmp_path, shards):
    straight = write_config(tmp_path / "a.toml", shards, tmp_path / "a", steps=40)
    assert moda("train", "--config", str(straight), "--quiet").returncode == 0

    resumed = write_config(tmp_path / "b.toml", shards, tmp_path / "b", steps=40)
    process = subprocess.Popen([sys.executable, "-m", "moda", "train", "--config", str(resumed), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (tmp_path / "b" / "checkpoints" / "step_00000004").exists() and time.time() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "b" / "generator.safetensors").exists(), "the run finished before it was killed"
    run = moda("train", "--config", str(resumed), "--quiet")
    assert run.returncode == 0, run.stderr

    assert losses(tmp_path / "b") == losses(tmp_path / "a")
    a, b = load_file(tmp_path / "a" / "generator.safetensors"), load_file(tmp_path / "b" / "generator.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((tmp_path / "b" / "checkpoints").glob(".partial-*"))


def test_ddp_with_two_processes_on_gloo(tmp_path, shards):
    config = write_config(tmp_path / "ddp.toml", shards, tmp_path / "ddp", steps=6)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "moda", "train", "--config", str(config), "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(r["world_size"] == 2 for r in records)
    assert run.stdout.count("wrote") == 1  # only rank 0 reports and writes
    single = write_config(tmp_path / "one.toml", shards, tmp_path / "one", steps=6)
    assert moda("train", "--config", str(single), "--quiet").returncode == 0
    # the all-reduced loss covers both ranks' batches, so it differs from the single process's
    assert losses(tmp_path / "ddp") != losses(tmp_path / "one")


def test_config_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('shards = "x"\noutput = "y"\nlearning_rat = 1\n')
    with pytest.raises(MoDAError, match="bad.toml: unknown key learning_rat; known keys: .*learning_rate"):
        TrainConfig.from_toml(bad)
    bad.write_text('shards = "x"\noutput = "y"\n[model]\nwidth = 3\n')
    with pytest.raises(MoDAError, match="bad.toml: unknown key model.width"):
        TrainConfig.from_toml(bad)
    bad.write_text('shards = "x"\noutput = "y"\nsteps = "many"\n')
    with pytest.raises(MoDAError, match="bad.toml: steps = 'many' must be of type int"):
        TrainConfig.from_toml(bad)
    bad.write_text('shards = "x"\noutput = "y"\ntimestep_distribution = "cosine"\n')
    with pytest.raises(MoDAError, match="timestep_distribution = 'cosine' is not one of 'uniform', 'logit_normal'"):
        TrainConfig.from_toml(bad)
    bad.write_text('output = "y"\n')
    with pytest.raises(MoDAError, match="bad.toml: missing key shards"):
        TrainConfig.from_toml(bad)
    bad.write_text("shards = \n")
    with pytest.raises(MoDAError, match="not valid TOML"):
        TrainConfig.from_toml(bad)
    config = TrainConfig.from_toml(write_config(tmp_path / "ok.toml", "s", "o", steps=3), steps=9)
    assert config.steps == 9 and config.model.hidden_size == 48 and config.betas == (0.9, 0.999)
