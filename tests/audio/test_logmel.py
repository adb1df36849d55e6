import numpy as np
import pytest
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

from moda.audio.logmel import LogMelExtractor, StreamingLogMel


@pytest.fixture(scope="module")
def extractor():
    return LogMelExtractor()


def test_filters_and_window_equal_the_transformers_ones(extractor):
    config = extractor.config
    window = window_function(config.win_length, "hann", frame_length=config.n_fft)
    filters = mel_filter_bank(num_frequency_bins=config.n_fft // 2 + 1, num_mel_filters=config.n_mels,
                              min_frequency=config.f_min, max_frequency=config.f_max, sampling_rate=16000,
                              norm="slaney", mel_scale="slaney")
    np.testing.assert_allclose(extractor.window, window, atol=1e-12)
    np.testing.assert_allclose(extractor.filters, filters, rtol=1e-9, atol=1e-12)


def test_log_mel_equals_the_transformers_spectrogram(extractor):
    config = extractor.config
    waveform = np.random.default_rng(0).normal(0, 0.1, 16000 * 2 + 123).astype(np.float32)
    expected = spectrogram(waveform, window_function(config.win_length, "hann", frame_length=config.n_fft),
                           frame_length=config.n_fft, hop_length=config.hop_length, power=2.0,
                           mel_filters=extractor.filters, log_mel="log10", mel_floor=1e-10)  # (n_mels, frames)
    np.testing.assert_allclose(extractor.log_mel(waveform), expected.T, atol=1e-5)


def test_frames_hold_four_mel_steps_and_streaming_gives_the_same_values(extractor):
    waveform = np.random.default_rng(1).normal(0, 0.1, 16000 * 3).astype(np.float32)
    whole = extractor(waveform)
    assert whole.shape == (75, 4, 80)
    stream = StreamingLogMel(extractor)
    pieces = [stream.push(waveform[start : start + 7000]) for start in range(0, len(waveform), 7000)]
    np.testing.assert_allclose(np.concatenate([p.numpy() for p in pieces + [stream.finish()]]), whole.numpy(),
                               atol=1e-5)
