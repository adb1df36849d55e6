"""Test media made on the fly: the public-domain astronaut portrait and short driving videos of it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage.data import astronaut

from moda.pipeline.video import Mp4Writer


def portrait() -> np.ndarray:
    """512x512 RGB, one face (scikit-image's astronaut, NASA, public domain)."""
    return astronaut()


def write_driving_video(path: Path, frames: int = 12, size: int = 256, with_audio: bool = True) -> Path:
    """The astronaut's head nodding and turning slightly, with a 220 Hz tone as its sound."""
    image = portrait()
    with Mp4Writer(path, 25, size, size, 16000 if with_audio else None) as writer:
        for i in range(frames):
            motion = cv2.getRotationMatrix2D((220, 130), 4 * np.sin(i / 3), 1.0 + 0.02 * np.sin(i / 2))
            motion[0, 2] += 3 * np.sin(i / 4)
            frame = cv2.warpAffine(image, motion, (512, 512))[0:384, 64:448]
            writer.write(cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA))
        if with_audio:
            t = np.arange(16000 * frames // 25) / 16000
            writer.write_audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    return path


def write_blank_video(path: Path, size: int = 64, frames: int = 5, value: int = 90) -> Path:
    """A short faceless, soundless video."""
    with Mp4Writer(path, 25, size, size) as writer:
        for _ in range(frames):
            writer.write(np.full((size, size, 3), value, dtype=np.uint8))
    return path
