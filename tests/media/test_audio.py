from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from moda.errors import MoDAError
from moda.media.audio import load_audio
from tests.helpers import write_blank_video


def encode(path: Path, signal: np.ndarray, rate: int, codec: str, layout: str = "mono") -> Path:
    """Write `signal` (channels, samples) with PyAV's encoders."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        stream.time_base = Fraction(1, rate)
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, signal.shape[1], frame_size):
            chunk = np.ascontiguousarray(signal[:, start : start + frame_size], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def tone(rate: int, seconds: float, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.stack([0.5 * np.sin(2 * np.pi * freq * t)] * channels).astype(np.float32)


def dominant_frequency(x: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()]


@pytest.mark.parametrize(
    "name,codec,rate,layout",
    [("a.mp3", "libmp3lame", 44100, "stereo"), ("a.m4a", "aac", 48000, "mono"), ("a.ogg", "libopus", 48000, "stereo"),
     ("a.flac", "flac", 22050, "mono")],
)
def test_compressed_formats_decode_to_16k_mono(tmp_path, name, codec, rate, layout):
    channels = 2 if layout == "stereo" else 1
    path = encode(tmp_path / name, tone(rate, 1.0, channels=channels), rate, codec, layout)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / 16000 - 1.0) < 0.1  # codec priming / padding adds a few ms at most
    assert dominant_frequency(audio) == pytest.approx(440, abs=5)


def test_wav_stereo_is_averaged_and_resampled(tmp_path):
    rate = 44100
    left, right = tone(rate, 0.5, 300)[0], tone(rate, 0.5, 300)[0] * 0.0
    soundfile.write(tmp_path / "s.wav", np.stack([left, right], axis=1), rate, subtype="FLOAT")
    audio = load_audio(tmp_path / "s.wav")
    assert len(audio) == 8000
    assert np.abs(audio).max() == pytest.approx(0.25, abs=0.01)  # mean of the two channels
    assert dominant_frequency(audio) == pytest.approx(300, abs=5)


def test_16k_wav_is_read_exactly(tmp_path):
    samples = (np.random.default_rng(0).uniform(-0.5, 0.5, 4000)).astype(np.float32)
    soundfile.write(tmp_path / "x.wav", samples, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "x.wav"), samples)


def test_bad_audio_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(MoDAError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.mp3").write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(MoDAError, match="cannot decode|no audio"):
        load_audio(tmp_path / "junk.mp3")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(MoDAError, match="no audio samples|cannot decode"):
        load_audio(tmp_path / "empty.wav")


def test_video_without_audio_stream_is_rejected(tmp_path):
    with pytest.raises(MoDAError, match="no audio stream"):
        load_audio(write_blank_video(tmp_path / "silent.mp4"))
