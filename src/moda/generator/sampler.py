"""Sampling motion from audio: one window with classifier-free guidance, and long clips by chaining windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .config import MOTION_DIM, NULL_EMOTION, DiTConfig
from .dit import TalkingHeadDiT
from .flow_matching import EulerStep, FlowMatchingScheduler

POSE_DIMS = slice(63, 70)  # scale, tx, ty, tz, pitch, yaw, roll


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


@dataclass(frozen=True)
class ChainingConfig:
    """Long-clip generation: windows of `window` frames that overlap by `overlap` frames."""

    window: int = 80
    overlap: int = 16

    @property
    def stride(self) -> int:
        return self.window - self.overlap

    def num_windows(self, frames: int) -> int:
        """Windows for a clip of `frames` frames: the last one is zero-padded past the end."""
        if frames <= self.window:
            return 1
        return -(-(frames - self.window) // self.stride) + 1


def smooth_pose(motion: torch.Tensor) -> torch.Tensor:
    """Centred 3-frame moving average of the pose dims (63..69) over axis -2; edges average 2 frames.

    Expression dims are left untouched. All averages read the unsmoothed input.
    """
    pose = motion[..., POSE_DIMS]
    padded = torch.nn.functional.pad(pose.transpose(-1, -2), (1, 1)).transpose(-1, -2)
    window_sum = padded[..., :-2, :] + padded[..., 1:-1, :] + padded[..., 2:, :]
    counts = torch.full((pose.shape[-2], 1), 3.0, dtype=pose.dtype, device=pose.device)
    counts[0] = counts[-1] = 2.0
    if pose.shape[-2] == 1:
        counts[0] = 1.0
    smoothed = motion.clone()
    smoothed[..., POSE_DIMS] = window_sum / counts
    return smoothed


def blend_overlap(previous: torch.Tensor, current: torch.Tensor, overlap: int) -> torch.Tensor:
    """Cross-fade the last `overlap` frames of `previous` into the first of `current` (weights k/overlap).

    Returns `previous` with its tail blended; the caller appends current[overlap:].
    """
    alpha = torch.arange(overlap, dtype=previous.dtype, device=previous.device) / overlap
    alpha = alpha.reshape(-1, 1)
    blended = previous.clone()
    blended[..., -overlap:, :] = previous[..., -overlap:, :] * (1 - alpha) + current[..., :overlap, :] * alpha
    return blended


def audio_windows(audio: torch.Tensor, unit_len: int) -> torch.Tensor:
    """(T, K, C) per-frame features -> (T, W, K, C): each frame with its W-frame neighbourhood, zero padded."""
    margin = (unit_len - 1) // 2
    padded = torch.nn.functional.pad(audio, (0, 0, 0, 0, margin, unit_len - 1 - margin))
    return padded.unfold(0, unit_len, 1).permute(0, 3, 1, 2)


class MotionGenerator(nn.Module):
    """The DiT, its flow schedule and the null audio feature used for guidance.

    Sub-module names (`talking_head_dit`, `scheduler`) are those of the released checkpoint.
    """

    def __init__(self, config: DiTConfig, num_inference_steps: int = 10):
        super().__init__()
        self.config = config
        self.talking_head_dit = TalkingHeadDiT(config)
        self.scheduler = FlowMatchingScheduler(num_inference_steps=num_inference_steps)
        # The unconditional audio token block. Not persistent: the released GPU build never loads it
        # from the checkpoint (see moda.generator.checkpoint), so it is set explicitly.
        self.register_buffer(
            "null_audio_feat",
            torch.zeros(1, 1, 1, config.audio_blocks, config.audio_dim),
            persistent=False,
        )

    @property
    def device(self) -> torch.device:
        return self.null_audio_feat.device

    def _branches(
        self, audio: torch.Tensor, emo: torch.Tensor, guidance: Guidance
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Stack the guidance branches on the batch axis: [uncond, (audio-only), cond]."""
        null_audio = self.null_audio_feat.expand(audio.shape[0], audio.shape[1], audio.shape[2], -1, -1)
        null_emo = torch.full_like(emo, NULL_EMOTION)
        if guidance.separate:
            branches = [(null_audio, null_emo), (audio, null_emo), (audio, emo)]
        elif guidance.audio > 1:
            branches = [(null_audio, null_emo), (audio, emo)]
        else:
            branches = [(audio, emo)]
        return torch.cat([a for a, _ in branches]), torch.cat([e for _, e in branches]), len(branches)

    @staticmethod
    def _guide(prediction: torch.Tensor, branches: int, guidance: Guidance) -> torch.Tensor:
        parts = prediction.chunk(branches)
        if branches == 1:
            return parts[0]
        if branches == 2:
            uncond, cond = parts
            return uncond + guidance.audio * (cond - uncond)
        uncond, audio_only, cond = parts
        return uncond + guidance.audio * (audio_only - uncond) + guidance.emotion * (cond - audio_only)

    @torch.no_grad()
    def sample_window(
        self,
        audio: torch.Tensor,
        ref_kp: torch.Tensor,
        prev_motion: torch.Tensor,
        emo: torch.Tensor,
        init_latents: torch.Tensor,
        guidance: Guidance = Guidance(),
        on_step: Callable[[StepRecord], None] | None = None,
    ) -> torch.Tensor:
        """Denoise one window.

        audio (B, N, W, K, C); ref_kp (B, 63) raw canonical keypoints; prev_motion (B, 1, 70) normalised;
        emo (B,) int64; init_latents (B, N, 70) noise. Returns (B, N, 70) normalised motion.
        """
        frames = init_latents.shape[1]
        model_audio, model_emo, branches = self._branches(audio, emo, guidance)
        audio_cond = ref_kp.reshape(ref_kp.shape[0], 1, -1).repeat(branches, frames, 1)
        prev = prev_motion.expand(-1, frames, -1).repeat(branches, 1, 1)
        latents = init_latents
        for index, step in enumerate(self.scheduler.euler_steps()):
            model_input = torch.cat([prev, latents.repeat(branches, 1, 1)], dim=-1)
            times = step.timestep.to(latents.device).expand(model_input.shape[0])
            raw = self.talking_head_dit(model_input, times, model_audio, model_emo, audio_cond)
            guided = self._guide(raw, branches, guidance)
            if on_step is not None:
                on_step(StepRecord(index, step, latents, times, raw, guided))
            latents = latents + guided * step.dt.to(latents.device)
        return latents

    @torch.no_grad()
    def generate(
        self,
        audio: torch.Tensor,
        ref_kp: torch.Tensor,
        prev_motion: torch.Tensor,
        emo: int = NULL_EMOTION,
        guidance: Guidance = Guidance(),
        generator: torch.Generator | None = None,
        chaining: ChainingConfig = ChainingConfig(),
        on_window: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
    ) -> torch.Tensor:
        """Motion for a whole clip: audio (T, K, C) per-frame features -> (T, 70) normalised motion.

        Windows of 80 frames advance by 64; each starts from fresh noise drawn from `generator` on the CPU
        (a generator seeded with s reproduces the released code run after torch.manual_seed(s)), is
        conditioned on frame 63 of the previous (pose-smoothed) window, and is cross-faded over 16 frames.
        The tail is padded with zero audio and cut off again.
        """
        if audio.shape[0] == 0:
            raise ValueError("audio has no frames: need at least 1 frame (40 ms at 25 fps)")
        stream = MotionStream(self, ref_kp, prev_motion, emo, guidance, generator, chaining, on_window)
        return torch.cat([stream.push(audio), stream.finish()])


class MotionStream:
    """Long-clip generation fed incrementally, for live use: `push` audio features as they arrive and get back
    the motion frames that are final; `finish` flushes the rest.

    Frame f is final once no later window blends into it and its successor is final (for the 3-frame pose
    smoothing), so the latency is one window of audio (80 frames, 3.2 s) plus compute. The frames equal
    `MotionGenerator.generate` on the whole audio with the same generator, bit for bit. Only the audio of the
    next window and the motion frames still needed are kept, so memory does not grow with the stream.
    """

    def __init__(self, model: MotionGenerator, ref_kp: torch.Tensor, prev_motion: torch.Tensor,
                 emo: int = NULL_EMOTION, guidance: Guidance = Guidance(), generator: torch.Generator | None = None,
                 chaining: ChainingConfig = ChainingConfig(),
                 on_window: Callable[[int, dict[str, torch.Tensor]], None] | None = None):
        self.model, self.guidance, self.generator = model, guidance, generator
        self.chaining, self.on_window = chaining, on_window
        self.ref_kp = ref_kp.to(model.device)
        self.prev_motion = prev_motion.to(model.device)
        self.emo = torch.tensor([emo], device=model.device)
        self.received = 0  # audio frames pushed so far
        self.audio: torch.Tensor | None = None  # audio frames from the next window's start on, (n, K, C)
        self.motion = torch.zeros(0, MOTION_DIM, device=model.device)  # blended, before the final smoothing
        self.motion_start = 0  # clip frame index of self.motion[0]
        self.windows_done = 0
        self.emitted = 0

    def _run_window(self, keep: int) -> None:
        """The next window over self.audio[:80] (zero-padded at the end); keep its first `keep` frames."""
        chaining, index = self.chaining, self.windows_done
        audio = self.audio[: chaining.window]
        if audio.shape[0] < chaining.window:
            audio = torch.cat([audio, audio.new_zeros(chaining.window - audio.shape[0], *audio.shape[1:])])
        window_audio = audio_windows(audio, self.model.config.audio_unit_len).to(self.model.device).unsqueeze(0)
        noise = torch.randn((1, chaining.window, MOTION_DIM), generator=self.generator).to(self.model.device)
        raw = self.model.sample_window(window_audio, self.ref_kp, self.prev_motion, self.emo, noise, self.guidance)
        smoothed = smooth_pose(raw)
        if self.on_window is not None:
            self.on_window(index, {"audio": window_audio, "init_noise": noise, "prev_motion": self.prev_motion,
                                   "raw": raw, "smoothed": smoothed})
        self.prev_motion = smoothed[:, chaining.stride - 1 : chaining.stride]
        segment = smoothed[0, :keep]
        if index > 0:
            blended = blend_overlap(self.motion[None, -chaining.overlap :], segment[None], chaining.overlap)[0]
            self.motion = torch.cat([self.motion[: -chaining.overlap], blended, segment[chaining.overlap :]])
        else:
            self.motion = segment
        self.audio = self.audio[chaining.stride :]
        self.windows_done += 1

    def _emit(self, final: int) -> torch.Tensor:
        """Smoothed frames [emitted, final); frame `final` must exist (the smoothing reads it)."""
        if final <= self.emitted:
            return self.motion.new_zeros(0, MOTION_DIM).float()
        lo = max(self.emitted - 1, 0)  # the frame before, as smoothing context
        smoothed = smooth_pose(self.motion[lo - self.motion_start : final + 1 - self.motion_start])
        out = smoothed[self.emitted - lo : final - lo]
        self.emitted = final
        self.motion = self.motion[final - 1 - self.motion_start :]  # the next call's context onward
        self.motion_start = final - 1
        return out.float()

    @torch.no_grad()
    def push(self, audio: torch.Tensor) -> torch.Tensor:
        """Add (n, K, C) audio frames; returns the (m, 70) frames that became final (m may be 0)."""
        self.received += audio.shape[0]
        self.audio = audio if self.audio is None else torch.cat([self.audio, audio])
        while self.audio.shape[0] >= self.chaining.window:
            self._run_window(self.chaining.window)
        return self._emit(self.windows_done * self.chaining.stride - 1)

    @torch.no_grad()
    def finish(self) -> torch.Tensor:
        """Run the remaining (zero-padded) windows and return every frame not yet returned."""
        if self.received == 0:
            raise ValueError("no audio was pushed: need at least 1 frame (40 ms at 25 fps)")
        while self.windows_done < self.chaining.num_windows(self.received):
            self._run_window(min(self.chaining.window, self.audio.shape[0]))
        # the clip's last frame smooths over 2 frames, as in smoothing the whole clip at once
        lo = max(self.emitted - 1, 0)
        smoothed = smooth_pose(self.motion[lo - self.motion_start :])
        out = smoothed[self.emitted - lo :]
        self.emitted = self.motion_start + self.motion.shape[0]
        return out.float()
