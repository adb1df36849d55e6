"""Photo + speech -> talking-head video: `moda generate` and `moda.Pipeline`.

Two modes share one flow (read inputs, motion from audio, frames streamed to the encoder):
  default   the tiny generator shipped in the package (log-mel audio, landmark motion space) and the CPU
            warp renderer; needs no download and runs faster than real time on a laptop CPU.
  released  MoDA's released generator, HuBERT and LivePortrait, from a weights folder laid out as
            moda/net-200.pth + moda/mean.pt, chinese-hubert-base/, liveportrait/ (see README).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import torch
from tqdm import tqdm

from ..audio.io import SAMPLE_RATE, load_audio
from ..errors import MoDAError
from ..face.image import limit_size, load_image
from ..face.landmarks import FaceMeshDetector
from ..generator.config import emotion_id
from ..generator.sampler import ChainingConfig, Guidance, MotionGenerator
from ..motion.landmark_space import neutral_prompt
from ..motion.stats import MotionStats
from .video import Mp4Writer, check_output_path

FPS = 25
MIN_AUDIO_SECONDS = 0.2


@dataclass(frozen=True)
class GenerateOptions:
    emotion: str | int | None = None
    cfg_audio: float | None = None  # None: the mode's default
    cfg_emotion: float | None = None  # set: guide emotion separately from audio
    seed: int = 0


WindowCallback = Callable[[int, dict], None]


class Backend(Protocol):
    default_cfg: float

    def prepare(self, image: np.ndarray, name: str) -> object: ...

    def motion(self, subject: object, waveform: np.ndarray, emotion: int, guidance: Guidance,
               generator: torch.Generator, on_window: WindowCallback | None = None) -> np.ndarray: ...

    def frames(self, subject: object, motion: np.ndarray) -> Iterator[np.ndarray]: ...


class TinyBackend:
    """The shipped tiny generator in the landmark motion space, rendered by the CPU warp renderer."""

    default_cfg = 1.5

    def __init__(self, generator: MotionGenerator, stats: MotionStats):
        from ..audio.logmel import LogMelExtractor

        self.generator, self.stats, self.features = generator, stats, LogMelExtractor()

    @classmethod
    def shipped(cls) -> "TinyBackend":
        from ..generator.checkpoint import load_trained_generator

        with resources.as_file(resources.files("moda") / "assets" / "tiny") as folder:
            return cls(*load_trained_generator(folder))

    def prepare(self, image: np.ndarray, name: str):
        from ..renderer.landmark_warp import LandmarkWarpRenderer

        with FaceMeshDetector() as detector:
            return LandmarkWarpRenderer(image, detector.largest(image, name))

    def motion(self, subject, waveform, emotion, guidance, generator, on_window=None) -> np.ndarray:
        ref_kp = torch.from_numpy(subject.frame.kp.reshape(1, 63))
        normalized = self.generator.generate(self.features(waveform), ref_kp, neutral_prompt(self.stats), emotion,
                                             guidance, generator, on_window=on_window)
        return self.stats.denormalize(normalized).numpy()

    def frames(self, subject, motion) -> Iterator[np.ndarray]:
        for vector in motion:
            yield subject.render(vector)

    def stream(self, subject, chunks: Iterable[np.ndarray], emotion: int, guidance: Guidance,
               generator: torch.Generator) -> Iterator[np.ndarray]:
        """Frames for audio that arrives in chunks (16 kHz mono float), as soon as they are final."""
        from ..audio.logmel import StreamingLogMel
        from ..generator.sampler import MotionStream

        features = StreamingLogMel(self.features)
        ref_kp = torch.from_numpy(subject.frame.kp.reshape(1, 63))
        motion = MotionStream(self.generator, ref_kp, neutral_prompt(self.stats), emotion, guidance, generator)
        for chunk in chunks:
            frames = features.push(chunk)
            if len(frames):
                yield from self.frames(subject, self.stats.denormalize(motion.push(frames)).numpy())
        tail = features.finish()
        if len(tail):
            motion.push(tail)
        yield from self.frames(subject, self.stats.denormalize(motion.finish()).numpy())


class Pipeline:
    """`Pipeline.default()` (offline, CPU) or `Pipeline.from_weights(folder)` (the released models)."""

    def __init__(self, backend: Backend):
        self.backend = backend

    @classmethod
    def default(cls) -> "Pipeline":
        return cls(TinyBackend.shipped())

    @classmethod
    def from_weights(cls, folder: str | Path, device: str | None = None) -> "Pipeline":
        from .released import ReleasedBackend

        return cls(ReleasedBackend.from_folder(folder, device))

    def generate(self, image: str | Path, audio: str | Path, out: str | Path, options: GenerateOptions = GenerateOptions(),
                 overwrite: bool = False, progress: bool = True) -> Path:
        """Write an H.264 + AAC mp4 of the portrait speaking the audio; returns the output path."""
        out = check_output_path(out, overwrite)
        portrait = limit_size(load_image(image))
        waveform = load_audio(audio, SAMPLE_RATE)
        if len(waveform) < MIN_AUDIO_SECONDS * SAMPLE_RATE:
            raise MoDAError(f"audio {audio} is {len(waveform) / SAMPLE_RATE:.2f} s long; give at least "
                            f"{MIN_AUDIO_SECONDS} s of speech")
        emotion = emotion_id(options.emotion)
        guidance = Guidance(options.cfg_audio or self.backend.default_cfg, options.cfg_emotion)
        subject = self.backend.prepare(portrait, str(image))
        windows = ChainingConfig().num_windows(len(waveform) // (SAMPLE_RATE // FPS))
        with tqdm(total=windows, desc="motion", unit="window", disable=not progress) as bar:
            motion = self.backend.motion(subject, waveform, emotion, guidance,
                                         torch.Generator().manual_seed(options.seed), lambda *_: bar.update())
        height, width = portrait.shape[:2]
        with Mp4Writer(out, FPS, width, height, SAMPLE_RATE) as writer:
            for frame in tqdm(self.backend.frames(subject, motion), total=len(motion), desc="render", unit="frame",
                              disable=not progress):
                writer.write(frame)
            writer.write_audio(waveform[: len(motion) * SAMPLE_RATE // FPS])
        return out

    def stream(self, image: str | Path, chunks: Iterable[np.ndarray], options: GenerateOptions = GenerateOptions()
               ) -> Iterator[np.ndarray]:
        """Live use: yields (H, W, 3) uint8 frames at 25 fps for 16 kHz mono float audio chunks as they arrive.

        Latency is one generator window (3.2 s of audio) plus compute; the frames equal those `generate`
        writes for the concatenated audio with the same options. Only the default (tiny) model streams.
        """
        if not hasattr(self.backend, "stream"):
            raise MoDAError("streaming needs the default model; the released HuBERT features are computed per "
                            "60 s piece and cannot be produced incrementally")
        portrait = limit_size(load_image(image))
        guidance = Guidance(options.cfg_audio or self.backend.default_cfg, options.cfg_emotion)
        subject = self.backend.prepare(portrait, str(image))
        yield from self.backend.stream(subject, chunks, emotion_id(options.emotion), guidance,
                                       torch.Generator().manual_seed(options.seed))
