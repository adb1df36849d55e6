import numpy as np
import pytest
import torch

from moda.audio.speech import FEATURE_DIM, SpeakerRelativeLevel, SpeechFeatureExtractor, StreamingSpeechFeatures
from moda.media.audio import load_audio
from tests.helpers import SHARED


@pytest.fixture(scope="module")
def speech():
    return load_audio(SHARED / "real" / "speech" / "chan3.wav")[: 16000 * 9]


@pytest.fixture(scope="module")
def extractor():
    return SpeechFeatureExtractor()


def test_shape_and_layout(speech, extractor):
    features = extractor(speech)
    assert features.shape == (len(speech) // 640, 4, FEATURE_DIM) == (225, 4, 30)
    visemes = features[..., :12]
    assert torch.all(visemes.sum(-1) == 1)  # one mouth class per 10 ms
    assert torch.all((features[..., 13] >= 0) & (features[..., 13] <= 1))  # voicing


def test_streaming_equals_offline(speech, extractor):
    stream = StreamingSpeechFeatures(extractor)
    pieces = [stream.push(speech[i : i + 2731]) for i in range(0, len(speech), 2731)]
    assert torch.equal(torch.cat(pieces + [stream.finish()]), extractor(speech))


def test_recording_level_does_not_move_the_features(speech, extractor):
    """A whisper-quiet recording and a loud one of the same speech: the same features but for rounding."""
    loud, quiet = extractor(speech), extractor(speech * 0.05)
    assert (loud[..., 12] - quiet[..., 12]).abs().mean() < 0.05  # loudness is relative to the speech
    assert (loud[..., 14:] - quiet[..., 14:]).abs().mean() < 0.1  # channel-normalised bands
    # what is said: the mouth classes of read speech (on chan3's telephone line, where words are barely heard, 83 %
    # agree: one block's words align at one level and not at the other, which then gets all-phone decoding's)
    read = load_audio(SHARED / "real" / "speech" / "something.wav")
    loud, quiet = extractor(read)[..., :12].argmax(-1), extractor(read * 0.05)[..., :12].argmax(-1)
    assert (loud == quiet).float().mean() > 0.95


def test_silence_is_silence(extractor):
    features = extractor(np.zeros(16000 * 2, np.float32))
    assert torch.all(features[..., 0] == 1)  # the silence class
    assert torch.all(features[..., 12] <= 0)


def test_speaker_relative_level_streams_exactly_and_hears_a_far_talker_as_quiet():
    """chan3 (a telephone line): its speaker from 8 s to 10 s, then only a talker 20-30 dB down until 16 s."""
    speech = load_audio(SHARED / "real" / "speech" / "chan3.wav")
    whole = SpeakerRelativeLevel()
    whole.push(speech)
    offline = whole.frames(0, len(speech) // 640)
    stream = SpeakerRelativeLevel()
    streamed = []
    for start in range(0, len(speech), 5000):
        stream.push(speech[start : start + 5000])
        ready = min((start + 5000) // 640 - 10, len(offline)) - sum(map(len, streamed))  # after 0.4 s of lookahead
        if ready > 0:
            streamed.append(stream.frames(sum(map(len, streamed)), ready))
    streamed.append(stream.frames(sum(map(len, streamed)), len(offline) - sum(map(len, streamed))))
    np.testing.assert_array_equal(np.concatenate(streamed), offline)
    assert np.median(offline[8 * 25 : 10 * 25]) > -10 and np.median(offline[13 * 25 : 16 * 25]) < -20
    quiet = SpeakerRelativeLevel()
    quiet.push(speech * 0.3)  # the recording level does not move it (but in digital near-silence)
    assert np.percentile(np.abs(quiet.frames(0, len(offline)) - offline), 95) < 0.5


def test_known_phones_stream_exactly_and_land_where_the_clip_has_them(speech, extractor):
    """A transcript's phones (`KnownPhones`) reach every block at their time in the clip, offline and streaming."""
    from moda.audio.phones import VISEMES, KnownPhones, Phone

    known = KnownPhones((Phone("SIL", 0.0, 5.0), Phone("M", 5.0, 5.2), Phone("AA", 5.2, 5.6), Phone("SIL", 5.6, 9.0)))
    with_known = extractor.with_phones(known)
    features = with_known(speech)  # 5 s is in the second block (3.2-6.4 s)
    classes = features[:, 2, :12].argmax(-1)  # at each frame's centre
    assert torch.all(classes[125:130] == VISEMES.index("bilabial")) and torch.all(classes[130:140] == VISEMES.index("open_vowel"))
    assert torch.all(classes[:125] == 0) and torch.all(classes[140:] == 0)
    stream = StreamingSpeechFeatures(with_known)
    pieces = [stream.push(speech[i : i + 2731]) for i in range(0, len(speech), 2731)]
    assert torch.equal(torch.cat(pieces + [stream.finish()]), features)


def test_phone_windows_are_the_windows_the_features_ask_phones_for(speech):
    """What `PhonesAhead` decodes ahead is exactly what computing the features (offline or streaming) asks for."""
    asked = []

    def source(window, start):
        asked.append((window.copy(), start))
        return []

    extractor = SpeechFeatureExtractor(phones=source)
    extractor(speech)
    stream = StreamingSpeechFeatures(extractor)
    for i in range(0, len(speech), 5000):
        stream.push(speech[i : i + 5000])
    stream.finish()
    given = list(extractor.phone_windows(speech))
    assert len(given) == 3 and len(asked) == 6
    for (window, start), (offline, offline_start), (streamed, streamed_start) in zip(given, asked[:3], asked[3:]):
        assert start == offline_start == streamed_start
        assert np.array_equal(window, offline) and np.array_equal(window, streamed)
