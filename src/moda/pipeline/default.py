"""The default backend: the tiny generator shipped in the package (speech features, landmark motion space),
rendered by the CPU warp renderer. Needs no download."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources

import numpy as np
import torch

from ..audio.phones import PhoneRecognizerProcess
from ..audio.speech import SpeechFeatureExtractor, StreamingSpeechFeatures
from ..face.landmarks import FaceMeshDetector
from ..generator.chaining import ChainingConfig, MotionStream
from ..generator.checkpoint import load_trained_generator
from ..generator.model import MotionGenerator
from ..motion.landmark_space import neutral_prompt
from ..motion.stats import MotionStats
from ..renderer.landmark_warp import LandmarkWarpRenderer
from ..timebase import SAMPLES_PER_FRAME
from .backend import Capabilities, MotionRequest, WindowCallback
from .threads import cores_shared_by_two_stages, in_background


class TinyBackend:
    """Subjects are `LandmarkWarpRenderer`s (the portrait and its landmark frame); motion is de-normalised."""

    # trained with emotion labels and, in a share of windows, the rest pose as the prompt (as the first window is
    # generated), so the label and not the prompt sets the expression
    capabilities = Capabilities(streams=True, emotions=True)
    default_guidance = 2.5  # measured: sharper M / B / P contrast on real speech than 1.5, same held-out lip sync

    def __init__(self, generator: MotionGenerator, stats: MotionStats, chaining: ChainingConfig = ChainingConfig()):
        self.generator, self.stats, self.chaining = generator, stats, chaining
        # phones decoded in a process of their own, so that the motion thread does not stall the rendering one
        self.phones = PhoneRecognizerProcess()
        self.features = SpeechFeatureExtractor(phones=self.phones)

    @classmethod
    def shipped(cls) -> TinyBackend:
        with resources.as_file(resources.files("moda") / "assets" / "tiny") as folder:
            return cls(*load_trained_generator(folder))

    def prepare(self, image: np.ndarray, name: str) -> LandmarkWarpRenderer:
        self.phones.start()  # it loads its models while the face is found
        with FaceMeshDetector() as detector:
            return LandmarkWarpRenderer(image, detector.largest(image, name))

    def num_windows(self, num_samples: int) -> int:
        return self.chaining.num_windows(num_samples // SAMPLES_PER_FRAME)

    def _ref_kp(self, subject: LandmarkWarpRenderer) -> torch.Tensor:
        return torch.from_numpy(subject.frame.kp.reshape(1, -1))

    def motion(self, subject: LandmarkWarpRenderer, waveform: np.ndarray, request: MotionRequest,
               on_window: WindowCallback | None = None) -> np.ndarray:
        return np.concatenate(list(self.motion_pieces(subject, waveform, request, on_window)))

    def motion_pieces(self, subject: LandmarkWarpRenderer, waveform: np.ndarray, request: MotionRequest,
                      on_window: WindowCallback | None = None) -> Iterator[np.ndarray]:
        block = self.features.config.block_frames * SAMPLES_PER_FRAME
        pieces = (waveform[start : start + block] for start in range(0, len(waveform), block))
        return self._streamed_motion(subject, pieces, request, on_window)

    def _streamed_motion(self, subject: LandmarkWarpRenderer, chunks: Iterable[np.ndarray], request: MotionRequest,
                         on_window: WindowCallback | None = None) -> Iterator[np.ndarray]:
        """De-normalised motion for audio arriving in chunks, a piece per generator window that completes;
        equal to the motion of the whole audio at once (streaming features and `MotionStream` are exact)."""
        features = StreamingSpeechFeatures(self.features)
        motion = MotionStream(self.generator, self._ref_kp(subject), neutral_prompt(self.stats), request.emotion,
                              request.guidance, request.rng, self.chaining, on_window)
        for chunk in chunks:
            if len(frames := features.push(chunk)) and len(final := motion.push(frames)):
                yield self.stats.denormalize(final).numpy()
        if len(tail := features.finish()) and len(final := motion.push(tail)):
            yield self.stats.denormalize(final).numpy()
        yield self.stats.denormalize(motion.finish()).numpy()

    def frames(self, subject: LandmarkWarpRenderer, motion: np.ndarray) -> Iterator[np.ndarray]:
        for vector in motion:
            yield subject.render(vector)

    def stream(self, subject: LandmarkWarpRenderer, chunks: Iterable[np.ndarray],
               request: MotionRequest) -> Iterator[np.ndarray]:
        """Motion is generated a window ahead in a worker thread (which also reads `chunks`) while frames render."""
        with cores_shared_by_two_stages():
            for piece in in_background(self._streamed_motion(subject, chunks, request)):
                yield from self.frames(subject, piece)
