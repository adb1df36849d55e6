"""Emotion conditioning: the eight emotion ids and the null (unconditional) class."""

from __future__ import annotations

from .errors import MoDAError

NUM_EMOTIONS = 8  # emotion ids 0..7; id 8 is the null (unconditional) class
NULL_EMOTION = NUM_EMOTIONS
# Our names for ids 0..7 (MEAD's eight emotions); the released model's own mapping is not documented.
EMOTIONS = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")


def emotion_id(name: str | int | None) -> int:
    """An emotion name or id (0..7) -> id; None -> the null class (no emotion conditioning)."""
    if name is None:
        return NULL_EMOTION
    text = str(name).strip().lower()
    if text.isdigit() and int(text) < NUM_EMOTIONS:
        return int(text)
    if text in EMOTIONS:
        return EMOTIONS.index(text)
    raise MoDAError(f"unknown emotion {name!r}; use one of {', '.join(EMOTIONS)} (or an id 0..7)")
