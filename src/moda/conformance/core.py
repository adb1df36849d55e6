"""What every golden-fixture check shares: per-tensor comparison against a tolerance, and the summary line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

DEFAULT_TOLERANCE = 1e-5
EXACT = 0.0


@dataclass
class FixtureResult:
    name: str
    errors: dict[str, tuple[float, float]] = field(default_factory=dict)  # tensor -> (max abs error, tolerance)
    problems: list[str] = field(default_factory=list)  # structural mismatches (keys, shapes)
    structural: str = ""  # for layout-only checks (no tensor comparisons): what was checked

    def compare(self, label: str, actual: torch.Tensor | np.ndarray | float, expected: torch.Tensor,
                tolerance: float = DEFAULT_TOLERANCE) -> None:
        actual = torch.as_tensor(np.asarray(actual) if not isinstance(actual, torch.Tensor) else actual)
        actual = actual.detach().double().cpu()
        if actual.shape != expected.shape:
            self.problems.append(f"{label}: shape {tuple(actual.shape)} != {tuple(expected.shape)}")
            return
        self.errors[label] = ((actual - expected.double()).abs().max().item() if expected.numel() else 0.0, tolerance)

    @property
    def failures(self) -> list[str]:
        return [k for k, (err, tol) in self.errors.items() if not err <= tol]

    @property
    def passed(self) -> bool:
        return not self.problems and not self.failures and bool(self.structural or self.errors)

    @property
    def worst(self) -> tuple[str, float, float]:
        if not self.errors:
            return ("-", 0.0, 0.0)
        def closeness(label: str) -> float:  # error as a share of its tolerance
            err, tol = self.errors[label]
            return err / tol if tol > 0 else (float("inf") if err > 0 else 0.0)

        label = max(self.errors, key=lambda k: (closeness(k), self.errors[k][0]))
        return (label, *self.errors[label])

    def summary(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        label, err, tol = self.worst
        if self.structural:
            line = f"{status} {self.name:<20} {self.structural}"
        else:
            line = f"{status} {self.name:<20} max|err| {err:.2e} in {label} (tolerance {tol:.0e}; {len(self.errors)} tensors)"
        details = self.problems + [f"{k}: {self.errors[k][0]:.3e} > {self.errors[k][1]:.0e}" for k in self.failures]
        return line + "".join(f"\n    {d}" for d in details[:10])


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
