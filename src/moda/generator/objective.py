"""The flow-matching training objective of the motion generator, with the condition dropout that CFG needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..emotion import NULL_EMOTION
from ..motion.keypoints import LIP_ROWS
from ..motion.vector import EXPRESSION, MOTION_DIM, POSE
from .model import MotionGenerator


@dataclass(frozen=True)
class ConditionDropout:
    """Independent per-sample probabilities of replacing a condition by its null value.

    Dropping audio and emotion independently teaches the model p(x | audio, emotion), p(x | audio) and
    p(x), which joint guidance ([uncond, cond]) and separate audio / emotion guidance both need.
    """

    audio: float = 0.1
    emotion: float = 0.1


@dataclass(frozen=True)
class LossWeights:
    """Weights of the velocity error on lip, other expression and pose dims, and of the smoothness term."""

    lip: float = 1.0
    expression: float = 1.0
    pose: float = 1.0
    smoothness: float = 0.0

    def per_dim(self) -> torch.Tensor:
        """(70,) weights: lip keypoint coordinates, the rest of the 63 expression dims, then the 7 pose dims."""
        weights = torch.zeros(MOTION_DIM)
        weights[EXPRESSION] = self.expression
        for row in LIP_ROWS:
            weights[3 * row : 3 * row + 3] = self.lip
        weights[POSE] = self.pose
        return weights


@dataclass
class TrainingBatch:
    """One batch of training windows.

    motion (B, N, 70) normalised target motion; prev_motion (B, 1, 70) the frame before the window;
    audio (B, N, W, K, C); emo (B,) int64 (8 where unlabelled); ref_kp (B, 63) canonical keypoints.
    """

    motion: torch.Tensor
    prev_motion: torch.Tensor
    audio: torch.Tensor
    emo: torch.Tensor
    ref_kp: torch.Tensor

    def to(self, device: torch.device) -> TrainingBatch:
        return TrainingBatch(*(t.to(device) for t in (self.motion, self.prev_motion, self.audio, self.emo, self.ref_kp)))


def drop_conditions(
    null_audio: torch.Tensor,
    audio: torch.Tensor,
    emo: torch.Tensor,
    dropout: ConditionDropout,
    rng: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace audio by `null_audio` (broadcast to its shape) and emotion by the null class, per sample."""
    batch = audio.shape[0]
    drop_audio = (torch.rand(batch, generator=rng) < dropout.audio).to(audio.device)
    drop_emo = (torch.rand(batch, generator=rng) < dropout.emotion).to(emo.device)
    audio = torch.where(drop_audio.reshape(-1, 1, 1, 1, 1), null_audio.expand_as(audio), audio)
    emo = torch.where(drop_emo, torch.full_like(emo, NULL_EMOTION), emo)
    return audio, emo


def flow_matching_loss(
    model: MotionGenerator,
    batch: TrainingBatch,
    dropout: ConditionDropout = ConditionDropout(),
    rng: torch.Generator | None = None,
    weights: LossWeights = LossWeights(),
    timestep_distribution: Literal["uniform", "logit_normal"] = "uniform",
    null_audio: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """{"loss", "velocity", "smoothness"}: weighted velocity MSE (target noise - x0) plus, when weighted,
    the error of the frame-to-frame differences of the implied clean motion x0_hat = x_sigma - sigma * v.

    Randomness (noise level, noise, dropout) comes from `rng` on the CPU, so a seeded `rng` makes a
    step reproducible. `null_audio` defaults to the model's buffer; training passes a learnable one.
    """
    x0 = batch.motion
    sigma = model.scheduler.sample_training_sigmas(x0.shape[0], rng, timestep_distribution, x0.device)
    noise = torch.randn(x0.shape, generator=rng).to(x0)
    noisy = model.scheduler.noisy_sample(x0, noise, sigma)
    null = model.null_audio_feat if null_audio is None else null_audio
    audio, emo = drop_conditions(null, batch.audio, batch.emo, dropout, rng)
    frames = x0.shape[1]
    model_input = torch.cat([batch.prev_motion.expand(-1, frames, -1), noisy], dim=-1)
    audio_cond = batch.ref_kp.unsqueeze(1).expand(-1, frames, -1)
    times = sigma * model.scheduler.num_train_timesteps
    prediction = model.talking_head_dit(model_input, times, audio, emo, audio_cond,
                                       motion_only_last_block=True).float()
    velocity = ((prediction - model.scheduler.velocity_target(x0, noise)) ** 2 * weights.per_dim().to(x0)).mean()
    terms = {"velocity": velocity}
    if weights.smoothness > 0:
        x0_hat = noisy - sigma.reshape(-1, 1, 1) * prediction
        terms["smoothness"] = ((x0_hat.diff(dim=1) - x0.diff(dim=1)) ** 2).mean()
    else:
        terms["smoothness"] = velocity.new_zeros(())
    terms["loss"] = velocity + weights.smoothness * terms["smoothness"]
    return terms
