import subprocess
import sys

import numpy as np
import pytest

from moda.motion.landmark_space import mouth_opening
from moda.shards import load_clip, shard_paths
from moda.training.synthetic.motion import blink_curve, synthesize_motion
from moda.training.synthetic.speech import Espeak, Phoneme
from moda.training.synthetic.visemes import mouth_shapes, viseme_target


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


def test_visemes_close_for_bilabials_and_open_for_open_vowels():
    assert viseme_target("ɑː")[0] > 0.8 and viseme_target("uː")[2] == 1.0 and viseme_target("oʊ")[2] > 0.5
    phonemes = [Phoneme("ɑ", 0.0, 0.3), Phoneme("m", 0.3, 0.5), Phoneme("ɑ", 0.5, 0.8)]
    shapes = mouth_shapes(phonemes, 0.8)
    assert shapes.shape == (20, 3)
    opening = shapes[:, 0]
    assert opening[3] > 0.7 and opening[16] > 0.7  # inside the vowels
    assert opening[10] < 0.05  # the lips meet for the m, whatever surrounds it
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
