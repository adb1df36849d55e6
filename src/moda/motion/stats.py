"""Dataset statistics of the 70-d motion vector, and (de)normalisation with them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..weights import read_state_dict
from .vector import SCALE, STD_EPS


@dataclass
class MotionStats:
    """Per-dimension mean and std, each (1, 70)."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def load(cls, path: str | Path) -> MotionStats:
        """From `mean.pt` of the release (a dict with `mean` and `std`) or a safetensors copy."""
        state = read_state_dict(path)
        return cls(mean=state["mean"].float(), std=state["std"].float())

    def normalize(self, motion: torch.Tensor) -> torch.Tensor:
        return (motion - self.mean) / (self.std + STD_EPS)

    def denormalize(self, motion: torch.Tensor) -> torch.Tensor:
        return motion * (self.std + STD_EPS) + self.mean

    @property
    def mean_scale(self) -> torch.Tensor:
        return self.mean[:, SCALE]
