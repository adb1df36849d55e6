import numpy as np
import pytest
import torch
from transformers import HubertConfig

from moda.audio.features import (
    AudioFeatureConfig,
    AudioFeatureExtractor,
    normalize_waveform,
    pad_for_encoder,
    pcm16_round_trip,
    preemphasis,
    prepare_speech,
)
from moda.audio.hubert import HubertFrameEncoder
from moda.errors import MoDAError, WeightsNotFoundError


@pytest.fixture(scope="module")
def extractor() -> AudioFeatureExtractor:
    torch.manual_seed(0)
    config = HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                          conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    return AudioFeatureExtractor(HubertFrameEncoder.from_config(config))


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)


@pytest.mark.parametrize("samples,frames", [(640, 1), (1279, 1), (52800, 82), (8000, 12)])
def test_one_feature_per_whole_video_frame(extractor, samples, frames):
    features = extractor(speech_like(samples / 16000))
    assert features.shape == (frames, 2, 16)  # (T, layers 1..L, hidden)


def test_padding_gives_two_conv_steps_per_frame():
    for frames in (1, 12, 82):
        padded = pad_for_encoder(torch.zeros(1, 640 * frames))
        assert padded.shape[-1] == 640 * frames + 80
    ramp = torch.arange(640.0).unsqueeze(0)
    padded = pad_for_encoder(ramp)
    # reflect(20) applied twice: [20..1] then the second pad mirrors that back to [0..19]
    assert padded[0, :41].tolist() == list(range(20)) + list(range(20, -1, -1))


def test_long_audio_is_encoded_in_independent_pieces(extractor):
    config = AudioFeatureConfig(piece_seconds=1.0)
    chunked = AudioFeatureExtractor(extractor.encoder, config)
    audio = np.concatenate([speech_like(1.0, 1), 5 * speech_like(1.0, 2), speech_like(0.5, 3)])
    features = chunked(audio)
    assert features.shape[0] == 25 + 25 + 12
    expected = torch.cat([extractor(audio[:16000]), extractor(audio[16000:32000]), extractor(audio[32000:])])
    torch.testing.assert_close(features, expected)


def test_too_short_audio_is_a_clear_error(extractor):
    with pytest.raises(MoDAError, match="too short"):
        extractor(speech_like(0.02))


def test_normalisation_is_zero_mean_unit_variance():
    x = normalize_waveform(3 + 2 * speech_like(1.0))
    assert abs(x.mean()) < 1e-5 and abs(x.std() - 1) < 1e-3


def test_preemphasis_matches_librosa_initial_state():
    y = np.array([1.0, 2.0, 4.0, 3.0], dtype=np.float32)
    np.testing.assert_allclose(preemphasis(y), [3 * 1 - 2, 2 - 0.97, 4 - 1.94, 3 - 3.88], rtol=1e-6)


def test_prepare_speech_adds_a_quantised_silent_tail():
    speech = speech_like(1.0)
    prepared = prepare_speech(speech)
    assert prepared.silent_frames == 50
    assert len(prepared.waveform) == 16000 + 32000
    assert np.all(prepared.waveform[16000:] == 0)
    np.testing.assert_array_equal(prepared.waveform * 32768, np.round(prepared.waveform * 32768))
    np.testing.assert_allclose(prepared.waveform[:16000], preemphasis(speech), atol=1 / 32768)
    assert np.array_equal(pcm16_round_trip(prepared.waveform), prepared.waveform)


def test_missing_hubert_weights_offline_name_the_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    target = tmp_path / "chinese-hubert-base"
    with pytest.raises(WeightsNotFoundError, match="chinese-hubert-base"):
        HubertFrameEncoder.from_pretrained(target)
    with pytest.raises(WeightsNotFoundError, match="HuBERT weights not found"):
        HubertFrameEncoder.from_pretrained("TencentGameMate/chinese-hubert-base", local_files_only=True)


def test_pretrained_directory_round_trip(tmp_path, extractor):
    extractor.encoder.model.save_pretrained(tmp_path / "hubert")
    loaded = HubertFrameEncoder.from_pretrained(tmp_path / "hubert")
    audio = speech_like(0.5)
    torch.testing.assert_close(AudioFeatureExtractor(loaded)(audio), extractor(audio))
