"""Reading speech from any common audio or video file as 16 kHz mono float32.

Decoding streams: each decoded frame is mixed to mono and resampled at once, so memory is the 16 kHz result
only, whatever the source rate and channel count, and a duration limit is enforced from the container's
declared duration before decoding and again while decoding (a container may lie about it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import soxr

from ..errors import MoDAError
from ..timebase import SAMPLE_RATE

CANCELLED_MIX_DB = -20.0  # a mono mix this far below its channels' own level: the channels cancel
DECISION_SECONDS = 30.0  # audio read before deciding whether the mix or the first channel is the speech


class _MonoStream:
    """Chunks of (channels, samples) float audio -> mono at the target rate, kept in pieces."""

    def __init__(self, rate: int, target: int):
        self.resampler = soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ") if rate != target else None
        self.pieces: list[np.ndarray] = []

    def push(self, mono: np.ndarray, last: bool = False) -> None:
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        self.pieces.append(self.resampler.resample_chunk(mono, last=last) if self.resampler else mono)

    def result(self) -> np.ndarray:
        """The samples in one array; each piece is freed as it is copied, so the peak stays near one copy."""
        out = np.empty(sum(len(piece) for piece in self.pieces), np.float32)
        offset = 0
        self.pieces.reverse()
        while self.pieces:
            piece = self.pieces.pop()
            out[offset : offset + len(piece)] = piece
            offset += len(piece)
        return out


def _planar_chunks(container: av.container.InputContainer, stream: av.audio.stream.AudioStream,
                   rate: int) -> Iterator[np.ndarray]:
    """Decoded audio as (channels, samples) float32 chunks, in order."""
    converter = av.AudioResampler(format="fltp", rate=rate)
    for frame in container.decode(stream):
        for out in converter.resample(frame):
            yield out.to_ndarray()
    for out in converter.resample(None):
        yield out.to_ndarray()


def _too_long(path: Path, seconds: float, max_duration: float) -> MoDAError:
    return MoDAError(f"audio {path} is {seconds:.0f} s long; the limit is {max_duration:g} s (--max-duration); "
                     "cut it into parts or raise the limit")


def _decode(path: Path, sample_rate: int, max_duration: float | None) -> np.ndarray:
    """The first audio stream, mixed to mono and resampled to `sample_rate`."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise MoDAError(f"{path} has no audio stream; give a speech file (wav, mp3, m4a, ogg, flac)")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        declared = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                    else container.duration / av.time_base if container.duration else None)
        if max_duration is not None and declared is not None and declared > max_duration:
            raise _too_long(path, declared, max_duration)
        limit = None if max_duration is None else int(max_duration * rate) + rate  # one second of slack
        mix, first = _MonoStream(rate, sample_rate), _MonoStream(rate, sample_rate)
        mix_energy = channel_energy = 0.0
        source: _MonoStream | None = None  # which of the two holds the speech, once known
        decoded = 0
        for chunk in _planar_chunks(container, stream, rate):
            decoded += chunk.shape[1]
            if limit is not None and decoded > limit:
                raise _too_long(path, decoded / rate, max_duration or 0.0)
            mono = chunk.mean(axis=0)
            if source is None and chunk.shape[0] > 1:  # both kept until the channels are known not to cancel
                with np.errstate(over="ignore", invalid="ignore"):
                    mix_energy += float(np.square(mono, dtype=np.float64).sum())
                    channel_energy += float(np.square(chunk, dtype=np.float64).sum() / chunk.shape[0])
                first.push(chunk[0])
                mix.push(mono)
                if decoded >= DECISION_SECONDS * rate:
                    source = first if _cancels(mix_energy, channel_energy) else mix
                    (mix if source is first else first).pieces.clear()
            elif source is first:
                first.push(chunk[0])
            else:
                mix.push(mono)
    if source is None:
        source = first if _cancels(mix_energy, channel_energy) else mix
    if source is first:
        warnings.warn(f"the channels of {path} cancel when mixed to mono (phase-inverted stereo?); "
                      "using the first channel", stacklevel=3)
    if source.resampler is not None and source.pieces:
        source.push(np.zeros(0, np.float32), last=True)
    return source.result()


def _cancels(mix_energy: float, channel_energy: float) -> bool:
    return channel_energy > 0 and mix_energy < channel_energy * 10 ** (CANCELLED_MIX_DB / 10)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, max_duration: float | None = None) -> np.ndarray:
    """Decode, mix the channels and resample (soxr HQ, as librosa does) to `sample_rate` Hz mono.

    Raises MoDAError for a missing, unreadable, empty, non-finite or (with `max_duration`, in seconds) too long file.
    """
    path = Path(path)
    if not path.is_file():
        raise MoDAError(f"audio file not found: {path}")
    if max_duration is not None and not max_duration > 0:
        raise MoDAError(f"--max-duration {max_duration} is not a positive number of seconds")
    try:
        mono = _decode(path, sample_rate, max_duration)
    except av.error.FFmpegError as exc:
        raise MoDAError(f"cannot decode audio {path}: {exc}; check that it is a valid audio file") from exc
    if mono.size == 0:
        raise MoDAError(f"{path} contains no audio samples")
    if not np.isfinite(mono).all():
        raise MoDAError(f"audio {path} holds NaN or infinite samples; re-export it (e.g. as 16-bit PCM WAV)")
    peak = float(np.abs(mono).max())
    if peak > 1.0:  # only float formats can go beyond full scale; scaled, not clipped, so nothing is lost
        warnings.warn(f"audio {path} goes beyond full scale (peak {peak:.3g}); scaled down to fit", stacklevel=2)
        mono = mono / np.float32(peak)
    return np.ascontiguousarray(mono, dtype=np.float32)
