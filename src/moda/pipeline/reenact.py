"""Video-driven reenactment (LivePortrait's own task): a portrait animated by the motion of a driving video.

Source: crop (scale 2.3), appearance features and keypoints once. Driving: one crop box averaged over all
frames (scale 2.2, no rotation), motion extracted per frame, applied relative to the first frame, stitched,
rendered, pasted back into the portrait and written with the driving video's sound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..audio.io import load_audio
from ..errors import MoDAError
from ..face.crop import DRIVING_SCALE, DRIVING_VY, CropBox, crop_face, face_box
from ..face.image import limit_size, load_image
from ..face.landmarks import FaceMeshDetector
from ..motion.keypoints import KeypointInfo, relative_driving_keypoints
from ..renderer.liveportrait import LivePortraitRenderer
from ..renderer.stitching import stitch
from .portrait import prepare_source, to_tensor, to_uint8
from .video import Mp4Writer, check_output_path, has_audio, read_frames, video_info

AUDIO_RATE = 48000


def average_driving_box(path: str | Path, detector: FaceMeshDetector) -> CropBox:
    """One unrotated box for the whole driving video, the mean of the per-frame boxes."""
    boxes = [face_box(faces[0], DRIVING_SCALE, DRIVING_VY, rotate=False)
             for faces in (detector.detect(frame) for frame in read_frames(path)) if faces]
    if not boxes:
        raise MoDAError(f"no face found in any frame of {path}; give a driving video of a face")
    return CropBox(np.mean([b.center for b in boxes], axis=0), float(np.mean([b.size for b in boxes])), 0.0)


def batched(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def reenact(source_path: str | Path, driving_path: str | Path, out_path: str | Path, renderer: LivePortraitRenderer,
            overwrite: bool = False, batch_size: int = 8, driving_multiplier: float = 1.0,
            progress: bool = True) -> Path:
    out_path = check_output_path(out_path, overwrite)
    device = next(renderer.parameters()).device
    fps, frame_count = video_info(driving_path)
    with FaceMeshDetector() as detector:
        source = prepare_source(limit_size(load_image(source_path)), str(source_path), renderer, detector)
        box = average_driving_box(driving_path, detector)
    height, width = source.image.shape[:2]
    audio_rate = AUDIO_RATE if has_audio(driving_path) else None
    first: KeypointInfo | None = None
    with Mp4Writer(out_path, fps, width, height, audio_rate) as writer:
        bar = tqdm(total=frame_count, desc="reenact", unit="frame", disable=not progress)
        for frames in batched(read_frames(driving_path), batch_size):
            crops = [crop_face(frame, box, renderer.config.output_size).resized(renderer.config.image_size)
                     for frame in frames]
            driving = renderer.keypoint_info(to_tensor(crops, device))
            first = first if first is not None else driving[:1]
            x_d = relative_driving_keypoints(source.info, driving, first)
            if renderer.stitching is not None:
                with torch.no_grad():
                    x_d = stitch(renderer.stitching, source.x_s.expand_as(x_d), x_d)
            x_d = source.x_s + (x_d - source.x_s) * driving_multiplier
            for rendered in to_uint8(renderer.render(source.features, source.x_s, x_d)):
                writer.write(source.paste(rendered))
            bar.update(len(frames))
        bar.close()
        if audio_rate:
            writer.write_audio(load_audio(driving_path, audio_rate))
    return out_path
