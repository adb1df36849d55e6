"""HuBERT speech encoder with features resampled to the video frame rate before the transformer.

The released model uses `TencentGameMate/chinese-hubert-base` through transformers' `HubertModel`, with one
change to the forward pass ("presample"): the 50 Hz conv features are linearly interpolated
(align_corners=True) to the number of 25 fps video frames *before* the feature projection and the
transformer, so every layer runs at the video rate. All transformer layers' outputs are kept.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import HubertConfig, HubertModel

from ..errors import WeightsNotFoundError
from ..hub import HUBERT_HUB_ID


class HubertFrameEncoder(nn.Module):
    """waveform (B, L) at 16 kHz -> per-layer hidden states at the video rate.

    `self.model` is a stock `HubertModel`, so `state_dict()` keys are exactly those of a HuBERT checkpoint.
    """

    def __init__(self, model: HubertModel):
        super().__init__()
        self.model = model.eval()

    @classmethod
    def from_config(cls, config: HubertConfig) -> HubertFrameEncoder:
        return cls(HubertModel(config))

    @classmethod
    def from_pretrained(cls, source: str | Path = HUBERT_HUB_ID, local_files_only: bool = False) -> HubertFrameEncoder:
        """Load from a local directory or a hub id; offline without a copy, a clear error naming where to put it."""
        is_path = isinstance(source, Path) or Path(source).exists() or str(source).startswith((".", "/", "~"))
        if is_path and not Path(source).expanduser().is_dir():
            raise WeightsNotFoundError(
                f"HuBERT weights directory {source} not found; download {HUBERT_HUB_ID} into it "
                f"(huggingface-cli download {HUBERT_HUB_ID} --local-dir {source})"
            )
        try:
            model = HubertModel.from_pretrained(str(Path(source).expanduser()) if is_path else str(source),
                                                local_files_only=local_files_only)
        except (OSError, ValueError) as exc:
            raise WeightsNotFoundError(
                f"HuBERT weights not found at {source!s} and not downloadable ({type(exc).__name__}); "
                f"download {HUBERT_HUB_ID} (config.json and weights) into a directory and pass that directory"
            ) from exc
        return cls(model)

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    def forward(self, waveform: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, ...]:
        """Returns hidden_states[0..L]: the encoder input (after positional conv and layer norm), then
        each transformer layer's output, each (B, num_frames, hidden)."""
        conv_features = self.model.feature_extractor(waveform)  # (B, C, 2T) at 50 Hz
        frame_features = F.interpolate(conv_features, size=num_frames, mode="linear", align_corners=True)
        hidden = self.model.feature_projection(frame_features.transpose(1, 2))
        encoded = self.model.encoder(hidden, output_hidden_states=True, return_dict=True)
        return encoded.hidden_states
