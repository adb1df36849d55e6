"""Synthetic talking-head motion in the landmark motion space: mouth shapes, blinks, brows, head motion."""

from __future__ import annotations

import numpy as np

from ...motion.vector import ANGLES, EXPRESSION, EXPRESSION_DIM, MOTION_DIM, NUM_KEYPOINTS, SCALE, TRANSLATION
from ...timebase import FPS


def expression_offsets(shapes: np.ndarray, blinks: np.ndarray, brows: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """(T, 21, 3) expression offsets from mouth shapes (open, wide, round), eyelid closure and brow raise."""
    frames = shapes.shape[0]
    opened, wide, rounded = shapes[:, 0], shapes[:, 1] - 0.45, shapes[:, 2]
    exp = np.zeros((frames, NUM_KEYPOINTS, 3), dtype=np.float32)
    exp[:, 20, 1] += 0.32 * opened  # lower inner lip drops
    exp[:, 17, 1] += 0.30 * opened
    exp[:, 5, 1] += 0.22 * opened  # the jaw follows
    exp[:, 8, 1] += 0.08 * opened
    exp[:, 9, 1] += 0.08 * opened
    exp[:, 19, 1] -= 0.05 * opened  # upper lip lifts a little
    exp[:, 6, 1] -= 0.03 * opened
    for corner, side in ((12, -1.0), (14, 1.0)):  # corners: spread when wide, pulled in when rounded
        exp[:, corner, 0] += side * (0.12 * wide - 0.10 * rounded)
        exp[:, corner, 1] += 0.04 * opened
    for row in (6, 17, 19, 20):
        exp[:, row, 2] -= 0.08 * rounded  # protrusion toward the camera
    for upper, lower in ((11, 13), (15, 16)):
        gap = kp[lower, 1] - kp[upper, 1]
        exp[:, upper, 1] += 0.85 * gap * blinks
        exp[:, lower, 1] -= 0.1 * gap * blinks
    exp[:, 1, 1] -= 0.06 * brows
    exp[:, 2, 1] -= 0.06 * brows
    return exp


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


def synthesize_motion(shapes: np.ndarray, energy: np.ndarray, kp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, 70) motion: expression from the mouth shapes, blinks and brows; pose that sways and nods with speech."""
    frames = shapes.shape[0]
    emphasis = np.convolve(energy, np.ones(9) / 9, mode="same")
    brows = np.clip(1.5 * (emphasis - np.median(emphasis)), 0, 1)
    exp = expression_offsets(shapes, blink_curve(frames, rng), brows, kp)
    pitch = smooth_noise(frames, rng, 2.0, 40) + 4.0 * (emphasis - emphasis.mean())  # nods with stress
    yaw = smooth_noise(frames, rng, 4.0, 60)
    roll = smooth_noise(frames, rng, 1.5, 60)
    scale = 1.0 + smooth_noise(frames, rng, 0.01, 80)
    tx, ty = smooth_noise(frames, rng, 0.02, 80), smooth_noise(frames, rng, 0.015, 80)
    motion = np.zeros((frames, MOTION_DIM), np.float32)
    motion[:, EXPRESSION] = exp.reshape(frames, EXPRESSION_DIM)
    motion[:, SCALE.start] = scale
    motion[:, TRANSLATION.start : TRANSLATION.start + 2] = np.stack([tx, ty], axis=1)  # tz stays 0
    motion[:, ANGLES] = np.stack([pitch, yaw, roll], axis=1)
    return motion
