import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from moda.audio.speech import FEATURE_DIM
from moda.generator.config import DiTConfig
from moda.generator.model import MotionGenerator
from tests.helpers import randomize


def write_model(model_dir):
    model_dir.mkdir()
    config = DiTConfig(hidden_size=32, num_heads=2, audio_blocks=4, audio_dim=FEATURE_DIM, four_stream_blocks=1,
                       two_stream_blocks=1, single_stream_blocks=1)
    torch.manual_seed(0)
    generator = randomize(MotionGenerator(config))
    null = torch.zeros(1, 1, 1, 1, FEATURE_DIM)
    save_file({**generator.state_dict(), "null_audio_feat": null}, model_dir / "generator.safetensors")
    (model_dir / "generator.json").write_text(json.dumps({"model": config.to_dict()}))
    save_file({"mean": torch.zeros(1, 70), "std": torch.full((1, 70), 0.05)}, model_dir / "stats.safetensors")
    return model_dir


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    assert subprocess.run([sys.executable, "-m", "moda", "synthesize-corpus", "--out", str(corpus), "--clips", "2",
                           "--heldout", "3", "--quiet"], capture_output=True).returncode == 0
    return corpus


def test_eval_command_writes_report_and_plots(tmp_path, corpus):
    model_dir = write_model(tmp_path / "model")
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1 / s}) + "\n" for s in range(1, 5)))
    run = subprocess.run([sys.executable, "-m", "moda", "eval", "--generator", str(model_dir), "--heldout",
                          str(corpus / "heldout"), "--out", str(tmp_path / "report"), "--metrics-log",
                          str(tmp_path / "metrics.jsonl"), "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["summary"]["clips"] == 3 and len(report["per_clip"]) == 3
    for key in ("lip_sync_corr", "shuffled_audio_corr", "lmd_mouth", "jerk", "pose_std_deg"):
        assert key in report["summary"] and -1e9 < report["summary"][key] < 1e9
    for plot in ("mouth_opening.png", "loss_curve.png"):
        assert (tmp_path / "report" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lip_sync_corr" in run.stdout


def test_eval_on_two_ranks_gathers_the_single_process_result(tmp_path, corpus):
    import os

    model_dir = write_model(tmp_path / "model")
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun's per-worker default, for bitwise equality
    reports = {}
    for processes in (1, 2):
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
                    if processes == 2 else [sys.executable])
        run = subprocess.run([*launcher, "-m", "moda", "eval", "--generator", str(model_dir), "--heldout",
                              str(corpus / "heldout"), "--out", str(tmp_path / f"report{processes}"), "--quiet"],
                             capture_output=True, text=True, env=one_thread)
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.count("wrote ") == 1  # one report, from rank 0
        reports[processes] = json.loads((tmp_path / f"report{processes}" / "report.json").read_text())
    assert reports[2] == reports[1] and reports[2]["summary"]["clips"] == 3
