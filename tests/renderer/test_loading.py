import os
import subprocess
import sys

import pytest
import torch

from moda.errors import MoDAError
from moda.renderer.config import LivePortraitConfig
from moda.renderer.liveportrait import LivePortraitRenderer, export_liveportrait
from moda.renderer.loading import BASE_MODEL_FILES, STITCHING_FILE, resolve_liveportrait


@pytest.fixture
def exported(tmp_path):
    torch.manual_seed(3)
    renderer = LivePortraitRenderer(LivePortraitConfig.tiny()).eval()
    return renderer, export_liveportrait(renderer, tmp_path / "liveportrait")


def test_released_file_layout_round_trips(exported):
    renderer, directory = exported
    spade = torch.load(directory / BASE_MODEL_FILES["spade"], weights_only=True)
    assert "up_0.conv_s.weight_orig" in spade and "up_0.conv_s.weight" not in spade  # spectral-norm layout
    stitching = torch.load(directory / STITCHING_FILE, weights_only=True)
    assert set(stitching) == {"retarget_shoulder", "retarget_mouth", "retarget_eye"}
    assert all(k.startswith("module.mlp.") for k in stitching["retarget_shoulder"])
    loaded = LivePortraitRenderer.from_pretrained(directory)
    assert loaded.config == renderer.config and not loaded.training
    for (key, a), b in zip(renderer.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a.float(), b.float(), atol=1e-6, rtol=1e-5, msg=key)


def test_without_stitching_file_stitching_is_disabled(exported):
    _, directory = exported
    (directory / STITCHING_FILE).unlink()
    assert LivePortraitRenderer.from_pretrained(directory).stitching is None


def test_mismatched_or_missing_files_are_clear_errors(exported):
    _, directory = exported
    with pytest.raises(MoDAError, match="does not match"):
        LivePortraitRenderer.from_pretrained(directory, LivePortraitConfig())  # released widths, tiny files
    (directory / BASE_MODEL_FILES["warping"]).unlink()
    with pytest.raises(MoDAError, match="missing base_models/warping_module.pth"):
        resolve_liveportrait(directory)


def test_offline_without_weights_names_where_to_put_them(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = "from moda.renderer.loading import resolve_liveportrait; resolve_liveportrait(None)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode != 0
    assert "WeightsNotFoundError" in run.stderr and "when offline, copy it to" in run.stderr
    assert str(tmp_path / ".cache" / "moda" / "weights") in run.stderr
