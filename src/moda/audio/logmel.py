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
from ..timebase import FPS, SAMPLE_RATE

PIECE_SECONDS = 30


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
        """Features of any length; long audio goes through `StreamingLogMel` in pieces (same values), which
        keeps the STFT's frame matrix small (a whole 10-minute clip would need ~0.5 GB at once)."""
        piece = PIECE_SECONDS * SAMPLE_RATE
        if len(waveform) <= piece:
            return self.compute(waveform)
        stream = StreamingLogMel(self)
        parts = [stream.push(waveform[start : start + piece]) for start in range(0, len(waveform), piece)]
        return torch.cat(parts + [stream.finish()])

    def compute(self, waveform: np.ndarray) -> torch.Tensor:
        """Features of the whole waveform in one STFT."""
        frames = len(waveform) // (SAMPLE_RATE // FPS)
        if frames == 0:
            raise MoDAError(f"audio is too short ({len(waveform) / SAMPLE_RATE:.3f} s); give at least 0.04 s")
        mel = spectrogram(waveform.astype(np.float32), self.window, frame_length=self.config.n_fft,
                          hop_length=self.config.hop_length, power=2.0, mel_filters=self.filters,
                          log_mel="log10", mel_floor=1e-10)  # (n_mels, n_frames), centred frames
        per_frame = self.config.mels_per_frame
        mel = mel[:, : frames * per_frame].T.reshape(frames, per_frame, self.config.n_mels)
        return torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))


class StreamingLogMel:
    """Log-mel features of audio that arrives in pieces, equal to `LogMelExtractor` on the whole waveform.

    A frame is returned once the samples its last (centred) STFT window reads have arrived; each call
    recomputes only a short tail, so the cost per call does not grow with the stream's length.
    """

    LOOKAHEAD = 512  # samples past a frame's end that its last centred STFT window reads (n_fft / 2, rounded up)

    def __init__(self, extractor: LogMelExtractor = LogMelExtractor()):
        self.extractor = extractor
        self.samples = np.zeros(0, np.float32)
        self.offset = 0  # stream position of self.samples[0]
        self.done = 0  # frames returned so far

    def _frames(self, upto: int) -> torch.Tensor:
        """Frames [done, upto) computed on the kept tail, with one frame of context on each side."""
        per_frame = SAMPLE_RATE // FPS
        if upto <= self.done:
            return torch.zeros(0, self.extractor.config.mels_per_frame, self.extractor.config.n_mels)
        context = min(self.done, 1)  # a frame before, so reflect padding never reaches the frames we keep
        start = (self.done - context) * per_frame - self.offset
        features = self.extractor.compute(self.samples[start:])[context : context + upto - self.done]
        self.done = upto
        keep_from = (self.done - 1) * per_frame - self.offset
        if keep_from > 0:
            self.samples, self.offset = self.samples[keep_from:], self.offset + keep_from
        return features

    def push(self, samples: np.ndarray) -> torch.Tensor:
        self.samples = np.concatenate([self.samples, samples.astype(np.float32)])
        available = (self.offset + len(self.samples) - self.LOOKAHEAD) // (SAMPLE_RATE // FPS)
        return self._frames(available)

    def finish(self) -> torch.Tensor:
        return self._frames((self.offset + len(self.samples)) // (SAMPLE_RATE // FPS))
