"""Log-mel features at the video frame rate: a light audio front end that needs no pretrained weights.

Each 25 fps frame gets the 4 mel frames (10 ms hop) that fall inside it, laid out like HuBERT's
(T, layers, width) features as (T, 4, n_mels), so the same DiT consumes either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

from ..errors import MoDAError
from .io import SAMPLE_RATE

FPS = 25


@dataclass(frozen=True)
class LogMelConfig:
    n_mels: int = 80
    hop_length: int = 160  # 10 ms
    win_length: int = 400  # 25 ms
    n_fft: int = 512
    f_min: float = 40.0
    f_max: float = 7600.0

    @property
    def mels_per_frame(self) -> int:
        return SAMPLE_RATE // FPS // self.hop_length


class LogMelExtractor:
    """waveform (16 kHz) -> (T, 4, n_mels) log-mel features, T = floor(samples / 640)."""

    def __init__(self, config: LogMelConfig = LogMelConfig()):
        self.config = config
        self.window = window_function(config.win_length, "hann", frame_length=config.n_fft)
        self.filters = mel_filter_bank(num_frequency_bins=config.n_fft // 2 + 1, num_mel_filters=config.n_mels,
                                       min_frequency=config.f_min, max_frequency=config.f_max,
                                       sampling_rate=SAMPLE_RATE, norm="slaney", mel_scale="slaney")

    def __call__(self, waveform: np.ndarray) -> torch.Tensor:
        frames = len(waveform) // (SAMPLE_RATE // FPS)
        if frames == 0:
            raise MoDAError(f"audio is too short ({len(waveform) / SAMPLE_RATE:.3f} s); give at least 0.04 s")
        mel = spectrogram(waveform.astype(np.float32), self.window, frame_length=self.config.n_fft,
                          hop_length=self.config.hop_length, power=2.0, mel_filters=self.filters,
                          log_mel="log10", mel_floor=1e-10)  # (n_mels, n_frames), centred frames
        per_frame = self.config.mels_per_frame
        mel = mel[:, : frames * per_frame].T.reshape(frames, per_frame, self.config.n_mels)
        return torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))
