"""Training shards: one safetensors file per clip, and deterministic window sampling from them.

A shard holds `motion` (T, 70) in renderer units (expression, scale, t, pitch/yaw/roll in degrees),
`audio` (T, K, C) per-frame audio features, `ref_kp` (63,) the clip's canonical keypoints, and metadata
(emotion id, fps, source file). Windows are drawn from a generator seeded by (seed, step, rank), so a run
resumed from a checkpoint sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import MoDAError
from ..generator.config import NULL_EMOTION
from ..generator.objective import TrainingBatch
from ..motion.stats import STD_EPS, MotionStats

SHARD_SUFFIX = ".clip.safetensors"


@dataclass
class Clip:
    motion: torch.Tensor  # (T, 70)
    audio: torch.Tensor  # (T, K, C)
    ref_kp: torch.Tensor  # (63,)
    emotion: int = NULL_EMOTION
    source: str = ""
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. ground-truth mouth opening (T,)


def save_clip(path: str | Path, clip: Clip) -> Path:
    """Write a shard atomically (temporary file, then rename)."""
    path = Path(path)
    if clip.motion.shape[0] != clip.audio.shape[0]:
        raise ValueError(f"motion has {clip.motion.shape[0]} frames but audio {clip.audio.shape[0]}")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    tensors = {"motion": clip.motion.float().contiguous(), "audio": clip.audio.float().contiguous(),
               "ref_kp": clip.ref_kp.float().reshape(-1).contiguous(),
               **{f"extra.{k}": v.contiguous() for k, v in clip.extras.items()}}
    save_file(tensors, temporary, metadata={"emotion": str(clip.emotion), "source": clip.source, "format": "moda-clip-1"})
    os.replace(temporary, path)
    return path


def load_clip(path: str | Path) -> Clip:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        extras = {k[len("extra."):]: f.get_tensor(k) for k in f.keys() if k.startswith("extra.")}
        return Clip(f.get_tensor("motion"), f.get_tensor("audio"), f.get_tensor("ref_kp"),
                    int(metadata.get("emotion", NULL_EMOTION)), metadata.get("source", ""), extras)


def shard_paths(directory: str | Path) -> list[Path]:
    paths = sorted(Path(directory).glob(f"*{SHARD_SUFFIX}"))
    if not paths:
        raise MoDAError(f"no training shards (*{SHARD_SUFFIX}) in {directory}; run `moda preprocess` first")
    return paths


def to_generator_space(motion: torch.Tensor, mean_scale: float) -> torch.Tensor:
    """Put a clip's motion where inference puts the source: tz zeroed, and scale and (tx, ty) divided by the
    clip's ratio rr = (first-frame scale + 1e-5) / (corpus mean scale + 1e-5), as `source_prev_motion` does."""
    motion = motion.clone()
    motion[:, 66] = 0
    ratio = (motion[0, 63] + STD_EPS) / (mean_scale + STD_EPS)
    motion[:, 63:66] /= ratio
    return motion


def corpus_stats(paths: list[Path]) -> MotionStats:
    """Per-dimension mean and (population) std over every frame of every clip, in generator space."""
    motions = []
    for path in paths:
        with safe_open(str(path), framework="pt") as f:
            motions.append(f.get_tensor("motion").double())
    mean_scale = torch.cat([m[:, 63] for m in motions]).mean().item()
    total, total_sq, count = torch.zeros(70, dtype=torch.float64), torch.zeros(70, dtype=torch.float64), 0
    for motion in motions:
        motion = to_generator_space(motion, mean_scale)
        total += motion.sum(0)
        total_sq += (motion**2).sum(0)
        count += motion.shape[0]
    mean = total / count
    std = (total_sq / count - mean**2).clamp(min=0).sqrt()
    return MotionStats(mean.float().unsqueeze(0), std.float().unsqueeze(0))


class WindowSampler:
    """Random `window`-frame windows (and the frame before each, the motion prompt) from the shards.

    Motion (70 floats per frame) is held in memory; audio features are read per window from the
    memory-mapped shards, so the corpus may be far larger than RAM.
    """

    def __init__(self, paths: list[Path], stats: MotionStats, window: int, audio_unit_len: int = 1):
        self.stats = stats
        self.window = window
        self.margin = (audio_unit_len - 1) // 2
        self.audio_unit_len = audio_unit_len
        self.paths, self.motions, self.refs, self.emotions = [], [], [], []
        for path in paths:
            with safe_open(str(path), framework="pt") as f:
                motion = f.get_tensor("motion")
                if motion.shape[0] <= window:
                    continue
                self.paths.append(path)
                self.motions.append(to_generator_space(motion, stats.mean_scale.item()))
                self.refs.append(f.get_tensor("ref_kp"))
                self.emotions.append(int((f.metadata() or {}).get("emotion", NULL_EMOTION)))
        if not self.paths:
            raise MoDAError(f"no clip is longer than {window + 1} frames ({window / 25:.1f} s); use longer videos")

    def _audio(self, index: int, start: int) -> torch.Tensor:
        """(window, W, K, C) features of frames start..start+window, each with its W-frame neighbourhood
        (zeros beyond the clip's ends)."""
        frames = self.motions[index].shape[0]
        need_lo = start - self.margin
        need_hi = start + self.window + self.audio_unit_len - 1 - self.margin
        lo, hi = max(need_lo, 0), min(need_hi, frames)
        with safe_open(str(self.paths[index]), framework="pt") as f:
            audio = f.get_slice("audio")[lo:hi]
        padded = audio.new_zeros((need_hi - need_lo, *audio.shape[1:]))
        padded[lo - need_lo : lo - need_lo + audio.shape[0]] = audio
        return padded.unfold(0, self.audio_unit_len, 1).permute(0, 3, 1, 2)

    def batch(self, size: int, generator: torch.Generator) -> TrainingBatch:
        picks = torch.randint(len(self.paths), (size,), generator=generator).tolist()
        motions, prompts, audios = [], [], []
        for index in picks:
            frames = self.motions[index].shape[0]
            start = 1 + int(torch.randint(frames - self.window, (1,), generator=generator))
            normalized = self.stats.normalize(self.motions[index][start - 1 : start + self.window])
            prompts.append(normalized[:1])
            motions.append(normalized[1:])
            audios.append(self._audio(index, start))
        return TrainingBatch(torch.stack(motions), torch.stack(prompts), torch.stack(audios),
                             torch.tensor([self.emotions[i] for i in picks]), torch.stack([self.refs[i] for i in picks]))
