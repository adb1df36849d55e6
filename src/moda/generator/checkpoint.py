"""Loading the released MoDA generator checkpoint (`net-200.pth`) unchanged.

The file is a flat state dict laid out as `MotionGenerator.state_dict()`: every learnable key starts with
`talking_head_dit.`, plus the deterministic `scheduler.sigmas` buffer. A checkpoint saved from a CPU build
of the reference may also hold `null_audio_feat` / `null_motion_feat`.

Null audio feature (reference quirk): the reference creates the unconditional audio feature with
`nn.Parameter(torch.randn(...)).to(device)`; on a GPU that is a plain tensor, so the released inference never
loads it from the checkpoint and uses whatever the seeded global RNG produced. `null_audio="released"`
reproduces that value as simulated for the production config after `torch.manual_seed(42)` (shipped in
`moda/assets`); `"checkpoint"` takes the file's own tensor; `"zeros"` uses an all-zero feature. `"auto"`
takes the checkpoint's if it has one, else the released value at the released width, else zeros.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file

from ..configs import from_mapping
from ..errors import MoDAError
from ..motion.stats import MotionStats
from ..weights import read_state_dict
from .config import MODA_BASE, DiTConfig
from .model import MotionGenerator

NullAudioSource = Literal["auto", "released", "checkpoint", "zeros"]
OPTIONAL_KEYS = ("scheduler.sigmas", "null_audio_feat", "null_motion_feat")


def released_null_audio_feat() -> torch.Tensor:
    """(1, 1, 1, 12, 768)-broadcastable null feature of the released GPU inference, (1, 1, 1, 1, 768)."""
    asset = resources.files("moda") / "assets" / "null_audio_feat_released.safetensors"
    with resources.as_file(asset) as path:
        return load_file(path)["null_audio_feat"]


def load_generator_state(
    model: MotionGenerator, state: dict[str, torch.Tensor], null_audio: NullAudioSource = "auto"
) -> None:
    """Strictly load a released-layout state dict into `model` and set its null audio feature."""
    expected = set(model.state_dict())
    missing = sorted(expected - set(state) - set(OPTIONAL_KEYS))
    unexpected = sorted(set(state) - expected - set(OPTIONAL_KEYS))
    if missing or unexpected:
        raise MoDAError(
            f"checkpoint does not match the generator layout: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]}); "
            "check that it is the MoDA net-200.pth and that the config matches"
        )
    mismatched = [k for k, v in model.state_dict().items() if k in state and state[k].shape != v.shape]
    if mismatched:
        k = mismatched[0]
        raise MoDAError(
            f"checkpoint tensor {k} has shape {tuple(state[k].shape)}, the model expects "
            f"{tuple(model.state_dict()[k].shape)}; the config does not match this checkpoint"
        )
    learnable = {k: v for k, v in state.items() if k in expected}
    learnable.setdefault("scheduler.sigmas", model.scheduler.sigmas)
    model.load_state_dict(learnable, strict=True)

    if null_audio == "auto":
        if "null_audio_feat" in state:
            null_audio = "checkpoint"
        else:  # the released value exists only at the released width
            null_audio = "released" if model.config.audio_dim == released_null_audio_feat().shape[-1] else "zeros"
    if null_audio == "checkpoint":
        if "null_audio_feat" not in state:
            raise MoDAError("the checkpoint has no null_audio_feat; use null_audio='released' or 'zeros'")
        feat = state["null_audio_feat"]
    elif null_audio == "released":
        feat = released_null_audio_feat()
    elif null_audio == "zeros":
        feat = torch.zeros(1, 1, 1, 1, model.config.audio_dim)
    else:
        raise ValueError(f"unknown null_audio source {null_audio!r}")
    if feat.shape[-1] != model.config.audio_dim:
        raise MoDAError(
            f"null audio feature has width {feat.shape[-1]}, the model's audio width is {model.config.audio_dim}"
        )
    model.null_audio_feat = feat.reshape(1, 1, 1, -1, model.config.audio_dim).expand(
        1, 1, 1, model.config.audio_blocks, -1
    ).clone().to(model.null_audio_feat)


def load_motion_generator(
    path: str | Path, config: DiTConfig = MODA_BASE, null_audio: NullAudioSource = "auto"
) -> MotionGenerator:
    """Build the generator for `config` and load `path` (.pth read with weights_only=True, or .safetensors)."""
    model = MotionGenerator(config)
    load_generator_state(model, read_state_dict(path), null_audio)
    return model.eval()


def read_generator_config(path: str | Path) -> DiTConfig:
    """The `{"model": {DiTConfig fields}}` file written beside a generator (strict: unknown keys are errors)."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MoDAError(f"cannot read the generator config {path} ({exc}); it must be JSON") from exc
    if not isinstance(values, dict) or not isinstance(values.get("model"), dict):
        raise MoDAError(f"{path}: expected an object with a \"model\" table of DiTConfig fields")
    return from_mapping(DiTConfig, values["model"], str(path))


def load_trained_generator(folder: str | Path) -> tuple[MotionGenerator, MotionStats]:
    """A generator exported by `moda train` (generator.safetensors, generator.json, stats.safetensors)."""
    folder = Path(folder)
    missing = [n for n in ("generator.safetensors", "generator.json", "stats.safetensors") if not (folder / n).is_file()]
    if missing:
        raise MoDAError(f"{folder} is not a trained generator folder: missing {', '.join(missing)}")
    config = read_generator_config(folder / "generator.json")
    return load_motion_generator(folder / "generator.safetensors", config), MotionStats.load(folder / "stats.safetensors")
