"""Shared test helpers: the golden fixture folder and tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from moda.generator.config import DiTConfig
from moda.generator.sampler import MotionGenerator

REPO_ROOT = Path(__file__).resolve().parents[1]


def golden_dir() -> Path:
    """../shared/golden/moda beside the checkout, or $MODA_GOLDEN_DIR."""
    return Path(os.environ.get("MODA_GOLDEN_DIR", REPO_ROOT.parent / "shared" / "golden" / "moda"))


@pytest.fixture(scope="session")
def golden() -> Path:
    directory = golden_dir()
    if not (directory / "dit_small.json").is_file():
        pytest.fail(f"golden fixtures not found in {directory}; set MODA_GOLDEN_DIR to the shared/golden/moda folder")
    return directory


def tiny_config(**overrides) -> DiTConfig:
    """A DiT small enough to run many sampling steps in a test, with the production block structure."""
    base = dict(
        hidden_size=32, num_heads=2, audio_blocks=2, audio_dim=8,
        four_stream_blocks=1, two_stream_blocks=1, single_stream_blocks=1,
    )
    return DiTConfig(**{**base, **overrides})


def randomize(module: torch.nn.Module, seed: int = 0, std: float = 0.1) -> torch.nn.Module:
    """Perturb every parameter, so zero-initialised adaLN / output layers do something."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(std * torch.randn(parameter.shape, generator=generator))
    return module


@pytest.fixture
def tiny_generator() -> MotionGenerator:
    torch.manual_seed(0)
    model = MotionGenerator(tiny_config()).eval()
    randomize(model)
    model.null_audio_feat = torch.randn(1, 1, 1, 2, 8, generator=torch.Generator().manual_seed(1))
    return model
