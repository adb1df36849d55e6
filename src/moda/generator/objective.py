"""The flow-matching training objective of the motion generator, with the condition dropout that CFG needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .config import NULL_EMOTION
from .sampler import MotionGenerator


@dataclass(frozen=True)
class ConditionDropout:
    """Independent per-sample probabilities of replacing a condition by its null value.

    Dropping audio and emotion independently teaches the model p(x | audio, emotion), p(x | audio) and
    p(x), which joint guidance ([uncond, cond]) and separate audio / emotion guidance both need.
    """

    audio: float = 0.1
    emotion: float = 0.1


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


def drop_conditions(
    model: MotionGenerator,
    audio: torch.Tensor,
    emo: torch.Tensor,
    dropout: ConditionDropout,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    batch = audio.shape[0]
    drop_audio = (torch.rand(batch, generator=generator) < dropout.audio).to(audio.device)
    drop_emo = (torch.rand(batch, generator=generator) < dropout.emotion).to(emo.device)
    null_audio = model.null_audio_feat.expand_as(audio)
    audio = torch.where(drop_audio.reshape(-1, 1, 1, 1, 1), null_audio, audio)
    emo = torch.where(drop_emo, torch.full_like(emo, NULL_EMOTION), emo)
    return audio, emo


def flow_matching_loss(
    model: MotionGenerator,
    batch: TrainingBatch,
    dropout: ConditionDropout = ConditionDropout(),
    generator: torch.Generator | None = None,
    dim_weights: torch.Tensor | None = None,
    timestep_distribution: Literal["uniform", "logit_normal"] = "uniform",
) -> torch.Tensor:
    """Mean squared error between the predicted and the true velocity (noise - x0).

    `dim_weights` (70,) weights the motion dimensions (e.g. lips vs. the rest of the expression vs. pose).
    Randomness (noise level, noise, dropout) comes from `generator` on the CPU, so a seeded generator
    makes a step reproducible.
    """
    x0 = batch.motion
    sigma = model.scheduler.sample_training_sigmas(x0.shape[0], generator, timestep_distribution, x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0)
    noisy = model.scheduler.noisy_sample(x0, noise, sigma)
    audio, emo = drop_conditions(model, batch.audio, batch.emo, dropout, generator)
    frames = x0.shape[1]
    model_input = torch.cat([batch.prev_motion.expand(-1, frames, -1), noisy], dim=-1)
    audio_cond = batch.ref_kp.unsqueeze(1).expand(-1, frames, -1)
    times = sigma * model.scheduler.num_train_timesteps
    prediction = model.talking_head_dit(model_input, times, audio, emo, audio_cond)
    squared_error = (prediction - model.scheduler.velocity_target(x0, noise)) ** 2
    if dim_weights is not None:
        squared_error = squared_error * dim_weights.to(squared_error)
    return squared_error.mean()
