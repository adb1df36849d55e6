"""When the default model's mouth moves, relative to the sound and to the recognised phones.

    python benchmarks/mouth_timing.py [--real ../shared/real] [--espeak-clips 8]

Prints, for espeak-ng clips and for the real speech in ../shared/real:
  - the correlation of a mouth-opening track with the speech's loudness envelope at lags of -3..+3 frames, and
    the peak lag to a fraction of a frame (parabola through the best lag and its neighbours; positive: the
    mouth trails the sound). On espeak clips, the corpus's training target (`mouth_shapes` of espeak's phoneme
    timings) is shown beside the generated mouth;
  - on the real clips, the vowel-vs-bilabial d of the generated motion (scorer's phone labels) with the motion
    moved earlier by 0 to 1 frame: where d peaks is how far the mouth trails the recognised phones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from moda import Pipeline
from moda.audio.phones import BILABIALS, OPEN_VOWELS, phone_track, recognize_phones
from moda.emotion import NULL_EMOTION
from moda.evaluation.metrics import lag_correlations, peak_lag
from moda.evaluation.score import cohens_d, loudness_envelope
from moda.generator.sampler import Guidance
from moda.media.audio import load_audio
from moda.media.image import limit_size, load_image
from moda.motion.landmark_space import mouth_opening
from moda.pipeline.backend import MotionRequest
from moda.timebase import SAMPLE_RATE, SAMPLES_PER_FRAME
from moda.training.synthetic.corpus import VOICES, random_sentence
from moda.training.synthetic.speech import Espeak
from moda.training.synthetic.visemes import mouth_shapes

LAGS = np.arange(-3, 4)
EARLIER = (0.0, 0.25, 0.5, 0.75, 1.0)  # frames


def lag_curve(opening: np.ndarray, envelope: np.ndarray) -> np.ndarray:
    """Pearson r of the opening with the envelope at each of `LAGS` (positive: the opening trails)."""
    correlations = lag_correlations(opening, envelope, int(LAGS[-1]))
    return np.array([correlations[lag] for lag in LAGS])


def show(name: str, curves: list[np.ndarray]) -> None:
    mean = np.mean(curves, axis=0)
    peak = peak_lag(dict(zip(LAGS.tolist(), mean)))
    print(f"{name:<34} " + " ".join(f"{r:6.3f}" for r in mean) + f"   peak {peak:+.2f} frames")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", default=str(Path(__file__).resolve().parents[2] / "shared" / "real"))
    parser.add_argument("--espeak-clips", type=int, default=8)
    args = parser.parse_args()
    real = Path(args.real)
    backend = Pipeline.default().backend
    subject = backend.prepare(limit_size(load_image(real / "faces" / "s42.jpg")), "s42.jpg")

    def generated_opening(waveform: np.ndarray) -> np.ndarray:
        request = MotionRequest(NULL_EMOTION, Guidance(backend.default_guidance, None), torch.Generator().manual_seed(0))
        return mouth_opening(backend.motion(subject, waveform, request))[: len(waveform) // SAMPLES_PER_FRAME]

    print(f"{'r with the loudness envelope, lag':<34} " + " ".join(f"{lag:+6d}" for lag in LAGS))
    espeak, rng = Espeak(), np.random.default_rng(5)
    targets, generated = [], []
    for index in range(args.espeak_clips):
        espeak.set_voice(VOICES[index % len(VOICES)])
        espeak.set_rate(int(rng.integers(130, 210)))
        utterance = espeak.synthesize(f"{random_sentence(rng)} {random_sentence(rng)}")
        frames = len(utterance.waveform) // SAMPLES_PER_FRAME
        envelope = loudness_envelope(utterance.waveform, frames)
        target = mouth_shapes(utterance.phonemes, len(utterance.waveform) / SAMPLE_RATE)[:frames, 0]
        targets.append(lag_curve(target, envelope))
        generated.append(lag_curve(generated_opening(utterance.waveform), envelope))
    show("espeak: training target", targets)
    show("espeak: generated mouth", generated)

    generated = []
    shifted: dict[float, list[float]] = {shift: [] for shift in EARLIER}
    for path in sorted((real / "speech").glob("*.wav")):
        waveform = load_audio(path)
        frames = len(waveform) // SAMPLES_PER_FRAME
        opening = generated_opening(waveform)
        generated.append(lag_curve(opening, loudness_envelope(waveform, frames)))
        labels = phone_track(recognize_phones(waveform), frames)
        vowels = np.array([label in OPEN_VOWELS for label in labels])
        bilabials = np.array([label in BILABIALS for label in labels])
        if bilabials.sum() >= 2:
            t = np.arange(frames, dtype=np.float64)
            for shift in EARLIER:
                moved = np.interp(t + shift, t, opening)
                shifted[shift].append(cohens_d(moved[vowels], moved[bilabials]))
    show("real speech: generated mouth", generated)
    print("\nvowel vs bilabial d of the generated motion on real speech, moved earlier by (frames):")
    print("  " + " ".join(f"{shift:6.2f}" for shift in EARLIER))
    print("  " + " ".join(f"{np.nanmean(values):6.2f}" for values in shifted.values()))


if __name__ == "__main__":
    main()
