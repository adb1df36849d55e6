"""Training shards: one safetensors file per clip.

A shard holds `motion` (T, 70) in renderer units (expression, scale, t, pitch/yaw/roll in degrees),
`audio` (T, K, C) per-frame audio features, `ref_kp` (63,) the clip's canonical keypoints, optional extras
(e.g. ground-truth mouth opening) and metadata (emotion id, source file). Written by preprocessing and the
synthetic corpus, read by training and evaluation.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .emotion import NULL_EMOTION
from .errors import MoDAError

SHARD_SUFFIX = ".clip.safetensors"


@dataclass
class Clip:
    motion: torch.Tensor  # (T, 70)
    audio: torch.Tensor  # (T, K, C)
    ref_kp: torch.Tensor  # (63,)
    emotion: int = NULL_EMOTION
    source: str = ""
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. ground-truth mouth opening (T,)


def save_clip(path: str | Path, clip: Clip) -> Path:
    """Write a shard atomically (temporary file, then rename)."""
    path = Path(path)
    if clip.motion.shape[0] != clip.audio.shape[0]:
        raise ValueError(f"motion has {clip.motion.shape[0]} frames but audio {clip.audio.shape[0]}")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    tensors = {"motion": clip.motion.float().contiguous(), "audio": clip.audio.float().contiguous(),
               "ref_kp": clip.ref_kp.float().reshape(-1).contiguous(),
               **{f"extra.{k}": v.contiguous() for k, v in clip.extras.items()}}
    save_file(tensors, temporary, metadata={"emotion": str(clip.emotion), "source": clip.source, "format": "moda-clip-1"})
    os.replace(temporary, path)
    return path


def load_clip(path: str | Path) -> Clip:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        extras = {k[len("extra."):]: f.get_tensor(k) for k in f.keys() if k.startswith("extra.")}
        return Clip(f.get_tensor("motion"), f.get_tensor("audio"), f.get_tensor("ref_kp"),
                    int(metadata.get("emotion", NULL_EMOTION)), metadata.get("source", ""), extras)


def shard_paths(directory: str | Path) -> list[Path]:
    paths = sorted(Path(directory).glob(f"*{SHARD_SUFFIX}"))
    if not paths:
        raise MoDAError(f"no training shards (*{SHARD_SUFFIX}) in {directory}; run `moda preprocess` first")
    return paths
