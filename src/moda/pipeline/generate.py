"""Photo + speech -> talking-head video: `moda generate` and `moda.Pipeline`.

Two backends share one flow (read inputs, motion from audio, frames streamed to the encoder):
  default   the tiny generator shipped in the package and the CPU warp renderer (`moda.pipeline.default`);
            needs no download and runs faster than real time on a laptop CPU.
  released  MoDA's released generator, HuBERT and LivePortrait from a weights folder (`moda.pipeline.released`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..audio.phones import align_phones
from ..emotion import NULL_EMOTION, emotion_id
from ..errors import MoDAError
from ..generator.sampler import Guidance
from ..media.audio import load_audio
from ..media.image import limit_size, load_image
from ..media.video import Mp4Writer, check_output_path
from ..timebase import DEFAULT_MAX_DURATION, FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from .backend import Backend, MotionRequest
from .threads import cores_shared_by_two_stages, in_background

MIN_AUDIO_SECONDS = 0.2
RENDER_AHEAD = 4  # frames rendered ahead of the encoder
# frames at least this large render in a thread of their own; measured cold on 2 cores, 20 s of speech: at 1280 px
# 11.0 s with it (14.3 s without), at 512 px 5.7 s without it (6.0 s with)
RENDER_THREAD_MIN_PIXELS = 640 * 640
MAX_GUIDANCE = 10.0  # beyond this, guidance only smears the motion
ProgressCallback = Callable[[str, int, int, "np.ndarray | None"], None]  # stage, done, total, frame


@dataclass(frozen=True)
class GenerateOptions:
    emotion: str | int | None = None
    cfg_audio: float | None = None  # None: the backend's default
    cfg_emotion: float | None = None  # set: guide emotion separately from audio
    seed: int = 0
    # what is said, in English words: the default mode's mouth follows its phones aligned to the speech instead of
    # phones recognised from it (on the known clips of ../shared/real, recognition missed 5 of 9 M / B / P frames
    # and heard 8 that were not said)
    transcript: str | None = None


class Pipeline:
    """`Pipeline.default()` (offline, CPU) or `Pipeline.from_weights(folder)` (the released models)."""

    def __init__(self, backend: Backend[Any]):
        self.backend = backend

    @classmethod
    def default(cls) -> Pipeline:
        from .default import TinyBackend

        return cls(TinyBackend.shipped())

    @classmethod
    def from_weights(cls, folder: str | Path, device: str | None = None) -> Pipeline:
        from .released import ReleasedBackend

        return cls(ReleasedBackend.from_folder(folder, device))

    def _request(self, options: GenerateOptions, waveform: np.ndarray | None = None) -> MotionRequest:
        """The motion request of `options`; with a transcript, `waveform` is the whole speech it is aligned to."""
        emotion = emotion_id(options.emotion)
        if emotion != NULL_EMOTION and not self.backend.capabilities.emotions:
            print("moda: warning: this model's emotions have little effect yet; use --weights for the released model",
                  file=sys.stderr)
        if not 0 <= options.seed < 2**63:
            raise MoDAError(f"--seed {options.seed} is out of range; give a whole number from 0 to 2**63 - 1")
        audio_scale = self.backend.default_guidance if options.cfg_audio is None else options.cfg_audio
        for flag, scale in (("--cfg-audio", audio_scale), ("--cfg-emotion", options.cfg_emotion)):
            if scale is not None and not 0 <= scale <= MAX_GUIDANCE:  # NaN fails both comparisons
                raise MoDAError(f"{flag} {scale} is out of range; give a guidance scale from 0 to {MAX_GUIDANCE:g} "
                                "(1 = no guidance)")
        phones = None
        if options.transcript is not None:
            if not self.backend.capabilities.transcripts:
                raise MoDAError("a transcript steers the default model's mouth only; the released model hears HuBERT "
                                "features, not phones: give no transcript (--text), or use the default model")
            if waveform is None:
                raise MoDAError("a transcript is aligned to the whole speech: streaming takes none; use generate")
            phones = tuple(align_phones(waveform, options.transcript))
        return MotionRequest(emotion, Guidance(audio_scale, options.cfg_emotion),
                             torch.Generator().manual_seed(options.seed), phones)

    def generate(self, image: str | Path, audio: str | Path, out: str | Path, options: GenerateOptions = GenerateOptions(),
                 overwrite: bool = False, progress: bool = True, max_duration: float | None = DEFAULT_MAX_DURATION,
                 on_progress: ProgressCallback | None = None) -> Path:
        """Write an H.264 + AAC mp4 of the portrait speaking the audio; returns the output path. Speech longer
        than `max_duration` seconds is refused before it is decoded (None: no limit).

        `on_progress(stage, done, total, frame)` is called after each generator window (stage "motion", frame
        None; from the worker thread that generates motion a window ahead of rendering) and each rendered frame
        ("render", the frame); an exception it raises stops the run, and no file is left behind (how a server
        cancels a job or enforces a time limit)."""
        report = on_progress or (lambda *_: None)
        _check_paths(image=image, audio=audio, out=out)
        out = check_output_path(out, overwrite)
        for name, given in (("image", image), ("audio", audio)):
            if Path(given).exists() and out.exists() and Path(given).resolve() == out.resolve():
                raise MoDAError(f"--out {out} is the input {name}; choose another output file")
        portrait = limit_size(load_image(image))
        waveform = load_audio(audio, SAMPLE_RATE, max_duration)
        if len(waveform) < MIN_AUDIO_SECONDS * SAMPLE_RATE:
            raise MoDAError(f"audio {audio} is {len(waveform) / SAMPLE_RATE:.2f} s long; give at least "
                            f"{MIN_AUDIO_SECONDS} s of speech")
        request = self._request(options, waveform)
        subject = self.backend.prepare(portrait, str(image))
        height, width = portrait.shape[:2]
        frames_total = len(waveform) // SAMPLES_PER_FRAME
        windows_total = self.backend.num_windows(len(waveform))
        windows_done, frames_done = 0, 0
        with (tqdm(total=windows_total, desc="motion", unit="window", disable=not progress) as window_bar,
              tqdm(total=frames_total, desc="render", unit="frame", disable=not progress) as frame_bar,
              Mp4Writer(out, FPS, width, height, SAMPLE_RATE, overwrite=overwrite) as writer,
              # the stages overlap only where motion comes in pieces (a released backend's comes whole)
              cores_shared_by_two_stages() if self.backend.capabilities.streams else nullcontext()):
            def window_done(*_: object) -> None:
                nonlocal windows_done
                windows_done += 1
                window_bar.update()
                report("motion", windows_done, windows_total, None)

            report("motion", 0, windows_total, None)
            def rendered() -> Iterator[np.ndarray]:
                for piece in in_background(self.backend.motion_pieces(subject, waveform, request, window_done)):
                    yield from self.backend.frames(subject, piece)

            # motion is generated a window ahead in a worker thread; large frames are also rendered a few ahead in
            # another while this one encodes (small ones render here: a third thread only adds contention)
            large = height * width >= RENDER_THREAD_MIN_PIXELS
            for frame in in_background(rendered(), depth=RENDER_AHEAD) if large else rendered():
                writer.write(frame)
                frames_done += 1
                frame_bar.update()
                report("render", frames_done, frames_total, frame)
            writer.write_audio(waveform[: frames_done * SAMPLES_PER_FRAME])
        return out

    def stream(self, image: str | Path, chunks: Iterable[np.ndarray], options: GenerateOptions = GenerateOptions()
               ) -> Iterator[np.ndarray]:
        """Live use: yields (H, W, 3) uint8 frames at 25 fps for 16 kHz mono float audio chunks as they arrive.

        Latency is one generator window (3.2 s of audio) plus compute; the frames equal those `generate`
        writes for the concatenated audio with the same options. Only backends that declare streaming do it.
        """
        if not self.backend.capabilities.streams:
            raise MoDAError("streaming needs the default model; the released HuBERT features are computed per "
                            "60 s piece and cannot be produced incrementally")
        _check_paths(image=image)
        portrait = limit_size(load_image(image))
        request = self._request(options)
        subject = self.backend.prepare(portrait, str(image))
        yield from self.backend.stream(subject, checked_chunks(chunks), request)


def _check_paths(**paths: object) -> None:
    for name, given in paths.items():
        if not isinstance(given, (str, os.PathLike)):
            raise MoDAError(f"{name} must be a file path (str or pathlib.Path), not {type(given).__name__}")


def checked_chunks(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Stream input as 16 kHz mono float32: integer PCM is scaled to [-1, 1]; anything else is a clear error."""
    for index, chunk in enumerate(chunks):
        array = np.asarray(chunk)
        if array.ndim != 1:
            raise MoDAError(f"audio chunk {index} has shape {array.shape}; stream 16 kHz mono samples (1-D)")
        if array.dtype.kind in "iu":
            array = array / float(np.iinfo(array.dtype).max + 1)
        elif array.dtype.kind != "f":
            raise MoDAError(f"audio chunk {index} holds {array.dtype} values; stream float or integer PCM samples")
        if not np.isfinite(array).all():
            raise MoDAError(f"audio chunk {index} holds NaN or infinite samples")
        yield array.astype(np.float32)
