"""Wall time per stage and real-time factor of `moda generate` in the default mode, and its peak memory.

For 10 s of speech (the sample clip, repeated): reading inputs, face detection + renderer set-up, audio
features, motion generation, rendering + encoding, each timed; the real-time factor is total time / 10 s
(below 1: faster than real time). Then the peak resident memory of whole runs on 10 s and 60 s of audio,
each in a fresh process, side by side: frames are streamed to the encoder, so it should barely grow.

    python benchmarks/generate.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from moda.generator.sampler import Guidance
from moda.media.audio import load_audio
from moda.media.image import limit_size, load_image
from moda.media.video import Mp4Writer
from moda.pipeline.backend import MotionRequest
from moda.pipeline.generate import Pipeline
from moda.samples import sample_path
from moda.timebase import FPS


def speech_of(seconds: float, path: Path) -> Path:
    speech = load_audio(sample_path("speech.wav"))
    repeats = int(np.ceil(seconds * 16000 / len(speech)))
    soundfile.write(path, np.tile(speech, repeats)[: int(seconds * 16000)], 16000)
    return path


def stage_times(audio: Path) -> dict[str, float]:
    times, start = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        times[name] = now - start
        start = now

    pipeline = Pipeline.default()
    backend = pipeline.backend
    lap("load the tiny model")
    portrait = limit_size(load_image(sample_path("portrait.jpg")))
    waveform = load_audio(audio)
    lap("read image and audio")
    subject = backend.prepare(portrait, "portrait")
    lap("face detection + renderer set-up")
    features = backend.features(waveform)
    lap("speech features (phones, loudness, voicing, bands)")
    request = MotionRequest(8, Guidance(backend.default_guidance), torch.Generator().manual_seed(0))
    motion = backend.motion(subject, waveform, request)
    lap("motion generation (DiT, 10 steps, CFG)")
    with tempfile.TemporaryDirectory() as folder:
        height, width = portrait.shape[:2]
        with Mp4Writer(Path(folder) / "out.mp4", FPS, width, height, 16000) as writer:
            for frame in backend.frames(subject, motion):
                writer.write(frame)
            writer.write_audio(waveform)
    lap("rendering + H.264/AAC encoding")
    assert len(features) == len(motion)
    return times


def peak_memory_mb(audio: Path) -> float:
    """Peak RSS of a fresh `moda generate` process, in MB."""
    code = ("import resource, sys; from moda.cli.main import main; "
            "main(['generate', '--image', sys.argv[1], '--audio', sys.argv[2], '--out', sys.argv[3], '--quiet']); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    with tempfile.TemporaryDirectory() as folder:
        run = subprocess.run([sys.executable, "-c", code, str(sample_path("portrait.jpg")), str(audio),
                              str(Path(folder) / "out.mp4")], capture_output=True, text=True, check=True)
    return int(run.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        ten, sixty = speech_of(10, Path(folder) / "10s.wav"), speech_of(60, Path(folder) / "60s.wav")
        times = stage_times(ten)
        print(f"default mode (tiny generator + CPU warp renderer), 10 s of speech, 512x512 portrait, "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        for stage, seconds in times.items():
            print(f"  {stage:<42}{seconds:>8.2f} s")
        per_clip = sum(v for k, v in times.items() if k != "load the tiny model")
        print(f"  {'total (without loading the model)':<42}{per_clip:>8.2f} s   real-time factor {per_clip / 10:.2f}")
        print(f"peak memory of a whole run:   10 s audio {peak_memory_mb(ten):7.0f} MB   "
              f"60 s audio {peak_memory_mb(sixty):7.0f} MB")


if __name__ == "__main__":
    main()
