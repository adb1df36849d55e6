"""What a generation backend provides to `moda.Pipeline`: an explicit, typed contract.

A backend prepares a portrait once into an immutable subject, turns a waveform into per-frame motion for
that subject, and renders the motion into frames. It declares what it can do (`Capabilities`) instead of
being probed, and says how many generator windows a clip takes (for progress reporting).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np
import torch

from ..audio.phones import Phone
from ..generator.sampler import Guidance

Subject = TypeVar("Subject")
WindowCallback = Callable[[int, dict[str, torch.Tensor]], None]


@dataclass(frozen=True)
class Capabilities:
    streams: bool  # frames can be produced while audio still arrives (`Backend.stream`); motion comes in pieces
    emotions: bool  # the generator was trained with emotion labels
    transcripts: bool  # motion follows phones (`MotionRequest.phones` is used)


@dataclass(frozen=True)
class MotionRequest:
    """Everything that shapes generated motion besides the subject and the audio."""

    emotion: int
    guidance: Guidance
    rng: torch.Generator
    phones: tuple[Phone, ...] | None = None  # what is said, aligned to the audio (a transcript); None: recognised


class Backend(Protocol, Generic[Subject]):
    capabilities: Capabilities
    default_guidance: float  # the audio guidance scale the model was tuned for

    def prepare(self, image: np.ndarray, name: str) -> Subject:
        """Find the face and do every per-portrait computation once."""
        ...

    def num_windows(self, num_samples: int) -> int:
        """Generator windows `motion` runs for `num_samples` samples of 16 kHz audio."""
        ...

    def motion(self, subject: Subject, waveform: np.ndarray, request: MotionRequest,
               on_window: WindowCallback | None = None) -> np.ndarray:
        """(T, 70) motion, one row per video frame, in whatever units `frames` takes."""
        ...

    def motion_pieces(self, subject: Subject, waveform: np.ndarray, request: MotionRequest,
                      on_window: WindowCallback | None = None) -> Iterator[np.ndarray]:
        """The same motion in consecutive (n, 70) pieces, each as soon as it is final (rendering can start
        before the whole clip is generated); their concatenation equals `motion`."""
        ...

    def frames(self, subject: Subject, motion: np.ndarray) -> Iterator[np.ndarray]:
        """(H, W, 3) uint8 frames of the whole portrait, one per motion row."""
        ...

    def stream(self, subject: Subject, chunks: Iterable[np.ndarray], request: MotionRequest) -> Iterator[np.ndarray]:
        """Frames for audio arriving in chunks; only when `capabilities.streams`."""
        ...
