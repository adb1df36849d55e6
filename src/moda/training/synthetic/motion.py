"""Synthetic talking-head motion in the landmark motion space: mouth shapes, blinks, brows, head motion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...emotion import EMOTIONS
from ...motion.landmark_space import (
    BROWS,
    EYELIDS,
    LEFT_MOUTH_CORNER,
    LOWER_INNER_LIP,
    RIGHT_MOUTH_CORNER,
    UPPER_INNER_LIP,
    opening_offsets,
)
from ...motion.vector import ANGLES, EXPRESSION, EXPRESSION_DIM, MOTION_DIM, NUM_KEYPOINTS, SCALE, TRANSLATION
from ...timebase import FPS


@dataclass(frozen=True)
class EmotionStyle:
    """How an emotion shows in the landmark space: mouth corners up (+) / down (-), brows up / down, eyes
    wider (+) / narrower (-), each in [-1, 1], and how much the head moves (1: neutral)."""

    corners: float = 0.0
    brows: float = 0.0
    eyes: float = 0.0
    head: float = 1.0


EMOTION_STYLES = {
    "angry": EmotionStyle(corners=-0.3, brows=-0.9, eyes=-0.3, head=1.4),
    "contempt": EmotionStyle(corners=0.2, brows=-0.2, eyes=-0.2, head=0.9),
    "disgusted": EmotionStyle(corners=-0.6, brows=-0.6, eyes=-0.4, head=1.0),
    "fear": EmotionStyle(corners=-0.3, brows=0.8, eyes=0.6, head=1.1),
    "happy": EmotionStyle(corners=1.0, brows=0.3, eyes=-0.3, head=1.3),
    "neutral": EmotionStyle(),
    "sad": EmotionStyle(corners=-0.9, brows=-0.4, eyes=-0.4, head=0.6),
    "surprised": EmotionStyle(corners=0.0, brows=1.0, eyes=0.8, head=1.2),
}


def style_of(emotion: int) -> EmotionStyle:
    """The style of an emotion id; the null class (no label) is neutral."""
    return EMOTION_STYLES[EMOTIONS[emotion]] if emotion < len(EMOTIONS) else EmotionStyle()


def expression_offsets(shapes: np.ndarray, blinks: np.ndarray, brows: np.ndarray, kp: np.ndarray,
                       style: EmotionStyle = EmotionStyle()) -> np.ndarray:
    """(T, 21, 3) expression offsets from mouth shapes (open, wide, round), eyelid closure, brow raise and the
    emotion's style."""
    frames = shapes.shape[0]
    opened, wide, rounded = shapes[:, 0], shapes[:, 1] - 0.45, shapes[:, 2]
    exp = opening_offsets(opened)
    for corner, side in ((LEFT_MOUTH_CORNER, -1.0), (RIGHT_MOUTH_CORNER, 1.0)):
        # corners: spread when wide, pulled in when rounded; lifted by a smile
        exp[:, corner, 0] += side * (0.12 * wide - 0.10 * rounded + 0.04 * max(style.corners, 0.0))
        exp[:, corner, 1] -= 0.07 * style.corners
    for row in (6, 17, UPPER_INNER_LIP, LOWER_INNER_LIP):
        exp[:, row, 2] -= 0.08 * rounded  # protrusion toward the camera
    for upper, lower in EYELIDS:
        gap = kp[lower, 1] - kp[upper, 1]
        exp[:, upper, 1] += 0.85 * gap * blinks - 0.3 * gap * style.eyes
        exp[:, lower, 1] -= 0.1 * gap * blinks - 0.1 * gap * style.eyes
    for brow in BROWS:
        exp[:, brow, 1] -= 0.06 * brows + 0.07 * style.brows
    return exp.reshape(frames, NUM_KEYPOINTS, 3)


def smooth_noise(frames: int, rng: np.random.Generator, scale: float, smoothness: float) -> np.ndarray:
    """Ornstein-Uhlenbeck random walk, (frames,): head sway that drifts back to rest."""
    theta = 1.0 / smoothness
    values = np.zeros(frames)
    for i in range(1, frames):
        values[i] = values[i - 1] * (1 - theta) + rng.normal(0, scale * np.sqrt(2 * theta))
    return values


def blink_curve(frames: int, rng: np.random.Generator, fps: int = FPS, rate: float = 0.3) -> np.ndarray:
    """Eyelid closure in [0, 1]: blinks at random (about `rate` per second), each ~200 ms."""
    closure = np.zeros(frames)
    t = rng.exponential(1 / rate)
    while t * fps < frames:
        center, half = t * fps, rng.uniform(1.8, 3.0)
        idx = np.arange(frames)
        closure = np.maximum(closure, np.clip(1 - np.abs(idx - center) / half, 0, 1))
        t += 0.3 + rng.exponential(1 / rate)
    return closure.astype(np.float32)


def synthesize_motion(shapes: np.ndarray, energy: np.ndarray, kp: np.ndarray, rng: np.random.Generator,
                      style: EmotionStyle = EmotionStyle()) -> np.ndarray:
    """(T, 70) motion: expression from the mouth shapes, blinks, brows and the emotion's style; pose that sways
    and nods with speech, with the emotion's energy."""
    frames = shapes.shape[0]
    emphasis = np.convolve(energy, np.ones(9) / 9, mode="same")
    brows = np.clip(1.5 * (emphasis - np.median(emphasis)), 0, 1)
    exp = expression_offsets(shapes, blink_curve(frames, rng), brows, kp, style)
    pitch = style.head * (smooth_noise(frames, rng, 2.0, 40) + 4.0 * (emphasis - emphasis.mean()))  # nods with stress
    yaw = style.head * smooth_noise(frames, rng, 4.0, 60)
    roll = style.head * smooth_noise(frames, rng, 1.5, 60)
    scale = 1.0 + smooth_noise(frames, rng, 0.01, 80)
    tx, ty = smooth_noise(frames, rng, 0.02, 80), smooth_noise(frames, rng, 0.015, 80)
    motion = np.zeros((frames, MOTION_DIM), np.float32)
    motion[:, EXPRESSION] = exp.reshape(frames, EXPRESSION_DIM)
    motion[:, SCALE.start] = scale
    motion[:, TRANSLATION.start : TRANSLATION.start + 2] = np.stack([tx, ty], axis=1)  # tz stays 0
    motion[:, ANGLES] = np.stack([pitch, yaw, roll], axis=1)
    return motion
