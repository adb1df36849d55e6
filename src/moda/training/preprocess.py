"""`moda preprocess`: talking-head videos -> training shards.

Per video: frames resampled to 25 fps, one crop box averaged over the clip, the motion extractor's 70-d
motion per frame (expression, scale, translation, pitch / yaw / roll in degrees), the first frame's canonical
keypoints as identity, audio features (HuBERT or log-mel) for the same frames, and an optional emotion label.
Existing shards are skipped, so an interrupted run resumes; a video that fails is reported with the reason
and the run goes on. Under torchrun (or with `--rank/--world-size`) each rank takes every world-size-th video
of the sorted list, and rank 0 writes the merged report (`preprocess_report.json`; per rank without torchrun).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..distributed import WorkReport, World, gather_report
from ..emotion import NULL_EMOTION, emotion_id
from ..errors import MoDAError
from ..face.crop import average_driving_box, crop_face
from ..face.landmarks import FaceMeshDetector
from ..media.audio import load_audio
from ..media.video import batched, read_frames_at
from ..renderer.liveportrait import LivePortraitRenderer, to_tensor
from ..shards import SHARD_SUFFIX, Clip, save_clip
from ..timebase import FPS

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi"}


def read_emotion_labels(path: str | Path | None) -> dict[str, int]:
    """CSV rows `video file name, emotion` (a name from moda.generator.config.EMOTIONS or an id 0..7)."""
    if path is None:
        return {}
    labels = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if row and not row[0].startswith("#"):
                try:
                    labels[row[0].strip()] = emotion_id(row[1])
                except MoDAError as exc:
                    raise MoDAError(f"{path}: {exc} (row for {row[0].strip()})") from exc
    return labels


def preprocess_video(video: Path, renderer: LivePortraitRenderer, detector: FaceMeshDetector,
                     audio_features: Callable[[np.ndarray], torch.Tensor], emotion: int, batch_size: int = 16) -> Clip:
    device = next(renderer.parameters()).device
    box = average_driving_box(video, detector)
    motions, first_kp = [], None
    for batch in batched(read_frames_at(video, FPS), batch_size):
        crops = [crop_face(f, box, renderer.config.output_size).network_input(renderer.config.image_size) for f in batch]
        info = renderer.keypoint_info(to_tensor(crops, device))
        first_kp = info.kp[0].reshape(-1).cpu() if first_kp is None else first_kp
        motions.append(info.to_vector().cpu())
    motion = torch.cat(motions)
    audio = audio_features(load_audio(video))
    if first_kp is None:
        raise MoDAError(f"{video} has no video frames")
    frames = min(motion.shape[0], audio.shape[0])
    return Clip(motion[:frames], audio[:frames], first_kp, emotion, video.name)


def preprocess(videos: str | Path, output: str | Path, renderer: LivePortraitRenderer,
               audio_features: Callable[[np.ndarray], torch.Tensor], labels: dict[str, int] | None = None,
               progress: bool = True, world: World | None = None) -> WorkReport | None:
    """This rank's share of the videos; returns the merged report on rank 0 (this rank's without a process
    group), None on other ranks, and writes it as JSON beside the shards."""
    world = world or World(0, 1, torch.device("cpu"), grouped=False)
    videos, output = Path(videos), Path(output)
    if not videos.is_dir():
        raise MoDAError(f"video folder not found: {videos}")
    files = sorted(p for p in videos.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise MoDAError(f"no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) in {videos}")
    output.mkdir(parents=True, exist_ok=True)
    labels = labels or {}
    report = WorkReport()
    with FaceMeshDetector() as detector:
        for video in tqdm(world.share(files), desc="preprocess", unit="video", disable=not progress or not world.main):
            shard = output / f"{video.stem}{SHARD_SUFFIX}"
            if shard.exists():
                report.skipped.append(shard.name)
                continue
            try:
                clip = preprocess_video(video, renderer, detector, audio_features, labels.get(video.name, NULL_EMOTION))
            except MoDAError as exc:
                report.failed[video.name] = str(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - one bad video must not stop a corpus run
                report.failed[video.name] = f"internal error: {type(exc).__name__}: {exc}"
                continue
            report.written.append(save_clip(shard, clip).name)
    return gather_report(world, report, output, "preprocess_report")
