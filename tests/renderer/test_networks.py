import re
from pathlib import Path

import pytest
import torch

from moda.renderer.blocks import make_coordinate_grid
from moda.renderer.config import LivePortraitConfig
from moda.renderer.liveportrait import LivePortraitRenderer
from moda.renderer.loading import fold_spectral_norm, load_into
from moda.renderer.warping import keypoint_gaussians

SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "liveportrait_state_dict_keys.tsv"
SECTIONS = {"appearance_feature_extractor": "appearance_feature_extractor", "motion_extractor": "motion_extractor",
            "warping_module": "warping_module", "spade_generator": "spade_generator", "stitching": "stitching",
            "lip": "lip_retargeting", "eye": "eye_retargeting"}
PARAMS = {"appearance_feature_extractor": 836_224, "motion_extractor": 28_118_728, "warping_module": 45_529_829,
          "spade_generator": 55_365_388, "stitching": 45_249, "lip": 37_311, "eye": 144_703}


def released_layout() -> dict[str, dict[str, list[int]]]:
    if not SPEC.is_file():
        pytest.fail(f"LivePortrait key list not found at {SPEC}")
    sections: dict[str, dict[str, list[int]]] = {}
    current = None
    for line in SPEC.read_text().splitlines():
        if line.startswith("### "):
            current = line[4:].split()[0]
            sections[current] = {}
        elif current and "\t" in line:
            key, shape, _ = line.split("\t")
            sections[current][key] = [int(n) for n in re.findall(r"\d+", shape)]
    return sections


@pytest.fixture(scope="module")
def production() -> LivePortraitRenderer:
    return LivePortraitRenderer().eval()


@pytest.mark.parametrize("section", list(SECTIONS))
def test_production_networks_load_the_released_layout_strictly(production, section):
    """A state dict with exactly the released keys and shapes loads strictly (G after spectral-norm folding)."""
    layout = released_layout()[section]
    state = {k: torch.randn(shape) if shape else torch.tensor(0) for k, shape in layout.items()}
    module = getattr(production, SECTIONS[section])
    if section == "spade_generator":
        assert any(k.endswith("weight_orig") for k in state)
        state = fold_spectral_norm(state)
    load_into(module, state, section)
    parameters = sum(p.numel() for p in module.parameters())
    assert parameters == PARAMS[section]


def test_spectral_norm_folding_matches_torch_spectral_norm():
    conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(6, 5, 3))
    for _ in range(3):
        conv(torch.randn(1, 6, 8, 8))  # power iterations in training mode update u, v
    conv.eval()
    x = torch.randn(1, 6, 8, 8)
    expected = conv(x)
    folded = fold_spectral_norm({k: v.detach() for k, v in conv.state_dict().items()})
    plain = torch.nn.Conv2d(6, 5, 3)
    plain.load_state_dict(folded)
    torch.testing.assert_close(plain(x), expected)


@pytest.fixture(scope="module")
def tiny() -> LivePortraitRenderer:
    torch.manual_seed(0)
    renderer = LivePortraitRenderer(LivePortraitConfig.tiny())
    with torch.no_grad():
        for module in renderer.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return renderer.eval()


def test_tiny_networks_shapes_ranges_and_determinism(tiny):
    config = tiny.config
    image = torch.rand(2, 3, config.image_size, config.image_size, generator=torch.Generator().manual_seed(1))
    features = tiny.source_features(image)
    assert features.shape == (2, config.appearance.reshape_channel, config.appearance.reshape_depth,
                              config.image_size // 4, config.image_size // 4)
    raw = tiny.motion_extractor(image)
    assert {k: tuple(v.shape) for k, v in raw.items()} == {
        "pitch": (2, 66), "yaw": (2, 66), "roll": (2, 66), "t": (2, 3), "exp": (2, 63), "scale": (2, 1), "kp": (2, 63)}
    info = tiny.keypoint_info(image)
    assert info.kp.shape == (2, 21, 3) and torch.all(info.yaw.abs() <= 97.5)
    x_s = torch.rand(2, 21, 3) * 2 - 1
    with torch.no_grad():
        warped = tiny.warping_module(features, kp_source=x_s, kp_driving=x_s + 0.05)
    size = config.image_size // 4
    assert warped["out"].shape == (2, 4 * config.warping.block_expansion, size, size)
    assert warped["deformation"].shape == (2, config.warping.dense_motion.reshape_depth, size, size, 3)
    occlusion = warped["occlusion_map"]
    assert occlusion.shape == (2, 1, size, size) and torch.all((occlusion > 0) & (occlusion < 1))
    frames = tiny.render(features, x_s, x_s + 0.05)
    assert frames.shape == (2, 3, config.output_size, config.output_size)
    assert torch.all((frames >= 0) & (frames <= 1)) and frames.std() > 0
    torch.testing.assert_close(tiny.render(features, x_s, x_s + 0.05), frames, rtol=0, atol=0)
    # the source features broadcast over a batch of driving keypoints
    single = tiny.render(features[:1], x_s[:1], torch.cat([x_s[:1], x_s[:1] + 0.05]))
    torch.testing.assert_close(single[1], tiny.render(features[:1], x_s[:1], x_s[:1] + 0.05)[0], atol=1e-5, rtol=1e-5)


def test_no_motion_gives_the_identity_deformation(tiny):
    """With driving == source keypoints every sparse motion is the identity grid, so the blend is too."""
    features = torch.randn(1, 4, 8, 16, 16)
    x = torch.rand(1, 21, 3) * 2 - 1
    with torch.no_grad():
        dense = tiny.warping_module.dense_motion_network(features, x, x)
    torch.testing.assert_close(dense["deformation"][0], make_coordinate_grid(8, 16, 16, torch.float32, torch.device("cpu")),
                               atol=1e-5, rtol=0)


def test_keypoint_gaussian_peaks_at_the_keypoint():
    grid = make_coordinate_grid(5, 9, 9, torch.float32, torch.device("cpu"))
    keypoint = torch.tensor([[[0.5, -0.25, 0.0]]])  # grid point x index 6, y index 3, z index 2
    heat = keypoint_gaussians(keypoint, grid)[0, 0]
    assert heat[2, 3, 6].item() == pytest.approx(1.0)
    assert heat.argmax().item() == (2 * 9 + 3) * 9 + 6
    neighbour = torch.exp(torch.tensor(-0.5 * 0.25**2 / 0.01)).item()  # one x step = 0.25
    assert heat[2, 3, 7].item() == pytest.approx(neighbour, rel=1e-5)


def test_optimized_inference_stays_close_to_fp32():
    torch.manual_seed(0)
    renderer = LivePortraitRenderer(LivePortraitConfig.tiny()).eval()
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    features = renderer.source_features(image)
    x_s = torch.rand(1, 21, 3) - 0.5
    reference = renderer.render(features, x_s, x_s + 0.03)
    renderer.optimize_for_inference(torch.bfloat16)
    optimized = renderer.render(renderer.source_features(image), x_s, x_s + 0.03)
    assert optimized.dtype == torch.float32 and optimized.shape == reference.shape
    assert ((optimized - reference).norm() / reference.norm()).item() < 3e-2
    assert renderer.spade_generator.fc.weight.is_contiguous(memory_format=torch.channels_last)


def test_eye_and_lip_retargeting_offsets():
    from moda.renderer.stitching import (
        EYE_RETARGETING,
        LIP_RETARGETING,
        StitchingRetargetingNetwork,
        retarget_eyes,
        retarget_lip,
    )

    torch.manual_seed(0)
    eye, lip = StitchingRetargetingNetwork(EYE_RETARGETING), StitchingRetargetingNetwork(LIP_RETARGETING)
    x_s = torch.randn(2, 21, 3)
    eye_ratios = torch.tensor([[0.3, 0.3, 0.0], [0.3, 0.3, 0.4]])  # [source left, source right, driving]
    lip_ratios = torch.tensor([[0.1, 0.0], [0.1, 0.5]])  # [source, driving]
    with torch.no_grad():
        eye_delta, lip_delta = retarget_eyes(eye, x_s, eye_ratios), retarget_lip(lip, x_s, lip_ratios)
        expected = eye(torch.cat([x_s.reshape(2, 63), eye_ratios], dim=1)).reshape(2, 21, 3)
    assert eye_delta.shape == lip_delta.shape == (2, 21, 3)
    torch.testing.assert_close(eye_delta, expected)
    assert not torch.allclose(lip_delta[0], lip_delta[1])  # the driving ratio changes the offset
