"""Hyper-parameters of the LivePortrait renderer networks (LivePortrait's `models.yaml`).

The defaults are the released ones; `LivePortraitConfig.tiny()` keeps the structure at a fraction of the
width so every network runs in milliseconds in tests.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..configs import from_mapping


@dataclass(frozen=True)
class AppearanceConfig:
    image_channel: int = 3
    block_expansion: int = 64
    num_down_blocks: int = 2
    max_features: int = 512
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6


@dataclass(frozen=True)
class MotionExtractorConfig:
    num_kp: int = 21
    num_bins: int = 66
    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 768)
    image_channel: int = 3


@dataclass(frozen=True)
class DenseMotionConfig:
    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    reshape_depth: int = 16
    compress: int = 4


@dataclass(frozen=True)
class WarpingConfig:
    num_kp: int = 21
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    reshape_channel: int = 32
    estimate_occlusion_map: bool = True
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)


@dataclass(frozen=True)
class SpadeConfig:
    upscale: int = 2
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    out_channels: int = 64
    spade_hidden: int = 128
    num_middle_blocks: int = 6

    @property
    def input_channels(self) -> int:
        return min(self.max_features, self.block_expansion * 2**self.num_down_blocks)


@dataclass(frozen=True)
class LivePortraitConfig:
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    motion: MotionExtractorConfig = field(default_factory=MotionExtractorConfig)
    warping: WarpingConfig = field(default_factory=WarpingConfig)
    spade: SpadeConfig = field(default_factory=SpadeConfig)
    image_size: int = 256  # network input
    output_size: int = 512  # generator output (= the crop size)

    @classmethod
    def tiny(cls) -> LivePortraitConfig:
        """Same structure, about 1/16 of the width and a 64 px input: for tests."""
        return cls(
            appearance=AppearanceConfig(block_expansion=8, max_features=32, reshape_channel=4, reshape_depth=8,
                                        num_resblocks=2),
            motion=MotionExtractorConfig(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32)),
            warping=WarpingConfig(block_expansion=8, max_features=32, reshape_channel=4,
                                  dense_motion=DenseMotionConfig(block_expansion=4, max_features=32, num_blocks=3,
                                                                 reshape_depth=8, compress=2)),
            spade=SpadeConfig(block_expansion=8, max_features=32, out_channels=8, spade_hidden=8,
                              num_middle_blocks=2),
            image_size=64,
            output_size=128,
        )

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def from_model_params(cls, params: dict[str, Any], image_size: int = 256,
                          where: str = "model_params") -> LivePortraitConfig:
        """From the reference's `models.yaml` structure (`model_params`), as LivePortrait's code reads it.

        `backbone: convnextv2_tiny` means depths (3, 3, 9, 3) / dims (96, 192, 384, 768); any other backbone
        takes `depths` and `dims` from the entry. SPADE's hidden width (128) and its six middle blocks are
        hard-coded in the reference; the generator output is twice image_size for any upscale > 1.
        """
        motion = dict(params["motion_extractor_params"])
        if motion.pop("backbone", "convnextv2_tiny") == "convnextv2_tiny":
            motion.update(depths=MotionExtractorConfig.depths, dims=MotionExtractorConfig.dims)
        warping = dict(params["warping_module_params"])
        warping["dense_motion"] = warping.pop("dense_motion_params")
        spade = from_mapping(SpadeConfig, params["spade_generator_params"], where)
        return cls(
            appearance=from_mapping(AppearanceConfig, params["appearance_feature_extractor_params"], where),
            motion=from_mapping(MotionExtractorConfig, motion, where),
            warping=from_mapping(WarpingConfig, warping, where),
            spade=spade,
            image_size=image_size,
            output_size=image_size * (2 if spade.upscale > 1 else 1),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> LivePortraitConfig:
        """Read a config written by `to_json` (a weights folder may carry one for non-released widths)."""
        return from_mapping(cls, json.loads(Path(path).read_text()), str(path))
