"""Log-mel features at the video frame rate: a light audio front end that needs no pretrained weights.

Each 25 fps frame gets the 4 mel frames (10 ms hop) that fall inside it, laid out like HuBERT's
(T, layers, width) features as (T, 4, n_mels), so the same DiT consumes either.

The STFT and the Slaney mel filter bank are written here in numpy: they equal `transformers.audio_utils`'
`spectrogram` and `mel_filter_bank` (a test compares them), whose import alone takes 1.5 s of every cold start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

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


def _hertz_to_mel(hertz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear up to 1 kHz, logarithmic above."""
    hertz = np.asarray(hertz, np.float64)
    mel = 3.0 * hertz / 200.0
    log_region = hertz >= 1000.0
    return np.where(log_region, 15.0 + np.log(np.maximum(hertz, 1e-10) / 1000.0) * 27.0 / np.log(6.4), mel)


def _mel_to_hertz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), 200.0 * mel / 3.0)


def slaney_mel_filters(n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular filters on the Slaney mel scale, each of unit area."""
    edges = _mel_to_hertz(np.linspace(_hertz_to_mel(f_min), _hertz_to_mel(f_max), n_mels + 2))  # (n_mels + 2,)
    bins = np.linspace(0, SAMPLE_RATE // 2, n_fft // 2 + 1)
    slopes = edges[None, :] - bins[:, None]  # (bins, n_mels + 2)
    widths = np.diff(edges)
    rising, falling = -slopes[:, :-2] / widths[:-1], slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


class LogMelExtractor:
    """waveform (16 kHz) -> (T, 4, n_mels) log-mel features, T = floor(samples / 640)."""

    def __init__(self, config: LogMelConfig = LogMelConfig()):
        self.config = config
        # a periodic Hann window of win_length, centred in n_fft samples
        hann = np.hanning(config.win_length + 1)[:-1]
        left = (config.n_fft - config.win_length) // 2
        self.window = np.zeros(config.n_fft)
        self.window[left : left + config.win_length] = hann
        self.filters = slaney_mel_filters(config.n_fft, config.n_mels, config.f_min, config.f_max)

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
        per_frame = self.config.mels_per_frame
        mel = self.log_mel(waveform)[: frames * per_frame].reshape(frames, per_frame, self.config.n_mels)
        return torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """(1 + samples // hop, n_mels) log10 mel power of centred STFT frames (reflect padding)."""
        n_fft, hop = self.config.n_fft, self.config.hop_length
        padded = np.pad(waveform.astype(np.float64), n_fft // 2, mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]  # (n_frames, n_fft)
        power = np.abs(np.fft.rfft(frames * self.window, n=n_fft)) ** 2  # (n_frames, n_fft // 2 + 1)
        return np.log10(np.maximum(power @ self.filters, 1e-10))


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
