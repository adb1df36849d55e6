"""Sample inputs shipped with the package: a public-domain portrait and a short speech clip.

portrait.jpg: NASA astronaut Eileen Collins (public domain; the image scikit-image ships as `astronaut`).
speech.wav: espeak-ng, 16 kHz mono.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np


def sample_path(name: str) -> Path:
    """Filesystem path of a sample (`portrait.jpg` or `speech.wav`)."""
    return Path(str(resources.files("moda") / "assets" / "samples" / name))


def sample_portrait() -> np.ndarray:
    from .media.image import load_image

    return load_image(sample_path("portrait.jpg"))
