"""Phonemes -> mouth shapes per video frame, with co-articulation; and phonemes -> the default front-end's
mouth classes (`moda.audio.phones.VISEMES`), for training clips whose phone channels are exact.

Each IPA phoneme has a target (open, wide, round) in [0, 1]. The targets are laid on a 1 kHz timeline,
blended by a Gaussian (neighbouring phonemes shape each other: co-articulation), and bilabial closures
(p, b, m) are then enforced over the whole phoneme, since lips meet for them whatever surrounds them.
"""

from __future__ import annotations

import numpy as np

from ...audio.phones import VISEMES
from ...timebase import FPS
from .speech import Phoneme

TIMELINE_RATE = 1000  # samples per second of the target timeline
COARTICULATION_SIGMA = 0.035  # seconds

# (open, wide, round)
VOWELS = {
    "a": (0.9, 0.5, 0.0), "ɑ": (0.9, 0.4, 0.1), "æ": (0.85, 0.7, 0.0), "ɐ": (0.75, 0.5, 0.0), "ʌ": (0.65, 0.5, 0.0),
    "ɛ": (0.6, 0.65, 0.0), "e": (0.5, 0.7, 0.0), "ə": (0.45, 0.45, 0.0), "ɜ": (0.45, 0.5, 0.1), "ɚ": (0.4, 0.4, 0.3),
    "ɪ": (0.3, 0.7, 0.0), "i": (0.25, 0.85, 0.0), "ᵻ": (0.3, 0.6, 0.0), "o": (0.5, 0.2, 0.8), "ɔ": (0.6, 0.25, 0.7),
    "ɒ": (0.7, 0.3, 0.5), "ʊ": (0.3, 0.2, 0.85), "u": (0.25, 0.1, 1.0),
}
CONSONANTS = {
    "p": (0.0, 0.4, 0.0), "b": (0.0, 0.4, 0.0), "m": (0.0, 0.4, 0.0),
    "f": (0.1, 0.5, 0.0), "v": (0.1, 0.5, 0.0), "θ": (0.2, 0.5, 0.0), "ð": (0.2, 0.5, 0.0),
    "t": (0.18, 0.5, 0.0), "d": (0.18, 0.5, 0.0), "n": (0.15, 0.5, 0.0), "l": (0.25, 0.5, 0.0),
    "s": (0.12, 0.65, 0.0), "z": (0.12, 0.65, 0.0), "ɾ": (0.2, 0.5, 0.0),
    "ʃ": (0.2, 0.3, 0.6), "ʒ": (0.2, 0.3, 0.6), "tʃ": (0.2, 0.3, 0.6), "dʒ": (0.2, 0.3, 0.6),
    "k": (0.3, 0.5, 0.0), "ɡ": (0.3, 0.5, 0.0), "g": (0.3, 0.5, 0.0), "ŋ": (0.25, 0.5, 0.0), "h": (0.4, 0.5, 0.0),
    "w": (0.1, 0.1, 1.0), "ɹ": (0.2, 0.3, 0.5), "r": (0.2, 0.3, 0.5), "j": (0.2, 0.7, 0.0),
}
BILABIALS = {"p", "b", "m"}
REST = (0.0, 0.45, 0.0)
CLOSURE_EDGE = 0.1  # share of a bilabial's duration at each end where the lips are still meeting or parting

# The CMU mouth class (`moda.audio.phones.VISEME_CLASSES`) of each IPA symbol; schwa is CMU's AH (open vowel).
VISEME_CLASS_OF = {
    **dict.fromkeys("aɑæɐʌə", "open_vowel"), **dict.fromkeys("ɛeɜɚ", "mid_vowel"), **dict.fromkeys("ɪiᵻ", "close_vowel"),
    **dict.fromkeys("oɔɒʊu", "rounded_vowel"), **dict.fromkeys("pbm", "bilabial"), **dict.fromkeys("fv", "labiodental"),
    **dict.fromkeys(["θ", "ð", "t", "d", "n", "l", "s", "z", "ɾ"], "dental_alveolar"),
    **dict.fromkeys(["ʃ", "ʒ", "tʃ", "dʒ"], "postalveolar"), **dict.fromkeys(["k", "ɡ", "g", "ŋ", "h"], "back"),
    **dict.fromkeys(["w", "ɹ", "r"], "rounded_consonant"), "j": "palatal",
}


def _base_symbol(symbol: str) -> str | None:
    """The table key of an IPA phoneme: itself, or for diphthongs and marked symbols the first known character."""
    symbol = symbol.replace("ː", "").replace("ˈ", "").replace("ˌ", "")
    if symbol in CONSONANTS:
        return symbol
    return next((char for char in symbol if char in VOWELS or char in CONSONANTS), None)


def viseme_target(symbol: str) -> tuple[float, float, float]:
    """Mouth target of an IPA phoneme; diphthongs and length marks take their first vowel."""
    base = _base_symbol(symbol)
    if base is None:
        return REST
    return VOWELS[base] if base in VOWELS else CONSONANTS[base]


def viseme_class(symbol: str) -> int:
    """Index into `VISEMES` of an IPA phoneme (silence for pauses and unknown symbols)."""
    base = _base_symbol(symbol)
    return VISEMES.index(VISEME_CLASS_OF.get(base, "silence") if base is not None else "silence")


def exact_visemes(phonemes: list[Phoneme], steps: int, step_seconds: float, rng: np.random.Generator,
                  jitter: float = 0.02) -> np.ndarray:
    """(steps, len(VISEMES)) one-hot mouth classes of exact phoneme timings, as a recogniser would report them
    at best: each boundary moved by up to `jitter` seconds."""
    track = np.zeros((steps, len(VISEMES)), np.float32)
    track[:, VISEMES.index("silence")] = 1.0
    centres = (np.arange(steps) + 0.5) * step_seconds
    for phoneme in phonemes:
        start, end = phoneme.start + rng.uniform(-jitter, jitter), phoneme.end + rng.uniform(-jitter, jitter)
        covered = (centres >= start) & (centres < end)
        track[covered] = 0.0
        track[covered, viseme_class(phoneme.symbol)] = 1.0
    return track


def _gaussian_blur(signal: np.ndarray, sigma_samples: float) -> np.ndarray:
    radius = int(4 * sigma_samples)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_samples) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(signal, ((radius, radius), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(signal.shape[1])], axis=1)


def mouth_shapes(phonemes: list[Phoneme], duration: float, fps: int = FPS) -> np.ndarray:
    """(frames, 3) open / wide / round per video frame, frames = floor(duration * fps)."""
    samples = int(np.ceil(duration * TIMELINE_RATE)) + 1
    timeline = np.tile(np.array(REST, dtype=np.float64), (samples, 1))
    closure = np.zeros(samples)
    for phoneme in phonemes:
        lo, hi = int(phoneme.start * TIMELINE_RATE), max(int(phoneme.end * TIMELINE_RATE), int(phoneme.start * TIMELINE_RATE) + 1)
        timeline[lo:hi] = viseme_target(phoneme.symbol)
        if phoneme.symbol in BILABIALS:
            edge = int(CLOSURE_EDGE * (hi - lo))
            closure[lo + edge : hi - edge + 1] = 1.0
    blended = _gaussian_blur(timeline, COARTICULATION_SIGMA * TIMELINE_RATE)
    closure = _gaussian_blur(closure[:, None], 0.012 * TIMELINE_RATE)[:, 0]
    blended[:, 0] *= 1 - np.clip(closure, 0, 1)
    frames = int(duration * fps)
    centers = ((np.arange(frames) + 0.5) / fps * TIMELINE_RATE).astype(int).clip(0, samples - 1)
    return blended[centers].astype(np.float32)
