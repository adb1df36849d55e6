import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from moda.conformance.golden import run_all, run_fixture
from moda.conformance.liveportrait import load_renderer
from moda.renderer.config import LivePortraitConfig
from moda.renderer.liveportrait import LivePortraitRenderer, export_liveportrait
from tests.helpers import liveportrait_golden_dir, randomize

FIXTURES = ["appearance_feature_extractor", "motion_extractor", "keypoint_math", "stitching_retargeting",
            "warping_network", "spade_generator", "warp_decode", "pipeline_animate", "crop_paste"]
# §6 of the fixtures' README: network-input equality is exact by construction (uint8 / 255)
TOLERANCES = {0.0, 1e-5, 2e-4, 2e-5, 1e-4, 5e-4, 1 / 255, 2e-3, 1e-6, 1.0}


@pytest.fixture(scope="module")
def lp_golden():
    directory = liveportrait_golden_dir()
    if not (directory / "model_params.json").is_file():
        pytest.fail(f"LivePortrait fixtures not found in {directory}; set MODA_LIVEPORTRAIT_GOLDEN_DIR")
    return directory


@pytest.fixture(scope="module")
def results(lp_golden):
    return {r.name: r for r in run_all(lp_golden)}


@pytest.mark.parametrize("name", FIXTURES)
def test_every_liveportrait_fixture_passes(results, name):
    result = results[name]
    assert result.passed, result.summary()


def test_every_reference_tensor_is_compared(results, lp_golden):
    for name in FIXTURES:
        manifest = json.loads((lp_golden / f"{name}.json").read_text())["tensor_manifest"]
        expected = {k for k in manifest if not k.startswith("input.")} - {"driving.frame1_image",
                                                                            "driving.frame_model_output"}
        assert expected <= set(results[name].errors), sorted(expected - set(results[name].errors))
        assert {tol for _, tol in results[name].errors.values()} <= TOLERANCES


def test_a_perturbed_frame_fails(lp_golden, tmp_path):
    for path in lp_golden.rglob("*"):
        if path.is_file():
            target = tmp_path / path.relative_to(lp_golden)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    tensors = load_file(tmp_path / "pipeline_animate.safetensors")
    tensors["frame.x_d_final"] = tensors["frame.x_d_final"] + 1e-3
    save_file(tensors, tmp_path / "pipeline_animate.safetensors")
    result = run_fixture(tmp_path / "pipeline_animate.json")
    assert not result.passed and result.failures == ["frame.x_d_final"]


def test_released_model_params_give_the_released_config():
    released = {
        "appearance_feature_extractor_params": {"image_channel": 3, "block_expansion": 64, "num_down_blocks": 2,
                                                "max_features": 512, "reshape_channel": 32, "reshape_depth": 16,
                                                "num_resblocks": 6},
        "motion_extractor_params": {"num_kp": 21, "backbone": "convnextv2_tiny"},
        "warping_module_params": {"num_kp": 21, "block_expansion": 64, "max_features": 512, "num_down_blocks": 2,
                                  "reshape_channel": 32, "estimate_occlusion_map": True,
                                  "dense_motion_params": {"block_expansion": 32, "max_features": 1024,
                                                          "num_blocks": 5, "reshape_depth": 16, "compress": 4}},
        "spade_generator_params": {"upscale": 2, "block_expansion": 64, "max_features": 512, "num_down_blocks": 2},
    }
    assert LivePortraitConfig.from_model_params(released) == LivePortraitConfig()


def test_fixture_widths_come_from_model_params(lp_golden, tmp_path):
    """Another width: the checker builds the networks from the folder's model_params.json, not fixed sizes."""
    params = json.loads((lp_golden / "model_params.json").read_text())
    params["model_params"]["appearance_feature_extractor_params"].update(block_expansion=4)
    (tmp_path / "model_params.json").write_text(json.dumps(params))
    (tmp_path / "weights.json").write_text(json.dumps({"image_size": 64}))
    config = LivePortraitConfig.from_model_params(params["model_params"], 64)
    torch.manual_seed(5)
    export_liveportrait(randomize(LivePortraitRenderer(config), seed=5, std=0.02).eval(), tmp_path)
    renderer = load_renderer(str(tmp_path))
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    tensors = {"input.image_uint8": (image * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()}
    tensors["input.I"] = (tensors["input.image_uint8"].permute(0, 3, 1, 2).float() / 255).contiguous()
    network = renderer.appearance_feature_extractor
    with torch.no_grad():
        tensors["output.f_s"] = network(tensors["input.I"])
        tensors["intermediate.down_blocks.1"] = network.down_blocks[1](network.down_blocks[0](network.first(tensors["input.I"])))
        tensors["intermediate.second"] = network.second(tensors["intermediate.down_blocks.1"])
        tensors["intermediate.resblocks_3d.3dr0"] = torch.zeros(1)  # a wrong value: this one must fail
    save_file(tensors, tmp_path / "appearance_feature_extractor.safetensors")
    meta = json.loads((lp_golden / "appearance_feature_extractor.json").read_text())
    (tmp_path / "appearance_feature_extractor.json").write_text(json.dumps(meta))
    result = run_fixture(tmp_path / "appearance_feature_extractor.json")
    assert result.errors["output.f_s"][0] == 0.0 and result.errors["intermediate.second"][0] == 0.0
    assert not result.passed  # the wrong intermediate is caught (its shape differs)
