"""The released models behind `Pipeline.from_weights`: HuBERT features, MoDA's generator, LivePortrait.

The weights folder layouts are described in `moda.pipeline.weights`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio.features import AudioFeatureExtractor, prepare_speech, silent_tail_frames
from ..audio.hubert import HubertFrameEncoder
from ..devices import default_device
from ..errors import MoDAError
from ..face.landmarks import FaceMeshDetector
from ..generator.chaining import ChainingConfig, generate_motion
from ..generator.checkpoint import load_motion_generator, read_generator_config
from ..generator.config import MODA_BASE
from ..generator.model import MotionGenerator
from ..motion.postprocess import modulate_lip, silent_reference_index, source_prev_motion, split_motion
from ..motion.stats import MotionStats
from ..renderer.driving import driving_keypoints
from ..renderer.liveportrait import LivePortraitRenderer, to_uint8
from ..timebase import SAMPLES_PER_FRAME
from .backend import Capabilities, MotionRequest, WindowCallback
from .portrait import PreparedSource, prepare_source
from .weights import resolve_released

RENDER_BATCH = 8


@dataclass(frozen=True)
class ReleasedSubject:
    """A portrait prepared for the released models: the renderer's source, and the generator's view of it."""

    source: PreparedSource
    prev_motion: torch.Tensor  # (1, 1, 70) normalised motion prompt
    rescale_ratio: torch.Tensor  # (1, 1) the face's size relative to the dataset's mean face


class ReleasedBackend:
    capabilities = Capabilities(streams=False, emotions=True, transcripts=False)
    default_guidance = 1.2  # the released inference script's scale

    def __init__(self, generator: MotionGenerator, stats: MotionStats, audio: AudioFeatureExtractor,
                 renderer: LivePortraitRenderer, chaining: ChainingConfig = ChainingConfig()):
        self.generator, self.stats, self.audio, self.renderer = generator, stats, audio, renderer
        self.chaining = chaining

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | None = None) -> ReleasedBackend:
        """From a weights folder in the authors' `pretrained_weights` layout or moda's earlier one
        (`moda.pipeline.weights`)."""
        files = resolve_released(folder)
        config = read_generator_config(files.generator_config) if files.generator_config else MODA_BASE
        target = default_device(device)
        generator = load_motion_generator(files.generator, config).to(target)
        encoder = HubertFrameEncoder.from_pretrained(files.hubert).to(target)
        renderer = LivePortraitRenderer.from_pretrained(files.liveportrait).to(target)
        return cls(generator, MotionStats.load(files.stats), AudioFeatureExtractor(encoder), renderer)

    def prepare(self, image: np.ndarray, name: str) -> ReleasedSubject:
        with FaceMeshDetector() as detector:
            source = prepare_source(image, name, self.renderer, detector)
        prev_motion, ratio = source_prev_motion(source.info, self.stats)
        return ReleasedSubject(source, prev_motion, ratio)

    def num_windows(self, num_samples: int) -> int:
        return self.chaining.num_windows(num_samples // SAMPLES_PER_FRAME + silent_tail_frames())

    def motion(self, subject: ReleasedSubject, waveform: np.ndarray, request: MotionRequest,
               on_window: WindowCallback | None = None) -> np.ndarray:
        """Normalised motion per video frame: generated with a 2 s silent tail that anchors the lip
        modulation, then trimmed (as the released pipeline does)."""
        speech = prepare_speech(waveform)
        features = self.audio(speech.waveform)
        normalized = generate_motion(self.generator, features, subject.source.info.kp.reshape(1, -1),
                                     subject.prev_motion, request.emotion, request.guidance, request.rng,
                                     self.chaining, on_window)
        lip = modulate_lip(normalized, silent_reference_index(normalized.shape[0], speech.silent_frames))
        return lip.motion[: normalized.shape[0] - speech.silent_frames].numpy()

    def motion_pieces(self, subject: ReleasedSubject, waveform: np.ndarray, request: MotionRequest,
                      on_window: WindowCallback | None = None) -> Iterator[np.ndarray]:
        """One piece: the lip modulation reads the whole clip."""
        yield self.motion(subject, waveform, request, on_window)

    def frames(self, subject: ReleasedSubject, motion: np.ndarray) -> Iterator[np.ndarray]:
        source = subject.source
        driving = split_motion(torch.from_numpy(motion), self.stats, subject.rescale_ratio)
        for start in range(0, motion.shape[0], RENDER_BATCH):
            with torch.no_grad():
                keypoints = driving_keypoints(source.info, driving[start : start + RENDER_BATCH], self.renderer.stitching)
            for rendered in to_uint8(self.renderer.render(source.features, keypoints.x_s, keypoints.x_d)):
                yield source.paste(rendered)

    def stream(self, subject: ReleasedSubject, chunks: Iterable[np.ndarray],
               request: MotionRequest) -> Iterator[np.ndarray]:
        raise MoDAError("the released models do not stream (capabilities.streams is False)")
