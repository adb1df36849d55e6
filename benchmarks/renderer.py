"""Per-network and per-frame times of the production-size LivePortrait renderer on this machine.

Three implementations side by side, in one run, on the same random weights and inputs:
  eager fp32      the straightforward implementation (what the released code runs on a CPU)
  eager bf16      the same modules under bf16 autocast
  optimized       `LivePortraitRenderer.optimize_for_inference(bf16)`: autocast plus channels-last 2-D convs
A driven frame needs M + W + G + S; F runs once per source image. The last line gives the optimized
frames' relative difference from fp32.

    python benchmarks/renderer.py [--repeats 3] [--threads N] [--batch 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch

from moda.motion.keypoints import source_keypoints
from moda.renderer.liveportrait import LivePortraitRenderer
from moda.renderer.stitching import stitch


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN primitive caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def network_times(renderer: LivePortraitRenderer, image: torch.Tensor, repeats: int) -> tuple[dict[str, float], torch.Tensor]:
    batch = image.shape[0]
    with torch.no_grad():
        features = renderer.source_features(image)
        x_s = source_keypoints(renderer.keypoint_info(image))
        x_d = x_s + 0.02 * torch.randn(x_s.shape, generator=torch.Generator().manual_seed(1))
        warped = renderer.warping_module(features, kp_source=x_s, kp_driving=x_d)["out"]
        times = {
            "F appearance (per source)": timed(lambda: renderer.source_features(image), repeats),
            "M motion extractor": timed(lambda: renderer.keypoint_info(image), repeats),
            "W warping": timed(lambda: _warp(renderer, features, x_s, x_d), repeats),
            "G SPADE generator": timed(lambda: _generate(renderer, warped), repeats),
            "S stitching": timed(lambda: stitch(renderer.stitching, x_s, x_d), repeats),
        }
        frames = renderer.render(features, x_s, x_d)
    return {k: v / batch for k, v in times.items()}, frames


def _warp(renderer: LivePortraitRenderer, features, x_s, x_d):
    with renderer.autocast(x_d.device):
        return renderer.warping_module(features, kp_source=x_s, kp_driving=x_d)


def _generate(renderer: LivePortraitRenderer, warped):
    with renderer.autocast(warped.device):
        return renderer.spade_generator(renderer.channels_layout(warped))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    eager = LivePortraitRenderer().eval()
    eager_bf16 = copy.deepcopy(eager)
    eager_bf16.precision = torch.bfloat16
    optimized = copy.deepcopy(eager).optimize_for_inference(torch.bfloat16)
    image = torch.rand(args.batch, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    variants = {"eager fp32": eager, "eager bf16": eager_bf16, "optimized": optimized}
    results = {name: network_times(model, image, args.repeats) for name, model in variants.items()}

    print(f"LivePortrait renderer, production size, torch {torch.__version__}, {args.threads} threads, "
          f"batch {args.batch}; seconds per image")
    header = f"{'network':<28}" + "".join(f"{name:>14}" for name in variants) + f"{'speed-up':>10}"
    print(header)
    names = list(results["eager fp32"][0])
    for network in names:
        row = [results[v][0][network] for v in variants]
        print(f"{network:<28}" + "".join(f"{t:>14.3f}" for t in row) + f"{row[0] / row[-1]:>9.2f}x")
    per_frame = {v: sum(t for n, t in results[v][0].items() if not n.startswith("F")) for v in variants}
    row = list(per_frame.values())
    print(f"{'per driven frame (M+W+G+S)':<28}" + "".join(f"{t:>14.3f}" for t in row) + f"{row[0] / row[-1]:>9.2f}x")
    print(f"{'frames per second':<28}" + "".join(f"{1 / t:>14.3f}" for t in row))
    reference = results["eager fp32"][1]
    for name in ("eager bf16", "optimized"):
        difference = ((results[name][1] - reference).norm() / reference.norm()).item()
        print(f"{name}: frames differ from fp32 by {difference:.1e} (relative L2)")


if __name__ == "__main__":
    main()
