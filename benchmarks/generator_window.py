"""Time one 80-frame window of the production-size motion generator on this machine.

Prints, for fp32 and bf16 autocast side by side: seconds per window (10 Euler steps with classifier-free
guidance, i.e. 10 DiT calls at batch 2), seconds per DiT call, and the real-time factor
(compute time / 3.2 s of video; below 1 is faster than real time). Random weights: speed does not depend
on their values; the last column is the bf16 result's relative difference from fp32.

    python benchmarks/generator_window.py [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from moda.generator.config import MODA_BASE
from moda.generator.model import MotionGenerator
from moda.generator.sampler import Guidance, sample_window
from moda.timebase import FPS


def time_window(model: MotionGenerator, dtype: torch.dtype, repeats: int) -> tuple[list[float], torch.Tensor]:
    config = model.config
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(1, config.seq_len, 1, config.audio_blocks, config.audio_dim, generator=g)
    args = (audio, torch.randn(1, 63, generator=g), torch.randn(1, 1, 70, generator=g), torch.tensor([8]),
            torch.randn(1, config.seq_len, 70, generator=g))
    times = []
    for _ in range(repeats + 1):  # the first run warms up allocator and kernels
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            motion = sample_window(model, *args, guidance=Guidance(1.2))
        times.append(time.perf_counter() - start)
    return times[1:], motion.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    model = MotionGenerator(MODA_BASE).eval()
    with torch.no_grad():  # un-zero the adaLN / output layers so the prediction depends on every block
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    build = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    window_seconds = MODA_BASE.seq_len / FPS
    steps = model.scheduler.num_inference_steps
    print(f"production DiT: {params / 1e6:.1f} M parameters, built in {build:.1f} s; torch {torch.__version__}, "
          f"{args.threads} threads; window = {MODA_BASE.seq_len} frames = {window_seconds:.1f} s of video, "
          f"{steps} steps x CFG batch 2")
    print(f"{'precision':<12}{'s / window':>12}{'s / DiT call':>14}{'real-time factor':>18}{'rel. diff to fp32':>19}")
    reference = None
    for name, dtype in (("fp32", torch.float32), ("bf16 (auto)", torch.bfloat16)):
        times, motion = time_window(model, dtype, args.repeats)
        reference = motion if reference is None else reference
        seconds = statistics.median(times)
        difference = ((motion - reference).norm() / reference.norm()).item()
        print(f"{name:<12}{seconds:>12.2f}{seconds / steps:>14.3f}{seconds / window_seconds:>18.2f}{difference:>19.1e}")


if __name__ == "__main__":
    main()
