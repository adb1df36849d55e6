"""Training configuration, read from a TOML file (`moda train --config run.toml`).

Example:

    shards = "data/shards"          # folder of *.clip.safetensors (moda preprocess)
    output = "runs/tiny"
    steps = 2000
    batch_size = 16                 # per process
    [model]                         # DiTConfig fields
    hidden_size = 128
    num_heads = 4
    audio_blocks = 4
    audio_dim = 80
    [loss]
    lip = 2.0
    smoothness = 0.1
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..configs import from_mapping
from ..errors import MoDAError
from ..generator.config import DiTConfig
from ..generator.objective import ConditionDropout, LossWeights


@dataclass(frozen=True)
class TrainConfig:
    shards: str
    output: str
    model: DiTConfig = field(default_factory=DiTConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    dropout: ConditionDropout = field(default_factory=ConditionDropout)
    steps: int = 1000
    batch_size: int = 8
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    bf16: bool = False  # autocast the forward pass (CPUs with AMX, Ampere+ GPUs)
    timestep_distribution: Literal["uniform", "logit_normal"] = "uniform"
    # share of windows whose motion prompt is the rest pose (as a clip's first window is generated) instead of
    # the frame before the window: the model must then take the emotion from its label, not copy it from the prompt
    rest_prompt_share: float = 0.0
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    keep_checkpoints: int = 3

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise MoDAError(f"training config not found: {path}")
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise MoDAError(f"{path} is not valid TOML: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return from_mapping(cls, values, str(path))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
