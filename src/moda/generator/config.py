"""Configuration of the motion generator (the multi-modal DiT)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

MOTION_DIM = 70  # 63 expression deltas (21x3), scale, tx, ty, tz, pitch, yaw, roll
EXPRESSION_DIM = 63
NUM_EMOTIONS = 8  # emotion ids 0..7; id 8 is the null (unconditional) class
NULL_EMOTION = NUM_EMOTIONS
# Our names for ids 0..7 (MEAD's eight emotions); the released model's own mapping is not documented.
EMOTIONS = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")


def emotion_id(name: str | int | None) -> int:
    """An emotion name or id (0..7) -> id; None -> the null class (no emotion conditioning)."""
    from ..errors import MoDAError

    if name is None:
        return NULL_EMOTION
    text = str(name).strip().lower()
    if text.isdigit() and int(text) < NUM_EMOTIONS:
        return int(text)
    if text in EMOTIONS:
        return EMOTIONS.index(text)
    raise MoDAError(f"unknown emotion {name!r}; use one of {', '.join(EMOTIONS)} (or an id 0..7)")


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
    def from_kwargs(cls, kwargs: dict[str, Any]) -> "DiTConfig":
        """Build from reference constructor kwargs, dropping the ones the reference ignores.

        `depth`, `audio_embedder_type`, `norm_type`, `qk_norm` and `exp_dim` are accepted for compatibility:
        the reference ignores depth and the embedder type, and always uses RMS norms.
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in kwargs.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The released MoDA checkpoint (preset `TalkingHeadDiT-B`).
MODA_BASE = DiTConfig()
