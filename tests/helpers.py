"""Shared test helpers: the golden fixture folders, tiny models and test media made on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage.data import astronaut

from moda.generator.config import DiTConfig
from moda.media.video import Mp4Writer

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def golden_dir() -> Path:
    """../shared/golden/moda beside the checkout, or $MODA_GOLDEN_DIR."""
    return Path(os.environ.get("MODA_GOLDEN_DIR", SHARED / "golden" / "moda"))


def liveportrait_golden_dir() -> Path:
    """../shared/golden/liveportrait beside the checkout, or $MODA_LIVEPORTRAIT_GOLDEN_DIR."""
    return Path(os.environ.get("MODA_LIVEPORTRAIT_GOLDEN_DIR", SHARED / "golden" / "liveportrait"))


def tiny_config(**overrides) -> DiTConfig:
    """A DiT small enough to run many sampling steps in a test, with the production block structure."""
    base = dict(
        hidden_size=32, num_heads=2, audio_blocks=2, audio_dim=8,
        four_stream_blocks=1, two_stream_blocks=1, single_stream_blocks=1,
    )
    return DiTConfig(**{**base, **overrides})


def randomize(module: torch.nn.Module, seed: int = 0, std: float = 0.1) -> torch.nn.Module:
    """Perturb every parameter, so zero-initialised adaLN / output layers do something."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(std * torch.randn(parameter.shape, generator=generator))
    return module


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
