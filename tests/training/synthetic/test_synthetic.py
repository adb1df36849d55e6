import subprocess
import sys

import numpy as np
import pytest

from moda.audio.phones import VISEMES
from moda.evaluation.metrics import lag_correlations, peak_lag
from moda.evaluation.score import loudness_envelope
from moda.motion.landmark_space import mouth_opening
from moda.shards import load_clip, shard_paths
from moda.timebase import SAMPLES_PER_FRAME
from moda.training.synthetic.corpus import VOICES, random_sentence
from moda.training.synthetic.motion import blink_curve, synthesize_motion
from moda.training.synthetic.speech import Espeak, Phoneme
from moda.training.synthetic.visemes import exact_visemes, mouth_shapes, viseme_class, viseme_target


@pytest.fixture(scope="module")
def espeak():
    return Espeak()


def test_phoneme_timings_cover_the_speech(espeak):
    utterance = espeak.synthesize("Mama made a map.")
    assert utterance.sample_rate == 16000 and utterance.waveform.dtype == np.float32
    assert 0.5 < utterance.duration < 3
    symbols = [p.symbol for p in utterance.phonemes]
    assert symbols.count("m") >= 3 and "p" in symbols
    starts = [p.start for p in utterance.phonemes]
    assert starts == sorted(starts) and all(p.end > p.start for p in utterance.phonemes)
    assert utterance.phonemes[-1].end <= utterance.duration + 1e-6
    # the timings match the sound: the open vowel is far louder than the nasal murmur of the m before it
    first_vowel = next(p for p in utterance.phonemes if p.symbol.startswith(("a", "ɑ")))
    rms = lambda a, b: np.sqrt(np.mean(utterance.waveform[int(a * 16000) : int(b * 16000)] ** 2))  # noqa: E731
    assert rms(first_vowel.start, first_vowel.end) > 3 * rms(0, 0.01)


def test_mouth_targets_from_the_phoneme_timings_move_with_the_sound(espeak):
    """espeak-ng's events trail its sound (`EVENT_LAG_SECONDS`): the mouth targets of the corrected timings
    follow the loudness envelope within a third of a frame (from the raw events, 0.8 frame late)."""
    rng = np.random.default_rng(5)
    curves = []
    for voice in VOICES[:6]:
        espeak.set_voice(voice)
        utterance = espeak.synthesize(f"{random_sentence(rng)} {random_sentence(rng)}")
        frames = len(utterance.waveform) // SAMPLES_PER_FRAME
        target = mouth_shapes(utterance.phonemes, utterance.duration)[:frames, 0]
        correlations = lag_correlations(target, loudness_envelope(utterance.waveform, frames), 3)
        curves.append([correlations[lag] for lag in range(-3, 4)])
    espeak.set_voice("en-us")
    assert abs(peak_lag(dict(zip(range(-3, 4), np.mean(curves, axis=0))))) < 0.34


def test_visemes_close_for_bilabials_and_open_for_open_vowels():
    assert viseme_target("ɑː")[0] > 0.8 and viseme_target("uː")[2] == 1.0 and viseme_target("oʊ")[2] > 0.5
    phonemes = [Phoneme("ɑ", 0.0, 0.3), Phoneme("m", 0.3, 0.5), Phoneme("ɑ", 0.5, 0.8)]
    shapes = mouth_shapes(phonemes, 0.8)
    assert shapes.shape == (20, 3)
    opening = shapes[:, 0]
    assert opening[3] > 0.7 and opening[16] > 0.7  # inside the vowels
    assert opening[10] < 0.05  # the lips meet for the m, whatever surrounds it
    assert np.all(opening[8:12] < 0.1)  # ... for all of it, not only its middle
    assert np.all(np.abs(np.diff(opening)) < 0.5)  # co-articulation: no jumps


def test_synthetic_motion_follows_the_mouth_shapes():
    rng = np.random.default_rng(0)
    frames = 200
    shapes = np.stack([0.5 + 0.5 * np.sin(np.arange(frames) / 3), np.full(frames, 0.45), np.zeros(frames)], 1).astype(np.float32)
    kp = rng.normal(size=(21, 3)).astype(np.float32)
    motion = synthesize_motion(shapes, rng.random(frames), kp, rng)
    assert motion.shape == (200, 70) and np.all(motion[:, 66] == 0)
    assert np.corrcoef(mouth_opening(motion), shapes[:, 0])[0, 1] > 0.99
    assert 0.2 < motion[:, 67:70].std(0).mean() < 20  # the head moves, within reason (degrees)
    blinks = blink_curve(2500, rng)
    assert 10 < (np.diff((blinks > 0.5).astype(int)) == 1).sum() < 60  # about 0.3 blinks a second over 100 s


def test_corpus_command_writes_train_and_heldout_shards(tmp_path):
    run = subprocess.run([sys.executable, "-m", "moda", "synthesize-corpus", "--out", str(tmp_path), "--clips", "3",
                          "--heldout", "1", "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    train, heldout = shard_paths(tmp_path / "train"), shard_paths(tmp_path / "heldout")
    assert len(train) == 3 and len(heldout) == 1
    clip = load_clip(heldout[0])
    frames = clip.motion.shape[0]
    assert frames > 80 and clip.audio.shape == (frames, 4, 30) and clip.extras["mouth_open"].shape == (frames,)
    assert np.corrcoef(mouth_opening(clip.motion.numpy()), clip.extras["mouth_open"].numpy())[0, 1] > 0.95
    assert clip.source.endswith((".", "!", "?"))


def test_emotions_shape_the_face_the_expected_way():
    from moda.emotion import emotion_id
    from moda.motion.landmark_space import BROWS, LEFT_MOUTH_CORNER, RIGHT_MOUTH_CORNER
    from moda.training.synthetic.motion import style_of

    rng = np.random.default_rng(1)
    shapes = np.tile(np.array([[0.3, 0.45, 0.0]], np.float32), (100, 1))
    kp = rng.normal(size=(21, 3)).astype(np.float32)
    faces = {}
    for name in ("happy", "sad", "surprised", "angry"):
        motion = synthesize_motion(shapes, np.zeros(100), kp, np.random.default_rng(2), style_of(emotion_id(name)))
        exp = motion[:, :63].reshape(-1, 21, 3)
        faces[name] = {"corners": exp[:, [LEFT_MOUTH_CORNER, RIGHT_MOUTH_CORNER], 1].mean(),
                       "brows": exp[:, list(BROWS), 1].mean(), "head": motion[:, 67:70].std()}
    assert faces["happy"]["corners"] < faces["sad"]["corners"]  # y grows downward: happy corners are higher
    assert faces["surprised"]["brows"] < faces["happy"]["brows"] < faces["angry"]["brows"]
    assert faces["sad"]["head"] < faces["angry"]["head"]


def test_degraded_speech_keeps_its_timing():
    from moda.training.synthetic.augment import codec_round_trip, degrade

    rng = np.random.default_rng(0)
    speech = Espeak().synthesize("Papa bought a map.").waveform
    for codec in ("mp3", "aac", "libopus"):
        decoded = codec_round_trip(speech, codec, 32000)
        assert len(decoded) == len(speech) and np.corrcoef(decoded, speech)[0, 1] > 0.9, codec
    degraded = degrade(speech, rng)
    assert degraded.shape == speech.shape and np.isfinite(degraded).all() and np.abs(degraded).max() <= 1.0


def test_exact_phone_channels_name_the_mouth_class_of_each_phoneme():
    classes = {symbol: VISEMES[viseme_class(symbol)] for symbol in ("m", "b", "aɪ", "ə", "iː", "uː", "f", "tʃ", "w", "")}
    assert classes == {"m": "bilabial", "b": "bilabial", "aɪ": "open_vowel", "ə": "open_vowel", "iː": "close_vowel",
                       "uː": "rounded_vowel", "f": "labiodental", "tʃ": "postalveolar", "w": "rounded_consonant",
                       "": "silence"}
    phonemes = [Phoneme("m", 0.10, 0.20), Phoneme("ɑ", 0.20, 0.40)]
    track = exact_visemes(phonemes, 50, 0.01, np.random.default_rng(0), jitter=0.0)
    assert track.shape == (50, len(VISEMES)) and np.all(track.sum(1) == 1)
    names = [VISEMES[i] for i in track.argmax(1)]
    assert names[:10] == ["silence"] * 10 and names[10:20] == ["bilabial"] * 10 and names[20:40] == ["open_vowel"] * 20
    jittered = exact_visemes(phonemes, 50, 0.01, np.random.default_rng(0), jitter=0.02).argmax(1)
    assert 0 < (jittered != track.argmax(1)).sum() <= 8  # boundaries move by up to 2 steps each


def test_a_share_of_training_clips_carries_exact_phone_channels():
    import torch

    from moda.training.synthetic.corpus import CorpusSynthesizer

    synthesizer = CorpusSynthesizer(np.random.default_rng(0).normal(size=(21, 3)).astype(np.float32), seed=3)
    clips = [synthesizer.utterance(1) for _ in range(8)]
    exact = [clip for clip in clips if clip.exact_visemes is not None]
    assert 0 < len(exact) < len(clips)  # both kinds, so the model learns to trust and to doubt recognition
    clip = exact[0]
    frames = len(clip.motion)
    stored = clip.to_clip(torch.zeros(frames, 4, 30))
    assert torch.equal(stored.audio[..., : len(VISEMES)].reshape(-1, len(VISEMES)),
                       torch.from_numpy(clip.exact_visemes[: frames * 4]))
    bilabial = stored.audio[..., VISEMES.index("bilabial")].amax(1) > 0
    assert bilabial.any() and clip.mouth_open[bilabial.numpy()].mean() < 0.5 * clip.mouth_open.mean()
    synthesizer.augment = False  # held-out clips are scored as the pipeline hears them: recognised phones
    assert synthesizer.utterance(1).exact_visemes is None
