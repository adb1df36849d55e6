"""`moda eval`: generate motion for held-out clips and score it; a JSON report and PNG plots.

Lip sync is the correlation between the generated mouth opening and the ground truth. The same model
driven by another clip's audio (shuffled audio) gives the baseline that correlation must clearly beat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..distributed import World
from ..errors import MoDAError
from ..generator.chaining import generate_motion
from ..generator.model import MotionGenerator
from ..generator.sampler import Guidance
from ..motion.landmark_space import mouth_opening, neutral_prompt
from ..motion.stats import MotionStats
from ..motion.vector import clip_to_generator_space
from ..shards import load_clip, shard_paths
from ..timebase import FPS
from .metrics import clip_metrics, pearson


@dataclass
class EvalResult:
    summary: dict[str, float]
    per_clip: list[dict[str, float]]
    example: dict[str, np.ndarray]  # traces of the first clip, for the plot


def mouth_crops(frames: list[np.ndarray], renderer, size: int = 96) -> np.ndarray:
    """(T, size, size, 3) crops around the portrait's mouth (a fixed box from its landmarks)."""
    import cv2

    from ..motion.landmark_space import LOWER_INNER_LIP, UPPER_INNER_LIP

    center = renderer.source_points[[UPPER_INNER_LIP, LOWER_INNER_LIP]].mean(0)
    half = int(0.7 * renderer.frame.unit)
    x, y = int(center[0]), int(center[1])
    return np.stack([cv2.resize(np.pad(f, ((half, half), (half, half), (0, 0)))[y : y + 2 * half, x : x + 2 * half],
                                (size, size)) for f in frames])


Rendered = tuple[list[np.ndarray], list[np.ndarray], np.ndarray]  # real frames, generated frames, mel


def feature_metrics(models: dict, renderer, rendered: list[Rendered]) -> dict[str, float]:
    """FID / FVD over all frames and mean Sync-C / Sync-D per clip; rendered = [(real, generated, mel)]."""
    from . import feature_metrics as fm

    real = [f for clip in rendered for f in clip[0]]
    fake = [f for clip in rendered for f in clip[1]]
    results = {}
    if "fid" in models:
        results["fid"] = fm.fid(models["fid"], real, fake)
    if "fvd" in models:
        results["fvd"] = fm.fvd(models["fvd"], real, fake)
    if "sync" in models:
        scores = [fm.sync_scores(models["sync"], mouth_crops(list(gen), renderer), mel) for _, gen, mel in rendered]
        results["sync_c"] = float(np.mean([c for c, _ in scores]))
        results["sync_d"] = float(np.mean([d for _, d in scores]))
    return results


def evaluate(generator: MotionGenerator, stats: MotionStats, heldout: str | Path, guidance: Guidance = Guidance(1.5),
             seed: int = 0, limit: int | None = None, progress: bool = True, feature_models: dict | None = None,
             renderer=None, world: World | None = None) -> EvalResult | None:
    """Metrics over held-out clips. `feature_models` ({"fid" | "fvd" | "sync": TorchScript}) with a
    LandmarkWarpRenderer add FID / FVD / Sync-C/D on frames rendered from ground-truth and generated motion.

    With a `world` of several ranks each scores every world-size-th clip (clip i is generated with seed + i
    wherever it runs); rank 0 gathers them in clip order and returns the same result as one process, the other
    ranks None. Without a process group, a rank returns the metrics of its own clips."""
    world = world or World(0, 1, torch.device("cpu"), grouped=False)
    paths = shard_paths(heldout)[:limit]
    clips = [load_clip(p) for p in paths]
    if any("mouth_open" not in c.extras for c in clips):
        raise MoDAError(f"held-out shards in {heldout} lack ground-truth mouth opening (extra.mouth_open)")
    scored: list[tuple[int, dict, Rendered | None, dict]] = []  # (clip index, metrics, frames, plot traces)
    for index in tqdm(world.share(range(len(clips))), desc="eval", unit="clip", disable=not progress or not world.main):
        clip = clips[index]
        frames = clip.motion.shape[0]
        other = clips[(index + 1) % len(clips)].audio
        shuffled_audio = torch.cat([other, other.new_zeros(max(frames - other.shape[0], 0), *other.shape[1:])])[:frames]
        ref_kp = clip.ref_kp.reshape(1, 63)
        outputs = {}
        for name, audio in (("generated", clip.audio), ("shuffled", shuffled_audio)):
            normalized = generate_motion(generator, audio, ref_kp, neutral_prompt(stats), guidance=guidance,
                                         rng=torch.Generator().manual_seed(seed + index))
            outputs[name] = stats.denormalize(normalized).numpy()
        reference = clip_to_generator_space(clip.motion, stats.mean_scale.item()).numpy()
        truth = clip.extras["mouth_open"].numpy()
        metrics = clip_metrics(outputs["generated"], reference, truth, clip.ref_kp.numpy())
        metrics["shuffled_audio_corr"] = pearson(mouth_opening(outputs["shuffled"]), truth)
        frames_of = None
        if feature_models:
            frames_of = ([renderer.render(v) for v in reference], [renderer.render(v) for v in outputs["generated"]],
                         clip.audio.reshape(-1, clip.audio.shape[-1]).numpy())
        traces = {"truth": truth, "generated": mouth_opening(outputs["generated"]),
                  "shuffled": mouth_opening(outputs["shuffled"]), "energy": clip.audio.mean(dim=(1, 2)).numpy()}
        scored.append((index, metrics, frames_of, traces))
    gathered = world.gather(scored)
    if gathered is None:
        return None
    ordered = sorted((item for part in gathered for item in part), key=lambda item: item[0])
    per_clip = [metrics for _, metrics, _, _ in ordered]
    rendered = [frames_of for _, _, frames_of, _ in ordered if frames_of is not None]
    example = ordered[0][3]
    summary = {key: float(np.mean([m[key] for m in per_clip])) for key in per_clip[0]}
    summary["clips"] = len(per_clip)
    if feature_models:
        summary.update(feature_metrics(feature_models, renderer, rendered))
    return EvalResult(summary, per_clip, example)


def write_report(result: EvalResult, out: str | Path, metrics_log: str | Path | None = None,
                 name: str = "report.json") -> list[Path]:
    """`name` (report.json), mouth_opening.png and (given a training metrics.jsonl) loss_curve.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / name]
    written[0].write_text(json.dumps({"summary": result.summary, "per_clip": result.per_clip}, indent=2))

    figure, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    t = np.arange(len(result.example["truth"])) / FPS
    scale = lambda x: (x - x.mean()) / (x.std() + 1e-8)  # noqa: E731
    axes[0].plot(t, scale(result.example["energy"]), color="0.6", label="audio (mean log-mel)")
    axes[0].legend(loc="upper right")
    axes[1].plot(t, scale(result.example["truth"]), label="ground truth", color="black")
    axes[1].plot(t, scale(result.example["generated"]), label="generated", color="tab:red")
    axes[1].plot(t, scale(result.example["shuffled"]), label="shuffled audio", color="tab:blue", alpha=0.5)
    axes[1].set_xlabel("seconds")
    axes[1].set_ylabel("mouth opening (z-score)")
    axes[1].legend(loc="upper right")
    figure.suptitle(f"held-out clip: r = {result.per_clip[0]['lip_sync_corr']:.2f} "
                    f"(shuffled audio r = {result.per_clip[0]['shuffled_audio_corr']:.2f})")
    figure.tight_layout()
    written.append(out / "mouth_opening.png")
    figure.savefig(written[-1], dpi=100)
    plt.close(figure)

    if metrics_log and Path(metrics_log).is_file():
        records = [json.loads(line) for line in Path(metrics_log).read_text().splitlines()]
        figure, axis = plt.subplots(figsize=(8, 3.5))
        axis.plot([r["step"] for r in records], [r["loss"] for r in records])
        axis.set_xlabel("step")
        axis.set_ylabel("training loss")
        axis.set_yscale("log")
        figure.tight_layout()
        written.append(out / "loss_curve.png")
        figure.savefig(written[-1], dpi=100)
        plt.close(figure)
    return written
