"""Building blocks of the talking-head DiT: norms, embedders, rotary embeddings, modulation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps), optionally times a learned weight (no bias, no mean subtraction)."""

    def __init__(self, dim: int, eps: float, learned_weight: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if learned_weight else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed if self.weight is None else normed * self.weight


def block_norm(dim: int) -> RMSNorm:
    """The weightless pre-norm used before every modulation (eps 1e-6)."""
    return RMSNorm(dim, eps=1e-6, learned_weight=False)


def qk_norm(head_dim: int) -> RMSNorm:
    """Per-head query/key norm with a learned weight (eps 1e-5)."""
    return RMSNorm(head_dim, eps=1e-5)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation; shift and scale are (B, D) and broadcast over tokens."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def ada_ln(hidden_size: int, chunks: int) -> nn.Sequential:
    """SiLU -> Linear(D, chunks*D); index 1 holds the weights, as in the checkpoint (`adaLN_modulation.1`)."""
    return nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, chunks * hidden_size))


class Mlp(nn.Module):
    """fc2(GELU_tanh(fc1(x))), the transformer feed-forward."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class EmbedderMlp(nn.Module):
    """Linear -> SiLU -> Linear, stored as `mlp.{0,2}`."""

    def __init__(self, in_dim: int, hidden_size: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class TimestepEmbedder(EmbedderMlp):
    """Sinusoidal embedding of the timestep (0..1000 scale, cos before sin) followed by an MLP."""

    def __init__(self, hidden_size: int, frequency_dim: int = 256, max_period: float = 10000.0):
        super().__init__(frequency_dim, hidden_size)
        self.frequency_dim = frequency_dim
        self.max_period = max_period

    def sinusoid(self, t: torch.Tensor) -> torch.Tensor:
        half = self.frequency_dim // 2
        exponents = -math.log(self.max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        # exp in float64, rounded once: the table is then the same on every torch build. float32 exp
        # implementations differ by 1 ulp on a few entries, which t=1000 turns into ~1e-5 at the output.
        freqs = torch.exp(exponents.double()).float()
        args = t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoid(t).to(next(self.mlp.parameters()).dtype))


class LabelEmbedder(nn.Module):
    """Emotion table with one extra row (the last) for the null class used by guidance."""

    def __init__(self, num_classes: int, hidden_size: int):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden_size)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels)


class AudioEmbedder(nn.Module):
    """Per-frame audio block (W x K x C) -> M tokens: ReLU(proj1), ReLU(proj2), proj3, weighted RMS norm.

    The reference config names an `audio_embedder_type` but always builds this MLP; so do we.
    """

    def __init__(self, input_dim: int, hidden_size: int, tokens_per_frame: int):
        super().__init__()
        self.tokens_per_frame = tokens_per_frame
        self.proj1 = nn.Linear(input_dim, hidden_size)
        self.proj2 = nn.Linear(hidden_size, hidden_size)
        self.proj3 = nn.Linear(hidden_size, tokens_per_frame * hidden_size)
        self.norm = RMSNorm(hidden_size, eps=1e-6)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # audio: (B, N, W, K, C) -> (B, N, M, D)
        batch, frames = audio.shape[:2]
        h = F.relu(self.proj1(audio.reshape(batch, frames, -1)))
        h = F.relu(self.proj2(h))
        h = self.proj3(h).reshape(batch, frames, self.tokens_per_frame, -1)
        return self.norm(h)


def rope_tables(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleaved-pair RoPE tables, (S, head_dim) each: channel 2j and 2j+1 share frequency theta^(-2j/d)."""
    # float32 throughout, as the released model computed them (float64 differs by 1 ulp).
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
    inv_freq = 1.0 / (theta**exponents)
    angles = torch.outer(positions.to(torch.float32), inv_freq)
    return angles.cos().repeat_interleave(2, dim=1), angles.sin().repeat_interleave(2, dim=1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2j, 2j+1) of x: (B, H, S, d) by the (S, d) tables."""
    x_even, x_odd = x.reshape(*x.shape[:-1], -1, 2).unbind(-1)
    rotated = torch.stack([-x_odd, x_even], dim=-1).flatten(-2)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)
