"""Conformance of the LivePortrait renderer, keypoint maths, crop and paste-back with the public LivePortrait code.

The fixtures (`../shared/golden/liveportrait`) hold small-width networks in the released file layout, with
`model_params.json` (the reference's models.yaml structure) and `weights.json` (network input size). Every
network is loaded through `LivePortraitRenderer.from_pretrained`, so the released `.pth` files load strictly
and the generator's spectral norm is folded exactly as at load time for real weights.

Tolerances are those of the fixtures' README, §6.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ..face.crop import (
    DRIVING_SCALE,
    DRIVING_VY,
    SOURCE_SCALE,
    SOURCE_VY,
    CropBox,
    FaceCrop,
    PasteBack,
    average_box,
    crop_face,
    eye_and_lip_centres,
    landmark_box,
    paste_mask,
)
from ..face.landmarks import LIVEPORTRAIT_203_OPENINGS
from ..motion.keypoints import KeypointInfo, head_rotation, headpose_to_degrees, rotation_matrix, source_keypoints
from ..renderer.config import LivePortraitConfig
from ..renderer.driving import (
    eye_retargeting_input,
    lip_normalization,
    lip_retargeting_input,
    relative_motion,
)
from ..renderer.liveportrait import LivePortraitRenderer, to_tensor, to_uint8
from ..renderer.stitching import retarget_eyes, retarget_lip, stitch
from ..renderer.warping import keypoint_heatmaps, make_coordinate_grid
from .core import FixtureResult, read_json

KEYPOINTS = 1e-5  # keypoint maths, stitching / retargeting outputs, ratio helpers
DEGREES = 2e-4  # head-pose degrees
NETWORK = 2e-5  # F, M heads, keypoints derived from M
WARP = 1e-4  # W outputs and intermediates, G image, warp_decode floats
GENERATOR_INTERMEDIATE = 5e-4  # G intermediates (values up to +-12)
CHAINED = 2e-4  # pipeline frames chained from the image
LEVEL = 1 / 255  # network-input resizes and masks, in [0, 1] units
PIXELS = 2e-3  # crop geometry in pixels
ANGLE = 1e-6  # crop angle, radians
UINT8 = 1.0  # one grey level

# LivePortrait's 203-point landmark model sees this crop of its prior landmarks (`LandmarkRunner.run`).
RUNNER_CROP_SIZE, RUNNER_CROP_SCALE, RUNNER_CROP_VY = 224, 1.5, -0.1


@lru_cache(maxsize=4)
def load_renderer(directory: str) -> LivePortraitRenderer:
    """The fixture folder's networks, through the normal loader, at the widths of its model_params.json."""
    folder = Path(directory)
    params = read_json(folder / "model_params.json")["model_params"]
    image_size = int(read_json(folder / "weights.json")["image_size"])
    config = LivePortraitConfig.from_model_params(params, image_size, str(folder / "model_params.json"))
    return LivePortraitRenderer.from_pretrained(folder, config)


def record_outputs(modules: dict[str, nn.Module], run: Callable[[], Any]) -> tuple[Any, dict[str, torch.Tensor]]:
    """run() with forward hooks on `modules`; returns its result and each module's (last) output."""
    recorded: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: recorded.__setitem__(name, out))
             for name, module in modules.items()]
    try:
        with torch.no_grad():
            result = run()
    finally:
        for hook in hooks:
            hook.remove()
    return result, recorded


def crop_from_landmarks(image: np.ndarray, points: np.ndarray, dsize: int, scale: float, vy: float,
                        rotate: bool = True) -> tuple[CropBox, FaceCrop]:
    """LivePortrait's `crop_image` on landmarks in one of its layouts (it ignores vx)."""
    box = landmark_box(points, *eye_and_lip_centres(points), scale, vy, rotate)
    return box, crop_face(image, box, dsize)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def runner_landmarks(image: np.ndarray, prior: np.ndarray, model_output: np.ndarray) -> np.ndarray:
    """What LivePortrait's landmark runner returns for its model's (203, 2) normalised output: points in the
    original image. The 203-point model itself is not part of this project (MediaPipe finds our landmarks)."""
    _, crop = crop_from_landmarks(image, prior, RUNNER_CROP_SIZE, RUNNER_CROP_SCALE, RUNNER_CROP_VY)
    return transform_points(model_output.reshape(-1, 2) * RUNNER_CROP_SIZE, crop.c2o)


def homogeneous(o2c: np.ndarray) -> np.ndarray:
    return np.vstack([o2c, [0, 0, 1]])


def compare_keypoint_info(result: FixtureResult, prefix: str, info: KeypointInfo,
                          tensors: dict[str, torch.Tensor]) -> None:
    """`get_kp_info`'s fields: network outputs at the network tolerance, pose degrees at theirs."""
    for key in ("kp", "exp", "t", "scale"):
        result.compare(f"{prefix}.{key}", getattr(info, key), tensors[f"{prefix}.{key}"], NETWORK)
    for key in ("pitch", "yaw", "roll"):
        result.compare(f"{prefix}.{key}", getattr(info, key), tensors[f"{prefix}.{key}"], DEGREES)


def check_appearance(renderer: LivePortraitRenderer, tensors: dict[str, torch.Tensor], name: str) -> FixtureResult:
    result = FixtureResult(name)
    images = list(tensors["input.image_uint8"].numpy())
    result.compare("input.I", to_tensor(images, torch.device("cpu")), tensors["input.I"], 0.0)
    network = renderer.appearance_feature_extractor
    modules = {key: network.get_submodule(key) for key in ("down_blocks.1", "second", "resblocks_3d.3dr0")}
    f_s, recorded = record_outputs(modules, lambda: renderer.source_features(tensors["input.I"]))
    result.compare("output.f_s", f_s, tensors["output.f_s"], NETWORK)
    for key, value in recorded.items():
        result.compare(f"intermediate.{key}", value, tensors[f"intermediate.{key}"], NETWORK)
    return result


def check_motion_extractor(renderer: LivePortraitRenderer, tensors: dict[str, torch.Tensor], name: str) -> FixtureResult:
    result = FixtureResult(name)
    image = tensors["input.I"]
    keys = [k[len("intermediate."):] for k in tensors if k.startswith("intermediate.")]
    network = renderer.motion_extractor
    raw, recorded = record_outputs({k: network.get_submodule(k) for k in keys}, lambda: network(image))
    for key, value in raw.items():
        result.compare(f"output.raw.{key}", value, tensors[f"output.raw.{key}"], NETWORK)
    for key, value in recorded.items():
        result.compare(f"intermediate.{key}", value, tensors[f"intermediate.{key}"], NETWORK)
    info = renderer.keypoint_info(image)
    compare_keypoint_info(result, "output.kp_info", info, tensors)
    result.compare("output.R", head_rotation(info), tensors["output.R"], NETWORK)
    result.compare("output.x_s", source_keypoints(info), tensors["output.x_s"], NETWORK)
    return result


def check_keypoint_math(tensors: dict[str, torch.Tensor], name: str) -> FixtureResult:
    result = FixtureResult(name)
    degrees = headpose_to_degrees(tensors["input.headpose_logits"])[:, 0]  # the reference returns (N,)
    result.compare("output.headpose_degrees", degrees, tensors["output.headpose_degrees"], DEGREES)
    angles = tensors["input.angles_deg"]
    result.compare("output.rotation_from_1d", rotation_matrix(angles[:, 0], angles[:, 1], angles[:, 2]),
                   tensors["output.rotation_from_1d"], KEYPOINTS)
    result.compare("output.rotation_from_2d", rotation_matrix(angles[:, 0:1], angles[:, 1:2], angles[:, 2:3]),
                   tensors["output.rotation_from_2d"], KEYPOINTS)
    parts = {"kp": tensors["input.kp"], "exp": tensors["input.exp"], "t": tensors["input.t"],
             "scale": tensors["input.scale"]}
    for label, poses in (("x_from_degrees", tensors["input.pitch_yaw_roll_deg"][:, :, None]),
                         ("x_from_bins", tensors["input.pose_bins"])):
        raw = {**parts, "pitch": poses[:, 0], "yaw": poses[:, 1], "roll": poses[:, 2]}
        if label == "x_from_bins":  # the reference takes kp and exp flat here
            raw.update(kp=parts["kp"].flatten(1), exp=parts["exp"].flatten(1))
        result.compare(f"output.{label}", source_keypoints(KeypointInfo.from_extractor(raw)),
                       tensors[f"output.{label}"], KEYPOINTS)
    return result


def check_stitching_retargeting(renderer: LivePortraitRenderer, tensors: dict[str, torch.Tensor],
                                name: str) -> FixtureResult:
    result = FixtureResult(name)
    nets = renderer.retargeting_networks()
    if not nets:
        result.problems.append("the fixture folder has no stitching_retargeting_module.pth")
        return result
    x_s, x_d = tensors["input.kp_source"], tensors["input.kp_driving"]
    with torch.no_grad():
        result.compare("output.stitch_delta", nets["stitching"](torch.cat([x_s.flatten(1), x_d.flatten(1)], 1)),
                       tensors["output.stitch_delta"], KEYPOINTS)
        result.compare("output.stitching", stitch(nets["stitching"], x_s, x_d), tensors["output.stitching"], KEYPOINTS)
        result.compare("output.retarget_eye", retarget_eyes(nets["eye"], x_s, tensors["input.eye_close_ratio"]),
                       tensors["output.retarget_eye"], KEYPOINTS)
        result.compare("output.retarget_lip", retarget_lip(nets["lip"], x_s, tensors["input.lip_close_ratio"]),
                       tensors["output.retarget_lip"], KEYPOINTS)
        landmarks = tensors["input.lmk203"].numpy()
        eyes, lips = LIVEPORTRAIT_203_OPENINGS.eye_ratios(landmarks), LIVEPORTRAIT_203_OPENINGS.lip_ratio(landmarks)
        result.compare("output.calc_eye_close_ratio", eyes, tensors["output.calc_eye_close_ratio"], KEYPOINTS)
        with_target = np.concatenate([eyes, np.full((len(eyes), 1), 0.3)], axis=1)
        result.compare("output.calc_eye_close_ratio_with_target", with_target,
                       tensors["output.calc_eye_close_ratio_with_target"], KEYPOINTS)
        result.compare("output.calc_lip_close_ratio", lips, tensors["output.calc_lip_close_ratio"], KEYPOINTS)
        eye_input = eye_retargeting_input(torch.from_numpy(eyes[:1]).float(), torch.from_numpy(eyes[1:2]).float())
        lip_input = lip_retargeting_input(torch.from_numpy(lips[:1]).float(), torch.from_numpy(lips[1:2]).float())
        result.compare("output.combined_eye_ratio", eye_input, tensors["output.combined_eye_ratio"], KEYPOINTS)
        result.compare("output.combined_lip_ratio", lip_input, tensors["output.combined_lip_ratio"], KEYPOINTS)
        result.compare("output.retarget_eye_from_landmarks", retarget_eyes(nets["eye"], x_s[:1], eye_input),
                       tensors["output.retarget_eye_from_landmarks"], KEYPOINTS)
        result.compare("output.retarget_lip_from_landmarks", retarget_lip(nets["lip"], x_s[:1], lip_input),
                       tensors["output.retarget_lip_from_landmarks"], KEYPOINTS)
    return result


def check_warping(renderer: LivePortraitRenderer, tensors: dict[str, torch.Tensor], name: str) -> FixtureResult:
    result = FixtureResult(name)
    feature, x_s, x_d = tensors["input.feature_3d"], tensors["input.kp_source"], tensors["input.kp_driving"]
    network = renderer.warping_module
    dense = network.dense_motion_network
    modules = {"norm": dense.norm, "mask": dense.mask, "third": network.third, "fourth": network.fourth}
    out, recorded = record_outputs(modules, lambda: network(feature, kp_source=x_s, kp_driving=x_d))
    for key in ("out", "occlusion_map", "deformation"):
        result.compare(f"output.{key}", out[key], tensors[f"output.{key}"], WARP)
    result.compare("intermediate.dm.compressed_feature", F.relu(recorded["norm"]),
                   tensors["intermediate.dm.compressed_feature"], WARP)
    depth, height, width = feature.shape[2:]
    grid = make_coordinate_grid(depth, height, width, feature.dtype, feature.device)
    result.compare("intermediate.dm.heatmap_b0", keypoint_heatmaps(x_d[:1], x_s[:1], grid),
                   tensors["intermediate.dm.heatmap_b0"], WARP)
    result.compare("intermediate.dm.mask_b0", F.softmax(recorded["mask"][:1], dim=1), tensors["intermediate.dm.mask_b0"],
                   WARP)
    result.compare("intermediate.warped_feature_3d", F.grid_sample(feature, out["deformation"], align_corners=False),
                   tensors["intermediate.warped_feature_3d"], WARP)
    result.compare("intermediate.third", recorded["third"], tensors["intermediate.third"], WARP)
    result.compare("intermediate.fourth", recorded["fourth"], tensors["intermediate.fourth"], WARP)
    return result


def check_spade(renderer: LivePortraitRenderer, tensors: dict[str, torch.Tensor], name: str) -> FixtureResult:
    result = FixtureResult(name)
    network = renderer.spade_generator
    keys = ("fc", "G_middle_0", "G_middle_5", "up_0", "up_1")
    image, recorded = record_outputs({k: network.get_submodule(k) for k in keys},
                                     lambda: network(tensors["input.feature"]))
    result.compare("output.image", image, tensors["output.image"], WARP)
    for key in keys:
        label = f"intermediate.{key}" if f"intermediate.{key}" in tensors else f"intermediate.{key}_b0"
        value = recorded[key] if label.endswith(key) else recorded[key][:1]
        result.compare(label, value, tensors[label], GENERATOR_INTERMEDIATE)
    return result


def check_warp_decode(renderer: LivePortraitRenderer, tensors: dict[str, torch.Tensor], name: str) -> FixtureResult:
    result = FixtureResult(name)
    image = to_tensor(list(tensors["input.image_uint8"].numpy()), torch.device("cpu"))
    result.compare("input.I", image, tensors["input.I"], 0.0)
    result.compare("input.feature_3d", renderer.source_features(image), tensors["input.feature_3d"], NETWORK)
    result.compare("input.kp_source", source_keypoints(renderer.keypoint_info(image)), tensors["input.kp_source"],
                   NETWORK)
    out = renderer.warp_decode(tensors["input.feature_3d"], tensors["input.kp_source"], tensors["input.kp_driving"])
    for key in ("out", "occlusion_map", "deformation"):
        result.compare(f"output.{key}", out[key], tensors[f"output.{key}"], WARP)
    result.compare("output.parse_output", to_uint8(out["out"]), tensors["output.parse_output"], UINT8)
    return result


def check_pipeline(renderer: LivePortraitRenderer, tensors: dict[str, torch.Tensor], meta: dict,
                   name: str) -> FixtureResult:
    """The image-source / video-driving animation with LivePortrait's default options (relative motion,
    stitching, lip normalisation, paste-back), frame by frame."""
    result = FixtureResult(name)
    options = meta["options"]["inference_config"]
    original = tensors["input.original_image"].numpy()
    lmk106 = tensors["input.lmk106"].numpy()
    crop_size = meta["options"]["crop_config"]["dsize"]
    _, crop = crop_from_landmarks(original, lmk106, crop_size, SOURCE_SCALE, SOURCE_VY)
    result.compare("source.img_crop", crop.image, tensors["source.img_crop"], UINT8)
    result.compare("source.M_o2c", homogeneous(crop.o2c), tensors["source.M_o2c"], PIXELS)
    result.compare("source.M_c2o", crop.c2o, tensors["source.M_c2o"], PIXELS)
    lmk203 = runner_landmarks(original, lmk106, tensors["input.landmark_model_output"].numpy())
    result.compare("source.lmk_crop", lmk203, tensors["source.lmk_crop"], PIXELS)

    device = torch.device("cpu")
    source_image = to_tensor([crop.network_input(renderer.config.image_size)], device)
    result.compare("source.I_s", source_image, tensors["source.I_s"], LEVEL)
    info = renderer.keypoint_info(source_image)
    compare_keypoint_info(result, "source.x_s_info", info, tensors)
    result.compare("source.R_s", head_rotation(info), tensors["source.R_s"], NETWORK)
    f_s = renderer.source_features(source_image)
    result.compare("source.f_s", f_s, tensors["source.f_s"], NETWORK)
    x_s = source_keypoints(info)
    result.compare("source.x_s", x_s, tensors["source.x_s"], NETWORK)

    nets = renderer.retargeting_networks()
    source_lip = float(LIVEPORTRAIT_203_OPENINGS.lip_ratio(lmk203)[0])
    result.compare("source.combined_lip_ratio", np.array([[source_lip, 0.0]]), tensors["source.combined_lip_ratio"],
                   KEYPOINTS)
    with torch.no_grad():
        lip_delta = lip_normalization(nets["lip"], x_s, source_lip) if options["flag_normalize_lip"] else None
    if (lip_delta is not None) != meta["lip_normalisation_applied"]:
        result.problems.append(f"lip normalisation applied: {lip_delta is not None}, reference: "
                               f"{meta['lip_normalisation_applied']}")
    if lip_delta is not None:
        result.compare("source.lip_delta_before_animation", lip_delta, tensors["source.lip_delta_before_animation"],
                       KEYPOINTS)
    mask_crop = tensors["input.mask_crop"].numpy()
    height, width = original.shape[:2]
    result.compare("source.mask_ori_float", paste_mask(mask_crop, crop.c2o, width, height)[..., 0],
                   tensors["source.mask_ori_float"], LEVEL)

    driving_lmk = tensors["input.driving_lmk203"].numpy()
    result.compare("driving.c_d_eyes", LIVEPORTRAIT_203_OPENINGS.eye_ratios(driving_lmk), tensors["driving.c_d_eyes"],
                   KEYPOINTS)
    result.compare("driving.c_d_lip", LIVEPORTRAIT_203_OPENINGS.lip_ratio(driving_lmk), tensors["driving.c_d_lip"],
                   KEYPOINTS)
    driving = renderer.keypoint_info(to_tensor(list(tensors["input.driving_frames"].numpy()), device))
    template = {"scale": driving.scale, "R": head_rotation(driving), "exp": driving.exp, "t": driving.t,
                "kp": driving.kp, "x_s": source_keypoints(driving)}
    for key, value in template.items():
        result.compare(f"driving.template.{key}", value, tensors[f"driving.template.{key}"], NETWORK)

    motion = relative_motion(info, driving, driving[:1])
    parts = {"R_new": motion.rotation, "delta_new": motion.exp, "scale_new": motion.scale, "t_new": motion.t,
             "x_d_before_stitching": motion.keypoints}
    for key, value in parts.items():
        result.compare(f"frame.{key}", value, tensors[f"frame.{key}"], NETWORK)
    with torch.no_grad():
        stitched = stitch(nets["stitching"], x_s.expand_as(motion.keypoints), motion.keypoints)
    result.compare("frame.x_d_stitched", stitched, tensors["frame.x_d_stitched"], NETWORK)
    final = stitched + lip_delta if lip_delta is not None else stitched
    final = x_s + (final - x_s) * options["driving_multiplier"]
    result.compare("frame.x_d_final", final, tensors["frame.x_d_final"], NETWORK)
    decoded = renderer.warp_decode(f_s, x_s, final)
    result.compare("frame.out_last", decoded["out"][-1:], tensors["frame.out_last"], CHAINED)
    result.compare("frame.occlusion_map", decoded["occlusion_map"], tensors["frame.occlusion_map"], CHAINED)
    frames = to_uint8(decoded["out"])
    result.compare("frame.I_p", frames, tensors["frame.I_p"], UINT8)
    paste = PasteBack(original, crop, mask_crop)
    result.compare("frame.I_p_pstbk", np.stack([paste(f) for f in frames]), tensors["frame.I_p_pstbk"], UINT8)
    return result


def check_crop_paste(tensors: dict[str, torch.Tensor], name: str) -> FixtureResult:
    result = FixtureResult(name)
    original = tensors["input.original_image"].numpy()
    lmk106, lmk68 = tensors["input.lmk106"].numpy(), tensors["input.lmk68"].numpy()

    box, crop = crop_from_landmarks(original, lmk106, 512, SOURCE_SCALE, SOURCE_VY)
    result.compare("source.pt2", np.stack(eye_and_lip_centres(lmk106)), tensors["source.pt2"], PIXELS)
    result.compare("source.center", box.center, tensors["source.center"], PIXELS)
    result.compare("source.size", np.array([box.size, box.size]), tensors["source.size"], PIXELS)
    result.compare("source.angle", box.angle, tensors["source.angle"], ANGLE)
    result.compare("source.M_o2c", homogeneous(crop.o2c), tensors["source.M_o2c"], PIXELS)
    result.compare("source.M_c2o", crop.c2o, tensors["source.M_c2o"], PIXELS)
    result.compare("source.pt_crop", transform_points(lmk106, crop.o2c), tensors["source.pt_crop"], PIXELS)
    result.compare("source.img_crop_256x256", crop.network_input(256), tensors["source.img_crop_256x256"], UINT8)
    lmk203 = runner_landmarks(original, lmk106, tensors["input.landmark_model_output"].numpy())
    result.compare("source.lmk_crop", lmk203, tensors["source.lmk_crop"], PIXELS)
    result.compare("source.lmk_crop_256x256", lmk203 * 256 / 512, tensors["source.lmk_crop_256x256"], PIXELS)

    _, default = crop_from_landmarks(original, lmk68, RUNNER_CROP_SIZE, RUNNER_CROP_SCALE, RUNNER_CROP_VY)
    result.compare("fdefault.pt2", np.stack(eye_and_lip_centres(lmk68)), tensors["fdefault.pt2"], PIXELS)
    result.compare("fdefault.M_o2c", homogeneous(default.o2c), tensors["fdefault.M_o2c"], PIXELS)
    result.compare("fdefault.M_c2o", default.c2o, tensors["fdefault.M_c2o"], PIXELS)
    result.compare("fdefault.pt_crop", transform_points(lmk68, default.o2c), tensors["fdefault.pt_crop"], PIXELS)
    result.compare("fdefault.img_crop", default.image, tensors["fdefault.img_crop"], UINT8)

    _, custom = crop_from_landmarks(original, lmk106, 256, 2.0, -0.2, rotate=False)
    result.compare("custom.M_o2c", homogeneous(custom.o2c), tensors["custom.M_o2c"], PIXELS)
    result.compare("custom.M_c2o", custom.c2o, tensors["custom.M_c2o"], PIXELS)
    result.compare("custom.pt_crop", transform_points(lmk106, custom.o2c), tensors["custom.pt_crop"], PIXELS)

    frames = [original, tensors["driving.frame1_image"].numpy()]
    outputs = tensors["driving.frame_model_output"].numpy()
    tracked, prior = [], lmk106  # the detector once, then each frame tracked from the previous one's 203 points
    for frame, output in zip(frames, outputs):
        prior = runner_landmarks(frame, prior, output)
        tracked.append(prior)
    result.compare("driving.lmk203", np.stack(tracked), tensors["driving.lmk203"], PIXELS)
    boxes = [landmark_box(p, *eye_and_lip_centres(p), DRIVING_SCALE, DRIVING_VY, rotate=False) for p in tracked]
    rotated = [landmark_box(p, *eye_and_lip_centres(p), DRIVING_SCALE, DRIVING_VY) for p in tracked]
    result.compare("driving.pt2", np.stack([np.stack(eye_and_lip_centres(p)) for p in tracked]), tensors["driving.pt2"],
                   PIXELS)
    result.compare("driving.center", np.stack([b.center for b in boxes]), tensors["driving.center"], PIXELS)
    result.compare("driving.size", np.array([[b.size, b.size] for b in boxes]), tensors["driving.size"], PIXELS)
    result.compare("driving.angle", np.array([b.angle for b in rotated]), tensors["driving.angle"], ANGLE)
    result.compare("driving.bbox", np.stack([b.corners for b in boxes]), tensors["driving.bbox"], PIXELS)
    turned = []
    for b in rotated:
        c, s = np.cos(b.angle), np.sin(b.angle)
        turned.append((b.corners - b.center) @ np.array([[c, -s], [s, c]]).T + b.center)
    result.compare("driving.bbox_rot", np.stack(turned), tensors["driving.bbox_rot"], PIXELS)
    video_box = average_box(boxes)
    result.compare("driving.global_bbox", np.concatenate([video_box.corners[0], video_box.corners[2]]),
                   tensors["driving.global_bbox"], PIXELS)
    driving_crop = crop_face(original, video_box, 512)
    result.compare("driving.M_o2c_frame0", homogeneous(driving_crop.o2c), tensors["driving.M_o2c_frame0"], PIXELS)
    result.compare("driving.M_c2o_frame0", driving_crop.c2o, tensors["driving.M_c2o_frame0"], PIXELS)
    result.compare("driving.lmk_crop", np.stack([transform_points(p, driving_crop.o2c) for p in tracked]),
                   tensors["driving.lmk_crop"], PIXELS)

    template = tensors["input.mask_template"].numpy()
    height, width = original.shape[:2]
    mask = paste_mask(template, crop.c2o, width, height)
    result.compare("paste.mask_ori", mask[..., 0], tensors["paste.mask_ori"], LEVEL)
    y, x, c = np.meshgrid(np.arange(512), np.arange(512), np.arange(3), indexing="ij")
    rendered = np.floor(127.5 + 100 * np.sin(x / 23 + 2 * c) * np.cos(y / 31)).astype(np.uint8)
    result.compare("paste.result", PasteBack(original, crop, template)(rendered), tensors["paste.result"], UINT8)
    return result


NETWORK_CHECKS: dict[str, Callable[[LivePortraitRenderer, dict[str, torch.Tensor], str], FixtureResult]] = {
    "appearance_feature_extractor": check_appearance,
    "motion_extractor": check_motion_extractor,
    "stitching_retargeting": check_stitching_retargeting,
    "warping_network": check_warping,
    "spade_generator": check_spade,
    "warp_decode": check_warp_decode,
}
PLAIN_CHECKS: dict[str, Callable[[dict[str, torch.Tensor], str], FixtureResult]] = {
    "keypoint_math": check_keypoint_math,
    "crop_paste": check_crop_paste,
}


def is_liveportrait_fixture(meta: dict) -> bool:
    return "LivePortrait" in str(meta.get("reference", "")) and "tensor_manifest" in meta


def run_fixture(meta_path: Path, meta: dict) -> FixtureResult | None:
    """Check one LivePortrait fixture; None when the JSON is not one."""
    name = str(meta.get("name", meta_path.stem))
    if not is_liveportrait_fixture(meta):
        return None
    tensors = load_file(meta_path.parent / meta.get("tensor_file", meta_path.with_suffix(".safetensors").name))
    if name in PLAIN_CHECKS:
        return PLAIN_CHECKS[name](tensors, name)
    renderer = load_renderer(str(meta_path.parent))
    if name in NETWORK_CHECKS:
        return NETWORK_CHECKS[name](renderer, tensors, name)
    if name == "pipeline_animate":
        return check_pipeline(renderer, tensors, meta, name)
    return None
