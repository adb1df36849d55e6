"""The motion generator: the DiT, its flow schedule and the null audio feature; the checkpoint root."""

from __future__ import annotations

import torch
from torch import nn

from .config import DiTConfig
from .dit import TalkingHeadDiT
from .flow_matching import FlowMatchingScheduler


class MotionGenerator(nn.Module):
    """The DiT, its flow schedule and the null audio feature used for guidance.

    Sub-module names (`talking_head_dit`, `scheduler`) are those of the released checkpoint.
    """

    null_audio_feat: torch.Tensor  # (1, 1, 1, K, C) buffer

    def __init__(self, config: DiTConfig, num_inference_steps: int = 10):
        super().__init__()
        self.config = config
        self.talking_head_dit = TalkingHeadDiT(config)
        self.scheduler = FlowMatchingScheduler(num_inference_steps=num_inference_steps)
        # The unconditional audio token block. Not persistent: the released GPU build never loads it
        # from the checkpoint (see moda.generator.checkpoint), so it is set explicitly.
        self.register_buffer(
            "null_audio_feat",
            torch.zeros(1, 1, 1, config.audio_blocks, config.audio_dim),
            persistent=False,
        )

    @property
    def device(self) -> torch.device:
        return self.null_audio_feat.device
