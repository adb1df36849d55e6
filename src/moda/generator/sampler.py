"""Sampling one window of motion: Euler steps over the flow with classifier-free guidance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..emotion import NULL_EMOTION
from .flow_matching import EulerStep
from .model import MotionGenerator


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance scales.

    With `emotion=None` (the released behaviour) one scale guides audio and emotion together:
    pred = u + audio * (c - u), batch [uncond, cond], applied only when the scale is > 1.
    With `emotion` set, the two are guided separately (an extension):
    pred = u + audio * (c_audio - u) + emotion * (c_full - c_audio),
    where c_audio has the audio but the null emotion.
    """

    audio: float = 1.2
    emotion: float | None = None

    @property
    def separate(self) -> bool:
        return self.emotion is not None


@dataclass(frozen=True)
class StepRecord:
    """What one Euler step saw and did; handed to `on_step` callbacks (tracing, progress, tests)."""

    index: int
    step: EulerStep
    latents_in: torch.Tensor  # (B, N, 70)
    model_times: torch.Tensor  # (B',) timesteps passed to the DiT
    raw_prediction: torch.Tensor  # (B', N, 70), all guidance branches stacked on the batch axis
    guided_prediction: torch.Tensor  # (B, N, 70)


def guidance_branches(
    null_audio_feat: torch.Tensor, audio: torch.Tensor, emo: torch.Tensor, guidance: Guidance
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack the guidance branches on the batch axis: [uncond, (audio-only), cond]."""
    null_audio = null_audio_feat.expand(audio.shape[0], audio.shape[1], audio.shape[2], -1, -1)
    null_emo = torch.full_like(emo, NULL_EMOTION)
    if guidance.separate:
        branches = [(null_audio, null_emo), (audio, null_emo), (audio, emo)]
    elif guidance.audio > 1:
        branches = [(null_audio, null_emo), (audio, emo)]
    else:
        branches = [(audio, emo)]
    return torch.cat([a for a, _ in branches]), torch.cat([e for _, e in branches]), len(branches)

def guide(prediction: torch.Tensor, branches: int, guidance: Guidance) -> torch.Tensor:
    parts = prediction.chunk(branches)
    if branches == 1:
        return parts[0]
    if branches == 2:
        uncond, cond = parts
        return uncond + guidance.audio * (cond - uncond)
    uncond, audio_only, cond = parts
    assert guidance.emotion is not None  # three branches only for separate guidance
    return uncond + guidance.audio * (audio_only - uncond) + guidance.emotion * (cond - audio_only)

@torch.inference_mode()
def sample_window(
    model: MotionGenerator,
    audio: torch.Tensor,
    ref_kp: torch.Tensor,
    prev_motion: torch.Tensor,
    emo: torch.Tensor,
    init_latents: torch.Tensor,
    guidance: Guidance = Guidance(),
    on_step: Callable[[StepRecord], None] | None = None,
) -> torch.Tensor:
    """Denoise one window with classifier-free guidance.

    audio (B, N, W, K, C); ref_kp (B, 63) raw canonical keypoints; prev_motion (B, 1, 70) normalised;
    emo (B,) int64; init_latents (B, N, 70) noise. Returns (B, N, 70) normalised motion.
    """
    frames = init_latents.shape[1]
    model_audio, model_emo, branches = guidance_branches(model.null_audio_feat, audio, emo, guidance)
    audio_cond = ref_kp.reshape(ref_kp.shape[0], 1, -1).repeat(branches, frames, 1)
    prev = prev_motion.expand(-1, frames, -1).repeat(branches, 1, 1)
    latents = init_latents
    for index, step in enumerate(model.scheduler.euler_steps()):
        model_input = torch.cat([prev, latents.repeat(branches, 1, 1)], dim=-1)
        times = step.timestep.to(latents.device).expand(model_input.shape[0])
        raw = model.talking_head_dit(model_input, times, model_audio, model_emo, audio_cond, motion_only_last_block=True)
        guided = guide(raw, branches, guidance)
        if on_step is not None:
            on_step(StepRecord(index, step, latents, times, raw, guided))
        latents = latents + guided * step.dt.to(latents.device)
    return latents
