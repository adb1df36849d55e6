"""pytest fixtures; the helpers they use live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from moda.generator.model import MotionGenerator
from tests.helpers import golden_dir, randomize, tiny_config


@pytest.fixture(scope="session")
def golden() -> Path:
    directory = golden_dir()
    if not (directory / "dit_small.json").is_file():
        pytest.fail(f"golden fixtures not found in {directory}; set MODA_GOLDEN_DIR to the shared/golden/moda folder")
    return directory


@pytest.fixture
def tiny_generator() -> MotionGenerator:
    torch.manual_seed(0)
    model = MotionGenerator(tiny_config()).eval()
    randomize(model)
    model.null_audio_feat = torch.randn(1, 1, 1, 2, 8, generator=torch.Generator().manual_seed(1))
    return model
