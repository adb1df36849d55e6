"""Transformer blocks of the coarse-to-fine fusion DiT.

Four-stream blocks keep separate weights for motion / audio / emotion / identity tokens, two-stream
blocks for motion / merged context, and single-stream blocks share one set of weights over all tokens.
Every block attends jointly over the concatenation of its streams (FLUX-style MM-DiT attention).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Mlp, ada_ln, apply_rope, block_norm, modulate, qk_norm

RopeTables = tuple[torch.Tensor, torch.Tensor] | None  # (cos, sin), each (S, d); None: no rotary embedding


@dataclass(frozen=True)
class StreamNames:
    """Checkpoint names of one stream's layers (e.g. `qkv_au1`, `au_q_norm1`, `audio_mlp1`)."""

    qkv: str
    q_norm: str
    k_norm: str
    proj: str
    mlp: str
    modulation: str

    @classmethod
    def motion(cls) -> StreamNames:
        return cls("qkv_xs", "xs_q_norm", "xs_k_norm", "xs_proj", "xs_mlp", "adaLN_modulation_xs")

    @classmethod
    def context(cls, suffix: str = "") -> StreamNames:
        return cls(
            f"qkv_au{suffix}",
            f"au_q_norm{suffix}",
            f"au_k_norm{suffix}",
            f"au_proj{suffix}",
            f"audio_mlp{suffix}",
            f"adaLN_modulation_audio{suffix}",
        )


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, S, D) -> (B, H, S, d); head h holds channels h*d .. h*d+d-1."""
    batch, tokens, _ = x.shape
    return x.reshape(batch, tokens, num_heads, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, S, d) -> (B, S, D)."""
    batch, _, tokens, _ = x.shape
    return x.transpose(1, 2).reshape(batch, tokens, -1)


class JointAttention(nn.Module):
    """Per-stream qkv, q/k RMS norms and output projections around one softmax attention over all streams."""

    def __init__(self, hidden_size: int, num_heads: int, streams: list[StreamNames]):
        super().__init__()
        self.num_heads = num_heads
        self.streams = streams
        head_dim = hidden_size // num_heads
        for names in streams:
            self.add_module(names.qkv, nn.Linear(hidden_size, 3 * hidden_size))
        for names in streams:
            self.add_module(names.q_norm, qk_norm(head_dim))
            self.add_module(names.k_norm, qk_norm(head_dim))
        for names in streams:
            self.add_module(names.proj, nn.Linear(hidden_size, hidden_size))

    def forward(self, inputs: list[torch.Tensor], ropes: list[RopeTables]) -> list[torch.Tensor]:
        queries, keys, values = [], [], []
        for names, x, rope in zip(self.streams, inputs, ropes):
            q, k, v = (split_heads(t, self.num_heads) for t in getattr(self, names.qkv)(x).chunk(3, dim=-1))
            q, k = getattr(self, names.q_norm)(q), getattr(self, names.k_norm)(k)
            if rope is not None:
                q, k = apply_rope(q, *rope), apply_rope(k, *rope)
            queries.append(q)
            keys.append(k)
            values.append(v)
        attended = merge_heads(
            F.scaled_dot_product_attention(torch.cat(queries, 2), torch.cat(keys, 2), torch.cat(values, 2))
        )
        lengths = [x.shape[1] for x in inputs]
        return [getattr(self, n.proj)(o) for n, o in zip(self.streams, attended.split(lengths, dim=1))]


class MultiStreamBlock(nn.Module):
    """adaLN-Zero transformer block with separate weights per stream and joint attention.

    Used with four streams (motion, audio, emotion, identity) in `blocks4` and two streams
    (motion, context) in `blocks2`.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float, streams: list[StreamNames]):
        super().__init__()
        self.streams = streams
        self.norm = block_norm(hidden_size)
        self.attn1 = JointAttention(hidden_size, num_heads, streams)
        for names in streams:
            self.add_module(names.mlp, Mlp(hidden_size, int(hidden_size * mlp_ratio)))
        for names in streams:
            self.add_module(names.modulation, ada_ln(hidden_size, 6))

    def forward(self, inputs: list[torch.Tensor], c: torch.Tensor, ropes: list[RopeTables]) -> list[torch.Tensor]:
        modulations = [getattr(self, n.modulation)(c).chunk(6, dim=-1) for n in self.streams]
        attn_in = [modulate(self.norm(x), shift, scale) for x, (shift, scale, *_) in zip(inputs, modulations)]
        attn_out = self.attn1(attn_in, ropes)
        outputs = []
        for names, x, a, (_, _, gate_attn, shift_mlp, scale_mlp, gate_mlp) in zip(
            self.streams, inputs, attn_out, modulations
        ):
            x = x + gate_attn.unsqueeze(1) * a
            mlp = getattr(self, names.mlp)
            x = x + gate_mlp.unsqueeze(1) * mlp(modulate(self.norm(x), shift_mlp, scale_mlp))
            outputs.append(x)
        return outputs


class SingleStreamAttention(nn.Module):
    """Holds only the q/k norms: in single-stream blocks qkv is fused with the MLP input (`qkv_xs`)."""

    def __init__(self, head_dim: int):
        super().__init__()
        self.xs_q_norm = qk_norm(head_dim)
        self.xs_k_norm = qk_norm(head_dim)


class SingleStreamBlock(nn.Module):
    """Parallel attention + MLP over all tokens (FLUX single-stream block); no attention output projection."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.num_heads = num_heads
        self.hidden_size = hidden_size
        mlp_hidden = int(hidden_size * mlp_ratio)
        self.norm = block_norm(hidden_size)
        self.attn1 = SingleStreamAttention(hidden_size // num_heads)
        self.qkv_xs = nn.Linear(hidden_size, 3 * hidden_size + mlp_hidden)
        self.linear2 = nn.Linear(hidden_size + mlp_hidden, hidden_size)
        self.adaLN_modulation_xs = ada_ln(hidden_size, 3)

    def forward(self, h: torch.Tensor, c: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                queries: int | None = None) -> torch.Tensor:
        """h (B, S, D) -> (B, S, D); with `queries`, only the first `queries` tokens are updated and returned
        (B, queries, D): every token is still attended to, but nothing else is computed for the rest (the last
        block, whose other tokens nobody reads)."""
        shift, scale, gate = self.adaLN_modulation_xs(c).chunk(3, dim=-1)
        x = modulate(self.norm(h), shift, scale)
        d3 = 3 * self.hidden_size
        if queries is None:
            qkv, mlp_hidden = self.qkv_xs(x).split([d3, self.qkv_xs.out_features - d3], dim=-1)
        else:
            weight, bias = self.qkv_xs.weight, self.qkv_xs.bias
            qkv = F.linear(x, weight[:d3], bias[:d3])
            mlp_hidden = F.linear(x[:, :queries], weight[d3:], bias[d3:])
            h = h[:, :queries]
        q, k, v = (split_heads(t, self.num_heads) for t in qkv.chunk(3, dim=-1))
        cos, sin = rope
        q = apply_rope(self.attn1.xs_q_norm(q[:, :, : h.shape[1]]), cos[: h.shape[1]], sin[: h.shape[1]])
        k = apply_rope(self.attn1.xs_k_norm(k), cos, sin)
        attended = merge_heads(F.scaled_dot_product_attention(q, k, v))
        out = self.linear2(torch.cat([attended, F.gelu(mlp_hidden, approximate="tanh")], dim=-1))
        return h + gate.unsqueeze(1) * out


class FinalLayer(nn.Module):
    """adaLN-modulated weightless RMS norm and a linear projection to the motion dimension."""

    def __init__(self, hidden_size: int, output_dim: int):
        super().__init__()
        self.norm = block_norm(hidden_size)
        self.linear = nn.Linear(hidden_size, output_dim)
        self.adaLN_modulation = ada_ln(hidden_size, 2)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))
