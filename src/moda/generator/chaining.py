"""Long clips: 80-frame windows chained by a motion prompt and cross-faded over their overlap; also streaming."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..emotion import NULL_EMOTION
from ..motion.vector import MOTION_DIM, POSE
from .model import MotionGenerator
from .sampler import Guidance, sample_window


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
    pose = motion[..., POSE]
    padded = torch.nn.functional.pad(pose.transpose(-1, -2), (1, 1)).transpose(-1, -2)
    window_sum = padded[..., :-2, :] + padded[..., 1:-1, :] + padded[..., 2:, :]
    counts = torch.full((pose.shape[-2], 1), 3.0, dtype=pose.dtype, device=pose.device)
    counts[0] = counts[-1] = 2.0
    if pose.shape[-2] == 1:
        counts[0] = 1.0
    smoothed = motion.clone()
    smoothed[..., POSE] = window_sum / counts
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


@torch.inference_mode()
def generate_motion(
    model: MotionGenerator,
    audio: torch.Tensor,
    ref_kp: torch.Tensor,
    prev_motion: torch.Tensor,
    emo: int = NULL_EMOTION,
    guidance: Guidance = Guidance(),
    rng: torch.Generator | None = None,
    chaining: ChainingConfig = ChainingConfig(),
    on_window: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
) -> torch.Tensor:
    """Motion for a whole clip: audio (T, K, C) per-frame features -> (T, 70) normalised motion.

    Windows of 80 frames advance by 64; each starts from fresh noise drawn from `rng` on the CPU
    (a generator seeded with s reproduces the released code run after torch.manual_seed(s)), is
    conditioned on frame 63 of the previous (pose-smoothed) window, and is cross-faded over 16 frames.
    The tail is padded with zero audio and cut off again.
    """
    if audio.shape[0] == 0:
        raise ValueError("audio has no frames: need at least 1 frame (40 ms at 25 fps)")
    stream = MotionStream(model, ref_kp, prev_motion, emo, guidance, rng, chaining, on_window)
    return torch.cat([stream.push(audio), stream.finish()])


class MotionStream:
    """Long-clip generation fed incrementally, for live use: `push` audio features as they arrive and get back
    the motion frames that are final; `finish` flushes the rest.

    Frame f is final once no later window blends into it and its successor is final (for the 3-frame pose
    smoothing), so the latency is one window of audio (80 frames, 3.2 s) plus compute. The frames equal
    `generate_motion` on the whole audio with the same `rng`, bit for bit. Only the audio of the
    next window and the motion frames still needed are kept, so memory does not grow with the stream.
    """

    def __init__(self, model: MotionGenerator, ref_kp: torch.Tensor, prev_motion: torch.Tensor,
                 emo: int = NULL_EMOTION, guidance: Guidance = Guidance(), rng: torch.Generator | None = None,
                 chaining: ChainingConfig = ChainingConfig(),
                 on_window: Callable[[int, dict[str, torch.Tensor]], None] | None = None):
        self.model, self.guidance, self.rng = model, guidance, rng
        self.chaining, self.on_window = chaining, on_window
        self.ref_kp = ref_kp.to(model.device)
        self.prev_motion = prev_motion.to(model.device)
        self.emo = torch.tensor([emo], device=model.device)
        self.received = 0  # audio frames pushed so far
        # audio frames from the next window's start on, (n, K, C)
        self.audio = torch.zeros(0, model.config.audio_blocks, model.config.audio_dim)
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
        noise = torch.randn((1, chaining.window, MOTION_DIM), generator=self.rng).to(self.model.device)
        raw = sample_window(self.model, window_audio, self.ref_kp, self.prev_motion, self.emo, noise, self.guidance)
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

    @torch.inference_mode()
    def push(self, audio: torch.Tensor) -> torch.Tensor:
        """Add (n, K, C) audio frames; returns the (m, 70) frames that became final (m may be 0)."""
        self.received += audio.shape[0]
        self.audio = torch.cat([self.audio, audio])
        while self.audio.shape[0] >= self.chaining.window:
            self._run_window(self.chaining.window)
        return self._emit(self.windows_done * self.chaining.stride - 1)

    @torch.inference_mode()
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
