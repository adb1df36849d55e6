"""Video-driven reenactment (LivePortrait's own task): a portrait animated by the motion of a driving video.

With LivePortrait (`reenact`): source crop (scale 2.3), appearance features and keypoints once; driving: one
crop box averaged over all frames (scale 2.2, no rotation), motion extracted per frame, applied relative to the
first frame, stitched, rendered, pasted back into the portrait and written with the driving video's sound.

In the default mode (`reenact_landmarks`, no weights): the driving face's MediaPipe mesh gives landmark motion
(`moda.motion.landmark_space.landmark_motion`), rendered on the portrait by the CPU warp renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import MoDAError
from ..face.crop import average_driving_box, crop_face
from ..face.landmarks import Face, FaceMeshDetector
from ..media.audio import load_audio
from ..media.image import limit_size, load_image
from ..media.video import Mp4Writer, batched, check_output_path, has_audio, read_frames, video_info
from ..motion.keypoints import KeypointInfo
from ..motion.landmark_space import landmark_motion
from ..renderer.driving import (
    eye_retargeting_input,
    lip_normalization,
    lip_retargeting_input,
    relative_driving_keypoints,
)
from ..renderer.landmark_warp import LandmarkWarpRenderer
from ..renderer.liveportrait import LivePortraitRenderer, to_tensor, to_uint8
from ..renderer.stitching import retarget_eyes, retarget_lip, stitch
from .portrait import PreparedSource, prepare_source

AUDIO_RATE = 48000


@dataclass(frozen=True)
class Retargeting:
    """LivePortrait's eye and lip controls for reenactment.

    normalize_lip: close the source's mouth before animation (LivePortrait's default; only when the source
    lip ratio is >= 0.03 and no lip target is set). eye_ratio / lip_ratio: a target eye- or lip-open ratio
    (lid gap or inner-lip gap over the eye or mouth width; 0 closed, about 0.3-0.5 wide open) held in every
    frame through the retargeting networks.
    """

    normalize_lip: bool = True
    eye_ratio: float | None = None
    lip_ratio: float | None = None

    def __post_init__(self) -> None:
        for name in ("eye_ratio", "lip_ratio"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise MoDAError(f"--{name.replace('_', '-')} {value} is out of range; give a ratio in [0, 1] "
                                "(0 closed, about 0.4 wide open)")


def retargeting_offsets(renderer: LivePortraitRenderer, source: PreparedSource, retargeting: Retargeting
                        ) -> torch.Tensor | None:
    """The keypoint offset (1, 21, 3) added to every stitched frame, or None."""
    nets = renderer.retargeting_networks()
    if not nets:
        if retargeting.eye_ratio is not None or retargeting.lip_ratio is not None:
            raise MoDAError("eye / lip retargeting needs LivePortrait's stitching_retargeting_module.pth in the "
                            "weights folder")
        return None
    x_s = source.x_s
    offsets = torch.zeros_like(x_s)
    with torch.no_grad():
        if retargeting.lip_ratio is not None:
            ratios = lip_retargeting_input(torch.tensor([[source.face.lip_ratio()]]),
                                           torch.tensor([[retargeting.lip_ratio]]))
            offsets += retarget_lip(nets["lip"], x_s, ratios.to(x_s))
        elif retargeting.normalize_lip:
            normalization = lip_normalization(nets["lip"], x_s, source.face.lip_ratio())
            if normalization is not None:
                offsets += normalization
        if retargeting.eye_ratio is not None:
            eyes = torch.tensor([source.face.eye_ratios()])
            ratios = eye_retargeting_input(eyes, torch.full((1, 2), retargeting.eye_ratio))
            offsets += retarget_eyes(nets["eye"], x_s, ratios.to(x_s))
    return offsets


def reenactment_keypoints(renderer: LivePortraitRenderer, source: PreparedSource, driving: KeypointInfo,
                          first: KeypointInfo, offsets: torch.Tensor | None, driving_multiplier: float = 1.0
                          ) -> torch.Tensor:
    """Driving keypoints (N, 21, 3) for the renderer: relative motion, stitched, retargeted, scaled."""
    x_d = relative_driving_keypoints(source.info, driving, first)
    if renderer.stitching is not None:
        with torch.no_grad():
            x_d = stitch(renderer.stitching, source.x_s.expand_as(x_d), x_d)
    if offsets is not None:
        x_d = x_d + offsets
    return source.x_s + (x_d - source.x_s) * driving_multiplier


def reenact(source_path: str | Path, driving_path: str | Path, out_path: str | Path, renderer: LivePortraitRenderer,
            overwrite: bool = False, batch_size: int = 8, driving_multiplier: float = 1.0,
            retargeting: Retargeting = Retargeting(), progress: bool = True) -> Path:
    out_path = check_output_path(out_path, overwrite)
    device = next(renderer.parameters()).device
    fps, frame_count = video_info(driving_path)
    with FaceMeshDetector() as detector:
        source = prepare_source(limit_size(load_image(source_path)), str(source_path), renderer, detector)
        box = average_driving_box(driving_path, detector)
    offsets = retargeting_offsets(renderer, source, retargeting)
    height, width = source.image.shape[:2]
    audio_rate = AUDIO_RATE if has_audio(driving_path) else None
    first: KeypointInfo | None = None
    with Mp4Writer(out_path, fps, width, height, audio_rate, overwrite=overwrite) as writer:
        bar = tqdm(total=frame_count, desc="reenact", unit="frame", disable=not progress)
        for frames in batched(read_frames(driving_path), batch_size):
            crops = [crop_face(frame, box, renderer.config.output_size).network_input(renderer.config.image_size)
                     for frame in frames]
            driving = renderer.keypoint_info(to_tensor(crops, device))
            first = first if first is not None else driving[:1]
            x_d = reenactment_keypoints(renderer, source, driving, first, offsets, driving_multiplier)
            for rendered in to_uint8(renderer.render(source.features, source.x_s, x_d)):
                writer.write(source.paste(rendered))
            bar.update(len(frames))
        bar.close()
        if audio_rate:
            writer.write_audio(load_audio(driving_path, audio_rate))
    return out_path


def reenact_landmarks(source_path: str | Path, driving_path: str | Path, out_path: str | Path,
                      overwrite: bool = False, progress: bool = True) -> Path:
    """The default mode's reenactment: no weights, no download."""
    out_path = check_output_path(out_path, overwrite)
    fps, frame_count = video_info(driving_path)
    portrait = limit_size(load_image(source_path))
    faces: list[Face | None] = []
    with FaceMeshDetector() as detector:
        renderer = LandmarkWarpRenderer(portrait, detector.largest(portrait, str(source_path)))
        for frame in tqdm(read_frames(driving_path), total=frame_count, desc="track", unit="frame",
                          disable=not progress):
            found = detector.detect(frame)
            faces.append(found[0] if found else None)
    tracked = [face for face in faces if face is not None]
    if not tracked:
        raise MoDAError(f"no face found in any frame of {driving_path}; give a driving video of a face")
    motion = iter(landmark_motion(tracked))
    height, width = portrait.shape[:2]
    audio_rate = AUDIO_RATE if has_audio(driving_path) else None
    with Mp4Writer(out_path, fps, width, height, audio_rate, overwrite=overwrite) as writer:
        vector = None
        for face in tqdm(faces, desc="render", unit="frame", disable=not progress):
            if face is not None:  # a frame without a face holds the last pose
                vector = next(motion)
            writer.write(renderer.render(vector) if vector is not None else portrait)
        if audio_rate:
            writer.write_audio(load_audio(driving_path, audio_rate))
    return out_path
