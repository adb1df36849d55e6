"""Deterministic window sampling from training shards, and the corpus motion statistics.

Windows are drawn from a generator seeded by (seed, step, rank), so a run resumed from a checkpoint sees
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open

from ..emotion import NULL_EMOTION
from ..errors import MoDAError
from ..generator.objective import TrainingBatch
from ..motion.landmark_space import neutral_prompt
from ..motion.stats import MotionStats
from ..motion.vector import MOTION_DIM, SCALE, clip_to_generator_space
from ..timebase import FPS


def corpus_stats(paths: list[Path]) -> MotionStats:
    """Per-dimension mean and (population) std over every frame of every clip, in generator space."""
    motions = []
    for path in paths:
        with safe_open(str(path), framework="pt") as f:
            motions.append(f.get_tensor("motion").double())
    mean_scale = torch.cat([m[:, SCALE.start] for m in motions]).mean().item()
    total, total_sq, count = torch.zeros(MOTION_DIM, dtype=torch.float64), torch.zeros(MOTION_DIM, dtype=torch.float64), 0
    for motion in motions:
        motion = clip_to_generator_space(motion, mean_scale)
        total += motion.sum(0)
        total_sq += (motion**2).sum(0)
        count += motion.shape[0]
    mean = total / count
    std = (total_sq / count - mean**2).clamp(min=0).sqrt()
    return MotionStats(mean.float().unsqueeze(0), std.float().unsqueeze(0))


class WindowSampler:
    """Random `window`-frame windows (and the frame before each, the motion prompt) from the shards; in a
    `rest_prompt_share` of windows the prompt is the rest pose instead (`neutral_prompt`).

    Motion (70 floats per frame) is held in memory; audio features are read per window from the
    memory-mapped shards, so the corpus may be far larger than RAM.
    """

    def __init__(self, paths: list[Path], stats: MotionStats, window: int, audio_unit_len: int = 1,
                 rest_prompt_share: float = 0.0):
        self.stats = stats
        self.rest_prompt = neutral_prompt(stats).reshape(1, MOTION_DIM)
        self.rest_prompt_share = rest_prompt_share
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
                self.motions.append(clip_to_generator_space(motion, stats.mean_scale.item()))
                self.refs.append(f.get_tensor("ref_kp"))
                self.emotions.append(int((f.metadata() or {}).get("emotion", NULL_EMOTION)))
        if not self.paths:
            raise MoDAError(f"no clip is longer than {window + 1} frames ({window / FPS:.1f} s); use longer videos")

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

    def batch(self, size: int, rng: torch.Generator) -> TrainingBatch:
        picks = torch.randint(len(self.paths), (size,), generator=rng).tolist()
        motions, prompts, audios = [], [], []
        for index in picks:
            frames = self.motions[index].shape[0]
            start = 1 + int(torch.randint(frames - self.window, (1,), generator=rng))
            normalized = self.stats.normalize(self.motions[index][start - 1 : start + self.window])
            rest = self.rest_prompt_share > 0 and float(torch.rand((), generator=rng)) < self.rest_prompt_share
            prompts.append(self.rest_prompt if rest else normalized[:1])
            motions.append(normalized[1:])
            audios.append(self._audio(index, start))
        return TrainingBatch(torch.stack(motions), torch.stack(prompts), torch.stack(audios),
                             torch.tensor([self.emotions[i] for i in picks]), torch.stack([self.refs[i] for i in picks]))
