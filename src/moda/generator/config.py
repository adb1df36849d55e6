"""Configuration of the motion generator (the multi-modal DiT)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..configs import from_mapping
from ..emotion import NUM_EMOTIONS
from ..motion.vector import EXPRESSION_DIM, MOTION_DIM

# Reference constructor arguments with no effect: the reference ignores `depth` (block counts are hard-wired)
# and the embedder type, always uses RMS norms, and `exp_dim` / `head_dim` follow from other fields.
REFERENCE_ONLY_KWARGS = ("depth", "audio_embedder_type", "norm_type", "qk_norm", "exp_dim", "head_dim")


@dataclass(frozen=True)
class DiTConfig:
    """Constructor arguments of the talking-head DiT.

    Field names follow the reference constructor so fixture JSON and released configs can be read
    directly (`DiTConfig.from_kwargs`). The block counts (3 four-stream, 6 two-stream, 12 single-stream)
    are part of the released architecture; the reference ignores its `depth` argument and hard-wires
    them, which is why they are not exposed here.
    """

    input_dim: int = 2 * MOTION_DIM  # [prev_motion | noisy latent] per frame
    output_dim: int = MOTION_DIM
    seq_len: int = 80  # frames per window; RoPE positions restart every seq_len tokens
    audio_unit_len: int = 1  # audio frames flattened into one audio token (W)
    audio_blocks: int = 12  # encoder layers stacked per frame (K)
    audio_dim: int = 768  # encoder width (C)
    audio_tokens: int = 1  # audio tokens per frame (M)
    audio_cond_dim: int = EXPRESSION_DIM  # identity: the source's canonical keypoints
    hidden_size: int = 768
    num_heads: int = 12
    mlp_ratio: float = 4.0
    num_emotions: int = NUM_EMOTIONS
    rope_theta: float = 256.0
    four_stream_blocks: int = 3
    two_stream_blocks: int = 6
    single_stream_blocks: int = 12

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def audio_input_dim(self) -> int:
        return self.audio_unit_len * self.audio_blocks * self.audio_dim

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head dim {self.head_dim} must be even for rotary embeddings")

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any], where: str = "reference constructor arguments") -> DiTConfig:
        """Build from reference constructor kwargs; the ones the reference ignores (REFERENCE_ONLY_KWARGS)
        are dropped, every other key must be a field of this config."""
        return from_mapping(cls, {k: v for k, v in kwargs.items() if k not in REFERENCE_ONLY_KWARGS}, where)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The released MoDA checkpoint (preset `TalkingHeadDiT-B`).
MODA_BASE = DiTConfig()
