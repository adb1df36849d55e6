"""Per-frame audio features for the motion generator: speech -> (T frames at 25 fps, layers, width).

`prepare_speech` reproduces what the released pipeline does to a speech file before feature extraction
(pre-emphasis, a 2 s silent tail that later drives the lip reference, 16-bit quantisation);
`AudioFeatureExtractor` then normalises, frames and encodes it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
import torch.nn.functional as F

from ..errors import MoDAError
from ..timebase import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from .hubert import HubertFrameEncoder

SAMPLES_PER_CONV_STEP = 320  # HuBERT's conv stack hop (50 Hz)


@dataclass(frozen=True)
class AudioFeatureConfig:
    sample_rate: int = SAMPLE_RATE
    fps: int = FPS
    # Long audio is cut into pieces of at most this length; each is normalised and encoded on its own.
    piece_seconds: float = 60.0
    normalize: bool = True  # the shipped chinese-hubert-base preprocessor config normalises

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps


def preemphasis(waveform: np.ndarray, coef: float = 0.97) -> np.ndarray:
    """y[n] - coef * y[n-1], with librosa's default initial state, which makes y[0] -> 3 y[0] - y[1]."""
    y = waveform.astype(np.float64)
    out = np.empty_like(y)
    out[1:] = y[1:] - coef * y[:-1]
    out[0] = 3 * y[0] - y[1] if y.size > 1 else y[0]
    return out.astype(np.float32)


def pcm16_round_trip(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Quantise as writing and re-reading a 16-bit PCM wav does (the released pipeline goes through a file)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sample_rate, subtype="PCM_16", format="WAV")
    buffer.seek(0)
    return soundfile.read(buffer, dtype="float32")[0]


@dataclass(frozen=True)
class PreparedSpeech:
    waveform: np.ndarray  # 16 kHz float32, speech followed by the silent tail
    silent_frames: int  # frames of appended silence (to be trimmed from the generated motion)


def silent_tail_frames(silence_seconds: float = 2.0, sample_rate: int = SAMPLE_RATE) -> int:
    """Video frames of the silent tail `prepare_speech` appends."""
    return int(silence_seconds * sample_rate / SAMPLES_PER_FRAME)


def prepare_speech(waveform: np.ndarray, silence_seconds: float = 2.0, sample_rate: int = SAMPLE_RATE) -> PreparedSpeech:
    """Pre-emphasis, then `silence_seconds` of zeros appended, then 16-bit quantisation."""
    silence = np.zeros(int(round(silence_seconds * sample_rate)), dtype=np.float32)
    padded = np.concatenate([preemphasis(waveform), silence])
    silent_frames = silent_tail_frames(silence_seconds, sample_rate)
    return PreparedSpeech(pcm16_round_trip(padded, sample_rate), silent_frames)


def normalize_waveform(waveform: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the whole piece: (x - mean) / sqrt(var + 1e-7), in float32."""
    x = waveform.astype(np.float32)
    return ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)


def pad_for_encoder(segment: torch.Tensor) -> torch.Tensor:
    """Pad (B, L) so HuBERT's conv stack yields 2 steps per video frame (two reflect pads of 20 for L % 640 == 0)."""
    length = segment.shape[-1]
    units = length // SAMPLES_PER_CONV_STEP
    side = math.ceil((SAMPLES_PER_CONV_STEP * units + 80 - length) / 2)
    if side < 0:
        return segment
    reflect, replicate = divmod(side, 2)
    x = segment.unsqueeze(1)
    if reflect > 0:
        # The released code pads twice in a row; the second pad reflects the first's output.
        x = F.pad(F.pad(x, (reflect, reflect), mode="reflect"), (reflect, reflect), mode="reflect")
    if replicate > 0:
        x = F.pad(x, (1, 1), mode="replicate")
    return x.squeeze(1)


@dataclass
class SegmentTrace:
    """Every intermediate of one encoded piece (for conformance checks and debugging)."""

    normalized: np.ndarray
    segment: torch.Tensor
    padded: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...]
    features: torch.Tensor


class AudioFeatureExtractor:
    """Speech waveform (16 kHz) -> features (T, layers, width), T = floor(samples / 640)."""

    def __init__(self, encoder: HubertFrameEncoder, config: AudioFeatureConfig = AudioFeatureConfig()):
        self.encoder = encoder
        self.config = config

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    @torch.no_grad()
    def encode_piece(self, waveform: np.ndarray) -> SegmentTrace:
        """Normalise, drop the samples past the last whole frame, pad and encode one piece."""
        normalized = normalize_waveform(waveform) if self.config.normalize else waveform.astype(np.float32)
        frames = len(normalized) // self.config.samples_per_frame
        if frames == 0:
            raise MoDAError(
                f"audio is too short: {len(waveform) / self.config.sample_rate:.3f} s gives no video frame; "
                f"give at least {1 / self.config.fps:.2f} s of speech"
            )
        segment = torch.from_numpy(normalized[: frames * self.config.samples_per_frame]).unsqueeze(0)
        padded = pad_for_encoder(segment).to(self.device)
        hidden_states = self.encoder(padded, frames)
        # (layers, 1, T, H) -> (T, layers, H); hidden_states[0] is the encoder input, not a layer output.
        features = torch.stack(hidden_states[1:]).squeeze(1).transpose(0, 1).cpu()
        return SegmentTrace(normalized, segment, padded, hidden_states, features)

    def __call__(self, waveform: np.ndarray) -> torch.Tensor:
        """Features of any length of audio: pieces of `piece_seconds` are encoded independently and joined."""
        piece = int(self.config.piece_seconds * self.config.sample_rate)
        pieces = [waveform[start : start + piece] for start in range(0, len(waveform), piece)]
        # A trailing piece shorter than one frame carries no frame; the released code drops it too.
        pieces = [p for p in pieces if len(p) >= self.config.samples_per_frame] or pieces[:1]
        return torch.cat([self.encode_piece(p).features for p in pieces])
