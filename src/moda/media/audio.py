"""Reading speech from any common audio or video file as 16 kHz mono float32."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soxr

from ..errors import MoDAError
from ..timebase import SAMPLE_RATE


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """All samples of the first audio stream as (channels, samples) float32, and the stream's rate."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise MoDAError(f"{path} has no audio stream; give a speech file (wav, mp3, m4a, ogg, flac)")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        resampler = av.AudioResampler(format="fltp", rate=rate)
        chunks = [
            out.to_ndarray()
            for frame in container.decode(stream)
            for out in resampler.resample(frame)
        ]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32), rate
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False), rate


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode, average the channels and resample (soxr HQ, as librosa does) to `sample_rate` Hz mono.

    Raises MoDAError for a missing, unreadable or empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise MoDAError(f"audio file not found: {path}")
    try:
        samples, rate = _decode(path)
    except av.error.FFmpegError as exc:
        raise MoDAError(f"cannot decode audio {path}: {exc}; check that it is a valid audio file") from exc
    mono = samples.mean(axis=0)
    if mono.size == 0:
        raise MoDAError(f"{path} contains no audio samples")
    if not np.isfinite(mono).all():
        raise MoDAError(f"audio {path} holds NaN or infinite samples; re-export it (e.g. as 16-bit PCM WAV)")
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)
