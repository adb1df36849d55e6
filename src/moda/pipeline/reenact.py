"""Video-driven reenactment (LivePortrait's own task): a portrait animated by the motion of a driving video.

Source: crop (scale 2.3), appearance features and keypoints once. Driving: one crop box averaged over all
frames (scale 2.2, no rotation), motion extracted per frame, applied relative to the first frame, stitched,
rendered, pasted back into the portrait and written with the driving video's sound.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from ..face.crop import average_driving_box, crop_face
from ..face.landmarks import FaceMeshDetector
from ..media.audio import load_audio
from ..media.image import limit_size, load_image
from ..media.video import Mp4Writer, batched, check_output_path, has_audio, read_frames, video_info
from ..motion.keypoints import KeypointInfo
from ..renderer.driving import relative_driving_keypoints
from ..renderer.liveportrait import LivePortraitRenderer, to_tensor, to_uint8
from ..renderer.stitching import stitch
from .portrait import prepare_source

AUDIO_RATE = 48000


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
