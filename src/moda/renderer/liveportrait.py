"""The LivePortrait renderer: source image + driving keypoints -> frames."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..motion.keypoints import KeypointInfo
from .appearance import AppearanceFeatureExtractor
from .config import LivePortraitConfig
from .loading import (
    BASE_MODEL_FILES,
    CONFIG_FILE,
    STITCHING_FILE,
    STITCHING_SUBDICTS,
    load_into,
    read_base_model,
    read_stitching,
    unfold_spectral_norm,
)
from .motion_extractor import MotionExtractor
from .spade_generator import SPADEDecoder
from .stitching import EYE_RETARGETING, LIP_RETARGETING, STITCHING, StitchingRetargetingNetwork
from .warping import WarpingNetwork


def to_tensor(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """uint8 (H, W, 3) images -> (B, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2).float() / 255


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8, truncating as LivePortrait's `parse_output` does."""
    return (frames.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class LivePortraitRenderer(nn.Module):
    """F, M, W, G and the stitching / retargeting MLPs.

    Images are RGB in [0, 1], (B, 3, S, S) with S = config.image_size (256 released); frames come out at
    config.output_size (512 released).
    """

    def __init__(self, config: LivePortraitConfig = LivePortraitConfig(), with_stitching: bool = True):
        super().__init__()
        self.config = config
        self.appearance_feature_extractor = AppearanceFeatureExtractor(config.appearance)
        self.motion_extractor = MotionExtractor(config.motion)
        self.warping_module = WarpingNetwork(config.warping)
        self.spade_generator = SPADEDecoder(config.spade)
        self.stitching = StitchingRetargetingNetwork(STITCHING) if with_stitching else None
        self.lip_retargeting = StitchingRetargetingNetwork(LIP_RETARGETING) if with_stitching else None
        self.eye_retargeting = StitchingRetargetingNetwork(EYE_RETARGETING) if with_stitching else None
        self.precision = torch.float32  # compute dtype of F, W and G (autocast); M and the MLPs stay fp32
        self.channels_last = False

    @classmethod
    def from_pretrained(cls, directory: str | Path, config: LivePortraitConfig | None = None) -> LivePortraitRenderer:
        """Load LivePortrait's released files from `directory` (the folder holding base_models/ and
        retargeting_models/). Without the stitching file, stitching is disabled, as in LivePortrait.
        The config is the released one unless given or found in the folder's renderer_config.json."""
        directory = Path(directory)
        if config is None:
            config_file = directory / CONFIG_FILE
            config = LivePortraitConfig.from_json(config_file) if config_file.is_file() else LivePortraitConfig()
        stitching = read_stitching(directory)
        renderer = cls(config, with_stitching=bool(stitching))
        for name, module in renderer.base_networks().items():
            load_into(module, read_base_model(directory, name), BASE_MODEL_FILES[name])
        for name, state in stitching.items():
            load_into(renderer.retargeting_networks()[name], state, f"stitching_retargeting_module.pth [{name}]")
        return renderer.eval()

    def base_networks(self) -> dict[str, nn.Module]:
        """F, M, W, G by the names of their released files (moda.renderer.loading.BASE_MODEL_FILES)."""
        return {"appearance": self.appearance_feature_extractor, "motion": self.motion_extractor,
                "warping": self.warping_module, "spade": self.spade_generator}

    def retargeting_networks(self) -> dict[str, StitchingRetargetingNetwork]:
        """The stitching / lip / eye MLPs (empty when stitching is disabled)."""
        if self.stitching is None or self.lip_retargeting is None or self.eye_retargeting is None:
            return {}
        return {"stitching": self.stitching, "lip": self.lip_retargeting, "eye": self.eye_retargeting}

    def optimize_for_inference(self, precision: torch.dtype = torch.bfloat16) -> LivePortraitRenderer:
        """Run F, W and G under autocast in `precision` and keep 2-D conv weights channels-last.

        bf16 suits CPUs with AMX / AVX512-BF16 and recent GPUs (fp16 is what LivePortrait uses on GPUs).
        The motion extractor and the MLPs stay fp32: keypoints and pose are sensitive to rounding.
        """
        self.precision = precision
        self.channels_last = True
        for module in (self.appearance_feature_extractor, self.spade_generator):
            for conv in module.modules():
                if isinstance(conv, nn.Conv2d):
                    conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
        return self

    def autocast(self, device: torch.device) -> torch.autocast:
        """The compute-precision context for F, W and G (a no-op in fp32)."""
        return torch.autocast(device.type, dtype=self.precision, enabled=self.precision != torch.float32)

    def channels_layout(self, x: torch.Tensor) -> torch.Tensor:
        """x in the memory layout the 2-D convolutions were optimised for."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @torch.no_grad()
    def source_features(self, image: torch.Tensor) -> torch.Tensor:
        """f_s, the appearance volume, (B, 32, 16, 64, 64) released."""
        with self.autocast(image.device):
            return self.appearance_feature_extractor(self.channels_layout(image)).float().contiguous()

    @torch.no_grad()
    def keypoint_info(self, image: torch.Tensor) -> KeypointInfo:
        """Canonical keypoints, expression, pose (degrees), scale and translation of each image."""
        return KeypointInfo.from_extractor({k: v.float() for k, v in self.motion_extractor(image).items()})

    @torch.no_grad()
    def warp_decode(self, f_s: torch.Tensor, x_s: torch.Tensor, x_d: torch.Tensor) -> dict[str, torch.Tensor]:
        """W then G (LivePortrait's `warp_decode`): {"out": frames (B, 3, 512, 512) in [0, 1], "occlusion_map",
        "deformation"} for driving keypoints x_d (B, 21, 3); f_s and x_s broadcast."""
        batch = x_d.shape[0]
        with self.autocast(x_d.device):
            warped = self.warping_module(f_s.expand(batch, -1, -1, -1, -1), kp_source=x_s.expand(batch, -1, -1),
                                         kp_driving=x_d)
            frames = self.spade_generator(self.channels_layout(warped["out"])).float()
        return {"out": frames, **{k: v.float() for k, v in warped.items() if k != "out"}}

    def render(self, f_s: torch.Tensor, x_s: torch.Tensor, x_d: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, 512, 512) in [0, 1] for driving keypoints x_d (B, 21, 3); f_s and x_s broadcast."""
        return self.warp_decode(f_s, x_s, x_d)["out"]


def export_liveportrait(renderer: LivePortraitRenderer, directory: str | Path) -> Path:
    """Write a renderer in LivePortrait's released file layout (and its config), loadable by `from_pretrained`."""
    directory = Path(directory)
    (directory / "base_models").mkdir(parents=True, exist_ok=True)
    (directory / "retargeting_models").mkdir(parents=True, exist_ok=True)
    for name, module in renderer.base_networks().items():
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        if name == "spade":
            state = unfold_spectral_norm(state, [k for k in state if re.search(r"\.conv_[01s]\.weight$", k)])
        torch.save(state, directory / BASE_MODEL_FILES[name])
    retargeting = renderer.retargeting_networks()
    if retargeting:
        torch.save({STITCHING_SUBDICTS[name]: {f"module.{k}": v for k, v in module.state_dict().items()}
                    for name, module in retargeting.items()}, directory / STITCHING_FILE)
    renderer.config.to_json(directory / CONFIG_FILE)
    return directory
