"""The default backend: the tiny generator shipped in the package (speech features, landmark motion space),
rendered by the CPU warp renderer. Needs no download."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources

import numpy as np
import torch

from ..audio.phones import VISEMES, KnownPhones, PhonesAhead, PhoneSource, shared_phone_recognizer
from ..audio.speech import SUBFRAMES, SpeakerRelativeLevel, SpeechFeatureExtractor, StreamingSpeechFeatures
from ..face.landmarks import FaceMeshDetector
from ..generator.chaining import ChainingConfig, MotionStream
from ..generator.checkpoint import load_trained_generator
from ..generator.model import MotionGenerator
from ..motion.articulation import ArticulationCues, articulate
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
    capabilities = Capabilities(streams=True, emotions=True, transcripts=True)
    default_guidance = 2.5  # measured: sharper M / B / P contrast on real speech than 1.5, same held-out lip sync

    def __init__(self, generator: MotionGenerator, stats: MotionStats, chaining: ChainingConfig = ChainingConfig()):
        self.generator, self.stats, self.chaining = generator, stats, chaining
        # phones decoded in a process of their own, so that the motion thread does not stall the rendering one
        self.phones = shared_phone_recognizer()
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
        if request.phones is not None:
            yield from self._streamed_motion(subject, pieces, request, on_window)
            return
        # the whole speech is known: its phones are decoded ahead, while motion is generated and frames rendered
        # (measured on 20 s: asked for block by block, each window after the first waits 0.5-0.7 s for its phones;
        # decoded ahead, 0-0.2 s)
        with PhonesAhead(self.phones, self.features.phone_windows(waveform)) as phones:
            yield from self._streamed_motion(subject, pieces, request, on_window, phones)

    def _streamed_motion(self, subject: LandmarkWarpRenderer, chunks: Iterable[np.ndarray], request: MotionRequest,
                         on_window: WindowCallback | None = None, phones: PhoneSource | None = None
                         ) -> Iterator[np.ndarray]:
        """De-normalised, articulated motion (`moda.motion.articulation`) for audio arriving in chunks, a piece per
        generator window that completes; equal to the motion of the whole audio at once (streaming features,
        `MotionStream` and `SpeakerRelativeLevel` are exact). Phones come from the transcript's alignment where
        the request has one, else from `phones` (default: the recogniser process)."""
        known = request.phones
        features = StreamingSpeechFeatures(self.features.with_phones(
            KnownPhones(known) if known is not None else phones or self.phones))
        levels = SpeakerRelativeLevel(self.features.config.lookahead_frames)
        motion = MotionStream(self.generator, self._ref_kp(subject), neutral_prompt(self.stats), request.emotion,
                              request.guidance, request.rng, self.chaining, on_window)
        heard = _HeardBilabials()

        def articulated(final: torch.Tensor) -> np.ndarray:
            first, count = heard.emitted, len(final)
            cues = ArticulationCues(heard.take(count), levels.frames(first, count))
            return articulate(self.stats.denormalize(final).numpy(), cues)

        for chunk in chunks:
            levels.push(chunk)
            if len(frames := features.push(chunk)):
                heard.add(frames)
                if len(final := motion.push(frames)):
                    yield articulated(final)
        if len(tail := features.finish()):
            heard.add(tail)
            if len(final := motion.push(tail)):
                yield articulated(final)
        yield articulated(motion.finish())

    def frames(self, subject: LandmarkWarpRenderer, motion: np.ndarray) -> Iterator[np.ndarray]:
        for vector in motion:
            yield subject.render(vector)

    def stream(self, subject: LandmarkWarpRenderer, chunks: Iterable[np.ndarray],
               request: MotionRequest) -> Iterator[np.ndarray]:
        """Motion is generated a window ahead in a worker thread (which also reads `chunks`) while frames render."""
        with cores_shared_by_two_stages():
            for piece in in_background(self._streamed_motion(subject, chunks, request)):
                yield from self.frames(subject, piece)


class _HeardBilabials:
    """Whether the 10 ms step at each frame's centre is recognised as M / B / P (a frame shows the mouth at its
    centre, as `moda score` labels frames), from the speech features, kept from when a frame's features come
    until its motion does."""

    BILABIAL = VISEMES.index("bilabial")

    def __init__(self) -> None:
        self.heard = np.zeros(0)
        self.emitted = 0  # frames taken so far

    def add(self, features: torch.Tensor) -> None:
        self.heard = np.concatenate([self.heard, features[:, SUBFRAMES // 2, self.BILABIAL].numpy()])

    def take(self, count: int) -> np.ndarray:
        taken, self.heard = self.heard[:count], self.heard[count:]
        self.emitted += count
        return taken
