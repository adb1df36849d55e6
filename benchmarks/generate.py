"""Speed and memory of `moda generate` in the default mode, with the targets beside the figures.

1. Per stage, in one warm process, 20 s of speech on the sample portrait (512 px): each stage alone, then the
   whole `Pipeline.generate`, where motion is generated a window ahead of rendering in a worker thread.
2. Whole `moda generate` processes from a cold start (imports, model load and face set-up included): 20 s and
   60 s of speech on the sample portrait, and 20 s on a large portrait (the sample scaled to 1280 px, a face
   that fills the frame: the most the warp renderer and the encoder have to do). Real-time factor = wall time /
   speech duration (below 1: faster than real time), the median of three runs; peak resident memory.
3. Streaming (`Pipeline.stream`) fed 0.1 s chunks at real-time pace: the latency from the first chunk to the
   first frame, and how far the last frame lags the end of the audio.

    python benchmarks/generate.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import soundfile
import torch

from moda.generator.chaining import generate_motion
from moda.generator.sampler import Guidance
from moda.media.audio import load_audio
from moda.media.image import load_image
from moda.media.video import Mp4Writer
from moda.motion.landmark_space import neutral_prompt
from moda.pipeline.generate import GenerateOptions, Pipeline
from moda.samples import sample_path
from moda.timebase import FPS, SAMPLE_RATE

COLD_RUNS = 3
TARGETS = {"20 s, 512 px": 0.30, "60 s, 512 px": 0.25, "20 s, 1280 px": 0.60}  # issue 14, real-time factors


def speech_of(seconds: float, path: Path) -> Path:
    """The sample speech repeated to `seconds`."""
    speech = load_audio(sample_path("speech.wav"))
    repeats = int(np.ceil(seconds * SAMPLE_RATE / len(speech)))
    soundfile.write(path, np.tile(speech, repeats)[: int(seconds * SAMPLE_RATE)], SAMPLE_RATE)
    return path


def large_portrait(path: Path) -> Path:
    image = cv2.imread(str(sample_path("portrait.jpg")))
    cv2.imwrite(str(path), cv2.resize(image, (1280, 1280), interpolation=cv2.INTER_CUBIC))
    return path


def stage_times(audio: Path, folder: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        times[name] = now - start
        start = now

    pipeline = Pipeline.default()
    backend = pipeline.backend
    lap("load the tiny model")
    portrait = load_image(sample_path("portrait.jpg"))
    waveform = load_audio(audio)
    lap("read image and audio")
    subject = backend.prepare(portrait, "portrait")
    lap("face detection + renderer set-up")
    features = backend.features(waveform)
    lap("speech features (phones, loudness, voicing, bands)")
    normalized = generate_motion(backend.generator, features, torch.from_numpy(subject.frame.kp.reshape(1, -1)),
                                 neutral_prompt(backend.stats), 8, Guidance(backend.default_guidance),
                                 torch.Generator().manual_seed(0), backend.chaining)
    motion = backend.stats.denormalize(normalized).numpy()
    lap("motion generation (DiT, 10 steps, CFG)")
    frames = [subject.render(vector) for vector in motion]
    lap("rendering")
    height, width = portrait.shape[:2]
    with Mp4Writer(folder / "encode.mp4", FPS, width, height, SAMPLE_RATE) as writer:
        for frame in frames:
            writer.write(frame)
        writer.write_audio(waveform)
    lap("H.264/AAC encoding")
    pipeline.generate(sample_path("portrait.jpg"), audio, folder / "whole.mp4", GenerateOptions(),
                      overwrite=True, progress=False)
    lap("Pipeline.generate (the stages overlapped)")
    return times


# `moda generate` as the `moda` command runs it, then the peak resident memory of the process and of the helper
# processes it started (the phone recogniser), still running then (VmHWM: that of each process after exec,
# unlike getrusage, which would count the benchmark it was forked from)
COLD_RUN = """
import multiprocessing, os, sys
from moda.cli.main import main
code = main(sys.argv[1:])
def peak(pid):
    return int(next(line for line in open(f"/proc/{pid}/status") if line.startswith("VmHWM")).split()[1])
total = peak("self") + sum(peak(child.pid) for child in multiprocessing.active_children())
print(total / 1024, file=sys.stderr, flush=True)
os._exit(code)
"""


def cold_run(image: Path, audio: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a fresh `moda generate` process."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", COLD_RUN, "generate", "--image", str(image), "--audio", str(audio),
                          "--out", str(out), "--overwrite", "--quiet"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"moda generate failed: {run.stderr.strip()}")
    return wall, float(run.stderr.strip().splitlines()[-1])


def streaming(audio: Path) -> tuple[float, float, float]:
    """First-frame latency, the last frame's lag behind the end of the audio, and the stream's duration (s)."""
    pipeline = Pipeline.default()
    speech = load_audio(audio)
    chunk = SAMPLE_RATE // 10
    started: list[float] = []

    def paced():
        for index, begin in enumerate(range(0, len(speech), chunk)):
            if not started:
                started.append(time.perf_counter())
            delay = started[0] + index * 0.1 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            yield speech[begin : begin + chunk]

    first = None
    for _ in pipeline.stream(sample_path("portrait.jpg"), paced()):
        first = first or time.perf_counter()
    assert first is not None
    duration = len(speech) / SAMPLE_RATE
    return first - started[0], time.perf_counter() - started[0] - duration, duration


def main() -> None:
    print(f"moda default mode (tiny generator + CPU warp renderer), torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        twenty, sixty = speech_of(20, folder / "20s.wav"), speech_of(60, folder / "60s.wav")
        print("\n1. stages, one warm process, 20 s of speech, 512x512 sample portrait")
        for stage, seconds in stage_times(twenty, folder).items():
            print(f"  {stage:<52}{seconds:>7.2f} s   {seconds / 20:5.2f} x real time")

        print(f"\n2. whole `moda generate` processes from a cold start (median of {COLD_RUNS} runs: this machine's speed varies"
              " by about 10 % from run to run)")
        print(f"  {'run':<16}{'wall':>8}{'real-time factor':>19}{'target':>9}{'peak memory':>14}")
        runs = {"20 s, 512 px": (sample_path("portrait.jpg"), twenty, 20),
                "60 s, 512 px": (sample_path("portrait.jpg"), sixty, 60),
                "20 s, 1280 px": (large_portrait(folder / "large.png"), twenty, 20)}
        for label, (image, audio, seconds) in runs.items():
            walls, memories = zip(*(cold_run(image, audio, folder / "cold.mp4") for _ in range(COLD_RUNS)))
            wall = statistics.median(walls)
            factor, target = wall / seconds, TARGETS[label]
            print(f"  {label:<16}{wall:>7.2f}s{factor:>17.2f} x{target:>7.2f} x{max(memories):>11.0f} MB   "
                  f"{'meets' if factor <= target else 'misses'} the target   "
                  f"(runs: {', '.join(f'{w:.2f}' for w in walls)} s)")

        print("\n3. streaming, 0.1 s chunks at real-time pace, 20 s of speech")
        latency, lag, duration = streaming(twenty)
        print(f"  first frame {latency:.2f} s after the first chunk (one 3.2 s window + 0.4 s lookahead + compute); "
              f"last frame {lag:.2f} s after the audio ended ({duration:.0f} s)")


if __name__ == "__main__":
    main()
