"""The default backend's shipped tiny model: emotions shape the face the way their styles describe."""

import numpy as np
import pytest
import torch

from moda.emotion import NULL_EMOTION, emotion_id
from moda.generator.sampler import Guidance
from moda.media.audio import load_audio
from moda.motion.landmark_space import BROWS, EYELIDS, LEFT_MOUTH_CORNER, RIGHT_MOUTH_CORNER
from moda.pipeline.backend import MotionRequest
from moda.pipeline.default import TinyBackend
from moda.samples import sample_path, sample_portrait


@pytest.fixture(scope="module")
def faces():
    """Mean mouth-corner and brow height (y grows downward) and eye opening of the generated motion, per emotion."""
    backend = TinyBackend.shipped()
    assert backend.capabilities.emotions
    subject = backend.prepare(sample_portrait(), "sample")
    speech = load_audio(sample_path("speech.wav"))
    measured = {}
    for name in ("none", "happy", "sad", "surprised", "angry"):
        emotion = NULL_EMOTION if name == "none" else emotion_id(name)
        motion = backend.motion(subject, speech, MotionRequest(emotion, Guidance(1.5), torch.Generator().manual_seed(0)))
        exp = motion[:, :63].reshape(-1, 21, 3)
        measured[name] = {"corners": exp[:, [LEFT_MOUTH_CORNER, RIGHT_MOUTH_CORNER], 1].mean(),
                          "brows": exp[:, list(BROWS), 1].mean(),
                          "eyes": np.mean([exp[:, lower, 1] - exp[:, upper, 1] for upper, lower in EYELIDS])}
    return measured


def test_happy_lifts_the_mouth_corners_and_sad_lowers_them(faces):
    assert faces["happy"]["corners"] < faces["none"]["corners"] - 0.02 < faces["sad"]["corners"] - 0.04
    assert faces["happy"]["brows"] < faces["sad"]["brows"] - 0.02  # sad brows sit lower


def test_surprise_raises_the_brows_and_widens_the_eyes_and_anger_lowers_the_brows(faces):
    assert faces["surprised"]["brows"] < faces["none"]["brows"] - 0.03 < faces["angry"]["brows"] - 0.06
    assert faces["surprised"]["eyes"] > faces["none"]["eyes"] + 0.02


def test_motion_pieces_equal_the_motion_of_the_whole_clip_at_once():
    """Generation renders piece by piece as windows complete; the pieces are exactly what generating from the
    whole clip's features in one call, and articulating the whole clip's motion at once, gives."""
    from moda.audio.phones import VISEMES
    from moda.audio.speech import SpeakerRelativeLevel
    from moda.generator.chaining import generate_motion
    from moda.motion.articulation import ArticulationCues, articulate
    from moda.motion.landmark_space import neutral_prompt

    backend = TinyBackend.shipped()
    subject = backend.prepare(sample_portrait(), "sample")
    speech = load_audio(sample_path("speech.wav"))
    pieces = list(backend.motion_pieces(subject, speech, MotionRequest(3, Guidance(2.5), torch.Generator().manual_seed(4))))
    assert len(pieces) >= 2 and all(len(piece) for piece in pieces)
    features = backend.features(speech)
    whole = generate_motion(backend.generator, features, torch.from_numpy(subject.frame.kp.reshape(1, -1)),
                            neutral_prompt(backend.stats), 3, Guidance(2.5), torch.Generator().manual_seed(4),
                            backend.chaining)
    levels = SpeakerRelativeLevel()
    levels.push(speech)
    cues = ArticulationCues(features[:, 2, VISEMES.index("bilabial")].numpy(), levels.frames(0, len(features)))
    np.testing.assert_array_equal(np.concatenate(pieces), articulate(backend.stats.denormalize(whole).numpy(), cues))


def test_real_speech_closes_on_heard_bilabials_and_a_far_talker_barely_moves_the_mouth():
    """chan3 (a telephone line): the speaker until 10 s, then only another talker 20-30 dB down until 16 s."""
    from moda.audio.phones import VISEMES
    from moda.motion.landmark_space import INNER_GAP_PER_OPENING, mouth_opening
    from tests.helpers import SHARED

    backend = TinyBackend.shipped()
    subject = backend.prepare(sample_portrait(), "sample")
    speech = load_audio(SHARED / "real" / "speech" / "chan3.wav")[: 16 * 16000]
    motion = backend.motion(subject, speech, MotionRequest(NULL_EMOTION, Guidance(2.5), torch.Generator().manual_seed(0)))
    opening = mouth_opening(motion) / INNER_GAP_PER_OPENING
    heard = backend.features(speech)[:, 2, VISEMES.index("bilabial")].numpy()  # at each frame's centre
    assert heard.sum() >= 10 and np.all(opening[heard == 1] <= 0.01)
    speaker, far = opening[: 10 * 25], opening[int(10.5 * 25) :]
    assert np.percentile(far, 90) < 0.6 * np.percentile(speaker, 90), (np.percentile(far, 90), np.percentile(speaker, 90))


def test_a_transcript_closes_the_lips_on_its_bilabials():
    """goforward, with the words given: the mouth closes on the M of "meters" and opens on the vowels."""
    from moda.audio.phones import align_phones, phone_track
    from moda.motion.landmark_space import INNER_GAP_PER_OPENING, mouth_opening
    from tests.helpers import SHARED

    backend = TinyBackend.shipped()
    subject = backend.prepare(sample_portrait(), "sample")
    speech = load_audio(SHARED / "real" / "speech" / "goforward.wav")
    phones = tuple(align_phones(speech, "go forward ten meters"))
    labels = np.array(phone_track(list(phones), len(speech) // 640))
    request = MotionRequest(NULL_EMOTION, Guidance(2.5), torch.Generator().manual_seed(0), phones)
    opening = mouth_opening(backend.motion(subject, speech, request)) / INNER_GAP_PER_OPENING
    assert (labels == "M").sum() >= 2 and np.all(opening[labels == "M"] <= 0.01)
    assert np.percentile(opening[np.isin(labels, ["AO", "EH"])], 50) > 0.3  # its vowels still open


@pytest.mark.parametrize("voice,text", [("cmn", "我们今天去北京看朋友。然后一起吃饭。"),
                                        ("es", "Buenos días, me llamo Pablo. Mañana vamos a la playa.")])
def test_speech_in_other_languages_moves_the_mouth_with_it(voice, text):
    """Mandarin and Spanish (espeak-ng voices; the recogniser knows English phones only): the mouth opens with the
    syllables and rests in the pauses around them (measured: envelope r 0.64 and 0.71)."""
    from moda.evaluation.score import best_lag, loudness_envelope
    from moda.motion.landmark_space import INNER_GAP_PER_OPENING, mouth_opening
    from moda.training.synthetic.speech import Espeak

    backend = TinyBackend.shipped()
    subject = backend.prepare(sample_portrait(), "sample")
    pause = np.zeros(8000, np.float32)
    speech = np.concatenate([pause, Espeak(voice).synthesize(text).waveform.astype(np.float32), pause])
    motion = backend.motion(subject, speech, MotionRequest(NULL_EMOTION, Guidance(2.5), torch.Generator().manual_seed(0)))
    opening = mouth_opening(motion) / INNER_GAP_PER_OPENING
    envelope = loudness_envelope(speech, len(opening))
    quiet = envelope < 0.05 * envelope.max()
    assert best_lag(opening, envelope, 5)[1] > 0.5
    assert np.percentile(opening[~quiet], 90) > 0.4 and np.percentile(opening[quiet], 90) < 0.1
