"""Remake the README's pictures of the default mode: two frames and a short GIF of the shipped sample.

    python scripts/docs_images.py        # writes docs/sample_frames.jpg and docs/sample.gif
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from moda import GenerateOptions, Pipeline
from moda.face.landmarks import FaceMeshDetector
from moda.media.video import read_frames
from moda.samples import sample_path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        video = Pipeline.default().generate(sample_path("portrait.jpg"), sample_path("speech.wav"),
                                            Path(folder) / "sample.mp4", GenerateOptions(seed=0), progress=False)
        frames = list(read_frames(video))
    with FaceMeshDetector() as detector:
        lips = detector.largest(frames[0]).landmarks[[13, 14, 61, 291]]
    (x0, y0), (x1, y1) = lips.min(0).astype(int) - 4, lips.max(0).astype(int) + 8
    darkness = [255 - f[y0:y1, x0:x1].mean() for f in frames]
    pair = [frames[0], frames[int(np.argmax(darkness))]]  # at rest, and the widest open
    Image.fromarray(np.concatenate([np.asarray(Image.fromarray(f).resize((256, 256))) for f in pair], 1)).save(
        DOCS / "sample_frames.jpg", quality=90)
    clip = [Image.fromarray(f).resize((256, 256)) for f in frames[:100:2]]
    clip[0].save(DOCS / "sample.gif", save_all=True, append_images=clip[1:], duration=80, loop=0)
    print(f"wrote {DOCS / 'sample_frames.jpg'} and {DOCS / 'sample.gif'}")


if __name__ == "__main__":
    main()
