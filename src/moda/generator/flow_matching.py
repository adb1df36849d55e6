"""Rectified-flow (flow matching) schedule: training objective and the Euler sampling grid.

Convention (as in the released model): x_sigma = (1 - sigma) * x0 + sigma * noise, sigma in [0, 1],
the network sees t = 1000 * sigma and predicts the velocity v = noise - x0, so integrating
dx/dsigma = v from sigma = 1 down to 0 turns noise into motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn


@dataclass(frozen=True)
class EulerStep:
    """One step of the sampling grid: evaluate at `timestep`, move by `dt` in sigma."""

    timestep: torch.Tensor  # scalar, 0..1000 scale
    sigma: torch.Tensor
    sigma_next: torch.Tensor
    dt: torch.Tensor  # sigma_next - sigma (negative)


class FlowMatchingScheduler(nn.Module):
    """Discrete flow schedule with shift 1 (the released config's `time_shifting` flag has no effect).

    `sigmas` is a registered buffer because the released checkpoint carries it as `scheduler.sigmas`.
    """

    sigmas: torch.Tensor  # (1000,) buffer: k / 1000, k = 1..1000

    def __init__(self, num_train_timesteps: int = 1000, num_inference_steps: int = 10):
        super().__init__()
        self.num_train_timesteps = num_train_timesteps
        self.num_inference_steps = num_inference_steps
        self.register_buffer(
            "sigmas", torch.arange(1, num_train_timesteps + 1, dtype=torch.float32) / num_train_timesteps
        )

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return timestep / self.num_train_timesteps

    def euler_steps(self, num_steps: int | None = None) -> list[EulerStep]:
        """Timesteps linspace(1000, 1, n); sigma_next = max(sigma - (sigma_max - sigma_min)/(n-1), 0).

        The last step therefore moves from sigma_min (0.001) exactly to 0.
        """
        n = num_steps or self.num_inference_steps
        timesteps = torch.linspace(self.num_train_timesteps, 1, n, dtype=torch.float32)
        sigma_max, sigma_min = self.sigmas[-1].cpu(), self.sigmas[0].cpu()
        delta = (sigma_max - sigma_min) / max(n - 1, 1)
        steps = []
        for timestep in timesteps:
            sigma = self.sigma(timestep)
            sigma_next = torch.clamp(sigma - delta, min=0.0)
            steps.append(EulerStep(timestep, sigma, sigma_next, sigma_next - sigma))
        return steps

    @staticmethod
    def noisy_sample(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x_sigma = (1 - sigma) x0 + sigma noise; sigma is (B,) and broadcasts over the rest."""
        sigma = sigma.reshape(-1, *([1] * (x0.dim() - 1)))
        return (1 - sigma) * x0 + sigma * noise

    @staticmethod
    def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return noise - x0

    def sample_training_sigmas(
        self,
        batch: int,
        rng: torch.Generator | None = None,
        distribution: Literal["uniform", "logit_normal"] = "uniform",
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Training noise levels on the model's discrete grid (k/1000, k = 1..1000).

        `uniform` draws k uniformly (the grid the released scheduler defines); `logit_normal` draws
        sigma = sigmoid(N(0, 1)) as in SD3 and snaps it to the grid, which puts more weight on mid-range noise.
        """
        if distribution == "uniform":
            index = torch.randint(0, self.num_train_timesteps, (batch,), generator=rng)
        elif distribution == "logit_normal":
            sigma = torch.sigmoid(torch.randn(batch, generator=rng))
            index = (sigma * self.num_train_timesteps).long().clamp(0, self.num_train_timesteps - 1)
        else:
            raise ValueError(f"unknown timestep distribution {distribution!r}: use 'uniform' or 'logit_normal'")
        return self.sigmas.cpu()[index].to(device)
