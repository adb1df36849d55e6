"""What real recordings do to speech, applied to synthetic speech before its features are computed: loudness,
noise, room reverberation, telephone and 8 kHz band limits, lossy codecs. The mouth targets stay those of the
clean speech, so the model learns to read what is said through how it was recorded."""

from __future__ import annotations

import io
from typing import cast

import av
import numpy as np
import soxr

from ...timebase import SAMPLE_RATE


def _pink_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.normal(size=length))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n=length)
    return noise / (noise.std() + 1e-9)


def add_noise(waveform: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    noise = _pink_noise(len(waveform), rng) if rng.random() < 0.5 else rng.normal(size=len(waveform))
    speech_power = np.mean(waveform**2) + 1e-12
    return waveform + noise * np.sqrt(speech_power / 10 ** (snr_db / 10)) / (noise.std() + 1e-9)


def reverberate(waveform: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolution with an exponentially decaying noise impulse response (a plain room)."""
    length = int(rt60 * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    response = rng.normal(size=length) * np.exp(-6.9 * t / rt60)
    response[0] = 1.0
    response /= np.sqrt((response**2).sum())
    wet = np.fft.irfft(np.fft.rfft(waveform, n=len(waveform) + length) * np.fft.rfft(response, n=len(waveform) + length))
    return wet[: len(waveform)]


def band_limit(waveform: np.ndarray, rate: int) -> np.ndarray:
    """Down to `rate` and back: everything above rate / 2 is gone (8000: telephone band)."""
    down = soxr.resample(waveform.astype(np.float32), SAMPLE_RATE, rate)
    return soxr.resample(down, rate, SAMPLE_RATE)[: len(waveform)]


def codec_round_trip(waveform: np.ndarray, codec: str, bitrate: int) -> np.ndarray:
    """Encode with a lossy codec (mp3 / aac / libopus) in memory and decode again."""
    buffer = io.BytesIO()
    fmt = {"mp3": "mp3", "aac": "adts", "libopus": "ogg"}[codec]
    rate = 48000 if codec == "libopus" else SAMPLE_RATE
    signal = soxr.resample(waveform.astype(np.float32), SAMPLE_RATE, rate) if rate != SAMPLE_RATE else waveform
    with av.open(buffer, "w", format=fmt) as container:
        stream = cast(av.audio.stream.AudioStream, container.add_stream(codec, rate=rate))
        stream.bit_rate = bitrate
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.clip(signal, -1, 1).astype(np.float32)[None], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer, "r") as reader:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks = [out.to_ndarray()[0] for frame in reader.decode(audio=0) for out in resampler.resample(frame)]
    decoded = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    delay = _delay(waveform, decoded)  # encoder priming (AAC in ADTS has no edit list to remove it)
    decoded = decoded[delay:]
    out = np.zeros(len(waveform), np.float32)
    out[: min(len(out), len(decoded))] = decoded[: len(out)]
    return out


def _delay(reference: np.ndarray, delayed: np.ndarray, max_delay: int = 4096) -> int:
    """Samples by which `delayed` lags `reference` (0..max_delay), by cross-correlation."""
    n = len(reference) + len(delayed)
    correlation = np.fft.irfft(np.fft.rfft(delayed, n) * np.conj(np.fft.rfft(reference, n)), n)
    return int(np.argmax(correlation[: max_delay + 1]))


def degrade(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random recording chain: room, band limit, noise, codec, level (each with its own probability)."""
    x = waveform.astype(np.float64)
    if rng.random() < 0.5:
        x = reverberate(x, rng.uniform(0.15, 0.8), rng)
    if rng.random() < 0.35:
        x = band_limit(x, int(rng.choice([8000, 11025, 12000])))
    if rng.random() < 0.6:
        x = add_noise(x, rng.uniform(5, 35), rng)
    peak = np.abs(x).max() + 1e-9
    x = x / peak * 10 ** (rng.uniform(-35, -1) / 20)  # recording level
    if rng.random() < 0.3:
        codec = str(rng.choice(["mp3", "aac", "libopus"]))
        x = codec_round_trip(x.astype(np.float32), codec, int(rng.choice([24000, 32000, 64000])))
    return np.asarray(x, np.float32)
