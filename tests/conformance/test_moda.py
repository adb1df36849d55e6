import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from moda.conformance.golden import run_all, run_fixture
from moda.generator.config import DiTConfig
from moda.generator.dit import TalkingHeadDiT
from tests.helpers import randomize


@pytest.fixture(scope="module")
def results(golden):
    return {r.name: r for r in run_all(golden)}


@pytest.mark.parametrize(
    "name", ["dit_small", "sampler_small", "longvideo_small", "postprocess", "audio_features", "keys:full_keys"]
)
def test_every_shared_fixture_passes(results, name):
    result = results[name]
    assert result.passed, result.summary()


def test_fixtures_hold_their_documented_tolerances(results):
    """1e-5 everywhere except DiT outputs and the source's head-pose degrees (see moda.conformance.moda); exact
    for schedules and noise."""
    for result in results.values():
        for label, (_, tolerance) in result.errors.items():
            assert tolerance in (0.0, 1e-5, 5e-5, 2e-4), label
            if tolerance == 5e-5:
                assert "pred" in label or result.name.startswith("dit"), label
            if tolerance == 2e-4:
                assert label in {"source_refined.pitch", "source_refined.yaw", "source_refined.roll"}, label
    assert results["sampler_small"].errors["prod_emo8_cfg1.2.output"][0] < 1e-5
    assert results["longvideo_small"].errors["T200.output"][0] < 1e-5
    assert results["longvideo_small"].errors["T200.window2.init_noise"][0] == 0.0


def test_a_perturbed_output_fails(golden, tmp_path):
    for path in golden.iterdir():
        shutil.copy(path, tmp_path / path.name)
    tensors = load_file(tmp_path / "postprocess.safetensors")
    tensors["x_d_after_stitching"] = tensors["x_d_after_stitching"] + 1e-3
    save_file(tensors, tmp_path / "postprocess.safetensors")
    result = run_fixture(tmp_path / "postprocess.json")
    assert not result.passed and result.failures == ["x_d_after_stitching"]
    assert "FAIL" in result.summary()


def test_fixture_of_another_width_and_seed_is_read_from_its_json(golden, tmp_path):
    """The checker builds models from the fixture's constructor kwargs, not from hard-coded sizes."""
    kwargs = {"input_dim": 140, "output_dim": 70, "seq_len": 80, "audio_unit_len": 1, "audio_blocks": 2,
              "audio_dim": 24, "audio_tokens": 1, "hidden_size": 48, "depth": 12, "num_heads": 3, "mlp_ratio": 4.0,
              "audio_embedder_type": "simple", "audio_cond_dim": 63}
    torch.manual_seed(99)
    model = randomize(TalkingHeadDiT(DiTConfig.from_kwargs(kwargs)), seed=99).eval()
    g = torch.Generator().manual_seed(98)
    io = {"input.motion": torch.randn(2, 80, 140, generator=g), "input.times": torch.tensor([889.0, 1.0]),
          "input.audio": torch.randn(2, 80, 1, 2, 24, generator=g), "input.emo": torch.tensor([0, 8]),
          "input.audio_cond": torch.randn(2, 80, 63, generator=g)}
    with torch.no_grad():
        io["output"] = model(*(io[k] for k in ("input.motion", "input.times", "input.audio", "input.emo", "input.audio_cond")))
    cos, sin = model.rope(80, torch.device("cpu"))
    io.update({"rope.cos": cos, "rope.sin": sin, "inter.final_layer": io["output"].clone()})
    save_file(model.state_dict(), tmp_path / "dit_w48.safetensors")
    save_file(io, tmp_path / "dit_w48_io.safetensors")
    meta = json.loads((golden / "dit_small.json").read_text())
    meta.update(constructor_kwargs=kwargs, weights_file="dit_w48.safetensors (ours)", io_file="dit_w48_io.safetensors")
    (tmp_path / "dit_w48.json").write_text(json.dumps(meta))
    result = run_fixture(tmp_path / "dit_w48.json")
    assert result.passed and result.errors["output"][0] == 0.0, result.summary()
    assert set(result.errors) == {"output", "rope.cos", "rope.sin", "inter.final_layer"}
