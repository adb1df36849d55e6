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


def _silent_flac(path: Path, seconds: int, rate: int = 48000) -> Path:
    """A few hundred kB of FLAC that decode to `seconds` of stereo silence (a decompression bomb)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=rate, layout="stereo")
        second = np.zeros((1, 2 * rate), np.int16)
        for index in range(seconds):
            frame = av.AudioFrame.from_ndarray(second, format="s16", layout="stereo")
            frame.sample_rate, frame.pts = rate, index * rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_a_duration_limit_refuses_long_audio_before_decoding_it(tmp_path):
    import time

    bomb = _silent_flac(tmp_path / "bomb.flac", 1200)
    assert bomb.stat().st_size < 2_000_000
    started = time.perf_counter()
    with pytest.raises(MoDAError, match="1200 s long; the limit is 60 s"):
        load_audio(bomb, max_duration=60)
    assert time.perf_counter() - started < 1.0  # read from the header, nothing decoded
    # a stream with no declared duration (raw ADTS AAC) is stopped while decoding, at the limit
    raw = encode(tmp_path / "long.aac", tone(16000, 20.0), 16000, "aac")
    with pytest.raises(MoDAError, match="the limit is 5 s"):
        load_audio(raw, max_duration=5)
    assert len(load_audio(raw, max_duration=30)) == pytest.approx(20 * 16000, rel=0.01)
    with pytest.raises(MoDAError, match="not a positive number"):
        load_audio(raw, max_duration=float("nan"))


def test_decoding_streams_so_memory_follows_the_16k_result_not_the_source(tmp_path):
    import tracemalloc

    source = _silent_flac(tmp_path / "ten_minutes.flac", 600)
    tracemalloc.start()
    try:
        audio = load_audio(source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(audio) == 600 * 16000
    # the 16 kHz result is 38 MB; the 48 kHz stereo float source would be 230 MB
    assert peak < 3 * audio.nbytes, peak / 1e6


def test_phase_inverted_stereo_uses_one_channel_and_says_so(tmp_path):
    left = tone(44100, 1.0, 300)[0]
    soundfile.write(tmp_path / "inverted.wav", np.stack([left, -left], axis=1), 44100, subtype="FLOAT")
    with pytest.warns(UserWarning, match="cancel when mixed"):
        audio = load_audio(tmp_path / "inverted.wav")
    assert np.abs(audio).max() == pytest.approx(0.5, abs=0.01) and dominant_frequency(audio) == pytest.approx(300, abs=5)
