"""Choosing the torch device."""

from __future__ import annotations

import torch


def default_device(name: str | None = None) -> torch.device:
    """`name` if given, else CUDA when available, else the CPU."""
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
