"""A synthetic talking-head corpus that needs nothing from outside: espeak-ng speech, phoneme-timed mouth
shapes, head motion and blinks in the landmark motion space, and log-mel audio features.

`moda synthesize-corpus --out data/synthetic` writes train/ and heldout/ shard folders; held-out shards also
carry the ground-truth mouth opening (`extra.mouth_open`) for `moda eval`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ...audio.logmel import LogMelExtractor
from ...shards import SHARD_SUFFIX, Clip, save_clip
from .motion import synthesize_motion
from .speech import Espeak
from .visemes import mouth_shapes

SUBJECTS = ["the old man", "my sister", "a small dog", "the teacher", "our neighbour", "the pilot", "every child",
            "the doctor", "a quiet girl", "the farmer", "my friend", "the captain", "his mother", "the baker"]
VERBS = ["bought", "found", "painted", "opened", "watched", "carried", "pushed", "moved", "cleaned", "built",
         "played with", "looked at", "waited for", "talked about", "forgot", "remembered", "fixed", "brought"]
OBJECTS = ["a blue boat", "the heavy box", "some fresh bread", "the broken window", "a paper map", "the big piano",
           "an orange balloon", "the wooden bridge", "a shiny coin", "the purple umbrella", "my bicycle",
           "the morning paper", "a bowl of soup", "the yellow kite", "two white mugs", "the garden gate"]
PLACES = ["near the river", "before lunch", "in the kitchen", "after the storm", "at the market", "on Monday",
          "by the window", "under the bridge", "behind the school", "every morning", "with great care", "too slowly"]
EXTRAS = ["Really?", "Oh well.", "Why not!", "Maybe tomorrow.", "That was amazing.", "Please wait here.",
          "Look out!", "Thank you so much.", "Who knows?", "Absolutely.", "No, never."]


def random_sentence(rng: np.random.Generator) -> str:
    sentence = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
    if rng.random() < 0.7:
        sentence += f" {rng.choice(PLACES)}"
    sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", ".", "!", "?"])
    return sentence + (f" {rng.choice(EXTRAS)}" if rng.random() < 0.3 else "")


@dataclass
class SyntheticClip:
    clip: Clip
    waveform: np.ndarray  # 16 kHz
    text: str


class CorpusSynthesizer:
    def __init__(self, ref_kp: np.ndarray, seed: int = 0):
        self.espeak = Espeak()
        self.features = LogMelExtractor()
        self.ref_kp = ref_kp.astype(np.float32)  # (21, 3)
        self.rng = np.random.default_rng(seed)

    def utterance(self, sentences: int) -> SyntheticClip:
        """A clip of `sentences` sentences with short pauses, at a random speaking rate and pitch."""
        self.espeak.set_rate(int(self.rng.integers(140, 200)))
        self.espeak.set_pitch(int(self.rng.integers(25, 75)))
        parts, phonemes, offset, texts = [], [], 0.0, []
        for _ in range(sentences):
            text = random_sentence(self.rng)
            utterance = self.espeak.synthesize(text)
            pause = np.zeros(int(self.rng.uniform(0.1, 0.5) * 16000), dtype=np.float32)
            parts += [utterance.waveform, pause]
            phonemes += [type(p)(p.symbol, p.start + offset, p.end + offset) for p in utterance.phonemes]
            offset += (len(utterance.waveform) + len(pause)) / 16000
            texts.append(text)
        waveform = np.concatenate(parts)
        frames = len(waveform) // 640
        shapes = mouth_shapes(phonemes, offset)[:frames]
        energy = np.sqrt((waveform[: frames * 640].reshape(frames, 640) ** 2).mean(1))
        energy = energy / (energy.max() + 1e-8)
        identity = self.ref_kp * np.array([self.rng.uniform(0.95, 1.05), self.rng.uniform(0.95, 1.05), 1.0], np.float32)
        motion = synthesize_motion(shapes, energy, identity, self.rng)
        features = self.features(waveform)[:frames]
        clip = Clip(torch.from_numpy(motion), features, torch.from_numpy(identity.reshape(-1)),
                    extras={"mouth_open": torch.from_numpy(shapes[:, 0].copy())}, source=" ".join(texts))
        return SyntheticClip(clip, waveform, " ".join(texts))


def canonical_keypoints() -> np.ndarray:
    """The 21 landmark keypoints of the sample portrait, in motion space."""
    from ...face.landmarks import FaceMeshDetector
    from ...motion.landmark_space import FaceFrame
    from ...samples import sample_portrait

    with FaceMeshDetector() as detector:
        return FaceFrame.from_face(detector.largest(sample_portrait())).kp


def synthesize_corpus(out: str | Path, clips: int, heldout: int, seed: int = 0, progress: bool = True) -> Path:
    out = Path(out)
    synthesizer = CorpusSynthesizer(canonical_keypoints(), seed)
    for split, count in (("train", clips), ("heldout", heldout)):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for index in tqdm(range(count), desc=f"synthesize {split}", disable=not progress):
            path = folder / f"{split}_{index:05d}{SHARD_SUFFIX}"
            sample = synthesizer.utterance(int(synthesizer.rng.integers(2, 4)))  # draw even when skipping
            if not path.exists():
                save_clip(path, sample.clip)
    return out


